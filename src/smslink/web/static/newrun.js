// The new-run form: the chosen touchpoint's message shown, the file's name and size, a file
// over the service's limit refused before it is sent, and a busy note while the upload is
// checked (a large audience takes a moment). The form works the same without this file.

const form = document.querySelector("form[data-upload]");
if (form) {
  const lang = document.documentElement.lang || "en";
  const size = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
  const file = form.querySelector('input[type="file"]');
  const zone = form.querySelector("[data-dropzone]");
  const name = form.querySelector("[data-file-name]");
  const error = form.querySelector("[data-file-error]");
  const submit = form.querySelector("[data-submit]");
  const busy = form.querySelector("[data-busy-text]");
  const select = form.querySelector('select[name="touchpoint"]');
  const sample = form.querySelector("[data-touchpoint-message]");
  const max = Number(form.dataset.maxBytes);

  const human = (bytes) => {
    if (bytes < 1e3) return `${size.format(bytes)} B`;
    if (bytes < 1e6) return `${size.format(bytes / 1e3)} kB`;
    if (bytes < 1e9) return `${size.format(bytes / 1e6)} MB`;
    return `${size.format(bytes / 1e9)} GB`;
  };

  const showMessage = () => {
    const chosen = select.selectedOptions[0];
    const message = chosen ? chosen.dataset.message : "";
    sample.hidden = !message;
    sample.textContent = message || "";
  };
  select.addEventListener("change", showMessage);
  showMessage();

  const check = () => {
    const chosen = file.files[0];
    name.hidden = !chosen;
    if (!chosen) return true;
    name.textContent = `${chosen.name} · ${human(chosen.size)}`;
    const tooLarge = max > 0 && chosen.size > max;
    if (tooLarge) {
      error.textContent = form.dataset.tooLarge;
      error.hidden = false;
      error.dataset.client = "1";
      file.setAttribute("aria-invalid", "true");
    } else if (error.dataset.client) {
      error.hidden = true;
      delete error.dataset.client;
      file.removeAttribute("aria-invalid");
    }
    return !tooLarge;
  };
  file.addEventListener("change", check);

  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, () => zone.classList.add("dragging"));
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }

  form.addEventListener("submit", (event) => {
    if (!check()) {
      event.preventDefault();
      file.focus();
      return;
    }
    submit.disabled = true;
    busy.textContent = form.dataset.busy;
  });
}

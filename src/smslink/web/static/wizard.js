// The touchpoint wizard's live parts (no inline script; the pages work without this file).
//
// Page 1, Message: as the marketer types, the message is counted by the server, the very
// counting a send bills by (POST /api/touchpoints/inspect, debounced), and the page's
// counts, placeholders and marked characters are redrawn from the answer. Nothing is
// counted here.
// Page 2, Field mapping: a sample audience picked in the file input is sent (its start
// only, when it is large) to POST /api/audiences/columns; its columns become the choices
// of every mapping field, and empty fields get the column whose name matches.
//
// Every text shown comes from the page (translated there) or from the server's answer,
// and is set as text, never as HTML.

const DEBOUNCE_MS = 200;
const numberFormat = new Intl.NumberFormat(document.documentElement.lang || "en");

function csrfToken() {
  const field = document.querySelector('input[name="csrf"]');
  return field ? field.value : "";
}

function slot(root, name) {
  return root.querySelector(`[data-slot="${name}"]`);
}

function fromTemplate(root, name) {
  const template = root.querySelector(`template[data-template="${name}"]`);
  return template.content.firstElementChild.cloneNode(true);
}

function templateText(root, name) {
  const template = root.querySelector(`template[data-template="${name}"]`);
  return template ? template.content.textContent.trim() : "";
}

async function postJson(url, body, signal) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRF-Token": csrfToken(),
    },
    body: JSON.stringify(body),
    signal,
  });
  return { ok: response.ok, answer: await response.json() };
}

function problemsOf(answer) {
  const error = answer && answer.error;
  if (!error) return "";
  const messages = (error.problems || []).map((p) => p.message);
  return messages.length ? messages.join("; ") : error.message;
}

// -- Page 1: the message, counted as it is typed ------------------------------------

function messagePage(form) {
  const textarea = form.querySelector("[data-message]");
  const info = form.querySelector("[data-info]");
  const error = form.querySelector("[data-message-error]");
  let timer = 0;
  let controller = null;
  let latest = 0;

  async function inspect() {
    const asked = ++latest;
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const { ok, answer } = await postJson(
        "/api/touchpoints/inspect",
        { message: textarea.value },
        controller.signal,
      );
      if (asked !== latest) return; // a newer answer is on its way
      if (ok) {
        drawInfo(info, answer);
        showProblems(textarea.value.trim() ? answer.problems.map((p) => p.message) : []);
      } else {
        showProblems([problemsOf(answer)]);
      }
    } catch (failure) {
      if (failure.name !== "AbortError") console.warn("smslink: counting failed", failure);
    }
  }

  function showProblems(messages) {
    const text = messages.filter(Boolean).join("; ");
    error.textContent = text;
    error.hidden = !text;
    if (text) textarea.setAttribute("aria-invalid", "true");
    else textarea.removeAttribute("aria-invalid");
  }

  textarea.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(inspect, DEBOUNCE_MS);
  });
}

function drawInfo(root, info) {
  slot(root, "characters").textContent = numberFormat.format(info.characters);
  const encoding = slot(root, "encoding");
  encoding.textContent = info.encoding;
  encoding.classList.toggle("ok", info.encoding === "GSM-7");
  encoding.classList.toggle("enc-ucs2", info.encoding !== "GSM-7");
  const segments = slot(root, "segments");
  segments.textContent = numberFormat.format(info.segments);
  segments.classList.toggle("many", info.segments > 1);
  const fill = slot(root, "fill");
  fill.max = info.capacity;
  fill.value = info.units;
  slot(root, "units").textContent = numberFormat.format(info.units);
  slot(root, "capacity").textContent = numberFormat.format(info.capacity);

  slot(root, "placeholder-count").textContent = numberFormat.format(info.placeholders.length);
  const chips = slot(root, "placeholders");
  chips.replaceChildren(
    ...info.placeholders.map((name, index) => {
      const chip = fromTemplate(root, "chip");
      chip.textContent = `<${name}>`;
      chip.classList.toggle("over", index >= info.max_placeholders);
      return chip;
    }),
  );
  slot(root, "no-placeholders").hidden = info.placeholders.length > 0;
  slot(root, "values-note").hidden = info.placeholders.length === 0;

  slot(root, "ucs2").hidden = info.forcing.length === 0;
  slot(root, "marked").replaceChildren(
    ...info.parts.map((part) => {
      if (!part.ucs2) return document.createTextNode(part.text);
      const mark = document.createElement("mark");
      mark.textContent = part.text;
      return mark;
    }),
  );
  slot(root, "forcing").replaceChildren(...info.forcing.map((f) => forcingItem(root, f)));

  const doubled = slot(root, "doubled");
  doubled.hidden = info.doubled.length === 0 || info.encoding !== "GSM-7";
  slot(root, "doubled-chars").textContent = info.doubled.join(" ");
}

function forcingItem(root, f) {
  const item = fromTemplate(root, "forcing");
  slot(item, "char").textContent = f.char;
  slot(item, "code").textContent = f.code;
  slot(item, "name").textContent = f.name.toLowerCase();
  slot(item, "count").textContent = f.count > 1 ? `×${f.count}` : "";
  slot(item, "replacement").textContent = f.replacement || "";
  slot(item, "instead").hidden = !f.replacement;
  slot(item, "remove").hidden = f.replacement !== "";
  return item;
}

// -- Page 2: the columns of a sample audience ---------------------------------------

function mappingPage(sampleForm, mappingForm) {
  const section = sampleForm.closest("section") || document;
  const file = sampleForm.querySelector("[data-sample]");
  const encoding = sampleForm.querySelector("[data-encoding]");
  const error = sampleForm.querySelector("[data-file-error]");
  const status = sampleForm.querySelector("[data-sample-status]");
  const datalist = mappingForm.querySelector("[data-columns]");
  const columnsJson = mappingForm.querySelector("[data-columns-json]");
  const sampleName = mappingForm.querySelector("[data-sample-name]");
  const inputs = [...mappingForm.querySelectorAll("[data-column]")];
  const maxBytes = Number(sampleForm.dataset.maxBytes);

  // Reading starts when a file is picked: the button is for pages without this script.
  sampleForm.querySelector("[data-read-columns]").hidden = true;

  async function read() {
    const chosen = file.files[0];
    if (!chosen) return;
    const partial = chosen.size > maxBytes;
    const body = new FormData();
    body.append("file", partial ? chosen.slice(0, maxBytes) : chosen, chosen.name);
    if (encoding.value) body.append("encoding", encoding.value);
    if (partial) body.append("partial", "true");
    for (const input of inputs) {
      if (input.dataset.placeholder) body.append("placeholder", input.dataset.placeholder);
    }
    status.setAttribute("aria-busy", "true");
    let response;
    let answer;
    try {
      response = await fetch("/api/audiences/columns", {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
        body,
      });
      answer = await response.json();
    } catch (failure) {
      console.warn("smslink: reading the sample failed", failure);
      return;
    } finally {
      status.removeAttribute("aria-busy");
    }
    if (!response.ok) {
      showError(problemsOf(answer));
      status.replaceChildren();
      return;
    }
    showError("");
    useColumns(answer);
  }

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
    if (text) file.setAttribute("aria-invalid", "true");
    else file.removeAttribute("aria-invalid");
  }

  function useColumns(answer) {
    const example = templateText(mappingForm, "example");
    datalist.replaceChildren(
      ...answer.columns.map((column) => {
        const option = document.createElement("option");
        option.value = column;
        const value = answer.examples[column];
        if (value && example) option.label = example.replace("{value}", value);
        return option;
      }),
    );
    columnsJson.value = JSON.stringify(answer.columns);
    sampleName.value = answer.name;

    let filled = false;
    for (const input of inputs) {
      const placeholder = input.dataset.placeholder;
      const suggestion = placeholder ? answer.suggested[placeholder] : answer.suggested_phone;
      if (suggestion && !input.value.trim()) {
        input.value = suggestion;
        input.removeAttribute("aria-invalid");
        filled = true;
      }
    }

    const ok = fromTemplate(section, "status-ok");
    slot(ok, "text").textContent = templateText(section, "status-text").replace("{file}", answer.name);
    slot(ok, "chips").replaceChildren(
      ...answer.columns.map((column) => {
        const chip = document.createElement("span");
        chip.className = "chip plain";
        chip.textContent = column;
        return chip;
      }),
    );
    const shown = [ok];
    if (filled) {
      const note = fromTemplate(section, "status-warn");
      note.className = "alert ok small";
      note.textContent = templateText(section, "status-filled");
      shown.push(note);
    }
    if (answer.warning) {
      const warning = fromTemplate(section, "status-warn");
      warning.textContent = answer.warning;
      shown.push(warning);
    }
    status.replaceChildren(...shown);
  }

  file.addEventListener("change", read);
  encoding.addEventListener("change", () => {
    if (file.files.length) read();
  });
  sampleForm.addEventListener("submit", (event) => {
    event.preventDefault();
    read();
  });
}

const messageForm = document.querySelector('form[data-wizard="message"]');
if (messageForm) messagePage(messageForm);

const sampleForm = document.querySelector("form[data-sample-form]");
const mappingForm = document.querySelector('form[data-wizard="mapping"]');
if (sampleForm && mappingForm) mappingPage(sampleForm, mappingForm);

// The time-zone field suggests the browser's own zone when none is saved yet.
const field = document.querySelector("[data-browser-zone]");
if (field && !field.value) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) field.placeholder = zone;
}

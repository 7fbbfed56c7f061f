// Show why an htmx request failed (e.g. 503 "server busy", 422 with a reason) instead of doing nothing.
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  let detail = "";
  try { detail = JSON.parse(xhr.responseText).detail; } catch { detail = ""; }
  if (typeof detail !== "string") detail = JSON.stringify(detail);
  const flash = document.getElementById("flash");
  flash.textContent = (xhr.status === 503 ? "The server is busy; try again in a moment. " : "") +
    (detail || `Error ${xhr.status}`);
  flash.hidden = false;
});
document.addEventListener("htmx:beforeRequest", () => { document.getElementById("flash").hidden = true; });
// "Diverse results" re-runs the search at once (htmx handles the form's submit); after the swap or a
// back / forward through htmx's history the box follows the URL.
document.addEventListener("change", (event) => {
  if (event.target.id === "diverse") event.target.form.requestSubmit();
});
const syncDiverse = () => {
  const box = document.getElementById("diverse");
  const value = new URLSearchParams(location.search).get("diverse") ?? "";
  if (box) box.checked = ["1", "true", "on", "yes"].includes(value.toLowerCase());
};
document.addEventListener("htmx:historyRestore", syncDiverse);
window.addEventListener("popstate", () => setTimeout(syncDiverse));
// Write forms (save to board, remove, create) ask for the API key when one is configured: the key typed
// once is kept for this tab (sessionStorage, never a cookie) and filled into the other such fields.
const KEY_SLOT = "adsearch-api-key";
document.addEventListener("submit", (event) => {
  const field = event.target.querySelector?.("input[name=api_key]");
  if (field && field.value) sessionStorage.setItem(KEY_SLOT, field.value);
}, true);
const fillKeys = (root) => {
  const key = sessionStorage.getItem(KEY_SLOT);
  if (key) for (const field of root.querySelectorAll("input[name=api_key]")) if (!field.value) field.value = key;
};
document.addEventListener("DOMContentLoaded", () => fillKeys(document));
document.addEventListener("htmx:load", (event) => fillKeys(event.detail.elt));

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

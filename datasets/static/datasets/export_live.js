// Follows a queued or running export on its admin page: every few seconds it reads the export's JSON
// (GET /api/v1/exports/<id>/), shows its status, and reloads the page once the job has finished, so
// the counts, warnings and download link (drawn on the server) appear.
// A static file because the site's Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  const box = document.getElementById("export-live");
  if (!box) return;
  const EVERY_MS = 2000;
  const status = box.querySelector("[data-status]");

  async function poll() {
    try {
      const response = await fetch(box.dataset.url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
      if (response.ok) {
        const exported = await response.json();
        if (exported.status !== "queued" && exported.status !== "running") {
          window.location.reload();
          return;
        }
        status.textContent = exported.status;
      } else if (response.status === 404) {
        window.location.reload();  // deleted meanwhile: the admin says so
        return;
      }
    } catch (error) {
      // The server restarting or the network dropping: try again at the next tick.
    }
    window.setTimeout(poll, EVERY_MS);
  }

  window.setTimeout(poll, EVERY_MS);
})();

// Follows a queued or running evaluation on its page: every few seconds it reads the evaluation's JSON
// (GET /api/v1/evaluations/<id>/, the stage and percentage the job stores on the row), shows them, and
// reloads the page once the evaluation has finished, so the figures (drawn on the server) appear.
// A static file because the site's Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  const box = document.getElementById("evaluation-progress");
  if (!box) return;
  const EVERY_MS = 3000;
  const stage = box.querySelector("[data-stage]");
  const percent = box.querySelector("[data-percent]");
  const bar = box.querySelector("progress");

  async function poll() {
    try {
      const response = await fetch(box.dataset.url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
      if (response.ok) {
        const evaluation = await response.json();
        if (evaluation.status !== "queued" && evaluation.status !== "running") {
          window.location.reload();
          return;
        }
        stage.textContent = evaluation.stage || evaluation.status;
        percent.textContent = evaluation.percent + "%";
        bar.value = evaluation.percent;
      }
    } catch (error) {
      // The server restarting or the network dropping: try again at the next tick.
    }
    window.setTimeout(poll, EVERY_MS);
  }

  window.setTimeout(poll, EVERY_MS);
})();

// The list view: select all on the page, show the intent picker only for relabel, and keys:
// j/k move between rows, x selects the row, / goes to the text filter, r opens the review queue.
(function () {
  "use strict";
  const all = document.getElementById("select-all");
  const action = document.getElementById("bulk-action");
  const intent = document.getElementById("bulk-intent");
  const form = document.getElementById("bulk-form");
  if (all) {
    all.addEventListener("change", function () {
      form.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
  function syncIntent() { intent.hidden = action.value !== "relabel"; }
  action.addEventListener("change", syncIntent);
  syncIntent();
  form.addEventListener("submit", function (event) {
    const scope = form.querySelector('input[name="scope"]:checked').value;
    if (scope === "all" && !window.confirm("Apply " + action.value + " to every question the filter matches?")) {
      event.preventDefault();
    }
  });

  const rows = Array.from(form.querySelectorAll("tbody tr")).filter((row) => row.querySelector('input[name="ids"]'));
  let cursor = -1;
  function moveTo(index) {
    if (!rows.length) return;
    if (cursor >= 0) rows[cursor].classList.remove("cursor");
    cursor = Math.max(0, Math.min(index, rows.length - 1));
    rows[cursor].classList.add("cursor");
    rows[cursor].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" && event.target.type !== "checkbox" || tag === "textarea" || tag === "select") return;
    if (event.key === "j") moveTo(cursor + 1);
    else if (event.key === "k") moveTo(cursor - 1);
    else if (event.key === "x" && cursor >= 0) {
      const box = rows[cursor].querySelector('input[name="ids"]');
      box.checked = !box.checked;
    } else if (event.key === "/") document.querySelector('.filters input[name="search"]').focus();
    else if (event.key === "r") { const link = document.getElementById("review-these"); if (link) link.click(); }
    else return;
    event.preventDefault();
  });
})();

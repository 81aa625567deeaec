// The list view: select all on the page, and show the intent picker only for relabel.
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
})();

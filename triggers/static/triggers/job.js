// The job page's log: follow each step's output while it grows (unless the reader scrolled
// up), open the running or failing step and fold the passed ones (unless the reader chose),
// and reload the page if htmx (the live updates) could not load.
(function () {
  "use strict";
  var log = document.getElementById("job-log");
  if (!log) return;

  function atBottom(el) { return el.scrollTop + el.clientHeight >= el.scrollHeight - 20; }

  log.addEventListener("scroll", function (event) {
    var box = event.target;
    if (box.classList && box.classList.contains("steplog")) box.dataset.follow = atBottom(box) ? "1" : "0";
  }, true);

  log.addEventListener("click", function (event) {
    var summary = event.target.closest("summary");
    if (summary && summary.parentElement.classList.contains("step")) summary.parentElement.dataset.chosen = "1";
  });

  function wantsOpen(details) {
    if (details.classList.contains("setup")) {
      var steps = log.querySelectorAll("details.step:not(.setup)");
      var started = log.querySelectorAll("details.step:not(.setup) > summary:not([data-status=pending]):not([data-status=skipped])");
      return steps.length === 0 || (started.length === 0 && !!details.querySelector(".ln"));
    }
    var summary = details.querySelector("summary");
    var status = summary && summary.getAttribute("data-status");
    return status === "running" || (status === "failed" && !summary.hasAttribute("data-allowed"));
  }

  function refresh() {
    log.querySelectorAll("details.step").forEach(function (details) {
      if (details.dataset.chosen !== "1") details.open = wantsOpen(details);
      var summary = details.querySelector("summary[data-status]");
      if (summary) details.className = "step " + summary.getAttribute("data-status");
    });
    log.querySelectorAll(".steplog").forEach(function (box) {
      if (box.dataset.follow !== "0") box.scrollTop = box.scrollHeight;
    });
  }

  document.body.addEventListener("htmx:afterSettle", refresh);
  refresh();

  window.addEventListener("load", function () {
    var poller = document.getElementById("job-poller");
    if (!window.htmx && poller && poller.hasAttribute("hx-get")) setTimeout(function () { location.reload(); }, 5000);
  });
})();

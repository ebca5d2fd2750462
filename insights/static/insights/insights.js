// Times in the reader's timezone: <time datetime="…" data-local> gets its text from the browser's
// locale and zone (the server knows neither). A static file: the Content-Security-Policy refuses inline scripts.
(function () {
  "use strict";
  function localise(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) return;
      el.textContent = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      el.title = at.toISOString();
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localise(document); });
  } else {
    localise(document);
  }
})();

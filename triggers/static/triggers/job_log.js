// The job page: follow the log while it grows, unless the reader scrolled up.
(function () {
  var log = document.getElementById("job-log");
  if (!log) return;
  var follow = true;
  log.addEventListener("scroll", function () { follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 20; });
  document.body.addEventListener("htmx:oobAfterSwap", function () { if (follow) log.scrollTop = log.scrollHeight; });
  if (log.hasAttribute("data-polling")) {
    // Without htmx (static files not served), fall back to reloading the page.
    window.addEventListener("load", function () { if (!window.htmx) setTimeout(function () { location.reload(); }, 5000); });
  }
})();

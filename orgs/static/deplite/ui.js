// Behaviour every page shares, kept in a static file (no inline script) so a strict
// Content-Security-Policy holds. Markup opts in with data attributes.
(function () {
  "use strict";
  // <form data-confirm="Question?"> asks before it is sent; "Cancel" keeps it unsent.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <button data-copy="text"> or <button data-copy-from="#id"> puts the text on the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy],[data-copy-from]");
    if (!button) return;
    event.preventDefault();
    var text = button.getAttribute("data-copy");
    if (text === null) {
      var source = document.querySelector(button.getAttribute("data-copy-from"));
      text = source ? source.textContent : "";
    }
    var label = button.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Copy failed"; });
    }
  });

  // <time datetime="<ISO UTC>" data-local-time> shows that moment in the browser's own timezone
  // (no profile setting); the server's UTC text stays as the title.
  var localFormat = (window.Intl && Intl.DateTimeFormat) ? new Intl.DateTimeFormat(undefined, {
    weekday: "short", year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
  }) : null;
  function showLocalTimes(root) {
    if (!localFormat) return;
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment.getTime())) return;
      if (!el.title) el.title = el.textContent;
      el.textContent = localFormat.format(moment);
    });
  }
  // <input data-browser-timezone> left blank is filled with the browser's IANA timezone name.
  function fillTimezones(root) {
    var zone = (window.Intl && Intl.DateTimeFormat) ? Intl.DateTimeFormat().resolvedOptions().timeZone : "";
    if (!zone) return;
    root.querySelectorAll("input[data-browser-timezone]").forEach(function (input) {
      if (!input.value) input.value = zone;
    });
  }
  function ready() { showLocalTimes(document); fillTimezones(document); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready); else ready();
  document.addEventListener("htmx:afterSwap", function (event) { showLocalTimes(event.target); });
})();

// Behaviour the pages share, from a static file: the Content-Security-Policy refuses inline
// scripts and on* attributes.

// <form data-confirm="Delete …?">: ask before submitting.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

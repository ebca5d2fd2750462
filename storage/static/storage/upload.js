// The Files page's upload: ask Deplite for a presigned PUT, send the file straight to the
// bucket with XMLHttpRequest (for its upload progress events), then ask Deplite to complete
// and follow the file until it is available (or failed), then show it in the list.
(function () {
  "use strict";
  var section = document.getElementById("upload");
  if (!section) return;
  var form = document.getElementById("upload-form");
  var panel = document.getElementById("upload-panel");
  var bar = document.getElementById("upload-progress");
  var percent = document.getElementById("upload-percent");
  var statusText = document.getElementById("upload-status");
  var button = document.getElementById("upload-button");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var filesUrl = section.getAttribute("data-files-url");

  function say(text) { statusText.textContent = text; }
  function progress(value) { bar.value = value; percent.textContent = value + "%"; }
  function fail(text) { say(text); button.disabled = false; }

  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error((data.error && data.error.message) || ("HTTP " + response.status));
        return data;
      });
    });
  }

  function put(upload, file) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", upload.uploadUrl);
      Object.keys(upload.headers || {}).forEach(function (name) {
        if (name.toLowerCase() !== "content-length" && name.toLowerCase() !== "host") xhr.setRequestHeader(name, upload.headers[name]);
      });
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) progress(Math.floor((event.loaded / event.total) * 100));
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) { progress(100); resolve(); }
        else reject(new Error("The bucket refused the upload (HTTP " + xhr.status + ")."));
      });
      xhr.addEventListener("error", function () {
        reject(new Error("The upload could not reach the bucket: check its CORS rule (below)."));
      });
      xhr.send(file);
    });
  }

  function follow(fileId, tries) {
    return fetch(filesUrl + fileId + "/status", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.status === "available") return data;
        if (data.status === "failed") throw new Error("Verification failed: " + (data.failureReason || "unknown reason"));
        if (tries <= 0) throw new Error("Still verifying; reload the page later.");
        return new Promise(function (resolve) { setTimeout(resolve, 1000); }).then(function () { return follow(fileId, tries - 1); });
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) { say("Choose a file first."); return; }
    button.disabled = true;
    panel.hidden = false;
    progress(0);
    say("Uploading " + file.name + "…");
    var binding = form.querySelector("select[name=binding_id]");
    var presignUrl = binding.options[binding.selectedIndex].getAttribute("data-presign-url");
    var body = new FormData();
    body.append("file_name", file.name);
    body.append("content_type", file.type || "application/octet-stream");
    body.append("size", String(file.size));
    var fileId;
    post(presignUrl, body)
      .then(function (upload) { fileId = upload.fileId; return put(upload, file); })
      .then(function () { say("Uploaded; verifying…"); return post(filesUrl + fileId + "/complete", new FormData()); })
      .then(function () { return follow(fileId, 60); })
      .then(function () {
        say(file.name + " is available.");
        // Show it in the list (a GET of this very page).
        window.location.assign(filesUrl + "?uploaded=" + encodeURIComponent(fileId));
      })
      .catch(function (error) { fail(error.message); });
  });
})();

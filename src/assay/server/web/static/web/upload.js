/* Assay submit page: a resumable upload in parts, with a progress bar.
 *
 * The form works without this script (a plain multipart POST). With it, the file is sent in parts;
 * the upload's id is remembered per file (phase, name, size, modification time), so after a dropped
 * connection or a reload, choosing the same file again sends only the parts the server lacks.
 */
(function () {
  "use strict";
  var RETRIES = 3;

  function $(form, sel) { return form.querySelector(sel); }
  function csrf(form) { return $(form, "input[name=csrfmiddlewaretoken]").value; }
  function say(form, text, isError) {
    var p = $(form, "#upload-message");
    p.textContent = text;
    p.className = isError ? "note error" : "";
  }
  function storageKey(form, file) {
    var phase = $(form, "input[name=phase]").value;
    return "assay-upload:" + [phase, file.name, file.size, file.lastModified].join(":");
  }
  function remember(key, value) { try { if (value) localStorage.setItem(key, value); else localStorage.removeItem(key); } catch (e) { /* private mode */ } }
  function recall(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }

  function request(method, url, form, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRFToken", csrf(form));
      xhr.setRequestHeader("Accept", "application/json");
      if (onProgress && xhr.upload) xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded); };
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = { message: "unexpected answer from the server (" + xhr.status + ")" }; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else reject({ status: xhr.status, data: data });
      };
      xhr.onerror = function () { reject({ status: 0, data: { message: "the connection was lost" } }); };
      xhr.send(body);
    });
  }

  function partSize(state, file, n) {
    var start = (n - 1) * state.chunk_size;
    return Math.max(0, Math.min(file.size, start + state.chunk_size) - start);
  }

  async function begin(form, file) {
    var data = new FormData(form);
    data.delete("input_file");
    data.append("file_name", file.name);
    data.append("size", String(file.size));
    return request("POST", form.dataset.beginUrl, form, data);
  }

  async function run(form, file) {
    var button = $(form, "#submit-button"), resume = $(form, "#resume-button"), bar = $(form, "#upload-progress");
    var key = storageKey(form, file), base = form.dataset.uploadBase, state = null;
    button.disabled = true;
    resume.hidden = true;
    bar.hidden = false;
    bar.value = 0;
    try {
      var known = recall(key);
      if (known) {
        try {
          state = await request("GET", base + known, form, null);
          if (state.status !== "open") state = null; else say(form, "Resuming the upload…");
        } catch (e) { state = null; }
      }
      if (!state) {
        say(form, "Starting the upload…");
        state = await begin(form, file);
        remember(key, state.upload);
      }
      var missing = state.missing.slice();
      var done = file.size;
      missing.forEach(function (n) { done -= partSize(state, file, n); });
      var show = function (extra) {
        var pct = file.size ? Math.floor(((done + extra) / file.size) * 100) : 100;
        bar.value = pct;
        say(form, "Uploading… " + pct + "%");
      };
      show(0);
      for (var i = 0; i < missing.length; i++) {
        var n = missing[i], start = (n - 1) * state.chunk_size;
        var blob = file.slice(start, start + state.chunk_size);
        for (var attempt = 1; ; attempt++) {
          try {
            await request("PUT", base + state.upload + "/parts/" + n, form, blob, show);
            break;
          } catch (e) {
            if (attempt >= RETRIES || (e.status >= 400 && e.status < 500)) throw e;
          }
        }
        done += blob.size;
        show(0);
      }
      say(form, "Checking the file…");
      var finished = await request("POST", base + state.upload + "/finish", form, null);
      remember(key, null);
      bar.value = 100;
      say(form, "Submitted.");
      window.location.assign(finished.redirect);
    } catch (e) {
      var message = (e && e.data && e.data.message) || "the upload failed";
      if (e && e.status >= 400 && e.status < 500 && e.status !== 409) remember(key, null);
      say(form, "Upload stopped: " + message + ".", true);
      if (!(e && e.status >= 400 && e.status < 500)) resume.hidden = false;
      button.disabled = false;
    }
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.id !== "submit-form" || !window.FormData || !window.Promise) return;
    var input = $(form, "#input_file");
    if (!input || !input.files || !input.files.length) return;
    ev.preventDefault();
    run(form, input.files[0]);
  });
  document.addEventListener("click", function (ev) {
    if (!ev.target || ev.target.id !== "resume-button") return;
    var form = ev.target.form, input = $(form, "#input_file");
    if (input.files && input.files.length) run(form, input.files[0]);
    else say(form, "Choose the same file again: the upload goes on from the parts the server already has.", true);
  });
})();

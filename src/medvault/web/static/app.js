// Upload with a real progress bar per file (XHR upload events); falls back to the plain form without JS.
"use strict";
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("file");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("uploads");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const limit = Number(form.dataset.limit);

  function uploadOne(file) {
    return new Promise((resolve) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      const bar = document.createElement("progress");
      label.textContent = file.name + " ";
      bar.max = 100; bar.value = 0;
      bar.setAttribute("aria-label", "Upload progress of " + file.name);
      item.append(label, bar);
      list.append(item);
      if (file.size > limit) { label.textContent = file.name + ": too large"; label.className = "error"; resolve(false); return; }
      const data = new FormData();
      data.append("metadata", JSON.stringify({ title: file.name }));
      data.append("file", file);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/records");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
      xhr.onload = () => {
        const ok = xhr.status === 201;
        bar.value = ok ? 100 : bar.value;
        let detail = "";
        try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (err) { detail = ""; }
        label.textContent = file.name + (ok ? ": uploaded " : ": failed, " + detail + " ");
        label.className = ok ? "ok" : "error";
        item.dataset.state = ok ? "done" : "failed";
        resolve(ok);
      };
      xhr.onerror = () => { label.textContent = file.name + ": network error"; label.className = "error"; item.dataset.state = "failed"; resolve(false); };
      xhr.send(data);
    });
  }

  async function uploadAll(files) {
    const results = [];
    for (const f of files) results.push(await uploadOne(f));
    if (results.every(Boolean)) window.setTimeout(() => window.location.reload(), 400);
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); uploadAll(Array.from(input.files)); });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => uploadAll(Array.from(e.dataTransfer.files)));
})();

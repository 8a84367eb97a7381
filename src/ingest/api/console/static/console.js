// The console's only script: live job pages and jobs list, uploads with progress,
// confirmations. Plain JavaScript, no build step; every page works without it (the
// jobs list then shows what it held when loaded) except uploads.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function followJob(url, onJob, onEnd) {
  const source = new EventSource(url);
  source.addEventListener("job", (e) => onJob(JSON.parse(e.data)));
  source.addEventListener("end", (e) => { source.close(); if (onEnd) onEnd(JSON.parse(e.data)); });
  source.onerror = () => {};  // EventSource reconnects by itself
  return source;
}

function liveJobPage() {
  const root = document.getElementById("job");
  if (!root) return;
  followJob(root.dataset.events, (job) => {
    const status = document.getElementById("job-status");
    status.textContent = job.status;
    status.className = "status status-" + job.status;
    document.getElementById("job-progress").value = job.progress;
    document.getElementById("job-stage").textContent = job.stage || "";
    document.getElementById("job-counts").textContent = job.current + "/" + job.total;
    document.getElementById("job-message").textContent = job.message || "";
    document.getElementById("job-attempt").textContent = job.attempt + "/" + job.max_attempts;
    document.getElementById("job-finished").textContent = (job.finished_at || "").slice(0, 19);
    const error = document.getElementById("job-error");
    if (job.error) { error.hidden = false; error.textContent = (job.error.type || "") + ": " + (job.error.message || ""); }
  });
}

const LIST_REFRESH_MS = 2000;

function liveJobsList() {
  // The list's rows, fetched again (same filters) every LIST_REFRESH_MS while the tab is
  // visible: one small request, no reload, so a job's new status shows where it is.
  const rows = document.getElementById("job-rows");
  if (!rows || !rows.dataset.refresh) return;
  let busy = false;
  const refresh = () => {
    if (busy || document.hidden) return;
    busy = true;
    fetch(rows.dataset.refresh, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((r) => {
        // Sent to the sign-in page: the session ended; show that page, as a reload would.
        if (r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then((html) => { if (html !== null) rows.innerHTML = html; })
      .catch(() => {})  // the next tick tries again
      .finally(() => { busy = false; });
  };
  setInterval(refresh, LIST_REFRESH_MS);
  document.addEventListener("visibilitychange", refresh);
}

function uploadRow(file) {
  const li = document.createElement("li");
  li.className = "upload";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 1; bar.value = 0;
  const state = document.createElement("span");
  state.className = "state";
  state.textContent = "uploading";
  li.append(name, bar, state);
  document.getElementById("uploads").append(li);
  return { li, bar, state };
}

function showState(row, status, text) {
  row.li.dataset.status = status;
  row.state.className = "state status status-" + status;
  row.state.textContent = text || status;
}

function uploadOne(file, collection) {
  const row = uploadRow(file);
  const form = new FormData();
  form.append("files", file);
  form.append("collection", collection);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/console/upload");
  xhr.setRequestHeader("X-CSRF-Token", csrfToken());
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) row.bar.value = 0.5 * e.loaded / e.total; };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
    if (xhr.status !== 202 && xhr.status !== 200) {
      showState(row, "failed", "failed: " + (body.detail || body.title || xhr.statusText));
      return;
    }
    const queued = body.jobs[0];
    const link = document.createElement("a");
    link.href = "/console/jobs/" + queued.job_id;
    link.textContent = "job";
    row.li.append(" ", link);
    showState(row, "queued");
    followJob("/console/jobs/" + queued.job_id + "/events", (job) => {
      row.bar.value = 0.5 + 0.5 * job.progress;
      if (job.status === "failed" || job.status === "dead") {
        showState(row, job.status, job.status + ": " + ((job.error && job.error.message) || "unknown reason"));
      } else {
        showState(row, job.status, job.status + (job.stage ? " (" + job.stage + ")" : ""));
      }
    });
  };
  xhr.onerror = () => showState(row, "failed", "failed: the server could not be reached");
  xhr.send(form);
}

function uploadPage() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const send = (files) => {
    const collection = document.getElementById("collection").value || "default";
    Array.from(files).forEach((f) => uploadOne(f, collection));
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); send(input.files); input.value = ""; });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); send(e.dataTransfer.files); });
}

function confirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (e) => { if (!window.confirm(form.dataset.confirm)) e.preventDefault(); });
  });
}

document.addEventListener("DOMContentLoaded", () => { liveJobPage(); liveJobsList(); uploadPage(); confirmations(); });

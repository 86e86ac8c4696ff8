// The documents panel: the list, upload (file picker or drag and drop) with progress,
// replace and remove. Loaded after app.js, whose helpers ($, esc, api, PageError,
// httpMessage, pageFailure, kindName, docLink, loadHealth) it uses.
//
// Changing the collection needs the admin token. It lives in this tab only: a variable,
// mirrored in sessionStorage so a reload of the tab keeps it; never a cookie or localStorage.
"use strict";

const TOKEN_KEY = "qa.adminToken";
let adminToken = "";
let replaceTarget = null;  // the doc_id the replace file picker is open for
let busy = false;

function storedToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
}

function storeToken(value) {
  adminToken = value;
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* storage disabled: the variable still holds it for this page */ }
}

// What a refused change means, in words, before the API's own detail.
const REFUSED = { 403: "管理员令牌无效或未填写", 404: "没有这个文档", 409: "索引现在无法更改",
                  413: "文件太大或太多", 422: "文件无法建立索引" };

// One admin request by XMLHttpRequest, since fetch cannot report upload progress.
// Resolves with the JSON body of a 2xx; rejects with a PageError carrying the API's detail.
function adminRequest(method, url, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("Authorization", `Bearer ${adminToken}`);
    if (onProgress) {
      xhr.upload.addEventListener("progress", (e) => onProgress(e.lengthComputable ? e.loaded / e.total : null));
      xhr.upload.addEventListener("load", () => onProgress(1, true));
    }
    xhr.addEventListener("error", () => reject(new PageError("无法连接到服务（连接中断；文件超过大小限制时服务会直接断开）")));
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* judged below */ }
      if (xhr.status < 200 || xhr.status >= 300) {
        const message = httpMessage({ status: xhr.status, headers: { get: (h) => xhr.getResponseHeader(h) } }, body);
        reject(new PageError(REFUSED[xhr.status] ? `${REFUSED[xhr.status]}：${message}` : message));
      } else if (body === null) {
        reject(new PageError(`服务返回了无法读取的内容（HTTP ${xhr.status}）`));
      } else {
        resolve(body);
      }
    });
    xhr.send(form);
  });
}

function showStatus(message, kind, progress) {
  const box = $("#docs-status"), bar = $("#upload-progress");
  box.classList.remove("hidden", "ok", "error", "working");
  box.classList.add(kind);
  $("#docs-message").textContent = message;
  bar.classList.toggle("hidden", kind !== "working");
  if (progress == null) bar.removeAttribute("value"); else bar.value = progress;  // no value: indeterminate
}

function setBusy(on) {
  busy = on;
  $("#docs-panel").setAttribute("aria-busy", on ? "true" : "false");
  document.querySelectorAll("#docs-panel button, #docs-panel input[type=file]").forEach((el) => { el.disabled = on; });
}

// "2026-11-29T05:12:03+0000" → "2026-11-29 05:12" in the reader's own time zone
function addedText(iso) {
  if (!iso) return "—";
  const when = new Date(iso.replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
  if (isNaN(when)) return iso;
  const two = (n) => String(n).padStart(2, "0");
  return `${when.getFullYear()}-${two(when.getMonth() + 1)}-${two(when.getDate())} ${two(when.getHours())}:${two(when.getMinutes())}`;
}

function listHtml(docs) {
  if (!docs.length) return `<tr><td colspan="7" class="meta">还没有文档</td></tr>`;
  return docs.map((d) => `<tr data-id="${esc(d.doc_id)}">
      <td class="title"><a href="${docLink(d.doc_id, 0, 0)}">${esc(d.title || d.doc_id)}</a><div class="meta">${esc(d.doc_id)}</div></td>
      <td class="kind">${esc(kindName(d.kind))}</td>
      <td class="num pages">${d.pages ? d.pages : "—"}</td>
      <td class="num passages">${d.passages}</td>
      <td class="num chars">${d.chars}</td>
      <td class="added">${esc(addedText(d.added_at))}</td>
      <td class="doc-actions"><button type="button" class="secondary small replace">替换</button>
        <button type="button" class="danger small remove">删除</button></td>
    </tr>`).join("");
}

async function loadDocuments() {
  const body = $("#docs-list tbody");
  try {
    if (currentKb === ALL) {
      body.innerHTML = `<tr><td colspan="7" class="meta">选择一个知识库来管理它的文档</td></tr>`;
      return;
    }
    const docs = await api(kbPath("/documents"));
    body.innerHTML = listHtml(docs);
    $("#docs-list").dataset.count = String(docs.length);
  } catch (e) {
    body.innerHTML = `<tr><td colspan="7" class="error-text">无法读取文档列表：${esc(pageFailure("页面无法显示文档列表", e))}</td></tr>`;
  }
  setBusy(busy);  // new rows' buttons follow the panel's state
}

function changedText(r) {
  const parts = [];
  if (r.added.length) parts.push(`已添加 ${r.added.join("、")}`);
  if (r.replaced.length) parts.push(`已替换 ${r.replaced.join("、")}`);
  if (r.removed.length) parts.push(`已删除 ${r.removed.join("、")}`);
  // a file whose bytes a document already holds is not stored twice: say which one holds them
  for (const d of r.duplicates || []) parts.push(`${d.file} 与已有文档 ${d.doc_id} 内容相同，未重复保存`);
  if (!parts.length) parts.push("内容没有变化");
  return `${parts.join("；")}。现在共 ${r.documents} 篇文档、${r.passages} 个段落（用时 ${r.seconds.toFixed(1)} 秒）`;
}

// Sends one change and reports it; the answer comes once the new version is served, so the
// list and the counts are re-read right after.
async function change(what, method, url, form) {
  if (busy) return;
  if (!adminToken) { showStatus("请先填写管理员令牌", "error"); $("#admin-token").focus(); return; }
  setBusy(true);
  showStatus(form ? `${what}：上传中…` : `${what}…`, "working", form ? 0 : null);
  const progress = form && ((share, done) => {
    if (done) showStatus(`${what}：已上传，正在建立索引…`, "working", null);
    else showStatus(`${what}：上传中 ${share == null ? "" : Math.round(share * 100) + "%"}`, "working", share);
  });
  try {
    showStatus(changedText(await adminRequest(method, url, form, progress)), "ok");
  } catch (e) {
    showStatus(`${what}失败：${pageFailure("页面无法读取服务的回答", e)}`, "error");
  } finally {
    setBusy(false);
    await Promise.all([loadDocuments(), loadHealth()]);
  }
}

function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const names = Array.from(files, (f) => f.name).join("、");
  change(`上传 ${names}`, "POST", kbPath("/documents"), form);
}

// A small in-page confirmation; resolves true when the person confirms.
function confirmed(message) {
  const dialog = $("#confirm-dialog");
  $("#confirm-text").textContent = message;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}
$("#confirm-ok").addEventListener("click", () => $("#confirm-dialog").close("ok"));
$("#confirm-cancel").addEventListener("click", () => $("#confirm-dialog").close("cancel"));

$("#docs-list").addEventListener("click", async (e) => {
  const button = e.target.closest("button");
  const row = e.target.closest("tr[data-id]");
  if (!button || !row || busy) return;
  const docId = row.dataset.id;
  const title = row.querySelector(".title a").textContent;
  if (button.classList.contains("replace")) {
    replaceTarget = docId;
    $("#replace-input").click();
  } else if (button.classList.contains("remove")
             && await confirmed(`删除《${title}》（${docId}）？它将从索引中移除，不能再被检索和引用。`)) {
    change(`删除 ${docId}`, "DELETE", kbPath(`/documents/${encodeURIComponent(docId)}`), null);
  }
});

$("#replace-input").addEventListener("change", (e) => {
  const file = e.target.files[0], docId = replaceTarget;
  e.target.value = "";  // the same file can be chosen again
  if (!file || !docId) return;
  const form = new FormData();
  form.append("file", file, file.name);
  change(`用 ${file.name} 替换 ${docId}`, "PUT", kbPath(`/documents/${encodeURIComponent(docId)}`), form);
});

$("#upload-input").addEventListener("change", (e) => {
  const files = Array.from(e.target.files);
  e.target.value = "";
  upload(files);
});

// Drag and drop onto the panel. A file dropped elsewhere on the page is ignored rather
// than opened by the browser in place of the page.
const panel = $("#docs-panel");
const carriesFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
window.addEventListener("dragover", (e) => { if (carriesFiles(e)) e.preventDefault(); });
window.addEventListener("drop", (e) => { if (carriesFiles(e)) e.preventDefault(); });
panel.addEventListener("dragover", (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = busy ? "none" : "copy";
  panel.classList.add("dragging");
});
panel.addEventListener("dragleave", (e) => {
  if (!panel.contains(e.relatedTarget)) panel.classList.remove("dragging");
});
panel.addEventListener("drop", (e) => {
  e.preventDefault();
  panel.classList.remove("dragging");
  if (!busy && e.dataTransfer) upload(Array.from(e.dataTransfer.files));
});

$("#admin-token").addEventListener("input", (e) => storeToken(e.target.value.trim()));

$("#docs-toggle").addEventListener("click", () => {
  const open = panel.classList.toggle("hidden") === false;
  $("#docs-toggle").setAttribute("aria-expanded", String(open));
  if (open) loadDocuments();
});

storeToken(storedToken());
$("#admin-token").value = adminToken;

// Knowledge bases: create one (then ask it), delete the one chosen (never the default).
async function kbChange(what, method, url, payload) {
  if (!adminToken) { showStatus("请先填写管理员令牌", "error"); $("#admin-token").focus(); return false; }
  showStatus(`${what}…`, "working", null);
  try {
    await api(url, { method, headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
                     body: payload ? JSON.stringify(payload) : undefined });
    showStatus(`${what}：完成`, "ok");
    return true;
  } catch (e) {
    showStatus(`${what}失败：${pageFailure("页面无法读取服务的回答", e)}`, "error");
    return false;
  }
}
$("#kb-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("#kb-name").value.trim(), title = $("#kb-title").value.trim();
  if (await kbChange(`新建知识库 ${name}`, "POST", "/kbs", { name, ...(title ? { title } : {}) })) {
    $("#kb-name").value = ""; $("#kb-title").value = "";
    chooseKb(name);
  }
});
$("#kb-delete").addEventListener("click", async () => {
  const kb = currentKb;
  if (kb === "default" || kb === ALL) { showStatus("默认知识库不能删除；请选择要删除的知识库", "error"); return; }
  if (await confirmed(`删除知识库 ${kb}？它的全部文档和索引都会删除，不能恢复。`)
      && await kbChange(`删除知识库 ${kb}`, "DELETE", `/kbs/${encodeURIComponent(kb)}`, null)) chooseKb("default");
});
document.addEventListener("kbchange", () => loadDocuments());

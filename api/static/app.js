// The page's behaviour. A file, not inline, so the page works under script-src 'self'.
//
// Every offset the API returns counts Unicode code points (Python's str indices), while a
// JavaScript string counts UTF-16 units: 𠀀 or 🎉 is one code point but two units. So text is
// turned into an array of code points once (Array.from) and only those arrays are sliced;
// String.prototype.slice/substring/length are never used with an API offset.
"use strict";

const MAX_QUESTION = 500;  // code points, as the API counts them
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
const codePoints = (s) => Array.from(s);

// [start, end) clamped to 0..n, so a bad offset marks less rather than breaking the page.
// The learned order's score is a sum of named parts: the three largest, all on hover.
function learnedParts(parts) {
  const entries = Object.entries(parts || {});
  if (!entries.length) return "";
  const sign = (v) => (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(3);
  const top = [...entries].sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, 3);
  const all = entries.map(([k, v]) => `${k} ${sign(v)}`).join("\n");
  return ` <span class="parts" title="${esc(all)}">(learned: ${top.map(([k, v]) => `${esc(k)} ${sign(v)}`).join(", ")})</span>`;
}

function span(start, end, n) {
  const a = Number.isInteger(start) ? Math.min(Math.max(start, 0), n) : 0;
  const b = Number.isInteger(end) ? Math.min(Math.max(end, a), n) : a;
  return [a, b];
}

// Thrown for anything the reader should see; its message is already in words for them.
class PageError extends Error {}

function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => (d && d.msg) || JSON.stringify(d)).join("; ");
  return detail == null ? "" : JSON.stringify(detail);
}

// Retry-After is either seconds or an HTTP date.
function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return +value.trim();
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

function httpMessage(resp, body) {
  const detail = detailText(body && body.detail);
  const wait = retryAfterSeconds(resp.headers.get("Retry-After"));
  if (resp.status === 429) return `提问太频繁，请 ${wait === null ? 1 : wait} 秒后再试`;
  if (resp.status === 401) {
    showKeyBox();
    return apiKey ? "访问密钥不对：请在页面上方重新填写" : "这个服务需要访问密钥：请在页面上方填写后再提问";
  }
  if (resp.status === 503 && wait !== null) {
    return `服务正忙，请 ${wait} 秒后重试` + (detail ? `（${detail}）` : "");
  }
  if (resp.status === 503) return `服务暂时不可用` + (detail ? `：${detail}` : "");
  return (detail || "请求失败") + `（HTTP ${resp.status}）`;
}

// The API key, when the server asks for one (QA_API_KEYS): kept like the admin token, in this
// tab only (a variable mirrored in sessionStorage), and sent as X-API-Key, so it never mixes
// with the admin token's Authorization header.
const KEY_KEY = "qa.apiKey";
let apiKey = (() => { try { return sessionStorage.getItem(KEY_KEY) || ""; } catch (e) { return ""; } })();

function storeKey(value) {
  apiKey = value;
  try {
    if (value) sessionStorage.setItem(KEY_KEY, value); else sessionStorage.removeItem(KEY_KEY);
  } catch (e) { /* storage disabled: the variable still holds it for this page */ }
}

function showKeyBox() { $("#key-box").classList.remove("hidden"); }

// fetch + JSON that keeps the three failures apart: no connection, an HTTP error with the
// API's detail, and a 2xx whose body is not JSON.
async function api(url, options) {
  let resp;
  const sent = { ...(options || {}) };
  if (apiKey) sent.headers = { ...(sent.headers || {}), "X-API-Key": apiKey };
  try {
    resp = await fetch(url, sent);
  } catch (e) {
    throw new PageError("无法连接到服务");
  }
  if (resp.status === 204) return null;  // done, nothing to say (DELETE /kbs/{kb})
  let body = null;
  try { body = await resp.json(); } catch (e) { /* an empty or non-JSON body: judged below */ }
  if (!resp.ok) throw new PageError(httpMessage(resp, body));
  if (body === null) throw new PageError(`服务返回了无法读取的内容（HTTP ${resp.status}）`);
  return body;
}

// Wrap highlight spans (code-point offsets into the passage text) in <mark>; sentence marks contain term marks.
function marked(text, highlights) {
  const chars = codePoints(text);
  const kinds = chars.map(() => new Set());
  for (const h of highlights) {
    const [a, b] = span(h.text_start, h.text_end, chars.length);
    for (let i = a; i < b; i++) kinds[i].add(h.kind);
  }
  let out = "", i = 0;
  while (i < chars.length) {
    const inSentence = kinds[i].has("sentence");
    let j = i; let chunk = "";
    while (j < chars.length && kinds[j].has("sentence") === inSentence) {
      let k = j; const term = kinds[j].has("term");
      while (k < chars.length && kinds[k].has("sentence") === inSentence && kinds[k].has("term") === term) k++;
      const piece = esc(chars.slice(j, k).join(""));
      chunk += term ? `<mark class="term">${piece}</mark>` : piece;
      j = k;
    }
    out += inSentence ? `<mark class="sentence">${chunk}</mark>` : chunk;
    i = j;
  }
  return out.replace(/\n/g, "<br>");
}

// The knowledge base the page asks: ?kb=NAME in the address, so a link reproduces a question;
// "*" asks every one this page may read at once. "default" is the server's own, at the root URLs.
const ALL = "*";
let currentKb = new URLSearchParams(location.search).get("kb") || "default";
let readableKbs = ["default"];
function kbPath(path, kb = currentKb) {
  return kb === "default" || kb === ALL ? path : `/kbs/${encodeURIComponent(kb)}${path}`;
}

function docLink(docId, start, end, kb = currentKb) {
  const where = kb && kb !== "default" && kb !== ALL ? `#/kb/${encodeURIComponent(kb)}` : "#";
  return `${where}/doc/${encodeURIComponent(docId)}/${start}/${end}`;
}

// "第 3 页" or "第 3–4 页" for a span of a paged document (PDF); "" when it has no pages.
function pageLabel(item) {
  const pages = (Array.isArray(item.pages) ? item.pages : []).filter(Number.isInteger);
  if (!pages.length && Number.isInteger(item.page)) pages.push(item.page);
  if (!pages.length) return "";
  const first = Math.min(...pages), last = Math.max(...pages);
  return first === last ? `第 ${first} 页` : `第 ${first}–${last} 页`;
}

// "表 2“办理时间”第 3 行" for a span in a table (Word, HTML, spreadsheets); "" outside tables.
function tableLabel(item) {
  const t = item.table;
  if (!t || !Number.isInteger(t.number)) return "";
  const rows = t.first_row === t.last_row ? `第 ${t.first_row} 行` : `第 ${t.first_row}–${t.last_row} 行`;
  return `表 ${t.number}${t.name ? `“${esc(t.name)}”` : ""} ${rows}`;
}

// A short answer is shown (above its sentence, and marked in it) only when the service is
// confident it is right (span.shown: its calibrated probability reached the threshold);
// otherwise the sentence is the answer.
function spanShown(a, chars) {
  return a.span && a.span.shown && !(a.span.text_start === 0 && a.span.text_end === chars.length);
}

function shortAnswer(a) {
  if (!spanShown(a, codePoints(a.text))) return "";
  return `<div class="short" id="answer-span">${esc(a.span.text)}</div>`;
}

// The answer sentence with the short answer marked; offsets are code points, like Python's.
function withSpan(a) {
  const chars = codePoints(a.text);
  if (!spanShown(a, chars)) return esc(a.text);
  const [s, e] = [a.span.text_start, a.span.text_end];
  return esc(chars.slice(0, s).join("")) + `<mark class="span" id="answer-span-mark">${esc(chars.slice(s, e).join(""))}</mark>` +
    esc(chars.slice(e).join(""));
}

// How sure the service is, in words a reader can act on; the numbers stay under 细节.
// Only a short answer has a calibrated chance of being right (span.probability, 1 for a fact
// the document states about itself); an answer sentence is the closest evidence, to be checked.
function assurance(a) {
  if (spanShown(a, codePoints(a.text))) {
    if (a.source === "document") return "把握较大：答案取自文档自身的信息（标题、作者、来源）";
    return `把握较大：这个短答案约有 ${Math.round(a.span.probability * 100)}% 的可能正确`;
  }
  return "请核对：这是原文中与问题最相关的一句，未能确定更短的答案";
}

// Scores and their parts, folded away: they explain the order, they are not the answer.
function details(inner) {
  return `<details class="details"><summary>细节</summary><div class="scores">${inner}</div></details>`;
}

function renderResult(r) {
  let html = "";
  const confidence = `置信度 ${r.confidence.toFixed(3)}（拒答阈值以下即不作答）`;
  if (r.answerable && r.answer) {
    const a = r.answer;
    const page = pageLabel(a), table = tableLabel(a);
    const p = a.span && a.span.probability !== null && a.span.probability !== undefined
      ? ` · 短答案「${esc(a.span.text)}」正确的估计概率 ${a.span.probability.toFixed(2)}` : "";
    html += `<div class="card answer" id="answer">${shortAnswer(a)}<div class="text" id="answer-text">${withSpan(a)}<a class="citation" id="answer-citation" href="${docLink(a.doc_id, a.start, a.end, a.kb)}" title="查看原文${page ? `（${page}）` : ""}">[1]</a></div>
      <div class="meta">出处：《${esc(a.title)}》 ${esc(a.section || "正文开头")}${page ? ` · <span class="page" id="answer-page">${page}</span>` : ""}${table ? ` · <span class="page" id="answer-table">${table}</span>` : ""} · 字符 ${a.start}–${a.end}</div>
      <div class="assurance" id="assurance">${esc(assurance(a))}</div>${details(confidence + p)}</div>`;
  } else {
    // The service's reason is English for API clients; a reader of this page gets it in Chinese, the detail on hover.
    const why = r.missing ? `${esc(r.missing)}。` : "没有段落足够好地回答这个问题。";
    html += `<div class="card noanswer" id="no-answer"><strong>未找到答案。</strong> <span class="meta" id="no-answer-why" title="${esc(r.reason)}">${why}</span><div class="meta">以下是最接近的段落，仅供参考。</div>${details(confidence)}</div>`;
  }
  r.passages.forEach((p, n) => {
    const s = p.scores;
    const page = pageLabel(p), table = tableLabel(p);
    html += `<div class="card passage-card" data-id="${esc(p.id)}">
      <div class="section">[${n + 1}] ${esc(p.section || "正文开头")}${page ? ` <span class="page">${page}</span>` : ""}${table ? ` <span class="page table">${table}</span>` : ""}</div>
      <div class="passage-text">${marked(p.text, p.highlights)}</div>
      <div class="meta"><a href="${docLink(p.doc_id, p.start, p.end, p.kb)}">原文 ${esc(p.doc_id)} ${p.start}–${p.end}</a> · ${esc(p.id)}${currentKb === ALL ? ` · <span class="kb-name">${esc(p.kb)}</span>` : ""}</div>
      ${details(`score ${p.score.toFixed(3)}${learnedParts(p.parts)} · dense ${s.dense.toFixed(3)} (#${s.dense_rank}) · bm25 ${s.bm25.toFixed(2)} (#${s.bm25_rank}) · sentence ${s.sentence.toFixed(3)} · blend ${s.blend.toFixed(3)}`)}
    </div>`;
  });
  html += `<p class="meta">用时 ${r.timings_ms.total.toFixed(0)} ms</p>`;
  $("#results").innerHTML = html;
}

function showError(message) {
  $("#results").innerHTML = `<div class="card error" id="error">出错了：${esc(message)}</div>`;
}

// A failure of the page itself (a bug, or a response of an unexpected shape) is reported
// as such, never as a connection problem: the service did answer.
function pageFailure(what, e) {
  if (!(e instanceof PageError)) console.error(e);
  return e instanceof PageError ? e.message : `${what}（${e && e.message ? e.message : e}）`;
}

async function ask(question) {
  const button = $("#ask-button");
  button.disabled = true;
  try {
    const asked = { question, top_k: 5, ...(currentKb === ALL ? { kbs: readableKbs } : {}) };
    const body = await api(kbPath("/ask"), { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(asked) });
    renderResult(body);
  } catch (e) {
    showError(pageFailure("页面无法显示服务返回的结果", e));
  } finally {
    button.disabled = false;
  }
}

const KINDS = { markdown: "Markdown", text: "纯文本", pdf: "PDF", docx: "Word", html: "HTML", png: "PNG 图片", jpeg: "JPEG 图片", tiff: "TIFF 图片", xlsx: "Excel", csv: "CSV" };
const kindName = (kind) => KINDS[kind] || kind || "未知";

// The document's text with the cited span [a, b) in <mark id="cited"> and an empty marker
// element where each page starts. The marker's label "第 N 页" is drawn by CSS from its
// data-label, so the <pre>'s text stays exactly the document's: every offset still holds.
function documentHtml(chars, a, b, pageStarts) {
  const n = chars.length;
  const pageAt = new Map();
  (pageStarts || []).forEach((at, i) => {
    if (Number.isInteger(at) && at >= 0 && at <= n && !pageAt.has(at)) pageAt.set(at, i + 1);
  });
  const cuts = [...new Set([0, a, b, n, ...pageAt.keys()])].sort((x, y) => x - y);
  let html = "";
  cuts.forEach((at, k) => {
    if (at === b && a !== b) html += "</mark>";
    if (pageAt.has(at)) html += `<span class="page-break" data-page="${pageAt.get(at)}" data-label="第 ${pageAt.get(at)} 页"></span>`;
    if (at === a) html += `<mark class="cited" id="cited">` + (a === b ? "</mark>" : "");
    if (k + 1 < cuts.length) html += esc(chars.slice(at, cuts[k + 1]).join(""));
  });
  return html;
}

// Pictures of the pages a citation stands on, its characters boxed (PDFs and pictures, whose
// characters the index placed on their pages). Fetched, not linked, so the API key goes
// with them; the object URLs are let go when the next document is shown.
let pictureUrls = [];
const MAX_PICTURED_PAGES = 4;

async function pictureUrl(url) {
  let resp;
  try {
    resp = await fetch(url, apiKey ? { headers: { "X-API-Key": apiKey } } : {});
  } catch (e) {
    throw new PageError("无法连接到服务");
  }
  if (!resp.ok) {
    let body = null;
    try { body = await resp.json(); } catch (e) { /* judged by its status */ }
    throw new PageError(httpMessage(resp, body));
  }
  const made = URL.createObjectURL(await resp.blob());
  pictureUrls.push(made);
  return made;
}

// One page's picture with a box over each cited line; positions are fractions of the page,
// set through the style object (the page's CSP allows no style attribute).
function pagePicture(url, number, boxes) {
  const figure = document.createElement("figure");
  figure.className = "page-picture";
  figure.dataset.page = String(number);
  const frame = document.createElement("div");
  frame.className = "frame";
  const img = document.createElement("img");
  img.alt = `原件第 ${number} 页`;
  img.src = url;
  frame.append(img);
  for (const b of boxes) {
    const box = document.createElement("div");
    box.className = "box";
    Object.assign(box.style, { left: `${b.x0 * 100}%`, top: `${b.y0 * 100}%`,
                               width: `${(b.x1 - b.x0) * 100}%`, height: `${(b.y1 - b.y0) * 100}%` });
    frame.append(box);
  }
  const caption = document.createElement("figcaption");
  caption.className = "meta";
  caption.textContent = `原件第 ${number} 页，框出的是引文`;
  figure.append(frame, caption);
  return figure;
}

async function showPictures(aside, docId, a, b, kb) {
  const base = kbPath(`/documents/${encodeURIComponent(docId)}`, kb);
  try {
    const boxes = await api(`${base}/boxes?start=${a}&end=${b}`);
    const pages = [...new Set(boxes.map((x) => x.page))].slice(0, MAX_PICTURED_PAGES);
    for (const n of pages) {
      const url = await pictureUrl(`${base}/pages/${n}.png`);
      const figure = pagePicture(url, n, boxes.filter((x) => x.page === n));
      aside.append(figure);
      if (n === pages[0]) {  // once drawn, the first boxed line a third of the way down the pictures' column
        figure.querySelector("img").addEventListener("load", () => {
          const box = figure.querySelector(".box");
          if (box) aside.scrollTop += box.getBoundingClientRect().top - aside.getBoundingClientRect().top - aside.clientHeight / 3;
        }, { once: true });
      }
    }
  } catch (e) {
    const note = document.createElement("p");
    note.className = "meta warn";
    note.id = "picture-error";
    note.textContent = `无法显示原件页面：${pageFailure("页面无法显示原件", e)}`;
    aside.append(note);
  }
}

async function showDocument(docId, start, end, kb) {
  const view = $("#doc-view");
  let shown;
  try {
    const doc = await api(kbPath(`/documents/${encodeURIComponent(docId)}`, kb));
    const chars = codePoints(doc.text);
    const [a, b] = span(start, end, chars.length);
    const pageList = (xs) => (xs || []).map((n) => `第 ${n} 页`).join("、");
    const about = [kindName(doc.kind), doc.pages ? `${doc.pages} 页` : "", `${chars.length} 字`,
      (doc.ocr_pages || []).length ? `文字识别（OCR）：${pageList(doc.ocr_pages)}` : ""].filter(Boolean).join(" · ");
    const doubtful = (doc.low_confidence_pages || []).length
      ? `<p class="meta warn" id="low-confidence">${esc(pageList(doc.low_confidence_pages))}识别置信度低，引文请对照原件核实。</p>` : "";
    const pictured = doc.page_images && b > a;
    pictureUrls.forEach((u) => URL.revokeObjectURL(u));
    pictureUrls = [];
    view.innerHTML = `<a class="back" href="#">← 返回结果</a><h2>${esc(doc.title)}</h2>
      <p class="meta">${esc(about)}</p>${doubtful}<div class="doc-body${pictured ? " pictured" : ""}">
      <pre>${documentHtml(chars, a, b, doc.page_starts)}</pre>${pictured ? `<aside id="page-pictures"></aside>` : ""}</div>`;
    shown = pictured && showPictures($("#page-pictures"), docId, a, b, kb);
  } catch (e) {
    showError(pageFailure(`无法显示文档 ${docId}`, e));
    return;
  }
  view.classList.remove("hidden");
  document.body.classList.add("reading");
  $("#results").classList.add("hidden");
  $("#cited").scrollIntoView({ block: "center" });
  await shown;
}

function route() {
  const m = location.hash.match(/^#(?:\/kb\/([^/]+))?\/doc\/([^/]+)\/(\d+)\/(\d+)$/);
  if (m) { showDocument(decodeURIComponent(m[2]), +m[3], +m[4], m[1] ? decodeURIComponent(m[1]) : "default"); return; }
  $("#doc-view").classList.add("hidden");
  document.body.classList.remove("reading");
  $("#results").classList.remove("hidden");
}

// maxlength would count UTF-16 units and cut a question of 𠀀-like characters short; count as the API does.
$("#question").addEventListener("input", (e) => {
  const n = codePoints(e.target.value).length;
  e.target.setCustomValidity(n > MAX_QUESTION ? `问题最多 ${MAX_QUESTION} 个字（现在 ${n} 个）` : "");
});

$("#ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("#question").value.trim();
  if (!q) { showError("请输入问题"); return; }
  if (location.hash) history.pushState(null, "", location.pathname + location.search);
  route();
  ask(q);
});
window.addEventListener("hashchange", route);
$("#api-key").addEventListener("input", (e) => storeKey(e.target.value.trim()));
$("#api-key").addEventListener("change", () => loadHealth());  // a key may read other knowledge bases
$("#api-key").value = apiKey;
if (apiKey) showKeyBox();
function loadHealth() {
  return Promise.all([api("/health"), loadKbs()]).then(([h, kbs]) => {
    const kb = kbs.find((k) => k.name === currentKb);
    const [documents, passages] = kb ? [kb.documents, kb.passages] : currentKb === ALL
      ? [kbs.reduce((n, k) => n + k.documents, 0), kbs.reduce((n, k) => n + k.passages, 0)] : [h.documents, h.passages];
    $("#index-info").textContent = `${documents} 篇文档 · ${passages} 个段落 · 模型 ${h.model}`;
  }).catch((e) => { $("#index-info").textContent = `服务未就绪：${pageFailure("无法读取服务状态", e)}`; });
}

// The knowledge bases this page may read, into the selector; the one chosen stays in the address.
async function loadKbs() {
  let kbs = [];
  try {  // quietly: without a key yet the page shows the default alone (asking is what asks for a key)
    const resp = await fetch("/kbs", { headers: apiKey ? { "X-API-Key": apiKey } : {} });
    if (resp.ok) kbs = await resp.json();
  } catch (e) { /* no connection: /health says so */ }
  readableKbs = kbs.length ? kbs.map((k) => k.name) : ["default"];
  if (currentKb !== ALL && !readableKbs.includes(currentKb)) currentKb = readableKbs[0] || "default";
  const options = (kbs.length ? kbs : [{ name: "default", title: "默认知识库" }])
    .map((k) => `<option value="${esc(k.name)}">${esc(k.title)}（${esc(k.name)}）</option>`);
  if (kbs.length > 1) options.push(`<option value="${ALL}">全部知识库</option>`);
  $("#kb-select").innerHTML = options.join("");
  $("#kb-select").value = currentKb;
  return kbs;
}

function chooseKb(kb) {
  currentKb = kb;
  const query = kb === "default" ? "" : `?kb=${encodeURIComponent(kb)}`;
  history.pushState(null, "", location.pathname + query);
  $("#results").innerHTML = "";
  route();
  loadHealth();
  document.dispatchEvent(new Event("kbchange"));
}
$("#kb-select").addEventListener("change", (e) => chooseKb(e.target.value));
window.addEventListener("popstate", () => {
  const kb = new URLSearchParams(location.search).get("kb") || "default";
  if (kb !== currentKb) { currentKb = kb; $("#kb-select").value = kb; loadHealth(); document.dispatchEvent(new Event("kbchange")); }
});
loadHealth();
route();

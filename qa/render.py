"""Results as the API's JSON shape and as terminal text."""
from __future__ import annotations

import json

from qa.types import Answer, Hit, Result

_BOLD, _YELLOW, _CYAN, _DIM, _RESET = "\033[1m", "\033[33m", "\033[36m", "\033[2m", "\033[0m"


def index_info(service) -> dict:
    info = service.info()
    return {"model": info.model, "built_at": info.built_at, "build_id": info.build_id, "passages": info.passages}


def hit_json(hit: Hit) -> dict:
    out = cited_json(hit)
    out["id"] = out.pop("passage_id")
    return out


def cited_json(cited: Hit | Answer) -> dict:
    """A hit or answer as JSON, with ``page``: the first page it lies on (None when unpaged).

    Field by field rather than ``dataclasses.asdict``, which copies deeply and took 0.3 ms of
    each /ask (the values are immutable: frozen dataclasses, tuples, and dicts nobody changes)."""
    out = dict(vars(cited))
    if "highlights" in out:
        out["highlights"] = [vars(h) for h in out["highlights"]]
    if out.get("span") is not None:
        out["span"] = vars(out["span"])
    if out.get("table") is not None:
        out["table"] = vars(out["table"])
    out["page"] = cited.pages[0] if cited.pages else None
    return out


def result_json(result: Result, service=None, kb: str = "default", kbs: tuple[str, ...] | None = None) -> dict:
    """The API's answer to a question (``index`` names the version ``service`` serves): each passage
    and the answer name their knowledge base, ``kb`` (the one that answered), or ``kbs[i]`` for
    passage i of a question asked of several (qa/federation.py)."""
    answer = cited_json(result.answer) if result.answer else None
    if answer is not None:
        answer["kb"] = kb
    passages = [hit_json(h) for h in result.hits]
    for i, p in enumerate(passages):
        p["kb"] = kbs[i] if kbs is not None else kb
    return {
        "question": result.question,
        "answerable": result.answerable,
        "reason": result.reason,
        "confidence": result.confidence,
        "question_type": result.question_type,
        "missing": result.missing,
        "refusal": result.refusal,
        "answer": answer,
        "passages": passages,
        "timings_ms": result.timings_ms,
        "index": index_info(service) if service is not None else None,
    }


def result_bytes(result: Result, service=None, kb: str = "default", kbs: tuple[str, ...] | None = None) -> bytes:
    """``result_json`` written as the API sends it (compact UTF-8, as Starlette's JSONResponse)."""
    return json.dumps(result_json(result, service, kb, kbs), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode()


def _marked(hit: dict) -> str:
    """The passage text with its evidence sentence in bold and matched terms in yellow."""
    out = []
    for i, ch in enumerate(hit["text"]):
        kinds = {h["kind"] for h in hit["highlights"] if h["text_start"] <= i < h["text_end"]}
        style = (_BOLD if "sentence" in kinds else "") + (_YELLOW if "term" in kinds else "")
        out.append(f"{style}{ch}{_RESET}" if style else ch)
    return "".join(out)


def _short(answer: dict) -> dict | None:
    """The short answer to show inside the answer sentence: one likely right, and not the whole sentence."""
    span = answer.get("span")
    if span is None or not span["shown"] or (span["text_start"], span["text_end"]) == (0, len(answer["text"])):
        return None
    return span


def _with_span(answer: dict, color: bool) -> str:
    """The answer text with its short answer in yellow (in brackets without colour)."""
    span, text = _short(answer), answer["text"]
    if span is None:
        return text
    a, b = span["text_start"], span["text_end"]
    mark = (lambda s: f"{_YELLOW}{s}{_RESET}{_BOLD}") if color else (lambda s: f"【{s}】")
    return text[:a] + mark(text[a:b]) + text[b:]


def page_label(pages) -> str:
    """" 第 3 页" or " 第 3–4 页" for a paged document, nothing otherwise."""
    if not pages:
        return ""
    return f" 第 {pages[0]} 页" if len(pages) == 1 else f" 第 {pages[0]}–{pages[-1]} 页"


def table_label(table: dict | None) -> str:
    """" 表 2“办理时间”第 3 行" (or 第 3–4 行) for a span in a table, nothing otherwise."""
    if not table:
        return ""
    name = f"“{table['name']}”" if table["name"] else ""
    first, last = table["first_row"], table["last_row"]
    return f" 表 {table['number']}{name} 第 {first} 行" if first == last else f" 表 {table['number']}{name} 第 {first}–{last} 行"


def render_result(result: Result, color: bool = False) -> str:
    return render_json(result_json(result), color)


def render_json(body: dict, color: bool = False) -> str:
    """An answer in the API's JSON shape (``result_json``, or a server's) as terminal text."""
    c = (lambda code, s: f"{code}{s}{_RESET}") if color else (lambda code, s: s)
    lines = [c(_BOLD, f"问：{body['question']}")]
    a = body.get("answer")
    if a:
        short = _short(a)
        if short:
            lines.append(c(_BOLD, f"答：{short['text']}"))
        lines += [c(_BOLD, f"{'原文' if short else '答'}：{_with_span(a, color)}"),
                  c(_CYAN, f"    出处：《{a['title']}》 {a['section'] or '（正文开头）'}{page_label(a['pages'])}"
                           f"{table_label(a.get('table'))}  "
                           f"[{a['doc_id']} {a['start']}:{a['end']}] {a['passage_id']}")]
    else:
        lines.append(c(_YELLOW, f"未找到答案：{body.get('missing') or body['reason']}"))
    lines.append("")
    for n, hit in enumerate(body["passages"], 1):
        s = hit["scores"]
        lines.append(c(_CYAN, f"[{n}] {hit['section'] or '（正文开头）'}{page_label(hit['pages'])}"
                              f"{table_label(hit.get('table'))}  "
                              f"[{hit['doc_id']} {hit['start']}:{hit['end']}] {hit['id']}"))
        lines.append(c(_DIM, f"    score {hit['score']:.3f}  dense {s['dense']:.3f} (#{s['dense_rank']})  "
                             f"bm25 {s['bm25']:.2f} (#{s['bm25_rank']})  sentence {s['sentence']:.3f}  blend {s['blend']:.3f}"))
        if hit.get("parts"):  # the learned order: its score's largest parts
            top = sorted(hit["parts"].items(), key=lambda kv: -abs(kv[1]))[:4]
            lines.append(c(_DIM, "    learned: " + "  ".join(f"{k} {v:+.3f}" for k, v in top)))
        text = _marked(hit) if color else hit["text"]
        lines.append("    " + text.replace("\n", "\n    "))
    t = body["timings_ms"]
    lines.append(c(_DIM, "timings ms: " + ", ".join(f"{k} {v:.1f}" for k, v in t.items())))
    return "\n".join(lines)

"""Eval reports: a terminal table (Markdown), one self-contained HTML page with its charts,
and a PNG of the main chart for the docs (the only matplotlib user)."""
from __future__ import annotations

import html
import io
from pathlib import Path

from eval.metrics import KS

COLUMNS = [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10"]


def table(report: dict) -> str:
    """The side-by-side retriever table as Markdown (also readable in a terminal)."""
    lines = [
        f"dataset {report['dataset']}" + (f" ({report['style']} style)" if report.get("style", "asked") != "asked" else "")
        + f": {report['questions']} questions ({report['unanswerable']} unanswerable"
        + (f"; {report['outside_passages']} answered from outside any passage, left out of retrieval figures"
           if report.get("outside_passages") else "")
        + f"), index of {report['index']['passages']} passages",
        "",
        "| retriever | " + " | ".join(COLUMNS) + " | answer_accuracy |",
        "|---|" + "---:|" * (len(COLUMNS) + 1),
    ]
    for name, m in report["retrievers"].items():
        acc = f"{m['answer_accuracy']:.3f}" if "answer_accuracy" in m else ""
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.3f}" for c in COLUMNS) + f" | {acc} |")
    na, lat, pipe = report["no_answer"], report["latency_ms"], report["retrievers"]["pipeline"]
    lines += [
        "",
        f"short answer: span_exact_match {pipe['span_exact_match']:.3f}, span_f1 {pipe['span_f1']:.3f} "
        f"(whole sentence {pipe['sentence_f1']:.3f}); where the top passage holds the answer "
        f"({pipe['top_passage_questions']} questions): span_f1 {pipe['span_f1_top_passage']:.3f} "
        f"(whole sentence {pipe['sentence_f1_top_passage']:.3f}); doc_recall@1 {pipe['doc_recall@1']:.3f}",
        f"short answers shown as the answer: coverage {pipe['span_coverage']:.3f} "
        f"({pipe['shown_short_answers']} questions), wrong-short-answer rate {pipe['wrong_short_answer_rate']:.3f}",
        f"no answer: precision {na['precision']:.3f}, recall {na['recall']:.3f}, "
        f"false refusal rate {na['false_refusal_rate']:.3f} (threshold {report['calibration']['threshold']}, "
        f"suggested {report['calibration']['suggested_threshold']})",
        f"latency per question: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms",
    ]
    chars = report["index"].get("passage_chars", {})
    if "p10" in chars:
        lines.append("passage lengths: " + " / ".join(f"{chars[k]:g}" for k in ("min", "p10", "median", "p90", "max"))
                     + f" chars (min / p10 / median / p90 / max); {chars['short']:g} whole sections and "
                     f"{chars['fragments']:g} fragments under {report['index'].get('min_chars', 0)} chars")
    if len(report.get("by_tag", {})) > 1 or "untagged" not in report.get("by_tag", {"untagged": 0}):
        lines += ["", "| tag | questions | recall@1 | recall@5 | answer_accuracy |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {tag} | {m['questions']} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['answer_accuracy']:.3f} |"
                  for tag, m in report["by_tag"].items()]
    if report.get("no_answer_by_tag"):
        lines += ["", "| unanswerable tag | questions | refused |", "|---|---:|---:|"]
        lines += [f"| {tag} | {m['questions']} | {m['refused']:.3f} |" for tag, m in report["no_answer_by_tag"].items()]
    if report.get("by_type"):
        lines += ["", _type_table(report)]
    return "\n".join(lines)


def _type_table(report: dict) -> str:
    lines = ["| question type | questions | recall@1 | answer_accuracy | span_exact_match | span_f1 | span_coverage "
             "| wrong_short_answer_rate |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for qtype, m in report["by_type"].items():
        lines.append(f"| {qtype} | {m['questions']} | {m['recall@1']:.3f} | {m['answer_accuracy']:.3f} | "
                     f"{m['span_exact_match']:.3f} | {m['span_f1']:.3f} | {m['span_coverage']:.3f} | "
                     f"{m['wrong_short_answer_rate']:.3f} |")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text in the page: sharp, searchable, the reader's fonts
    plt.rcParams["svg.hashsalt"] = "qa-eval"  # the same report makes the same page (ids are not random)
    return plt


def _recall_figure(report: dict):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, m in report["retrievers"].items():
        ax.plot(KS, [m[f"recall@{k}"] for k in KS], marker="o", label=name, linewidth=2.4 if name == "pipeline" else 1.4)
    ax.set(xlabel="k (passages returned)", ylabel="recall@k", title="Recall@k by retriever", xticks=list(KS))
    ax.set_ylim(min(0.5, ax.get_ylim()[0]), 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _bars_figure(rows: dict, title: str, series: tuple[tuple[str, str], ...]):
    """Horizontal bars, one group a row: long labels read on the left instead of colliding below."""
    plt = _pyplot()
    names = list(rows)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.42 * len(names) * len(series) / 1.6))
    height = 0.8 / len(series)
    for n, (key, label) in enumerate(series):
        ys = [i + (n - (len(series) - 1) / 2) * height for i in range(len(names))]
        ax.barh(ys, [rows[t].get(key, 0) for t in names], height=height, label=label)
    ax.set_yticks(range(len(names)), [f"{t} ({rows[t]['questions']})" for t in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _svg(fig) -> str:
    plt = _pyplot()
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})  # no timestamp: the same report, the same page
    plt.close(fig)
    text = out.getvalue()
    return text[text.find("<svg"):]


def chart(report: dict, path: Path) -> Path:
    """The recall@k chart as a PNG, for the docs."""
    fig = _recall_figure(report)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


PAGE_STYLE = """body{font:15px/1.6 -apple-system,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
color:#1f2328;max-width:1000px;margin:0 auto;padding:24px 16px 64px}h1{font-size:22px}h2{font-size:18px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}th,td{border-bottom:1px solid #d0d7de;padding:4px 10px;
text-align:right}th:first-child,td:first-child{text-align:left}th{color:#656d76;font-weight:normal}
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{max-width:100%;height:auto}.meta{color:#656d76;font-size:13px}
.miss{border-left:3px solid #d0d7de;padding:2px 12px;margin:10px 0}.miss .q{font-weight:600}"""


def _table(head: list[str], rows: list[list]) -> str:
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows) + "</table>")


def page(report: dict) -> str:
    """The whole report as one HTML page: charts inline (SVG), no script, nothing fetched."""
    e = html.escape
    pipe, na, cal = report["retrievers"]["pipeline"], report["no_answer"], report["calibration"]
    charts = [_svg(_recall_figure(report))]
    if report.get("by_type"):
        charts.append(_svg(_bars_figure(report["by_type"], "Pipeline by question type",
                                        (("answer_accuracy", "answer accuracy"), ("span_f1", "short-answer F1")))))
    if len(report.get("by_tag", {})) > 1:
        charts.append(_svg(_bars_figure(report["by_tag"], "Pipeline by tag",
                                        (("recall@1", "recall@1"), ("answer_accuracy", "answer accuracy")))))
    parts = [
        f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>Evaluation — {e(report['dataset'])}</title>"
        f"<style>{PAGE_STYLE}</style></head><body>",
        f"<h1>Evaluation — {e(report['dataset'])}</h1>",
        f"<p class=\"meta\">{report['questions']} questions, {report['unanswerable']} of them unanswerable; index of "
        f"{report['index']['passages']} passages, model {e(report['index']['model'])}.</p>",
        "<h2>Retrievers</h2>",
        _table(["retriever", *COLUMNS, "answer_accuracy"],
               [[name, *(m[c] for c in COLUMNS), m.get("answer_accuracy", "")] for name, m in report["retrievers"].items()]),
        f"<p>Short answer: exact match {pipe['span_exact_match']:.3f}, F1 {pipe['span_f1']:.3f} (the whole answer "
        f"sentence: {pipe['sentence_f1']:.3f}). Shown as the answer for {pipe.get('shown_short_answers', 0)} questions, "
        f"wrong in {pipe.get('wrong_short_answer_rate', 0):.3f} of them.</p>",
        f"<p>No answer: precision {na['precision']:.3f}, recall {na['recall']:.3f}, false refusals "
        f"{na['false_refusal_rate']:.3f} at threshold {cal['threshold']} (the cut with the best balanced accuracy on "
        f"this set: {cal['suggested_threshold']}).</p>",
        "<div class=\"charts\">" + "".join(charts) + "</div>",
    ]
    if report.get("by_type"):
        parts += ["<h2>By question type</h2>", _table(
            ["type", "questions", "recall@1", "answer_accuracy", "span_exact_match", "span_f1"],
            [[t, m["questions"], m["recall@1"], m["answer_accuracy"], m["span_exact_match"], m["span_f1"]]
             for t, m in report["by_type"].items()])]
    if report.get("by_tag"):
        parts += ["<h2>By tag</h2>", _table(["tag", "questions", "recall@1", "recall@5", "mrr@10", "answer_accuracy"],
                                            [[t, m["questions"], m["recall@1"], m["recall@5"], m["mrr@10"],
                                              m["answer_accuracy"]] for t, m in report["by_tag"].items()])]
    if report.get("no_answer_by_tag"):
        parts += ["<h2>Unanswerable questions by tag</h2>", _table(
            ["tag", "questions", "refused"], [[t, m["questions"], m["refused"]] for t, m in report["no_answer_by_tag"].items()])]
    parts.append(f"<h2>Missed questions ({len(report['misses'])})</h2>")
    for m in report["misses"]:
        got = e(m["returned_answer"]) if m["returned_answerable"] else "（拒答 refused）"
        short = f" · short answer: {e(m['returned_span'])}" if m.get("returned_span") else ""
        parts.append(
            f"<div class=\"miss\"><div class=\"q\">{e(m['id'])} · {e(m['question'])}</div>"
            f"<div>expected: {e(m['expected'])} <span class=\"meta\">(relevant: {e(', '.join(m['relevant']) or '—')})</span></div>"
            f"<div>returned: {got}{short}</div>"
            f"<div class=\"meta\">cited: {e(m['returned'] or '—')} · {e(m.get('returned_section') or '')} · "
            f"confidence {m['confidence']}</div></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: dict, folder: Path) -> Path:
    """``<dataset>.html`` (the report) and ``<dataset>.png`` (its main chart, for the docs) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(report["dataset"]).stem
    chart(report, folder / f"{stem}.png")
    out = folder / f"{stem}.html"
    out.write_text(page(report), encoding="utf-8")
    return out

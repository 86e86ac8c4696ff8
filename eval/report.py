"""Eval reports: a terminal table, Markdown, and a PNG chart (the only matplotlib user)."""
from __future__ import annotations

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


def _tag_table(report: dict) -> str:
    lines = ["| tag | questions | recall@1 | recall@5 | mrr@10 | answer_accuracy |", "|---|---:|---:|---:|---:|---:|"]
    for tag, m in report["by_tag"].items():
        lines.append(f"| {tag} | {m['questions']} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['mrr@10']:.3f} | {m['answer_accuracy']:.3f} |")
    return "\n".join(lines)


def _type_table(report: dict) -> str:
    lines = ["| question type | questions | recall@1 | answer_accuracy | span_exact_match | span_f1 | span_coverage "
             "| wrong_short_answer_rate |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for qtype, m in report["by_type"].items():
        lines.append(f"| {qtype} | {m['questions']} | {m['recall@1']:.3f} | {m['answer_accuracy']:.3f} | "
                     f"{m['span_exact_match']:.3f} | {m['span_f1']:.3f} | {m['span_coverage']:.3f} | "
                     f"{m['wrong_short_answer_rate']:.3f} |")
    return "\n".join(lines)


def chart(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, m in report["retrievers"].items():
        left.plot(KS, [m[f"recall@{k}"] for k in KS], marker="o", label=name)
    left.set(xlabel="k", ylabel="recall@k (hit rate)", title=f"Recall@k — {report['dataset']}", xticks=list(KS))
    left.set_ylim(min(0.5, left.get_ylim()[0]), 1.01)
    left.grid(alpha=0.3)
    left.legend()
    tags = list(report["by_tag"])
    if tags:
        x = range(len(tags))
        r1 = [report["by_tag"][t]["recall@1"] for t in tags]
        acc = [report["by_tag"][t]["answer_accuracy"] for t in tags]
        right.bar([i - 0.2 for i in x], r1, width=0.4, label="pipeline recall@1")
        right.bar([i + 0.2 for i in x], acc, width=0.4, label="answer accuracy")
        right.set_xticks(list(x), [f"{t}\n({report['by_tag'][t]['questions']})" for t in tags], fontsize=8)
        right.set_ylim(0, 1.05)
        right.set_title("Pipeline by question tag")
        right.legend(loc="lower right")
    else:
        right.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(report: dict, chart_name: str) -> str:
    parts = [f"# Retrieval evaluation — {report['dataset']}", "", table(report), "", f"![recall and tags]({chart_name})", ""]
    if report["by_tag"]:
        parts += ["## By tag (pipeline)", "", _tag_table(report), ""]
    parts += ["## By question type (pipeline)", "", _type_table(report), ""]
    cal = report["calibration"]
    parts += [
        "## No-answer calibration", "",
        f"Threshold in use {cal['threshold']}; the cut that maximises balanced accuracy on this set is "
        f"{cal['suggested_threshold']}. Answerable confidence p5 {cal['answerable_confidence_p5']}, "
        f"unanswerable p95 {cal['unanswerable_confidence_p95']}.", "",
        f"## Missed questions ({len(report['misses'])})", "",
    ]
    if not report["misses"]:
        parts.append("None.")
    for m in report["misses"]:
        got = m["returned_answer"] if m["returned_answerable"] else "(refused)"
        parts += [
            f"- **{m['id']}** {m['question']}",
            f"  - expected: {m['expected']} (relevant: {', '.join(m['relevant']) or '—'})",
            f"  - returned: {m['returned']} · {m['returned_section'] or ''} · confidence {m['confidence']}",
            f"  - answer: {got}" + (f" · short answer: {m['returned_span']}" if m.get("returned_span") else ""),
        ]
    return "\n".join(parts) + "\n"


def write_report(report: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(report["dataset"]).stem
    png = chart(report, folder / f"{stem}.png")
    md = folder / f"{stem}.md"
    md.write_text(markdown(report, png.name), encoding="utf-8")
    return md

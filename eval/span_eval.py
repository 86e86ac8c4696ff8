"""Short answers measured without retrieval: the gold sentence in, the span out, CMRC EM/F1.

For each question of a SQuAD-format file the sentence of its context that holds the
gold answer's start is handed to ``short_answer``; the span it picks is scored
against the gold answers next to the whole sentence (the baseline it must beat).

    .venv/bin/python -m eval.span_eval ../shared/data/cmrc2018_trial.json ../shared/data/drcd_test.json
    .venv/bin/python -m eval.span_eval eval/data/questions.jsonl      # the labelled set, once, to report

CMRC 2018's articles are split in two: the first half ("dev") is where the rules were
developed and the learned weights trained; the second half ("held-out") and all of
DRCD were only measured.  For the labelled set the sentence is the article's sentence
holding the question's evidence (where its answer lies in it), the gold its answer.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from corpus.documents import DEFAULT_CORPUS
from corpus.sentences import split_sentences
from corpus.text import emphasis_positions, squash
from eval.dataset import DEFAULT_DATASET, Squashed, load_jsonl
from eval.metrics import cmrc_em, cmrc_f1
from qa.span import question_type, short_answer

PARTS = ("all", "dev", "held-out")
Predict = Callable[[str, str], tuple[int, int]]


@dataclass(frozen=True)
class SpanItem:
    question: str
    sentence: str
    golds: tuple[str, ...]
    article: int  # index of the article in its file: the dev/held-out split is by article


def answer_sentence(context: str, start: int) -> str | None:
    """The sentence of ``context`` holding offset ``start`` (the next one when it falls between)."""
    for s, e in split_sentences(context):
        if start < e:
            return context[s:e]
    return None


def load_items(path: Path) -> list[SpanItem]:
    """Questions of a SQuAD-format file with the sentence that holds their first answer."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    items = []
    for a, article in enumerate(data):
        for para in article.get("paragraphs", []):
            context = para.get("context", "")
            for qa in para.get("qas", []):
                answers = [x for x in qa.get("answers", []) if x.get("text")]
                if not answers or not qa.get("question", "").strip():
                    continue
                first = answers[0]
                start = int(first.get("answer_start", -1))
                if context[start : start + len(first["text"])] != first["text"]:
                    start = context.find(first["text"])
                sentence = answer_sentence(context, start) if start >= 0 else None
                if sentence:
                    golds = tuple(dict.fromkeys(x["text"] for x in answers))
                    items.append(SpanItem(qa["question"].strip(), sentence, golds, a))
    return items


def labelled_items(dataset: Path = DEFAULT_DATASET, document: Path = DEFAULT_CORPUS / "article.md") -> list[SpanItem]:
    """Answerable labelled questions with the document sentence that holds their evidence."""
    text = Path(document).read_text(encoding="utf-8")
    squashed, emphasis = Squashed(text), emphasis_positions(text)
    sentences = split_sentences(text)
    items = []
    for q in load_jsonl(Path(dataset)):
        if not q.answerable:
            continue
        sentence = q.evidence
        hits = squashed.find_all(q.evidence)
        if hits:
            s, e = hits[0]
            at = squashed.text.find(squash(q.answer), s, e)
            pos = squashed.to_original[at if at >= 0 else s]
            ss, se = next(((a, b) for a, b in sentences if a <= pos < b), (0, 0))
            sentence = "".join(ch for i, ch in enumerate(text[ss:se], ss) if i not in emphasis) or q.evidence
        items.append(SpanItem(q.question, sentence, (q.answer,), 0))
    return items


def evaluate_labelled(dataset: Path = DEFAULT_DATASET, limit: int | None = None, predict: Predict = short_answer) -> dict:
    """Span and whole-sentence EM/F1 on the labelled set (the reported set: never tune on it)."""
    items = labelled_items(dataset)
    return {"file": Path(dataset).name, "part": "all"} | score(items[:limit] if limit else items, predict)


def select(items: list[SpanItem], part: str = "all", limit: int | None = None) -> list[SpanItem]:
    """``dev`` is the first half of the articles, ``held-out`` the second half."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    if part != "all":
        half = (max((i.article for i in items), default=-1) + 1) // 2
        items = [i for i in items if (i.article < half) == (part == "dev")]
    return items[:limit] if limit is not None else items


def score(items: Iterable[SpanItem], predict: Predict = short_answer) -> dict:
    """EM/F1 of the predicted span and of the whole sentence, overall and per question type."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for item in items:
        start, end = predict(item.question, item.sentence)
        span = item.sentence[start:end]
        for key in ("all", question_type(item.question)):
            row = sums[key]
            row["questions"] += 1
            row["span_em"] += cmrc_em(span, item.golds)
            row["span_f1"] += cmrc_f1(span, item.golds)
            row["sentence_em"] += cmrc_em(item.sentence, item.golds)
            row["sentence_f1"] += cmrc_f1(item.sentence, item.golds)
            row["span_chars"] += len(span)
    table = {}
    for key, row in sums.items():
        n = row.pop("questions")
        table[key] = {"questions": int(n)} | {k: round(v / n, 4) for k, v in row.items()}
    overall = table.pop("all", {"questions": 0})
    return overall | {"by_type": dict(sorted(table.items(), key=lambda kv: -kv[1]["questions"]))}


def evaluate_spans(path: Path, limit: int | None = None, part: str = "all", predict: Predict = short_answer) -> dict:
    """Span and whole-sentence EM/F1 on one SQuAD-format file (or its dev / held-out half)."""
    items = select(load_items(path), part, limit)
    return {"file": Path(path).name, "part": part} | score(items, predict)


def format_table(result: dict) -> str:
    """One block: overall, then each question type, span against the whole sentence."""
    head = f"{result['file']} [{result['part']}]  {result['questions']} questions"
    lines = [head, f"  {'type':<11}{'n':>6}  {'span EM':>8}{'span F1':>9}  {'sent EM':>8}{'sent F1':>9}  {'chars':>6}"]
    rows = [("all", result)] + list(result["by_type"].items())
    for name, r in rows:
        lines.append(
            f"  {name:<11}{r['questions']:>6}  {r['span_em']:>8.3f}{r['span_f1']:>9.3f}"
            f"  {r['sentence_em']:>8.3f}{r['sentence_f1']:>9.3f}  {r['span_chars']:>6.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: python -m eval.span_eval FILE.json [FILE.json ...]\n")
        return 2
    for arg in argv:
        path = Path(arg)
        if path.suffix == ".jsonl":
            sys.stdout.write(format_table(evaluate_labelled(path)) + "\n\n")
            continue
        parts = ("dev", "held-out", "all") if path.name.startswith("cmrc") else ("all",)
        for part in parts:
            sys.stdout.write(format_table(evaluate_spans(path, part=part)) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

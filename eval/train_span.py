"""Fit the short-answer scorer's weights on one public QA file and measure them on others.

The scorer (qa/span.py) is linear over named candidate features; here its weights are
fitted as a conditional logit: for each question a softmax over the sentence's
candidate spans, trained towards the candidates with the best CMRC F1 against the gold
answers (L2-regularised, full-batch Adam, numpy only, deterministic).  It learns from
the questions the scorer answers (number, date, person, place, other) whose gold answer
is short (≤ 12 characters): a short answer is what it is for.

    .venv/bin/python -m eval.train_span            # the shipped weights, with its figures

Only ever train on ../shared/data/ files; never on the labelled article set.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.adam import adam
from eval.metrics import cmrc_f1
from eval.span_eval import SpanItem, load_items, score, select
from qa.span import SCORED_TYPES, WEIGHTS, candidate_features, question_type, rule_weights, short_answer

log = logging.getLogger(__name__)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHECK_QUESTIONS = 300  # the fixed subset tests/test_span.py recomputes


@dataclass
class Problems:
    """Every candidate of every question as one sparse matrix, with its F1 and question."""

    rows: np.ndarray  # candidate of each non-zero feature value
    cols: np.ndarray  # feature of each non-zero
    vals: np.ndarray
    question: np.ndarray  # question of each candidate
    f1: np.ndarray  # CMRC F1 of each candidate against the gold answers
    names: list[str]


def training_items(items: list[SpanItem], max_gold_chars: int = 12) -> list[SpanItem]:
    """The questions the scorer answers, with a short gold answer."""
    return [i for i in items if question_type(i.question) in SCORED_TYPES
            and min(len(g) for g in i.golds) <= max_gold_chars]


def build(items: list[SpanItem]) -> Problems:
    """Candidates, features and F1 of every question of ``items``."""
    index: dict[str, int] = {}
    rows, cols, vals, question, f1 = [], [], [], [], []
    for q, item in enumerate(items):
        for span, feats in candidate_features(item.question, item.sentence):
            c = len(f1)
            for name, value in feats.items():
                rows.append(c)
                cols.append(index.setdefault(name, len(index)))
                vals.append(value)
            question.append(q)
            f1.append(cmrc_f1(item.sentence[span[0] : span[1]], item.golds))
    return Problems(np.array(rows), np.array(cols), np.array(vals, np.float64), np.array(question),
                    np.array(f1), sorted(index, key=index.get))


def fit(data: Problems, l2: float = 1e-2, steps: int = 400, lr: float = 0.05) -> np.ndarray:
    """Weights maximising the log-probability of each question's best-F1 candidates."""
    n_cand, n_feat = len(data.f1), len(data.names)
    n_q = int(data.question.max()) + 1
    best = np.full(n_q, -1.0)
    np.maximum.at(best, data.question, data.f1)
    target = ((data.f1 >= best[data.question] - 1e-9) & (best[data.question] > 0)).astype(np.float64)
    per_q = np.bincount(data.question, target, n_q)
    target /= np.maximum(per_q, 1e-12)[data.question]
    answerable = per_q > 0  # a question no candidate overlaps teaches nothing

    def gradient(w: np.ndarray) -> np.ndarray:
        scores = np.bincount(data.rows, data.vals * w[data.cols], n_cand)
        top = np.full(n_q, -np.inf)
        np.maximum.at(top, data.question, scores)
        p = np.exp(scores - top[data.question])
        p /= np.bincount(data.question, p, n_q)[data.question]
        resid = (p - target) * answerable[data.question]
        return np.bincount(data.cols, resid[data.rows] * data.vals, n_feat) / answerable.sum() + l2 * w

    return adam(gradient, n_feat, steps, lr)


def figures(items: list[SpanItem], weights: dict[str, float]) -> dict:
    """EM/F1 of the span these weights choose, and of the whole sentence."""
    r = score(items, lambda q, s: short_answer(q, s, weights))
    return {"questions": r["questions"], "em": r["span_em"], "f1": r["span_f1"],
            "sentence_em": r["sentence_em"], "sentence_f1": r["sentence_f1"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=SHARED / "cmrc2018_trial.json")
    parser.add_argument("--train-part", default="dev", choices=("all", "dev", "held-out"))
    parser.add_argument("--test", type=Path, action="append",
                        help="file[:part] to measure on (default: cmrc2018_trial.json:held-out and drcd_test.json)")
    parser.add_argument("--max-gold-chars", type=int, default=12)
    parser.add_argument("--l2", type=float, default=1e-2)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tests = [str(t) for t in args.test] if args.test else [
        f"{SHARED / 'cmrc2018_trial.json'}:held-out", str(SHARED / "drcd_test.json")]

    train = training_items(select(load_items(args.train), args.train_part), args.max_gold_chars)
    data = build(train)
    log.info("training on %s [%s]: %d questions, %d candidates, %d features",
             args.train.name, args.train_part, len(train), len(data.f1), len(data.names))
    w = fit(data, l2=args.l2, steps=args.steps)
    weights = {name: round(float(x), 4) for name, x in sorted(zip(data.names, w)) if abs(x) >= 1e-4}

    held_out = {}
    for spec in tests:
        path, _, part = spec.partition(":")
        items = select(load_items(Path(path)), part or "all")
        name = f"{Path(path).name}:{part or 'all'}"
        held_out[name] = {"learned": figures(items, weights), "rules": figures(items, rule_weights()),
                          "check": figures(items[:CHECK_QUESTIONS], weights)}
        log.info("%s: learned F1 %.4f, rules F1 %.4f, whole sentence F1 %.4f", name,
                 held_out[name]["learned"]["f1"], held_out[name]["rules"]["f1"], held_out[name]["learned"]["sentence_f1"])
    payload = {
        "trained_on": {"file": args.train.name, "part": args.train_part, "questions": len(train),
                       "max_gold_chars": args.max_gold_chars, "types": list(SCORED_TYPES)},
        "l2": args.l2, "steps": args.steps, "held_out": held_out, "weights": weights,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

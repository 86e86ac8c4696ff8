"""Fit the short-answer scorer (qa/reading.py): the probability that a candidate span is right.

    .venv/bin/python -m eval.train_short          # the shipped qa/data/short_weights.json

The whole pipeline (retrieval over every CMRC 2018 trial context, the answer sentence,
the reader and the rules) answers the questions of the contexts eval/splits.py sets aside
for calibration, which neither the reader nor anything else trained on; every candidate
becomes one row labelled 1 when its CMRC character F1 against the gold answers is at
least 0.5.  A logistic regression (L2, full-batch Adam, numpy, deterministic) is fitted on
those rows.  It reports its reliability on the ``report`` contexts: of the best candidates
with probability ≥ 0.9, how many were right.

Only ever fitted on ../shared/data/ files; never on regs_dev or the article's labelled set.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from eval.adam import adam
from eval.metrics import cmrc_f1
from eval.splits import CMRC, cmrc_part
from qa.reading import WEIGHTS, best

log = logging.getLogger(__name__)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
L2 = 0.001


def rows(service, questions: list[dict]) -> list[tuple[list[dict], list[float]]]:
    """For each question answered: its candidates' features and their F1 against the golds."""
    out = []
    for q in questions:
        result, traced = service.ask_with_candidates(q["question"])
        if not result.answerable or not traced:
            continue
        passage, cands = traced[-1]
        if cands:
            out.append(([c.features for c in cands],
                        [cmrc_f1(passage.text[c.start:c.end], q["answers"]) for c in cands]))
    return out


def fit(problems, names: list[str], steps: int = 3000) -> dict[str, float]:
    x = [[f[n] for n in names] for feats, _ in problems for f in feats]
    y = [float(v >= 0.5) for _, f1s in problems for v in f1s]
    return logistic(x, y, names, steps)


def logistic(x, y, names: list[str], steps: int = 3000) -> dict[str, float]:
    """Fitted on standardised features (so one L2 weight suits all), returned for raw ones."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    x = np.hstack([(x - mean) / std, np.ones((len(x), 1))])

    def gradient(w):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) / len(y)
        grad[:-1] += 2 * L2 * w[:-1]
        return grad

    w = adam(gradient, x.shape[1], steps=steps, lr=0.05)
    raw = w[:-1] / std
    bias = w[-1] - float(raw @ mean)
    return {n: round(float(v), 5) for n, v in zip(names, raw)} | {"bias": round(float(bias), 5)}


def reliability(problems, weights: dict[str, float], threshold: float = 0.9) -> dict:
    """The chosen candidate's figures: mean F1, and among those at ``threshold`` or more, how many are right."""
    from qa.reading import Candidate

    chosen = []
    for feats, f1s in problems:
        cands = [Candidate(i, i + 1, f, "") for i, f in enumerate(feats)]
        b = best(cands, weights)
        chosen.append((b.probability, f1s[b.start]))
    shown = [f1 for p, f1 in chosen if p >= threshold]
    return {"questions": len(chosen), "span_f1": round(float(np.mean([f for _, f in chosen])), 4),
            "coverage": round(len(shown) / len(chosen), 4),
            "wrong_shown": round(float(np.mean([f < 0.5 for f in shown])), 4) if shown else None,
            "mean_probability": round(float(np.mean([p for p, _ in chosen])), 4),
            "right_rate": round(float(np.mean([f >= 0.5 for _, f in chosen])), 4)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from eval.runner import squad_service
    from qa.settings import ROOT, from_env

    settings, cache = from_env(), ROOT / "var" / "eval-cache"
    if settings.reader == "off":  # the scorer weighs the reader's candidates: fit it with the shipped reader
        settings = settings.with_(reader="trained")
    service, questions = squad_service(SHARED / CMRC, settings, False, cache)
    parts = {part: [q for q in questions if cmrc_part(q["context_index"]) == part] for part in ("calibrate", "report")}
    fitted = rows(service, parts["calibrate"])
    held = rows(service, parts["report"])
    names = sorted(fitted[0][0][0])
    weights = fit(fitted, names)
    figures = {"calibrate": reliability(fitted, weights), "report": reliability(held, weights)}
    log.info("weights %s", weights)
    log.info("figures %s", json.dumps(figures))
    args.out.write_text(json.dumps({
        "what": "logistic P(CMRC F1 >= 0.5) of a short-answer candidate (qa/reading.py)",
        "trained_by": "python -m eval.train_short",
        "data": f"{CMRC}: the questions of the eval.splits 'calibrate' contexts, asked of every context",
        "reader": settings.reader, "l2": L2, "weights": weights, "figures": figures},
        ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()

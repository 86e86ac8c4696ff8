"""The final order of candidate passages: pure functions of their scores.

Two orders exist. ``blend`` is the fixed formula the project started with: passage
cosine and best-sentence score, 1:2. ``learned`` starts from the blend and corrects it
with a linear model over the features below (``FEATURES``), fitted by
``eval/train_rank.py`` on the public sets and shipped as ``qa/data/rank_weights.json``. The learned order is used when the candidates
come from several documents; among one document's passages (a one-document collection,
or a question filtered to one document) the blend stays, because there, in validation on
the labelled training split, the corrections cost a question in 87 (README, "How ranking
works"). A linear model keeps every hit explainable: its score is a sum of named parts
(``Ranker.parts``). The blend stays the confidence the no-answer threshold is calibrated
on, whichever order is used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# blend = (PASSAGE × passage cosine + SENTENCE × best-sentence score) / (PASSAGE + SENTENCE).
# Measured on the labelled set and CMRC 2018 together (README, "How ranking works"):
# 1:2 gave article recall@1 0.936 and CMRC 0.938; RRF or a weighted dense+BM25 sum as the
# final order gave 0.74–0.79 on the article.
PASSAGE_WEIGHT = 1.0
SENTENCE_WEIGHT = 2.0
WEIGHTS = Path(__file__).parent / "data" / "rank_weights.json"

FEATURES = (
    "blend",  # the fixed order itself: the trainer leaves its weight free and shrinks the others
    "dense",  # passage cosine
    "sentence",  # best sentence: cosine + lexical share (the sentence stage)
    "sentence_2",  # second-best sentence (the best again in a one-sentence passage)
    "bm25",  # BM25 over the best candidate's: scores differ by orders of magnitude between queries
    "dense_z",  # cosine as a z-score among the candidates: how far it stands out for this query
    "sentence_z",
    "dense_rank",  # 1 / rank by each retriever alone
    "bm25_rank",
    "bigrams",  # share of the question's character bigrams in the passage (with its header)
    "terms",  # share of the question's words in the passage
    "title",  # share of the question's bigrams in the document title and the passage's section
    "first",  # the document's first passage (where encyclopedic text names its subject)
)
BLEND = FEATURES.index("blend")  # its column


class RankerError(ValueError):
    """The ranking weights file is missing or does not fit this code's features."""


def blend_scores(dense: np.ndarray, best_sentence: np.ndarray) -> np.ndarray:
    """Each candidate's blend of its passage cosine and its best sentence's score."""
    return ((PASSAGE_WEIGHT * dense + SENTENCE_WEIGHT * best_sentence)
            / (PASSAGE_WEIGHT + SENTENCE_WEIGHT)).astype(np.float32)


def best_two(scores: list[np.ndarray], best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's best and second-best sentence score (the best again for one sentence),
    given its sentences' ``scores`` (one or more each) and where the best is."""
    sizes = np.array([len(s) for s in scores])
    flat = np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32)
    if not len(flat):
        return flat, flat
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    top = flat[starts + best]
    rest = flat.copy()
    rest[starts + best] = -np.inf
    second = np.where(sizes > 1, np.maximum.reduceat(rest, starts), top)
    return top, second.astype(np.float32)


def _z(x: np.ndarray) -> np.ndarray | float:
    mean = float(x.mean())
    sd = float(np.sqrt(np.dot(x - mean, x - mean) / len(x)))
    return (x - mean) / sd if sd > 1e-6 else 0.0


def features(dense: np.ndarray, sentence: np.ndarray, sentence_2: np.ndarray, bm25: np.ndarray,
             dense_rank: np.ndarray, bm25_rank: np.ndarray, bigrams: np.ndarray, terms: np.ndarray,
             title: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The candidates' feature matrix, one row each, columns as ``FEATURES``."""
    if not len(dense):
        return np.zeros((0, len(FEATURES)), np.float32)
    top_bm25 = float(bm25.max())
    cols = [blend_scores(dense, sentence), dense, sentence, sentence_2,
            bm25 / top_bm25 if top_bm25 > 0 else 0.0, _z(dense), _z(sentence),
            1.0 / dense_rank, 1.0 / bm25_rank, bigrams, terms, title, first]
    x = np.empty((len(dense), len(FEATURES)), np.float32)
    for j, col in enumerate(cols):
        x[:, j] = col
    return x


@dataclass(frozen=True)
class Ranker:
    """A linear score over standardised features: ``((x − mean) / scale) · weights``."""

    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def scores(self, x: np.ndarray) -> np.ndarray:
        return (((x - self.mean) / self.scale) @ self.weights).astype(np.float32)

    def parts(self, x: np.ndarray) -> dict[str, float]:
        """One candidate's score split into each feature's share (they sum to its score)."""
        share = (x - self.mean) / self.scale * self.weights
        return {name: round(float(v), 4) for name, v in zip(FEATURES, share) if abs(v) >= 5e-5}

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> Ranker:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RankerError(f"cannot read ranking weights {path}: {exc}") from None
        if tuple(data.get("features", ())) != FEATURES:
            raise RankerError(f"{path} was trained on other features; retrain with `python -m eval.train_rank`")
        arr = lambda key: np.asarray(data[key], np.float32)  # noqa: E731
        return cls(arr("weights"), arr("mean"), arr("scale"))


def top(rows: np.ndarray, final: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best candidates, best first; ties go to the earlier passage (lower row)."""
    return np.lexsort((rows, -final))[:k]

"""Candidate passages: dense (FAISS) and keyword (BM25) retrieval, pooled, with a document filter."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from index.store import LoadedIndex
from qa import fusion
from qa.clock import elapsed_ms

# With a document filter, the dense search looks this many times deeper than the
# candidate count before falling back to scoring the document's passages exactly.
FILTER_WIDENING = 20


@dataclass(frozen=True)
class Candidates:
    """The pooled candidates (``rows``) with each retriever's score and rank."""

    rows: np.ndarray
    dense: np.ndarray
    bm25: np.ndarray
    dense_rank: np.ndarray
    bm25_rank: np.ndarray
    fused: np.ndarray  # reciprocal-rank fusion of the two ranks: the `hybrid` column of `qa eval`
    dense_order: np.ndarray  # each retriever's own ranking, for evaluation
    bm25_order: np.ndarray


def candidates(index: LoadedIndex, query: np.ndarray, terms: list[str], allowed: np.ndarray | None,
               count: int, timings: dict[str, float]) -> Candidates:
    """The top ``count`` passages of each retriever (restricted to ``allowed`` rows if given), pooled."""
    t = time.perf_counter()
    dense_rows = _dense(index, query, allowed, count)
    timings["dense"] = elapsed_ms(t)
    t = time.perf_counter()
    bm25_all, bm25_rows = _keyword(index, terms, allowed, count)
    timings["bm25"] = elapsed_ms(t)
    rows = np.union1d(dense_rows[:count], bm25_rows).astype(np.int64)
    dense = index.dense.vectors(rows) @ query if len(rows) else np.zeros(0, np.float32)
    bm25 = np.maximum(bm25_all[rows], 0.0)
    dr, br = fusion.ranks(dense), fusion.ranks(bm25)
    return Candidates(rows, dense.astype(np.float32), bm25, dr, br, fusion.rrf([dr, br]), dense_rows, bm25_rows)


def _dense(index: LoadedIndex, query: np.ndarray, allowed: np.ndarray | None, count: int) -> np.ndarray:
    size = len(index.passages)
    k = count if allowed is None else min(size, count * FILTER_WIDENING)
    _, rows = index.dense.search(query, k)
    if allowed is None:
        return rows
    rows = rows[np.isin(rows, allowed)]
    if len(rows) < min(count, len(allowed)):  # the document ranks low overall: score it exactly
        scores = index.dense.vectors(allowed) @ query
        rows = allowed[np.argsort(-scores, kind="stable")[:count]]
    return rows


def _keyword(index: LoadedIndex, terms: list[str], allowed: np.ndarray | None,
             count: int) -> tuple[np.ndarray, np.ndarray]:
    scores = index.keyword.scores(terms)
    if allowed is not None:
        masked = np.full_like(scores, -1.0)
        masked[allowed] = scores[allowed]
        scores = masked
    top = np.argpartition(-scores, count)[:count] if len(scores) > count else np.arange(len(scores))
    rows = top[np.lexsort((top, -scores[top]))]  # best first, ties by row: deterministic
    return scores, rows[scores[rows] > 0]

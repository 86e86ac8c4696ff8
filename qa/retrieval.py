"""Candidate passages: dense and lexical top-k from the index backend, pooled, with a document filter."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from index.search import SearchIndex
from qa import fusion
from qa.clock import elapsed_ms


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
    sentence_vectors: list[np.ndarray]  # each candidate's sentence vectors, for the sentence stage


def candidates(index: SearchIndex, query: np.ndarray, question: str, terms: list[str], docs: tuple[str, ...] | None,
               count: int, timings: dict[str, float]) -> Candidates:
    """The top ``count`` passages of each retriever (within the documents ``docs`` if given), pooled.

    Only the pooled rows' vectors and lexical scores are read back: the backend may be
    remote, and at 100,000 passages a full score vector is most of a question's work.
    """
    t = time.perf_counter()
    dense_rows = index.dense_top(query, count, docs)
    timings["dense"] = elapsed_ms(t)
    t = time.perf_counter()
    bm25_rows, bm25_top = index.lexical_top(question, terms, count, docs)
    rows = np.union1d(dense_rows, bm25_rows).astype(np.int64)
    bm25 = np.zeros(len(rows), np.float32)
    bm25[np.searchsorted(rows, bm25_rows)] = bm25_top
    missing = ~np.isin(rows, bm25_rows)  # dense-only candidates: their lexical score, if any
    if missing.any():
        bm25[missing] = index.lexical_scores(question, terms, rows[missing])
    bm25 = np.maximum(bm25, 0.0)
    timings["bm25"] = elapsed_ms(t)
    t = time.perf_counter()
    stored = index.vectors(rows)  # one request: the passages' and their sentences' vectors
    timings["rerank"] = elapsed_ms(t)  # the sentence stage's share: its inputs; the service adds the scoring
    dense = stored.passages @ query if len(rows) else np.zeros(0, np.float32)
    dr, br = fusion.ranks(dense), fusion.ranks(bm25)
    return Candidates(rows, dense.astype(np.float32), bm25, dr, br, fusion.rrf([dr, br]), dense_rows, bm25_rows,
                      stored.sentences)

"""The sentence stage: every candidate's sentences scored against the question.

A sentence scores its cosine to the question plus ``lexical_weight`` times the
share of the question's character bigrams it contains: exact figures and
programme names ("2025年", "四防") then decide between sentences the embedding
finds alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from corpus.tokenize import bigrams
from index.encoder import with_header
from index.store import LoadedIndex
from qa import fusion

BIGRAM_CACHE = 100_000  # sentences whose bigrams are kept; ~1 KB each


@dataclass(frozen=True)
class SentenceScores:
    """One passage's sentence scores and its best sentence."""

    best_score: float
    best: int
    scores: np.ndarray


class SentenceStage:
    def __init__(self, index: LoadedIndex, lexical_weight: float) -> None:
        self.index = index
        self.lexical_weight = lexical_weight
        self._bigrams = lru_cache(maxsize=BIGRAM_CACHE)(self._bigrams_uncached)
        self.passage_bigrams = lru_cache(maxsize=BIGRAM_CACHE)(self._passage_bigrams)
        self.title_bigrams = lru_cache(maxsize=BIGRAM_CACHE)(self._title_bigrams)

    def score_all(self, rows: np.ndarray, vectors: list[np.ndarray], query: np.ndarray,
                  grams: frozenset[str]) -> list[SentenceScores]:
        """Scores of each of passages ``rows``' sentences, whose stored ``vectors`` the candidates carry."""
        return [self._score(int(r), v, query, grams) for r, v in zip(rows, vectors)]

    def _score(self, row: int, vectors: np.ndarray, query: np.ndarray, grams: frozenset[str]) -> SentenceScores:
        dense = vectors @ query
        lexical = np.array([fusion.share(grams, self._bigrams(row, k)) for k in range(len(vectors))])
        scores = dense + self.lexical_weight * lexical
        best = int(np.argmax(scores))
        return SentenceScores(float(scores[best]), best, scores)

    def _bigrams_uncached(self, row: int, k: int) -> frozenset[str]:
        """A sentence's character bigrams, with its context header's, as they were embedded."""
        p = self.index.passages[row]
        s, e = p.sentences[k]
        return bigrams(with_header(self.index.header(p.doc_id), p.text[s:e]))

    def _passage_bigrams(self, row: int) -> frozenset[str]:
        """A passage's character bigrams, with its context header's (for the final order's features)."""
        p = self.index.passages[row]
        return bigrams(with_header(self.index.header(p.doc_id), p.indexed_text))

    def _title_bigrams(self, doc_id: str, section: str) -> frozenset[str]:
        """The bigrams of a document's title and one of its sections' headings."""
        return bigrams(f"{self.index.documents[doc_id].title} {section}")

"""BM25 over pre-tokenized text with bm25s (the only module importing it)."""
from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np

logging.getLogger("bm25s").setLevel(logging.WARNING)


class KeywordIndex:
    def __init__(self, retriever: "bm25s.BM25") -> None:
        self._bm25 = retriever

    @classmethod
    def build(cls, token_lists: list[list[str]], k1: float = 1.2, b: float = 0.75) -> "KeywordIndex":
        retriever = bm25s.BM25(k1=k1, b=b)
        # An empty passage (all punctuation) still needs a row; the empty token keeps it.
        retriever.index([tokens or [""] for tokens in token_lists], show_progress=False)
        return cls(retriever)

    @property
    def size(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every passage for the query tokens (zeros when none is known)."""
        ids = self._bm25.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex":
        return cls(bm25s.BM25.load(str(folder), show_progress=False, verbosity=0))

"""What the query path asks of an index backend, drawn from the two there are.

FAISS + bm25s in memory (``index/local.py``) and Milvus, embedded or a server
(``index/milvus.py``), both answer these and nothing more, so the question path never
needs every score or every vector: top-k dense and top-k lexical under an optional
document filter, then the stored vectors (passage and sentences) and lexical scores
of the few pooled candidates (about 30–60 rows) for the sentence stage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Vectors:
    """What the sentence stage needs of a few candidates, read in one request."""

    passages: np.ndarray  # one passage vector per requested row, in order
    sentences: list[np.ndarray]  # each requested passage's sentence vectors


class SearchIndex(Protocol):
    kind: str  # the dense index: "flat" (exact) or "hnsw"
    size: int  # passages

    def dense_top(self, query: np.ndarray, k: int, docs: tuple[str, ...] | None = None) -> np.ndarray:
        """Rows of the ``k`` passages closest to ``query`` (within the documents ``docs`` if given), best first."""

    def lexical_top(self, question: str, terms: list[str], k: int,
                    docs: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the ``k`` best lexical matches with a positive score, best first."""

    def lexical_scores(self, question: str, terms: list[str], rows: np.ndarray) -> np.ndarray:
        """Lexical scores of ``rows`` (0 where nothing matches)."""

    def vectors(self, rows: np.ndarray) -> Vectors:
        """The stored passage and sentence vectors of ``rows``."""

    def close(self) -> None:
        """Release what the index holds open (a connection); a no-op in memory."""

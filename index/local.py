"""The in-process backend: FAISS for dense vectors, bm25s for BM25, sentence vectors in memory."""
from __future__ import annotations

import numpy as np

from index.dense import DenseIndex
from index.keyword import KeywordIndex
from index.search import Vectors

# With a document filter, the dense search looks this many times deeper than k before
# falling back to scoring the document's passages exactly.
FILTER_WIDENING = 20


class LocalIndex:
    """``SearchIndex`` over a loaded index folder (everything in memory)."""

    def __init__(self, dense: DenseIndex, keyword: KeywordIndex, sentences: np.ndarray,
                 sentence_rows: np.ndarray, doc_rows: dict[str, np.ndarray]) -> None:
        self.dense, self.keyword = dense, keyword
        self._sentences, self._sentence_rows, self._doc_rows = sentences, sentence_rows, doc_rows

    @property
    def kind(self) -> str:
        return self.dense.kind

    @property
    def size(self) -> int:
        return self.dense.size

    def _allowed(self, docs: tuple[str, ...] | None) -> np.ndarray | None:
        """The rows of ``docs``, in row order (None: every row)."""
        if docs is None:
            return None
        return self._doc_rows[docs[0]] if len(docs) == 1 else np.sort(np.concatenate([self._doc_rows[d] for d in docs]))

    def dense_top(self, query: np.ndarray, k: int, docs: tuple[str, ...] | None = None) -> np.ndarray:
        allowed = self._allowed(docs)
        depth = k if allowed is None else min(self.size, k * FILTER_WIDENING)
        _, rows = self.dense.search(query, depth)
        if allowed is None:
            return rows[:k]
        rows = rows[np.isin(rows, allowed)]
        if len(rows) < min(k, len(allowed)):  # the document ranks low overall: score it exactly
            scores = self.dense.vectors(allowed) @ query
            rows = allowed[np.argsort(-scores, kind="stable")]
        return rows[:k]

    def lexical_top(self, question: str, terms: list[str], k: int,
                    docs: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        # BM25 scores every passage holding a query term; bm25s does that over its postings.
        scores = self.keyword.scores(terms)
        if docs is not None:
            masked = np.full_like(scores, -1.0)
            allowed = self._allowed(docs)
            masked[allowed] = scores[allowed]
            scores = masked
        top = np.argpartition(-scores, k)[:k] if len(scores) > k else np.arange(len(scores))
        rows = top[np.lexsort((top, -scores[top]))]  # best first, ties by row: deterministic
        rows = rows[scores[rows] > 0]
        return rows, scores[rows]

    def lexical_scores(self, question: str, terms: list[str], rows: np.ndarray) -> np.ndarray:
        return self.keyword.scores_of(terms, rows)

    def vectors(self, rows: np.ndarray) -> Vectors:
        bounds = self._sentence_rows
        passages = self.dense.vectors(rows) if len(rows) else np.zeros((0, self.dense.dim), np.float32)
        return Vectors(passages, [self._sentences[bounds[r]:bounds[r + 1]] for r in rows])

    def all_sentences(self) -> np.ndarray:
        """Every sentence vector, in passage order (for writing the folder)."""
        return self._sentences

    def close(self) -> None:
        pass

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
        self._sorted: bool | None = None  # are postings in passage order? (checked on first use)

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

    def scores_of(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        """BM25 scores of ``rows`` only, read from the query terms' postings.

        Adds each term's stored score in the order bm25s does, in float32, so the values
        equal ``scores(tokens)[rows]`` bit for bit (tests/test_index_store.py checks it).
        """
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        index = self._bm25.scores
        data, indices, indptr = index["data"], index["indices"], index["indptr"]
        for token in self._bm25.get_tokens_ids(tokens):
            lo, hi = indptr[token], indptr[token + 1]
            if lo == hi:
                continue
            docs = indices[lo:hi]
            # postings are in passage order (bm25s builds them so; _sorted_postings checks once):
            # a binary search per candidate, not a sort of a posting list 100,000 long
            order = None if self._sorted_postings() else np.argsort(docs, kind="stable")
            pos = np.minimum(np.searchsorted(docs, rows, sorter=order), hi - lo - 1)
            pos = pos if order is None else order[pos]
            found = docs[pos] == rows
            out[found] += data[lo:hi][pos[found]]
        return out

    def _sorted_postings(self) -> bool:
        if self._sorted is None:
            index = self._bm25.scores
            indices, indptr = index["indices"], index["indptr"]
            rising = np.diff(indices.astype(np.int64)) > 0
            starts = indptr[1:-1]
            rising[starts[(starts > 0) & (starts < len(indices))] - 1] = True  # a new token's list may start lower
            self._sorted = bool(rising.all())
        return self._sorted

    def sparse_rows(self) -> tuple[dict[str, int], list[dict[int, float]]]:
        """(token → id, each passage's {token id: BM25 weight}): a passage's score is the sum over the query's tokens.

        What a sparse-vector engine (Milvus) needs to reproduce these scores by inner product.
        """
        index = self._bm25.scores
        data, indices, indptr = index["data"], index["indices"], index["indptr"]
        tokens = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        order = np.argsort(indices, kind="stable")  # postings by passage instead of by token
        docs, tokens, values = indices[order], tokens[order], data[order]
        bounds = np.searchsorted(docs, np.arange(self.size + 1))
        empty = self._bm25.vocab_dict.get("")  # only keeps an empty passage's row
        rows = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            row = dict(zip(tokens[lo:hi].tolist(), values[lo:hi].tolist()))
            row.pop(empty, None)
            rows.append(row)
        vocab = {t: int(i) for t, i in self._bm25.vocab_dict.items() if t}
        return vocab, rows

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex":
        return cls(bm25s.BM25.load(str(folder), show_progress=False, verbosity=0))

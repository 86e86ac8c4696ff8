"""Dense vectors in FAISS (the only module importing faiss).

Flat inner product over L2-normalised vectors is exact cosine search; past
``hnsw_from`` vectors an HNSW graph keeps queries fast at some cost in recall.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

HNSW_FROM = 200_000  # exact search stays under ~20 ms per query up to here (qa bench --scale 100000: 15 ms)
HNSW_M = 32
# Twice faiss's default efConstruction (40) for a better graph at a one-off build cost;
# tests/test_index_store.py checks the graph's top-10 against exact search.
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH_MIN = 64


def ef_search(k: int) -> int:
    """Graph breadth for a top-k search: at least twice k, never below the floor."""
    return max(HNSW_EF_SEARCH_MIN, 2 * k)


class DenseIndex:
    def __init__(self, index: "faiss.Index") -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, hnsw_from: int = HNSW_FROM) -> "DenseIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        if len(vectors) >= hnsw_from:
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        else:
            index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return cls(index)

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self._index, faiss.IndexHNSW) else "flat"

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, row ids) for one query vector, best first."""
        k = min(k, self.size)
        params = None
        if isinstance(self._index, faiss.IndexHNSW):
            # Per call, never on the shared index: questions with different k search at once
            # from the server's threads, and a breadth set by one applied to another's search.
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef_search(k)
        scores, ids = self._index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of rows ``ids`` (for exact scores of any candidate)."""
        return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> "DenseIndex":
        return cls(faiss.read_index(str(path)))

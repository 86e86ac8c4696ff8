"""The in-process backend: FAISS for dense vectors, bm25s for BM25, sentence vectors in memory."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.backend import Batch, Layout
from index.dense import HNSW_FROM, DenseIndex
from index.keyword import KeywordIndex
from index.manifest import REBUILD, IndexStoreError, Manifest
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

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Saved:
    dense: DenseIndex
    keyword: KeywordIndex
    sentence_vectors: np.ndarray
    collections: dict[str, str] = field(default_factory=dict)

    @property
    def dense_kind(self) -> str:
        return self.dense.kind

    def save(self, folder: Path) -> None:
        self.dense.save(folder / "dense.faiss")
        np.save(folder / "sentences.npy", self.sentence_vectors.astype(np.float16))
        self.keyword.save(folder / "bm25")


class FaissBackend:
    """Everything in the version's folder: a FAISS index, a bm25s index, the sentence vectors."""

    name = "faiss"
    files = ("dense.faiss", "sentences.npy", "bm25")

    def check(self, target: Path, manifest: Manifest) -> None:
        if manifest.backend != self.name:
            raise IndexStoreError(f"index at {target} keeps its vectors in Milvus; set QA_BACKEND=milvus "
                                  f"(and QA_MILVUS_URI) to use it, or {REBUILD}")

    def build(self, target: Path, build_id: str, batch: Batch, hnsw_from: int = HNSW_FROM) -> Saved:
        return Saved(DenseIndex.build(batch.vectors, hnsw_from=hnsw_from), KeywordIndex.build(batch.tokens),
                     batch.sentence_vectors)

    def change(self, target: Path, current, kept: np.ndarray, gone: np.ndarray, added: Batch,
               tokens: list[list[str]]) -> Saved:
        """FAISS and bm25s rebuild from the stored vectors: nothing is embedded again."""
        stored = current.search.vectors(kept)
        sentences = [*stored.sentences, added.sentence_vectors]
        vectors = np.concatenate([stored.passages, added.vectors])
        return Saved(DenseIndex.build(vectors), KeywordIndex.build(tokens), np.concatenate(sentences))

    def open(self, folder: Path, manifest: Manifest, layout: Layout) -> LocalIndex:
        dense = DenseIndex.load(folder / "dense.faiss")
        keyword = KeywordIndex.load(folder / "bm25")
        sentence_vectors = np.load(folder / "sentences.npy").astype(np.float32)
        size, dim = len(layout.sentence_counts), manifest.model.dim
        if dense.size != size or keyword.size != size or len(sentence_vectors) != layout.sentence_rows[-1] \
                or dense.dim != dim or sentence_vectors.shape[1] != dim:
            raise IndexStoreError(f"index at {folder} is inconsistent (counts or dimensions differ); {REBUILD}")
        return LocalIndex(dense, keyword, sentence_vectors, layout.sentence_rows, layout.doc_rows)

    def published(self, target: Path, manifest: Manifest) -> None:
        pass  # old versions' files go with their folders

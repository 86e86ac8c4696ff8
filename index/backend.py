"""How an index version's vectors and lexical index are kept: one protocol, two backends.

The store (``index/store.py``) owns the folder every version has: the manifest, the
documents, the passages and their tokens.  A backend owns the rest: ``build`` writes a
whole version's vectors and lexical index, ``change`` one that carries the published
version's rows over and adds or retires a few documents' rows, ``open`` reads a published
version back as a ``SearchIndex``, and what ``build`` and ``change`` return saves its own
files into the folder (``Saved.save``).  FAISS + bm25s keep everything in the folder
(``index/local.py``); Milvus keeps the rows in a collection and the folder says which of
them a version reads (``index/milvus_backend.py``).  txtai's ANN backends draw the same
line: the index object builds, appends, deletes, loads and saves itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from corpus.passages import Passage
from index.manifest import Manifest
from index.search import SearchIndex

if TYPE_CHECKING:
    from index.store import LoadedIndex


@dataclass(frozen=True)
class Batch:
    """Passages with everything a backend stores of them, in row order."""

    passages: list[Passage]
    vectors: np.ndarray  # one row per passage
    sentence_vectors: np.ndarray  # one row per sentence of those passages, in order
    tokens: list[list[str]]  # BM25 tokens per passage
    texts: list[str]  # what each passage was tokenized as (Milvus's own BM25 tokenizes it again)


@dataclass(frozen=True)
class Layout:
    """Where each document's passages lie among a version's rows, and each passage's sentences."""

    doc_rows: dict[str, np.ndarray]  # a document's passage rows, in order
    sentence_counts: np.ndarray  # sentences per passage row
    sentence_rows: np.ndarray  # passage row r's sentences are rows [sentence_rows[r], sentence_rows[r + 1])

    @classmethod
    def of(cls, doc_ids, passages) -> Layout:
        """The layout of ``passages`` (in row order) over the documents ``doc_ids``."""
        rows: dict[str, list[int]] = {d: [] for d in doc_ids}
        for row, p in enumerate(passages):
            rows[p.doc_id].append(row)
        counts = np.array([len(p.sentences) for p in passages], dtype=np.int64)
        return cls({d: np.array(r, dtype=np.int64) for d, r in rows.items()}, counts,
                   np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    def rows_of(self, doc_ids) -> np.ndarray:
        """The passage rows of ``doc_ids``, document by document."""
        parts = [self.doc_rows[d] for d in doc_ids]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


class Saved(Protocol):
    """A written version's backend share, ready to go into its folder."""

    dense_kind: str  # "flat" or "hnsw"
    collections: dict[str, str]  # where its rows live outside the folder ({} when nowhere)

    def save(self, folder: Path) -> None:
        """Write this backend's files into the version's folder (before it is published)."""


class Backend(Protocol):
    name: str  # the manifest's ``backend``
    files: tuple[str, ...]  # what ``Saved.save`` writes, checked at load

    def check(self, target: Path, manifest: Manifest) -> None:
        """Raise IndexStoreError when the folder at ``target`` was not written for this backend."""

    def build(self, target: Path, build_id: str, batch: Batch, hnsw_from: int) -> Saved:
        """A whole new version of ``batch``."""

    def change(self, target: Path, current: LoadedIndex, kept: np.ndarray, gone: np.ndarray, added: Batch,
               tokens: list[list[str]]) -> Saved | None:
        """A version of ``current``'s ``kept`` rows followed by ``added``; ``gone`` are the rows it
        drops and ``tokens`` the new version's tokens (kept, then added).  None where the backend
        cannot carry the rows over and the version must be built whole."""

    def open(self, folder: Path, manifest: Manifest, layout: Layout) -> SearchIndex:
        """The published version in ``folder``, to search; raises IndexStoreError when inconsistent."""

    def published(self, target: Path, manifest: Manifest) -> None:
        """``manifest``'s version is now the one readers open: let go of what no kept version reads."""

"""The Milvus backend: each version reads its rows of a collection, written as a whole or as a change.

A build creates a collection (its lineage) and inserts every passage, born in the new
version.  A change writes into the published version's collection only the added
documents' rows and marks the rows of the documents it replaces or removes as dead
from the new version on; the carried-over passages are not touched, so a one-document
change costs that document's rows whatever the size of the index.  Either way the rows
are flushed and visible before the store publishes the folder that names them, and
what no kept version can see any more is deleted after (``published``).  A version's
folder keeps ``milvus.json`` (which rows it reads, and the lexical statistics its queries
weigh terms by) and ``keys.npy`` (each passage's primary key in the collection).
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index import bm25, milvus
from index.backend import Batch, Layout
from index.dense import HNSW_FROM
from index.manifest import REBUILD, IndexStoreError, Manifest, versions
from index.milvus_search import MilvusIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    """What the folder of the new version records about its rows."""

    rows: milvus.Rows
    keys: np.ndarray  # primary key of each passage, in the folder's passage order
    collections: dict[str, str]
    dense_kind: str
    inserted: int  # rows sent to Milvus
    retired: int  # rows marked dead

    def save(self, folder: Path) -> None:
        (folder / "milvus.json").write_text(json.dumps(self.rows.to_dict(), ensure_ascii=False), encoding="utf-8")
        np.save(folder / "keys.npy", np.asarray(self.keys, dtype=np.int64))


def _lexical(tokens: list[list[str]], vocab: dict[str, int]) -> tuple[dict[str, int], tuple[int, ...], float]:
    """(vocab grown by any new token, document frequency per id, mean BM25 length) over ``tokens``."""
    vocab = dict(vocab)
    df: list[int] = [0] * len(vocab)
    for passage in tokens:
        for t in set(passage):
            if t not in vocab:  # new ids at the end: a stored row's ids never change meaning
                vocab[t] = len(vocab)
                df.append(0)
            df[vocab[t]] += 1
    return vocab, tuple(df), float(np.mean([bm25.length(t) for t in tokens]))


def _new_rows(config: milvus.MilvusConfig, batch: Batch, vocab: dict[str, int], avgdl: float) -> milvus.NewRows:
    ours = config.lexical == "ours"
    return milvus.NewRows(
        [p.doc_id for p in batch.passages], batch.vectors, batch.sentence_vectors,
        np.concatenate([[0], np.cumsum([len(p.sentences) for p in batch.passages])]).astype(np.int64),
        [bm25.weights(t, vocab, avgdl) for t in batch.tokens] if ours else [], batch.texts,
        [bm25.length(t) for t in batch.tokens])


class MilvusBackend:
    """Rows in a Milvus collection (embedded Milvus Lite or a server); the folder names which a version reads."""

    name = "milvus"
    files = ("milvus.json", "keys.npy")

    def __init__(self, config: milvus.MilvusConfig) -> None:
        self.config = config

    def check(self, target: Path, manifest: Manifest) -> None:
        if manifest.backend != self.name:
            raise IndexStoreError(f"index at {target} was built for FAISS but QA_BACKEND=milvus; "
                                  "rebuild it with `QA_BACKEND=milvus qa build`, or unset QA_BACKEND")
        if "vocab.json" in manifest.files:
            raise IndexStoreError(f"index at {target} was written with one Milvus collection per version, before "
                                  f"versioned rows; {REBUILD}")

    def build(self, target: Path, build_id: str, batch: Batch, hnsw_from: int = HNSW_FROM) -> Saved:
        """A new collection holding every passage, born in the version after the one published now."""
        config = self.config
        dense_kind = "hnsw" if len(batch.vectors) >= hnsw_from else "flat"
        version = _published_version(target) + 1
        vocab, df, avgdl = _lexical(batch.tokens, {})
        names = milvus.collection_names(config, target, build_id)
        name = names["passages"]
        with _translated():
            milvus.create(config, name, batch.vectors.shape[1], dense_kind)
            n = milvus.insert(config, name, _new_rows(config, batch, vocab, avgdl), 0, version)
            milvus.seal(config, name, version, version, n, 0, full=True)
        rows = milvus.Rows(version, n, config.lexical, avgdl, avgdl, vocab, df)
        return Saved(rows, np.arange(n, dtype=np.int64), names, dense_kind, n, 0)

    def change(self, target: Path, current, kept: np.ndarray, gone: np.ndarray, added: Batch,
               tokens: list[list[str]]) -> Saved | None:
        """Add ``added`` to the published version's collection and retire ``gone``; None where the
        new version needs a collection of its own.

        It does when the collection's dense index or lexical field would differ from what a
        build of the new version asks for, and with Milvus's own BM25 (``jieba``): Milvus
        Lite scores a row by the statistics of the segment it landed in, and a one-document
        segment scored the new document 2.1 where a fresh build scored it 37.5 for the same
        question ("住房公积金缴存比例", tests/test_milvus.py's documents), ranking it below
        the article.
        """
        config = self.config
        state, keys = _state(current.folder)
        kind = "hnsw" if len(kept) + len(added.passages) >= HNSW_FROM else "flat"
        if config.lexical != "ours" or state.lexical != config.lexical or kind != current.manifest.dense_kind:
            return None
        name = current.manifest.collections["passages"]
        born = state.version + 1
        vocab, df, avgdl = _lexical(tokens, state.vocab)
        with _translated():
            milvus.repair(config, name, state.version)  # a writer killed after this version may have left rows
            new = _new_rows(config, added, vocab, state.stored_avgdl)
            inserted = milvus.insert(config, name, new, state.next_key, born) if added.passages else 0
            retired = milvus.mark_dead(config, name, keys[gone], born)
            milvus.seal(config, name, born, born, inserted, retired, full=False)
        keys = np.concatenate([keys[kept], np.arange(state.next_key, state.next_key + inserted)])
        rows = milvus.Rows(born, state.next_key + inserted, state.lexical, state.stored_avgdl, avgdl, vocab, df)
        log.info("%s: version %d inserted %d rows, retired %d", name, born, inserted, retired)
        return Saved(rows, keys.astype(np.int64), current.manifest.collections, kind, inserted, retired)

    def open(self, folder: Path, manifest: Manifest, layout: Layout) -> MilvusIndex:
        state, keys = _state(folder)
        if len(keys) != len(layout.sentence_counts) or len(np.unique(keys)) != len(keys):
            raise IndexStoreError(f"index at {folder} is inconsistent (passage keys differ); {REBUILD}")
        with _translated():
            return MilvusIndex(self.config, manifest.collections, state, keys, layout.doc_rows,
                               layout.sentence_counts, manifest.dense_kind, manifest.model.dim)

    def published(self, target: Path, manifest: Manifest) -> None:
        """Delete rows and collections no kept version reads (the store keeps the newest few folders).

        Rows are retired only in the collection just written: an older lineage's collection
        may not even be loaded in this process, and is dropped whole once no kept version
        names it.  A failure is only logged: the version is published, and the next change
        tidies again.
        """
        name = manifest.collections["passages"]
        try:
            kept = kept_rows(target)
            milvus.drop_stale(self.config, target, {n for n, _ in kept})
            mine = [v for n, v in kept if n == name]
            if mine:
                milvus.retire(self.config, name, min(mine))
        except milvus.MilvusError as exc:
            log.warning("published %s, but: %s", manifest.build_id, exc)


@contextmanager
def _translated():
    """Milvus's failures reach the caller as the store's (IndexStoreError), with the message kept."""
    try:
        yield
    except milvus.MilvusError as exc:
        raise IndexStoreError(str(exc)) from None


def _state(folder: Path) -> tuple[milvus.Rows, np.ndarray]:
    """(the rows a version reads, each passage's primary key) from its folder."""
    return (milvus.Rows.from_dict(json.loads((folder / "milvus.json").read_text(encoding="utf-8"))),
            np.load(folder / "keys.npy"))


def kept_rows(target: Path) -> list[tuple[str, int]]:
    """(collection, row version) of each Milvus version on disk: what its rows must stay visible to."""
    kept = []
    for path in versions(target):
        try:
            name = json.loads((path / "manifest.json").read_text(encoding="utf-8"))["collections"]["passages"]
            version = json.loads((path / "milvus.json").read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a FAISS version, or one being removed
        kept.append((name, int(version)))
    return kept


def _published_version(target: Path) -> int:
    try:
        return max((v for _, v in kept_rows(target)), default=0)
    except OSError:
        return 0

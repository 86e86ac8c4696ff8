"""The index folder: one place that reads and writes it, with a manifest that describes it.

Layout: ``manifest.json``, ``documents.jsonl``, ``passages.jsonl``, ``tokens.jsonl``
and the backend's own files (``index/backend.py``): for FAISS ``dense.faiss``,
``sentences.npy`` and ``bm25/``; for Milvus ``milvus.json`` and ``keys.npy``, the
vectors living in the collection the manifest names.  The manifest records the format,
the model, the splitter settings, the corpus hashes, counts, library versions and a
sha256 of every file, so a truncated or corrupted file is caught at load.  A build is
written to a fresh folder and published by atomically replacing a symlink, so
a crash mid-build leaves the previous index untouched.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from corpus.boxes import LineBox
from corpus.tables import TableSpan
from corpus.documents import Document
from corpus.facts import Fact
from corpus.passages import Passage, SplitSettings
from index import milvus
from index.backend import Backend, Layout, Saved
from index.local import FaissBackend
from index.manifest import (REBUILD, FormatMismatch, IndexStoreError, Manifest, read_manifest,  # noqa: F401 (re-exported)
                            versions)
from index.milvus_backend import MilvusBackend
from index.search import SearchIndex

log = logging.getLogger(__name__)

KEEP_VERSIONS = 3  # the current version and two before it stay on disk


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    path: str
    title: str
    author: str
    sections: tuple[str, ...]
    sha256: str
    text: str
    kind: str = "markdown"
    pages: tuple[int, ...] = ()  # where each page starts in ``text`` (paged formats)
    meta: tuple[tuple[str, str], ...] = ()  # file properties: title, author, …
    added_at: str = ""  # when this content was indexed (kept while the document is unchanged)
    facts: tuple[Fact, ...] = ()  # the document's own title, author, source… with their offsets
    genre: str = "report"  # how its structure was read: report, law or faq (corpus.structure)
    ocr_pages: tuple[int, ...] = ()  # pages whose text OCR read
    low_confidence_pages: tuple[int, ...] = ()  # those of them read with low confidence
    boxes: tuple[LineBox, ...] = ()  # where its lines lie on its pages (corpus.boxes)
    tables: tuple[TableSpan, ...] = ()  # where its tables' rows lie in ``text`` (corpus.tables)

    def as_document(self) -> Document:
        """The source document as it was read, to parse and embed again."""
        return Document(self.doc_id, self.path, self.text, self.sha256, kind=self.kind, pages=self.pages,
                        meta=self.meta, ocr_pages=self.ocr_pages, low_confidence_pages=self.low_confidence_pages,
                        boxes=self.boxes, tables=self.tables)


@dataclass(frozen=True)
class Part:
    """One document's share of an index: everything a new version needs without embedding it again."""

    record: DocumentRecord
    passages: tuple[Passage, ...]
    vectors: np.ndarray  # one row per passage
    sentence_vectors: np.ndarray  # one row per sentence of those passages, in order
    tokens: tuple[tuple[str, ...], ...]  # BM25 tokens per passage


@dataclass(frozen=True)
class LoadedIndex:
    folder: Path
    manifest: Manifest
    documents: dict[str, DocumentRecord]
    passages: tuple[Passage, ...]
    layout: Layout  # each document's passage rows, each passage's sentence rows
    search: SearchIndex  # the vectors and the lexical index: in memory (FAISS) or in Milvus

    def header(self, doc_id: str) -> str:
        """The context header the build embedded this document's passages and sentences with."""
        return self.documents[doc_id].title if self.manifest.context_header == "title" else ""


_PASSAGE_FIELDS = tuple(f.name for f in fields(Passage))
_FILES = ("documents.jsonl", "passages.jsonl", "tokens.jsonl")  # every backend's; each names its own


def backend_for(config: milvus.MilvusConfig | None) -> Backend:
    """The backend the settings choose: Milvus where it is configured, FAISS otherwise."""
    return FaissBackend() if config is None else MilvusBackend(config)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write(target: Path, manifest: Manifest, documents: list[DocumentRecord], passages: list[Passage],
          tokens: list[list[str]], saved: Saved) -> Manifest:
    """Write a complete index next to ``target``, atomically point ``target`` at it; returns the manifest written.

    ``saved`` is the backend's share (``Backend.build`` or ``change``); a Milvus version's
    rows are written and visible before this publishes the folder that names them.
    """
    target = target.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_symlink():
        raise IndexStoreError(f"{target} exists and is not an index link made by `qa build`; move it away")
    # Sorts in publishing order (versions() keeps the newest by name): nanoseconds, then a
    # random tail in case two writers without the lock ever meet in one nanosecond.
    now = time.time_ns()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now // 1_000_000_000)) + f".{now % 1_000_000_000:09d}-{uuid.uuid4().hex[:8]}"
    folder = target.with_name(f"{target.name}.{stamp}")
    building = folder.with_name(folder.name + ".partial")
    building.mkdir()
    _write_jsonl(building / "documents.jsonl", (asdict(d) for d in documents))
    # field by field: dataclasses.asdict deep-copies every tuple and took 1.5 s of a 10,000-passage update
    _write_jsonl(building / "passages.jsonl", ({f: getattr(p, f) for f in _PASSAGE_FIELDS} for p in passages))
    saved.save(building)
    _write_jsonl(building / "tokens.jsonl", tokens)  # for the next version: unchanged passages keep their tokens
    manifest = replace(manifest, files={str(p.relative_to(building)): _sha256(p) for p in _files(building)})
    (building / "manifest.json").write_text(json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    _fsync_tree(building)
    building.rename(folder)
    link = target.with_name(f".{target.name}.link-{stamp}")
    link.symlink_to(folder.name)
    os.replace(link, target)  # the atomic step: readers see the old index or the new one
    _remove_stale(target)
    return manifest


def _fsync_tree(folder: Path) -> None:
    for path in _files(folder) + [folder / "manifest.json"]:
        with path.open("rb") as fh:
            os.fsync(fh.fileno())


def kept_build_ids(target: Path) -> set[str]:
    """The build ids of the versions on disk."""
    ids = set()
    for path in versions(target):
        try:
            ids.add(json.loads((path / "manifest.json").read_text(encoding="utf-8"))["build_id"])
        except (OSError, ValueError, KeyError):
            pass
    return ids


def _remove_stale(target: Path) -> None:
    """Keep the newest KEEP_VERSIONS versions (a reader may still be opening one); drop abandoned partial builds."""
    current = target.resolve()
    for path in versions(target)[:-KEEP_VERSIONS]:
        if path.resolve() != current:
            shutil.rmtree(path, ignore_errors=True)
    for path in target.parent.glob(f"{target.name}.*.partial"):
        shutil.rmtree(path, ignore_errors=True)
    for path in target.parent.glob(f".{target.name}.link-*"):
        path.unlink(missing_ok=True)


def check_files(target: Path, manifest: Manifest, backend: Backend) -> None:
    """Every file the manifest lists is present and has its recorded sha256."""
    for name in _FILES + backend.files:
        if name not in manifest.files and not any(f.startswith(name + "/") for f in manifest.files):
            raise IndexStoreError(f"{target / 'manifest.json'} is damaged (it lists no {name}); {REBUILD}")
    for name, digest in manifest.files.items():
        path = target / name
        if not path.is_file():
            raise IndexStoreError(f"index file {path} is missing; {REBUILD}")
        if _sha256(path) != digest:
            raise IndexStoreError(f"index file {path} is truncated or corrupted (checksum mismatch); {REBUILD}")


def check_settings(target: Path, manifest: Manifest, model_id: str, split: SplitSettings) -> None:
    built_with = manifest.model.id
    if built_with != model_id:
        raise IndexStoreError(
            f"index at {target} was built with model '{built_with}' but QA_MODEL selects '{model_id}'; "
            f"{REBUILD} or set QA_MODEL back"
        )
    if manifest.split != asdict(split):
        raise IndexStoreError(
            f"index at {target} was split with {manifest.split} but settings say {asdict(split)}; {REBUILD}"
        )


def check_sources(manifest: Manifest) -> None:
    """A source document edited since the build makes every citation suspect."""
    for doc in manifest.documents:
        path = Path(doc.path)
        if not path.is_file():
            log.info("source %s is gone; serving the copy stored in the index", path)
            continue
        if _sha256(path) != doc.sha256:
            raise IndexStoreError(f"{path} changed since the index was built; {REBUILD}")


def load(target: Path, model_id: str, split: SplitSettings, sources: bool = True,
         config: milvus.MilvusConfig | None = None) -> LoadedIndex:
    """Load and verify an index folder; raises IndexStoreError with the fix in the message.

    ``sources=False`` skips comparing the source files with the index: an update is
    about to index their new content.  ``config`` says where Milvus is, for an index
    built with the Milvus backend (None: the FAISS backend).
    """
    target = Path(target)
    manifest = read_manifest(target)
    backend = backend_for(config)
    backend.check(target, manifest)
    check_files(target, manifest, backend)
    check_settings(target, manifest, model_id, split)
    if sources:
        check_sources(manifest)
    try:
        return _read(target, manifest, backend)
    except milvus.MilvusError as exc:
        raise IndexStoreError(str(exc)) from None
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:  # checksums matched, yet unreadable
        raise IndexStoreError(f"index at {target} cannot be read ({exc}); {REBUILD}") from None


def _read(target: Path, manifest: Manifest, backend: Backend) -> LoadedIndex:
    documents = {}
    for line in (target / "documents.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        documents[row["doc_id"]] = DocumentRecord(**{
            **row, "sections": tuple(row["sections"]), "pages": tuple(row["pages"]),
            "ocr_pages": tuple(row.get("ocr_pages", ())),
            "low_confidence_pages": tuple(row.get("low_confidence_pages", ())),
            "boxes": tuple(LineBox(**b) for b in row.get("boxes", ())),
            "tables": tuple(TableSpan(t["number"], t["name"], tuple(tuple(r) for r in t["rows"]))
                            for t in row.get("tables", ())),
            "meta": tuple(tuple(kv) for kv in row["meta"]), "facts": tuple(Fact(**f) for f in row["facts"])})
    passages = []
    for line in (target / "passages.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        passages.append(Passage(**{**row, "sentences": tuple(tuple(s) for s in row["sentences"]),
                                   "offsets": tuple(tuple(r) for r in row["offsets"])}))
    if set(documents) != {d.doc_id for d in manifest.documents} or len(passages) != manifest.counts.passages \
            or any(p.doc_id not in documents for p in passages):
        raise IndexStoreError(f"index at {target} is inconsistent (counts differ); {REBUILD}")
    layout = Layout.of(documents, passages)
    if layout.sentence_rows[-1] != manifest.counts.sentences:
        raise IndexStoreError(f"index at {target} is inconsistent (counts differ); {REBUILD}")
    return LoadedIndex(target, manifest, documents, tuple(passages), layout,
                       backend.open(target, manifest, layout))


def read_tokens(target: Path) -> list[tuple[str, ...]]:
    """The BM25 tokens of every passage, in passage order (checked with the other files at load)."""
    return [tuple(json.loads(line)) for line in (Path(target) / "tokens.jsonl").read_text(encoding="utf-8").splitlines()]


def parts_of(index: LoadedIndex, doc_ids: list[str]) -> list[Part]:
    """The stored share of each of ``doc_ids``, ready for the next version without embedding anything."""
    tokens = read_tokens(index.folder)
    parts = []
    for doc_id in doc_ids:
        mine = index.layout.doc_rows[doc_id]
        stored = index.search.vectors(mine)
        parts.append(Part(index.documents[doc_id], tuple(index.passages[r] for r in mine),
                          stored.passages, np.concatenate(stored.sentences), tuple(tokens[r] for r in mine)))
    return parts

"""The index folder: one place that reads and writes it, with a manifest that describes it.

Layout: ``manifest.json``, ``documents.jsonl``, ``passages.jsonl``, ``tokens.jsonl``
and, for the FAISS backend, ``dense.faiss``, ``sentences.npy`` and ``bm25/``; for the
Milvus backend ``milvus.json`` (which rows of the collection this version reads, and
the lexical statistics its queries weigh terms by) and ``keys.npy`` (each passage's
primary key there), the vectors living in the collection the manifest names.  The manifest records the format, the model, the
splitter settings, the corpus hashes, counts, library versions and a sha256 of
every file, so a truncated or corrupted file is caught at load.  A build is
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

from corpus.documents import Document
from corpus.facts import Fact
from corpus.passages import Passage, SplitSettings
from index import milvus
from index.milvus_search import MilvusIndex
from index.dense import DenseIndex
from index.keyword import KeywordIndex
from index.local import LocalIndex
from index.manifest import REBUILD, FormatMismatch, IndexStoreError, Manifest, read_manifest  # noqa: F401 (re-exported)
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

    def as_document(self) -> Document:
        """The source document as it was read, to parse and embed again."""
        return Document(self.doc_id, self.path, self.text, self.sha256, kind=self.kind, pages=self.pages, meta=self.meta)


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
    search: SearchIndex  # the vectors and the lexical index: in memory (FAISS) or in Milvus

    def header(self, doc_id: str) -> str:
        """The context header the build embedded this document's passages and sentences with."""
        return self.documents[doc_id].title if self.manifest.context_header == "title" else ""


_PASSAGE_FIELDS = tuple(f.name for f in fields(Passage))
_FILES = {"faiss": ("documents.jsonl", "passages.jsonl", "dense.faiss", "sentences.npy", "bm25", "tokens.jsonl"),
          "milvus": ("documents.jsonl", "passages.jsonl", "tokens.jsonl", "milvus.json", "keys.npy")}


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


def write(
    target: Path, manifest: Manifest, documents: list[DocumentRecord], passages: list[Passage],
    tokens: list[list[str]], dense: DenseIndex | None = None, keyword: KeywordIndex | None = None,
    sentence_vectors: np.ndarray | None = None, rows: milvus.Rows | None = None, keys: np.ndarray | None = None,
) -> Manifest:
    """Write a complete index next to ``target``, atomically point ``target`` at it; returns the manifest written.

    A FAISS index passes ``dense``, ``keyword`` and ``sentence_vectors``; a Milvus index,
    whose rows are already written and visible, passes ``rows`` and ``keys``.
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
    if manifest.backend == "faiss":
        dense.save(building / "dense.faiss")
        np.save(building / "sentences.npy", sentence_vectors.astype(np.float16))
        keyword.save(building / "bm25")
    else:
        (building / "milvus.json").write_text(json.dumps(rows.to_dict(), ensure_ascii=False), encoding="utf-8")
        np.save(building / "keys.npy", np.asarray(keys, dtype=np.int64))
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


def versions(target: Path) -> list[Path]:
    """The published versions of ``target``, oldest first (their names start with a timestamp)."""
    return sorted(p for p in target.parent.glob(f"{target.name}.*")
                  if p.is_dir() and not p.is_symlink() and not p.name.endswith(".partial"))


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


def check_files(target: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is present and has its recorded sha256."""
    if manifest.backend == "milvus" and "vocab.json" in manifest.files:
        raise IndexStoreError(f"index at {target} was written with one Milvus collection per version, before "
                              f"versioned rows; {REBUILD}")
    for name in _FILES[manifest.backend]:
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


def check_backend(target: Path, manifest: Manifest, config: milvus.MilvusConfig | None) -> None:
    if manifest.backend == "milvus" and config is None:
        raise IndexStoreError(f"index at {target} keeps its vectors in Milvus; set QA_BACKEND=milvus "
                              f"(and QA_MILVUS_URI) to use it, or {REBUILD}")
    if manifest.backend == "faiss" and config is not None:
        raise IndexStoreError(f"index at {target} was built for FAISS but QA_BACKEND=milvus; "
                              "rebuild it with `QA_BACKEND=milvus qa build`, or unset QA_BACKEND")


def load(target: Path, model_id: str, split: SplitSettings, sources: bool = True,
         config: milvus.MilvusConfig | None = None) -> LoadedIndex:
    """Load and verify an index folder; raises IndexStoreError with the fix in the message.

    ``sources=False`` skips comparing the source files with the index: an update is
    about to index their new content.  ``config`` says where Milvus is, for an index
    built with the Milvus backend (None: the FAISS backend).
    """
    target = Path(target)
    manifest = read_manifest(target)
    check_backend(target, manifest, config)
    check_files(target, manifest)
    check_settings(target, manifest, model_id, split)
    if sources:
        check_sources(manifest)
    try:
        return _read(target, manifest, config)
    except milvus.MilvusError as exc:
        raise IndexStoreError(str(exc)) from None
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:  # checksums matched, yet unreadable
        raise IndexStoreError(f"index at {target} cannot be read ({exc}); {REBUILD}") from None


def _read(target: Path, manifest: Manifest, config: milvus.MilvusConfig | None) -> LoadedIndex:
    documents = {}
    for line in (target / "documents.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        documents[row["doc_id"]] = DocumentRecord(**{
            **row, "sections": tuple(row["sections"]), "pages": tuple(row["pages"]),
            "meta": tuple(tuple(kv) for kv in row["meta"]), "facts": tuple(Fact(**f) for f in row["facts"])})
    passages = []
    for line in (target / "passages.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        passages.append(Passage(**{**row, "sentences": tuple(tuple(s) for s in row["sentences"]),
                                   "offsets": tuple(tuple(r) for r in row["offsets"])}))
    counts = np.array([len(p.sentences) for p in passages], dtype=np.int64)
    rows = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    doc_ids = np.array([p.doc_id for p in passages])
    doc_rows = {d: np.flatnonzero(doc_ids == d) for d in documents}
    dim = manifest.model.dim
    if set(documents) != {d.doc_id for d in manifest.documents} or rows[-1] != manifest.counts.sentences \
            or len(passages) != manifest.counts.passages:
        raise IndexStoreError(f"index at {target} is inconsistent (counts differ); {REBUILD}")
    if manifest.backend == "milvus":
        state = milvus.Rows.from_dict(json.loads((target / "milvus.json").read_text(encoding="utf-8")))
        keys = np.load(target / "keys.npy")
        if len(keys) != len(passages) or len(np.unique(keys)) != len(keys):
            raise IndexStoreError(f"index at {target} is inconsistent (passage keys differ); {REBUILD}")
        search: SearchIndex = MilvusIndex(config, manifest.collections, state, keys, doc_rows, counts,
                                          manifest.dense_kind, dim)
        return LoadedIndex(target, manifest, documents, tuple(passages), search)
    dense = DenseIndex.load(target / "dense.faiss")
    keyword = KeywordIndex.load(target / "bm25")
    sentence_vectors = np.load(target / "sentences.npy").astype(np.float32)
    if dense.size != len(passages) or keyword.size != len(passages) or len(sentence_vectors) != rows[-1] \
            or dense.dim != dim or sentence_vectors.shape[1] != dim:
        raise IndexStoreError(f"index at {target} is inconsistent (counts or dimensions differ); {REBUILD}")
    return LoadedIndex(target, manifest, documents, tuple(passages),
                       LocalIndex(dense, keyword, sentence_vectors, rows, doc_rows))


def read_tokens(target: Path) -> list[tuple[str, ...]]:
    """The BM25 tokens of every passage, in passage order (checked with the other files at load)."""
    return [tuple(json.loads(line)) for line in (Path(target) / "tokens.jsonl").read_text(encoding="utf-8").splitlines()]


def parts_of(index: LoadedIndex, doc_ids: list[str]) -> list[Part]:
    """The stored share of each of ``doc_ids``, ready for the next version without embedding anything."""
    tokens = read_tokens(index.folder)
    rows: dict[str, list[int]] = {}
    for row, p in enumerate(index.passages):
        rows.setdefault(p.doc_id, []).append(row)
    parts = []
    for doc_id in doc_ids:
        mine = np.array(rows[doc_id], dtype=np.int64)
        stored = index.search.vectors(mine)
        parts.append(Part(index.documents[doc_id], tuple(index.passages[r] for r in mine),
                          stored.passages, np.concatenate(stored.sentences), tuple(tokens[r] for r in mine)))
    return parts

"""The index manifest as a typed value: what `qa build` wrote and loading checks.

``Manifest.from_dict`` accepts only a well-formed manifest; anything else (a JSON
list, a missing field, a string where a number belongs) raises ``ValueError``
naming the field, which the store reports as a damaged index.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REBUILD = "rebuild it with `qa build`"


class IndexStoreError(RuntimeError):
    """The index folder is missing, damaged or does not match the settings."""

# 2: passages carry their clean→original offset runs; 3: documents carry their facts; 4: documents
# carry their genre and passages the lead-in they continue (laws are cut by article since)
FORMAT_VERSION = 4
CONTEXT_HEADERS = ("title", "none")
BACKENDS = ("faiss", "milvus")


@dataclass(frozen=True)
class ModelInfo:
    id: str
    dim: int


@dataclass(frozen=True)
class SourceDocument:
    doc_id: str
    path: str
    title: str
    sha256: str
    chars: int
    genre: str = "report"


@dataclass(frozen=True)
class Counts:
    documents: int
    passages: int
    sentences: int


@dataclass(frozen=True)
class Manifest:
    format_version: int
    build_id: str  # unique per build: tells two builds of the same second apart
    created_at: str
    model: ModelInfo
    split: dict[str, int]
    context_header: str  # "title": passages are embedded under their document's title; "none"
    dense_kind: str
    documents: tuple[SourceDocument, ...]
    counts: Counts
    passage_chars: dict[str, float]
    build_seconds: dict[str, float]
    versions: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256
    # Where the vectors and the lexical index live: "faiss" (files in this folder) or
    # "milvus" (the collections named here; the folder keeps documents and passages).
    backend: str = "faiss"
    collections: dict[str, str] = field(default_factory=dict)  # role ("passages", "sentences") → name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> "Manifest":
        """A Manifest from parsed JSON; ValueError names the first field that is wrong."""
        if not isinstance(raw, dict):
            raise ValueError("the manifest is not a JSON object")
        if raw.get("format_version") != FORMAT_VERSION:
            raise FormatMismatch(raw.get("format_version"))
        m = cls(
            format_version=FORMAT_VERSION,
            build_id=_get(raw, "build_id", str),
            created_at=_get(raw, "created_at", str),
            model=_record(ModelInfo, _get(raw, "model", dict), "model"),
            split=_mapping(raw, "split", int),
            context_header=_get(raw, "context_header", str),
            dense_kind=_get(raw, "dense_kind", str),
            documents=tuple(_record(SourceDocument, d, f"documents[{i}]")
                            for i, d in enumerate(_get(raw, "documents", list))),
            counts=_record(Counts, _get(raw, "counts", dict), "counts"),
            passage_chars=_mapping(raw, "passage_chars", (int, float)),
            build_seconds=_mapping(raw, "build_seconds", (int, float)),
            versions=_mapping(raw, "versions", str),
            files=_mapping(raw, "files", str),
            # absent in manifests written before the Milvus backend: those are FAISS indexes
            backend=_get(raw, "backend", str) if "backend" in raw else "faiss",
            collections=_mapping(raw, "collections", str) if "collections" in raw else {},
        )
        if m.backend not in BACKENDS:
            raise ValueError(f"backend is {m.backend!r}")
        if m.context_header not in CONTEXT_HEADERS:
            raise ValueError(f"context_header is {m.context_header!r}")
        if m.counts.documents != len(m.documents):
            raise ValueError("counts.documents differs from the documents listed")
        return m


class FormatMismatch(ValueError):
    """The manifest is of another format version than this code reads."""

    def __init__(self, found: Any) -> None:
        super().__init__(f"format {found!r}, this version reads {FORMAT_VERSION}")
        self.found = found


def _get(raw: dict, key: str, kind: type) -> Any:
    if key not in raw:
        raise ValueError(f"field '{key}' is missing")
    value = raw[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"field '{key}' should be {kind.__name__}, not {type(value).__name__}")
    return value


def _mapping(raw: dict, key: str, kind) -> dict:
    value = _get(raw, key, dict)
    for k, v in value.items():
        if not isinstance(v, kind) or isinstance(v, bool):
            raise ValueError(f"field '{key}.{k}' has the wrong type")
    return value


def _record(cls, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise ValueError(f"field '{where}' should be an object")
    values = {}
    for f in fields(cls):
        kind = {"str": str, "int": int}[f.type]
        if f.name not in raw and f.default is not MISSING:
            continue
        if f.name not in raw:
            raise ValueError(f"field '{where}.{f.name}' is missing")
        value = raw[f.name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"field '{where}.{f.name}' should be {f.type}")
        values[f.name] = value
    return cls(**values)


def read_manifest(target: Path) -> Manifest:
    """The typed manifest of the index at ``target``; IndexStoreError says what is wrong.
    Here, apart from the index's heavy modules, so `qa info` and the CLI's check for a running
    server read it without importing them."""
    path = target / "manifest.json"
    if not path.exists():
        raise IndexStoreError(f"no index at {target}; build one with `qa build`")
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FormatMismatch as exc:
        raise IndexStoreError(f"index at {target} has {exc}; {REBUILD}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise IndexStoreError(f"{path} is damaged ({exc}); {REBUILD}") from None


def versions(target: Path) -> list[Path]:
    """The published versions of ``target``, oldest first (their names start with a timestamp)."""
    return sorted(p for p in target.parent.glob(f"{target.name}.*")
                  if p.is_dir() and not p.is_symlink() and not p.name.endswith(".partial"))

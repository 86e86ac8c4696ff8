"""Documents on disk: discovery, loading through the format table, stable ids."""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from corpus.boxes import LineBox
from corpus.tables import TableSpan
from corpus.formats import SUFFIXES, FormatError, Limits, TooBig, extract, listing

DEFAULT_CORPUS = Path(__file__).parent / "data"

log = logging.getLogger(__name__)


class CorpusError(ValueError):
    """A document cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Document:
    """One source document: its text (a text file exactly as stored, decoded; another format's
    extracted text), the sha256 of the file's bytes, and what its format knew.

    ``pages[i]`` is the offset in ``text`` where page i + 1 starts (PDF; empty otherwise);
    ``meta`` holds the file's own properties (title, author, …) as sorted pairs.
    """

    doc_id: str
    path: str
    text: str
    sha256: str
    kind: str = "markdown"
    pages: tuple[int, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()
    ocr_pages: tuple[int, ...] = ()  # 1-based pages whose text was read by OCR (a scan, a picture)
    low_confidence_pages: tuple[int, ...] = ()  # those of them OCR read with low confidence
    boxes: tuple[LineBox, ...] = ()  # where its lines lie on its pages (PDF, pictures; corpus.boxes)
    tables: tuple[TableSpan, ...] = ()  # where its tables' rows lie in ``text`` (corpus.tables)


def discover(paths: list[Path]) -> list[Path]:
    """Expand files and folders into a sorted list of documents of the supported types."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise CorpusError(f"{path}: no such file or folder")
        if path.is_dir():
            files = _folder(path)
            if not files:
                raise CorpusError(f"{path}: folder holds no {listing()} files")
            found.extend(files)
        elif path.suffix.lower() not in SUFFIXES:
            raise CorpusError(f"{path}: unsupported file type (use {listing()})")
        else:
            found.append(path)
    return found


def _folder(root: Path) -> list[Path]:
    """The documents under ``root``; what is skipped is named in a warning, never dropped silently.

    Symbolic links are followed only to files inside ``root`` (a link may not pull in
    /etc/passwd), and never to folders (no loops, no document read twice).
    """
    inside = root.resolve()
    files: list[Path] = []
    skipped: dict[str, list[str]] = {}
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git is not documents
        for d in dirs:
            if (here / d).is_symlink():
                skipped.setdefault("links to folders (not followed)", []).append(str((here / d).relative_to(root)))
        for name in sorted(names):
            path = here / name
            rel = str(path.relative_to(root))
            if name.startswith("."):
                continue
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):  # a loop or a missing target
                    target = None
                if target is None or not target.is_file():
                    skipped.setdefault("broken or looping links", []).append(rel)
                    continue
                if not target.is_relative_to(inside):
                    skipped.setdefault(f"links pointing outside {root}", []).append(rel)
                    continue
            if path.suffix.lower() not in SUFFIXES:
                skipped.setdefault(f"files that are not {listing()}", []).append(rel)
                continue
            files.append(path)
    for why, names in skipped.items():  # say so: a PDF dropped in the folder should not vanish without a word
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        log.warning("%s: skipped %d %s: %s%s", root, len(names), why, ", ".join(names[:5]), more)
    return sorted(files)


ID_MAX_BYTES = 200  # an id is a file name too (<id>.docx): file systems allow 255 bytes


def doc_id_for(path: Path) -> str:
    """A URL-safe id from the file name: letters, digits, CJK, '-' and '_', at most 200 bytes of UTF-8."""
    stem = re.sub(r"[^\w\-]+", "-", path.stem, flags=re.UNICODE).strip("-")
    while len(stem.encode()) > ID_MAX_BYTES:
        stem = stem[:-1]
    return stem.strip("-") or "doc"


class DocumentTooLarge(CorpusError):
    """A document that would cost more work than a limit (``corpus.formats.Limits``) allows."""


def read_document(path: Path, limits: Limits = Limits()) -> Document:
    """Read one document in any supported format; a file that cannot be used is refused by name."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        got = extract(path, raw, limits)
    except TooBig as exc:
        raise DocumentTooLarge(f"{path}: {exc}") from None
    except FormatError as exc:
        raise CorpusError(f"{path}: {exc}") from None
    if got.low_confidence_pages:
        log.warning("%s: OCR read page(s) %s with low confidence; check their text", path,
                    ", ".join(map(str, got.low_confidence_pages)))
    return Document(doc_id_for(path), str(path), got.text, hashlib.sha256(raw).hexdigest(),
                    kind=got.kind, pages=got.pages, meta=tuple(sorted(got.meta.items())),
                    ocr_pages=got.ocr_pages, low_confidence_pages=got.low_confidence_pages, boxes=got.boxes,
                    tables=got.tables)


def original(path: str, sha256: str) -> bytes:
    """The bytes of the file a document was read from, as long as they are still the bytes it was
    read from: a page shown beside a citation must be the page the citation points into."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CorpusError(f"the file it was read from cannot be read now ({exc.strerror})") from None
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise CorpusError("the file it was read from has changed since it was indexed; index it again")
    return raw


def load_documents(paths: list[Path], limits: Limits = Limits()) -> list[Document]:
    """Load every document under ``paths``, each with the id its file name gives (``doc_id_for``);
    two files may give the same one (note.md, note.html): ``assign_ids`` tells them apart."""
    return [read_document(p, limits) for p in discover(paths)]


@dataclass(frozen=True)
class Known:
    """A document the index holds, as ``assign_ids`` sees it: ``source`` is where it was read from
    (a resolved path; None for an upload, which has no place of its own outside the service)."""

    doc_id: str
    source: str | None
    sha256: str


@dataclass(frozen=True)
class Duplicate:
    """A file not stored because a document already holds the same bytes."""

    position: int  # in ``assign_ids``' ``new``
    doc_id: str  # the document that holds them


def assign_ids(new: list[Document], sources: list[str | None], known: list[Known],
               reserved: frozenset[str] = frozenset()) -> tuple[list[str | None], list[Duplicate]]:
    """The id each of ``new`` is kept under (None: not kept), and those not kept for their bytes.

    A document is its source, never its name: a file read again from the place a known
    document came from updates that document; any other file with the bytes of a known
    document (or of one earlier in ``new``) is a duplicate, reported and not stored; any
    other is a new document under its name's id, or, when a known document, a ``reserved``
    id or an earlier one in ``new`` holds that id, under the first free ``id-2``, ``id-3``,
    … — so uploading note.md beside note.html keeps both.  ``sources[i]`` is ``new[i]``'s
    resolved path, or None for an upload; a source named twice is kept once.
    """
    by_source = {k.source: k.doc_id for k in known if k.source is not None}
    by_bytes = {k.sha256: k.doc_id for k in known}
    taken = {k.doc_id for k in known} | reserved
    ids: list[str | None] = []
    duplicates, read = [], set()
    for i, (doc, source) in enumerate(zip(new, sources, strict=True)):
        doc_id = None
        if source is not None and source in read:  # the same file named twice: one document
            pass
        elif source is not None and source in by_source:
            doc_id = by_source[source]
        elif doc.sha256 in by_bytes:
            duplicates.append(Duplicate(i, by_bytes[doc.sha256]))
        else:
            doc_id = _free(doc.doc_id, taken)
        if doc_id is not None:
            read.add(source)
            taken.add(doc_id)
            by_bytes.setdefault(doc.sha256, doc_id)
        ids.append(doc_id)
    return ids, duplicates


def _free(doc_id: str, taken: set[str]) -> str:
    """``doc_id``, or the first of ``doc_id-2``, ``doc_id-3``, … nobody holds (within ID_MAX_BYTES)."""
    n = 1
    candidate = doc_id
    while candidate in taken:
        n += 1
        tail = f"-{n}"
        base = doc_id
        while len((base + tail).encode()) > ID_MAX_BYTES:
            base = base[:-1]
        candidate = base + tail
    return candidate

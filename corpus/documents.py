"""Documents on disk: discovery, strict UTF-8 loading, stable ids."""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".md", ".txt")
DEFAULT_CORPUS = Path(__file__).parent / "data"

log = logging.getLogger(__name__)


class CorpusError(ValueError):
    """A document cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Document:
    """One source document, its text exactly as stored on disk (decoded)."""

    doc_id: str
    path: str
    text: str
    sha256: str


def discover(paths: list[Path]) -> list[Path]:
    """Expand files and folders into a sorted list of .md/.txt files."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise CorpusError(f"{path}: no such file or folder")
        if path.is_dir():
            every = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
            files = [p for p in every if p.suffix.lower() in SUFFIXES]
            skipped = [str(p.relative_to(path)) for p in every if p.suffix.lower() not in SUFFIXES]
            if skipped:  # say so: a PDF dropped in the folder should not vanish without a word
                more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
                log.warning("%s: skipped %d file(s) that are not .md or .txt: %s%s",
                            path, len(skipped), ", ".join(skipped[:5]), more)
            if not files:
                raise CorpusError(f"{path}: folder holds no .md or .txt files")
            found.extend(files)
        elif path.suffix.lower() not in SUFFIXES:
            raise CorpusError(f"{path}: unsupported file type (use .md or .txt)")
        else:
            found.append(path)
    return found


def _hidden(path: Path, root: Path) -> bool:
    """Dot files and anything under a dot folder (.git, .DS_Store) are not documents."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def doc_id_for(path: Path) -> str:
    """A URL-safe id from the file name: letters, digits, CJK, '-' and '_'."""
    stem = re.sub(r"[^\w\-]+", "-", path.stem, flags=re.UNICODE).strip("-")
    return stem or "doc"


def read_document(path: Path) -> Document:
    """Read one UTF-8 text file; refuse binary, non-UTF-8 and empty files."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\0" in raw:
        raise CorpusError(f"{path}: looks like a binary file, not UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 (byte {exc.start}); convert it to UTF-8 first") from None
    if text.startswith("\ufeff"):
        raise CorpusError(f"{path}: starts with a byte-order mark; save it as UTF-8 without BOM")
    if not text.strip():
        raise CorpusError(f"{path}: file is empty")
    return Document(doc_id_for(path), str(path), text, hashlib.sha256(raw).hexdigest())


def load_documents(paths: list[Path]) -> list[Document]:
    """Load every document under ``paths``; ids must be unique."""
    docs = [read_document(p) for p in discover(paths)]
    seen: dict[str, str] = {}
    for doc in docs:
        if doc.doc_id in seen:
            raise CorpusError(f"{doc.path}: document id '{doc.doc_id}' is also used by {seen[doc.doc_id]}; rename one")
        seen[doc.doc_id] = doc.path
    return docs

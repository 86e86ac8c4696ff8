"""Document formats: each file's bytes become the document's text, chosen by a suffix table.

Every loader returns the same value, ``Extracted``: the text that offsets index into (and
that the service shows), the offsets where PDF pages start, and the file's own
properties.  Headings are written as Markdown heading lines and paragraphs are separated
by blank lines, so one structure parser (corpus.structure) serves every format.  Each
heavy library is imported only by its own module, and only when such a file is read.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from corpus.boxes import LineBox
from corpus.tables import TableSpan

# suffix -> (kind, module under corpus.formats whose ``extract(raw, kind)`` reads it)
FORMATS: dict[str, tuple[str, str]] = {
    ".md": ("markdown", "plain"),
    ".txt": ("text", "plain"),
    ".pdf": ("pdf", "pdf"),
    ".docx": ("docx", "docx"),
    ".html": ("html", "html"),
    ".htm": ("html", "html"),
    # spreadsheets: a row a sentence naming its columns (corpus/tables.py)
    ".xlsx": ("xlsx", "sheet"),
    ".csv": ("csv", "sheet"),
    # pictures of pages, read by OCR (corpus/formats/ocr.py)
    ".png": ("png", "image"),
    ".jpg": ("jpeg", "image"),
    ".jpeg": ("jpeg", "image"),
    ".tif": ("tiff", "image"),
    ".tiff": ("tiff", "image"),
}
SUFFIXES = tuple(FORMATS)
NAMES = {"markdown": "Markdown", "text": "text", "pdf": "PDF", "docx": "Word (.docx)", "html": "HTML",
         "png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "xlsx": "Excel (.xlsx)", "csv": "CSV"}
_CONTENT_NAMES = {"pdf": "a PDF", "docx": "a Word document", "html": "HTML", "png": "a PNG picture",
                  "jpeg": "a JPEG picture", "tiff": "a TIFF picture", "xlsx": "an Excel workbook", "csv": "CSV text"}


class FormatError(ValueError):
    """The bytes cannot be read as their format; the message says why (the caller names the file)."""


class TooBig(FormatError):
    """The file would cost more work than a limit allows; the message names the limit and its setting."""


@dataclass(frozen=True)
class Limits:
    """How much one file may cost to read: past any of these it is refused, early and by name.

    A 4 KB Word file of 350,000 empty paragraphs took 31 s of CPU to refuse, and a 19 MB
    one-line text file 77 s and 6 GB of memory to index (issue #21): the paragraphs are
    counted before python-docx parses anything, a text's size is checked before it is decoded,
    a PDF's pages before any is read, and every loader watches its clock.
    """

    chars: int = 2_000_000  # characters of text in one document (QA_MAX_DOCUMENT_CHARS)
    pages: int = 2_000  # pages of a PDF (QA_MAX_PDF_PAGES)
    paragraphs: int = 100_000  # paragraphs of a Word document (QA_MAX_DOCX_PARAGRAPHS)
    seconds: float = 60.0  # to extract one file's text (QA_MAX_EXTRACT_SECONDS)
    # OCR reads a page in 7–18 s here (README, "Scans"): a file with pages to read so has its
    # own budgets, and the pages it may hold are bounded before any is read.
    ocr_pages: int = 200  # pages read by OCR in one file (QA_MAX_OCR_PAGES)
    ocr_seconds: float = 1800.0  # to extract a file with pages read by OCR (QA_MAX_OCR_SECONDS)
    ocr_threads: int = 0  # cores one OCR uses, 0: all but one, which keeps answering questions (QA_OCR_THREADS)
    pixels: int = 100_000_000  # pixels of one image (QA_MAX_IMAGE_PIXELS), checked before it is decoded

    def clock(self) -> "Clock":
        return Clock(time.monotonic() + self.seconds, self.seconds, "QA_MAX_EXTRACT_SECONDS")

    def ocr_clock(self) -> "Clock":
        return Clock(time.monotonic() + self.ocr_seconds, self.ocr_seconds, "QA_MAX_OCR_SECONDS")

    def check_chars(self, text: str) -> str:
        if len(text) > self.chars:
            raise TooBig(f"{len(text):,} characters of text; the limit is {self.chars:,} (QA_MAX_DOCUMENT_CHARS)")
        return text


@dataclass(frozen=True)
class Clock:
    """A loader's deadline, checked inside its loops."""

    deadline: float
    seconds: float
    setting: str

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TooBig(f"reading it took over {self.seconds:g} s; the limit is {self.setting}")


@dataclass(frozen=True)
class Extracted:
    """A file's text and what the format knew about it.

    ``pages[i]`` is the offset in ``text`` where page i + 1 starts (``pages[0] == 0``),
    empty for formats without pages; ``meta`` holds only properties the file really has.
    """

    text: str
    kind: str
    pages: tuple[int, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    ocr_pages: tuple[int, ...] = ()  # 1-based pages whose text was read by OCR
    low_confidence_pages: tuple[int, ...] = ()  # those of them read with low confidence
    boxes: tuple[LineBox, ...] = ()  # where each line of ``text`` lies on its page (PDF, pictures)
    tables: tuple[TableSpan, ...] = ()  # where each table's rows lie in ``text`` (Word, HTML, spreadsheets)


def listing(suffixes: tuple[str, ...] = SUFFIXES) -> str:
    """'.md, .txt, … or .htm', for messages."""
    return ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]


def sniff(raw: bytes) -> str | None:
    """What the content says it is, whatever the name says: 'pdf', 'zip', 'ole', 'html' or None."""
    head = raw[:1024].lstrip(b"\x00\t\n\r\f \xef\xbb\xbf")
    if head.startswith(b"%PDF-"):
        return "pdf"
    if raw.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if raw.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"  # an old .doc/.xls, or an Office file encrypted with a password
    if head[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


CONTENT = {"pdf": "a PDF", "zip": "a zip archive", "ole": "an old Office (.doc/.xls) or password-protected Office file",
           "html": "HTML", "binary": "binary data"}
BINARY = ("pdf", "zip", "ole")  # what no text format can be


def mismatch(kind: str, found: str | None) -> FormatError:
    """The error for a file whose extension says ``kind`` but whose content is something else."""
    what = f" (it is {CONTENT[found]})" if found in CONTENT else ""
    return FormatError(f"the extension says {NAMES[kind]} but the content is not {_CONTENT_NAMES[kind]}{what}")


PICTURED = ("pdf", "png", "jpeg", "tiff")  # the kinds whose pages can be shown as pictures (``page_png``)


def page_png(kind: str, raw: bytes, number: int, longest: int) -> bytes:
    """Page ``number`` (1-based) of a file of ``kind`` (one of ``PICTURED``), ``raw``, as a PNG picture
    whose longest side is at most ``longest`` pixels; FormatError for a page it does not have."""
    image = importlib.import_module(f"{__name__}.image")
    if kind == "pdf":
        return image.png_of(importlib.import_module(f"{__name__}.pdf").page_pixels(raw, number, longest))
    if kind not in PICTURED:
        raise FormatError(f"a {NAMES.get(kind, kind)} document has no pages to show")
    return image.png_of(image.frame_pixels(raw, number, longest))


_UNPACKED_MAX = 512 * 1024 * 1024  # an Office file that would unpack to more is refused, not read


def check_package(raw: bytes, kind: str, old: str, part: str) -> None:
    """Refuse, by what is wrong, bytes that are not an Office Open XML package of ``kind`` ("docx",
    "xlsx"): an old binary or encrypted file (``old`` names it: "Word (.doc)"), another format, a
    broken zip, a zip without its main ``part``, or one that would unpack to more than 512 MB."""
    import io
    import zipfile

    found = sniff(raw)
    if found == "ole":
        raise FormatError(f"the content is an old binary {old} or a password-protected file, not a .{kind}; "
                          f"save it as .{kind} without a password")
    if found != "zip":
        raise mismatch(kind, found)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as package:
            infos = package.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise FormatError(f"corrupt or truncated .{kind} (a broken zip: {exc})") from None
    if part not in {i.filename for i in infos}:
        raise FormatError(f"the extension says {NAMES[kind]} but the content is not: a zip without {part}")
    if sum(i.file_size for i in infos) > _UNPACKED_MAX:
        raise FormatError(f"the .{kind} would unpack to more than 512 MB; refused")


def extract(path: Path, raw: bytes, limits: Limits = Limits()) -> Extracted:
    """Read ``raw`` (the bytes of ``path``) as the format its suffix names, within ``limits``."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise FormatError(f"unsupported file type (use {listing()})")
    kind, module = FORMATS[suffix]
    if not raw.strip():
        raise FormatError("file is empty")
    got = importlib.import_module(f"{__name__}.{module}").extract(raw, kind, limits)
    limits.check_chars(got.text)
    return got

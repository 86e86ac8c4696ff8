"""PDF: the text layer, read by PDFium (pypdfium2), laid out again as paragraphs.

PDFium gives each character with its box and marks the line breaks it finds.  From the
lines' geometry: running headers and footers (the same words at the same height on most
pages) and page-number lines at the page edges are left out; lines set larger than the
body become Markdown headings; a paragraph ends after a short line of justified text,
before an indented line, a wider gap, a change of size or a numbered line (一、 （一）)
after a sentence's end.  The lines of one paragraph stay single newlines, which
cleaning joins, and a paragraph that a page break cuts continues across it.  No word is
changed: only lines are dropped and breaks chosen.
"""
from __future__ import annotations

import re
import statistics
import threading
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from corpus.formats import Extracted, FormatError, Limits, TooBig, mismatch, sniff
from corpus.text import SECTION_RE, SUBSECTION_RE, ends_sentence, inside_word, is_cjk

_LOCK = threading.Lock()  # PDFium is not thread-safe
_EDGE_LEVELS = 2  # the top and bottom two line heights of a page may be running headers/footers
_REPEATED = 0.4  # ... when found on this share of the pages (and on two at least)
_HEADING = 1.12  # a line this much larger than the body text is a heading
_HEADING_MAX = 80
_PAGE_NUMBER_RE = re.compile(
    r"^[\s\-—–·•|]*(?:page\s*|第\s*)?(?:\d+|[ivxlcdm]+)(?:\s*页)?"
    r"(?:\s*(?:[/／]|of|[,，]?\s*共)\s*\d+\s*页?)?[\s\-—–·•|]*$",
    re.IGNORECASE,
)
_META = {"Title": "title", "Author": "author", "Subject": "subject", "Keywords": "keywords",
         "CreationDate": "created", "ModDate": "modified"}
_DATE_RE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz]|[+-]\d{2}'?\d{2}'?)?")


@dataclass(frozen=True)
class Line:
    """One line of text as PDFium found it, with its loose box (PDF units, y up)."""

    text: str
    x0: float
    x1: float
    bottom: float
    top: float
    size: float  # median character-box height (half-unit steps): the font size, whatever the text matrix did


def extract(raw: bytes, kind: str, limits: Limits = Limits()) -> Extracted:
    if b"%PDF-" not in raw[:1024]:  # where PDF readers look for the header
        raise mismatch("pdf", sniff(raw))
    clock = limits.clock()
    with _LOCK:
        pdf = _open(raw)
    try:
        with _LOCK:
            count, meta = len(pdf), _meta(pdf)
        if count > limits.pages:
            raise TooBig(f"{count:,} pages; the limit is {limits.pages:,} (QA_MAX_PDF_PAGES)")
        pages = []
        for i in range(count):  # the lock is taken a page at a time: another upload's PDF is read between
            with _LOCK:
                pages.append(_lines(pdf, i))
            clock.check()
    except pdfium.PdfiumError as exc:
        raise FormatError(f"damaged PDF: {exc}") from None
    finally:
        with _LOCK:
            pdf.close()
    if not any(line.text.strip() for page in pages for line in page):
        raise FormatError("no text layer; OCR is not supported (a scanned document?)")
    text, starts = layout(pages)
    if not text.strip():
        raise FormatError("no text besides running headers, footers and page numbers")
    return Extracted(text, kind, starts, meta)


def _open(raw: bytes) -> pdfium.PdfDocument:
    truncated = b"%%EOF" not in raw[-1024:]
    try:
        pdf = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise FormatError("encrypted PDF: it needs a password; save a copy without one") from None
        if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
            raise FormatError("encrypted PDF with an unsupported security handler") from None
        if truncated:
            raise FormatError("truncated PDF: the file ends before its end-of-file marker (%%EOF)") from None
        raise FormatError(f"corrupt PDF: {exc}") from None
    if truncated:  # PDFium may rebuild what it finds, silently without the missing pages
        pdf.close()
        raise FormatError("truncated PDF: the file ends before its end-of-file marker (%%EOF)")
    return pdf


def _meta(pdf: pdfium.PdfDocument) -> dict[str, str]:
    meta = {}
    for key, value in pdf.get_metadata_dict(skip_empty=True).items():
        value = value.strip().replace("\x00", "")
        if key in _META and value:
            meta[_META[key]] = _date(value) if key.endswith("Date") else value
    return meta


def _date(value: str) -> str:
    """A PDF date (D:20260215080000+08'00') as ISO 8601, or as it is when it is not one."""
    m = _DATE_RE.match(value)
    if not m:
        return value
    y, mo, d, h, mi, s, tz = m.groups()
    iso = f"{y}-{mo or '01'}-{d or '01'}T{h or '00'}:{mi or '00'}:{s or '00'}"
    if tz:
        offset = tz.replace("'", "")
        iso += "Z" if tz in "Zz" else f"{offset[:3]}:{offset[3:5] or '00'}"
    return iso


def _lines(pdf: pdfium.PdfDocument, index: int) -> list[Line]:
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        lines, chars, boxes = [], [], []
        for i in range(textpage.count_chars()):
            ch = _char(pdfium_c.FPDFText_GetUnicode(textpage.raw, i))
            if ch in "\r\n":
                _add_line(lines, chars, boxes)
                chars, boxes = [], []
                continue
            chars.append(ch)
            boxes.append(None if ch.isspace() else textpage.get_charbox(i, loose=True))
        _add_line(lines, chars, boxes)
        return lines
    finally:
        textpage.close()
        page.close()


def _char(code: int) -> str:
    if code == 2:
        return "-"  # PDFium's mark for a hyphen that ends a line
    try:
        return chr(code) if code else "\ufffd"
    except (ValueError, OverflowError):
        return "\ufffd"


def _add_line(lines: list[Line], chars: list[str], boxes: list) -> None:
    text = "".join(chars).strip()
    real = [b for b in boxes if b is not None]
    if not text or not real:
        return
    size = round(statistics.median(b[3] - b[1] for b in real) * 2) / 2  # half-unit steps: one size per font
    lines.append(Line(text, min(b[0] for b in real), max(b[2] for b in real),
                      min(b[1] for b in real), max(b[3] for b in real), size))


# ---------------------------------------------------------------- layout (pure)

def running_lines(pages: list[list[Line]]) -> list[set[int]]:
    """Per page, the indexes of its running headers/footers and page-number lines."""
    edges = [_edge_indexes(page) for page in pages]
    where: dict[tuple[str, int], set[int]] = {}  # (words, height in 3-unit steps) -> pages
    for p, (page, found) in enumerate(zip(pages, edges)):
        for i in found:
            where.setdefault((_key(page[i].text), round(page[i].top / 3)), set()).add(p)
    need = max(2, _REPEATED * sum(1 for page in pages if page))
    dropped: list[set[int]] = []
    for page, found in zip(pages, edges):
        out = set()
        for i in found:
            key, step = _key(page[i].text), round(page[i].top / 3)
            seen = set().union(*(where.get((key, s), set()) for s in (step - 1, step, step + 1)))
            if _PAGE_NUMBER_RE.match(page[i].text) or len(seen) >= need:
                out.add(i)
        dropped.append(out)
    return dropped


def _edge_indexes(page: list[Line]) -> set[int]:
    levels = sorted({round(line.top) for line in page})
    edge = set(levels[:_EDGE_LEVELS]) | set(levels[-_EDGE_LEVELS:])
    return {i for i, line in enumerate(page) if round(line.top) in edge}


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


@dataclass(frozen=True)
class _Body:
    """What the document's body text looks like."""

    size: float
    left: float
    right: float
    justified: bool
    heading_levels: dict[float, int]


def _same_size(line: Line, size: float) -> bool:
    return abs(line.size - size) <= 0.12 * size


def _margins(lines: list[Line]) -> tuple[float, float]:
    return statistics.mode(round(line.x0) for line in lines), statistics.mode(round(line.x1) for line in lines)


def _body(lines: list[Line]) -> _Body:
    weight: dict[float, int] = {}
    for line in lines:
        weight[line.size] = weight.get(line.size, 0) + len(line.text)
    size = max(weight, key=weight.get)
    body = [line for line in lines if _same_size(line, size)]
    left, right = _margins(body)
    full = sum(1 for line in body if line.x1 >= right - 0.25 * size)  # justified lines end together
    larger = sorted({s for s in weight if s >= size * _HEADING}, reverse=True)
    return _Body(size, left, right, full >= 0.6 * len(body), {s: min(i + 1, 6) for i, s in enumerate(larger)})


@dataclass(frozen=True)
class _Page:
    """One page's margins (mirrored pages differ) and usual line step."""

    left: float
    right: float
    pitch: float | None


def _page(lines: list[Line], body: _Body) -> _Page:
    same = [line for line in lines if _same_size(line, body.size)]
    if len(same) < 3:
        return _Page(body.left, body.right, None)
    steps = [a.bottom - b.bottom for a, b in zip(lines, lines[1:])
             if _same_size(a, body.size) and _same_size(b, body.size) and 0 < a.bottom - b.bottom < 3 * body.size]
    return _Page(*_margins(same), statistics.median(steps) if steps else None)


def _level(line: Line, body: _Body) -> int:
    return body.heading_levels.get(line.size, 0) if len(line.text) <= _HEADING_MAX else 0


def _starts_paragraph(prev: Line, line: Line, body: _Body, page: _Page, first: bool) -> bool:
    """Whether ``line`` begins a new paragraph after ``prev`` (``first``: the first line of its page)."""
    size = body.size
    if abs(line.size - prev.size) > 0.12 * size:
        return True
    if inside_word(prev.text.rstrip(), line.text.lstrip()):
        return False  # "电话0571-" ⏎ "88888888": a wrapped number, however short the line
    if line.x0 - page.left >= 0.8 * size:  # indented (or centred)
        return True
    if body.justified and prev.x1 < page.right - 1.5 * size:  # the short last line of a paragraph
        return True
    if not first and page.pitch is not None and prev.bottom - line.bottom > 1.25 * page.pitch:
        return True
    return ends_sentence(prev.text) and bool(SECTION_RE.match(line.text) or SUBSECTION_RE.match(line.text))


def _separator(prev: Line | None, line: Line, first: bool, body: _Body, page: _Page) -> str | None:
    """What goes before ``line``: nothing, a line break, a paragraph break, or None to join a wrapped heading."""
    if prev is None:
        return ""
    level, before = _level(line, body), _level(prev, body)
    if level and level == before and not first and prev.bottom - line.top < 0.8 * line.size:
        return None
    if level or before or _starts_paragraph(prev, line, body, page, first):
        return "\n\n"
    return "\n"


def _join(a: str, b: str) -> str:
    """Two pieces of one heading: a space only between two Latin words."""
    return a + (" " if a and b and not is_cjk(a[-1]) and not is_cjk(b[0]) else "") + b


def layout(pages: list[list[Line]]) -> tuple[str, tuple[int, ...]]:
    """The document's text from its pages' lines, and the offset where each page starts.

    A page without text starts where the next text does, so it covers no character.
    """
    dropped = running_lines(pages)
    kept = [[line for i, line in enumerate(page) if i not in dropped[p]] for p, page in enumerate(pages)]
    everything = [line for page in kept for line in page]
    if not everything:
        return "", tuple(0 for _ in pages)
    body = _body(everything)
    out: list[str] = []
    length, starts, pending = 0, [], 0
    prev: Line | None = None
    for lines in kept:
        pending += 1
        if not lines:
            continue
        page = _page(lines, body)
        for n, line in enumerate(lines):
            sep = _separator(prev, line, n == 0, body, page)
            if n == 0:  # the page starts after the separator
                out.append(sep)
                length += len(sep)
                starts.extend([length] * pending)
                pending, sep = 0, ""
            if sep is None:
                joined = _join(out[-1], line.text)
                length += len(joined) - len(out[-1])
                out[-1] = joined
            else:
                piece = sep + ("#" * _level(line, body) + " " if _level(line, body) else "") + line.text
                out.append(piece)
                length += len(piece)
            prev = line
    starts.extend([length] * pending)
    return "".join(out) + "\n", tuple(starts)

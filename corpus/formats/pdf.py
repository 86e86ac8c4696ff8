"""PDF: the text layer, read by PDFium (pypdfium2), laid out again as paragraphs.

PDFium gives each character with its box and marks the line breaks it finds; the lines'
geometry then decides headers, headings and paragraphs (``corpus/formats/layout.py``).

A page without a text layer (a scan, or the scanned pages of a mixed file) is rendered and
read by OCR (``corpus/formats/ocr.py``); its lines, with their boxes in the page's units,
then go through the same layout as a text page's, so headers, headings and paragraphs
are found the same way.  Which pages were read so, and which of them with low confidence,
travels with the text.
"""
from __future__ import annotations

import re
import statistics
import threading

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from corpus.formats import Extracted, FormatError, Limits, TooBig, mismatch, ocr, sniff
from corpus.formats.layout import Line, layout

_LOCK = threading.Lock()  # PDFium is not thread-safe
_META = {"Title": "title", "Author": "author", "Subject": "subject", "Keywords": "keywords",
         "CreationDate": "created", "ModDate": "modified"}
_DATE_RE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz]|[+-]\d{2}'?\d{2}'?)?")


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
        pages: list[list[Line]] = []
        sizes: list[tuple[float, float]] = []
        for i in range(count):  # the lock is taken a page at a time: another upload's PDF is read between
            with _LOCK:
                lines, size = _lines(pdf, i)
            pages.append(lines)
            sizes.append(size)
            clock.check()
        scanned = [i + 1 for i, lines in enumerate(pages) if not lines]
        if len(scanned) > limits.ocr_pages:
            raise TooBig(f"{len(scanned):,} pages without text to read by OCR; the limit is {limits.ocr_pages:,} "
                         "(QA_MAX_OCR_PAGES)")
        doubtful = []
        if scanned:  # OCR takes seconds a page: such a file has the OCR budget
            clock = limits.ocr_clock()
        for number in scanned:
            with _LOCK:
                picture = _picture(pdf, number - 1)
            pages[number - 1], confidence = ocr.page(*picture, limits.ocr_threads)
            if confidence < ocr.LOW_CONFIDENCE:
                doubtful.append(number)
            clock.check()
    except pdfium.PdfiumError as exc:
        raise FormatError(f"damaged PDF: {exc}") from None
    finally:
        with _LOCK:
            pdf.close()
    if not any(line.text.strip() for page in pages for line in page):
        raise FormatError("no text on any page, not even by OCR (blank pages, or pictures without text)")
    laid = layout(pages, sizes)
    if not laid.text.strip():
        raise FormatError("no text besides running headers, footers and page numbers")
    return Extracted(laid.text, kind, laid.starts, meta, ocr_pages=tuple(scanned),
                     low_confidence_pages=tuple(doubtful), boxes=laid.boxes, tables=laid.tables)


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


def _lines(pdf: pdfium.PdfDocument, index: int) -> tuple[list[Line], tuple[float, float]]:
    """Page ``index``'s lines of text, and the page's width and height."""
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
        return lines, tuple(page.get_size())
    finally:
        textpage.close()
        page.close()


def _picture(pdf: pdfium.PdfDocument, index: int) -> tuple[np.ndarray, float]:
    """Page ``index`` rendered as the OCR reads it (its longest side ``ocr.MAX_SIDE`` pixels),
    and the page units one pixel spans."""
    page = pdf[index]
    try:
        scale = ocr.MAX_SIDE / max(page.get_size())
        bitmap = page.render(scale=scale)
        try:
            return bitmap.to_numpy().copy(), 1 / scale  # the array must outlive the bitmap
        finally:
            bitmap.close()
    finally:
        page.close()


def _char(code: int) -> str:
    if code == 2:
        return "-"  # PDFium's mark for a hyphen that ends a line
    try:
        return chr(code) if code else "\ufffd"
    except (ValueError, OverflowError):
        return "\ufffd"


def _add_line(lines: list[Line], chars: list[str], boxes: list) -> None:
    while chars and chars[-1].isspace():
        chars, boxes = chars[:-1], boxes[:-1]
    while chars and chars[0].isspace():
        chars, boxes = chars[1:], boxes[1:]
    real = [b for b in boxes if b is not None]
    if not chars or not real:
        return
    size = round(statistics.median(b[3] - b[1] for b in real) * 2) / 2  # half-unit steps: one size per font
    lines.append(Line("".join(chars), min(b[0] for b in real), max(b[2] for b in real),
                      min(b[1] for b in real), max(b[3] for b in real), size, _edges(boxes)))


def _edges(boxes: list) -> tuple[tuple[float, float], ...]:
    """Each character's left and right edge; a space (PDFium gives it no box) spans the gap between its neighbours."""
    xs = [None if b is None else (b[0], b[2]) for b in boxes]
    for i, x in enumerate(xs):
        if x is None:
            left = xs[i - 1][1] if i and xs[i - 1] else None
            right = next((y[0] for y in xs[i + 1:] if y is not None), left)
            left = right if left is None else left
            xs[i] = (left, max(left, right))
    return tuple(xs)



def page_pixels(raw: bytes, number: int, longest: int) -> np.ndarray:
    """Page ``number`` (1-based) of the PDF ``raw`` as an RGB picture whose longest side is ``longest`` pixels."""
    with _LOCK:
        pdf = _open(raw)
        try:
            if not 1 <= number <= len(pdf):
                raise FormatError(f"no page {number} (the PDF has {len(pdf)})")
            page = pdf[number - 1]
            bitmap = page.render(scale=longest / max(page.get_size()))
            try:
                return bitmap.to_numpy()[:, :, :3].copy()
            finally:
                bitmap.close()
                page.close()
        finally:
            pdf.close()


def render(raw: bytes, dpi: float) -> list[np.ndarray]:
    """Every page of the PDF ``raw`` as an RGB picture at ``dpi`` (as a scanner would see it printed)."""
    with _LOCK:
        pdf = _open(raw)
        try:
            pictures = []
            for page in pdf:
                bitmap = page.render(scale=dpi / 72)
                pictures.append(bitmap.to_numpy()[:, :, :3].copy())
                bitmap.close()
                page.close()
            return pictures
        finally:
            pdf.close()

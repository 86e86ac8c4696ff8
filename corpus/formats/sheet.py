"""Spreadsheets: Excel workbooks (.xlsx, read by openpyxl) and CSV files, a row a sentence.

A sheet's first row with text names its columns, as a spreadsheet's header does; every row
after it is written "列名：值，列名：值。" (``corpus.tables``), so a question about one cell
finds its row.  A workbook of several sheets gives each its heading (its name), under the
workbook's own title when it has one.  Cells are shown as the sheet shows them: formulas by
their last computed value, 0.15 formatted as a percentage as 15%, dates as 2026-03-01.
A CSV may be UTF-8 (with or without Excel's byte-order mark) or GB18030 (GBK), the two
encodings Chinese spreadsheets save as; its delimiter is found from its first lines.
"""
from __future__ import annotations

import csv
import datetime as dt
import io

from corpus.formats import Extracted, FormatError, Limits, TooBig, check_package, mismatch, sniff
from corpus.tables import Table, TableBlock, join, lines

_DEFAULT_SHEETS = ("sheet", "工作表")  # Sheet1, 工作表1: names that say nothing


def extract(raw: bytes, kind: str, limits: Limits = Limits()) -> Extracted:
    if kind == "csv":
        return _csv(raw, limits)
    return _xlsx(raw, limits)


def _csv(raw: bytes, limits: Limits) -> Extracted:
    found = sniff(raw)
    if found in ("pdf", "zip", "ole"):
        raise mismatch("csv", found)
    if len(raw) > 4 * limits.chars:
        raise TooBig(f"{len(raw):,} bytes is more than {limits.chars:,} characters of text can be; "
                     "the limit is QA_MAX_DOCUMENT_CHARS")
    if b"\0" in raw:
        raise FormatError("looks like a binary file, not a CSV text")
    text = _decode(raw)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    clock = limits.clock()
    rows = []
    try:
        for row in csv.reader(io.StringIO(text), dialect):
            rows.append(tuple(row))
            if len(rows) % 1000 == 0:
                clock.check()
    except csv.Error as exc:
        raise FormatError(f"not a readable CSV ({exc})") from None
    body, tables = join([TableBlock("", tuple(lines(Table(tuple(rows), True))))])
    if not body.strip():
        raise FormatError("the CSV holds no text")
    return Extracted(body + "\n", "csv", tables=tables)


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # Excel's "CSV UTF-8" starts so
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise FormatError(f"neither UTF-8 nor GB18030 (GBK) text (byte {exc.start}); save it as CSV UTF-8") from None


def _xlsx(raw: bytes, limits: Limits) -> Extracted:
    check_package(raw, "xlsx", "Excel (.xls)", "xl/workbook.xml")
    import openpyxl

    clock = limits.clock()
    blocks: list[str | TableBlock] = []
    chars = 0
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        try:
            title = " ".join((book.properties.title or "").split())
            sheets = []
            for sheet in book.worksheets:
                rows = []
                for row in sheet.iter_rows():
                    cells = tuple(_shown(cell) for cell in row)
                    rows.append(cells)
                    chars += sum(len(c) for c in cells)
                    if chars > limits.chars:
                        raise TooBig(f"over {limits.chars:,} characters of cells; the limit is {limits.chars:,} "
                                     "(QA_MAX_DOCUMENT_CHARS)")
                    clock.check()
                written = tuple(lines(Table(tuple(rows), True)))
                if written:
                    sheets.append((" ".join(str(sheet.title).split()), written))
        finally:
            book.close()
    except (TooBig, FormatError):
        raise
    except Exception as exc:  # openpyxl raises what zipfile and the XML parser raise, of many kinds
        raise FormatError(f"damaged Excel workbook: {type(exc).__name__}: {exc}") from None
    if not sheets:
        raise FormatError("the workbook holds no text")
    if title:
        blocks.append(f"# {title}")
    named = len(sheets) > 1 or not sheets[0][0].lower().startswith(_DEFAULT_SHEETS)
    for name, written in sheets:
        if named:
            blocks.append(f"{'##' if title else '#' if len(sheets) == 1 else '##'} {name}")
        blocks.append(TableBlock(name if named else "", written))
    text, tables = join(blocks)
    return Extracted(text + "\n", "xlsx", (), {"title": title} if title else {}, tables=tables)


def _shown(cell) -> str:
    """A cell's value as the sheet shows it."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (int, float)):
        if "%" in (cell.number_format or ""):
            return f"{_number(value * 100)}%"
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    """1500.0 → 1500, 0.1 + 0.2 → 0.3: the digits a person typed, not the float's."""
    if float(value).is_integer():
        return str(int(value))
    return format(value, ".12g")

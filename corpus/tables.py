"""Tables written as text a question can find its row in: each row "列名：值，列名：值。".

A table laid out as "| 项目 | 标准 |" lines asks the reader to look up a column's name
rows away; a question about one cell ("一线城市住宿上限是多少？") then matches neither
the header's words nor the row's.  Written as "城市：一线城市，住宿上限：500元/晚。", each
row carries its column names, so it is one sentence that answers on its own, and a long
table split between passages keeps its header on every row.

Whether the first row names the columns is taken from the file where it says so (HTML
``<th>``/``<thead>``, Word's repeated header row, a spreadsheet's or CSV's first row).
Where it does not, a table of two columns is read as names and values (地址 | 北京市: a
form, where the first row is data), and a wider one as headed by its first row, the way
nearly every table of figures is set.  Where each table's rows lie in the document's text
is kept (``TableSpan``), so a citation names the table and its rows.  Everything here is pure.
"""
from __future__ import annotations

from dataclasses import dataclass

from corpus.text import CLOSERS, TERMINATORS


@dataclass(frozen=True)
class Table:
    """A table's cells, row by row (a merged cell once), and whether the file marks its first row as the header."""

    rows: tuple[tuple[str, ...], ...]
    header: bool | None = None  # True: marked so; False: marked as data; None: the file does not say


@dataclass(frozen=True)
class TableBlock:
    """A table as a loader writes it: its name (a caption, a sheet's name; "" when it has none) and its lines."""

    name: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class TableSpan:
    """Where a table's written rows lie in its document's text."""

    number: int  # 1-based, in the document's order
    name: str  # its caption or sheet name; "" when it has none
    rows: tuple[tuple[int, int], ...]  # each written row's [start, end); rows count from 1, the header not among them


@dataclass(frozen=True)
class TableRef:
    """The table a citation lies in, and the rows it covers (1-based, among the written rows)."""

    number: int
    name: str
    first_row: int
    last_row: int


def join(blocks: list[str | TableBlock], sep: str = "\n\n") -> tuple[str, tuple[TableSpan, ...]]:
    """Blocks of text joined by ``sep`` (a table's lines by newlines), and where each table's rows lie."""
    parts: list[str] = []
    spans: list[TableSpan] = []
    at = 0
    for block in blocks:
        written = block.lines if isinstance(block, TableBlock) else (block,)
        if not any(written):
            continue
        if parts:
            parts.append(sep)
            at += len(sep)
        rows = []
        for i, line in enumerate(written):
            if i:
                parts.append("\n")
                at += 1
            rows.append((at, at + len(line)))
            parts.append(line)
            at += len(line)
        if isinstance(block, TableBlock):
            spans.append(TableSpan(len(spans) + 1, block.name, tuple(rows)))
    return "".join(parts), tuple(spans)


def cited(tables: tuple[TableSpan, ...], start: int, end: int) -> TableRef | None:
    """The first table whose rows the text ``[start, end)`` touches, and those rows; None outside every table."""
    for table in tables:
        rows = [n for n, (a, b) in enumerate(table.rows, 1) if a < end and start < b]
        if rows:
            return TableRef(table.number, table.name, rows[0], rows[-1])
    return None


def lines(table: Table) -> list[str]:
    """The table as text, a line a row (rows without text left out)."""
    rows = [tuple(" ".join(cell.split()) for cell in row) for row in table.rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    if width == 1:
        return [_sentence(row[0]) for row in rows]
    headed = table.header if table.header is not None else width > 2
    if headed and len(rows) > 1:
        names = rows[0] + ("",) * (width - len(rows[0]))
        return [_sentence("，".join(_pair(name, cell) for name, cell in zip(names, row) if cell)) for row in rows[1:]]
    return [_sentence(_pair(row[0], "，".join(cell for cell in row[1:] if cell)) if row[0] else
                      "，".join(cell for cell in row if cell)) for row in rows]


def _pair(name: str, value: str) -> str:
    """"名称：值"; a name that ends in its own colon keeps it as written."""
    if not name or not value or name == value:
        return value or name
    return name + value if name[-1] in "：:" else f"{name}：{value}"


def _sentence(text: str) -> str:
    """``text`` ending as a sentence, so each row is one whatever the cleaning joins."""
    core = text.rstrip("".join(CLOSERS))
    return text if not text or (core and core[-1] in TERMINATORS) else text + "。"

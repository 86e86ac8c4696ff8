"""Lines with their boxes on a page, laid out as paragraphs: shared by PDF text layers and OCR.

From the lines' geometry: running headers and footers (the same words at the same height on
most pages) and page-number lines at the page edges are left out; lines set larger than the
body become Markdown headings; a paragraph ends after a short line of justified text, before
an indented line, a wider gap, a change of size or a numbered line (一、 （一）) after a
sentence's end.  The lines of one paragraph stay single newlines, which cleaning joins, and
a paragraph that a page break cuts continues across it.  Lines of three or more cells apart
by column gaps, one under another with their cells in the same columns, are a table and are
written as tables are (``corpus.tables``): a row a sentence naming its columns.  Otherwise
no word is changed: only lines are dropped and breaks chosen.  Everything here is pure.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from corpus.boxes import LineBox, line_box
from corpus.tables import Table, TableSpan, lines as table_lines
from corpus.text import SECTION_RE, SUBSECTION_RE, ends_sentence, inside_word, is_cjk

_EDGE_LEVELS = 2  # the top and bottom two line heights of a page may be running headers/footers
_REPEATED = 0.4  # ... when found on this share of the pages (and on two at least)
_HEADING = 1.12  # a line this much larger than the body text is a heading
_HEADING_MAX = 80
# PDFium writes a space where two words of a line stand apart; a gap of a character's width
# or more (a body character is as wide as the font is high) parts two cells of a table, where
# a word space of Latin text is a quarter of that and Chinese text has none.
_COLUMN_GAP = 1.0
_TABLE_COLUMNS = 3  # fewer columns are not taken for a table: "第一条 为了……" lines have two pieces
_PAGE_NUMBER_RE = re.compile(
    r"^[\s\-—–·•|]*(?:page\s*|第\s*)?(?:\d+|[ivxlcdm]+)(?:\s*页)?"
    r"(?:\s*(?:[/／]|of|[,，]?\s*共)\s*\d+\s*页?)?[\s\-—–·•|]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Line:
    """One line of text as PDFium or OCR found it, with its loose box (the page's units, y up)."""

    text: str
    x0: float
    x1: float
    bottom: float
    top: float
    size: float  # median character-box height (half-unit steps): the font size, whatever the text matrix did
    xs: tuple[tuple[float, float], ...] = ()  # each character's left and right edge; () when not known


@dataclass(frozen=True)
class Laid:
    """A document's text as laid out, where each page starts in it, and where each line lies on its page."""

    text: str
    starts: tuple[int, ...]
    boxes: tuple[LineBox, ...] = ()
    tables: tuple[TableSpan, ...] = ()


@dataclass(frozen=True)
class _Run:
    """Lines of one table: the first its header, each line's cells as [start, end) spans of its text."""

    lines: tuple[Line, ...]
    cells: tuple[tuple[tuple[int, int], ...], ...]


def _cells(line: Line) -> tuple[tuple[int, int], ...]:
    """The line's pieces apart by column gaps, as spans of its text (one piece when none; () without edges)."""
    if len(line.xs) != len(line.text):
        return ()
    cuts = [i for i, ch in enumerate(line.text) if ch == " " and 0 < i < len(line.text) - 1
            and line.xs[i + 1][0] - line.xs[i - 1][1] >= _COLUMN_GAP * line.size]
    bounds = [-1] + cuts + [len(line.text)]
    return tuple((a + 1, b) for a, b in zip(bounds, bounds[1:]) if line.text[a + 1 : b].strip())


def _aligned(first: Line, head: tuple[tuple[int, int], ...], line: Line, cells: tuple[tuple[int, int], ...]) -> bool:
    """Each cell of ``line`` lies under the same column of ``first``: their extents overlap."""
    if len(cells) != len(head):
        return False
    return all(min(first.xs[b0 - 1][1], line.xs[b1 - 1][1]) > max(first.xs[a0][0], line.xs[a1][0])
               for (a0, b0), (a1, b1) in zip(head, cells))


def _with_tables(lines: list[Line]) -> list[Line | _Run]:
    """A page's lines, runs of two or more table lines (three or more aligned cells) as one ``_Run``."""
    cells = [_cells(line) for line in lines]
    out: list[Line | _Run] = []
    i = 0
    while i < len(lines):
        j = i
        if len(cells[i]) >= _TABLE_COLUMNS:
            while j + 1 < len(lines) and _aligned(lines[i], cells[i], lines[j + 1], cells[j + 1]):
                j += 1
        if j > i:
            out.append(_Run(tuple(lines[i : j + 1]), tuple(cells[i : j + 1])))
        else:
            out.append(lines[i])
        i = j + 1
    return out


def reading_order(lines: list[Line], width: float) -> list[Line]:
    """``lines`` (OCR's, in any order) as a reader reads them: top to bottom, and where the page
    is set in two columns, the left column's lines before the right's, band by band between
    the lines that span both (a title, a full-width table)."""
    lines = sorted(lines, key=lambda line: (-line.top, line.x0))
    gutter = _gutter(lines, width)
    if gutter is None:
        return _rows(lines)
    out: list[Line] = []
    band: list[Line] = []
    for line in lines + [None]:
        if line is None or (line.x0 < gutter < line.x1):  # spans both columns: the band ends
            out += [x for x in band if x.x1 <= gutter] + [x for x in band if x.x0 >= gutter]
            band = []
            if line is not None:
                out.append(line)
        else:
            band.append(line)
    return _rows(out)


def _rows(lines: list[Line]) -> list[Line]:
    """Pieces of one row (a running header's left and right halves) joined into one line, left
    to right, as PDFium joins them in a text layer, so both readings of a page find the same lines."""
    out: list[Line] = []
    for line in lines:
        prev = out[-1] if out else None
        if prev and _same_row(prev, line):
            left, right = sorted((prev, line), key=lambda x: x.x0)
            xs = left.xs + ((left.x1, right.x0),) + right.xs if left.xs and right.xs else ()
            out[-1] = Line(left.text + " " + right.text, left.x0, right.x1, min(prev.bottom, line.bottom),
                           max(prev.top, line.top), max((prev, line), key=lambda x: len(x.text)).size, xs)
        else:
            out.append(line)
    return out


def _same_row(a: Line, b: Line) -> bool:
    """Side by side (apart, not overlapping), and at one height: they share half the lower one's height."""
    overlap = min(a.top, b.top) - max(a.bottom, b.bottom)
    return (b.x0 >= a.x1 or a.x0 >= b.x1) and overlap >= 0.5 * min(a.top - a.bottom, b.top - b.bottom)


def _gutter(lines: list[Line], width: float) -> float | None:
    """The x of the gap between two columns, when the page has them: a position in the middle
    fifth that few lines cross, with at least three lines wholly on either side."""
    if len(lines) < 6:
        return None
    best = None
    for step in range(41):
        x = width * (0.4 + 0.2 * step / 40)
        crossing = sum(line.x0 < x < line.x1 for line in lines)
        left = sum(line.x1 <= x for line in lines)
        right = sum(line.x0 >= x for line in lines)
        if left >= 3 and right >= 3 and crossing <= 0.2 * len(lines) and (best is None or crossing < best[0]):
            best = (crossing, x)
    return None if best is None else best[1]


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


def layout(pages: list[list[Line]], sizes: list[tuple[float, float]] | None = None) -> Laid:
    """The document's text from its pages' lines, the offset where each page starts, and, given
    each page's ``sizes`` (width, height), where each line that has its characters' edges lies.

    A page without text starts where the next text does, so it covers no character.
    """
    dropped = running_lines(pages)
    kept = [[line for i, line in enumerate(page) if i not in dropped[p]] for p, page in enumerate(pages)]
    everything = [line for page in kept for line in page]
    if not everything:
        return Laid("", tuple(0 for _ in pages))
    body = _body(everything)
    out: list[str] = []
    length, starts, pending = 0, [], 0
    boxes: list[LineBox] = []
    tables: list[TableSpan] = []
    prev: Line | None = None
    after_table = False
    for number, lines in enumerate(kept, 1):
        pending += 1
        if not lines:
            continue
        page = _page(lines, body)
        for n, line in enumerate(_with_tables(lines)):
            if isinstance(line, _Run):  # a table: its own block, a row a line
                sep = "" if prev is None else "\n\n"
                if n == 0:
                    out.append(sep)
                    length += len(sep)
                    starts.extend([length] * pending)
                    pending, sep = 0, ""
                rows = []
                for k, row in enumerate(_rows_of(line)):
                    piece = (sep if k == 0 else "\n") + row
                    out.append(piece)
                    length += len(piece)
                    rows.append((length - len(row), length))
                    if sizes:
                        boxes.extend(_cell_boxes(line, k + 1, row, length - len(row), number, sizes[number - 1]))
                tables.append(TableSpan(len(tables) + 1, "", tuple(rows)))
                prev, after_table = line.lines[-1], True
                continue
            sep = "\n\n" if after_table and prev is not None else _separator(prev, line, n == 0, body, page)
            after_table = False
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
            if sizes and len(line.xs) == len(line.text):  # the line is the text's last characters
                boxes.append(line_box(length - len(line.text), number, list(line.xs), line.bottom, line.top,
                                      *sizes[number - 1]))
            prev = line
    starts.extend([length] * pending)
    return Laid("".join(out) + "\n", tuple(starts), tuple(boxes), tuple(tables))


def _rows_of(run: _Run) -> list[str]:
    """The table's data rows as ``corpus.tables`` writes them, headed by its first line."""
    rows = tuple(tuple(line.text[a:b] for a, b in cells) for line, cells in zip(run.lines, run.cells))
    return table_lines(Table(rows, True))


def _cell_boxes(run: _Run, k: int, row: str, at: int, number: int, size: tuple[float, float]) -> list[LineBox]:
    """Boxes for the cells of the run's line ``k`` written in ``row`` (which starts at offset ``at``):
    each cell's characters where they stand on the page; the column names written beside them have none."""
    line, out, pos = run.lines[k], [], 0
    for a, b in run.cells[k]:
        value = line.text[a:b]
        found = row.find(value, pos)
        if found < 0 or " ".join(value.split()) != value:
            continue
        out.append(line_box(at + found, number, list(line.xs[a:b]), line.bottom, line.top, *size))
        pos = found + len(value)
    return out

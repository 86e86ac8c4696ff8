"""Where a document's characters lie on its pages, so a citation can be shown on the page itself.

A PDF's text layer and OCR both place every character; the layout keeps, for each line it
puts in the text, the offset where the line starts, its page, its height on the page and
each character's left and right edge.  Everything is stored as fractions of the page (y
from the top, as pictures count), so a client draws a box over a picture of the page at
any size without knowing the page's units.  The edges are packed: two 16-bit numbers a
character (1/65,535 of the page's width, 0.01 pt on an A4 page), base64 in the index: the
article's PDF holds 60 KB of boxes beside its text's 24 KB (7.6 bytes a character, each
line's fields included), where tuples of floats would take over 60 a character in memory.
Everything here is pure.
"""
from __future__ import annotations

import base64
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

_SCALE = 65535


@dataclass(frozen=True)
class LineBox:
    """One line of a page as it lies in the document's text and on the page."""

    start: int  # offset in the document's text of the line's first character
    length: int  # its characters, each with an edge pair in ``edges``
    page: int  # 1-based
    top: float  # fractions of the page's height, from its top edge
    bottom: float
    edges: str  # base64 of little-endian uint16 (left, right) per character, in 1/65,535 of the page's width

    @property
    def end(self) -> int:
        return self.start + self.length

    def lefts_rights(self) -> np.ndarray:
        """The characters' (left, right) edges as fractions of the page's width, shape (length, 2)."""
        return np.frombuffer(base64.b64decode(self.edges), "<u2").reshape(-1, 2) / _SCALE


@dataclass(frozen=True)
class Rect:
    """A box on a page, in fractions of the page: x from the left, y from the top."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float


def line_box(start: int, page: int, xs: list[tuple[float, float]], bottom: float, top: float,
             width: float, height: float) -> LineBox:
    """The box of a line whose characters' edges are ``xs``, its extent ``bottom``..``top``, in a
    page's units (y up, as PDF's) on a page ``width`` × ``height``."""
    edges = np.clip(np.asarray(xs, float).reshape(-1, 2) / width, 0, 1)
    packed = np.round(edges * _SCALE).astype("<u2").tobytes()
    clip = lambda y: min(max(y, 0.0), 1.0)  # noqa: E731
    return LineBox(start, len(xs), page, round(clip(1 - top / height), 5), round(clip(1 - bottom / height), 5),
                   base64.b64encode(packed).decode("ascii"))


def rects(lines: tuple[LineBox, ...], start: int, end: int) -> list[Rect]:
    """The boxes that cover the text ``[start, end)``: one a line, from the first of its characters
    in the span to the last, in the text's order.  Characters no line holds (the breaks
    between paragraphs, a heading's "# ") have none."""
    out = []
    first = max(bisect_right(lines, start, key=lambda line: line.start) - 1, 0)
    for line in lines[first:]:
        if line.start >= end:
            break
        a, b = max(start, line.start), min(end, line.end)
        if a >= b:
            continue
        edges = line.lefts_rights()[a - line.start : b - line.start]
        out.append(Rect(line.page, round(float(edges[:, 0].min()), 5), line.top, round(float(edges[:, 1].max()), 5),
                        line.bottom))
    return out

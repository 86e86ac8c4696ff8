"""Sentence splitting that respects Chinese punctuation, quotes and numbers."""
from __future__ import annotations

from corpus.text import CLAUSE_BREAKS, CLOSERS, TERMINATORS

Span = tuple[int, int]


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of ``text[start:end]``, whitespace trimmed, in text coordinates.

    A sentence ends after a terminator (。！？；… and their ASCII forms), keeps any
    closing quotes or brackets that follow, and always ends at a newline.  An ASCII
    '.' never ends a sentence, so 10.76亿 stays whole.
    """
    end = len(text) if end is None else end
    spans: list[Span] = []
    i = s = start
    while i < end:
        ch = text[i]
        if ch == "\n" or ch in TERMINATORS:
            i += 1
            while i < end and (text[i] in TERMINATORS or text[i] in CLOSERS):
                i += 1
            _add(text, s, i, spans)
            s = i
        else:
            i += 1
    _add(text, s, end, spans)
    return spans


def _add(text: str, s: int, e: int, spans: list[Span]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s, e))


def limit_length(text: str, spans: list[Span], max_chars: int) -> list[Span]:
    """Break sentences longer than ``max_chars`` at clause punctuation, never inside a number."""
    out: list[Span] = []
    for s, e in spans:
        while e - s > max_chars:
            cut = _cut_point(text, s, s + max_chars)
            out.append((s, cut))
            s = cut
        out.append((s, e))
    return out


def _cut_point(text: str, s: int, limit: int) -> int:
    for i in range(limit, s + max(1, (limit - s) // 3), -1):
        if text[i - 1] in CLAUSE_BREAKS:
            return i
    cut = limit
    while cut > s + 1 and _joined(text[cut - 1], text[cut]):
        cut -= 1
    return cut if cut > s + 1 else limit


def _joined(left: str, right: str) -> bool:
    """True when a cut between these two characters would split a number or a word."""
    numeric = "0123456789.%．％"
    return (left in numeric and right in numeric) or (left.isascii() and left.isalnum() and right.isascii() and right.isalnum())

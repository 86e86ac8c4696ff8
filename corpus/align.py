"""Map positions in cleaned text back to the original text."""
from __future__ import annotations

from corpus.text import EMPHASIS_RE


def align(clean: str, original: str) -> list[int]:
    """For each character of ``clean``, its index in ``original``.

    Cleaning only ever drops characters (whitespace, emphasis markers) and turns a
    paragraph break into one newline, so a greedy left-to-right match is exact.
    """
    dropped = {i for m in EMPHASIS_RE.finditer(original) for i in range(m.start(), m.end())}
    out: list[int] = []
    j = 0
    for ch in clean:
        while j < len(original) and (j in dropped or original[j] != ch):
            j += 1
        if j >= len(original):
            raise ValueError("clean text is not a cleaned form of the original")
        out.append(j)
        j += 1
    return out

"""Page numbers of a span of a paged document's text."""
from __future__ import annotations

from bisect import bisect_right


def pages_of(pages: tuple[int, ...], start: int, end: int) -> tuple[int, ...]:
    """The 1-based numbers of the pages that the span ``[start, end)`` touches.

    Page i + 1 covers ``[pages[i], pages[i + 1])`` (the last page runs to the end of the
    text); a page without text covers nothing.  An unpaged document (``pages == ()``) or
    an empty span touches no page.
    """
    if not pages or end <= start or end <= pages[0]:  # nothing, or all before the text's first page
        return ()
    first = max(bisect_right(pages, start) - 1, 0)
    last = max(bisect_right(pages, end - 1) - 1, 0)
    bounds = pages[1:] + (max(end, pages[-1]) + 1,)
    return tuple(i + 1 for i in range(first, last + 1) if pages[i] < bounds[i])

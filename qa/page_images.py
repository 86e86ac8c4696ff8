"""Pictures of documents' pages, to show a citation where it stands on the page.

Rendered from the file the document was read from, once its bytes are checked to be the
ones indexed (``corpus.documents.original``), and kept: a person reading a citation
often turns to the page again, or to the next answer on it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from corpus.documents import CorpusError, original
from corpus.formats import FormatError, page_png
from qa.types import PageUnavailable

# The longest side of a page's picture: an A4 page at 137 dpi, where 10 pt text is sharp;
# the article's pages came out at 150–190 KB (corpus.formats.image.png_of), in 90–140 ms here.
LONGEST = 1600
CACHED = 64  # pictures kept (about 10 MB)


class PageImages:
    """PNG pictures of pages by (file sha256, page), the most recently used ``capacity`` kept."""

    def __init__(self, capacity: int = CACHED) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def png(self, path: str, sha256: str, kind: str, number: int) -> bytes:
        key = (sha256, number)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        try:
            png = page_png(kind, original(path, sha256), number, LONGEST)
        except (CorpusError, FormatError) as exc:
            raise PageUnavailable(str(exc)) from None
        with self._lock:
            self._kept[key] = png
            while len(self._kept) > self._capacity:
                self._kept.popitem(last=False)
        return png


PAGES = PageImages()  # one for the process: every knowledge base's service shares it

"""Sentence-aware passages with offsets into the original document text."""
from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.documents import CorpusError, Document
from corpus.offsets import Runs, original_span, runs_of
from corpus.sentences import Span, limit_length, split_sentences
from corpus.structure import Parsed, parse


@dataclass(frozen=True)
class SplitSettings:
    """How documents are cut into passages; recorded in the index manifest."""

    max_chars: int = 250
    overlap_sentences: int = 1
    # A passage shorter than this is a fragment ("（一）立案；") unless its whole section is
    # that short: it is widened backwards over sentences the previous passage already holds.
    min_chars: int = 40

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        if not 0 <= self.min_chars <= self.max_chars // 2:
            raise ValueError("min_chars must be from 0 to half of max_chars")
        if self.overlap_sentences < 0:
            raise ValueError("overlap_sentences must be 0 or more")


@dataclass(frozen=True)
class Passage:
    """A retrievable unit: ``text`` is the cleaned form of ``original[start:end]``.

    ``sentences`` are spans within ``text``; ``offsets`` maps any position of
    ``text`` to the original (see corpus.offsets), as cleaning recorded it.  ``context`` is
    the lead-in that a passage continuing a list goes on from ("…应当遵守下列程序："), in
    another passage: it is embedded and indexed with the passage, never part of its text.
    """

    id: str
    doc_id: str
    section: str
    text: str
    start: int
    end: int
    sentences: tuple[Span, ...]
    offsets: Runs
    context: str = ""

    @property
    def indexed_text(self) -> str:
        """What retrieval sees of the passage: its lead-in, if any, then its text."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original offsets of the passage-text span ``[start, end)``."""
        return original_span(self.offsets, start, end)


@dataclass(frozen=True)
class ParsedDocument:
    """A document with its structure; what the index keeps about each source."""

    doc: Document
    parsed: Parsed

    @property
    def title(self) -> str:
        return self.parsed.title


def parse_document(doc: Document) -> ParsedDocument:
    return ParsedDocument(doc, parse(doc.text, fallback_title=doc.doc_id))


# A list's lead-in ends with a colon ("应当遵守下列程序：") and its items open with a number:
# （一）, (1), 1. or 1、, ①.
_ITEM_RE = re.compile(r"^(?:[（(][一二三四五六七八九十\d]+[）)]|\d+[.、．](?!\d)|[①-⑳])")


def leads_in(sentence: str) -> bool:
    """A sentence that announces what follows: "…应当遵守下列程序："."""
    return sentence.rstrip().endswith(("：", ":"))


def _row(sentence: str) -> bool:
    """A table row, as the Word and HTML loaders write it: "| 城市 | 住宿上限 |"."""
    return len(sentence) > 1 and sentence.startswith("|") and sentence.endswith("|")


def pack(sentences: list[Span], max_chars: int, overlap: int, leads: frozenset[int] = frozenset(),
         min_chars: int = 0) -> list[tuple[int, int]]:
    """Group consecutive sentences into windows [i, j) of at most ``max_chars``.

    The next window repeats the last ``overlap`` sentences of the previous one when
    they are short enough to leave room for new text.  A window never ends on a lead-in
    (a sentence in ``leads``) that its items follow, and one shorter than ``min_chars``
    reaches back over sentences its predecessor holds, as far as ``max_chars`` allows.
    """
    windows: list[tuple[int, int]] = []
    i, n = 0, len(sentences)
    while i < n:
        j = i + 1
        while j < n and sentences[j][1] - sentences[i][0] <= max_chars:
            j += 1
        while j < n and j - 1 > i and j - 1 in leads:
            j -= 1  # the lead-in opens the next window, with its first item
        a = i
        while a > 0 and sentences[j - 1][1] - sentences[a][0] < min_chars \
                and sentences[j - 1][1] - sentences[a - 1][0] <= max_chars:
            a -= 1
        windows.append((a, j))
        if j >= n:
            break
        back = max(i + 1, j - overlap)
        if sentences[j - 1][1] - sentences[back][0] > max_chars // 2:
            back = j
        i = back
    return windows


# Each sentence costs a 384-dimension vector (768 bytes in float16) whatever its length, so a
# text of "是。好。" would cost 384 bytes a character; a sentence shorter than this joins the one
# before it (or after it, first in its section), which bounds the sentence store at 192 bytes a
# character plus one sentence a section.  Real text rarely has one: none in the article or the
# regulations, 1 of 3,792 in CMRC and 5 of 11,935 in DRCD ("等等。").
MIN_SENTENCE_CHARS = 4


def merge_short(spans: list[Span], min_chars: int = MIN_SENTENCE_CHARS) -> list[Span]:
    """``spans`` with every one shorter than ``min_chars`` joined to a neighbour (contiguous spans of one section)."""
    out: list[Span] = []
    for s, e in spans:
        if out and (e - s < min_chars or out[-1][1] - out[-1][0] < min_chars):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _context(sentences: list[str], first: int) -> str:
    """What a window starting at sentence ``first`` continues: the lead-in of the list it opens
    inside, or the header row of the table whose rows it goes on with."""
    if first == 0:
        return ""
    if _row(sentences[first]):
        k = first
        while k > 0 and _row(sentences[k - 1]):
            k -= 1
        return sentences[k] if k < first else ""
    if not _ITEM_RE.match(sentences[first]):
        return ""
    for k in range(first - 1, -1, -1):
        if leads_in(sentences[k]):
            return sentences[k]
        if not _ITEM_RE.match(sentences[k]):
            return ""
    return ""


def _leads(sentences: list[str]) -> frozenset[int]:
    """Sentences a window may not end on when what follows them does: a list's lead-in, a table's header row."""
    return frozenset(k for k, s in enumerate(sentences)
                     if leads_in(s) or (_row(s) and (k == 0 or not _row(sentences[k - 1]))))


def make_passages(pdoc: ParsedDocument, settings: SplitSettings) -> list[Passage]:
    """Cut a parsed document into passages that never cross a section path."""
    p, doc = pdoc.parsed, pdoc.doc
    passages: list[Passage] = []
    for segment in p.segments:
        spans = merge_short(limit_length(p.clean, split_sentences(p.clean, segment.start, segment.end),
                                         settings.max_chars))
        texts = [p.clean[s:e] for s, e in spans]
        for i, j in pack(spans, settings.max_chars, settings.overlap_sentences, _leads(texts), settings.min_chars):
            a, b = spans[i][0], spans[j - 1][1]
            passages.append(
                Passage(
                    id=f"{doc.doc_id}-p{len(passages):03d}",
                    doc_id=doc.doc_id,
                    section=segment.section,
                    text=p.clean[a:b],
                    start=p.offsets[a],
                    end=p.offsets[b - 1] + 1,
                    sentences=tuple((s - a, e - a) for s, e in spans[i:j]),
                    offsets=runs_of(p.offsets[a:b]),
                    context=_context(texts, i),
                )
            )
    return passages


def plan(documents: list[Document], split: SplitSettings) -> tuple[list[ParsedDocument], list[Passage]]:
    """Parse and cut every document (pure); CorpusError names a document that yields nothing."""
    parsed = [parse_document(doc) for doc in documents]
    passages = [p for pd in parsed for p in make_passages(pd, split)]
    with_text = {p.doc_id for p in passages}
    for pd in parsed:
        if pd.doc.doc_id not in with_text:
            raise CorpusError(f"{pd.doc.path}: no body text to index (only headings?)")
    return parsed, passages


def length_profile(passages: list[Passage], min_chars: int) -> dict[str, float]:
    """How long the passages are, in characters: quantiles, and how many are shorter than
    ``min_chars`` as a whole section (``short``) or as a piece of a longer one (``fragments``)."""
    if not passages:
        return {}
    lengths = sorted(len(p.text) for p in passages)
    at = lambda q: lengths[min(len(lengths) - 1, int(q * len(lengths)))]  # noqa: E731
    per_section: dict[tuple[str, str], int] = {}
    for p in passages:
        per_section[p.doc_id, p.section] = per_section.get((p.doc_id, p.section), 0) + 1
    under = [p for p in passages if len(p.text) < min_chars]
    fragments = sum(per_section[p.doc_id, p.section] > 1 for p in under)
    median = (lengths[(len(lengths) - 1) // 2] + lengths[len(lengths) // 2]) / 2
    return {"min": lengths[0], "p10": at(0.1), "p25": at(0.25), "median": float(median), "p75": at(0.75),
            "p90": at(0.9), "max": lengths[-1], "mean": round(sum(lengths) / len(lengths), 1),
            "short": len(under) - fragments, "fragments": fragments}

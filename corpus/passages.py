"""Sentence-aware passages with offsets into the original document text."""
from __future__ import annotations

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

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        if self.overlap_sentences < 0:
            raise ValueError("overlap_sentences must be 0 or more")


@dataclass(frozen=True)
class Passage:
    """A retrievable unit: ``text`` is the cleaned form of ``original[start:end]``.

    ``sentences`` are spans within ``text``; ``offsets`` maps any position of
    ``text`` to the original (see corpus.offsets), as cleaning recorded it.
    """

    id: str
    doc_id: str
    section: str
    text: str
    start: int
    end: int
    sentences: tuple[Span, ...]
    offsets: Runs

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


def pack(sentences: list[Span], max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """Group consecutive sentences into windows [i, j) of at most ``max_chars``.

    The next window repeats the last ``overlap`` sentences of the previous one when
    they are short enough to leave room for new text.
    """
    windows: list[tuple[int, int]] = []
    i, n = 0, len(sentences)
    while i < n:
        j = i + 1
        while j < n and sentences[j][1] - sentences[i][0] <= max_chars:
            j += 1
        windows.append((i, j))
        if j >= n:
            break
        back = max(i + 1, j - overlap)
        if sentences[j - 1][1] - sentences[back][0] > max_chars // 2:
            back = j
        i = back
    return windows


def make_passages(pdoc: ParsedDocument, settings: SplitSettings) -> list[Passage]:
    """Cut a parsed document into passages that never cross a section path."""
    p, doc = pdoc.parsed, pdoc.doc
    passages: list[Passage] = []
    for segment in p.segments:
        spans = limit_length(p.clean, split_sentences(p.clean, segment.start, segment.end), settings.max_chars)
        for i, j in pack(spans, settings.max_chars, settings.overlap_sentences):
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

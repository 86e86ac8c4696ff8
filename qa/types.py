"""The values retrieval and answering pass around and return."""
from __future__ import annotations

from dataclasses import dataclass, field

from corpus.facts import Fact
from corpus.tables import TableRef


@dataclass(frozen=True)
class Highlight:
    """A span of the original document text: the answer, or a matched question term."""

    start: int
    end: int
    kind: str  # "sentence" (the passage's best sentence) | "term" (a question term)
    text_start: int  # the same span within the passage's cleaned text
    text_end: int


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with every score that placed it."""

    passage_id: str
    doc_id: str
    title: str
    section: str
    text: str
    start: int
    end: int
    score: float
    scores: dict[str, float]
    highlights: tuple[Highlight, ...] = ()
    pages: tuple[int, ...] = ()  # 1-based pages the passage lies on (paged formats such as PDF)
    parts: dict[str, float] = field(default_factory=dict)  # the learned order's score by feature; empty: the blend
    table: TableRef | None = None  # the table and rows it lies in (Word, HTML, spreadsheets); None outside tables


@dataclass(frozen=True)
class AnswerSpan:
    """The few characters that answer (a figure, a date, a name, the items of a list) inside the answer."""

    text: str
    start: int  # original document offsets, like the answer's
    end: int
    text_start: int  # the same span within the answer's text
    text_end: int
    # The calibrated chance that it is right (CMRC character F1 ≥ 0.5), from qa/reading.py;
    # None where nothing estimates it (the rules alone, with the reader switched off).
    probability: float | None = None
    shown: bool = False  # probability ≥ the settings' span_threshold: show it as the answer


@dataclass(frozen=True)
class Answer:
    """The verbatim sentence(s) that answer, with their citation and the short answer inside them."""

    text: str
    passage_id: str
    doc_id: str
    title: str
    section: str
    start: int
    end: int
    pages: tuple[int, ...] = ()  # 1-based pages the answer lies on (paged formats such as PDF)
    span: AnswerSpan | None = None  # None only where no answer sentence exists to cut it from
    source: str = "passage"  # "passage", or "document": the document's own facts (author, source, …)
    table: TableRef | None = None  # the table and rows it lies in (Word, HTML, spreadsheets); None outside tables


@dataclass(frozen=True)
class Result:
    question: str
    answerable: bool
    reason: str
    answer: Answer | None
    hits: tuple[Hit, ...]
    confidence: float = 0.0  # the best passage's sentence score; the no-answer threshold applies to it
    timings_ms: dict[str, float] = field(default_factory=dict)
    question_type: str = "other"  # qa.answer_types.QUESTION_TYPES, or "document" for the document's own facts
    missing: str = ""  # when refused because the text lacks the detail asked for: what it lacks (文中没有提到具体年份)
    refusal: str = ""  # why it was refused (REFUSALS); "" when answered


# Why a question was refused: no passage scores high enough; the index is empty; a place the
# question names is in none of the closest passages; the detail it asks for (a year, a
# number) is in none of the close sentences; the reader finds no answer in the closest passage.
REFUSALS = ("low_confidence", "empty_index", "absent_name", "absent_detail", "reader_no_answer")


@dataclass(frozen=True)
class DocumentInfo:
    """One indexed document as its readers see it: its text (what every offset points into) and what was read of it."""

    doc_id: str
    title: str
    author: str
    sections: tuple[str, ...]  # its section headings, in order
    text: str
    kind: str  # the format it was read from: markdown, pdf, docx, html, text
    genre: str  # how its structure was read: report, law or faq (corpus.structure)
    pages: tuple[int, ...]  # where each page starts in ``text`` (paged formats)
    added_at: str  # when this content was indexed
    facts: tuple[Fact, ...]  # its own title, author, source… with their offsets
    passages: int  # how many passages it was cut into
    ocr_pages: tuple[int, ...] = ()  # pages whose text OCR read (a scan, a picture)
    low_confidence_pages: tuple[int, ...] = ()  # those of them read with low confidence: check their text
    page_images: bool = False  # its pages can be shown as pictures, a citation's characters boxed on them


@dataclass(frozen=True)
class IndexInfo:
    """What a client may know about the index being served."""

    model: str
    built_at: str
    build_id: str
    documents: int
    passages: int
    sentences: int
    dense_kind: str
    passage_chars: dict[str, float] = field(default_factory=dict)  # corpus.passages.length_profile
    min_chars: int = 0  # passages shorter than this are whole sections, never fragments


class QuestionError(ValueError):
    """The question or a request parameter is not acceptable; the message says why."""


class NotFound(LookupError):
    """An unknown document or passage id."""


class PageUnavailable(RuntimeError):
    """A page's picture cannot be made now: the file the document was read from is gone or has changed."""


class Overloaded(RuntimeError):
    """Too much work queued to answer in time; ``retry_after`` says when to try again (seconds)."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

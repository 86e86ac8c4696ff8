"""Request and response shapes of the HTTP API."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qa.limits import DEFAULT_TOP_K, MAX_QUESTION_CHARS, MAX_TOP_K

# "Holds a character that is neither whitespace nor invisible": Python's whitespace plus the
# zero-width characters (U+200B–U+200D, U+2060, the BOM U+FEFF), spelled out so the schema
# (ECMA regex), the validators below and schemathesis agree on what an empty question is.
NOT_BLANK = (r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200d\u2028\u2029\u202f\u205f\u2060"
             r"\u3000\ufeff]")
_VISIBLE = re.compile(NOT_BLANK)
BLANK = "question is empty: only whitespace or invisible characters"


def not_blank(value: str) -> str:
    if not _VISIBLE.search(value):
        raise ValueError(BLANK)
    return value


class ErrorOut(BaseModel):
    detail: str


# What a data endpoint may answer besides 200 (all as {"detail": ...}).
ERRORS = {status: {"model": ErrorOut} for status in (401, 404, 408, 413, 422, 429, 503)}


class AskRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="问题（中文）",
                          json_schema_extra={"pattern": NOT_BLANK})
    # JSON Schema counts 9.0 as an integer, so lax mode here; "5" and true are still refused.
    top_k: int = Field(default=DEFAULT_TOP_K, ge=1, le=MAX_TOP_K, strict=False)
    doc_id: str | None = Field(default=None, max_length=200)

    @field_validator("top_k", mode="before")
    @classmethod
    def a_number(cls, value):
        if isinstance(value, (str, bool)):
            raise ValueError("top_k must be an integer, not a string or boolean")
        return value

    @field_validator("question")
    @classmethod
    def visible(cls, value: str) -> str:
        return not_blank(value)


class HighlightOut(BaseModel):
    start: int
    end: int
    kind: str
    text_start: int
    text_end: int


class Scores(BaseModel):
    dense: float
    dense_rank: int
    bm25: float
    bm25_rank: int
    fused: float
    sentence: float
    blend: float = Field(description="(dense + 2 × sentence) / 3: the fixed order, and the scale of `confidence`")


class Paged(BaseModel):
    """Where a cited span lies in a paged document (PDF)."""

    page: int | None = Field(default=None, description="1-based page of a paged document (PDF) where the span starts")
    pages: list[int] = Field(default=[], description="every page the span touches; empty for unpaged documents")


class AnswerSpanOut(BaseModel):
    """The few characters that answer, inside the answer text."""

    text: str
    start: int = Field(description="offset in the original document text, like the answer's")
    end: int
    text_start: int = Field(description="the same span within the answer's text (code points)")
    text_end: int
    probability: float | None = Field(default=None, description="the calibrated chance that it is right (its CMRC "
                                      "character F1 against a correct answer ≥ 0.5); null when nothing estimates it")
    shown: bool = Field(default=False, description="true when the probability reaches QA_SPAN_THRESHOLD (0.9): show "
                        "it as the answer; otherwise the answer sentence is the answer and this span only a guess")


class AnswerOut(Paged):
    text: str
    passage_id: str = Field(description="the passage it comes from; empty for a document fact outside every passage")
    doc_id: str
    title: str
    section: str
    start: int
    end: int
    span: AnswerSpanOut | None = Field(description="the short answer: a figure, a date, a name, the items of a list; "
                                                   "the whole sentence when nothing shorter answers; show it as "
                                                   "the answer only when its `shown` is true")
    source: str = Field(description='"passage", or "document": the document\'s own facts (title, author, source)')


class IndexInfo(BaseModel):
    model: str
    built_at: str
    build_id: str
    passages: int


class Timings(BaseModel):
    embed: float
    dense: float
    bm25: float
    rerank: float
    answer: float
    total: float


class PassageRef(BaseModel):
    id: str
    section: str
    start: int
    end: int


class PassageDetail(Paged):
    id: str
    doc_id: str
    title: str
    section: str
    text: str
    start: int = Field(description="offset of the passage's first character in the original document text")
    end: int = Field(description="offset just past its last character: text[start:end] is the cited span")


class PassageOut(PassageDetail):
    score: float
    scores: Scores
    parts: dict[str, float] = Field(description="the learned order's score split by feature (they sum to `score`); "
                                                "empty when the blend ordered (one document's passages)")
    highlights: list[HighlightOut]


class AskResponse(BaseModel):
    question: str
    answerable: bool
    reason: str
    confidence: float
    question_type: str = Field(description="number, date, person, place, list, reason, method, definition, other; "
                                           "document for a question about the document itself")
    missing: str = Field(description="when refused for it: the detail the text does not give (文中没有提到具体年份)")
    refusal: str = Field(default="", description="why it was refused: low_confidence, empty_index, absent_name, "
                                                 "absent_detail or reader_no_answer; empty when answered")
    answer: AnswerOut | None
    passages: list[PassageOut]
    timings_ms: Timings
    index: IndexInfo


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    author: str
    sections: list[str]
    chars: int
    passages: int
    kind: str = Field(description="markdown, text, pdf, docx or html")
    pages: int = Field(description="pages of a paged document (PDF); 0 otherwise")
    page_starts: list[int] = Field(description="offset in text where each page starts (paged documents)")
    added_at: str = Field(description="when this version of the document was indexed (ISO 8601)")
    genre: str = Field(description="how its structure was read: report (一、（一） headings), law (第X章 headings, "
                                   "第X条 units) or faq (问/答 units)", examples=["law"])


class FactOut(BaseModel):
    kind: str = Field(description="title, subtitle, author, role, source, issue or date")
    value: str
    start: int = Field(description="offset in text where the fact stands; -1 when only the file's properties hold it")
    end: int


class DocumentDetail(DocumentSummary):
    text: str = Field(description="the original text; every citation's [start, end) slices it")
    passage_spans: list[PassageRef]
    facts: list[FactOut] = Field(description="the document's own facts, found at build time; they answer "
                                             "questions about the document (作者是谁？)")


class Health(BaseModel):
    status: str
    model: str
    documents: int
    passages: int
    built_at: str
    build_id: str


class Reloaded(BaseModel):
    reloaded: bool
    passages: int
    built_at: str
    build_id: str


class LocalChange(BaseModel):
    """Files and folders on the server's machine to add, ids to remove, or one folder to sync."""

    model_config = ConfigDict(strict=True, extra="forbid")

    add: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default=[], max_length=10_000, description="files or folders to add (a document with the same id is replaced)",
        examples=[["/srv/docs/员工手册.docx"]])
    remove: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=10_000, description="ids of documents to remove", examples=[["old-notice"]])
    sync: str | None = Field(default=None, min_length=1, max_length=4096,
                             description="a folder: new and changed documents in, vanished ones out (alone)",
                             examples=["/srv/docs"])

    @model_validator(mode="after")
    def one_kind(self):
        if self.sync is not None and (self.add or self.remove):
            raise ValueError("sync a folder alone, or add and remove without sync")
        if self.sync is None and not (self.add or self.remove):
            raise ValueError("name files to add, ids to remove, or a folder to sync")
        return self


class Changed(BaseModel):
    """What an upload, replacement or removal did; the service already answers from the new version."""

    added: list[str]
    replaced: list[str]
    removed: list[str]
    unchanged: int
    documents: int
    passages: int
    build_id: str
    seconds: float

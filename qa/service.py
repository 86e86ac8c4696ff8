"""The question-answering service: one object that answers and looks things up.

Built once (CLI, API lifespan, eval runner) and safe to share between threads:
the index is read-only, and queries reach the encoder through one batching
worker, since the encoder already uses every core.  The steps live in their own
modules: ``retrieval`` (candidates), ``sentence_stage``, ``ranking`` (final
order) and ``answer`` (extent, highlights, verdict).
"""
from __future__ import annotations

from collections.abc import Sequence
import time
from contextvars import ContextVar
from dataclasses import replace

import numpy as np

from corpus.boxes import Rect, rects
from corpus.formats import PICTURED
from corpus.pages import pages_of
from corpus.tables import cited
from corpus.passages import Passage
from corpus.tokenize import bigrams, tokenize
from index.encoder import Encoder
from index.store import DocumentRecord, LoadedIndex
from qa import answer as answers
from qa.answer_types import Expectation, expectation, question_names, question_type
from qa.document_questions import asked_fact, fact_extent, find_fact
from qa import ranking
from qa.batching import QueryBatcher
from qa.clock import elapsed_ms
from qa.limits import DEFAULT_TOP_K, MAX_DOC_FILTER, MAX_QUESTION_CHARS, MAX_TOP_K
from qa.retrieval import Candidates, candidates
from qa.sentence_stage import SentenceScores, SentenceStage
from qa.settings import Settings
from qa import reading
from qa.page_images import PAGES
from qa.span import short_answer
from qa.types import Answer, AnswerSpan, DocumentInfo, Hit, IndexInfo, NotFound, QuestionError, Result

# The learned order corrects the blend only where the blend's best candidates come from several
# documents: it was fitted to tell documents apart (each CMRC/DRCD context is one), and inside
# one document the blend orders better (README, "How ranking works").  Deciding on the best five
# rather than all candidates kept CMRC recall@1 at 0.949 and raised regs_dev's from 0.800 to
# 0.825, where nearly every question settles on one regulation.
MIXED_TOP = 5
# How much of the passage the reader reads, around the answer sentence: the reader's cost grows
# with it (READMe, "The reader").
READ_CHARS = 250
# A request for boxes covers at most this many characters: a box a line, about 40 characters.
MAX_BOXED_CHARS = 20_000
# Where ask_with_candidates collects the short answer's candidates (for fitting its scorer).
_TRACE: ContextVar[list | None] = ContextVar("span_candidates", default=None)


class QAService:
    def __init__(self, index: LoadedIndex, encoder: Encoder, settings: Settings,
                 queries: QueryBatcher | None = None, reader=None) -> None:
        self.index = index
        self._reader = reader  # qa.reader.Reader, or None: the rules alone cut the short answer
        self._encoder = encoder
        self._settings = settings
        self._row_of = {p.id: i for i, p in enumerate(index.passages)}
        self._doc_rows = index.layout.doc_rows
        self._first = np.zeros(len(index.passages), bool)  # each document's first passage
        self._first[[rows[0] for rows in self._doc_rows.values() if len(rows)]] = True
        self._documents = {d: _document(record, len(self._doc_rows[d])) for d, record in index.documents.items()}
        # shared with a reloaded successor
        self._queries = queries or QueryBatcher(encoder, deadline_s=settings.queue_deadline_s)
        self._sentences = SentenceStage(index, settings.lexical_weight)
        self.ranker = ranking.Ranker.load() if settings.ranker == "learned" else None

    # ---- asking -------------------------------------------------------------------------

    def ask(self, question: str, top_k: int = DEFAULT_TOP_K, doc_id: str | Sequence[str] | None = None,
            vector: np.ndarray | None = None) -> Result:
        """Answer ``question`` from the index: best passages, an answer and a verdict; ``doc_id``
        names the document, or the documents, to ask (None: every one); ``vector`` is the
        question's (``query_vector``), when it was encoded already for another index."""
        return self._run(question, top_k, doc_id, vector)[0]

    def query_vector(self, question: str) -> np.ndarray:
        """The question's vector, as ``ask`` would compute it (QuestionError for a bad question)."""
        return self._queries.encode(self._check(question, 1, None)[0])

    def ask_with_rankings(self, question: str, top_k: int = 10, doc_id: str | Sequence[str] | None = None,
                          vector: np.ndarray | None = None) -> tuple[Result, dict[str, list[str]]]:
        """``ask`` plus the passage ids each retriever alone ranks first (for evaluation)."""
        result, cands = self._run(question, top_k, doc_id, vector)
        ids = lambda rows: [self.index.passages[int(r)].id for r in rows[:top_k]]  # noqa: E731
        return result, {
            "bm25": ids(cands.bm25_order),
            "dense": ids(cands.dense_order),
            "hybrid": ids(cands.rows[np.lexsort((cands.rows, -cands.fused))]),
            "pipeline": [h.passage_id for h in result.hits],
        }

    def _run(self, question: str, top_k: int, doc_id: str | Sequence[str] | None,
             vector: np.ndarray | None = None) -> tuple[Result, Candidates]:
        question, docs = self._check(question, top_k, doc_id)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        terms, grams, cands, stage = self._scored(question, docs, timings, vector)
        t = time.perf_counter()
        blend = ranking.blend_scores(cands.dense, np.array([st.best_score for st in stage], dtype=np.float32))
        learned = self.ranker is not None and self._several_documents(cands.rows[ranking.top(cands.rows, blend, MIXED_TOP)])
        x = self._features(grams, terms, cands, stage) if learned else None
        final = self.ranker.scores(x) if learned else blend
        order = ranking.top(cands.rows, final, top_k)
        timings["rerank"] += elapsed_ms(t)  # _scored put the vectors' reading and the sentence stage there
        t = time.perf_counter()
        expected = expectation(question)
        near = order[: answers.TYPE_PASSAGES]
        top = [self.index.passages[int(cands.rows[i])] for i in near]
        choice = answers.choose(top, [stage[i].scores for i in near], stage[near[0]].best, terms, expected) \
            if len(near) else answers.Choice(None, 0)
        chosen = {near[choice.hit]: choice.sentence} if choice.hit is not None else {}
        hits = tuple(self._hit(cands, i, float(final[i]), float(blend[i]), stage[i], set(terms), chosen.get(i),
                               self.ranker.parts(x[i]) if learned else None) for i in order)
        # The threshold was calibrated on the blend, so the top hit's blend is the confidence.
        confidence = float(blend[order[0]]) if hits else 0.0
        # The reader reads only where its view can matter: an answer may come from that passage.
        may_answer = choice.hit is not None and confidence >= self._settings.no_answer_threshold
        read = self._read(question, top[choice.hit], choice.sentence) if may_answer else None
        result = self._decide(question, docs, hits, confidence, top, choice, expected, read)
        if result.answerable and result.answer is None:
            result = replace(result, answer=self._answer(int(cands.rows[near[choice.hit]]), choice.sentence,
                                                         question, expected, read))
        timings["answer"] = elapsed_ms(t)
        timings["total"] = elapsed_ms(started)
        return replace(result, timings_ms=timings), cands

    def ask_with_candidates(self, question: str) -> tuple[Result, list[tuple]]:
        """``ask`` plus the passage the short answer was cut from, and its candidates
        (for fitting the scorer); empty when no short answer was cut."""
        token = _TRACE.set([])
        try:
            return self.ask(question), _TRACE.get()
        finally:
            _TRACE.reset(token)

    def with_ranker(self, ranker: str) -> QAService:
        """This service with another final order (``learned`` or ``blend``), sharing everything else."""
        return QAService(self.index, self._encoder, self._settings.with_(ranker=ranker), self._queries, self._reader)

    def successor(self, index: LoadedIndex, settings: Settings, load_reader) -> QAService | None:
        """A service over ``index`` (a reloaded version) that keeps this one's encoder and its
        batching thread, and its reader unless ``settings`` choose another (``load_reader``
        loads that); None when ``settings`` select another model."""
        if self._encoder.model_id != index.manifest.model.id:
            return None
        reader = self._reader if self._settings.reader == settings.reader else load_reader(settings)
        return QAService(index, self._encoder, settings, queries=self._queries, reader=reader)

    def queue_depth(self) -> int | None:
        """Questions waiting for the query encoder (None when it answers in the caller's thread)."""
        depth = getattr(self._queries, "depth", None)
        return depth() if callable(depth) else None

    def rank_features(self, question: str, doc_id: str | Sequence[str] | None = None
                      ) -> tuple[np.ndarray, list[str], np.ndarray, bool]:
        """The candidates' passage rows (ties go to the lower) and ids, their ranking features, and
        whether the learned order would rank them (they come from several documents); for
        training the ranker."""
        terms, grams, cands, stage = self._scored(*self._check(question, 1, doc_id), {})
        return (cands.rows, [self.index.passages[int(r)].id for r in cands.rows],
                self._features(grams, terms, cands, stage), self._several_documents(cands.rows))

    def _scored(self, question: str, docs: tuple[str, ...] | None, timings: dict[str, float],
                vector: np.ndarray | None = None
                ) -> tuple[list[str], frozenset[str], Candidates, list[SentenceScores]]:
        """The question's words and bigrams, its candidates and their sentences' scores (timed into ``timings``)."""
        started = time.perf_counter()
        query = self._queries.encode(question) if vector is None else vector
        timings["embed"] = elapsed_ms(started)
        terms = tokenize(question)
        cands = candidates(self.index.search, query, question, terms, docs, self._settings.candidates, timings)
        t = time.perf_counter()
        grams = bigrams(question)
        stage = self._sentences.score_all(cands.rows, cands.sentence_vectors, query, grams)
        timings["rerank"] += elapsed_ms(t)  # candidates() put the reading of their vectors there
        return terms, grams, cands, stage

    def _several_documents(self, rows: np.ndarray) -> bool:
        return len({self.index.passages[int(r)].doc_id for r in rows}) > 1

    def _features(self, grams: frozenset[str], terms: list[str], cands: Candidates,
                  stage: list[SentenceScores]) -> np.ndarray:
        # Kept to vectors and cached sets: features and score cost ~0.55 ms a question at ~50
        # CMRC candidates timed alone, ~1 ms inside the query loop (README, "The learned order").
        passages = [self.index.passages[int(r)] for r in cands.rows]
        words = [t for t in dict.fromkeys(terms) if len(t) >= answers.MIN_TERM_CHARS]
        n_grams, n_words = len(grams) or 1, len(words) or 1
        in_passage, title_of = self._sentences.passage_bigrams, self._sentences.title_bigrams
        titles: dict[tuple[str, str], float] = {}
        for p in passages:
            if (p.doc_id, p.section) not in titles:
                titles[p.doc_id, p.section] = len(grams & title_of(p.doc_id, p.section)) / n_grams
        return ranking.features(
            cands.dense, *ranking.best_two([st.scores for st in stage], np.array([st.best for st in stage])), cands.bm25,
            cands.dense_rank, cands.bm25_rank,
            np.array([len(grams & in_passage(int(r))) / n_grams for r in cands.rows]),
            np.array([sum(map(p.text.__contains__, words)) / n_words for p in passages]),
            np.array([titles[p.doc_id, p.section] for p in passages]),
            self._first[cands.rows],
        )

    def _decide(self, question: str, docs: tuple[str, ...] | None, hits: tuple[Hit, ...], confidence: float,
                top: list[Passage], choice: answers.Choice, expected: Expectation | None, read=None) -> Result:
        """The verdict, in order: a question about the document is answered from its facts; below
        the threshold, or about a place the passages never name, or about a detail none of the
        close sentences holds, or when the reader is confident the closest passage holds no
        answer, it is refused, saying what is missing; otherwise answered (the caller cuts the answer)."""
        answerable, reason = answers.verdict(confidence, bool(hits), self._settings.no_answer_threshold)
        refusal = "" if answerable else ("low_confidence" if hits else "empty_index")
        qtype = question_type(question)
        fact = self._fact(question, docs, hits)
        if fact is not None:
            return Result(question, True, "answered from the document's own details (title, author, source), "
                          "cited to their line", fact, hits, 1.0, question_type="document")
        source = top[choice.hit or 0].doc_id if top else None  # the document the answer would come from
        absent = answerable and answers.absent_names(
            question_names(question), [p for p in top if p.doc_id == source], [self.index.documents[source].title])
        missing = ""
        if absent:
            answerable, missing, refusal = False, "文中没有提到" + "、".join(f"“{n}”" for n in absent), "absent_name"
            reason = f"{missing}: none of the closest passages mentions {', '.join(absent)}; they are listed"
        elif answerable and choice.hit is None:
            answerable, missing, refusal = False, expected.missing, "absent_detail"
            reason = (f"{missing}: none of the closest passages holds the {expected.kind} the question "
                      f"asks for; they are listed")
        elif answerable and read is not None and self._settings.reader_refuses and reading.reader_refuses(read):
            answerable, refusal = False, "reader_no_answer"
            reason = (f"the reader finds no answer in the closest passage (its no-answer score beats its best "
                      f"span by {-read.margin:.2f}); the closest passages are listed")
        return Result(question, answerable, reason, None, hits, round(confidence, 4), question_type=qtype,
                      missing=missing, refusal=refusal)

    def _check(self, question: str, top_k: int, doc_id: str | Sequence[str] | None
               ) -> tuple[str, tuple[str, ...] | None]:
        """The question as asked, and the documents it asks (None: every one); QuestionError or
        NotFound naming what is wrong."""
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("question is empty")
        question = question.strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise QuestionError(f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise QuestionError(f"top_k must be an integer from 1 to {MAX_TOP_K}")
        return question, self._scope(doc_id)

    def _scope(self, doc_id: str | Sequence[str] | None) -> tuple[str, ...] | None:
        if doc_id is None:
            return None
        docs = (doc_id,) if isinstance(doc_id, str) else tuple(dict.fromkeys(doc_id))
        if not docs or not all(isinstance(d, str) for d in docs):
            raise QuestionError("doc_id names no document: give an id, a list of ids, or none to ask every document")
        if len(docs) > MAX_DOC_FILTER:
            raise QuestionError(f"doc_id names {len(docs)} documents; the limit is {MAX_DOC_FILTER}")
        unknown = [d for d in docs if d not in self.index.documents]
        if unknown:
            raise NotFound(f"no document with id {', '.join(repr(d) for d in unknown[:5])}"
                           + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
        return docs

    def _hit(self, cands: Candidates, i: int, final: float, blend: float, stage: SentenceScores, terms: set[str],
             sentence: int | None = None, parts: dict[str, float] | None = None) -> Hit:
        """A result row with every score that placed it (and, from the learned ranker, each feature's part
        of its score); highlights: the answer (else best) sentence and question terms."""
        p = self.index.passages[int(cands.rows[i])]
        scores = {
            "dense": round(float(cands.dense[i]), 4), "dense_rank": int(cands.dense_rank[i]),
            "bm25": round(float(cands.bm25[i]), 4), "bm25_rank": int(cands.bm25_rank[i]),
            "fused": round(float(cands.fused[i]), 5), "sentence": round(stage.best_score, 4),
            "blend": round(blend, 4),
        }
        doc = self.index.documents[p.doc_id]
        return Hit(p.id, p.doc_id, doc.title, p.section, p.text, p.start, p.end, round(final, 4), scores,
                   answers.highlights(p, stage.best if sentence is None else sentence, terms),
                   pages_of(doc.pages, p.start, p.end), parts or {}, cited(doc.tables, p.start, p.end))

    def _read(self, question: str, p: Passage, k: int):
        """The reader's view of the passage the answer would come from, around its sentence ``k``
        (None without a reader)."""
        if self._reader is None:
            return None
        ws, we = reading.window(p.sentences, k, READ_CHARS)
        return self._reader.read(question, [p.text[ws:we]], n=10)[0].shifted(ws)

    def _answer(self, row: int, sentence: int, question: str, expected: Expectation | None, read=None) -> Answer:
        """Sentence ``sentence`` of passage ``row`` (with the next when it only leads in) and the short
        answer in it: the reader's and the rules' candidates, scored as one."""
        p = self.index.passages[row]
        s, e = answers.answer_extent(p, sentence, expected)
        a, b = short_answer(question, p.text[s:e])
        short = self._short(read, p, (s + a, s + b), (s, e), expected)
        probability = None
        if short is not None:  # candidates lie inside the answer sentence(s)
            a, b, probability = short.start - s, short.end - s, round(short.probability, 4)
        start, end = p.original_span(s, e)
        span = AnswerSpan(p.text[s + a : s + b], *p.original_span(s + a, s + b), a, b, probability,
                          probability is not None and probability >= self._settings.span_threshold)
        doc = self.index.documents[p.doc_id]
        return Answer(p.text[s:e], p.id, p.doc_id, doc.title, p.section, start, end, pages_of(doc.pages, start, end),
                      span, table=cited(doc.tables, start, end))

    def _short(self, read, p: Passage, rule: tuple[int, int], extent: tuple[int, int],
               expected: Expectation | None) -> reading.Scored | None:
        cands = self.span_candidates(read, p, rule, extent, expected)
        trace = _TRACE.get()
        if trace is not None:
            trace.append((p, cands))
        return reading.best(cands) if cands else None

    @staticmethod
    def span_candidates(r, p: Passage, rule: tuple[int, int], extent: tuple[int, int],
                        expected: Expectation | None) -> list[reading.Candidate]:
        """The short answer's candidates in passage ``p`` from the reader's reading ``r`` and the
        rules' span, with their features; empty without a reader."""
        if r is None:
            return []
        return reading.candidates(p.text, [(x.start, x.end, x.score) for x in r.spans], r.null_score,
                                  rule, r.score_of(*rule), extent, expected)

    def _fact(self, question: str, docs: tuple[str, ...] | None, hits: tuple[Hit, ...]) -> Answer | None:
        """An answer from the document's own facts, for a question about the document (its author,
        source, title…): the one asked about, the only one indexed, or the top passage's."""
        only = docs if docs is not None else tuple(self.index.documents)
        doc_id = only[0] if len(only) == 1 else hits[0].doc_id if hits else None
        doc = self.index.documents.get(doc_id) if doc_id else None
        kind = doc and asked_fact(question, doc.facts)
        fact = find_fact(kind, doc.facts) if kind else None
        if fact is None or fact.start < 0:
            return None
        line_start, line_end, start, end = fact_extent(doc.text, fact, doc.facts)
        p = next((q for q in self.passages_of(doc.doc_id) if q.start <= start < q.end), None)
        text = doc.text[line_start:line_end]
        # The document's own line (its author, its source): exact by construction.
        span = AnswerSpan(doc.text[start:end], start, end, start - line_start, end - line_start, 1.0, True)
        return Answer(text, p.id if p else "", doc.doc_id, doc.title, p.section if p else "", line_start, line_end,
                      pages_of(doc.pages, line_start, line_end), span, source="document")

    # ---- looking things up --------------------------------------------------------------

    def info(self) -> IndexInfo:
        m = self.index.manifest
        return IndexInfo(model=m.model.id, built_at=m.created_at, build_id=m.build_id,
                         documents=m.counts.documents, passages=m.counts.passages,
                         sentences=m.counts.sentences, dense_kind=m.dense_kind,
                         passage_chars=dict(m.passage_chars), min_chars=m.split.get("min_chars", 0))

    def passage(self, passage_id: str) -> Hit:
        row = self._row_of.get(passage_id)
        if row is None:
            raise NotFound(f"no passage with id '{passage_id}'")
        p = self.index.passages[row]
        doc = self.index.documents[p.doc_id]
        return Hit(p.id, p.doc_id, doc.title, p.section, p.text, p.start, p.end, 0.0, {},
                   pages=pages_of(doc.pages, p.start, p.end), table=cited(doc.tables, p.start, p.end))

    def document(self, doc_id: str) -> DocumentInfo:
        doc = self._documents.get(doc_id)
        if doc is None:
            raise NotFound(f"no document with id '{doc_id}'")
        return doc

    def documents(self) -> list[DocumentInfo]:
        return list(self._documents.values())

    def passages_of(self, doc_id: str) -> list[Passage]:
        self.document(doc_id)
        return [self.index.passages[r] for r in self._doc_rows[doc_id]]

    def page_image(self, doc_id: str, number: int) -> bytes:
        """Page ``number`` (1-based) of document ``doc_id`` as a PNG picture (NotFound for a document
        without page pictures or a page it does not have; PageUnavailable when its file is gone or changed)."""
        doc = self.document(doc_id)
        if not doc.page_images:
            raise NotFound(f"document '{doc_id}' is {doc.kind}: only PDFs and pictures have pages to show")
        count = max(len(doc.pages), 1)  # a single picture is one page, and its text counts none
        if not 1 <= number <= count:
            raise NotFound(f"document '{doc_id}' has no page {number}: it has {count}")
        record = self.index.documents[doc_id]
        return PAGES.png(record.path, record.sha256, record.kind, number)

    def boxes(self, doc_id: str, start: int, end: int) -> list[Rect]:
        """Where the characters ``[start, end)`` of document ``doc_id``'s text lie on its pages: a box
        a line, in fractions of the page; none for a document without page pictures."""
        doc = self.document(doc_id)
        if not 0 <= start < end <= len(doc.text):
            raise QuestionError(f"start and end must satisfy 0 <= start < end <= {len(doc.text)} (the text's length)")
        if end - start > MAX_BOXED_CHARS:
            raise QuestionError(f"at most {MAX_BOXED_CHARS:,} characters at a time; asked for {end - start:,}")
        return rects(self.index.documents[doc_id].boxes, start, end)


def _document(record: DocumentRecord, passages: int) -> DocumentInfo:
    return DocumentInfo(record.doc_id, record.title, record.author, record.sections, record.text, record.kind,
                        record.genre, record.pages, record.added_at, record.facts, passages, record.ocr_pages,
                        record.low_confidence_pages, page_images=record.kind in PICTURED and bool(record.boxes))

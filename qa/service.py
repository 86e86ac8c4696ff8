"""The question-answering service: hybrid retrieval, a sentence stage, cited answers.

One object, built once (CLI, API lifespan, eval runner) and safe to share
between threads: the index is read-only, and queries reach the encoder through
one batching worker, since the encoder already uses every core.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from corpus.align import align
from corpus.tokenize import bigrams, tokenize
from index.build import context_header, with_header
from index.encoder import Encoder
from index.store import DocumentRecord, LoadedIndex
from qa import fusion
from qa.batching import QueryBatcher
from qa.settings import Settings
from qa.types import Answer, Highlight, Hit, IndexInfo, NotFound, QuestionError, Result

log = logging.getLogger(__name__)

MAX_TOP_K = 50
MAX_QUESTION_CHARS = 500  # the API schema states the same limits; they are imported from here
SHORT_SENTENCE = 20  # a sentence this short (a heading, "（三）待遇水平稳步提高。") rarely answers alone
# A sentence that announces what follows ("……提出一系列科学方法。", "主要有：") is no answer
# by itself: the items are in the next sentence.
_INTRODUCES = re.compile(r"(?:[：:]|(?:(?:一系列|下列)[^，。；！？]{0,8}|如下|以下[^，。；！？]{0,4})[。！]?)\s*$")


@dataclass(frozen=True)
class _Candidates:
    rows: np.ndarray
    dense: np.ndarray
    bm25: np.ndarray
    dense_rank: np.ndarray
    bm25_rank: np.ndarray
    fused: np.ndarray
    dense_order: np.ndarray  # each retriever's own ranking, for evaluation
    bm25_order: np.ndarray


class QAService:
    def __init__(self, index: LoadedIndex, encoder: Encoder, settings: Settings,
                 queries: QueryBatcher | None = None) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self._row_of = {p.id: i for i, p in enumerate(index.passages)}
        doc_ids = np.array([p.doc_id for p in index.passages])
        self._doc_rows = {d: np.flatnonzero(doc_ids == d) for d in index.documents}
        self.queries = queries or QueryBatcher(encoder)  # shared with a reloaded successor
        self._sentence_bigrams = lru_cache(maxsize=100_000)(self._sentence_bigrams_uncached)

    # ---- public API -------------------------------------------------------------------

    def ask(self, question: str, top_k: int = 5, doc_id: str | None = None) -> Result:
        """Answer ``question`` from the index: best passages, an answer and a verdict."""
        return self._run(question, top_k, doc_id)[0]

    def ask_with_rankings(self, question: str, top_k: int = 10, doc_id: str | None = None) -> tuple[Result, dict[str, list[str]]]:
        """``ask`` plus the passage ids each retriever alone would rank first (for evaluation)."""
        return self._run(question, top_k, doc_id, rankings=True)

    def _run(self, question: str, top_k: int, doc_id: str | None, rankings: bool = False) -> tuple[Result, dict]:
        question = self._check(question, top_k, doc_id)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        query = self.queries.encode(question)
        timings["embed"] = _ms(started)
        terms = tokenize(question)
        cands = self._candidates(query, terms, doc_id, timings)
        t = time.perf_counter()
        grams = bigrams(question)
        stage = [self._sentence_stage(int(r), query, grams) for r in cands.rows]
        # Measured on the labelled set and CMRC (README, "How ranking works"): the
        # passage's own cosine plus twice its best sentence's score orders best.
        final = (cands.dense + 2 * np.array([st[0] for st in stage], dtype=np.float32)) / 3
        order = np.lexsort((cands.rows, -final))[:top_k]
        timings["rerank"] = _ms(t)
        hits = [self._hit(cands, i, final[i], stage[i], set(terms)) for i in order]
        confidence = float(final[order[0]]) if hits else 0.0
        answerable, reason = self._verdict(confidence, bool(hits))
        answer = self._answer(int(cands.rows[order[0]]), stage[order[0]]) if answerable else None
        timings["total"] = _ms(started)
        result = Result(question, answerable, reason, answer, tuple(hits), round(confidence, 4), timings)
        if not rankings:
            return result, {}
        ids = lambda rows: [self.index.passages[int(r)].id for r in rows[:top_k]]  # noqa: E731
        return result, {
            "bm25": ids(cands.bm25_order),
            "dense": ids(cands.dense_order),
            "hybrid": ids(cands.rows[np.lexsort((cands.rows, -cands.fused))]),
            "pipeline": [h.passage_id for h in hits],
        }

    def _verdict(self, confidence: float, any_hits: bool) -> tuple[bool, str]:
        """Answer or refuse: the top passage's score against the calibrated threshold."""
        threshold = self.settings.no_answer_threshold
        if not any_hits:
            return False, "the index holds no passage to search"
        if confidence >= threshold:
            return True, f"answer found (confidence {confidence:.3f} ≥ {threshold:.3f})"
        return False, (f"no passage answers this question well enough (confidence {confidence:.3f} "
                       f"< {threshold:.3f}); the closest passages are listed")

    def info(self) -> IndexInfo:
        m = self.index.manifest
        return IndexInfo(model=m["model"]["id"], built_at=m["created_at"], build_id=m.get("build_id", ""),
                         documents=m["counts"]["documents"], passages=m["counts"]["passages"],
                         sentences=m["counts"]["sentences"], dense_kind=m["dense"]["kind"])

    def passage(self, passage_id: str) -> tuple[Hit, DocumentRecord]:
        row = self._row_of.get(passage_id)
        if row is None:
            raise NotFound(f"no passage with id '{passage_id}'")
        p = self.index.passages[row]
        doc = self.index.documents[p.doc_id]
        hit = Hit(p.id, p.doc_id, doc.title, p.section, p.text, p.start, p.end, 0.0, {})
        return hit, doc

    def document(self, doc_id: str) -> DocumentRecord:
        doc = self.index.documents.get(doc_id)
        if doc is None:
            raise NotFound(f"no document with id '{doc_id}'")
        return doc

    def documents(self) -> list[DocumentRecord]:
        return list(self.index.documents.values())

    def passages_of(self, doc_id: str) -> list:
        self.document(doc_id)
        return [self.index.passages[r] for r in self._doc_rows[doc_id]]

    # ---- retrieval ---------------------------------------------------------------------

    def _check(self, question: str, top_k: int, doc_id: str | None) -> str:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("question is empty")
        question = question.strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise QuestionError(f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise QuestionError(f"top_k must be an integer from 1 to {MAX_TOP_K}")
        if doc_id is not None and doc_id not in self.index.documents:
            raise NotFound(f"no document with id '{doc_id}'")
        return question

    def _candidates(self, query: np.ndarray, terms: list[str], doc_id: str | None, timings: dict) -> _Candidates:
        size, c = len(self.index.passages), self.settings.candidates
        allowed = self._doc_rows[doc_id] if doc_id else None
        t = time.perf_counter()
        k = c if allowed is None else min(size, c * 20)
        _, dense_rows = self.index.dense.search(query, k)
        if allowed is not None:
            dense_rows = dense_rows[np.isin(dense_rows, allowed)]
            if len(dense_rows) < min(c, len(allowed)):  # the document ranks low overall: score it exactly
                scores = self.index.dense.vectors(allowed) @ query
                dense_rows = allowed[np.argsort(-scores, kind="stable")[:c]]
        timings["dense"] = _ms(t)
        t = time.perf_counter()
        bm25_all = self.index.keyword.scores(terms)
        if allowed is not None:
            masked = np.full_like(bm25_all, -1.0)
            masked[allowed] = bm25_all[allowed]
            bm25_all = masked
        top = np.argpartition(-bm25_all, c)[:c] if len(bm25_all) > c else np.arange(len(bm25_all))
        bm25_rows = top[np.lexsort((top, -bm25_all[top]))]  # best first, ties by row: deterministic
        bm25_rows = bm25_rows[bm25_all[bm25_rows] > 0]
        timings["bm25"] = _ms(t)
        rows = np.union1d(dense_rows[:c], bm25_rows).astype(np.int64)
        dense = self.index.dense.vectors(rows) @ query if len(rows) else np.zeros(0, np.float32)
        bm25 = np.maximum(bm25_all[rows], 0.0)
        dr, br = fusion.ranks(dense), fusion.ranks(bm25)
        fused = fusion.rrf([dr, br])
        return _Candidates(rows, dense.astype(np.float32), bm25, dr, br, fused, dense_rows, bm25_rows)

    def _sentence_bigrams_uncached(self, row: int, k: int) -> frozenset[str]:
        """A sentence's character bigrams, plus its passage header's, as they were embedded."""
        p = self.index.passages[row]
        s, e = p.sentences[k]
        header = context_header(self.index.documents[p.doc_id].title, len(self.index.documents))
        return frozenset(bigrams(with_header(header, p.text[s:e])))

    def _sentence_stage(self, row: int, query: np.ndarray, grams: frozenset[str]) -> tuple[float, int, np.ndarray]:
        """(best sentence score, its index, all sentence scores) for one passage.

        A sentence scores its cosine to the question plus a little for the question's
        character bigrams it contains: exact figures and programme names ("2025年",
        "四防") then decide between sentences the embedding finds alike.
        """
        lo, hi = self.index.sentence_rows[row], self.index.sentence_rows[row + 1]
        dense = self.index.sentence_vectors[lo:hi] @ query
        lexical = np.array([fusion.share(grams, self._sentence_bigrams(row, k)) for k in range(hi - lo)])
        scores = dense + self.settings.lexical_weight * lexical
        best = int(np.argmax(scores))
        return float(scores[best]), best, scores

    # ---- assembling results --------------------------------------------------------------

    def _hit(self, cands: _Candidates, i: int, final: float, stage, terms: set[str]) -> Hit:
        """A result row; its highlights are its best sentence and the question's terms."""
        row = int(cands.rows[i])
        p = self.index.passages[row]
        doc = self.index.documents[p.doc_id]
        to_doc = _offsets(p, doc)
        s, e = p.sentences[stage[1]]
        spans = [(s, e, "sentence")] + [(a, b, "term") for a, b in _term_spans(p.text, terms)]
        highlights = [Highlight(to_doc[a], to_doc[b - 1] + 1, kind, a, b) for a, b, kind in spans]
        scores = {
            "dense": round(float(cands.dense[i]), 4), "dense_rank": int(cands.dense_rank[i]),
            "bm25": round(float(cands.bm25[i]), 4), "bm25_rank": int(cands.bm25_rank[i]),
            "fused": round(float(cands.fused[i]), 5), "sentence": round(float(stage[0]), 4),
        }
        return Hit(p.id, p.doc_id, doc.title, p.section, p.text, p.start, p.end, round(float(final), 4), scores, tuple(highlights))

    def _answer(self, row: int, stage) -> Answer:
        p = self.index.passages[row]
        doc = self.index.documents[p.doc_id]
        k = stage[1]
        s, e = p.sentences[k]
        if k + 1 < len(p.sentences) and (e - s < SHORT_SENTENCE or _INTRODUCES.search(p.text[s:e])):
            e = p.sentences[k + 1][1]
        to_doc = _offsets(p, doc)
        return Answer(p.text[s:e], p.id, p.doc_id, doc.title, p.section, to_doc[s], to_doc[e - 1] + 1)


def _offsets(p, doc: DocumentRecord) -> list[int]:
    """Document offsets of each character of ``p.text``."""
    return [p.start + i for i in align(p.text, doc.text[p.start : p.end])]


def _term_spans(text: str, terms: set[str]) -> list[tuple[int, int]]:
    """Where the question's terms occur in ``text``, merged; single characters are too noisy."""
    haystack = text.lower() if len(text.lower()) == len(text) else text
    spans = []
    for term in terms:
        if len(term) < 2:
            continue
        start = haystack.find(term)
        while start >= 0:
            spans.append((start, start + len(term)))
            start = haystack.find(term, start + 1)
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)

"""One question over several knowledge bases: each answers it, and their passages are merged.

The score that ranks passages inside one knowledge base is not comparable across them: the
learned order's features include BM25, whose scale is each index's own, and a knowledge base
of one document orders by the blend instead.  The blend (dense similarity and the best
sentence's score, both the model's cosines) is: the same passage gets the same blend in any
index.  So the merge keeps each knowledge base's own order and, at every step, takes the next
passage from the one whose next passage has the highest blend; the answer and the verdict are
those of the knowledge base whose best passage leads, which is its confidence (the score the
no-answer threshold is calibrated on).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

from qa.types import Result


@dataclass(frozen=True)
class Federated:
    result: Result  # the leading knowledge base's answer and verdict, with the merged passages
    kbs: tuple[str, ...]  # the knowledge base of each of ``result.hits``
    answer_kb: str  # the knowledge base that answered (or refused)


def ask_many(services: dict, question: str, top_k: int, documents: dict | None = None) -> Federated:
    """``question`` asked of every service in ``services`` ({knowledge base: QAService}), within
    ``documents[kb]`` where given; its vector is computed once (they share one encoder)."""
    started = time.perf_counter()
    first = next(iter(services.values()))
    vector = first.query_vector(question)
    results = {kb: service.ask(question, top_k=top_k, doc_id=(documents or {}).get(kb), vector=vector)
               for kb, service in services.items()}
    merged = merge(results, top_k)
    timings = {**merged.result.timings_ms, "total": round((time.perf_counter() - started) * 1000, 2)}
    return replace(merged, result=replace(merged.result, timings_ms=timings))


def merge(results: dict[str, Result], top_k: int) -> Federated:
    """Each knowledge base's passages in its own order, interleaved by the blend of the next one."""
    heads = {kb: 0 for kb in results}
    hits, kbs = [], []
    while len(hits) < top_k:
        waiting = [kb for kb, i in heads.items() if i < len(results[kb].hits)]
        if not waiting:
            break
        kb = max(waiting, key=lambda k: (results[k].hits[heads[k]].scores["blend"], -list(results).index(k)))
        hits.append(results[kb].hits[heads[kb]])
        kbs.append(kb)
        heads[kb] += 1
    # the most confident leads (normally the one whose best passage came first: confidence is its blend)
    leader = max(results, key=lambda k: (bool(results[k].hits), results[k].confidence, -list(results).index(k)))
    return Federated(replace(results[leader], hits=tuple(hits)), tuple(kbs), leader)


class Federation:
    """Several knowledge bases' services seen as one, as `qa eval --kbs` asks them: questions go to
    all of them (``ask_many``'s merge); documents are looked up in the one that holds them."""

    def __init__(self, services: dict) -> None:
        self.services = services
        self.first = next(iter(services.values()))
        self._owner: dict[str, str] = {}
        for kb, service in services.items():
            for d in service.documents():
                if d.doc_id in self._owner:
                    raise ValueError(f"document {d.doc_id!r} is in knowledge bases {self._owner[d.doc_id]} and {kb}: "
                                     "a labelled question could not say which one it means")
                self._owner[d.doc_id] = kb

    @property
    def first_document(self) -> str | None:
        """The first knowledge base's document, when it holds one: what a labelled set written for a
        one-document index (no ``doc`` in its questions) is about."""
        documents = self.first.documents()
        return documents[0].doc_id if len(documents) == 1 else None

    def _of(self, doc_id: str):
        return self.services.get(self._owner.get(doc_id), self.first)

    def documents(self) -> list:
        return [d for service in self.services.values() for d in service.documents()]

    def document(self, doc_id: str):
        return self._of(doc_id).document(doc_id)

    def passages_of(self, doc_id: str) -> list:
        return self._of(doc_id).passages_of(doc_id)

    def info(self):
        infos = [service.info() for service in self.services.values()]
        return replace(infos[0], documents=sum(i.documents for i in infos), passages=sum(i.passages for i in infos),
                       sentences=sum(i.sentences for i in infos))

    def ask_with_rankings(self, question: str, top_k: int = 10) -> tuple[Result, dict[str, list[str]]]:
        """The merged answer; each single retriever's ranking is the leading knowledge base's, then the
        others' in order of confidence (their scores are not comparable across indexes either)."""
        vector = self.first.query_vector(question)
        asked = {kb: s.ask_with_rankings(question, top_k, vector=vector) for kb, s in self.services.items()}
        done = merge({kb: result for kb, (result, _) in asked.items()}, top_k)
        order = sorted(asked, key=lambda kb: (kb != done.answer_kb, -asked[kb][0].confidence))
        rankings = {r: [pid for kb in order for pid in asked[kb][1][r]][:top_k] for r in ("bm25", "dense", "hybrid")}
        rankings["pipeline"] = [h.passage_id for h in done.result.hits]
        return done.result, rankings

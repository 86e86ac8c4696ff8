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


def ask_many(services: dict, question: str, top_k: int) -> Federated:
    """``question`` asked of every service in ``services`` ({knowledge base: QAService}); its
    vector is computed once (they share one encoder)."""
    started = time.perf_counter()
    first = next(iter(services.values()))
    vector = first.query_vector(question)
    results = {kb: service.ask(question, top_k=top_k, vector=vector) for kb, service in services.items()}
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

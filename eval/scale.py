"""`qa bench --scale N`: query timings over N passages of real Chinese text.

The contexts of the public sets in ../shared/data are repeated until they hold N
passages; builds embed each distinct text once, so the repeats cost no model time.
"""
from __future__ import annotations

import time
from pathlib import Path

from eval.metrics import percentile as pct
from eval.timing import QUESTIONS, summary, timed
from qa.settings import Settings

SHARED_SETS = ("cmrc2018_trial.json", "drcd_test.json")


def scale_documents(n_passages: int, settings: Settings, data_dir: Path) -> list:
    """Real Chinese contexts from the public sets, repeated until they hold ``n_passages``."""
    from corpus.documents import Document
    from corpus.passages import make_passages, parse_document
    from eval.squad import load_squad

    contexts = []
    for name in SHARED_SETS:
        if (data_dir / name).exists():
            contexts += load_squad(data_dir / name)[0]
    if not contexts:
        raise FileNotFoundError(f"no public sets in {data_dir} to build a scale corpus from")
    sizes = [len(make_passages(parse_document(d), settings.split)) for d in contexts]
    docs, total, i = [], 0, 0
    while total < n_passages:
        d = contexts[i % len(contexts)]
        docs.append(Document(f"s{i:06d}", f"{d.path}#copy{i}", d.text, d.sha256))
        total += sizes[i % len(contexts)]
        i += 1
    return docs


def bench_scale(settings: Settings, n_passages: int, rounds: int, data_dir: Path) -> dict:
    """Build (once, cached) an index of ``n_passages`` and time queries against it in process."""
    from qa.loading import load_service, recipe
    from qa.updates import build
    from qa.settings import ROOT

    scaled = settings.with_(index_dir=ROOT / "var" / "bench-cache" / f"scale-{n_passages}-{recipe(settings)}")
    built_s = None
    if not (scaled.index_dir / "manifest.json").exists():
        docs = scale_documents(n_passages, settings, data_dir)
        t = time.perf_counter()
        build(docs, scaled, progress=True)
        built_s = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    service = load_service(scaled)
    load_s = round(time.perf_counter() - t, 2)
    for q in QUESTIONS:
        service.ask(q)
    encode = timed(lambda q: service.encoder.encode_queries([q]), QUESTIONS, rounds)
    timings: dict[str, list[float]] = {"dense": [], "bm25": [], "rerank": [], "total": []}

    def ask(q: str) -> None:
        result = service.ask(q)
        for key in timings:
            timings[key].append(result.timings_ms[key])

    timed(ask, QUESTIONS, rounds)
    enc = pct(encode, 50)
    return {
        "passages": service.info().passages, "dense_index": service.info().dense_kind,
        "build_s": built_s, "load_s": load_s, "encode_ms": summary(encode),
        "ask_ms": summary(timings["total"]), "dense_ms": summary(timings["dense"]),
        "bm25_ms": summary(timings["bm25"]), "rerank_ms": summary(timings["rerank"]),
        "ask_p50_over_encode_p50": round(pct(timings["total"], 50) / enc, 2) if enc else None,
    }

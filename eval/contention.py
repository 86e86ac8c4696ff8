"""Can one client stall everyone?  An ordinary question's latency alone, then while two
other clients loop questions at a running server (issue #12: at most 2x for long
questions; issue #24: at most 1.5x for ordinary ones).

The server runs with the configured per-client limit (QA_RATE_PER_S) and each client has
its own API key, as separate users would.  The measured client asks at the limit's pace
(it is a normal client, not a flooder); the flooders loop without ever waiting, ignoring
Retry-After, like a misbehaving script."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from eval.serving import Client, start_server, stop_server
from eval.timing import QUESTIONS, summary
from qa.batching import LONG_TOKENS, MAX_QUESTION_TOKENS
from qa.settings import Settings

FLOOD_CHARS = 500  # the API's character limit
KEYS = ("bench-measured", "bench-flooder-1", "bench-flooder-2")


def _key(n: int) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[n]}"}


def longest_accepted(port: int, char: str = "社", limit: int = FLOOD_CHARS, headers: dict | None = None,
                     interval: float = 0.0) -> int:
    """The most repetitions of ``char`` the server still answers (200): the costliest legal question."""
    client, lo, hi = Client(port), 0, limit  # invariant: lo accepted (or 0), everything above hi refused
    while lo < hi:
        mid = (lo + hi + 1) // 2
        time.sleep(interval)
        status, _ = client.ask(char * mid, headers=headers)
        lo, hi = (mid, hi) if status == 200 else (lo, mid - 1)
    return lo


def _ordinary(port: int, rounds: int, interval: float = 0.0) -> tuple[list[float], int]:
    """Milliseconds of each ordinary question, one client starting one every ``interval``
    seconds (back to back when a question takes longer); and the non-200 count."""
    client, ms, errors = Client(port), [], 0
    next_at = time.perf_counter()
    for _ in range(rounds):
        for q in QUESTIONS:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            t = time.perf_counter()
            next_at = t + interval
            status, _ = client.ask(q, headers=_key(0))
            ms.append((time.perf_counter() - t) * 1000)
            errors += status != 200
    return ms, errors


def _under_flood(port: int, rounds: int, flood: str, interval: float, clients: int = 2) -> dict:
    """The ordinary questions again while ``clients`` other processes loop ``flood``.

    The flooding clients are processes, not threads, so that their Python work does not
    take turns with the measuring client's (one GIL would inflate its timings)."""
    procs = [subprocess.Popen([sys.executable, "-m", "eval.contention", str(port), flood, KEYS[1 + n]],
                              stdout=subprocess.PIPE, text=True) for n in range(clients)]
    time.sleep(1.0)  # let the flood start and reach its steady state
    try:
        ms, errors = _ordinary(port, rounds, interval)
    finally:
        totals: dict[str, int] = {}
        for p in procs:
            p.terminate()
            try:
                out = p.communicate(timeout=60)[0]
            except subprocess.TimeoutExpired:
                p.kill()
                out = p.communicate()[0]
            for status, n in (json.loads(out) if out.strip() else {"?": 0}).items():
                totals[status] = totals.get(status, 0) + n
    return {**summary(ms), "errors": errors, "flood_statuses": dict(sorted(totals.items()))}


def bench_contention(settings: Settings, rounds: int) -> dict:
    """p50 of an ordinary question alone and while two other clients loop each flood, and their
    ratio, on a server of its own with the configured per-client limit and a key per client.

    Each flood is compared with an alone run just before it, since these machines drift.
    Floods: 500 characters (refused: over the token cap), the costliest legal question,
    the longest question the queue still counts as ordinary, and an ordinary question."""
    proc, port, _ = start_server(settings, env={"QA_API_KEYS": ",".join(KEYS), "QA_RATE_PER_S": str(settings.rate_per_s),
                                                "QA_RATE_BURST": str(settings.rate_burst)})
    try:
        return {"rate_per_s": settings.rate_per_s, "rate_burst": settings.rate_burst,
                **_contention(port, rounds, 1 / settings.rate_per_s if settings.rate_per_s else 0.0)}
    finally:
        stop_server(proc)


def _contention(port: int, rounds: int, interval: float) -> dict:
    _ordinary(port, 1, interval)  # warm-up
    legal = longest_accepted(port, headers=_key(0), interval=interval)
    if legal <= MAX_QUESTION_TOKENS - LONG_TOKENS:
        raise RuntimeError(f"/ask answers no question longer than {legal} characters; is the server well?")
    # 社 is one token, so the longest question the queue still counts as ordinary is this much shorter
    ordinary = legal - (MAX_QUESTION_TOKENS - LONG_TOKENS)
    out: dict = {"max_legal_chars": legal, "max_ordinary_chars": ordinary}
    floods = ((f"flood_{FLOOD_CHARS}", "社" * FLOOD_CHARS), ("flood_max_legal", "社" * legal),
              ("flood_max_ordinary", "社" * ordinary), ("flood_ordinary", QUESTIONS[1]))
    alone_all, alone_errors = [], 0
    for name, flood in floods:
        alone_ms, errors = _ordinary(port, rounds, interval)
        alone_all += alone_ms
        alone_errors += errors
        row = _under_flood(port, rounds, flood, interval)
        row["alone_p50"] = summary(alone_ms)["p50"]
        row["p50_over_alone"] = round(row["p50"] / row["alone_p50"], 2) if row["alone_p50"] else None
        out[name] = row
    out["alone"] = {**summary(alone_all), "errors": alone_errors}
    return out


def contention_rows(c: dict) -> list[tuple[str, str, str]]:
    """`qa bench` table rows: (figure, value, note)."""
    what = {f"flood_{FLOOD_CHARS}": f"{FLOOD_CHARS} × 社 (refused)", "flood_max_legal": f"{c['max_legal_chars']} × 社 (longest legal)",
            "flood_max_ordinary": f"{c['max_ordinary_chars']} × 社 (longest ordinary)", "flood_ordinary": "an ordinary question"}
    limit = (f"{c['rate_per_s']:g}/s per client, bursts of {c['rate_burst']}" if c.get("rate_per_s")
             else "no per-client limit")
    rows = [("contention: the server's limit", limit, "each client its own API key; flooders ignore Retry-After")]
    for key, label in what.items():
        f = c[key]
        target = " (target ≤ 2×)" if key != "flood_ordinary" else " (target ≤ 1.5×)"
        rows.append((f"contention: 2 clients loop {label}", f"p50 {f['p50']} against {f['alone_p50']} alone",
                     f"{f['p50_over_alone']}×{target}, errors {f['errors']}, flood got {f['flood_statuses']}"))
    return rows


def _hammer(port: int, question: str, key: str) -> None:
    """One flooding client: ask ``question`` back to back until SIGTERM; print the status counts."""
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    client, counts = Client(port), {}
    while not stopped:
        status, _ = client.ask(question, headers={"authorization": f"Bearer {key}"})
        counts[str(status)] = counts.get(str(status), 0) + 1
    sys.stdout.write(json.dumps(counts) + "\n")  # the answer to _under_flood, which reads this pipe


if __name__ == "__main__":
    _hammer(int(sys.argv[1]), sys.argv[2], sys.argv[3])

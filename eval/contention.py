"""Can one client stall everyone?  An ordinary question's latency alone, then while two
other clients loop long questions at a running server (issue #12: at most 2x)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from eval.serving import Client
from eval.timing import QUESTIONS, summary
from qa.batching import LONG_TOKENS, MAX_QUESTION_TOKENS

FLOOD_CHARS = 500  # the API's character limit


def longest_accepted(port: int, char: str = "社", limit: int = FLOOD_CHARS) -> int:
    """The most repetitions of ``char`` the server still answers (200): the costliest legal question."""
    client, lo, hi = Client(port), 0, limit  # invariant: lo accepted (or 0), everything above hi refused
    while lo < hi:
        mid = (lo + hi + 1) // 2
        status, _ = client.ask(char * mid)
        lo, hi = (mid, hi) if status == 200 else (lo, mid - 1)
    return lo


def _ordinary(port: int, rounds: int) -> tuple[list[float], int]:
    """Milliseconds of each ordinary question, one client, back to back; and the non-200 count."""
    client, ms, errors = Client(port), [], 0
    for _ in range(rounds):
        for q in QUESTIONS:
            t = time.perf_counter()
            status, _ = client.ask(q)
            ms.append((time.perf_counter() - t) * 1000)
            errors += status != 200
    return ms, errors


def _under_flood(port: int, rounds: int, flood: str, clients: int = 2) -> dict:
    """The ordinary questions again while ``clients`` other processes loop ``flood``.

    The flooding clients are processes, not threads, so that their Python work does not
    take turns with the measuring client's (one GIL would inflate its timings)."""
    procs = [subprocess.Popen([sys.executable, "-m", "eval.contention", str(port), flood],
                              stdout=subprocess.PIPE, text=True) for _ in range(clients)]
    time.sleep(1.0)  # let the flood start and reach its steady state
    try:
        ms, errors = _ordinary(port, rounds)
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


def bench_contention(port: int, rounds: int) -> dict:
    """p50 of an ordinary question alone and while two other clients loop each flood, and their ratio.

    Each flood is compared with an alone run just before it, since these machines drift.
    Floods: 500 characters (refused: over the token cap), the costliest legal question,
    the longest question the queue still counts as ordinary, and an ordinary question
    (plain load, for scale)."""
    _ordinary(port, 1)  # warm-up
    legal = longest_accepted(port)
    if legal <= MAX_QUESTION_TOKENS - LONG_TOKENS:
        raise RuntimeError(f"/ask answers no question longer than {legal} characters; is the server well?")
    # 社 is one token, so the longest question the queue still counts as ordinary is this much shorter
    ordinary = legal - (MAX_QUESTION_TOKENS - LONG_TOKENS)
    out: dict = {"max_legal_chars": legal, "max_ordinary_chars": ordinary}
    floods = ((f"flood_{FLOOD_CHARS}", "社" * FLOOD_CHARS), ("flood_max_legal", "社" * legal),
              ("flood_max_ordinary", "社" * ordinary), ("flood_ordinary", QUESTIONS[1]))
    alone_all, alone_errors = [], 0
    for name, flood in floods:
        alone_ms, errors = _ordinary(port, rounds)
        alone_all += alone_ms
        alone_errors += errors
        row = _under_flood(port, rounds, flood)
        row["alone_p50"] = summary(alone_ms)["p50"]
        row["p50_over_alone"] = round(row["p50"] / row["alone_p50"], 2) if row["alone_p50"] else None
        out[name] = row
    out["alone"] = {**summary(alone_all), "errors": alone_errors}
    return out


def contention_rows(c: dict) -> list[tuple[str, str, str]]:
    """`qa bench` table rows: (figure, value, note)."""
    what = {f"flood_{FLOOD_CHARS}": f"{FLOOD_CHARS} × 社 (refused)", "flood_max_legal": f"{c['max_legal_chars']} × 社 (longest legal)",
            "flood_max_ordinary": f"{c['max_ordinary_chars']} × 社 (longest ordinary)", "flood_ordinary": "an ordinary question"}
    rows = []
    for key, label in what.items():
        f = c[key]
        target = " (target ≤ 2×)" if key != "flood_ordinary" else " (plain load)"
        rows.append((f"contention: 2 clients loop {label}", f"p50 {f['p50']} against {f['alone_p50']} alone",
                     f"{f['p50_over_alone']}×{target}, errors {f['errors']}, flood got {f['flood_statuses']}"))
    return rows


def _hammer(port: int, question: str) -> None:
    """One flooding client: ask ``question`` back to back until SIGTERM; print the status counts."""
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    client, counts = Client(port), {}
    while not stopped:
        status, _ = client.ask(question)
        counts[str(status)] = counts.get(str(status), 0) + 1
    sys.stdout.write(json.dumps(counts) + "\n")  # the answer to _under_flood, which reads this pipe


if __name__ == "__main__":
    _hammer(int(sys.argv[1]), sys.argv[2])

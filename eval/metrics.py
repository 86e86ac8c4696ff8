"""Retrieval and answering metrics: pure functions with hand-checkable results."""
from __future__ import annotations

import math
import re
from typing import Sequence

KS = (1, 3, 5, 10)


def overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def is_relevant(passage: tuple[int, int], evidence: tuple[int, int]) -> bool:
    """A passage is relevant when it holds at least half of the evidence span, or, for
    evidence longer than the passage, when at least half of the passage is evidence."""
    shared = overlap(passage, evidence)
    ev_len, p_len = evidence[1] - evidence[0], passage[1] - passage[0]
    need = p_len / 2 if ev_len > p_len else ev_len / 2
    return shared > 0 and shared >= need


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1.0 when a relevant passage is in the top ``k`` (the hit rate for one question)."""
    return 1.0 if any(p in relevant for p in ranked[:k]) else 0.0


def mrr_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    for i, p in enumerate(ranked[:k], 1):
        if p in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG: each relevant passage found counts 1 / log2(rank + 1)."""
    dcg = sum(1.0 / math.log2(i + 1) for i, p in enumerate(ranked[:k], 1) if p in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def retrieval_metrics(rankings: list[Sequence[str]], relevants: list[set[str]]) -> dict[str, float]:
    """Mean recall@1/3/5/10, mrr@10 and ndcg@10 over questions."""
    n = len(rankings)
    if n == 0:
        return {f"recall@{k}": 0.0 for k in KS} | {"mrr@10": 0.0, "ndcg@10": 0.0}
    out = {f"recall@{k}": sum(recall_at(r, rel, k) for r, rel in zip(rankings, relevants)) / n for k in KS}
    out["mrr@10"] = sum(mrr_at(r, rel) for r, rel in zip(rankings, relevants)) / n
    out["ndcg@10"] = sum(ndcg_at(r, rel) for r, rel in zip(rankings, relevants)) / n
    return {k: round(v, 4) for k, v in out.items()}


def no_answer_metrics(refused: list[bool], answerable: list[bool]) -> dict[str, float]:
    """Refusals judged against the truth: precision and recall of refusing, and the
    share of answerable questions wrongly refused."""
    tp = sum(r and not a for r, a in zip(refused, answerable))
    fp = sum(r and a for r, a in zip(refused, answerable))
    unanswerable = sum(not a for a in answerable)
    answerable_n = sum(answerable)
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / unanswerable, 4) if unanswerable else 0.0,
        "false_refusal_rate": round(fp / answerable_n, 4) if answerable_n else 0.0,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 2)


def best_threshold(answerable_conf: Sequence[float], unanswerable_conf: Sequence[float]) -> float:
    """The confidence cut that maximises balanced accuracy (refuse below it)."""
    candidates = sorted(set(answerable_conf) | set(unanswerable_conf))
    if not candidates or not answerable_conf or not unanswerable_conf:
        return 0.0
    best, best_score = candidates[0], -1.0
    for lo, hi in zip(candidates, candidates[1:] + [candidates[-1] + 1e-3]):
        t = (lo + hi) / 2
        kept = sum(c >= t for c in answerable_conf) / len(answerable_conf)
        refused = sum(c < t for c in unanswerable_conf) / len(unanswerable_conf)
        if kept + refused > best_score:
            best, best_score = t, kept + refused
    return round(best, 4)


# CMRC 2018's official evaluation (cmrc2018_evaluate.py, v5): these characters are
# dropped before comparing.  The list is the script's own, quirks included: ASCII
# '.', ',', '(' and the opening quotes ‘ 「 are not in it, and '……' never matches.
_CMRC_PUNCT = frozenset(
    ["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=", "，", "。", "：", "？", "！", "“", "”",
     "；", "’", "《", "》", "……", "·", "、", "「", "」", "（", "）", "－", "～", "『", "』"]
)
_CMRC_HAN = re.compile(r"[\u4e00-\u9fa5]")
# Stands in for nltk.word_tokenize on the non-Han runs: words and decimal numbers
# whole, any other non-space character alone.
_CMRC_WORD = re.compile(r"\d+(?:[.,]\d+)+|\w+|[^\w\s]")


def _cmrc_segments(text: str) -> list[str]:
    """Han characters one by one, other runs as words; punctuation and whitespace dropped."""
    segments: list[str] = []
    run = ""
    for ch in str(text).lower().strip():
        if ch in _CMRC_PUNCT:
            continue  # the script skips it without ending the current run
        if _CMRC_HAN.match(ch):
            segments.extend(_CMRC_WORD.findall(run))
            run = ""
            segments.append(ch)
        else:
            run += ch
    segments.extend(_CMRC_WORD.findall(run))
    return segments


def _longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous run of segments (the script's find_lcs)."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def cmrc_f1(prediction: str, golds: Sequence[str]) -> float:
    """CMRC 2018 F1: precision and recall of the longest common run of segments, best gold."""
    pred = _cmrc_segments(prediction)
    best = 0.0
    for gold in golds:
        ans = _cmrc_segments(gold)
        common = _longest_common_run(ans, pred)
        if common:
            p, r = common / len(pred), common / len(ans)
            best = max(best, 2 * p * r / (p + r))
    return best


def cmrc_em(prediction: str, golds: Sequence[str]) -> float:
    """CMRC 2018 exact match: 1.0 when the prediction equals a gold answer without punctuation."""
    pred = _cmrc_strip(prediction)
    return 1.0 if any(_cmrc_strip(g) == pred for g in golds) else 0.0


def _cmrc_strip(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in _CMRC_PUNCT)

"""The short answer: candidates from the reader and the rules, one scorer, one calibrated probability.

Pure functions over a passage's text and the reader's scores (qa/reader.py computes them).
Candidates are the reader's best spans in the passage plus the rule-based span of the
answer sentence (qa/span.py); each gets a few named features and a logistic scorer,
fitted by ``eval/train_short.py`` on held-out CMRC questions, gives the probability that
it is right (CMRC character F1 ≥ 0.5 against the gold answer).  The best candidate is the
short answer; it is *shown* as the answer only when that probability reaches the
settings' ``span_threshold`` (0.9), since a wrong bold fragment misleads more than the
sentence under it.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from qa.answer_types import Expectation, holds

WEIGHTS = Path(__file__).with_name("data") / "short_weights.json"

# Words that qualify a figure belong to the span they qualify: "不超过350元" is not "350元",
# still less "超过350元".  Checked on the article and regs_dev (README, "Short answers").
_FIGURE = re.compile(r"[\d一二三四五六七八九十百千万亿两零〇]")
_BEFORE = re.compile(r"(?:不超过|不少于|不低于|不高于|不足|超过|低于|高于|至少|至多|最多|最少|最高|最低|大约|约|将近|近|逾|多达)$")
_AFTER = re.compile(r"以上|以下|以内|之内|左右|有余|多|余")
# A numeral's measure word or unit belongs to it: "10.76亿" is "10.76亿人" (a reader's span may
# stop at a token boundary before it).
_UNIT = re.compile(r"(?:万|亿)?(?:人次|人|元|户|次|岁|年|个|项|家|倍|%|％|天|日|月|周|小时|分钟|公里|米|吨|件|所|名|种|条|位)")
_RANGE_AFTER = re.compile(r"以上[^，。；、]{1,12}?以下")  # …以上 | 一万元以下
_RANGE_BEFORE = re.compile(r"[\d一二三四五六七八九十百千万亿两零〇.]+[^\d，。；、]{0,3}以上$")  # 二千元以上 | …


@dataclass(frozen=True)
class Candidate:
    start: int  # in the passage text
    end: int
    features: dict[str, float]
    source: str  # "reader" | "rule"


@dataclass(frozen=True)
class Scored:
    start: int
    end: int
    probability: float
    source: str


def window(sentences: Sequence[tuple[int, int]], k: int, chars: int) -> tuple[int, int]:
    """Sentence ``k`` and its neighbours, nearest first (next, then previous), while the whole
    stays within ``chars`` characters (sentence ``k`` alone may be longer)."""
    lo = hi = k
    while True:
        grown = False
        for cand in (hi + 1, lo - 1):
            if 0 <= cand < len(sentences):
                a, b = min(sentences[lo][0], sentences[cand][0]), max(sentences[hi][1], sentences[cand][1])
                if b - a <= chars:
                    lo, hi = min(lo, cand), max(hi, cand)
                    grown = True
        if not grown:
            return sentences[lo][0], sentences[hi][1]


def with_qualifiers(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` widened to what qualifies its figure: 不超过350元, 10万元以上, and a
    range's other end (二千元以上一万元以下).  Spans without a figure are left alone."""
    if not _FIGURE.search(text, start, end):
        return start, end
    m = _BEFORE.search(text[max(0, start - 4):start])
    if m:
        start -= len(m.group())
    if start > 0 and text[start - 1] in "由从" and "到" in text[start:end]:
        start -= 1  # 由55元提高到143元: the change from its first word
    m = _RANGE_BEFORE.search(text[max(0, start - 16):start]) if text.endswith("以下", 0, end) else None
    if m:
        start -= len(m.group())
    if end > start and (text[end - 1].isdigit() or text[end - 1] in "十百千万亿"):
        m = _UNIT.match(text, end)
        if m:
            end = m.end()
    m = _RANGE_AFTER.match(text, end)
    if m and _FIGURE.search(m.group()):
        return start, m.end()
    m = _AFTER.match(text, end)
    return start, (m.end() if m else end)


def _overlap_f1(a: tuple[int, int], b: tuple[int, int]) -> float:
    shared = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    if not shared:
        return 0.0
    p, r = shared / (a[1] - a[0]), shared / (b[1] - b[0])
    return 2 * p * r / (p + r)


def candidates(text: str, spans: Sequence[tuple[int, int, float]], null_score: float,
               rule: tuple[int, int] | None, rule_score: float | None, sentence: tuple[int, int],
               expected: Expectation | None) -> list[Candidate]:
    """The reader's spans ``(start, end, score)`` (best first) and the rule's span, with features."""
    raw: dict[tuple[int, int], tuple[float, str]] = {}
    for s, e, score in spans:
        if not (sentence[0] <= s and e <= sentence[1]):
            continue  # the answer sentence was chosen by retrieval and the sentence stage; the span is cut from it
        key = with_qualifiers(text, s, e)
        if key not in raw:
            raw[key] = (score, "reader")
    if rule is not None and rule[1] > rule[0]:
        key = with_qualifiers(text, *rule)
        if key in raw:
            raw[key] = (raw[key][0], "both")
        else:
            raw[key] = (rule_score if rule_score is not None else -1e9, "rule")
    if not raw:
        return []
    best = max(score for score, _ in raw.values())
    z = max(best, null_score)
    norm = math.exp(null_score - z) + sum(math.exp(max(score, -50.0) - z) for score, _ in raw.values())
    s_len = max(1, sentence[1] - sentence[0])
    out = []
    for (s, e), (score, source) in raw.items():
        score = max(score, best - 30.0)
        piece = text[s:e]
        out.append(Candidate(s, e, {
            "margin": max(-20.0, min(20.0, score - null_score)),
            "gap": best - score,
            "prob": math.exp(score - z) / norm,
            "null_prob": math.exp(null_score - z) / norm,
            "rule": float(source in ("rule", "both")),
            "reader": float(source in ("reader", "both")),
            "agree": _overlap_f1((s, e), rule) if rule else 0.0,
            "log_chars": math.log1p(e - s),
            "fits": float(expected is not None and holds(expected, piece)),
            "typed": float(expected is not None),
            "in_sentence": float(sentence[0] <= s and e <= sentence[1]),
            "whole_sentence": float((e - s) / s_len >= 0.8),
        }, "both" if source == "both" else source))
    return out


@lru_cache(maxsize=1)
def default_weights() -> dict[str, float]:
    """The fitted weights (qa/data/short_weights.json); before any fit (eval/train_short.py
    runs the pipeline to get its rows), candidates are ordered by the reader's own odds."""
    if not WEIGHTS.exists():
        return {"margin": 1.0}
    return json.loads(WEIGHTS.read_text(encoding="utf-8"))["weights"]


def probability(features: dict[str, float], weights: dict[str, float]) -> float:
    z = weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * v for k, v in features.items())
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


def best(cands: Sequence[Candidate], weights: dict[str, float] | None = None) -> Scored | None:
    """The most probable candidate, with its probability of being right."""
    if not cands:
        return None
    weights = default_weights() if weights is None else weights
    scored = [(probability(c.features, weights), -(c.end - c.start), c) for c in cands]
    p, _, c = max(scored, key=lambda x: (x[0], x[1]))
    return Scored(c.start, c.end, p, c.source)


def reader_refuses(read) -> bool:
    """The reader's own no-answer decision: its no-answer score beats every span in the passage.
    It was trained for exactly this (a third of its windows lack the answer), so its boundary,
    margin 0, is used as it is: no threshold is searched on any collection."""
    return not read.spans or read.margin < 0

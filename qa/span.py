"""The short answer inside an answer sentence: the few characters that answer the question.

Pure functions over strings.  Candidates are the sentence's word sequences, clauses,
numbers and dates; each is scored by a linear function of a few named features (does
its kind fit the question's type, does the question repeat it, do the question's own
words stand right beside it, how long is it) and the best one wins.  The answer is
usually the part of the sentence next to the words the question repeats, which the
question itself does not repeat.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from qa.answer_types import (
    ASKS_CHANGE_RE, ASKS_END_RE, CHANGE_RE, QUESTION_TYPES, asked_value, holds, measure, question_type,
)
from qa.span_features import OPEN, SentenceContext, Span, trim

WEIGHTS = Path(__file__).with_name("data") / "span_weights.json"

# ---------------------------------------------------------------- long answers and changes

_LIST_LEAD_RE = re.compile(r"包括|包含|例如|分别为|分別為|分别是|分別是|即|如|有|为|為|是|：|:|于|於|在|自|由")
_CAUSE_FWD_RE = re.compile(r"因为|因為|由于|由於|为了|為了|是因|原因是")
_CAUSE_BACK_RE = re.compile(r"因此|所以|因而|故而|于是|於是|从而|從而|导致|導致|致使|以致|使得")
_PURPOSE_RE = re.compile(r"(?<=[，,])(?:以便|以免|以防|以)")
_MEANS_MARK_RE = re.compile(r"通过|通過|透过|透過|借由|藉由|经由|經由|利用|采用|採用|凭借|憑藉|依靠|依照|按照|靠"
                            r"|(?<![可所难難得足予加之])以|(?<![作使应應利采採引运運费費适適通信食])用(?![于於途来來])")
_DEFINE_RE = re.compile(r"是指|指的是|意为|意為|是|指|即|为|為|乃")


def _enumeration(ctx: SentenceContext) -> Span | None:
    """The items of a list (甲、乙和丙), from its first item to its last, nearest the question's words."""
    text, best, best_close = ctx.text, None, -1.0
    for cs, ce in ctx.clauses:
        first, last = text.find("、", cs, ce), text.rfind("、", cs, ce)
        if first < 0:
            continue
        # It starts after the question's own words and lead words (发挥着 | 包括 | 民生保障安全网、…)
        start = cs
        while start < first:
            run = next((re_ for rs, re_, _ in ctx.runs if rs == start and re_ <= first), None)
            lead = _LIST_LEAD_RE.match(text, start, first)
            if run is None and lead is None:
                break
            start = run if run is not None else lead.end()
        # and ends where the question's words resume (…减震器 | 的作用).
        end = next((rs for rs, _, _ in ctx.runs if last < rs < ce), ce)
        if not any(ch in OPEN for ch in text[start:last]):
            end = next((i for i in range(last + 2, end) if text[i] in OPEN), end)  # 群防 | “四防”协同
        s, e = trim(text, start, end)
        while s < e and s > 0 and ctx.shared[s - 1] and text[s] in "着著了过過":
            s += 1  # 发挥 | 着 | 民生保障安全网、…: the particle belongs to the question's verb
        while e > s and text[e - 1] in "的之":
            e -= 1
        close = _lead_closeness(ctx, (s, e))
        if ctx.category and ctx.category[:2] in text[e : e + 3]:
            close += 3.0  # 民生保障安全网、…、经济运行减震器 | 的作用
        if ctx.asked_count and ctx.asked_count == text.count("、", s, e) + 1:
            close += 2.0
        if e > s and close > best_close:
            best, best_close = (s, e), close
    return best


def _lead_closeness(ctx: SentenceContext, span: Span) -> float:
    """Closeness that counts the question's words before a span fully and after it by half:
    a list follows its verb (分布于, 包括)."""
    score = 0.0
    for rs, re_, _ in ctx.runs:
        if re_ <= span[0]:
            score += (re_ - rs) / (1 + ctx.gap(re_, span[0]))
        elif rs >= span[1]:
            score += 0.5 * (re_ - rs) / (1 + ctx.gap(span[1], rs))
    return score


def _cause(ctx: SentenceContext) -> Span | None:
    """The reason: after 因为/由于/为了; on the side of 因此/从而 the question does not repeat;
    or a purpose after ，以."""
    text = ctx.text
    m = _CAUSE_FWD_RE.search(text)
    if m:
        end = next((cs for cs, ce in ctx.clauses
                    if cs > m.end() and any(cs <= rs and re_ <= ce for rs, re_, _ in ctx.runs)), len(text))
        return trim(text, m.start(), end)
    m = _CAUSE_BACK_RE.search(text)
    if m and m.start() > 0:
        before, after = (0, m.start()), (m.end(), len(text))
        density = [ctx.repeated(s, e, set()) for s, e in (before, after)]
        return trim(text, *(before if density[0] <= density[1] else after))
    m = _PURPOSE_RE.search(text)
    if m:
        return trim(text, m.start(), next((ce for cs, ce in ctx.clauses if cs >= m.start()), len(text)))
    return None


def _means(ctx: SentenceContext) -> Span | None:
    """The clause giving the means: from 通过/以/用 to the end of its clause."""
    for m in _MEANS_MARK_RE.finditer(ctx.text):
        if ctx.shared[m.start()]:
            continue
        end = next((ce for cs, ce in ctx.clauses if cs <= m.start() < ce), len(ctx.text))
        return trim(ctx.text, m.start(), end)
    return None


def _definition(ctx: SentenceContext) -> Span | None:
    """What follows the defined term and its 是/指/即: the rest of the sentence."""
    runs = ctx.runs
    if not runs or runs[0][0] > 2:
        return None
    m = _DEFINE_RE.match(ctx.text, runs[0][1]) or _DEFINE_RE.search(ctx.text, runs[0][1], runs[0][1] + 6)
    return trim(ctx.text, m.end(), len(ctx.text)) if m else None


_LONG = {"list": _enumeration, "reason": _cause, "method": _means, "definition": _definition}
# The types whose answer the scorer picks (the others take a clause, or the sentence).
SCORED_TYPES = tuple(t for t in QUESTION_TYPES if t not in _LONG)


def _change(question: str, sentence: str) -> Span | None:
    """由55元提高到143元: its end point when the question asks 提高到多少, the whole change when it
    asks how the value changed; of several changes, the one nearest the question's words."""
    asks_end = ASKS_END_RE.search(question)
    if not (asks_end or ASKS_CHANGE_RE.search(question)):
        return None
    changes = [m for m in CHANGE_RE.finditer(sentence) if not asked_value(question, m.group())]
    if not changes:
        return None
    ctx = SentenceContext(question, sentence)
    best = max(changes, key=lambda m: ctx.anchors(*m.span())[2])
    # 从多少提高到多少 asks for both ends: the whole change
    return best.span(2) if asks_end and not ASKS_CHANGE_RE.search(question) else best.span()


# ---------------------------------------------------------------- choosing


# Hand-set weights (the rules), set by reading errors on the first half of
# cmrc2018_trial.json's articles.  Feature names are those of SentenceContext.features.
_RULES = {
    "repeated": -4.0, "all_repeated": -3.0, "holds_question_words": -1.5, "cuts_word": -2.0,
    "asked_value": -5.0, "asked_unit": 1.5, "measure_unit": 1.5,
    "left_gap<=0": 1.5, "left_gap<=1": 1.0, "left_gap<=3": 0.4, "wh_end:left_gap<=0": 1.0,
    "right_gap<=0": 1.5, "right_gap<=1": 1.0, "right_gap<=3": 0.4, "wh_start:right_gap<=0": 1.0,
    "closeness": 1.0, "clause_end": 0.3, "fills_slot_left": 1.5, "fills_slot_right": 1.5,
    "near_slot_left": 0.7, "near_slot_right": 0.7, "ends_with_category": 0.8, "before_category": 0.5,
    "first:p": -1.5, "first:c": -1.5, "first:u": -2.0, "first:d": -0.8, "first:x": -0.5, "first:r": -0.5,
    "last:p": -1.5, "last:c": -1.5, "last:u": -2.0, "last:d": -1.0, "last:f": -0.3,
    "before:是": 1.0, "before:为": 0.5, "before:為": 0.5, "before:，": 0.3,
    "after:的": -0.8, "after:。": 0.3, "after:，": 0.3,
    "number:num": 4.0, "number:has_num": 1.0, "date:date": 4.0, "date:has_date": 1.0,
    "person:has_nr": 2.0, "person:has_nt": 1.0, "person:nouns": 1.0, "person:has_eng": 0.5,
    "place:has_ns": 2.0, "place:nouns": 1.0, "other:nouns": 0.8,
} | {
    f"{t}:len<={n}": w
    for t in ("number", "date", "person", "place", "other")
    for n, w in ((1, -1.5), (2, -0.5), (35, -0.5), (99, -1.0))
}


def rule_weights() -> dict[str, float]:
    """The hand-set weights, for comparison with the learned ones."""
    return dict(_RULES)


@lru_cache(maxsize=1)
def default_weights() -> dict[str, float]:
    """The shipped weights: learned ones (qa/data/span_weights.json) when present, else the rules."""
    if WEIGHTS.exists():
        return json.loads(WEIGHTS.read_text(encoding="utf-8"))["weights"]
    return rule_weights()


def candidate_features(question: str, sentence: str) -> list[tuple[Span, dict[str, float]]]:
    """Every candidate span of ``sentence`` with its features (what the scorer and its trainer see)."""
    ctx = SentenceContext(question, sentence)
    return [(span, ctx.features(span)) for span in ctx.candidates()]


def short_answer(question: str, sentence: str, weights: dict[str, float] | None = None) -> Span:
    """The span of ``sentence`` that answers ``question`` (code points, end exclusive);
    the whole sentence when nothing better is found."""
    whole = (0, len(sentence))
    if not sentence.strip() or not question.strip():
        return whole
    change = _change(question, sentence)
    if change:
        return change
    long_answer = _LONG.get(question_type(question))
    if long_answer:
        span = long_answer(SentenceContext(question, sentence))
        return span if span and span[1] > span[0] else whole
    weights = default_weights() if weights is None else weights
    scored = [
        (sum(weights.get(name, 0.0) * value for name, value in features.items()), -(span[1] - span[0]), span)
        for span, features in candidate_features(question, sentence)
    ]
    measured = measure(question)
    if measured is not None:  # 人数是多少 wants 2.49亿人, never the years 2012年至2025年 beside it
        fitting = [x for x in scored if holds(measured, sentence[x[2][0] : x[2][1]])]
        scored = fitting or scored
    return max(scored)[2] if scored else whole

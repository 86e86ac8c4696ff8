"""From a ranked passage to what the user reads: the answer's extent, highlights and the verdict."""
from __future__ import annotations

import re

from corpus.passages import Passage
from qa.types import Highlight

SHORT_SENTENCE = 20  # a sentence this short (a heading, "（三）待遇水平稳步提高。") rarely answers alone
# A sentence that announces what follows ("……提出一系列科学方法。", "主要有：") is no answer
# by itself: the items are in the next sentence.
_INTRODUCES = re.compile(r"(?:[：:]|(?:(?:一系列|下列)[^，。；！？]{0,8}|如下|以下[^，。；！？]{0,4})[。！]?)\s*$")
MIN_TERM_CHARS = 2  # single-character terms light up half a passage: too noisy to mark


def answer_extent(passage: Passage, k: int) -> tuple[int, int]:
    """The answer's span in the passage text: sentence ``k``, with the next one when it only leads in."""
    s, e = passage.sentences[k]
    if k + 1 < len(passage.sentences) and (e - s < SHORT_SENTENCE or _INTRODUCES.search(passage.text[s:e])):
        e = passage.sentences[k + 1][1]
    return s, e


def highlights(passage: Passage, k: int, terms: set[str]) -> tuple[Highlight, ...]:
    """The best sentence ``k`` and the question's terms, in passage-text and original offsets."""
    s, e = passage.sentences[k]
    spans = [(s, e, "sentence")] + [(a, b, "term") for a, b in term_spans(passage.text, terms)]
    return tuple(Highlight(*passage.original_span(a, b), kind, a, b) for a, b, kind in spans)


def term_spans(text: str, terms: set[str]) -> list[tuple[int, int]]:
    """Where the question's terms occur in ``text``, merged and sorted."""
    lowered = text.lower()
    haystack = lowered if len(lowered) == len(text) else text  # lower() may change lengths (İ)
    spans = []
    for term in terms:
        if len(term) < MIN_TERM_CHARS:
            continue
        start = haystack.find(term)
        while start >= 0:
            spans.append((start, start + len(term)))
            start = haystack.find(term, start + 1)
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def verdict(confidence: float, any_hits: bool, threshold: float) -> tuple[bool, str]:
    """Answer or refuse: the top passage's score against the calibrated threshold."""
    if not any_hits:
        return False, "the index holds no passage to search"
    if confidence >= threshold:
        return True, f"answer found (confidence {confidence:.3f} ≥ {threshold:.3f})"
    return False, (f"no passage answers this question well enough (confidence {confidence:.3f} "
                   f"< {threshold:.3f}); the closest passages are listed")

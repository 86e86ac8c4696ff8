"""Question styles for `qa eval`: as asked, as typed into a search box, and stripped.

``asked`` is each set's own wording. ``keyword`` is the hand-written search-box variant
of the labelled set (``eval/data/keywords.jsonl``). ``stripped`` is made here, for any
set: question words, particles and punctuation removed, as a robustness view of
questions that were written as full sentences (`怎样确保残疾人享受社会保障？` →
`确保残疾人享受社会保障`).
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

STYLES = ("asked", "keyword", "stripped")
KEYWORD_DATASET = Path(__file__).parent / "data" / "keywords.jsonl"

# Question phrases, Simplified and Traditional (DRCD), longest first so 为什么 goes before 什么.
# Single characters that are question words only in some words (何, 哪) go in phrases
# (为何, 何时, 哪一…): 何 alone is also a surname and a part of 任何/如何.
_PHRASES = sorted({
    "请问", "請問", "什么时候", "什麼時候", "甚麼時候", "为什么", "為什麼", "為甚麼", "什么样", "什麼樣",
    "什么", "什麼", "甚麼", "怎么样", "怎麼樣", "怎么", "怎麼", "怎样", "怎樣", "如何", "为何", "為何",
    "何时", "何時", "何年", "何处", "何處", "何地", "何人", "何者", "何种", "何種", "何在", "是否", "是不是",
    "有没有", "有沒有", "哪里", "哪裡", "哪裏", "哪儿", "哪兒",
    "多少", "多久", "多大", "多长", "多長", "多高", "多远", "多遠", "谁", "誰",
}, key=len, reverse=True)
# 哪/几 with the measure word they ask by (哪一年, 哪项, 几家): the measure word alone means nothing.
_WHICH = r"[哪几幾]一?[个個位种種项項条條家边邊次些样樣类類部本座所名只支件场場届屆首张張期年天月日岁歲]?"
_QUESTION_WORDS = re.compile("|".join([*map(re.escape, _PHRASES), _WHICH]))
_FINAL_PARTICLES = re.compile(r"[吗嗎呢吧啊呀]+$")
# Left dangling at either end once the question word is gone: 是哪一年 → 是, 的是什么 → 的是.
# 于 and 由 stay: 位于 and 由于 are words, and 于 is a surname at the start (于海).
_DANGLING_END = re.compile(r"(?:的是|是|为|為|的|了|在|有|被|到)+$")
_DANGLING_START = re.compile(r"^[在的]+")


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P") or ch in "~`^|<>+=$"


def strip_question(question: str) -> str:
    """The keywords of ``question``: question words, final particles and punctuation removed.

    What is left is split at the removed parts with one space, the way people type
    several terms into a search box. A question made only of question words is kept.
    """
    parts = []
    for chunk in _QUESTION_WORDS.split("".join(" " if _is_punctuation(c) else c for c in question)):
        for piece in chunk.split():
            piece = _DANGLING_START.sub("", _DANGLING_END.sub("", _FINAL_PARTICLES.sub("", piece)))
            if piece:
                parts.append(piece)
    return " ".join(parts) or question.strip()

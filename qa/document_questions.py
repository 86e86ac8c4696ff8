"""Questions about the document itself: who wrote it and in what role, where and when it
appeared, what it is called.  Answered from the facts the build found (``corpus.facts``),
never from a passage that merely mentions an author or a journal."""
from __future__ import annotations

import re

from corpus.facts import Fact
from qa.answer_types import question_type

# The question must point at the document ("这篇文章", "本文") or at its author.
_DOCUMENT_RE = re.compile(r"这篇|這篇|这份|這份|本文|本篇|该文|該文|此文|文章|原文|全文|作品")
_AUTHOR_RE = re.compile(r"(?<![工劳勞创創读讀])作者|撰写人|撰寫人|执笔|執筆|写的|寫的|写了|寫了|撰写|撰寫")
_ASKS = (  # checked in order: 作者的职务 is a role question, not an author question
    ("subtitle", re.compile(r"副标题|副標題")),
    ("issue", re.compile(r"哪一?期|第几期|第幾期|几期|幾期|期号|期號")),
    ("role", re.compile(r"职务|職務|职位|職位|担任|擔任|身份|头衔|頭銜|官职|官職|任职|任職|部委|单位|單位|在哪工作|做什么工作|做什麼工作")),
    ("source", re.compile(r"刊物|期刊|杂志|雜誌|报刊|報刊|发表在|發表在|发表于|發表於|刊登|刊载|刊載|原载|原載|载于|載於|出处|出處|出自|来源|來源|哪里发表|哪裡發表")),
    ("date", re.compile(r"(?:哪一?年|何时|何時|什么时候|什麼時候|日期|时间|時間).{0,4}(?:发表|發表|发布|發布|刊登|刊发|刊發|出版|写|寫)"
                        r"|(?:发表|發表|发布|發布|刊登|出版)(?:于|於|的)?(?:哪一?年|何时|何時|什么时候|什麼時候|日期|时间|時間)")),
    ("title", re.compile(r"标题|標題|题目|題目|题名|題名|篇名|叫什么名|叫什麼名|名字叫|名称|名稱")),
    ("author", re.compile(r"作者|谁写|誰寫|谁撰|誰撰|撰写人|撰寫人|执笔|執筆|出自谁|出自誰")),
)
# A question answered by another fact when its own is missing: the issue holds the year.
_FALLBACK = {"date": ("issue",), "issue": ("date",), "source": (), "author": (), "role": (), "title": (), "subtitle": ("title",)}


def asked_fact(question: str, facts: tuple[Fact, ...]) -> str | None:
    """The kind of fact (corpus.facts.KINDS) a question about the document asks for, else None."""
    author = next((f.value for f in facts if f.kind == "author"), "")
    about = _DOCUMENT_RE.search(question) or _AUTHOR_RE.search(question) or (author and author in question)
    if not about:
        return None
    for kind, pattern in _ASKS:
        if not pattern.search(question):
            continue
        if kind in ("role", "author") and not (_AUTHOR_RE.search(question) or (author and author in question)):
            continue  # 文章的单位 is not the author's unit
        if question_type(question) == "date" and kind not in ("date", "issue"):
            return None  # 作者哪一年任部长 asks for a date the facts do not hold
        return kind
    return None


def find_fact(kind: str, facts: tuple[Fact, ...]) -> Fact | None:
    """The fact of ``kind``, or the one that stands in for it (the issue 2026 年第 2 期 for the year)."""
    by_kind = {f.kind: f for f in facts}
    for k in (kind, *_FALLBACK.get(kind, ())):
        if k in by_kind:
            return by_kind[k]
    return None


def fact_extent(text: str, fact: Fact, facts: tuple[Fact, ...]) -> tuple[int, int, int, int]:
    """The line a fact stands on (without heading marks) and the fact's own span, as
    (line start, line end, span start, span end); a source runs on to its issue
    (《时事报告》2026 年第 2 期) when the issue follows it."""
    start, end = fact.start, fact.end
    if fact.kind == "source":
        issue = next((f for f in facts if f.kind == "issue" and 0 <= f.start - end <= 2), None)
        end = issue.end if issue else end
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    while line_start < start and (text[line_start] in "#>*_ \t\u3000"):
        line_start += 1
    while line_end > end and text[line_end - 1].isspace():
        line_end -= 1
    return line_start, line_end, start, end

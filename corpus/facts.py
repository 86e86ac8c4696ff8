"""A document's own facts: title, subtitle, author and role, source publication and issue, date.

Found at build time in the places Chinese articles put them: the heading lines and byline
at the top, a closing line such as "（本文来源：《时事报告》2026 年第 2 期，作者系……部长）"
or "作者：某某", and the file's own properties (PDF/Word/HTML).  Every fact found in the
text keeps its offsets into the document, so an answer about the document is cited to the
line it came from; a fact only the file's properties hold has no offsets (-1).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("title", "subtitle", "author", "role", "source", "issue", "date")
HEAD_CHARS = 600  # the front matter: title, byline, date lines sit in the first few hundred characters
TAIL_CHARS = 400  # the closing source/author note sits in the last lines

_SOURCE_RE = re.compile(r"(?:本文)?(?:来源|來源|出处|出處|原载|原載|原文刊载于|刊于|刊於|载于|載於|转自|轉自)\s*[：:]?\s*(《[^》\n]{1,40}》)")
_ISSUE_RE = re.compile(r"\d{4}\s*年\s*第\s*\d{1,3}\s*期|\d{4}\s*年\s*\d{1,2}\s*月\s*号|第\s*\d{1,3}\s*期")
_ROLE_RE = re.compile(r"(?:作者|作者单位|作者單位)\s*(?:系|為|为|是|：|:)\s*([^）)\n。；;]{2,40})")
_AUTHOR_RE = re.compile(r"(?:^|\n)\s*(?:作者|文|撰稿|撰文)\s*[：:｜|]\s*([\u4e00-\u9fff·]{2,8}(?:[、，, ][\u4e00-\u9fff·]{2,8}){0,3})")
_DATE_RE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}-\d{1,2}-\d{1,2}")
_META_KINDS = {"title": "title", "author": "author", "created": "date", "subject": "subtitle"}


@dataclass(frozen=True)
class Fact:
    kind: str  # one of KINDS
    value: str
    start: int = -1  # offsets into the document text; -1 when only the file's properties hold it
    end: int = -1


def document_facts(text: str, title_parts: tuple[str, ...], author: str,
                   meta: tuple[tuple[str, str], ...] = ()) -> tuple[Fact, ...]:
    """Every fact of KINDS found, at most one of each kind, the text before the file properties."""
    found: dict[str, Fact] = {}

    def add(kind: str, value: str, start: int = -1) -> None:
        value = value.strip()
        if value and kind not in found:
            found[kind] = Fact(kind, value, start, start + len(value) if start >= 0 else -1)

    head_end = min(len(text), HEAD_CHARS)
    for kind, part in zip(("title", "subtitle"), title_parts):
        add(kind, part, text.find(part, 0, head_end))
    if author:
        add("author", author, text.find(author, 0, head_end))
    tail_start = max(0, len(text) - TAIL_CHARS)
    for lo, hi in ((tail_start, len(text)), (0, head_end)):
        window = text[lo:hi]
        if (m := _AUTHOR_RE.search(window)):
            add("author", m.group(1), lo + m.start(1))
        if (m := _ROLE_RE.search(window)):
            add("role", m.group(1), lo + m.start(1))
        if (m := _SOURCE_RE.search(window)):
            add("source", m.group(1), lo + m.start(1))
            issue = _ISSUE_RE.match(window, m.end(1)) or _ISSUE_RE.search(window, m.end(1), m.end(1) + 20)
            if issue:
                add("issue", issue.group(), lo + issue.start())
        if (m := _DATE_RE.search(window)):
            add("date", m.group(), lo + m.start())
    for key, value in meta:
        kind = _META_KINDS.get(key)
        if kind and value.strip():
            at = text.find(value.strip(), 0, head_end)
            add(kind, value, at)
    return tuple(found[k] for k in KINDS if k in found)

"""Document structure: title, author, sections and units, and the cleaned body.

Chinese documents number their structure by genre, and the same marks mean different
things in each: in a report "（一）" opens a subsection, in a law it numbers an item inside
an article.  So each document's genre is decided from its own evidence (``genre``), and
the genre says which marks are heading levels and which block starts a unit:

- ``law``: 第X编/章/节 are heading levels and 第X条 is the unit; an article's paragraphs
  (款) and items (（一）项) stay in it, so "应当遵守下列程序：" keeps its items.
- ``faq``: a block opening with 问/Q starts a unit that its 答/A blocks join.
- ``report`` (official documents, articles, anything else): headings numbered 一、 (or
  Markdown, Word and HTML headings, or a bold line) and subsections opened inline by （一）.

The article's own headings are inconsistent ("### 一、", "## 二、", "### **三、…**"), so in a
report every heading is one level, recognised by its numbering, not its Markdown level.
Cleaning repairs layout only (page breaks inside sentences, stray spaces, emphasis markers)
and keeps, for every cleaned character, its offset in the original text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.text import EMPHASIS_RE, SECTION_RE, SUBSECTION_RE, breaks_off, emphasis_positions, ends_sentence, is_cjk

_BLOCK_RE = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")  # lines with no blank line between
_COMMENT_RE = re.compile(r"\s*<!--.*?-->\s*", re.DOTALL)  # a Markdown comment is never shown
_HEADING_MAX = 60
_AUTHOR_MAX = 20
_SUBSECTION_TITLE_MAX = 40

_NUMBER = "零〇一二两三四五六七八九十百千0-9０-９"
_ARTICLE_RE = re.compile(rf"^(第[{_NUMBER}]+条(?:之[{_NUMBER}]+)?)(?![，、,])")
_DIVISION_RE = re.compile(rf"^第[{_NUMBER}]+([编章节])(?![，、,的])")
_DIVISION_LEVEL = {"编": 1, "章": 2, "节": 3}
_QUESTION_RE = re.compile(r"^(?:问|問|Q|q)\s*\d*\s*[：:．.、]")
_ANSWER_RE = re.compile(r"^(?:答|A|a)\s*\d*\s*[：:．.、]")
# Enough of one kind to call a document a law or a FAQ: a report may cite one 第三条 or
# ask one rhetorical 问, never several at the start of its paragraphs.
_GENRE_EVIDENCE = 3


@dataclass(frozen=True)
class Segment:
    """A run of body text under one section path, as a span of the cleaned text."""

    section: str
    start: int
    end: int


@dataclass(frozen=True)
class Parsed:
    """A document's structure; ``offsets[i]`` is the original offset of ``clean[i]``."""

    title: str
    author: str
    sections: tuple[str, ...]
    clean: str
    offsets: tuple[int, ...]
    segments: tuple[Segment, ...]
    title_parts: tuple[str, ...] = ()  # the heading lines the title joins: title, then subtitle
    genre: str = "report"


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    text: str

    @property
    def words(self) -> str:
        """The block's text without Markdown heading marks and emphasis."""
        return EMPHASIS_RE.sub("", self.text.strip().lstrip("#")).strip()


def _blocks(text: str) -> list[_Block]:
    blocks = []
    for m in _BLOCK_RE.finditer(text):
        if _COMMENT_RE.fullmatch(m.group()):
            continue  # "<!-- INFO END -->" in a published law's Markdown
        blocks.append(_Block(m.start(), m.end(), m.group()))
    return blocks


def genre(blocks: list[_Block]) -> str:
    """The document's genre, from how its paragraphs begin.

    A law: at least three paragraphs open with 第X条 and they outnumber those opening with
    一、.  A FAQ: at least three open with 问/Q and as many answers with 答/A follow.
    """
    starts = [b.words for b in blocks]
    articles = sum(bool(_ARTICLE_RE.match(w)) for w in starts)
    numbered = sum(bool(SECTION_RE.match(w)) for w in starts)
    if articles >= _GENRE_EVIDENCE and articles > numbered:
        return "law"
    questions = sum(bool(_QUESTION_RE.match(w)) for w in starts)
    answers = sum(bool(_ANSWER_RE.match(w)) for w in starts)
    if questions >= _GENRE_EVIDENCE and answers >= questions:
        return "faq"
    return "report"


def _heading_level(block: _Block, kind: str, after: _Block | None) -> int:
    """The heading level of ``block`` (1 the highest), or 0 when it is no heading."""
    text = block.text.strip()
    words = block.words
    if "\n" in text or not words:
        return 0
    if kind == "law":
        division = _DIVISION_RE.match(words)
        if division and len(words) <= _HEADING_MAX and not ends_sentence(words):
            return _DIVISION_LEVEL[division.group(1)]
        if _ARTICLE_RE.match(words):
            return 0  # "## 第一条 …" is an article written as a heading: a unit, never a level
        return 2 if text.startswith("#") else 0  # other Markdown headings rank with chapters
    if text.startswith("#"):
        return 1
    wrapped = text.startswith(("**", "__")) and text.endswith(("**", "__"))
    numbered = SECTION_RE.match(words) is not None
    if (wrapped or numbered) and len(words) <= _HEADING_MAX and not ends_sentence(words) \
            and not breaks_off(words, after.words if after is not None else ""):  # a PDF wrapped after "0571-"
        return 1
    return 0


def _unit(words: str, kind: str) -> str | None:
    """The label of the unit a body block opens (a subsection, an article, a question), else None."""
    if kind == "law":
        m = _ARTICLE_RE.match(words)
        return m.group(1) if m else None
    if kind == "faq":
        return _label(words, "\n") if _QUESTION_RE.match(words) else None
    return _label(words, "。") if SUBSECTION_RE.match(words) else None


def _label(paragraph: str, ends: str) -> str:
    """The paragraph's opening words, up to the first of ``ends``, shortened for a section path."""
    head = re.split(f"[{re.escape(ends)}]", paragraph, maxsplit=1)[0].strip()
    return head if len(head) <= _SUBSECTION_TITLE_MAX else head[:_SUBSECTION_TITLE_MAX] + "…"


def _is_author(block: _Block) -> bool:
    words = block.text.strip()
    return len(words) <= _AUTHOR_MAX and "\n" not in words and not re.search(r"[，。！？；：,.!?;:]", words) \
        and not SECTION_RE.match(block.words) and not breaks_off(words, "")


def _clean_block(text: str, base: int, chars: list[str], offsets: list[int]) -> None:
    """Append ``text``'s cleaned characters and their original offsets."""
    skip = emphasis_positions(text)
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if i in skip:
            i += 1
            continue
        if ch.isspace():
            j = i
            while j < n and (text[j].isspace() or j in skip):
                j += 1
            before = chars[-1] if chars and offsets[-1] >= base else ""
            after = text[j] if j < n else ""
            # A space between two Latin words means something; next to Chinese it is layout,
            # and so is a line break after a hyphen (0571-⏎88888888 is one number).
            hyphenated = before in "-－" and "\n" in text[i:j]
            if before == after == "|" and "\n" in text[i:j]:  # a table's rows stay lines: "| a | b |"
                chars.append("\n")
                offsets.append(base + i + text[i:j].index("\n"))
            elif before and after and not is_cjk(before) and not is_cjk(after) and not hyphenated:
                chars.append(" ")
                offsets.append(base + i)
            i = j
            continue
        chars.append(ch)
        offsets.append(base + i)
        i += 1


def parse(text: str, fallback_title: str) -> Parsed:
    """Find the structure of ``text`` and build its cleaned body with an offset map."""
    blocks = _blocks(text)
    kind = genre(blocks)
    title_parts: list[str] = []
    author = ""
    sections: list[str] = []
    chars: list[str] = []
    offsets: list[int] = []
    segments: list[Segment] = []
    headings: list[tuple[int, str]] = []  # the open heading levels, highest first
    unit = ""
    seg_start = 0
    previous_body: _Block | None = None
    seen_body = False

    def close_segment() -> None:
        nonlocal seg_start
        end = len(chars)
        while end > seg_start and chars[end - 1] == "\n":
            end -= 1
        if end > seg_start:
            path = " > ".join([h for _, h in headings] + ([unit] if unit else []))
            segments.append(Segment(path, seg_start, end))
        seg_start = len(chars)

    for n, block in enumerate(blocks):
        level = _heading_level(block, kind, blocks[n + 1] if n + 1 < len(blocks) else None)
        if level:
            heading = block.words if kind != "law" else " ".join(block.words.split())
            if not sections and not seen_body and not _numbered(heading, kind):
                title_parts.append(heading)
                continue
            close_segment()
            headings = [h for h in headings if h[0] < level] + [(level, heading)]
            unit = ""
            sections.append(heading)
            previous_body = None
            continue
        if kind != "law" and not seen_body and not author and title_parts and _is_author(block):
            author = block.text.strip()
            continue
        if not seen_body and not title_parts and len(block.text.strip()) <= _HEADING_MAX \
                and not ends_sentence(block.text) and "\n" not in block.text.strip():
            title_parts.append(block.text.strip())  # a plain-text file's first short line
            continue
        seen_body = True
        label = _unit(EMPHASIS_RE.sub("", block.text).lstrip(), kind)
        joins = previous_body is not None and label is None and not ends_sentence(previous_body.text)
        if label is not None:
            close_segment()
            unit = label
        elif previous_body is not None and not joins:
            chars.append("\n")  # paragraph break: maps to the newline after the previous block
            offsets.append(previous_body.end)
        _clean_block(block.text, block.start, chars, offsets)
        previous_body = block
    close_segment()
    title = "　".join(title_parts) or fallback_title
    return Parsed(title, author, tuple(sections), "".join(chars), tuple(offsets), tuple(segments),
                  tuple(title_parts), kind)


def _numbered(heading: str, kind: str) -> bool:
    """A heading numbered as part of the body (一、, 第一章), which a title never is."""
    return bool(_DIVISION_RE.match(heading) if kind == "law" else SECTION_RE.match(heading))

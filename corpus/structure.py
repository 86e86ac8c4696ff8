"""Document structure: title, author, sections and subsections, and the cleaned body.

The article's headings are inconsistent ("### 一、", "## 二、", "### **三、…**") and
its subsections are written inline as （一）… at a paragraph start, so headings are
recognised by their numbering, not their Markdown level.  Cleaning repairs layout
only (page breaks inside sentences, stray spaces, emphasis markers) and keeps, for
every cleaned character, its offset in the original text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.text import EMPHASIS_RE, SECTION_RE, SUBSECTION_RE, emphasis_positions, ends_sentence, is_cjk

_BLOCK_RE = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")  # lines with no blank line between
_HEADING_MAX = 60
_AUTHOR_MAX = 20
_SUBSECTION_TITLE_MAX = 40


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


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    text: str


def _blocks(text: str) -> list[_Block]:
    return [_Block(m.start(), m.end(), m.group()) for m in _BLOCK_RE.finditer(text)]


def _heading_text(block: _Block) -> str | None:
    """The heading's words if the block is a heading, else None."""
    text = block.text.strip()
    markdown = text.startswith("#")
    words = EMPHASIS_RE.sub("", text.lstrip("#")).strip()
    if "\n" in text or not words:
        return None
    if markdown:
        return words
    wrapped = text.startswith(("**", "__")) and text.endswith(("**", "__"))
    numbered = SECTION_RE.match(words) is not None
    if (wrapped or numbered) and len(words) <= _HEADING_MAX and not ends_sentence(words):
        return words
    return None


def _is_author(block: _Block) -> bool:
    words = block.text.strip()
    return len(words) <= _AUTHOR_MAX and "\n" not in words and not re.search(r"[，。！？；：,.!?;:]", words)


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
            # A space between two Latin words means something; next to Chinese it is layout.
            if before and after and not is_cjk(before) and not is_cjk(after):
                chars.append(" ")
                offsets.append(base + i)
            i = j
            continue
        chars.append(ch)
        offsets.append(base + i)
        i += 1


def _subsection_title(paragraph: str) -> str:
    head = paragraph.split("。", 1)[0]
    return head if len(head) <= _SUBSECTION_TITLE_MAX else head[:_SUBSECTION_TITLE_MAX] + "…"


def parse(text: str, fallback_title: str) -> Parsed:
    """Find the structure of ``text`` and build its cleaned body with an offset map."""
    title_parts: list[str] = []
    author = ""
    sections: list[str] = []
    chars: list[str] = []
    offsets: list[int] = []
    segments: list[Segment] = []
    section, subsection = "", ""
    seg_start = 0
    previous_body: _Block | None = None
    seen_body = False

    def close_segment() -> None:
        nonlocal seg_start
        end = len(chars)
        while end > seg_start and chars[end - 1] == "\n":
            end -= 1
        if end > seg_start:
            path = " > ".join(p for p in (section, subsection) if p)
            segments.append(Segment(path, seg_start, end))
        seg_start = len(chars)

    for block in _blocks(text):
        heading = _heading_text(block)
        if heading is not None:
            if not sections and not seen_body and not SECTION_RE.match(heading):
                title_parts.append(heading)
                continue
            close_segment()
            section, subsection = heading, ""
            sections.append(heading)
            previous_body = None
            continue
        if not seen_body and not author and title_parts and _is_author(block):
            author = block.text.strip()
            continue
        if not seen_body and not title_parts and len(block.text.strip()) <= _HEADING_MAX \
                and not ends_sentence(block.text) and "\n" not in block.text.strip():
            title_parts.append(block.text.strip())  # a plain-text file's first short line
            continue
        seen_body = True
        words = EMPHASIS_RE.sub("", block.text).lstrip()
        starts_subsection = SUBSECTION_RE.match(words) is not None
        joins = previous_body is not None and not starts_subsection and not ends_sentence(previous_body.text)
        if starts_subsection:
            close_segment()
            subsection = _subsection_title(words)
        elif previous_body is not None and not joins:
            chars.append("\n")  # paragraph break: maps to the newline after the previous block
            offsets.append(previous_body.end)
        _clean_block(block.text, block.start, chars, offsets)
        previous_body = block
    close_segment()
    title = "　".join(title_parts) or fallback_title
    return Parsed(title, author, tuple(sections), "".join(chars), tuple(offsets), tuple(segments), tuple(title_parts))

"""Character classes for Chinese text, shared by cleaning, splitting and tokenization."""
from __future__ import annotations

import re

# Sentence terminators, and what may trail one and still belong to its sentence.
TERMINATORS = frozenset("。！？!?；;…")
CLOSERS = frozenset("”’」』）)】》〉\"'")
CLAUSE_BREAKS = frozenset("，、：:,")
NUMERALS = "一二三四五六七八九十百"
SECTION_RE = re.compile(rf"^[{NUMERALS}]+、")
SUBSECTION_RE = re.compile(rf"^[（(][{NUMERALS}]+[）)]")
EMPHASIS_RE = re.compile(r"\*{2,}|_{2,}")


def is_cjk(ch: str) -> bool:
    """Han characters and full-width punctuation: text where spaces carry no meaning."""
    code = ord(ch)
    return (
        0x3000 <= code <= 0x303F  # CJK punctuation
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x2018 <= code <= 0x201F  # curly quotes
        or 0x20000 <= code <= 0x2FA1F
    )


def ends_sentence(text: str) -> bool:
    """True when ``text`` ends a sentence (a terminator, maybe followed by closers)."""
    stripped = text.rstrip()
    while stripped and stripped[-1] in CLOSERS:
        stripped = stripped[:-1]
    return bool(stripped) and stripped[-1] in TERMINATORS | frozenset("：:")


# A line ending in one of these breaks off mid-phrase ("详见《", "包括：甲、", "电话0571-").
OPEN_ENDS = frozenset("-－–—/(（[【“‘《〈、，,")


def inside_word(line: str, following: str) -> bool:
    """True when a line break between ``line`` and ``following`` falls inside a number or a
    Latin word: "0571-" ⏎ "88888888", "multi" ⏎ "lingual"."""
    return bool(line) and bool(following) and (line[-1] in "-－" or (
        line[-1].isascii() and line[-1].isalnum() and following[0].isascii() and following[0].isalnum()))


def breaks_off(line: str, following: str) -> bool:
    """True when ``line`` stops inside a phrase, a number or a word (``following`` goes on with
    it): half of a sentence, never a heading."""
    return bool(line) and (line[-1] in OPEN_ENDS or inside_word(line, following))


def emphasis_positions(text: str) -> frozenset[int]:
    """Positions of Markdown emphasis markers (``**``, ``__``): cleaning drops exactly these."""
    return frozenset(i for m in EMPHASIS_RE.finditer(text) for i in range(m.start(), m.end()))


# Cleaning drops runs of these (emphasis) and whitespace.  A comparison drops every one
# of them, since joining two lines can bring two lone "*" together into what looks like
# a run: squash is the same on both sides of a citation whatever the layout did.
EMPHASIS_CHARS = frozenset("*_")


def kept_positions(text: str) -> list[int]:
    """Positions that survive a squash: neither whitespace nor an emphasis character."""
    return [i for i, ch in enumerate(text) if not ch.isspace() and ch not in EMPHASIS_CHARS]


def squash(text: str) -> str:
    """Text with whitespace and Markdown emphasis removed, for comparing a citation with its source."""
    return "".join(text[i] for i in kept_positions(text))

"""One question against one sentence: what the question repeats, where, and the candidate spans.

``SentenceContext`` computes, lazily and once, everything the short-answer scorer reads:
the sentence's words and parts of speech (jieba), the characters the question repeats on
each side of its interrogative, clause bounds, and every candidate span with its named
features.  Pure: strings in, spans and feature dictionaries out.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property

from corpus.tokenize import pos_words
from qa.answer_types import DATE_RE, MEASURES, QUANTITY_RE, WH_RE, asked_value, question_type, question_unit

Span = tuple[int, int]


_CLAUSE = frozenset("，。；：！？,;:!?\n")
OPEN, CLOSE = "（(「『“‘《〈【[", "）)」』”’》〉】]"
PUNCT = _CLAUSE | frozenset(OPEN + CLOSE + "、\"' ·-—–…~～/")
_LIST_RE = re.compile(r"[、]|(?<=\S)(?:和|及|与|與|以及|或)(?=\S)")
_POS = {"nr": "nr", "nrt": "nr", "nrfg": "nr", "ns": "ns", "nt": "nt", "nz": "nz", "eng": "eng", "m": "m", "mq": "m",
        "q": "q", "t": "t", "p": "p", "c": "c", "d": "d", "r": "r", "f": "f", "x": "x", "a": "a", "ad": "a", "an": "a",
        "v": "v", "vn": "v", "vd": "v", "vg": "v", "n": "n", "ng": "n", "j": "n", "l": "n", "s": "n", "b": "n"}
_LEN_BINS = (1, 2, 4, 7, 12, 20, 35)
MAX_WORDS, MAX_CHARS = 12, 40


def _pos(flag: str) -> str:
    return _POS.get(flag, "u" if flag.startswith("u") else "o")


_NUMBER_RUN_RE = re.compile(r"\d+(?:[.,]\d+)*")


def _bigrams(text: str) -> set[str]:
    """Character pairs of ``text`` without punctuation or two digits (numbers are matched whole)."""
    pairs = (text[i : i + 2] for i in range(len(text) - 1))
    return {p for p in pairs if not (set(p) & PUNCT) and not (p[0].isdigit() and p[1].isdigit())}


@dataclass
class SentenceContext:
    """One question against one sentence: what the question repeats, where, and the candidates."""

    question: str
    text: str

    @cached_property
    def qtype(self) -> str:
        return question_type(self.question)

    @cached_property
    def words(self) -> list[tuple[int, int, str]]:
        out, pos = [], 0
        for word, flag in pos_words(self.text):
            out.append((pos, pos + len(word), _pos(flag)))
            pos += len(word)
        return out

    @cached_property
    def wh_place(self) -> str:
        """Where the interrogative sits in the question: start, middle or end."""
        m = WH_RE.search(self.question)
        if not m:
            return "none"
        left, right = self.question[: m.start()].strip(), self.question[m.end() :].strip("？?。 ")
        return "start" if len(left) < 2 else "end" if len(right) < 2 else "middle"

    @cached_property
    def category(self) -> str:
        """The noun the interrogative asks about: 哪部电影 → 电影, 什么职务 → 职务."""
        m = re.search(r"(?:哪|什么|什麼|甚麼|多少|几|幾)[一二两兩三四五六七八九十\d]*[个個部家所座位种種条條本张張首项項名只]?"
                      r"([\u4e00-\u9fff]{2,4}?)(?=[的是在中上里裡之于於？?，,]|$)", self.question)
        return m.group(1) if m else ""

    @cached_property
    def slot(self) -> tuple[str, str]:
        """The two characters right before the interrogative and the two right after it."""
        m = WH_RE.search(self.question)
        if not m:
            return "", ""
        left, right = self.question[max(0, m.start() - 2) : m.start()], self.question[m.end() : m.end() + 2]
        return tuple(s if len(s) == 2 and not set(s) & PUNCT else "" for s in (left, right))

    @cached_property
    def asked_count(self) -> int | None:
        """How many items a list question asks for: 哪三个 → 3."""
        m = re.search(r"哪(\d+|[二两兩三四五六七八九十])", self.question)
        if not m:
            return None
        value = m.group(1)
        return int(value) if value.isdigit() else "一二三四五六七八九十".find(value.replace("两", "二").replace("兩", "二")) + 1

    @cached_property
    def asked_unit(self) -> str | None:
        return question_unit(self.question)

    @cached_property
    def measure_units(self) -> tuple[str, ...]:
        """Units that fit what a number question measures (体重 → 公斤, 面积 → 平方公里)."""
        return tuple(u for key, units in MEASURES for u in units if re.search(key, self.question))

    @cached_property
    def sides(self) -> tuple[list[bool], list[bool]]:
        """Characters the question repeats from before its interrogative, and from after it."""
        m = WH_RE.search(self.question)
        left, right = (self.question[: m.start()], self.question[m.end() :]) if m else (self.question, "")
        return self._mask(left), self._mask(right)

    def _mask(self, part: str) -> list[bool]:
        """Characters in a bigram of ``part``; a number counts only whole (2014 never matches 2026)."""
        grams = _bigrams(part)
        mask = [False] * len(self.text)
        for i in range(len(self.text) - 1):
            if self.text[i : i + 2] in grams:
                mask[i] = mask[i + 1] = True
        numbers = set(_NUMBER_RUN_RE.findall(part))
        for m in _NUMBER_RUN_RE.finditer(self.text):
            if m.group() in numbers:
                mask[m.start() : m.end()] = [True] * (m.end() - m.start())
        return mask

    @cached_property
    def shared(self) -> list[bool]:
        left, right = self.sides
        return [a or b for a, b in zip(left, right)]

    @cached_property
    def breaks_prefix(self) -> list[int]:
        out = [0]
        for ch in self.text:
            out.append(out[-1] + (ch in _CLAUSE))
        return out

    def gap(self, a: int, b: int) -> int:
        """Characters between offsets a <= b, a clause break counting five."""
        return (b - a) + 4 * (self.breaks_prefix[b] - self.breaks_prefix[a])

    @cached_property
    def runs(self) -> list[tuple[int, int, str]]:
        """Maximal runs of repeated characters, each marked by the side of the question it came from."""
        left, right = self.sides
        out, i, n = [], 0, len(self.text)
        while i < n:
            if left[i] or right[i]:
                j = i
                while j < n and (left[j] or right[j]):
                    j += 1
                out.append((i, j, "L" if any(left[i:j]) and not any(right[i:j]) else "R" if not any(left[i:j]) else "B"))
                i = j
            else:
                i += 1
        return out

    @cached_property
    def clauses(self) -> list[Span]:
        spans, start = [], 0
        for i, ch in enumerate(self.text):
            if ch in _CLAUSE:
                spans.append((start, i))
                start = i + 1
        spans.append((start, len(self.text)))
        return [t for t in (trim(self.text, s, e) for s, e in spans) if t[1] > t[0]]

    def candidates(self) -> list[Span]:
        """Word sequences inside a clause, clauses, numbers, dates and the whole sentence."""
        text, words = self.text, self.words
        found: set[Span] = set()
        cuts = [i for i, (s, e, _) in enumerate(words) if text[s:e].strip() and set(text[s:e]) <= _CLAUSE]
        bounds = [-1] + cuts + [len(words)]
        for lo, hi in zip(bounds, bounds[1:]):
            for i in range(lo + 1, hi):
                for j in range(i, min(hi, i + MAX_WORDS)):
                    if words[j][1] - words[i][0] > MAX_CHARS:
                        break
                    found.add(trim(text, words[i][0], words[j][1]))
        found.update(self.clauses)
        for k in range(1, len(self.clauses)):
            found.add((self.clauses[k - 1][0], self.clauses[k][1]))
            found.add((self.clauses[k][0], self.clauses[-1][1]))
        for pattern in (QUANTITY_RE, DATE_RE):
            found.update(trim(text, *m.span()) for m in pattern.finditer(text))
        found.add(trim(text, 0, len(text)))
        return sorted(c for c in found if c[1] > c[0] and balanced(text[c[0] : c[1]]))

    @cached_property
    def typed(self) -> dict[str, set[Span]]:
        return {
            "num": {trim(self.text, *m.span()) for m in QUANTITY_RE.finditer(self.text)},
            "date": {trim(self.text, *m.span()) for m in DATE_RE.finditer(self.text)},
        }

    @cached_property
    def _index(self) -> tuple[list[int], list[int], frozenset[int], frozenset[int]]:
        starts = [w[0] for w in self.words]
        ends = [w[1] for w in self.words]
        return starts, ends, frozenset(starts), frozenset(ends)

    @cached_property
    def _content_prefix(self) -> tuple[list[int], list[int]]:
        """Running counts of word characters, and of those the question repeats."""
        content, repeated = [0], [0]
        for ch, shared in zip(self.text, self.shared):
            word = ch not in PUNCT and not ch.isspace()
            content.append(content[-1] + word)
            repeated.append(repeated[-1] + (word and shared))
        return content, repeated

    def features(self, span: Span) -> dict[str, float]:
        """Named features of one candidate span (kinds are conjoined with the question's type)."""
        s, e = span
        text, qt, words = self.text, self.qtype, self.words
        starts, ends, start_set, end_set = self._index
        inside = words[bisect_left(starts, s) : bisect_right(ends, e)]
        piece = text[s:e]
        kinds = self._kinds(span, piece, inside)
        f: dict[str, float] = {f"{qt}:{kind}": 1.0 for kind in kinds}
        f[f"{qt}:len<={next((b for b in _LEN_BINS if len(piece) <= b), 99)}"] = 1.0
        rep = self.repeated(s, e, kinds)
        f["repeated"] = rep
        if rep == 1.0:
            f["all_repeated"] = 1.0
        inner = sum(1 for rs, re_, _ in self.runs if rs > s and re_ < e)
        if inner:
            f["holds_question_words"] = float(inner)
        lgap, rgap, close = self.anchors(s, e)
        if lgap is not None:
            f[f"left_gap<={_bin(lgap)}"] = 1.0
            f[f"wh_{self.wh_place}:left_gap<={_bin(lgap)}"] = 1.0
        if rgap is not None:
            f[f"right_gap<={_bin(rgap)}"] = 1.0
            f[f"wh_{self.wh_place}:right_gap<={_bin(rgap)}"] = 1.0
        f["closeness"] = math.log1p(close)
        left_slot, right_slot = self.slot
        if left_slot and text.endswith(left_slot, 0, s):
            f["fills_slot_left"] = 1.0  # 再提高 | 20元  for  …再提高多少
        elif left_slot and text.endswith(left_slot, 0, s - 1):
            f["near_slot_left"] = 1.0
        if right_slot and text.startswith(right_slot, e):
            f["fills_slot_right"] = 1.0  # 1995年 | 上映  for  哪一年上映
        elif right_slot and text.startswith(right_slot, e + 1):
            f["near_slot_right"] = 1.0
        before, after = bisect_right(ends, s) - 1, bisect_left(starts, e)
        f[_context("before", words[before] if before >= 0 else None, text)] = 1.0
        f[_context("after", words[after] if after < len(words) else None, text)] = 1.0
        if inside:
            f[f"first:{inside[0][2]}"] = 1.0
            f[f"last:{inside[-1][2]}"] = 1.0
        if s not in start_set or e not in end_set:
            f["cuts_word"] = 1.0
        if s in self._clause_starts:
            f["clause_start"] = 1.0
        if e in self._clause_ends:
            f["clause_end"] = 1.0
        cat = self.category
        if cat and piece.endswith(cat[-2:]) and len(piece) > 2:
            f["ends_with_category"] = 1.0
        if cat and (text.startswith(cat[:2], e) or text.startswith(cat[:2], e + 1)):
            f["before_category"] = 1.0
        number = "num" in kinds or "has_num" in kinds
        unit = self.asked_unit
        if unit and unit in piece and "num" in kinds:
            f["asked_unit"] = 1.0
        if number and any(u in piece for u in self.measure_units):
            f["measure_unit"] = 1.0
        if ("num" in kinds or "date" in kinds) and asked_value(self.question, piece):
            f["asked_value"] = 1.0
        return f

    @cached_property
    def _clause_starts(self) -> frozenset[int]:
        return frozenset(c[0] for c in self.clauses)

    @cached_property
    def _clause_ends(self) -> frozenset[int]:
        return frozenset(c[1] for c in self.clauses)

    def repeated(self, s: int, e: int, kinds: set[str]) -> float:
        """Share of the span's word characters the question repeats (a number's asked unit aside)."""
        content, repeated = self._content_prefix
        total, shared = content[e] - content[s], repeated[e] - repeated[s]
        unit = self.asked_unit if "num" in kinds else None
        at = self.text.find(unit, s, e) if unit else -1
        if at >= 0:
            total -= content[at + len(unit)] - content[at]
            shared -= repeated[at + len(unit)] - repeated[at]
        return shared / total if total > 0 else 1.0

    def _kinds(self, span: Span, piece: str, inside: list[tuple[int, int, str]]) -> set[str]:
        s, e = span
        kinds = set()
        for name, spans in self.typed.items():
            if span in spans:
                kinds.add(name)
            elif any(a >= s and b <= e for a, b in spans):
                kinds.add("has_" + name)
        flags = {w[2] for w in inside}
        kinds.update(f"has_{p}" for p in ("nr", "ns", "nt", "nz", "eng") if p in flags)
        if flags and flags <= {"n", "nr", "ns", "nt", "nz", "eng", "x"}:
            kinds.add("nouns")
        if _LIST_RE.search(piece):
            kinds.add("list")
        if span in self._clause_set:
            kinds.add("clause")
        if s == self._whole[0] and e == self._whole[1]:
            kinds.add("sentence")
        if piece[0] in "（(" and piece[-1] in "）)":
            kinds.add("parenthetical")
        elif piece[0] in OPEN and piece[-1] in CLOSE:
            kinds.add("quoted")
        elif piece[-1] in CLOSE:
            kinds.add("ends_bracketed")
        return kinds

    @cached_property
    def _clause_set(self) -> frozenset[Span]:
        return frozenset(self.clauses)

    @cached_property
    def _whole(self) -> Span:
        return trim(self.text, 0, len(self.text))

    def anchors(self, s: int, e: int) -> tuple[int | None, int | None, float]:
        """Gap to the nearest repeated run on the left and on the right, and how much of the
        question sits around the span (each run's length over its distance; the side of the
        question it came from counts fully on the matching side, a third on the other)."""
        lgap = rgap = None
        close = 0.0
        for rs, re_, side in self.runs:
            if re_ <= s:
                g = self.gap(re_, s)
                lgap = g if lgap is None else min(lgap, g)
                close += (re_ - rs) / (1 + g) * (1.0 if side in "LB" else 0.33)
            elif rs >= e:
                g = self.gap(e, rs)
                rgap = g if rgap is None else min(rgap, g)
                close += (re_ - rs) / (1 + g) * (1.0 if side in "RB" else 0.33)
        return lgap, rgap, close


# Words whose presence right before or after a span says much about it (是 before an
# answer, 的 after a modifier); any other neighbour is known by its part of speech.
_CUES = frozenset("""是 為 为 在 于 於 由 被 以 将 將 把 的 之 了 和 与 與 及 或 从 從 到 至 向 对 對 称 稱 名 叫 即 有 共 约 約
    达 達 任 等 中 时 時 后 後 前 年 ， 。 、 ： ； （ ） 「 」 《 》 “ ” 位于 位於 成为 成為 称为 稱為 包括 包含 例如 如 分别 分別""".split())


def _context(side: str, word: tuple[int, int, str] | None, text: str) -> str:
    if word is None:
        return f"{side}:edge"
    token = text[word[0] : word[1]]
    return f"{side}:{token}" if token in _CUES else f"{side}:{word[2]}"


def _bin(gap: int) -> int:
    return next((b for b in (0, 1, 3, 8) if gap <= b), 99)


def trim(text: str, s: int, e: int) -> Span:
    """Drop whitespace and punctuation at either end, keeping brackets that close inside."""
    while s < e and (text[s].isspace() or (text[s] in PUNCT and text[s] not in OPEN)):
        s += 1
    while e > s and (text[e - 1].isspace() or (text[e - 1] in PUNCT and text[e - 1] not in CLOSE)):
        e -= 1
    return s, e


def balanced(piece: str) -> bool:
    depth = 0
    for ch in piece:
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0

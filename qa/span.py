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
import math
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from corpus.tokenize import NUMBER_RE, pos_words

Span = tuple[int, int]
WEIGHTS = Path(__file__).with_name("data") / "span_weights.json"

QUESTION_TYPES = ("number", "date", "person", "place", "list", "reason", "method", "definition", "other")

_CN_DIGITS = "零〇一二两兩三四五六七八九十百千万萬亿億"
# Checked in this order: 为什么 holds 什么, 哪一年 holds 哪, 是谁 holds 是.
_TYPE_PATTERNS = [
    # 称为什么 / 更名为什么 is "called what", not "why".
    ("reason", r"(?<![称稱名改命视視译譯作成算现現列定选選封立设設分化转轉变變])(?:为什么|為什麼|为甚么|為甚麼)"
               r"|为何|為何|何故|因何|什么原因|什麼原因|甚麼原因|什么理由|什麼理由"),
    ("date", r"哪一?[年天日]|何年|何时|何時|何日|什么时候|什麼時候|甚麼時候|什么时间|什麼時間|几[月号日]|幾[月號日]"
             r"|哪一?[个個]?(?:朝代|年代|世纪|世紀|时期|時期|时代|時代|季节|季節|月份?)"
             r"|什[么麼](?:年代|时期|時期|时代|時代|朝代|日子|季节|季節)"),
    ("list", r"哪些|哪几|哪幾|哪[二两兩三四五六七八九十\d]"),  # 哪三个作用, 哪四防; 哪一位 is one
    ("person", r"谁|誰|哪一?位|什么人|什麼人|甚麼人|何人|哪一?[个個]人"),
    ("place", r"哪里|哪裡|哪裏|哪儿|哪兒|哪边|哪邊|何处|何處|何地|什么地方|什麼地方|甚麼地方|在哪(?:[？?]|$)"
              r"|哪一?[个個座]?(?:国家|國家|城市|地区|地區|省份?|城|州|国|國|县|縣|市|岛|島|洲|地方)"),
    ("number", r"多少|几|幾|多[大高长長久远遠重深宽寬厚快老]|百分之"),
    ("method", r"怎么|怎麼|怎样|怎樣|如何|何种方式|何種方式|什么方式|什麼方式|什么方法|什麼方法"),
    ("definition", r"什么是|什麼是|甚麼是|是指|指什么|指什麼|指的是|什么意思|什麼意思|意思是|含义|含義|定义|定義"),
]
_TYPE_RES = [(name, re.compile(pattern)) for name, pattern in _TYPE_PATTERNS]
_DEFINITION_TAIL_RE = re.compile(r"^[^的之]+是(?:什么|什麼|甚麼)[？?]?$")
_WH_RE = re.compile(
    r"为什么|為什麼|为甚么|為甚麼|什么|什麼|甚麼|多少|谁|誰|几|幾|何[时時处處地年日人种種故]|为何|為何"
    r"|哪[一二两兩三四五六七八九十几幾\d]?[个個位些种種年天里裡裏儿兒边邊国國所家部条條座本张張首项項名类類]?"
    r"|怎么样?|怎麼樣?|怎样|怎樣|如何|多[大高长長久远遠重深宽寬厚快]"
)


def question_type(question: str) -> str:
    """One of QUESTION_TYPES, from the question's interrogative words (Simplified or Traditional)."""
    q = question.strip()
    for name, pattern in _TYPE_RES:
        if pattern.search(q):
            return name
    return "definition" if _DEFINITION_TAIL_RE.match(q) else "other"


# ---------------------------------------------------------------- numbers and dates

_QUALIFIER = r"(?:约为|約為|大约|大約|约|約|近|将近|將近|超过|超過|逾|多达|多達|高达|高達|不到|至少|仅|僅|只有|年仅|年僅)?"
_UNITS = sorted(
    """% ％ ‰ 元 美元 加元 港元 港币 港幣 日元 欧元 歐元 英镑 英鎊 人民币 人民幣 越南盾 新台币 新台幣 台币 臺幣 年 个月 個月 月 日 天 周 週
    小时 小時 分钟 分鐘 秒 岁 歲 人次 人 名 位 个 個 次 倍 项 項 所 座 条 條 张 張 种 種 类 類 处 處 家 股 发 發 册 冊 本 部 件 只 隻
    头 頭 匹 辆 輛 架 艘 枚 首 场 場 届 屆 层 層 级 級 季 集 章 篇 卷 期 户 戶 间 間 栋 棟 棵 株 片 块 塊 分 米 公尺 公里 千米 里
    厘米 公分 毫米 英尺 英寸 英里 哩 平方公里 平方千米 平方米 平方英里 公顷 公頃 亩 畝 公斤 千克 克 吨 噸 磅 升 毫升 度 票 席 字 号 號
    GHz MHz km cm mm kg m""".split(),
    key=len, reverse=True,
)
_UNIT = "(?:" + "|".join(re.escape(u) for u in _UNITS) + ")"
_DIGITS = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|{NUMBER_RE.pattern})"
_CN_NUM = rf"[{_CN_DIGITS}半]+"
_MAG = r"(?:多|余|餘)?(?:万亿|萬億|亿|億|万|萬|千|百)?"
_ONE = rf"(?:\d+[：:比]\d+|第?{_DIGITS}\s?{_MAG}\s?{_UNIT}?|第?{_CN_NUM}(?:多|余|餘)?{_UNIT}|第{_CN_NUM})"
_RANGE = r"\s?(?:至|到|~|～|-|－|—)\s?"
_QTY_RE = re.compile(rf"{_QUALIFIER}{_ONE}(?:{_RANGE}{_ONE})?")
_CHANGE_VERB = r"提高|增加|增长|增長|上升|提升|扩大|擴大|下降|降低|减少|減少|降|升|增"
_CHANGE_RE = re.compile(
    rf"(?:从|從|由)({_QUALIFIER}{_ONE})[^，。；,;\d]{{0,8}}?(?:{_CHANGE_VERB})(?:到|至)({_QUALIFIER}{_ONE})")
# 提高到多少 asks for the end point; 从多少提高到 / 怎样变化 / 提高了多少 for the whole change.
_ASKS_END_RE = re.compile(r"(?:到|至)(?:多少|几|幾)")
_ASKS_CHANGE_RE = re.compile(rf"(?:从|從|由)(?:多少|几|幾)|变化|變化|变动|變動|(?:{_CHANGE_VERB})了(?:多少|几|幾)")
_YEAR = r"(?:公元前?|西元前?)?(?:\d{1,4}\s?|[〇零一二三四五六七八九]{2,4})年(?:代|初|末|底|中|初期|中期|末期)?"
_MD = r"(?:\d{1,2}|[一二三四五六七八九十]{1,3})月(?:(?:\d{1,2}|[一二三四五六七八九十]{1,3})[日号號])?"
_ERA = r"[\u4e00-\u9fff]{2}(?:[元一二三四五六七八九十\d]{1,4})年\s?[（(][^）)]{0,6}\d{2,4}年[）)]"
_CENTURY = r"(?:\d{1,2}|[一二三四五六七八九十]{1,3})世[纪紀](?:初期?|中期|末期?|\d{1,2}年代)?"
_ONE_DATE = rf"(?:{_ERA}(?:{_MD})?|{_YEAR}(?:{_MD})?|{_MD}|{_CENTURY}|[春夏秋冬][季天])"
_DATE_RE = re.compile(rf"{_ONE_DATE}(?:\s?(?:至|到|~|～|-|－|—|及|和|、)\s?{_ONE_DATE})*")
_MEASURES = [
    (r"重|体重|體重", ("公斤", "千克", "克", "吨", "噸", "磅", "kg")),
    (r"多高|高度|身高|海拔|多深|深度", ("米", "公尺", "公里", "英尺", "厘米", "公分", "m")),
    (r"多长|多長|长度|長度|全长|全長|多远|多遠|距离|距離|体长|體長", ("米", "公尺", "公里", "千米", "英里", "哩", "厘米", "公分", "毫米", "cm", "km")),
    (r"面积|面積|多大", ("平方", "公顷", "公頃", "亩", "畝")),
    (r"多少钱|多少錢|资本|資本|价格|價格|金额|金額|资金|資金|收入|预算|預算|花费|花費|投资|投資|斥资|斥資",
     ("元", "币", "幣", "盾", "镑", "鎊")),
    (r"多少人|人数|人數|人口|观众|觀眾|员工|員工|学生|學生", ("人", "名", "位")),
    (r"多久|多长时间|多長時間|几年|幾年|多少年|年龄|年齡|几岁|幾歲|多少岁|多少歲", ("年", "月", "天", "日", "小时", "小時", "岁", "歲")),
    (r"百分|比例|比率|比重|占", ("%", "％", "成")),
]
_VALUE_RE = re.compile(rf"\d[\d,.]*|[{_CN_DIGITS}]{{2,}}")


def _asked(question: str, value: str) -> bool:
    """True when the question itself holds the number or date in ``value`` (2007年 in 2007年11月…)."""
    cores = _VALUE_RE.findall(value)
    return bool(cores) and all(c in question for c in cores)


def _question_unit(question: str) -> str | None:
    """The unit the question asks in: 多少分钟 → 分钟, 几所 → 所."""
    m = re.search(rf"(?:多少|几|幾)({_UNIT})", question)
    return m.group(1) if m else None


# ---------------------------------------------------------------- the sentence

_CLAUSE = frozenset("，。；：！？,;:!?\n")
_OPEN, _CLOSE = "（(「『“‘《〈【[", "）)」』”’》〉】]"
_PUNCT = _CLAUSE | frozenset(_OPEN + _CLOSE + "、\"' ·-—–…~～/")
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
    return {p for p in pairs if not (set(p) & _PUNCT) and not (p[0].isdigit() and p[1].isdigit())}


@dataclass
class _Sentence:
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
        m = _WH_RE.search(self.question)
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
        m = _WH_RE.search(self.question)
        if not m:
            return "", ""
        left, right = self.question[max(0, m.start() - 2) : m.start()], self.question[m.end() : m.end() + 2]
        return tuple(s if len(s) == 2 and not set(s) & _PUNCT else "" for s in (left, right))

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
        return _question_unit(self.question)

    @cached_property
    def measure_units(self) -> tuple[str, ...]:
        """Units that fit what a number question measures (体重 → 公斤, 面积 → 平方公里)."""
        return tuple(u for key, units in _MEASURES for u in units if re.search(key, self.question))

    @cached_property
    def sides(self) -> tuple[list[bool], list[bool]]:
        """Characters the question repeats from before its interrogative, and from after it."""
        m = _WH_RE.search(self.question)
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
        return [t for t in (_trim(self.text, s, e) for s, e in spans) if t[1] > t[0]]

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
                    found.add(_trim(text, words[i][0], words[j][1]))
        found.update(self.clauses)
        for k in range(1, len(self.clauses)):
            found.add((self.clauses[k - 1][0], self.clauses[k][1]))
            found.add((self.clauses[k][0], self.clauses[-1][1]))
        for pattern in (_QTY_RE, _DATE_RE):
            found.update(_trim(text, *m.span()) for m in pattern.finditer(text))
        found.add(_trim(text, 0, len(text)))
        return sorted(c for c in found if c[1] > c[0] and _balanced(text[c[0] : c[1]]))

    @cached_property
    def typed(self) -> dict[str, set[Span]]:
        return {
            "num": {_trim(self.text, *m.span()) for m in _QTY_RE.finditer(self.text)},
            "date": {_trim(self.text, *m.span()) for m in _DATE_RE.finditer(self.text)},
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
            word = ch not in _PUNCT and not ch.isspace()
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
        if ("num" in kinds or "date" in kinds) and _asked(self.question, piece):
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
        elif piece[0] in _OPEN and piece[-1] in _CLOSE:
            kinds.add("quoted")
        elif piece[-1] in _CLOSE:
            kinds.add("ends_bracketed")
        return kinds

    @cached_property
    def _clause_set(self) -> frozenset[Span]:
        return frozenset(self.clauses)

    @cached_property
    def _whole(self) -> Span:
        return _trim(self.text, 0, len(self.text))

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


def _trim(text: str, s: int, e: int) -> Span:
    """Drop whitespace and punctuation at either end, keeping brackets that close inside."""
    while s < e and (text[s].isspace() or (text[s] in _PUNCT and text[s] not in _OPEN)):
        s += 1
    while e > s and (text[e - 1].isspace() or (text[e - 1] in _PUNCT and text[e - 1] not in _CLOSE)):
        e -= 1
    return s, e


def _balanced(piece: str) -> bool:
    depth = 0
    for ch in piece:
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


# ---------------------------------------------------------------- long answers and changes

_LIST_LEAD_RE = re.compile(r"包括|包含|例如|分别为|分別為|分别是|分別是|即|如|有|为|為|是|：|:|于|於|在|自|由")
_CAUSE_FWD_RE = re.compile(r"因为|因為|由于|由於|为了|為了|是因|原因是")
_CAUSE_BACK_RE = re.compile(r"因此|所以|因而|故而|于是|於是|从而|從而|导致|導致|致使|以致|使得")
_PURPOSE_RE = re.compile(r"(?<=[，,])(?:以便|以免|以防|以)")
_MEANS_MARK_RE = re.compile(r"通过|通過|透过|透過|借由|藉由|经由|經由|利用|采用|採用|凭借|憑藉|依靠|依照|按照|靠"
                            r"|(?<![可所难難得足予加之])以|(?<![作使应應利采採引运運费費适適通信食])用(?![于於途来來])")
_DEFINE_RE = re.compile(r"是指|指的是|意为|意為|是|指|即|为|為|乃")


def _enumeration(ctx: _Sentence) -> Span | None:
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
        if not any(ch in _OPEN for ch in text[start:last]):
            end = next((i for i in range(last + 2, end) if text[i] in _OPEN), end)  # 群防 | “四防”协同
        s, e = _trim(text, start, end)
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


def _lead_closeness(ctx: _Sentence, span: Span) -> float:
    """Closeness that counts the question's words before a span fully and after it by half:
    a list follows its verb (分布于, 包括)."""
    score = 0.0
    for rs, re_, _ in ctx.runs:
        if re_ <= span[0]:
            score += (re_ - rs) / (1 + ctx.gap(re_, span[0]))
        elif rs >= span[1]:
            score += 0.5 * (re_ - rs) / (1 + ctx.gap(span[1], rs))
    return score


def _cause(ctx: _Sentence) -> Span | None:
    """The reason: after 因为/由于/为了; on the side of 因此/从而 the question does not repeat;
    or a purpose after ，以."""
    text = ctx.text
    m = _CAUSE_FWD_RE.search(text)
    if m:
        end = next((cs for cs, ce in ctx.clauses
                    if cs > m.end() and any(cs <= rs and re_ <= ce for rs, re_, _ in ctx.runs)), len(text))
        return _trim(text, m.start(), end)
    m = _CAUSE_BACK_RE.search(text)
    if m and m.start() > 0:
        before, after = (0, m.start()), (m.end(), len(text))
        density = [ctx.repeated(s, e, set()) for s, e in (before, after)]
        return _trim(text, *(before if density[0] <= density[1] else after))
    m = _PURPOSE_RE.search(text)
    if m:
        return _trim(text, m.start(), next((ce for cs, ce in ctx.clauses if cs >= m.start()), len(text)))
    return None


def _means(ctx: _Sentence) -> Span | None:
    """The clause giving the means: from 通过/以/用 to the end of its clause."""
    for m in _MEANS_MARK_RE.finditer(ctx.text):
        if ctx.shared[m.start()]:
            continue
        end = next((ce for cs, ce in ctx.clauses if cs <= m.start() < ce), len(ctx.text))
        return _trim(ctx.text, m.start(), end)
    return None


def _definition(ctx: _Sentence) -> Span | None:
    """What follows the defined term and its 是/指/即: the rest of the sentence."""
    runs = ctx.runs
    if not runs or runs[0][0] > 2:
        return None
    m = _DEFINE_RE.match(ctx.text, runs[0][1]) or _DEFINE_RE.search(ctx.text, runs[0][1], runs[0][1] + 6)
    return _trim(ctx.text, m.end(), len(ctx.text)) if m else None


_LONG = {"list": _enumeration, "reason": _cause, "method": _means, "definition": _definition}
# The types whose answer the scorer picks (the others take a clause, or the sentence).
SCORED_TYPES = tuple(t for t in QUESTION_TYPES if t not in _LONG)


def _change(question: str, sentence: str) -> Span | None:
    """由55元提高到143元: its end point when the question asks 提高到多少, the whole change when it
    asks how the value changed; of several changes, the one nearest the question's words."""
    asks_end = _ASKS_END_RE.search(question)
    if not (asks_end or _ASKS_CHANGE_RE.search(question)):
        return None
    changes = [m for m in _CHANGE_RE.finditer(sentence) if not _asked(question, m.group())]
    if not changes:
        return None
    ctx = _Sentence(question, sentence)
    best = max(changes, key=lambda m: ctx.anchors(*m.span())[2])
    return best.span(2) if asks_end else best.span()


# ---------------------------------------------------------------- choosing


# Hand-set weights (the rules), set by reading errors on the first half of
# cmrc2018_trial.json's articles.  Feature names are those of _Sentence.features.
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
    ctx = _Sentence(question, sentence)
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
        span = long_answer(_Sentence(question, sentence))
        return span if span and span[1] > span[0] else whole
    weights = default_weights() if weights is None else weights
    scored = [
        (sum(weights.get(name, 0.0) * value for name, value in features.items()), -(span[1] - span[0]), span)
        for span, features in candidate_features(question, sentence)
    ]
    return max(scored)[2] if scored else whole

"""Chinese tokenization for keyword search: jieba plus whole number-with-unit tokens.

This is the only module that imports jieba.  Passages and questions go through
the same function, so "2025年" or "10.76亿" in a question meets the same token
in the text.
"""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from pathlib import Path

USER_DICT = Path(__file__).with_name("userdict.txt")

# A number with its magnitude (10.76亿, 9.1万亿, 100多万) or its unit (2025年, 15%, 143元).
_NUMBER = r"\d+(?:[.．]\d+)?"
_MAGNITUDE = r"(?:多|余)?(?:万亿|亿|万|千|百)"
_UNIT = r"(?:%|％|‰|元|年|月|日|号|项|个|次|倍|岁|人次|人|分钟|公里|小时|天)"
NUMBER_RE = re.compile(rf"{_NUMBER}(?:{_MAGNITUDE}|{_UNIT})?")
_WORD_RE = re.compile(r"[\w]", re.UNICODE)
_HAN_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

STOPWORDS = frozenset(
    """的 了 是 在 和 与 及 或 等 也 都 就 而 并 被 把 对 从 向 为 以 于 之 其 这 那 这些 那些 该 此
    一个 一些 什么 怎么 怎样 怎么样 如何 多少 哪些 哪个 哪 吗 呢 吧 啊 呀 么 有 有没有 没有 是否 为什么
    请问 请 我 我们 你 你们 他 她 它 他们 要 会 能 可以 可 还 又 上 下 中 里 个 多 几 年 """.split()
)

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _jieba():
    """One initialised jieba tokenizer with the domain dictionary (loading takes ~1 s)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        tokenizer.load_userdict(str(USER_DICT))
    return tokenizer


def tokenize(text: str) -> list[str]:
    """Search tokens of ``text``: numbers with units whole, words and their sub-words."""
    tokenizer = _jieba()
    tokens: list[str] = []
    pos = 0
    for match in NUMBER_RE.finditer(text):
        tokens.extend(_words(tokenizer, text[pos : match.start()]))
        tokens.append(match.group().replace("．", ".").replace("％", "%"))
        pos = match.end()
    tokens.extend(_words(tokenizer, text[pos:]))
    return tokens


def _words(tokenizer, text: str) -> list[str]:
    if not text:
        return []
    return [
        w.lower()
        for w in tokenizer.cut_for_search(text, HMM=True)
        if _WORD_RE.search(w) and w not in STOPWORDS
    ]


def warm_up() -> None:
    """Load the dictionaries now rather than on the first request: the part-of-speech one
    (short answers, names in questions) took 3.5 s on its first call here."""
    _jieba()
    pos_words("北京的社会保障卡")


def bigrams(text: str) -> frozenset[str]:
    """Character bigrams of the word characters of ``text``, case-folded.

    Robust to segmentation: "失业保险金" and "失业保险" share most bigrams even
    where jieba cuts them differently.
    """
    chars = "".join(ch for ch in text.lower() if _WORD_RE.match(ch))
    return frozenset(chars[i : i + 2] for i in range(len(chars) - 1))


def pos_words(text: str) -> list[tuple[str, str]]:
    """``text`` cut into jieba words with their part-of-speech tags (ns place, nr person, m numeral …).

    The words are the ones ``tokenize`` cuts (same tokenizer, same dictionary) and cover
    ``text`` exactly, in order, so their lengths give offsets.  A dictionary word takes
    jieba.posseg's tag; any other word is tagged by jieba.posseg on its own, once.
    """
    return [(word, _pos_tag(word)) for word in _jieba().cut(text, HMM=True)] if text else []


@lru_cache(maxsize=1)
def _posseg():
    import jieba.posseg

    return jieba.posseg.POSTokenizer(_jieba())


_NAME_TAGS = ("nr", "nrt", "nrfg", "ns", "nt", "nz")


def dictionary_tag(word: str) -> str | None:
    """The part-of-speech tag jieba's dictionary gives ``word``; None for a word it guesses."""
    return _posseg().word_tag_tab.get(word)


@lru_cache(maxsize=65536)
def _pos_tag(word: str) -> str:
    posseg = _posseg()
    tag = posseg.word_tag_tab.get(word)
    if tag:
        return tag
    if not _HAN_RE.search(word):
        return "m" if any(ch.isdigit() for ch in word) else "eng" if word.isascii() and word.isalpha() else "x"
    # Tagging a word alone is slow (HMM over every tag) but words repeat, hence the cache.
    tags = [pair.flag for pair in posseg.cut(word, HMM=True)]
    return next((t for t in tags if t in _NAME_TAGS), tags[-1] if tags else "x")

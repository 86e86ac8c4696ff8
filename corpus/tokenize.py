"""Chinese tokenization for keyword search: jieba plus whole number-with-unit tokens.

This is the only module that imports jieba.  Passages and questions go through
the same function, so "2025年" or "10.76亿" in a question meets the same token
in the text.
"""
from __future__ import annotations

import logging
import marshal
import os
import re
import sys
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

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
def _dictionaries() -> tuple[dict[str, int], int, dict[str, str]]:
    """jieba's word frequencies (every word's prefixes too, at 0, as jieba keeps them), their
    total, and the words' part-of-speech tags: what ``jieba.Tokenizer.initialize`` and
    ``jieba.posseg.POSTokenizer`` build from jieba's dict.txt, built here in one pass so that
    both tables hold the same string object for a word and a tag is one shared string.

    Built by jieba itself, posseg kept a second copy of all 349,045 words: 97 MB of a server
    of about 280 MB, and 0.5 s of its start (1.1 s for both tables; 0.2 s from this cache).
    Kept as one marshal file in the temp folder, as jieba keeps its own cache there, and made
    again when jieba's dictionary or this layout changes.
    """
    import jieba

    source = Path(jieba.get_dict_file().name)
    stat = source.stat()
    cache = Path(tempfile.gettempdir()) / f"zhqa-jieba-1-{jieba.__version__}-{stat.st_size}-{int(stat.st_mtime)}.marshal"
    try:
        if cache.stat().st_uid != os.getuid():  # a shared temp folder: only a file of our own is read
            raise ValueError(f"{cache} belongs to another user")
        words, freqs, total, tags = marshal.loads(cache.read_bytes())  # data only: marshal runs nothing
        if not (len(words) == len(freqs) and len(tags) <= len(words) and isinstance(total, int)):
            raise ValueError("a cache of another shape")
    except (OSError, ValueError, EOFError, TypeError) as exc:
        log.debug("jieba dictionary read from its source: %s", exc)
        words, freqs, total, tags = _read_dictionary(source)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.name + ".")  # a new file, never a link
            with os.fdopen(fd, "wb") as fh:
                fh.write(marshal.dumps((words, freqs, total, tags)))
            os.replace(tmp, cache)
        except OSError as exc:  # read-only, or another user's file there: it is only slower next time
            log.info("jieba dictionary cache not written: %s", exc)
            if tmp:
                Path(tmp).unlink(missing_ok=True)
    return dict(zip(words, freqs)), total, dict(zip(words, tags))  # the dicts share each word's str


def _read_dictionary(source: Path) -> tuple[list[str], list[int], int, list[str]]:
    """jieba's gen_pfdict and posseg's load_word_tag in one pass: the words with their
    frequencies and tags first, then the prefixes that are no word, at frequency 0."""
    words, freqs, tags, total, seen = [], [], [], 0, {}
    with source.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            word, freq, tag = parts[0], int(parts[1]), sys.intern(parts[2]) if len(parts) > 2 else ""
            total += freq  # every line counts, a repeated word too, as jieba counts them
            if word in seen:  # a later line's frequency and tag win, as in jieba
                freqs[seen[word]], tags[seen[word]] = freq, tag
                continue
            seen[word] = len(words)
            words.append(word)
            freqs.append(freq)
            tags.append(tag)
    prefixes = [w[:n] for w in words for n in range(1, len(w)) if w[:n] not in seen]
    prefixes = list(dict.fromkeys(prefixes))
    return words + prefixes, freqs + [0] * len(prefixes), total, tags


@lru_cache(maxsize=1)
def _jieba():
    """One initialised jieba tokenizer with the domain dictionary (``_dictionaries``)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.FREQ, tokenizer.total, _ = _dictionaries()
        tokenizer.initialized = True  # what initialize() would have loaded is there
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
    """jieba's part-of-speech tagger over ``_jieba``, its tag table the one ``_dictionaries``
    shares with the tokenizer (its constructor would read dict.txt again into a table of its own)."""
    import jieba.posseg

    posseg = jieba.posseg.POSTokenizer.__new__(jieba.posseg.POSTokenizer)
    posseg.tokenizer = _jieba()
    posseg.word_tag_tab = _dictionaries()[2]  # the tags are posseg's alone: the tokenizer reads the frequencies
    return posseg


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

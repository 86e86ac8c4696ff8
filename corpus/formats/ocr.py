"""OCR: the lines of text in a picture of a page, each character with its box, by PP-OCR.

The engine is rapidocr-onnxruntime: PaddleOCR's Chinese detection and recognition models
(PP-OCRv4) run by onnxruntime, the models inside the wheel, so nothing is downloaded at run
time.  Tesseract (Debian's ``tesseract-ocr-chi-sim``) was the other candidate; the README
("Scans") gives both one's figures on the scanned article.  Pages are read one at a time (a
lock), in one worker process at low priority (``_worker``), each on ``Limits.ocr_threads``
cores (QA_OCR_THREADS), so a scan never takes the cores from the questions, and two scans
queue rather than share the cores and double the memory.
"""
from __future__ import annotations

import atexit
import os
import statistics
import threading
from dataclasses import dataclass

import numpy as np

from corpus.formats import FormatError
from corpus.formats.layout import Line, reading_order
from corpus.text import is_cjk

_LOCK = threading.Lock()
_ENGINES: dict[int, object] = {}  # in the worker process
_POOL = None
# The longest side the detector sees: rapidocr shrinks larger pictures to it (its max_side_len),
# so a page is rendered at this size and no larger (an A4 page at about 170 dpi).
MAX_SIDE = 2000
# Below this mean recogniser confidence an OCR'd page is named as doubtful.  Clean scans of the
# article read at 0.99–1.00 a page (README, "Scans"); a page whose reading is below 0.9 has
# about one character in ten the recogniser itself doubts.
LOW_CONFIDENCE = 0.9


@dataclass(frozen=True)
class OcrLine:
    """One line as read: its text, each character's box (pixels, x right, y down) and the recogniser's confidence."""

    text: str
    boxes: tuple[tuple[float, float, float, float], ...]  # (x0, y0, x1, y1) per character of ``text``
    score: float


def cores(threads: int) -> int:
    """The cores an OCR of ``threads`` uses: 0 means all but one."""
    return threads or max(1, (os.cpu_count() or 2) - 1)


def _engine(threads: int):
    threads = cores(threads)
    if threads not in _ENGINES:
        from rapidocr_onnxruntime import RapidOCR

        # the global keys: rapidocr copies them over every model's own (utils/parse_parameters.py)
        _ENGINES[threads] = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
    return _ENGINES[threads]


def read(image: np.ndarray, threads: int = 0) -> list[OcrLine]:
    """The lines of ``image`` (an RGB or grey array), top to bottom as the detector orders them,
    read with ``threads`` cores (0: all but one) in the OCR worker process."""
    global _POOL
    from concurrent.futures.process import BrokenProcessPool

    with _LOCK:
        try:
            return _worker().submit(_read, np.ascontiguousarray(image), threads).result()
        except BrokenProcessPool:  # the worker died (killed, out of memory): the next page gets a new one
            _POOL = None
            raise FormatError("the OCR worker stopped while reading a page (out of memory?)") from None


def _worker():
    """One process, started on first use, that runs every OCR of this process at low priority.

    In the server's own process, reading a scan slowed every question 4.5× (p50 19.3 → 87.4
    ms, p95 902 ms, `qa bench --ocr`): the recogniser's Python work took turns with the
    questions' under one interpreter lock, and its core with the query encoder's.  Apart and
    niced, the scheduler gives the questions their cores first.
    """
    global _POOL
    if _POOL is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: forking a server that runs threads would copy its locks mid-use
        _POOL = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority)
        atexit.register(_POOL.shutdown)  # before the interpreter tears down the modules the pool's cleanup uses
    return _POOL


def _lower_priority() -> None:
    os.nice(10)


def _read(image: np.ndarray, threads: int) -> list[OcrLine]:
    # Without the line-angle classifier: it took whole lines of the scanned article for
    # upside down (cls_thresh 0.9), and the recogniser then read them as nothing: 7 lines
    # lost, character error rate 4.7 % at 300 dpi.  Lines upside down on an upright page
    # are not what scans hold.
    found, _ = _engine(threads)(image, use_cls=False, return_word_box=True)
    lines = []
    for quad, text, score, *rest in found or ():
        text = text.strip()
        if not text:
            continue
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        words = rest[0] if rest else None
        lines.append(OcrLine(text, _boxes(text, words, (min(xs), min(ys), max(xs), max(ys))), float(score)))
    return lines


def _boxes(text: str, words, line: tuple[float, float, float, float]) -> tuple[tuple[float, float, float, float], ...]:
    """A box per character: the recogniser's own where it gave one per character (it does for
    Chinese), else the line's width shared out evenly (it gives Latin words one box each)."""
    x0, y0, x1, y1 = line
    if words and len(words) == len(text):
        return tuple((min(p[0] for p in w), y0, max(p[0] for p in w), y1) for w in words)
    step = (x1 - x0) / len(text)
    return tuple((x0 + i * step, y0, x0 + (i + 1) * step, y1) for i in range(len(text)))


def confidence(lines: list[OcrLine]) -> float:
    """A page's confidence: its lines' mean, weighted by their length (1.0 for a page without text)."""
    chars = sum(len(line.text) for line in lines)
    return sum(line.score * len(line.text) for line in lines) / chars if chars else 1.0


def page(image: np.ndarray, unit: float, threads: int = 0) -> tuple[list[Line], float]:
    """A picture of a page as lines in the page's units (``unit`` per pixel; y up, as PDF's) in
    reading order, and the page's confidence."""
    height = image.shape[0]
    found = read(image, threads)
    lines = []
    for line in found:
        x0, y0 = min(b[0] for b in line.boxes), min(b[1] for b in line.boxes)
        x1, y1 = max(b[2] for b in line.boxes), max(b[3] for b in line.boxes)
        lines.append(Line(line.text, x0 * unit, x1 * unit, (height - y1) * unit, (height - y0) * unit,
                          _size(line, unit), tuple((b[0] * unit, b[2] * unit) for b in line.boxes)))
    return reading_order(lines, image.shape[1] * unit), confidence(found)


def _size(line: OcrLine, unit: float) -> float:
    """A line's font size in the page's units, rounded to whole units.

    A Chinese character is as wide as its font is high, and the recogniser places each one:
    their median width measured the article's body lines at 10.5–11.4 pt (set in 11), where
    the detector's line boxes measured 9.7–12.2, as tall as a heading.  A line without Chinese
    characters has only its box's height to go by.
    """
    widths = [b[2] - b[0] for ch, b in zip(line.text, line.boxes) if is_cjk(ch)]
    if widths:
        return float(round(statistics.median(widths) * unit))
    return round((line.boxes[0][3] - line.boxes[0][1]) * unit * 2) / 2

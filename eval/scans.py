"""OCR measured on a scan made from the article (issue #23): character error rate, the labelled
set's recall@1 and answers' pages, and seconds per page (``qa bench --ocr``).

The scan is made as a scanner would: the text PDF's pages rendered to pictures (150 or 300
dpi), optionally with seeded noise and a slight rotation, packed into a PDF without text.
The character error rate compares the OCR'd text with the text PDF's own text as read by
the same layout, whitespace aside (line breaks fall where each reading puts them).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.formats import Extracted, Limits, extract
from corpus.formats.image import pdf_of
from corpus.formats.pdf import render
from qa.settings import ROOT

log = logging.getLogger(__name__)

ARTICLE_PDF = ROOT / "tests" / "fixtures" / "article.pdf"


@dataclass(frozen=True)
class Scan:
    dpi: int
    noise: float = 0.0  # standard deviation of the Gaussian noise added to every pixel (0–255 scale)
    angle: float = 0.0  # degrees the page is turned, as a sheet fed slightly askew
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.dpi} dpi" + (f", noise {self.noise:g}, {self.angle:g}°" if self.noise or self.angle else "")


def scanned(pdf: bytes, scan: Scan) -> bytes:
    """``pdf``'s pages as a scan: pictures only, no text layer."""
    rng = np.random.default_rng(scan.seed)
    pages = []
    for page in render(pdf, scan.dpi):
        if scan.angle:
            page = _turned(page, scan.angle)
        if scan.noise:
            page = np.clip(page + rng.normal(0, scan.noise, page.shape), 0, 255).astype(np.uint8)
        pages.append(page)
    return pdf_of(pages, scan.dpi)


def _turned(page: np.ndarray, angle: float) -> np.ndarray:
    """``page`` turned by ``angle`` degrees about its centre, white where the sheet was not
    (nearest pixel: a scanner's own resampling is no kinder)."""
    h, w = page.shape[:2]
    a = np.deg2rad(angle)
    ys, xs = np.mgrid[0:h, 0:w]
    cx, cy = w / 2, h / 2
    sx = np.cos(a) * (xs - cx) + np.sin(a) * (ys - cy) + cx
    sy = -np.sin(a) * (xs - cx) + np.cos(a) * (ys - cy) + cy
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    out = np.full_like(page, 255)
    out[inside] = page[sy[inside].astype(int), sx[inside].astype(int)]
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, a row at a time in numpy (a 20,000-character page pair in about a second)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    codes_b = np.array([ord(c) for c in b])
    row = np.arange(len(b) + 1)
    steps = np.arange(len(b) + 1)
    for i, ch in enumerate(a, 1):
        diagonal = row[:-1] + (codes_b != ord(ch))
        candidate = np.concatenate([[i], np.minimum(row[1:] + 1, diagonal)])
        # insertions along the row: new[j] = min over k <= j of candidate[k] + (j - k)
        row = np.minimum.accumulate(candidate - steps) + steps
    return int(row[-1])


def cer(reference: str, read: str) -> float:
    """Character error rate of ``read`` against ``reference``, whitespace aside."""
    ref, hyp = "".join(reference.split()), "".join(read.split())
    return edit_distance(ref, hyp) / max(1, len(ref))


@dataclass(frozen=True)
class Reading:
    scan: Scan
    extracted: Extracted
    seconds_per_page: float
    cer: float
    pages: int


def read_scan(scan: Scan, limits: Limits = Limits(), source: Path = ARTICLE_PDF) -> tuple[Reading, bytes]:
    """The scan of ``source`` read by OCR, measured against ``source``'s own text."""
    raw = source.read_bytes()
    reference = extract(source, raw, limits)
    scan_bytes = scanned(raw, scan)
    started = time.perf_counter()
    got = extract(source.with_name(f"scan-{scan.dpi}.pdf"), scan_bytes, limits)
    seconds = time.perf_counter() - started
    pages = len(got.ocr_pages)
    log.info("%s: %d pages by OCR in %.1f s", scan.name, pages, seconds)
    return Reading(scan, got, seconds / max(1, pages), cer(reference.text, got.text), pages), scan_bytes

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


def distance_within(part: str, text: str) -> int:
    """The fewest edits that make ``part`` a piece of ``text`` (its best match anywhere in it)."""
    if not part:
        return 0
    codes = np.array([ord(c) for c in text])
    steps = np.arange(len(text) + 1)
    row = np.zeros(len(text) + 1, dtype=np.int64)  # the match may start anywhere
    for i, ch in enumerate(part, 1):
        diagonal = row[:-1] + (codes != ord(ch))
        candidate = np.concatenate([[i], np.minimum(row[1:] + 1, diagonal)])
        row = np.minimum.accumulate(candidate - steps) + steps
    return int(row.min())


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


# The scans `qa bench --ocr` reads: the two resolutions the issue names, and the worse of them
# with a scanner's noise and a sheet fed half a degree askew.
SCANS = (Scan(300), Scan(150), Scan(150, noise=20, angle=0.5, seed=1))


def answers_on_their_pages(service, questions, reference: Extracted) -> tuple[int, list[str]]:
    """(answers given, the questions whose answer is not on the page it cites): each cited page
    of the scan's document must hold that part of the answer on the text PDF's same page, as
    OCR read it (at most one character in ten read otherwise)."""
    from corpus.pages import pages_of
    from corpus.text import squash

    pages = [squash(reference.text[a:b]) for a, b in zip(reference.pages, reference.pages[1:] + (len(reference.text),))]
    answered, wrong = 0, []
    for question in questions:
        answer = service.ask(question.question).answer
        if answer is None or answer.source != "passage":
            continue
        answered += 1
        document = service.document(answer.doc_id)
        bounds = list(document.pages) + [len(document.text)]
        cited = pages_of(document.pages, answer.start, answer.end)
        for n in cited:
            part = squash(document.text[max(answer.start, bounds[n - 1]):min(answer.end, bounds[n])])
            if part and distance_within(part, pages[n - 1]) > 0.1 * len(part):
                wrong.append(question.question)
                break
    return answered, wrong


def scan_quality(settings, scan: Scan, workdir: Path, progress: bool = False) -> dict:
    """The scan of the article read by OCR against the text PDF: character error rate, seconds a
    page, and the labelled set over an index of each (recall@1, answers, and whether every answer
    from the scan is on the page it cites)."""
    from eval.dataset import load_jsonl
    from eval.runner import DEFAULT_DATASET, corpus_service, run
    from qa.loading import release_backend

    reading, scan_bytes = read_scan(scan)
    figures = {"name": scan.name, "cer": round(reading.cer, 4), "seconds_per_page": round(reading.seconds_per_page, 2),
               "pages": reading.pages, "low_confidence_pages": list(reading.extracted.low_confidence_pages)}
    folders = {"text_pdf": workdir / "text", "scanned": workdir / f"scan-{scan.dpi}"}
    for kind, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "article.pdf").write_bytes(ARTICLE_PDF.read_bytes() if kind == "text_pdf" else scan_bytes)
        pipeline = run(settings, dataset=DEFAULT_DATASET, corpus=folder, progress=progress,
                       cache=workdir / "cache")["retrievers"]["pipeline"]
        figures[kind] = {"recall@1": pipeline["recall@1"], "answer_accuracy": pipeline["answer_accuracy"]}
    service = corpus_service(folders["scanned"], settings, progress, workdir / "cache")
    try:
        answered, wrong = answers_on_their_pages(service, load_jsonl(DEFAULT_DATASET),
                                                 extract(ARTICLE_PDF, ARTICLE_PDF.read_bytes()))
    finally:
        release_backend(settings)
    figures["answers"], figures["answers_off_their_page"] = answered, wrong
    return figures


def bench_ocr(settings, scans=SCANS) -> dict:
    """`qa bench --ocr`: each scan's reading, and the labelled set over the first (300 dpi)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        first = scan_quality(settings, scans[0], Path(tmp))
    others = []
    for scan in scans[1:]:
        reading, _ = read_scan(scan)
        others.append({"scan": scan.name, "cer": round(reading.cer, 4),
                       "seconds_per_page": round(reading.seconds_per_page, 2),
                       "low_confidence_pages": list(reading.extracted.low_confidence_pages)})
    from corpus.formats.ocr import cores

    return {"quality": first, "cores": cores(Limits().ocr_threads), "answering": bench_answering_while_reading(settings), "readings": [{"scan": first["name"], **{k: first[k] for k in (
        "cer", "seconds_per_page", "low_confidence_pages")}}] + others}


def ocr_rows(r: dict) -> list[tuple[str, str, str]]:
    """`qa bench` table rows: (figure, value, note)."""
    q = r["quality"]
    rows = [(f"OCR, the article scanned at {x['scan']}",
             f"CER {x['cer']:.2%}, {x['seconds_per_page']} s a page on {r.get('cores', '?')} core(s)",
             f"target CER ≤ 3 % at 300 dpi; pages of low confidence: {x['low_confidence_pages'] or 'none'}")
            for x in r["readings"]]
    scan, text = q["scanned"], q["text_pdf"]
    rows.append((f"OCR, labelled set on the {q['name']} scan",
                 f"recall@1 {scan['recall@1']} (text PDF {text['recall@1']}), answers {scan['answer_accuracy']} "
                 f"({text['answer_accuracy']})",
                 f"target recall@1 within 0.03; {q['answers']} answers, off their cited page: "
                 f"{len(q['answers_off_their_page'])}"))
    if "answering" in r:
        w = r["answering"]
        rows.append((f"OCR, questions while a {w['scan']} scan is uploaded and read",
                     f"p50 {w['during_ms']['p50']} against {w['alone_ms']['p50']} alone ({w['ratio']}×)",
                     f"upload {w['upload_status']} in {w['upload_s']} s; every question answered"))
    return rows


def _upload(port: int, token: str, name: str, content: bytes) -> tuple[int, float]:
    """POST /documents with one file, as a browser's multipart form sends it: (status, seconds)."""
    import http.client
    import uuid

    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    started = time.perf_counter()
    conn.request("POST", "/documents", body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                             "Authorization": f"Bearer {token}"})
    status = conn.getresponse().status
    return status, time.perf_counter() - started


def bench_answering_while_reading(settings, scan: Scan = Scan(150)) -> dict:
    """Does a scan being read stall the questions?  An ordinary question's latency on a server of its
    own, alone and then while a 6-page scan of the article is uploaded to it and read by OCR."""
    import tempfile
    import threading

    from corpus.documents import load_documents
    from eval.serving import Client, start_server, stop_server
    from eval.timing import QUESTIONS, summary
    from qa import updates

    token = "bench-admin-token-for-ocr"
    with tempfile.TemporaryDirectory() as tmp:
        own = settings.with_(index_dir=Path(tmp) / "index", documents_dir=Path(tmp) / "uploads")
        updates.apply(own, add=load_documents(list(settings.corpus)))  # the embedding cache spares the model's work
        scan_bytes = scanned(ARTICLE_PDF.read_bytes(), scan)
        proc, port, _ = start_server(own, env={"QA_ADMIN_TOKEN": token, "QA_RATE_PER_S": "0"})
        try:
            client = Client(port)

            def asked(until) -> list[float]:
                ms = []
                while not until():
                    for q in QUESTIONS:
                        t = time.perf_counter()
                        status, _ = client.ask(q)
                        ms.append((time.perf_counter() - t) * 1000)
                        if status != 200:
                            raise RuntimeError(f"/ask answered {status} while a scan was read")
                return ms

            rounds = iter(range(3))
            alone = asked(lambda: next(rounds, None) is None)
            done: dict = {}
            upload = threading.Thread(target=lambda: done.update(zip(("status", "seconds"),
                                                                     _upload(port, token, "scan.pdf", scan_bytes))))
            upload.start()
            during = asked(lambda: not upload.is_alive())
            upload.join()
        finally:
            stop_server(proc)
    a, d = summary(alone), summary(during)
    return {"scan": scan.name, "upload_status": done.get("status"), "upload_s": round(done.get("seconds", 0.0), 1),
            "alone_ms": a, "during_ms": d, "ratio": round(d["p50"] / a["p50"], 2) if a["p50"] else None}

"""Costly uploads against a running server (issue #21): a 4 KB Word file of 350,000 empty
paragraphs and a 19 MB one-line text file, sent again and again while an ordinary client asks.
How fast each is refused, the server's peak memory, and the ordinary question's latency alone
and meanwhile (target: refused within a second, under 1 GB, at most 2x)."""
from __future__ import annotations

import io
import secrets
import threading
import time
import zipfile
import zlib

import httpx

from eval.contention import _ordinary
from eval.serving import rss_mb, start_server, stop_server
from eval.timing import summary
from qa.settings import Settings

WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
WORD_PACKAGE = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
    'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>",
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
    '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
}


def docx_of_empty_paragraphs(n: int) -> bytes:
    """A Word document of ``n`` empty paragraphs: 350,000 of them pack into about 4 KB."""
    body = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{WORD_NS}"><w:body>' + "<w:p/>" * n
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        for name, text in {**WORD_PACKAGE, "word/document.xml": body + "</w:body></w:document>"}.items():
            package.writestr(name, text)
    return out.getvalue()


def scan_pdf(pages: int, side: int, fill: int = 255) -> bytes:
    """A PDF of ``pages`` pages without text, each showing one grey picture ``side`` × ``side``
    pixels (of the value ``fill``), compressed with Flate: the pages of a scan.  The picture is
    stored once and shared, and a uniform one compresses about 1,000 to 1, so 30,000 × 30,000
    pixels (900 MB when decoded) take under 1 MB: a decompression bomb."""
    squeeze = zlib.compressobj(9)
    row = bytes([fill]) * side
    chunks = [squeeze.compress(row) for _ in range(side)]
    data = b"".join(chunks) + squeeze.flush()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (5 + 2 * i) for i in range(pages))
               + b"] /Count %d >>" % pages,
               b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
               b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n" % (side, side, len(data))
               + data + b"\nendstream",
               b"<< /Length 31 >>\nstream\nq 595 0 0 842 0 0 cm /Im0 Do Q\nendstream"]
    for i in range(pages):
        objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im0 3 0 R >> >> "
                    b"/Contents 4 0 R >>", b"null"]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.7\n")
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def one_line_text(megabytes: int = 19) -> bytes:
    """Chinese text without a line break, ``megabytes`` of it."""
    return ("社会保险待遇按月发放。" * (megabytes * 1024 * 1024 // 33)).encode()


def bench_abuse(settings: Settings, rounds: int) -> dict:
    token = secrets.token_hex(16)
    proc, port, _ = start_server(settings, env={"QA_ADMIN_TOKEN": token})
    files = {"docx": ("bomb.docx", docx_of_empty_paragraphs(349_525)), "text": ("long.txt", one_line_text())}
    refusals: dict[str, list[float]] = {k: [] for k in files}
    statuses: dict[str, set[int]] = {k: set() for k in files}
    peak = [rss_mb(proc.pid)]
    stop = threading.Event()

    def abuse() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            while not stop.is_set():
                for kind, file in files.items():
                    t = time.perf_counter()
                    r = client.post("/documents", files=[("files", file)],
                                    headers={"Authorization": f"Bearer {token}"})
                    refusals[kind].append(time.perf_counter() - t)
                    statuses[kind].add(r.status_code)

    def watch() -> None:
        while not stop.wait(0.1):
            peak.append(rss_mb(proc.pid))

    try:
        _ordinary(port, 1)  # warm
        alone, _ = _ordinary(port, rounds)
        threads = [threading.Thread(target=abuse, daemon=True), threading.Thread(target=watch, daemon=True)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        meanwhile, errors = _ordinary(port, rounds)
        stop.set()
        for t in threads:
            t.join(timeout=180)
    finally:
        stop.set()
        stop_server(proc)
    a, m = summary(alone), summary(meanwhile)
    return {"ask_alone_ms": a, "ask_meanwhile_ms": m, "errors": errors,
            "p50_ratio": round(m["p50"] / a["p50"], 2) if a["p50"] else None,
            "refusal_s_max": {k: round(max(v), 2) if v else None for k, v in refusals.items()},
            "refusals": {k: len(v) for k, v in refusals.items()},
            "statuses": {k: sorted(v) for k, v in statuses.items()}, "rss_mb_peak": max(peak)}


def abuse_rows(r: dict) -> list[tuple[str, str, str]]:
    return [
        ("costly uploads: refused in", f"docx {r['refusal_s_max']['docx']} s, text {r['refusal_s_max']['text']} s (max)",
         f"{r['refusals']['docx']} + {r['refusals']['text']} sent, statuses {r['statuses']} (target ≤ 1 s, 413)"),
        ("costly uploads: server memory", f"peak {r['rss_mb_peak']} MB", "target < 1,000 MB"),
        ("costly uploads: ordinary /ask", f"p50 {r['ask_alone_ms']['p50']} alone, {r['ask_meanwhile_ms']['p50']} meanwhile",
         f"{r['p50_ratio']}× (target ≤ 2×), errors {r['errors']}"),
    ]

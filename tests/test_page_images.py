"""A citation shown where it stands: a PDF's pages as pictures and the cited characters' boxes, over real HTTP."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from PIL import Image

from corpus.boxes import line_box, rects

from .conftest import small_server

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOTE = "# 门诊报销\n\n普通门诊费用报销比例为50%。\n"


@pytest.fixture(scope="module")
def served(real_settings, tmp_path_factory):
    """A server whose index holds a Markdown note and the article as an uploaded, Chromium-printed PDF."""
    with small_server("faiss", real_settings, tmp_path_factory.mktemp("pictures"), {"note.md": NOTE},
                      admin_token=TOKEN) as (client, settings):
        r = client.post("/documents", headers=AUTH,
                        files=[("files", ("article.pdf", (FIXTURES / "article.pdf").read_bytes(), "application/pdf"))])
        assert r.status_code == 200, r.text
        yield client, settings


def _ink(png: bytes, box: dict) -> float:
    """The share of dark pixels inside ``box`` (fractions of the page) on the picture ``png``."""
    page = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    h, w = page.shape
    inside = page[int(box["y0"] * h) : int(np.ceil(box["y1"] * h)), int(box["x0"] * w) : int(np.ceil(box["x1"] * w))]
    return float((inside < 128).mean())


def test_an_answer_is_boxed_on_the_picture_of_its_page(served):
    client, _ = served
    doc = client.get("/documents/article").json()
    assert doc["kind"] == "pdf" and doc["page_images"] and doc["pages"] >= 3
    answer = client.post("/ask", json={"question": "社会保障是现代国家一项什么制度？", "doc_id": "article"}).json()["answer"]
    page = answer["page"]
    boxes = client.get("/documents/article/boxes", params={"start": answer["start"], "end": answer["end"]}).json()
    assert boxes and {b["page"] for b in boxes} == set(answer["pages"]) and boxes[0]["page"] == page
    for b in boxes:
        assert 0 <= b["x0"] < b["x1"] <= 1 and 0 <= b["y0"] < b["y1"] <= 1
    r = client.get(f"/documents/article/pages/{page}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(r.content))
    assert max(picture.size) == 1600
    # the boxes hold the cited line's ink; the same box moved into the margin holds none
    assert all(_ink(r.content, b) > 0.05 for b in boxes if b["page"] == page)
    margin = {**boxes[0], "x0": 0.0, "x1": min(0.05, boxes[0]["x0"])}
    assert _ink(r.content, margin) == 0.0
    again = client.get(f"/documents/article/pages/{page}.png", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_pages_and_boxes_refuse_clearly(served):
    client, settings = served
    assert client.get("/documents/article/pages/99.png").json()["detail"] == "document 'article' has no page 99: it has 6"
    assert client.get("/documents/note/pages/1.png").status_code == 404
    assert client.get("/documents/note/boxes", params={"start": 0, "end": 5}).json() == []  # Markdown: no pages
    assert client.get("/documents/missing/pages/1.png").status_code == 404
    r = client.get("/documents/article/boxes", params={"start": 10, "end": 5})
    assert r.status_code == 422 and "start < end" in r.json()["detail"]
    assert client.get("/documents/article/pages/x.png").status_code == 422


def test_a_changed_file_is_never_shown_beside_the_old_text(served, tmp_path):
    """The picture must be of the text cited: once the kept file is not the indexed bytes, 410 says so."""
    client, settings = served
    kept = next(settings.documents_dir.rglob("article.pdf"))
    original = kept.read_bytes()
    try:
        kept.write_bytes(original[:-10] + b"%%EOF\n\n\n\n\n")
        r = client.get("/documents/article/pages/5.png")  # a page not rendered yet, so not kept in memory
        assert r.status_code == 410 and "changed since it was indexed" in r.json()["detail"]
    finally:
        kept.write_bytes(original)
    assert client.get("/documents/article/pages/5.png").status_code == 200


@given(st.lists(st.tuples(st.integers(1, 30), st.integers(0, 3)), min_size=1, max_size=12),
       st.integers(0, 400), st.integers(1, 400))
def test_boxes_cover_exactly_the_lines_a_span_touches(lines, start, length):
    """Made-up lines (length, gap before): one box for each line holding a character of the span,
    from its first such character's left edge to its last one's right."""
    boxes, at = [], 0
    for n, (count, gap) in enumerate(lines):
        at += gap
        xs = [(10 + 5 * i, 14 + 5 * i) for i in range(count)]
        boxes.append(line_box(at, 1, xs, 700 - 20 * n, 712 - 20 * n, 600, 800))
        at += count
    end = start + length
    got = rects(tuple(boxes), start, end)
    touched = [b for b in boxes if b.start < end and start < b.end]
    assert [(r.y0, r.y1) for r in got] == [(b.top, b.bottom) for b in touched]
    for r, b in zip(got, touched):
        first, last = max(start, b.start) - b.start, min(end, b.end) - 1 - b.start
        assert r.x0 == pytest.approx((10 + 5 * first) / 600, abs=1e-4)
        assert r.x1 == pytest.approx((14 + 5 * last) / 600, abs=1e-4)

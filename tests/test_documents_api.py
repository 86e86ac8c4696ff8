"""Uploading, replacing and removing documents over real multipart HTTP, while the server keeps answering."""
from __future__ import annotations

import time

import httpx
import pytest

from corpus.documents import load_documents
from eval.abuse import docx_of_empty_paragraphs
from qa import updates

from .conftest import BACKENDS, serving, small_server


TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CARE = "# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n"
FUND = "公积金通知\n\n住房公积金缴存比例为12%。提取需提供购房合同。\n"
CLINIC = "# 门诊报销\n\n## 一、比例\n\n普通门诊费用报销比例为50%。年度最高支付限额为2000元。\n"


@pytest.fixture(params=BACKENDS)
def server(request, real_settings, tmp_path):
    """A server over a small index of its own, with the admin token and small upload limits, on each backend."""
    with small_server(request.param, real_settings, tmp_path, {"care.md": CARE}, admin_token=TOKEN, watch_s=0.2,
                      max_upload_bytes=4096, max_upload_files=3, max_upload_request_bytes=10_000) as served:
        yield served


def _kept(settings) -> list[str]:
    """The names of the files in the documents folder (each kept under its content hash), staging included."""
    folder = settings.documents_dir
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _files(*named):
    return [("files", (name, content.encode("utf-8") if isinstance(content, str) else content, "application/octet-stream"))
            for name, content in named]


def test_upload_replace_remove(server):
    client, settings = server
    r = client.post("/documents", files=_files(("fund.txt", FUND), ("../../门诊 报销.md", CLINIC)), headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["added"], body["replaced"], body["unchanged"], body["documents"]) == (["fund", "门诊-报销"], [], 1, 3)
    assert _kept(settings) == ["fund.txt", "门诊-报销.md"]
    ask = client.post("/ask", json={"question": "住房公积金缴存比例是多少？"}).json()
    assert ask["passages"][0]["doc_id"] == "fund" and ask["index"]["build_id"] == body["build_id"]

    r = client.put("/documents/fund", files={"file": ("anything.txt", FUND.replace("12%", "10%").encode())}, headers=AUTH)
    assert r.status_code == 200 and r.json()["replaced"] == ["fund"]
    assert "10%" in client.get("/documents/fund").json()["text"]

    r = client.delete("/documents/fund", headers=AUTH)
    assert r.status_code == 200 and r.json()["removed"] == ["fund"] and r.json()["documents"] == 2
    assert client.get("/documents/fund").status_code == 404
    assert client.delete("/documents/fund", headers=AUTH).status_code == 404
    assert _kept(settings) == ["门诊-报销.md"]


def test_changes_need_the_admin_token(server):
    client, _ = server
    assert client.post("/documents", files=_files(("fund.txt", FUND))).status_code == 403
    assert client.delete("/documents/care", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.delete("/documents/care", headers={"Authorization": TOKEN}).status_code == 403  # no "Bearer "
    assert [d["doc_id"] for d in client.get("/documents").json()] == ["care"]


def test_bad_files_change_nothing(server):
    client, settings = server
    before = client.get("/health").json()["build_id"]
    cases = [
        (_files(("gbk.md", "社保".encode("gbk"))), 422, "gbk.md: not valid UTF-8"),
        (_files(("x.exe", b"MZ")), 422, "x.exe: unsupported file type"),
        (_files(("empty.md", b"")), 422, "empty.md: file is empty"),
        (_files(("a.md", FUND), ("b.md", FUND), ("c.md", FUND), ("d.md", FUND)), 413, "4 files in one request; the limit is 3"),
        (_files(("big.md", "社" * 2000)), 413, "big.md: over"),
        (_files(("a.md", "甲" * 1300), ("b.md", "乙" * 1300), ("c.md", "丙" * 1300)), 413, "request body over"),
        # 350,000 empty paragraphs in 4 KB: refused before python-docx spends half a minute on them
        (_files(("bomb.docx", docx_of_empty_paragraphs(349_525))), 413,
         "bomb.docx: over 100,000 paragraphs; the limit is 100,000 (QA_MAX_DOCX_PARAGRAPHS)"),
    ]
    for files, status, message in cases:
        r = client.post("/documents", files=files, headers=AUTH)
        assert r.status_code == status and message in r.json()["detail"], (message, r.status_code, r.text)
    assert client.get("/health").json()["build_id"] == before
    assert _kept(settings) == []


def test_a_change_made_by_another_process_is_picked_up_without_a_restart(server, tmp_path):
    client, settings = server
    before = client.get("/health").json()["build_id"]
    (tmp_path / "fund.txt").write_text(FUND, encoding="utf-8")
    from qa.loading import update_encoder

    published = updates.apply(settings, add=load_documents([tmp_path / "fund.txt"]), encoder=update_encoder(settings))
    deadline = time.time() + 30
    while client.get("/health").json()["build_id"] == before and time.time() < deadline:
        time.sleep(0.05)
    assert client.get("/health").json()["build_id"] == published.manifest.build_id != before
    assert client.post("/ask", json={"question": "住房公积金缴存比例是多少？"}).json()["passages"][0]["doc_id"] == "fund"


def _blank_pdf() -> bytes:
    """A one-page PDF with no text, not even by OCR (a blank page)."""
    import io

    import pypdfium2 as pdfium

    pdf, out = pdfium.PdfDocument.new(), io.BytesIO()
    pdf.new_page(595, 842)
    pdf.save(out)
    return out.getvalue()


def _still_served(client, settings, build_id: str, documents: list[str]) -> None:
    """Nothing changed: the same version is served, a reload loads it again, and so does a new server."""
    from api.app import create_app

    assert client.get("/health").json()["build_id"] == build_id
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["build_id"] == build_id, r.text
    assert sorted(d["doc_id"] for d in client.get("/documents").json()) == documents
    with serving(create_app(settings)) as url:  # a restart: the sources check out
        assert httpx.get(f"{url}/health", timeout=60).json()["build_id"] == build_id


def test_a_refused_upload_leaves_the_served_version_and_its_files(server):
    """Issue #21's reproductions: each answer is a 4xx naming the problem, and nothing changed."""
    client, settings = server
    r = client.post("/documents", files=_files(("other.md", FUND)), headers=AUTH)
    assert r.status_code == 200, r.text
    build_id, kept = r.json()["build_id"], _kept(settings)
    cases = [  # (files, method, path, status, message)
        (_files(("b/note.md", CLINIC), ("a/note.html", "<h1>只有标题</h1>")), "POST", "/documents", 422,
         "note.html: no body text"),  # all or nothing: note.md is not kept either
        ({"file": ("scan.pdf", _blank_pdf())}, "PUT", "/documents/other", 422, "no text on any page"),
        ({"file": ("other.md", "# 只有标题\n".encode())}, "PUT", "/documents/other", 422, "no body text"),
    ]
    for files, method, path, status, message in cases:
        r = client.request(method, path, files=files, headers=AUTH)
        assert r.status_code == status and message in r.json()["detail"], (message, r.status_code, r.text)
        assert str(settings.documents_dir) not in r.json()["detail"]  # no server path in a message
    assert _kept(settings) == kept == ["other.md"]  # other.md's file is still there, nothing staged is left
    _still_served(client, settings, build_id, ["care", "other"])


def test_an_upload_never_replaces_a_document_by_its_name(server):
    """Issue #22: x1_manual.md uploaded beside x1_manual.html keeps both; the same bytes again are
    named and not stored; replacing is PUT, which keeps the id whatever the file is called."""
    client, settings = server
    r = client.post("/documents", files=_files(("x1_manual.html", "<h1>手册</h1><p>诊所电话是12345。</p>")), headers=AUTH)
    assert r.status_code == 200 and r.json()["added"] == ["x1_manual"], r.text
    r = client.post("/documents", files=_files(("x1_manual.md", CLINIC), ("副本.html", "<h1>手册</h1><p>诊所电话是12345。</p>")),
                    headers=AUTH)
    body = r.json()
    assert r.status_code == 200 and body["added"] == ["x1_manual-2"] and body["replaced"] == [], r.text
    assert body["duplicates"] == [{"file": "副本.html", "doc_id": "x1_manual"}]
    docs = {d["doc_id"]: d for d in client.get("/documents").json()}
    assert {"x1_manual", "x1_manual-2"} <= set(docs)
    assert "12345" in client.get("/documents/x1_manual").json()["text"]
    assert sorted(p for p in _kept(settings) if p.startswith("x1")) == ["x1_manual-2.md", "x1_manual.html"]
    r = client.put("/documents/x1_manual", files={"file": ("新版.md", "# 手册\n\n诊所电话改为67890。\n".encode())},
                   headers=AUTH)
    assert r.status_code == 200 and r.json()["replaced"] == ["x1_manual"], r.text
    assert "67890" in client.get("/documents/x1_manual").json()["text"]
    assert client.get("/documents/x1_manual-2").json()["text"].startswith(CLINIC.split("\n")[0])


def test_a_change_is_judged_on_its_headers_before_its_body_is_read(server):
    """No token: 403 at once, though the body it announces (within the size limit) never comes;
    before, the body was waited for and spooled, and the answer was a 408 after the body deadline."""
    import socket

    from .test_security import read_response

    client, settings = server
    host, port = client.base_url.host, client.base_url.port
    for auth, expected, message in (("", 403, "admin token"), (f"Authorization: Bearer {TOKEN}\r\n", 415, "multipart")):
        head = (f"POST /documents HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: "
                f"{'multipart/form-data; boundary=b' if not auth else 'application/json'}\r\n"
                f"Content-Length: {9000 if not auth else 2}\r\n\r\n").encode()
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(head)
            status, _, body, closed = read_response(sock)  # within 5 s, with no body sent
        assert status == expected and message in body.decode(), body
    assert _kept(settings) == []


def test_a_very_long_file_name_is_kept_under_a_shortened_id(server):
    client, settings = server
    name = "长" * 90 + ".md"  # 270 bytes of UTF-8: more than a file name may have
    r = client.post("/documents", files=_files((name, FUND)), headers=AUTH)
    assert r.status_code == 200, r.text
    (doc_id,) = r.json()["added"]
    assert doc_id == "长" * 66 and len(doc_id.encode()) <= 200
    assert client.get(f"/documents/{doc_id}").status_code == 200


def test_files_without_a_usable_name_do_not_replace_each_other(server):
    client, _ = server
    r = client.post("/documents", files=_files(("😀.md", FUND), ("-.md", CLINIC)), headers=AUTH)
    assert r.status_code == 200, r.text
    added = r.json()["added"]
    assert len(added) == 2 and all(a.startswith("doc-") for a in added) and r.json()["documents"] == 3

"""The web page in a real headless Chromium: ask, see a cited answer, follow the citation."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import FakeEncoder, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = os.environ.get("QA_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: `make test` installs Debian's chromium (make browser)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, live_server):
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(live_server + "/")
    yield page
    page.close()


def _ask(page, question: str) -> None:
    page.fill("#question", question)
    page.click("#ask-button")


def test_type_a_question_and_see_a_cited_answer(page):
    page.wait_for_selector("#index-info:has-text('段落')")
    _ask(page, "2025年失业保险参保人数是多少？")
    answer = page.wait_for_selector("#answer")
    assert "2.49亿人" in answer.inner_text()
    assert "覆盖范围持续扩大" in answer.inner_text()
    cards = page.query_selector_all(".passage-card")
    assert len(cards) == 5
    first = cards[0]
    assert "2.49亿人" in first.inner_text()
    assert first.query_selector("mark.sentence") is not None
    assert "2025年" in [m.inner_text() for m in first.query_selector_all("mark.term")]
    # answers, not internals: how sure it is in words; the scores folded under 细节 until asked for
    assert page.inner_text("#assurance").startswith("请核对")
    assert not first.query_selector(".scores").is_visible() and "dense" not in first.inner_text()
    first.query_selector("details summary").click()
    assert first.query_selector(".scores").is_visible() and "dense" in first.inner_text()


def test_a_short_answer_is_shown_only_when_likely_right_and_a_missing_detail_is_named(page, client):
    """Issues #14 and #20: the span is bold above its sentence and marked inside it only when the
    API says it is likely right (``shown``); otherwise the sentence alone is the answer."""
    fact = client.post("/ask", json={"question": "作者担任什么职务？"}).json()["answer"]["span"]
    assert fact["shown"] and fact["text"] == "人力资源社会保障部党组书记、部长"
    _ask(page, "作者担任什么职务？")
    page.wait_for_function("t => document.querySelector('#answer-span')?.innerText === t", arg=fact["text"])
    assert page.inner_text("#answer-span-mark") == fact["text"]
    question = "城乡居民基础养老金最低标准从多少提高到多少？"
    answer = client.post("/ask", json={"question": question}).json()["answer"]
    assert not answer["span"]["shown"] and answer["span"]["probability"] is None  # the rules alone: no estimate
    _ask(page, question)
    page.wait_for_function("t => document.querySelector('#answer')?.innerText.includes(t)", arg=answer["text"][:12])
    assert page.query_selector("#answer-span") is None and page.query_selector("#answer-span-mark") is None
    _ask(page, "养老保险全国统筹是哪一年实现的？")
    page.wait_for_function("() => document.querySelector('#no-answer-why')?.innerText.includes('文中没有提到具体年份')")


def test_citation_opens_the_document_with_the_span_highlighted(page, client):
    _ask(page, "四防是什么？")
    page.wait_for_selector("#answer")
    page.click("#answer-citation")
    cited = page.wait_for_selector("#cited")
    assert "人防、制防、技防、群防" in cited.inner_text()
    start, end = (int(x) for x in page.evaluate("location.hash").split("/")[-2:])
    original = client.get("/documents/article").json()["text"]
    assert cited.inner_text() == original[start:end]
    page.click("a.back")
    page.wait_for_selector("#results:not(.hidden)")


def test_no_answer_and_error_states(page):
    _ask(page, "明天北京会下雨吗？")
    page.wait_for_function("() => document.querySelector('#no-answer')?.innerText.includes('没有段落足够好地回答')")
    refusal = page.inner_text("#no-answer")
    assert "未找到答案" in refusal and "置信度" not in refusal
    page.click("#no-answer details summary")
    assert "置信度 0." in page.inner_text("#no-answer")
    # the input's length check stops a person; the server still refuses a longer question
    page.eval_on_selector("#question", "el => { el.setCustomValidity(''); el.value = '长'.repeat(501); }")
    page.click("#ask-button")
    assert "500" in page.wait_for_selector("#error").inner_text()


@pytest.fixture(scope="module")
def keyed_server(real_settings, service):
    """The real app on the session's index, with QA_API_KEYS set."""
    from api.app import create_app

    with serving(create_app(real_settings.with_(api_keys=("page-key-1",)), service=service)) as url:
        yield url


def test_with_api_keys_the_page_asks_for_one_and_keeps_it_in_the_tab(browser, keyed_server):
    page = browser.new_page()
    try:
        page.goto(keyed_server + "/")
        page.wait_for_selector("#index-info:has-text('段落')")  # /health needs no key
        assert not page.is_visible("#key-box")
        _ask(page, "2025年失业保险参保人数是多少？")
        assert "需要访问密钥" in page.wait_for_selector("#error").inner_text()
        assert page.is_visible("#key-box")
        page.fill("#api-key", "wrong")
        _ask(page, "2025年失业保险参保人数是多少？")
        page.wait_for_function("() => document.querySelector('#error')?.innerText.includes('访问密钥不对')")
        page.fill("#api-key", "page-key-1")
        _ask(page, "2025年失业保险参保人数是多少？")
        assert "2.49亿人" in page.wait_for_selector("#answer").inner_text()
        page.reload()  # the tab keeps it; a new tab (another page) would not
        assert page.input_value("#api-key") == "page-key-1" and page.is_visible("#key-box")
        _ask(page, "2025年失业保险参保人数是多少？")
        assert "2.49亿人" in page.wait_for_selector("#answer").inner_text()
        other = browser.new_page()
        other.goto(keyed_server + "/")
        assert other.input_value("#api-key") == ""
        other.close()
    finally:
        page.close()


# --- characters outside the Basic Multilingual Plane, under a strict CSP -------------------
#
# 𠀀 𡒄 𨙸 (CJK Extension B, common in names) and 🎉 are one code point each in Python and
# in the API's offsets, but two UTF-16 units in a JavaScript string.

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
NAMES_MD = """# 𠀀先生与𡒄村的故事

一、𡒄村的人物

𨙸镇的🎉节日很热闹，𡒄村的人都去看。𠀀先生出生于𡒄村，他在2025年获得了🎉奖励，共计143元。后来他搬到𨙸镇居住，开了一家书店。

二、村里的变化

今年的天气很好，农民的收成也不错。城市里修建了新的公园和图书馆，孩子们周末常去读书。
"""
NAMES_QUESTION = "𠀀先生出生于𡒄村，他在2025年获得了🎉奖励，共计多少元？"
NAMES_ANSWER = "𠀀先生出生于𡒄村，他在2025年获得了🎉奖励，共计143元。"
# Recorded before any page script runs (init scripts are not subject to the page's CSP).
WATCH_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "(e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));")


def with_csp(app):
    """The ASGI app with the strict Content-Security-Policy header on the page at `/` (once, if it lacks it)."""
    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/":
            return await app(scope, receive, send)

        async def send_with_csp(message):
            headers = message.get("headers", [])
            if message["type"] == "http.response.start" and (b"content-security-policy", CSP.encode()) not in headers:
                message = {**message, "headers": [*headers, (b"content-security-policy", CSP.encode())]}
            await send(message)

        await app(scope, receive, send_with_csp)

    return wrapped


def names_app(folder: Path):
    """The API over a one-document index (fake encoder) whose text is full of non-BMP characters."""
    from api.app import create_app
    from corpus.documents import load_documents
    from index.build import build_index
    from index.store import load
    from qa.service import QAService
    from qa.settings import Settings

    (folder / "docs").mkdir()
    (folder / "docs" / "names.md").write_text(NAMES_MD, encoding="utf-8")
    settings = Settings().with_(index_dir=folder / "index")
    build_index(load_documents([folder / "docs"]), FakeEncoder(), settings.split, settings.index_dir, progress=False)
    service = QAService(load(settings.index_dir, FakeEncoder.model_id, settings.split), FakeEncoder(), settings)
    return with_csp(create_app(settings, service=service))


@pytest.fixture(scope="module")
def names_server(tmp_path_factory):
    with serving(names_app(tmp_path_factory.mktemp("names"))) as url:
        yield url


@pytest.fixture()
def watched_page(browser, names_server):
    """A fresh page on the non-BMP server that records CSP violations, console errors and page errors."""
    page = _watched(browser, names_server)
    yield page
    page.close()


def _screenshot(page, name: str) -> None:
    """A look at the page for a person: only when QA_SCREENSHOTS names a folder."""
    if os.environ.get("QA_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["QA_SCREENSHOTS"]) / f"{name}.png"), full_page=True)


def _term_runs(text: str, highlights: list[dict]) -> list[str]:
    """The term marks the page should draw: runs of term characters, split where a sentence mark starts or ends."""
    terms = {i for h in highlights if h["kind"] == "term" for i in range(h["text_start"], h["text_end"])}
    sentence = {i for h in highlights if h["kind"] == "sentence" for i in range(h["text_start"], h["text_end"])}
    runs: list[str] = []
    for i, ch in enumerate(text):
        if i in terms:
            if i - 1 in terms and (i in sentence) == (i - 1 in sentence):
                runs[-1] += ch
            else:
                runs.append(ch)
    return runs


def test_non_bmp_characters_are_highlighted_by_code_point_in_both_views(watched_page, names_server):
    page = watched_page
    assert CSP in httpx.get(names_server + "/").headers.get_list("content-security-policy")
    api = httpx.post(names_server + "/ask", json={"question": NAMES_QUESTION, "top_k": 5}).json()
    doc = httpx.get(names_server + "/documents/names").json()["text"]
    assert api["answerable"] and api["answer"]["text"] == NAMES_ANSWER

    _ask(page, NAMES_QUESTION)
    assert NAMES_ANSWER in page.wait_for_selector("#answer").inner_text()
    for p in api["passages"]:  # every card: the same characters, the same marks as the API's offsets
        card = page.query_selector(f".passage-card[data-id='{p['id']}']")
        assert card.query_selector(".passage-text").text_content() == p["text"]
        sentences = [h for h in p["highlights"] if h["kind"] == "sentence"]
        assert [m.text_content() for m in card.query_selector_all("mark.sentence")] == [
            p["text"][h["text_start"]:h["text_end"]] for h in sentences]
        assert [m.text_content() for m in card.query_selector_all("mark.term")] == _term_runs(p["text"], p["highlights"])
    first = api["passages"][0]
    assert first["text"].index(NAMES_ANSWER) > 0 and any(ord(c) > 0xFFFF for c in first["text"].split(NAMES_ANSWER)[0])
    assert page.query_selector(".passage-card mark.sentence").text_content() == NAMES_ANSWER
    _screenshot(page, "results_non_bmp")

    def document_view_shows(start: int, end: int) -> None:
        cited = page.wait_for_selector("#cited")
        assert cited.text_content() == doc[start:end]
        before, after = cited.evaluate(
            "m => [m.previousSibling ? m.previousSibling.textContent : '', m.nextSibling ? m.nextSibling.textContent : '']")
        assert (before, after) == (doc[:start], doc[end:])
        assert page.is_visible("#doc-view") and not page.is_visible("#results")

    a = api["answer"]
    page.click("#answer-citation")
    document_view_shows(a["start"], a["end"])
    assert doc[a["start"]:a["end"]] == NAMES_ANSWER
    _screenshot(page, "document_non_bmp")
    page.click("a.back")
    page.wait_for_selector("#results:not(.hidden)")
    page.click(f".passage-card[data-id='{first['id']}'] .meta a")
    document_view_shows(first["start"], first["end"])

    assert page.evaluate("window.__csp") == [] and page.problems == []
    # the detector itself works: an inline style attribute is refused under this policy
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<div style=\"color:red\">x</div>')")
    page.wait_for_function("window.__csp.length > 0")


def test_errors_say_what_went_wrong(watched_page):
    page = watched_page

    def shown(fulfil) -> str:
        page.unroute("**/ask")
        page.route("**/ask", fulfil)
        page.evaluate("document.querySelector('#results').innerHTML = ''")
        _ask(page, NAMES_QUESTION)
        return page.wait_for_selector("#error").inner_text()

    # a 200 the page cannot render is a page failure, not a connection failure
    message = shown(lambda route: route.fulfill(status=200, content_type="application/json", body='{"answerable": true}'))
    assert "页面无法显示" in message and "无法连接" not in message
    message = shown(lambda route: route.fulfill(status=503, headers={"Retry-After": "7"}, content_type="application/json",
                                                body='{"detail": "too many questions in flight"}'))
    assert "服务正忙" in message and "7 秒" in message and "too many questions in flight" in message
    message = shown(lambda route: route.fulfill(status=500, content_type="application/json", body='{"detail": "index broke"}'))
    assert "index broke" in message and "500" in message
    assert "无法连接到服务" in shown(lambda route: route.abort())

    # the length limit counts code points, as the API does: 500 𠀀 are allowed, 501 are not
    page.fill("#question", "𠀀" * 500)
    assert page.eval_on_selector("#question", "el => el.validity.valid")
    page.fill("#question", "𠀀" * 501)
    assert not page.eval_on_selector("#question", "el => el.validity.valid")
    assert page.evaluate("window.__csp") == []


# --- the documents panel: upload, list, cite by page, replace, remove ----------------------

ADMIN_TOKEN = "t0ken"
FIXTURES = Path(__file__).with_name("fixtures")
NOTES_MD = "# 图书馆开放时间\n\n一、开放安排\n\n本馆周一至周五上午九点开放，晚上九点闭馆。周末开放时间为上午十点至下午五点。\n"
GARDEN_MD = "# 社区花园公约\n\n一、浇水\n\n每户每周轮流浇水一次，雨天不浇。\n"
GARDEN_V2_MD = "# 社区花园公约（修订）\n\n一、浇水\n\n每户每周轮流浇水两次，雨天不浇。\n\n二、工具\n\n工具用后放回小屋。\n"
PDF_QUESTION = "2025年失业保险参保人数是多少？"


@pytest.fixture(scope="module")
def admin_server(real_settings, tmp_path_factory):
    """The real app with an admin token, over an index of its own (one small note), so uploads
    and removals never touch the session's shared index."""
    from api.app import create_app
    from corpus.documents import load_documents
    from qa import updates
    from qa.loading import update_encoder

    tmp = tmp_path_factory.mktemp("admin")
    (tmp / "docs").mkdir()
    (tmp / "docs" / "notes.md").write_text(NOTES_MD, encoding="utf-8")
    settings = real_settings.with_(index_dir=tmp / "index", cache_dir=tmp / "cache", documents_dir=tmp / "uploads",
                                   kbs_dir=tmp / "kbs", admin_token=ADMIN_TOKEN)
    updates.apply(settings, add=load_documents([tmp / "docs"]), encoder=update_encoder(settings))
    with serving(with_csp(create_app(settings))) as url:
        yield url


def _watched(browser, url: str):
    """A fresh page at ``url`` that records CSP violations, console errors and page errors."""
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.add_init_script(WATCH_CSP)
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text} {m.location}"))
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.goto(url + "/")
    page.wait_for_selector("#index-info:has-text('段落')")
    return page


@pytest.fixture()
def admin_page(browser, admin_server):
    page = _watched(browser, admin_server)
    yield page
    page.close()


def _open_panel(page) -> None:
    page.click("#docs-toggle")
    page.wait_for_selector("#docs-list tr[data-id='notes']")


def _no_problems_but_refusals(page, refusals: list[str]) -> None:
    """No CSP violation, no script error; Chromium logs each refused request, and only those are expected."""
    assert page.evaluate("window.__csp") == []
    assert [p.split(" {")[0] for p in page.problems] == [
        f"console: Failed to load resource: the server responded with a status of {r}" for r in refusals]


def _md(name: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/markdown", "buffer": text.encode()}


def test_documents_panel_uploads_a_pdf_cites_its_pages_and_removes_it(admin_page, admin_server):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = admin_page
    status = page.locator("#docs-status")
    _open_panel(page)
    row = page.locator("#docs-list tr[data-id='notes']")
    expect(row.locator(".kind")).to_have_text("Markdown")
    expect(row.locator(".pages")).to_have_text("—")

    # no token, a wrong token (the API's 403 detail), a file it cannot index (its 422 detail)
    page.set_input_files("#upload-input", files=[_md("wrong.md", GARDEN_MD)])
    expect(status).to_have_class("status error")
    expect(status).to_contain_text("请先填写管理员令牌")
    forbidden = httpx.post(admin_server + "/documents", files={"files": ("wrong.md", GARDEN_MD.encode())})
    assert forbidden.status_code == 403
    page.fill("#admin-token", "n0pe")
    page.set_input_files("#upload-input", files=[_md("wrong.md", GARDEN_MD)])
    expect(status).to_contain_text(forbidden.json()["detail"])
    expect(status).to_have_class("status error")
    assert "管理员令牌" in status.inner_text() and "403" in status.inner_text()
    page.fill("#admin-token", ADMIN_TOKEN)
    import numpy as np

    from corpus.formats.image import pdf_of

    blank = {"name": "blank.pdf", "mimeType": "application/pdf",  # a scan of an empty sheet: no text, even by OCR
             "buffer": pdf_of([np.full((842, 595, 3), 255, np.uint8)], 72)}
    refused = httpx.post(admin_server + "/documents", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                         files={"files": (blank["name"], blank["buffer"])})
    assert refused.status_code == 422 and "blank.pdf" in refused.json()["detail"]
    page.set_input_files("#upload-input", files=[blank])
    expect(status).to_contain_text(refused.json()["detail"])
    expect(status).to_have_class("status error")
    _screenshot(page, "documents_refused")
    assert page.locator("#docs-list tr[data-id]").count() == 1

    # the PDF: uploaded with progress, then indexed (tens of seconds on two cores)
    page.set_input_files("#upload-input", str(FIXTURES / "article.pdf"))
    expect(page.locator("#docs-message")).to_contain_text("正在建立索引", timeout=60_000)
    expect(status).to_have_class("status ok", timeout=300_000)
    expect(status).to_contain_text("已添加 article")
    listed = {d["doc_id"]: d for d in httpx.get(admin_server + "/documents").json()}
    pdf = listed["article"]
    assert pdf["kind"] == "pdf" and pdf["pages"] >= 3
    row = page.locator("#docs-list tr[data-id='article']")
    expect(row.locator(".kind")).to_have_text("PDF")
    expect(row.locator(".pages")).to_have_text(str(pdf["pages"]))
    expect(row.locator(".passages")).to_have_text(str(pdf["passages"]))
    expect(row.locator(".added")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    expect(page.locator("#index-info")).to_contain_text("2 篇文档")
    # the token stays in this tab: never a cookie, never localStorage
    assert page.evaluate("[document.cookie, localStorage.length, sessionStorage.getItem('qa.adminToken')]") == [
        "", 0, ADMIN_TOKEN]
    assert page.context.cookies() == []
    _screenshot(page, "documents_panel")

    # a question answered from the PDF shows the page, as the API gives it
    api = httpx.post(admin_server + "/ask", json={"question": PDF_QUESTION, "top_k": 5}).json()
    a = api["answer"]
    assert api["answerable"] and a["doc_id"] == "article" and isinstance(a["page"], int)
    _ask(page, PDF_QUESTION)
    answer = page.wait_for_selector("#answer")
    assert "2.49亿人" in answer.inner_text()
    assert page.inner_text("#answer-page") == f"第 {a['page']} 页"
    for p in api["passages"]:
        label = page.locator(f".passage-card[data-id='{p['id']}'] .section .page")
        if p["pages"]:
            lo, hi = min(p["pages"]), max(p["pages"])
            expect(label).to_have_text(f"第 {lo} 页" if lo == hi else f"第 {lo}–{hi} 页")
        else:
            expect(label).to_have_count(0)
    _screenshot(page, "results_pdf_pages")

    # the document view marks where each page starts, without changing the text the offsets count
    page.click("#answer-citation")
    cited = page.wait_for_selector("#cited")
    text = httpx.get(admin_server + "/documents/article").json()["text"]
    assert cited.text_content() == text[a["start"]:a["end"]]
    assert page.text_content("#doc-view pre") == text
    assert page.eval_on_selector_all("#doc-view .page-break", "ms => ms.map(m => m.dataset.label)") == [
        f"第 {n} 页" for n in range(1, pdf["pages"] + 1)]
    page_of_cited = page.evaluate("""() => {
        const cited = document.querySelector('#cited');
        const before = [...document.querySelectorAll('.page-break')]
            .filter(m => m.compareDocumentPosition(cited) & Node.DOCUMENT_POSITION_FOLLOWING);
        return +before[before.length - 1].dataset.page; }""")
    assert page_of_cited == a["page"]
    # beside the text, the cited page's picture with a box over each cited line, where the API puts it
    boxes = httpx.get(admin_server + "/documents/article/boxes", params={"start": a["start"], "end": a["end"]}).json()
    on_page = [b for b in boxes if b["page"] == a["page"]]
    assert on_page
    figure = page.locator(f"#page-pictures figure[data-page='{a['page']}']")
    expect(figure).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.locator("img").element_handle())
    assert page.eval_on_selector(f"#page-pictures figure[data-page='{a['page']}'] img",
                                 "img => [img.naturalWidth, img.naturalHeight].sort((x, y) => y - x)[0]") == 1600
    drawn = page.evaluate("""n => {
        const img = document.querySelector(`#page-pictures figure[data-page='${n}'] img`).getBoundingClientRect();
        return [...document.querySelectorAll(`#page-pictures figure[data-page='${n}'] .box`)].map(b => {
            const r = b.getBoundingClientRect();
            return [(r.left - img.left) / img.width, (r.top - img.top) / img.height,
                    (r.right - img.left) / img.width, (r.bottom - img.top) / img.height]; }); }""", a["page"])
    assert len(drawn) == len(on_page)
    for got, want in zip(drawn, on_page):  # within a pixel or two of the picture as shown
        assert got == pytest.approx([want["x0"], want["y0"], want["x1"], want["y1"]], abs=0.01)
    assert page.query_selector("#picture-error") is None
    page.wait_for_function("""() => {  // the pictures' column scrolled to the first boxed line
        const column = document.querySelector('#page-pictures').getBoundingClientRect();
        const box = document.querySelector('#page-pictures .box').getBoundingClientRect();
        return box.top >= column.top && box.bottom <= column.bottom; }""")
    _screenshot(page, "document_pdf_pages")
    page.click("a.back")
    page.wait_for_selector("#results:not(.hidden)")

    # remove: cancelling keeps it; confirming removes it from the list and the API
    page.click("#docs-list tr[data-id='article'] .remove")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("article")
    _screenshot(page, "documents_confirm")
    page.click("#confirm-cancel")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(row).to_have_count(1)
    page.click("#docs-list tr[data-id='article'] .remove")
    page.click("#confirm-ok")
    expect(status).to_contain_text("已删除 article", timeout=120_000)
    expect(row).to_have_count(0)
    expect(page.locator("#docs-list tr[data-id='notes']")).to_have_count(1)
    assert [d["doc_id"] for d in httpx.get(admin_server + "/documents").json()] == ["notes"]
    expect(page.locator("#index-info")).to_contain_text("1 篇文档")
    _no_problems_but_refusals(page, ["403 (Forbidden)", "422 (Unprocessable Entity)"])


def test_documents_panel_takes_a_dropped_file_and_replaces_it(admin_page, admin_server, browser):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = admin_page
    status = page.locator("#docs-status")
    _open_panel(page)
    page.fill("#admin-token", ADMIN_TOKEN)

    # too many files at once: the API's 413 detail names the limit
    page.set_input_files("#upload-input", files=[_md(f"n{i}.md", GARDEN_MD) for i in range(21)])
    expect(status).to_have_class("status error")
    expect(status).to_contain_text("21 files in one request; the limit is 20")
    assert "文件太大或太多" in status.inner_text() and "413" in status.inner_text()

    # dropped onto the panel
    drop = page.evaluate_handle("""([name, text]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], name, {type: 'text/markdown'}));
        return dt; }""", ["garden.md", GARDEN_MD])
    page.dispatch_event("#drop-zone", "dragover", {"dataTransfer": drop})
    expect(page.locator("#docs-panel")).to_have_class("card dragging")
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": drop})
    expect(status).to_contain_text("已添加 garden", timeout=120_000)
    row = page.locator("#docs-list tr[data-id='garden']")
    expect(row.locator(".title a")).to_have_text("社区花园公约")
    expect(page.locator("#docs-panel")).to_have_class("card")

    # issue #22: a same-named file of another type is a second document, the same bytes again are named
    page.set_input_files("#upload-input", files=[
        {"name": "garden.html", "mimeType": "text/html",
         "buffer": "<h1>花园开放时间</h1><p>社区花园每天早上七点开放。</p>".encode()},
        _md("副本.md", GARDEN_MD)])
    expect(status).to_have_class("status ok", timeout=120_000)
    expect(status).to_contain_text("已添加 garden-2")
    expect(status).to_contain_text("副本.md 与已有文档 garden 内容相同，未重复保存")
    expect(page.locator("#docs-list tr[data-id='garden-2'] .kind")).to_have_text("HTML")
    expect(row).to_have_count(1)
    page.click("#docs-list tr[data-id='garden-2'] .remove")
    page.click("#confirm-ok")
    expect(status).to_contain_text("已删除 garden-2", timeout=120_000)

    # the token survives a reload of this tab, and is not there in another tab
    page.reload()
    page.wait_for_selector("#index-info:has-text('段落')")
    assert page.input_value("#admin-token") == ADMIN_TOKEN
    other = browser.new_page()
    other.goto(admin_server + "/")
    assert other.input_value("#admin-token") == ""
    other.close()

    # replaced through its own file picker: same id, new content
    _open_panel(page)
    with page.expect_file_chooser() as chooser:
        page.click("#docs-list tr[data-id='garden'] .replace")
    chooser.value.set_files(files=[_md("garden-v2.md", GARDEN_V2_MD)])
    expect(status).to_contain_text("已替换 garden", timeout=120_000)
    expect(row.locator(".title a")).to_have_text("社区花园公约（修订）")
    detail = httpx.get(admin_server + "/documents/garden").json()
    assert detail["text"] == GARDEN_V2_MD
    expect(row.locator(".passages")).to_have_text(str(detail["passages"]))

    page.click("#docs-list tr[data-id='garden'] .remove")
    page.click("#confirm-ok")
    expect(status).to_contain_text("已删除 garden", timeout=120_000)
    expect(row).to_have_count(0)
    _no_problems_but_refusals(page, ["413 (Request Entity Too Large)"])


def test_the_eval_report_is_one_readable_page(browser, tmp_path):
    """Issue #24: `qa eval --report` writes one self-contained page; in Chromium it fetches nothing
    else, its three charts draw, and no two labels of a chart overlap."""
    import json

    from eval.report import write_report

    report = json.loads((Path(__file__).parents[1] / "eval" / "reports" / "questions.json").read_text(encoding="utf-8"))
    html_page = write_report(report, tmp_path)
    page = browser.new_page()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    try:
        page.goto(html_page.as_uri())
        assert fetched == [html_page.as_uri()]
        assert page.inner_text("h1").startswith("Evaluation — questions")
        assert "pipeline" in page.inner_text("table") and page.query_selector_all(".miss")
        overlaps = page.evaluate("""() => [...document.querySelectorAll('svg')].map((svg) => {
            const r = svg.getBoundingClientRect();
            const boxes = [...svg.querySelectorAll('text')].map((t) => t.getBoundingClientRect())
              .filter((b) => b.width > 0 && b.height > 0);
            const hit = [];
            boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => {
              const dx = Math.min(a.right, b.right) - Math.max(a.left, b.left);
              const dy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
              if (dx > 1 && dy > 1) hit.push([Math.round(a.left), Math.round(a.top), Math.round(b.left), Math.round(b.top)]);
            }));
            return {width: r.width, height: r.height, texts: boxes.length, hit};
        })""")
        assert len(overlaps) == 3
        for chart in overlaps:
            assert chart["width"] > 300 and chart["height"] > 150 and chart["texts"] > 5
            assert chart["hit"] == [], f"labels overlap: {chart}"
    finally:
        page.close()


def test_a_first_run_prints_the_admin_token_and_the_page_uploads_with_it(browser, real_settings, tmp_path):
    """Issue #24: `qa serve` (what `make run` starts) with no QA_ADMIN_TOKEN makes a token, prints it
    once, and a person who pastes it into the page can upload at once."""
    import subprocess
    import sys
    import time

    from corpus.documents import load_documents
    from eval.serving import Client, free_port
    from qa import updates
    from qa.loading import update_encoder

    expect = pytest.importorskip("playwright.sync_api").expect
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text(NOTES_MD, encoding="utf-8")
    settings = real_settings.with_(index_dir=tmp_path / "var" / "index", cache_dir=tmp_path / "cache",
                                   documents_dir=tmp_path / "uploads")
    updates.apply(settings, add=load_documents([tmp_path / "docs"]), encoder=update_encoder(settings))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "QA_ADMIN_TOKEN"}
    env.update(QA_INDEX_DIR=str(settings.index_dir), QA_MODELS_DIR=str(settings.models_dir),
               QA_CACHE_DIR=str(settings.cache_dir), QA_DOCUMENTS_DIR=str(settings.documents_dir), QA_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    page = browser.new_page()
    try:
        deadline = time.time() + 120
        while Client(port, timeout=2).get("/health")[0] != 200:
            assert proc.poll() is None and time.time() < deadline, "qa serve did not start"
            time.sleep(0.1)
        printed = [proc.stdout.readline() for _ in range(3)]
        assert printed[0].startswith("uploads are on: the admin token")
        token = printed[2].strip()
        assert token == (tmp_path / "var" / "admin-token").read_text(encoding="utf-8").strip() and len(token) >= 32
        page.goto(f"http://127.0.0.1:{port}/")
        _open_panel(page)
        page.fill("#admin-token", token)
        page.set_input_files("#upload-input", files=[_md("garden.md", GARDEN_MD)])
        expect(page.locator("#docs-status")).to_have_class("status ok", timeout=120_000)
        expect(page.locator("#docs-list tr[data-id='garden']")).to_have_count(1)
        _ask(page, "社区花园每户每周浇水几次？")
        assert "浇水" in page.wait_for_selector("#answer").inner_text()
    finally:
        page.close()
        proc.terminate()
        proc.wait(timeout=30)


def test_knowledge_bases_on_the_page(admin_page, admin_server, browser):
    """Issue #22: create a knowledge base, upload into it, ask within it, switch, and delete it;
    the address names the knowledge base, so a link reproduces the question."""
    expect = pytest.importorskip("playwright.sync_api").expect
    page, status = admin_page, admin_page.locator("#docs-status")
    _open_panel(page)
    page.fill("#admin-token", ADMIN_TOKEN)
    page.fill("#kb-name", "garden")
    page.fill("#kb-title", "社区花园")
    page.click("#kb-create")
    expect(page).to_have_url(re.compile(r"/\?kb=garden$"))
    expect(page.locator("#kb-select")).to_have_value("garden")
    expect(page.locator("#docs-list")).to_contain_text("还没有文档")
    page.set_input_files("#upload-input", files=[_md("garden.md", GARDEN_MD)])
    expect(status).to_contain_text("已添加 garden", timeout=120_000)
    expect(page.locator("#index-info")).to_contain_text("1 篇文档")

    _ask(page, "每户每周浇水几次？")
    expect(page.locator("#answer")).to_contain_text("每户每周轮流浇水一次")
    citation = page.locator("#answer-citation")
    assert citation.get_attribute("href").startswith("#/kb/garden/doc/garden/")
    citation.click()
    text = httpx.get(admin_server + "/kbs/garden/documents/garden").json()["text"]
    assert page.text_content("#doc-view pre") == text and "浇水一次" in page.text_content("#cited")
    page.click("a.back")

    other = _watched(browser, admin_server)
    other.goto(admin_server + "/?kb=garden")  # the link alone asks the same knowledge base
    expect(other.locator("#kb-select")).to_have_value("garden")
    _ask(other, "每户每周浇水几次？")
    expect(other.locator("#answer")).to_contain_text("浇水一次")
    other.close()

    page.select_option("#kb-select", "default")
    expect(page).to_have_url(re.compile(r"/$"))
    _ask(page, "每户每周浇水几次？")
    page.wait_for_selector("#results .card")
    assert "原文 garden" not in page.inner_text("#results")  # the default never answers from another
    expect(page.locator("#docs-list tr[data-id='notes']")).to_have_count(1)

    page.select_option("#kb-select", "*")
    _ask(page, "每户每周浇水几次？")
    expect(page.locator("#answer")).to_contain_text("浇水一次")
    expect(page.locator("#results .kb-name").first).to_have_text("garden")

    page.select_option("#kb-select", "garden")
    page.click("#kb-delete")
    page.click("#confirm-ok")
    expect(page.locator("#kb-select")).to_have_value("default", timeout=60_000)
    assert page.locator("#kb-select option[value='garden']").count() == 0
    assert httpx.get(admin_server + "/kbs/garden/documents").status_code == 404
    _no_problems_but_refusals(page, [])


# --- an answer from a table names the table and its rows ------------------------------------

@pytest.fixture(scope="module")
def tables_server(real_settings, tmp_path_factory):
    """The real app over an index of the table fixtures (a Word document, a workbook, a web page)."""
    from api.app import create_app
    from corpus.documents import load_documents
    from qa import updates
    from qa.loading import update_encoder
    from qa.settings import ROOT

    tmp = tmp_path_factory.mktemp("tables")
    settings = real_settings.with_(index_dir=tmp / "index", cache_dir=tmp / "cache", documents_dir=tmp / "uploads",
                                   kbs_dir=tmp / "kbs")
    updates.apply(settings, add=load_documents([ROOT / "eval" / "data" / "tables"]), encoder=update_encoder(settings))
    with serving(with_csp(create_app(settings))) as url:
        yield url


def test_an_answer_from_a_spreadsheet_names_its_table_and_row(browser, tables_server):
    page = _watched(browser, tables_server)
    try:
        question = "申领退休待遇应该去哪里办？"
        api = httpx.post(tables_server + "/ask", json={"question": question}).json()
        assert api["answer"]["table"] == {"number": 2, "name": "办理时间", "first_row": 3, "last_row": 3}
        _ask(page, question)
        page.wait_for_selector("#answer")
        assert page.inner_text("#answer-table") == "表 2“办理时间” 第 3 行"
        first = api["passages"][0]["table"]
        label = page.inner_text(f".passage-card[data-id='{api['passages'][0]['id']}'] .section .table")
        assert label == f"表 {first['number']}“{first['name']}” 第 {first['first_row']}–{first['last_row']} 行"
        assert page.problems == [] and page.evaluate("window.__csp") == []
        _screenshot(page, "results_table")
    finally:
        page.close()

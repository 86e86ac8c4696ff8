"""The web page in a real headless Chromium: ask, see a cited answer, follow the citation."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import FakeEncoder, serving

pytestmark = pytest.mark.browser
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
    refusal = page.wait_for_selector("#no-answer").inner_text()
    assert "未找到答案" in refusal and "置信度 0." in refusal
    # the input's length check stops a person; the server still refuses a longer question
    page.eval_on_selector("#question", "el => { el.setCustomValidity(''); el.value = '长'.repeat(501); }")
    page.click("#ask-button")
    assert "500" in page.wait_for_selector("#error").inner_text()


# --- characters outside the Basic Multilingual Plane, under a strict CSP -------------------
#
# 𠀀 𡒄 𨙸 (CJK Extension B, common in names) and 🎉 are one code point each in Python and
# in the API's offsets, but two UTF-16 units in a JavaScript string.

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
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
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.add_init_script(WATCH_CSP)
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text} {m.location}"))
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.goto(names_server + "/")
    page.wait_for_selector("#index-info:has-text('段落')")
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

"""The web page in a real headless Chromium: ask, see a cited answer, follow the citation."""
from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("QA_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def page(live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: `make test` installs Debian's chromium (make browser)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(live_server + "/")
        yield page
        browser.close()


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
    # the input's maxlength stops a person; the server still refuses a longer question
    page.eval_on_selector("#question", "el => { el.removeAttribute('maxlength'); el.value = '长'.repeat(501); }")
    page.click("#ask-button")
    assert "500" in page.wait_for_selector("#error").inner_text()

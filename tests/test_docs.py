"""The README and docs/: short enough to read, links that lead somewhere, figures that are the measured ones."""
from __future__ import annotations

import re

import pytest

from eval.figures import FiguresError, generate, section, stale
from qa.settings import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, spaces to '-', punctuation but '-' and '_' dropped."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_the_readme_is_read_in_ten_minutes():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_local_link_leads_somewhere(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} leads nowhere"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked.read_text(encoding="utf-8")), f"{page.name}: no heading for #{anchor}"


def test_the_generated_figures_are_the_reports_figures():
    stale_pages = stale(ROOT / "docs", ROOT / "eval" / "reports")
    assert not stale_pages, f"run `qa docs`: {', '.join(p.name for p in stale_pages)} differ from eval/reports/"


def test_a_generated_section_is_rewritten_from_its_report_and_names_a_missing_one(tmp_path):
    text = "before\n<!-- figures: eval questions -->\nhand-copied 0.999\n<!-- /figures -->\nafter\n"
    done = generate(text, ROOT / "eval" / "reports")
    assert "hand-copied" not in done
    assert done.startswith("before\n<!-- figures: eval questions -->\ndataset questions.jsonl: ")
    assert "\n| pipeline | " in done
    assert done.endswith("<!-- /figures -->\nafter\n") and generate(done, ROOT / "eval" / "reports") == done
    with pytest.raises(FiguresError, match="nothing.json: no such report"):
        section("eval", "nothing", tmp_path)
    with pytest.raises(FiguresError, match="unknown figures section"):
        section("chart", None, tmp_path)

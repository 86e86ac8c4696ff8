"""The figures in docs/, written from the measured reports in eval/reports/, never by hand.

A generated section is marked in the Markdown:

    <!-- figures: eval questions -->   (the table of eval/reports/questions.json)
    <!-- figures: bench -->            (the table of eval/reports/bench.json)
    …
    <!-- /figures -->

``qa docs`` rewrites what lies between the marks; tests/test_docs.py fails when a section
differs from what the reports give, so a figure in the docs is always the last measured one.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from eval.report import table

BLOCK = re.compile(r"(<!-- figures: ([a-z]+)(?: ([\w.-]+))? -->\n)(.*?)(<!-- /figures -->)", re.S)


class FiguresError(ValueError):
    """A marked section names a report that is not there, or a kind of figures that does not exist."""


def _report(reports: Path, name: str) -> dict:
    path = reports / f"{name}.json"
    if not path.is_file():
        raise FiguresError(f"{path}: no such report (make it with `qa eval … --json {path}` or `qa bench --json {path}`)")
    return json.loads(path.read_text(encoding="utf-8"))


def section(kind: str, name: str | None, reports: Path) -> str:
    """The Markdown of one generated section."""
    if kind == "eval" and name:
        return table(_report(reports, name)).rstrip() + "\n"
    if kind == "bench":
        from eval.bench import table as bench_table

        return "```\n" + bench_table(_report(reports, name or "bench")).rstrip() + "\n```\n"
    raise FiguresError(f"unknown figures section '{kind} {name or ''}'; use 'eval NAME' or 'bench [NAME]'")


def generate(text: str, reports: Path) -> str:
    """``text`` with every marked section rewritten from ``reports``."""
    return BLOCK.sub(lambda m: m.group(1) + section(m.group(2), m.group(3), reports) + m.group(5), text)


def stale(docs: Path, reports: Path) -> list[Path]:
    """The documents whose generated sections differ from what the reports give now."""
    return [p for p in sorted(docs.glob("*.md")) if generate(p.read_text(encoding="utf-8"), reports)
            != p.read_text(encoding="utf-8")]


def write(docs: Path, reports: Path) -> list[Path]:
    """Rewrite the generated sections of every document in ``docs``; returns those that changed."""
    changed = stale(docs, reports)
    for path in changed:
        path.write_text(generate(path.read_text(encoding="utf-8"), reports), encoding="utf-8")
    return changed

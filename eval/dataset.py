"""Labelled questions: loading, validation, and where each evidence lies in its document."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from corpus.text import kept_positions, squash

DEFAULT_DATASET = Path(__file__).parent / "data" / "questions.jsonl"


class DatasetError(ValueError):
    """The labelled set is malformed; the message names the line and the problem."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answerable: bool = True
    answer: str = ""
    evidence: str = ""
    doc: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    alt_evidence: tuple[str, ...] = ()  # other spans that answer the question just as well


def load_jsonl(path: Path) -> list[Question]:
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    questions, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DatasetError(f"{path}:{n}: not valid JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not isinstance(row.get("question"), str):
            raise DatasetError(f"{path}:{n}: needs string fields 'id' and 'question'")
        if row["id"] in seen:
            raise DatasetError(f"{path}:{n}: duplicate id {row['id']}")
        seen.add(row["id"])
        answerable = row.get("answerable", True)
        if answerable and not (row.get("evidence") and row.get("answer")):
            raise DatasetError(f"{path}:{n}: an answerable question needs 'answer' and 'evidence'")
        questions.append(Question(
            row["id"], row["question"], bool(answerable), row.get("answer", ""), row.get("evidence", ""),
            row.get("doc"), tuple(row.get("tags", ())), tuple(row.get("alt_evidence", ())),
        ))
    return questions


class Squashed:
    """A document with whitespace and emphasis removed, mapped back to original offsets.

    Evidence is matched here, so page breaks and stray spaces never hide a match.
    """

    def __init__(self, text: str) -> None:
        keep = kept_positions(text)
        self.text = "".join(text[i] for i in keep)
        self.to_original = keep
        # position in squashed text of every original offset (the next kept character)
        self.from_original = [0] * (len(text) + 1)
        j = 0
        for i in range(len(text) + 1):
            while j < len(keep) and keep[j] < i:
                j += 1
            self.from_original[i] = j

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Squashed span of the original span [start, end)."""
        return self.from_original[start], self.from_original[end]

    def find_all(self, needle: str) -> list[tuple[int, int]]:
        """Squashed spans of every occurrence of ``needle`` (itself squashed)."""
        needle = squash(needle)
        out, pos = [], self.text.find(needle) if needle else -1
        while pos >= 0:
            out.append((pos, pos + len(needle)))
            pos = self.text.find(needle, pos + 1)
        return out

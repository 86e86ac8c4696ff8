"""How the answer sentence is chosen, measured on a development split: the margins of
``qa.answer.choose`` and which kinds a question may prefer without refusing.

    .venv/bin/python -m eval.choice_eval ../shared/data/cmrc2018_trial.json

Only the first half of the file's questions (its first articles, in file order) is used:
``TYPE_MARGIN``, ``COVERAGE_SLACK`` and ``PREFERRED`` in qa/answer.py were set from this
output; the second half, DRCD and the labelled set were only measured afterwards.
"""
from __future__ import annotations

import itertools
import json
import logging
import sys
from pathlib import Path

from qa import answer as answers

GRID = {
    "margin": (0.03, 0.05, 0.1),
    "slack": (0.25, 0.5),
    "preferred": (frozenset({"date"}), frozenset({"date", "list"}), frozenset({"date", "list", "place"})),
}


def main(path: Path) -> None:
    from eval.runner import squad_service, evaluate, squad_items
    from qa.settings import ROOT, from_env

    settings = from_env()
    service, questions = squad_service(path, settings, progress=False, cache=ROOT / "var" / "eval-cache")
    dev = squad_items(service, questions[: len(questions) // 2])
    for margin, slack, preferred in itertools.product(*GRID.values()):
        answers.TYPE_MARGIN, answers.COVERAGE_SLACK, answers.PREFERRED = margin, slack, preferred
        r = evaluate(service, dev, path.name, settings)
        p = r["retrievers"]["pipeline"]
        sys.stdout.write(json.dumps({"margin": margin, "slack": slack, "preferred": sorted(preferred),
                                     "answer_accuracy": p["answer_accuracy"], "span_f1": p["span_f1"],
                                     "false_refusal_rate": r["no_answer"]["false_refusal_rate"]}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main(Path(sys.argv[1]))

"""A collection nobody here wrote: seven regulations and their hand-written questions
(../shared/data/regs_dev.jsonl), built and evaluated the way `qa eval --corpus` does, on the real
model.  The figures asserted are what this code reaches (README, "Documents of other genres");
issue #19 asks more of recall@1 (0.88) and of refusals (0.8), see the closing note."""
from __future__ import annotations

import pytest

from .conftest import SHARED_DATA

pytestmark = [pytest.mark.slow, pytest.mark.data]

REGS = SHARED_DATA.parent / "corpus" / "regs"
REGS_DEV = SHARED_DATA / "regs_dev.jsonl"


@pytest.fixture(scope="module")
def regs_report(real_settings, tmp_path_factory):
    if not REGS.is_dir() or not REGS_DEV.exists():
        pytest.skip("../shared/corpus/regs or ../shared/data/regs_dev.jsonl not beside the project")
    from eval.runner import run

    cache = tmp_path_factory.mktemp("regs-cache")
    return run(real_settings, dataset=REGS_DEV, corpus=REGS, progress=False, cache=cache)


def test_regulations_are_retrieved(regs_report):
    pipeline = regs_report["retrievers"]["pipeline"]
    assert pipeline["recall@1"] >= 0.82  # 0.812 before laws were cut by article
    assert pipeline["recall@5"] >= 0.97  # 0.938 before
    assert regs_report["by_tag"]["which-doc"]["recall@1"] >= 0.9


def test_refusals_transfer_to_a_collection_the_threshold_never_saw(regs_report):
    na = regs_report["no_answer"]
    assert na["false_refusal_rate"] <= 0.05  # 0.163 before 天/日, places beside places and 东西
    assert na["recall"] >= 0.75  # 0.700 before
    assert regs_report["no_answer_by_tag"]["other-region"]["refused"] == 1.0


def test_answers_on_regulations(regs_report):
    assert regs_report["retrievers"]["pipeline"]["answer_accuracy"] >= 0.7  # 0.588 before


def test_no_regulation_passage_is_a_fragment(regs_report):
    chars = regs_report["index"]["passage_chars"]
    assert chars["fragments"] == 0  # 106 of 280 passages were under 40 characters before
    assert chars["short"] <= 30  # the short ones are whole articles ("第二条 …适用本条例。")

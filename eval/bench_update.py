"""`qa bench`'s add-one-document figure: an update of a 10,000-passage index against embedding the document alone.

The base index holds the article many times over (ids ``base0000``…): what an update
costs beyond embedding depends on how many passages it carries over (loading,
rebuilding FAISS and BM25, writing, checksums), not on their variety, and copies
embed once, so the base is built in seconds and cached under var/bench-cache.
The added document is new text (contexts of a public set, ~8,000 characters) that
no cache has seen, embedded by the real model both times.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from qa.settings import ROOT, Settings

BASE_PASSAGES = 10_000
NEW_DOC_CHARS = 8_000


def _base(settings: Settings, encoder) -> Settings:
    """The cached base index of at least BASE_PASSAGES passages (built on first use)."""
    from corpus.documents import DEFAULT_CORPUS, Document, load_documents
    from qa.loading import recipe
    from qa.updates import build

    folder = ROOT / "var" / "bench-cache" / f"update-base-{BASE_PASSAGES}-{recipe(settings)}"
    base = settings.with_(index_dir=folder / "index", cache_dir=folder / "cache")
    if not (base.index_dir / "manifest.json").exists():
        article = load_documents([DEFAULT_CORPUS])[0]
        copies = BASE_PASSAGES // 48 + 1  # the article cuts into 48 passages
        docs = [Document(f"base{i:04d}", f"{article.path}#copy{i}", article.text, article.sha256) for i in range(copies)]
        build(docs, base, encoder, progress=False)
    return base


def new_document(data_dir: Path, folder: Path):
    """About NEW_DOC_CHARS characters of real Chinese text as one Markdown document."""
    from corpus.documents import read_document
    from eval.squad import load_squad

    texts, size = [], 0
    source = data_dir / "cmrc2018_trial.json"
    for doc in load_squad(source)[0] if source.exists() else []:
        texts.append(doc.text.strip())
        size += len(texts[-1])
        if size >= NEW_DOC_CHARS:
            break
    if size < NEW_DOC_CHARS:
        raise FileNotFoundError(f"{source} is needed for the add-one-document figure")
    path = folder / "added.md"
    path.write_text("# 新增文档\n\n" + "\n\n".join(texts) + "\n", encoding="utf-8")
    return read_document(path)


def bench_update(settings: Settings, data_dir: Path) -> dict:
    """Seconds to add one new ~8,000-character document to a 10,000-passage index, over embedding it alone."""
    from corpus.tokenize import warm_up
    from corpus.passages import plan
    from qa.loading import build_encoder
    from qa.updates import apply

    encoder = build_encoder(settings)
    warm_up()  # jieba's dictionary, as the encoder is warm too: a long-running server has both
    base = _base(settings, encoder)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        doc = new_document(data_dir, tmp)
        parsed, passages = plan([doc], settings.split)
        # what "embedding the document alone" means: its passages and sentences, under its title as an update
        # embeds them (the base holds many documents)
        texts = [f"{parsed[0].title}\n{t}" for t in
                 [p.text for p in passages] + [p.text[s:e] for p in passages for s, e in p.sentences]]
        encoder.encode_passages(texts[:4])  # warm up
        t = time.perf_counter()
        encoder.encode_passages(list(dict.fromkeys(texts)))
        alone = time.perf_counter() - t
        version = base.index_dir.resolve()
        shutil.copytree(version, tmp / version.name)
        (tmp / "index").symlink_to(version.name)
        work = base.with_(index_dir=tmp / "index", cache_dir=tmp / "cache")  # an empty cache: the text is new
        t = time.perf_counter()
        change = apply(work, add=[doc], encoder=encoder)
        update = time.perf_counter() - t
    return {"base_passages": change.manifest.counts.passages - len(passages), "document_chars": len(doc.text),
            "document_passages": len(passages), "embed_alone_s": round(alone, 2), "update_s": round(update, 2),
            "ratio": round(update / alone, 2)}

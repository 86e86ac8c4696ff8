"""Tables as text a question finds its row in (issue #23): the rendering, Word and HTML header
signals, Excel workbooks and CSV files, and the 20 hand-written questions over the table fixtures."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from corpus.documents import CorpusError, read_document
from corpus.formats import extract
from corpus.tables import Table, TableBlock, TableRef, cited, join, lines
from qa.settings import ROOT

TABLES = ROOT / "eval" / "data" / "tables"
FIXTURES = Path(__file__).parent / "fixtures"
QUESTIONS = ROOT / "eval" / "data" / "tables.jsonl"


# ---- the rendering

def test_a_headed_table_names_its_columns_in_every_row():
    table = Table((("城市", "住宿上限", "备注"), ("一线城市", "500元", ""), ("其他", "320元", "含早餐。")), True)
    assert lines(table) == ["城市：一线城市，住宿上限：500元。", "城市：其他，住宿上限：320元，备注：含早餐。"]


def test_a_form_of_two_columns_is_names_and_values():
    assert lines(Table((("地址", "北京市西城区"), ("电话", "010-12345678")))) == [
        "地址：北京市西城区。", "电话：010-12345678。"]  # the file does not say: two columns are a form
    assert lines(Table((("项目：", "标准"), ("住宿", "500元")), False)) == ["项目：标准。", "住宿：500元。"]


def test_unmarked_wide_tables_have_a_header_and_odd_shapes_keep_every_cell():
    assert lines(Table((("险种", "单位", "个人"), ("养老", "16%", "8%")))) == ["险种：养老，单位：16%，个人：8%。"]
    assert lines(Table((("只有一列",), ("", ), ("第二行！",)))) == ["只有一列。", "第二行！"]
    assert lines(Table((("甲", "乙", "丙"), ("1", "2", "3", "多出的一格")), True)) == ["甲：1，乙：2，丙：3，多出的一格。"]
    assert lines(Table(())) == [] and lines(Table((("", ""),))) == []


cells = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=8)


@given(st.lists(st.lists(cells, min_size=1, max_size=5), min_size=1, max_size=6), st.sampled_from([True, False, None]))
def test_no_cell_is_lost_and_each_row_is_one_line(rows, header):
    """Whatever the table, every cell's text is in the rendering (a column's name only when some row
    has a value under it), and each row stays one line."""
    got = lines(Table(tuple(tuple(r) for r in rows), header))
    text = "\n".join(got)
    assert all("\n" not in line for line in got)
    rows = [row for row in rows if any(cell.split() for cell in row)]  # the header is the first row with text
    for row in rows[1:]:
        for cell in row:
            assert " ".join(cell.split()) in text
    for column, name in enumerate(rows[:1] and rows[0]):
        if any(column < len(row) and row[column].split() for row in rows[1:]) or len(rows) == 1:
            assert " ".join(name.split()) in text


def test_where_each_table_row_lies_is_kept_and_a_span_names_its_rows():
    text, tables = join(["# 标题", TableBlock("住宿", ("甲：1。", "甲：2。")), "", "说明。", TableBlock("", ("乙：3。",))])
    assert text == "# 标题\n\n甲：1。\n甲：2。\n\n说明。\n\n乙：3。"
    assert [(t.number, t.name) for t in tables] == [(1, "住宿"), (2, "")]
    assert [text[a:b] for t in tables for a, b in t.rows] == ["甲：1。", "甲：2。", "乙：3。"]
    first = text.index("甲：2")
    assert cited(tables, 0, len(text)) == TableRef(1, "住宿", 1, 2)  # the first table touched
    assert cited(tables, first, first + 2) == TableRef(1, "住宿", 2, 2)
    assert cited(tables, text.index("说明"), text.index("说明") + 3) is None
    assert cited(tables, text.index("乙"), len(text)) == TableRef(2, "", 1, 1)


def test_every_loader_says_where_its_table_rows_are():
    for name, count in (("差旅费管理办法.docx", 2), ("社保缴费标准.xlsx", 2), ("公积金贷款.html", 2)):
        doc = read_document(TABLES / name)
        assert len(doc.tables) == count, name
        for table in doc.tables:
            for a, b in table.rows:
                row = doc.text[a:b]
                assert row.endswith("。") and "\n" not in row and (a == 0 or doc.text[a - 1] == "\n"), (name, row)
    assert [t.name for t in read_document(TABLES / "社保缴费标准.xlsx").tables] == ["缴费比例与基数", "办理时间"]


# ---- Word and HTML

def test_word_and_html_tables_from_the_fixtures():
    docx = read_document(TABLES / "差旅费管理办法.docx").text
    assert "城市类别：一线城市，部级及以上（元/人·天）：1100，司局级（元/人·天）：650，处级及以下（元/人·天）：500。" in docx
    assert "\n伙食补助费：每人每天100元，西藏、青海、新疆为每人每天120元。\n" in docx  # a form: no header row
    html = read_document(TABLES / "公积金贷款.html").text
    assert "贷款期限：5年以上，首套住房年利率：3.1%，第二套住房年利率：3.575%。" in html  # <thead>
    assert "\n单缴存职工最高贷款额度：60万元。\n" in html  # <th> down the first column: names and values


def test_html_th_cells_mark_the_header_without_thead(tmp_path):
    page = tmp_path / "t.html"
    page.write_text("<body><p>说明。</p><table><tr><th>项目</th><th>标准</th></tr><tr><td>住宿</td><td>500元</td></tr>"
                    "</table></body>", encoding="utf-8")
    assert read_document(page).text == "说明。\n\n项目：住宿，标准：500元。\n"


def test_a_word_header_row_marked_to_repeat_is_the_header(tmp_path):
    import docx
    from docx.oxml import OxmlElement

    doc = docx.Document()
    table = doc.add_table(rows=2, cols=2)
    for cell, text in zip(table.rows[0].cells + table.rows[1].cells, ("项目", "标准", "住宿", "500元")):
        cell.text = text
    table.rows[0]._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    doc.save(tmp_path / "marked.docx")
    assert read_document(tmp_path / "marked.docx").text == "项目：住宿，标准：500元。\n"


def test_a_table_in_a_text_pdf_is_found_from_its_column_gaps():
    """table.pdf (Chromium): PDFium gives each row as one line, its cells a column gap apart; the
    rows are written naming their columns, each cell boxed where it stands, and the paragraphs
    around the table are left as they were."""
    from corpus.boxes import rects

    doc = read_document(FIXTURES / "table.pdf")
    rows = [doc.text[a:b] for a, b in doc.tables[0].rows]
    assert rows[0] == "城市类别：一线城市，部级及以上（元/人·天）：1100，司局级（元/人·天）：650，处级及以下（元/人·天）：500。"
    assert len(doc.tables) == 1 and len(rows) == 4 and rows[3].startswith("城市类别：县及县以下，")
    assert "标准见下表。\n\n城市类别：一线城市" in doc.text and doc.text.endswith("\n\n出差人员的伙食补助费和市内交通费按出差自然（日历）天数计算。\n")
    boxes = rects(doc.boxes, *doc.tables[0].rows[0])  # the row's four cells, left to right on one line
    assert len(boxes) == 4 and len({(b.y0, b.y1) for b in boxes}) == 1
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))


def test_lines_of_two_pieces_are_no_table():
    """Two pieces a gap apart, line after line ("第一条 为了……"): a law's articles, not a table."""
    from corpus.formats.layout import Line, layout

    def line(top, left, right):
        text = left + " " + right
        xs = [(50 + 14 * i, 64 + 14 * i) for i in range(len(left))] + [(0, 0)]
        xs += [(50 + 14 * (len(left) + 1) + 14 * i, 64 + 14 * (len(left) + 1) + 14 * i) for i in range(len(right))]
        xs[len(left)] = (xs[len(left) - 1][1], xs[len(left) + 1][0])
        return Line(text, 50, xs[-1][1], top - 14, top, 14, tuple(xs))

    laid = layout([[line(700, "第一条", "为了规范管理。"), line(680, "第二条", "本办法适用于全市。")]])
    assert laid.tables == () and "第一条 为了规范管理。" in laid.text


# ---- spreadsheets

def test_an_excel_workbook_is_its_sheets_as_the_sheet_shows_them():
    doc = read_document(TABLES / "社保缴费标准.xlsx")
    assert doc.kind == "xlsx" and dict(doc.meta) == {"title": "2026年度社会保险缴费标准"}
    assert doc.text.startswith("# 2026年度社会保险缴费标准\n\n## 缴费比例与基数\n\n险种：基本养老保险，单位缴费比例：16%，")
    assert "险种：基本医疗保险，单位缴费比例：9.5%，个人缴费比例：2%，缴费基数下限（元/月）：6739" in doc.text  # 0.095 as 9.5%
    assert "\n\n## 办理时间\n\n事项：年度缴费基数申报，办理时间：每年7月1日至7月31日，" in doc.text


def test_excel_values_dates_formulas_and_a_single_default_sheet(tmp_path):
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active  # "Sheet": a name that says nothing is no heading
    for row in (("事项", "日期", "金额", "合计"), ("申报", dt.datetime(2026, 7, 1), 0.1 + 0.2, 1500.0)):
        sheet.append(row)
    sheet["D3"] = "=C2*2"  # a formula never computed by Excel: no value to show, and no formula text either
    book.save(tmp_path / "plain.xlsx")
    assert read_document(tmp_path / "plain.xlsx").text == "事项：申报，日期：2026-07-01，金额：0.3，合计：1500。\n"


@pytest.mark.parametrize(("raw", "encoding"), [
    ("项目,标准\n住宿,500元\n", "utf-8"), ("项目,标准\n住宿,500元\n", "utf-8-sig"), ("项目,标准\n住宿,500元\n", "gbk"),
    ("项目\t标准\n住宿\t500元\n", "utf-8"), ('项目,标准\n住宿,"500元,含早餐"\n', "utf-8")])
def test_csv_in_the_encodings_and_delimiters_spreadsheets_save(tmp_path, raw, encoding):
    path = tmp_path / "标准.csv"
    path.write_bytes(raw.encode(encoding))
    value = "500元,含早餐" if "早餐" in raw else "500元"
    assert read_document(path).text == f"项目：住宿，标准：{value}。\n"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "old binary Excel (.xls)"),
    ("fake.xlsx", b"just some text", "the extension says Excel (.xlsx) but the content is not"),
    ("broken.xlsx", b"PK\x03\x04" + b"\0" * 100, "corrupt or truncated .xlsx"),
    ("empty.csv", b",,\n,,\n", "the CSV holds no text"),
    ("binary.csv", b"a,b\n\0\0\0", "binary file"),
    ("latin.csv", "项目,标准\n".encode("utf-8") + b"\xff\xfe\xfa", "neither UTF-8 nor GB18030"),
])
def test_bad_spreadsheets_are_refused_by_name(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_document(path)


def test_a_workbook_without_its_workbook_part_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    with pytest.raises(Exception, match="a zip without xl/workbook.xml"):
        extract(Path("x.xlsx"), out.getvalue())


# ---- the 20 questions

@pytest.mark.slow
def test_an_answer_from_a_table_names_the_table_and_its_row(real_settings, tmp_path):
    from api.schemas import AskResponse
    from eval.runner import corpus_service
    from qa.render import render_result, result_json

    service = corpus_service(TABLES, real_settings, False, tmp_path)
    result = service.ask("申领退休待遇应该去哪里办？", top_k=3)
    assert result.answer.text.startswith("事项：退休待遇申领") and result.answer.table == TableRef(2, "办理时间", 3, 3)
    body = result_json(result, service)
    AskResponse.model_validate(body)  # the API's documented shape
    assert body["answer"]["table"] == {"number": 2, "name": "办理时间", "first_row": 3, "last_row": 3}
    assert "表 2“办理时间” 第 3 行" in render_result(result)
    outside = service.ask("贷款额度按什么确定？", top_k=1, doc_id="公积金贷款")
    assert outside.answer.table is None and outside.hits[0].table == TableRef(2, "", 1, 3)


@pytest.mark.slow
def test_the_hand_written_table_questions_are_answered(real_settings, tmp_path):
    """`qa eval --dataset eval/data/tables.jsonl --corpus eval/data/tables`: answer accuracy 0.90
    (README, "Tables"); the issue asks 0.8."""
    from eval.dataset import load_jsonl
    from eval.runner import run

    assert len(load_jsonl(QUESTIONS)) == 20
    report = run(real_settings, dataset=QUESTIONS, corpus=TABLES, progress=False, cache=tmp_path)
    pipeline = report["retrievers"]["pipeline"]
    assert pipeline["answer_accuracy"] >= 0.85 and pipeline["recall@1"] >= 0.9

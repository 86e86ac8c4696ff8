"""Writes the table fixtures beside this file: a Word document, an Excel workbook and a web page,
each with tables of the kind policy documents carry (issue #23), for ``eval/data/tables.jsonl``.

    .venv/bin/python eval/data/tables/make_tables.py

The figures are made up for the fixtures; the questions over them were written by hand.
Deterministic: the files' dates are fixed, so running it again writes the same content.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHEN = dt.datetime(2026, 3, 1, 9, 0)

TRAVEL_LODGING = [
    ("城市类别", "部级及以上（元/人·天）", "司局级（元/人·天）", "处级及以下（元/人·天）"),
    ("一线城市", "1100", "650", "500"),
    ("省会城市", "800", "480", "380"),
    ("其他地级市", "600", "400", "320"),
    ("县及县以下", "450", "330", "260"),
]
TRAVEL_ALLOWANCES = [  # a form: names and values, no header
    ("伙食补助费", "每人每天100元，西藏、青海、新疆为每人每天120元"),
    ("市内交通费", "每人每天80元，凭出差审批单包干使用"),
    ("报销时限", "出差结束后30日内办理报销"),
]
CONTRIBUTIONS = [
    ("险种", "单位缴费比例", "个人缴费比例", "缴费基数下限（元/月）", "缴费基数上限（元/月）"),
    ("基本养老保险", 0.16, 0.08, 4492, 22458),
    ("基本医疗保险", 0.095, 0.02, 6739, 33696),
    ("失业保险", 0.005, 0.005, 4492, 22458),
    ("工伤保险", 0.004, 0, 4492, 22458),
]
DEADLINES = [
    ("事项", "办理时间", "办理渠道"),
    ("年度缴费基数申报", "每年7月1日至7月31日", "社保网上服务平台"),
    ("灵活就业人员缴费", "每月1日至25日", "银行代扣或手机App"),
    ("退休待遇申领", "达到退休年龄前3个月内", "户籍所在地社保经办窗口"),
]
LOAN_RATES = [
    ("贷款期限", "首套住房年利率", "第二套住房年利率"),
    ("5年以下（含5年）", "2.6%", "3.025%"),
    ("5年以上", "3.1%", "3.575%"),
]
LOAN_LIMITS = [  # row headers (<th>) down the first column
    ("单缴存职工最高贷款额度", "60万元"),
    ("双缴存职工最高贷款额度", "100万元"),
    ("多子女家庭额度上浮", "20%"),
]


def travel_docx(out: Path) -> None:
    import docx

    doc = docx.Document()
    doc.core_properties.title = "机关差旅费管理办法"
    doc.core_properties.created = doc.core_properties.modified = WHEN
    doc.add_heading("机关差旅费管理办法", 0)
    doc.add_heading("一、住宿费", 1)
    doc.add_paragraph("出差人员应当在职务级别对应的住宿费标准限额内，选择安全、经济、便捷的宾馆住宿。"
                      "住宿费限额标准见下表。")
    _docx_table(doc, TRAVEL_LODGING)
    doc.add_heading("二、补助与报销", 1)
    doc.add_paragraph("出差人员的伙食补助费和市内交通费按出差自然（日历）天数计算，标准如下。")
    _docx_table(doc, TRAVEL_ALLOWANCES)
    doc.save(out)


def _docx_table(doc, rows) -> None:
    table = doc.add_table(rows=0, cols=len(rows[0]))
    table.style = "Table Grid"
    for row in rows:
        for cell, value in zip(table.add_row().cells, row):
            cell.text = str(value)


def contributions_xlsx(out: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.properties.title = "2026年度社会保险缴费标准"
    book.properties.created = book.properties.modified = WHEN
    sheet = book.active
    sheet.title = "缴费比例与基数"
    for row in CONTRIBUTIONS:
        sheet.append(list(row))
    for row in sheet.iter_rows(min_row=2, min_col=2, max_col=3):
        for cell in row:
            cell.number_format = "0.0%"
    dates = book.create_sheet("办理时间")
    for row in DEADLINES:
        dates.append(list(row))
    book.save(out)


def loans_html(out: Path) -> None:
    head = "".join(f"<th>{c}</th>" for c in LOAN_RATES[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in LOAN_RATES[1:])
    limits = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in LOAN_LIMITS)
    out.write_text(f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>住房公积金贷款政策问答</title></head>
<body><nav>首页 | 政策 | 办事</nav><main>
<h1>住房公积金贷款政策</h1>
<h2>一、贷款利率</h2>
<p>自2026年1月1日起，个人住房公积金贷款利率按下表执行。</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>二、贷款额度</h2>
<p>贷款额度按缴存情况确定，且不超过所购住房总价的80%。</p>
<table>{limits}</table>
</main><footer>版权所有</footer></body></html>
""", encoding="utf-8")


if __name__ == "__main__":
    travel_docx(HERE / "差旅费管理办法.docx")
    contributions_xlsx(HERE / "社保缴费标准.xlsx")
    loans_html(HERE / "公积金贷款.html")

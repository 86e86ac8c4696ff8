"""Structure by genre: laws cut by article, reports by their numbered headings, FAQs by question;
no fragments, and a lead-in never parted from its first item."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.documents import Document, load_documents
from corpus.passages import SplitSettings, length_profile, make_passages, pack, parse_document, plan
from corpus.structure import parse
from corpus.text import squash

REGS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "regs"

LAW = """# 某市劳动保障监察条例

2011年8月30日 某市人民代表大会常务委员会通过

<!-- INFO END -->

## 第一章　总则

第一条 为了规范劳动保障监察工作，制定本条例。

第二条 在本市行政区域内实施劳动保障监察，适用本条例。

## 第二章  监察程序

### 第一节 立案

第三条 劳动保障监察应当遵守下列程序：

（一）立案；

（二）调查；

（三）决定。

前款规定的程序，应当在六十个工作日内完成。

第四条 违反本条例的，处二千元以上一万元以下的罚款。
"""

REPORT = """# 关于加强就业服务的报告

张三

一、总体情况

（一）就业形势稳定。今年城镇新增就业1200万人，调查失业率保持在5.5%左右。

（二）服务能力提升。公共就业服务机构覆盖所有街道，第三条规定的服务全部免费。

二、下一步工作

继续完善就业服务体系，提高服务质量。
"""

FAQ = """# 报销常见问题

问：差旅费报销需要哪些材料？

答：需要发票、行程单和审批单。

问：住宿费上限是多少？

答：一线城市每晚不超过600元，其他城市不超过350元。

问：多久能到账？

答：审批通过后五个工作日内到账。
"""


def _doc(text: str, doc_id: str = "doc") -> Document:
    return Document(doc_id, f"{doc_id}.md", text, "0" * 64)


def _passages(text: str, **split) -> list:
    return make_passages(parse_document(_doc(text)), SplitSettings(**split))


def test_a_law_is_cut_by_article_under_its_chapters_and_sections():
    p = parse(LAW, "x")
    assert p.genre == "law"
    assert p.title == "某市劳动保障监察条例"
    assert p.sections == ("第一章 总则", "第二章 监察程序", "第一节 立案")
    paths = [s.section for s in p.segments]
    assert paths == ["", "第一章 总则 > 第一条", "第一章 总则 > 第二条", "第二章 监察程序 > 第一节 立案 > 第三条",
                     "第二章 监察程序 > 第一节 立案 > 第四条"]
    assert "INFO END" not in p.clean  # a Markdown comment is never text
    assert p.author == ""  # a law's adoption line is no byline


def test_a_laws_items_stay_with_their_lead_in_and_their_article():
    passages = _passages(LAW)
    third = [q for q in passages if q.section.endswith("第三条")]
    assert len(third) == 1
    assert third[0].text.startswith("第三条劳动保障监察应当遵守下列程序：\n（一）立案；\n（二）调查；")
    assert third[0].text.endswith("六十个工作日内完成。")


def test_a_long_article_splits_between_items_and_repeats_its_lead_in_as_context():
    items = "".join(f"（{n}）第{n}项内容，写得足够长以便把这一条撑过一个段落的长度限制；\n\n" for n in "一二三四五六七八")
    law = LAW.replace("（一）立案；\n\n（二）调查；\n\n（三）决定。\n\n", items)
    passages = [q for q in _passages(law, max_chars=120) if q.section.endswith("第三条")]
    assert len(passages) > 2
    assert passages[0].context == ""
    for q in passages[1:]:
        if q.text.startswith("（"):
            assert q.context == "第三条劳动保障监察应当遵守下列程序：", q.text[:20]
            assert q.indexed_text.startswith(q.context + "\n")
    for q in passages[:-1]:  # no passage ends on the lead-in when its items follow
        assert not q.text.endswith("：")


def test_a_report_keeps_its_numbered_headings_and_subsections():
    p = parse(REPORT, "x")
    assert p.genre == "report"  # one 第三条 in a report does not make it a law
    assert p.author == "张三"
    assert [s.section for s in p.segments] == ["一、总体情况 > （一）就业形势稳定", "一、总体情况 > （二）服务能力提升",
                                               "二、下一步工作"]


def test_a_faq_is_cut_by_question_with_its_answer():
    p = parse(FAQ, "x")
    assert p.genre == "faq"
    passages = _passages(FAQ)
    assert [q.section for q in passages] == ["问：差旅费报销需要哪些材料？", "问：住宿费上限是多少？", "问：多久能到账？"]
    assert "不超过600元" in passages[1].text and passages[1].text.startswith("问：住宿费上限是多少？")


def test_a_line_wrapped_inside_a_number_is_no_heading():
    text = "# 通知\n\n请按时报名。\n\n一、联系电话0571-\n\n88886666，工作日接听。\n\n二、报名\n\n报名截止时间为周五。\n"
    p = parse(text, "x")
    assert p.sections == ("二、报名",)
    assert "一、联系电话0571-88886666，工作日接听。" in p.clean


def test_a_hyphen_at_a_line_end_joins_the_number():
    p = parse("# 通知\n\n咨询电话：0571-\n88886666。\n", "x")
    assert "0571-88886666" in p.clean


def test_lead_in_never_ends_a_window_when_its_items_follow():
    spans = [(0, 30), (30, 60), (60, 90), (90, 120)]
    assert pack(spans, 65, 0, leads=frozenset({1})) == [(0, 1), (1, 3), (3, 4)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=30),
       st.sets(st.integers(min_value=0, max_value=29)), st.integers(min_value=0, max_value=2))
def test_windows_cover_every_sentence_and_are_no_fragments_when_they_can_help_it(lengths, leads, overlap):
    spans, at = [], 0
    for n in lengths:
        spans.append((at, at + n))
        at += n
    windows = pack(spans, 250, overlap, frozenset(k for k in leads if k < len(spans)), 40)
    covered = set()
    for i, j in windows:
        covered.update(range(i, j))
        assert i < j
        assert spans[j - 1][1] - spans[i][0] <= 250 or j - i == 1
        if spans[j - 1][1] - spans[i][0] < 40 and i > 0:  # short only when nothing before fits
            assert spans[j - 1][1] - spans[i - 1][0] > 250
    assert covered == set(range(len(spans)))


def test_length_profile_tells_whole_short_sections_from_fragments():
    profile = length_profile(_passages(LAW), 40)
    assert profile["fragments"] == 0
    assert profile["short"] >= 2  # 第一条 and 第二条 are short articles, each a whole section


@pytest.fixture(scope="module")
def regs():
    if not REGS.is_dir():
        pytest.skip("../shared/corpus/regs not beside the project")
    return plan(load_documents([REGS]), SplitSettings())


@pytest.mark.data
def test_every_regulation_reads_as_a_law_without_fragments(regs):
    parsed, passages = regs
    assert {pd.parsed.genre for pd in parsed} == {"law"}
    sections: dict[tuple[str, str], int] = {}
    for q in passages:
        sections[q.doc_id, q.section] = sections.get((q.doc_id, q.section), 0) + 1
    short = [q for q in passages if len(q.text) < 40]
    assert all(sections[q.doc_id, q.section] == 1 for q in short), [q.id for q in short if sections[q.doc_id, q.section] > 1]
    assert not any(q.text.startswith("（一）") and not q.context for q in passages)
    for q in passages:  # an item passage cites its article: "第四章 … > 第二十八条"
        if q.section:
            assert q.section.split(" > ")[-1].startswith("第") and q.section.endswith("条"), q.section


@pytest.mark.data
def test_regulation_passages_slice_their_documents(regs):
    parsed, passages = regs
    texts = {pd.doc.doc_id: pd.doc.text for pd in parsed}
    for q in passages:
        assert squash(texts[q.doc_id][q.start : q.end]) == squash(q.text), q.id


def test_a_long_table_splits_by_rows_with_its_header_row_as_context():
    rows = "\n".join(f"| {city}市 | 每晚不超过{n}元 | 每天补助{n // 5}元 |" for city, n in
                     zip(["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆"], range(300, 800, 50)))
    text = f"# 差旅标准\n\n一、住宿与补助\n\n各城市标准如下表。\n\n| 城市 | 住宿上限 | 伙食补助 |\n{rows}\n"
    passages = _passages(text, max_chars=120)
    assert len(passages) > 2
    header = "|城市|住宿上限|伙食补助|"
    assert header in passages[0].text and passages[0].context == ""
    for q in passages[1:]:
        lines = q.text.split("\n")
        assert all(line.startswith("|") and line.endswith("|") for line in lines)  # whole rows, one a line
        if lines[0] != header:
            assert q.context == header
    assert not passages[0].text.endswith(header)  # never parted from its first data row


def test_a_manuals_numbered_steps_stay_with_their_lead_in():
    steps = "\n\n".join(f"{n}. 第{n}步，打开设置页面中对应的选项并确认保存，等待系统提示完成后再继续下一步操作。"
                        for n in range(1, 6))
    text = f"# 产品手册\n\n一、连接网络\n\n首次使用前请先连接网络，操作步骤如下：\n\n{steps}\n"
    passages = _passages(text, max_chars=120)
    assert passages[0].text.startswith("首次使用前请先连接网络，操作步骤如下：\n1.第1步")  # spaces by Chinese are layout
    for q in passages[1:]:
        if q.text[0].isdigit():
            assert q.context == "首次使用前请先连接网络，操作步骤如下："


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["是。", "好！", "对；", "嗯", "一二三四五。", "\n\n", "（一）甲；", "第一条 乙。\n\n"]),
                min_size=1, max_size=200))
def test_the_sentence_store_grows_at_most_one_vector_per_four_characters(pieces):
    """Every sentence costs one vector whatever its length: short ones join a neighbour, so a text
    of "是。好！" cannot cost a vector every two characters (issue #21)."""
    text = "# 标题\n\n" + "".join(pieces) + "结束。\n"
    pdoc = parse_document(_doc(text))
    passages = make_passages(pdoc, SplitSettings())
    sentences = {q.original_span(s, e) for q in passages for s, e in q.sentences}  # an overlap counts once
    assert len(sentences) <= len(pdoc.parsed.clean) / 4 + len(pdoc.parsed.segments)

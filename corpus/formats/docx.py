"""Word (.docx), read with python-docx: paragraphs in order, heading styles as headings, tables as rows.

A paragraph is a heading when its style (or a style it is based on) is Title, Subtitle
or Heading N, in any language Word names them, or carries an outline level; it is
written as a Markdown heading line so the structure parser makes it a section.  Each
table row becomes one sentence naming its columns (``corpus.tables``); a first row marked
to repeat on every page (``w:tblHeader``) is the header.  Numbers Word writes by itself
(automatic list numbering: 一、 （一） 1. 第一条) are written into the text as Word shows them,
counted as Word counts them, since a reader cites "（二）" and the structure parser needs it.
"""
from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from corpus.formats import Extracted, FormatError, Limits, TooBig, check_package
from corpus.text import is_cjk
from corpus.tables import Table as Cells, TableBlock, join, lines as table_lines

_STYLE_LEVEL = re.compile(r"^(?:heading|标题)\s*([1-9])$", re.IGNORECASE)
_TITLES = {"title": 1, "标题": 1, "subtitle": 2, "副标题": 2}
_META = ("title", "author", "subject", "keywords")
# A paragraph's words: its runs, also those inside hyperlinks, tracked insertions, fields and
# content controls, but not deleted text nor a text box's (its own paragraphs, often a sidebar).
_RUNS = ".//w:r[not(ancestor::w:del) and not(ancestor::w:moveFrom) and not(ancestor::w:txbxContent)]"


def extract(raw: bytes, kind: str, limits: Limits = Limits()) -> Extracted:
    check_package(raw, "docx", "Word (.doc)", "word/document.xml")
    _count_paragraphs(raw, limits.paragraphs)
    clock = limits.clock()
    try:
        document = docx.Document(io.BytesIO(raw))
        numbering = _Numbering(document)
        blocks = []
        for item in _items(document.element.body, document._body):
            blocks.append(_block(item, numbering))
            clock.check()
        meta = _meta(document.core_properties)
    except TooBig:
        raise
    except Exception as exc:  # python-docx raises what lxml and zipfile raise, of many kinds
        raise FormatError(f"damaged Word document: {type(exc).__name__}: {exc}") from None
    text, tables = join(blocks)
    if not text.strip():
        raise FormatError("the Word document holds no text")
    return Extracted(text + "\n", kind, (), meta, tables=tables)




_PARAGRAPH_TAGS = (b"<w:p>", b"<w:p ", b"<w:p/>")


def _count_paragraphs(raw: bytes, limit: int) -> None:
    """Refuse a document of more than ``limit`` paragraphs before python-docx parses it (80 µs a
    paragraph there): the body's XML is streamed and its paragraph tags counted, stopping at the limit."""
    found, tail = 0, b""
    with zipfile.ZipFile(io.BytesIO(raw)) as package, package.open("word/document.xml") as body:
        while chunk := body.read(1 << 20):
            window = tail + chunk
            found += sum(window.count(tag) for tag in _PARAGRAPH_TAGS) - sum(tail.count(tag) for tag in _PARAGRAPH_TAGS)
            if found > limit:
                raise TooBig(f"over {limit:,} paragraphs; the limit is {limit:,} (QA_MAX_DOCX_PARAGRAPHS)")
            tail = window[-5:]


def _items(element, parent):
    """Paragraphs and tables in document order, also those inside block content controls."""
    for child in element.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, parent)
        elif child.tag == qn("w:tbl"):
            yield Table(child, parent)
        elif child.tag == qn("w:sdt") and child.find(qn("w:sdtContent")) is not None:
            yield from _items(child.find(qn("w:sdtContent")), parent)


def _text(paragraph) -> str:
    for t in paragraph._p.iter(qn("w:t")):
        if len(t):  # an entity reference, never resolved nor fetched (no XXE): keep the text on both sides of it
            t.text = (t.text or "") + "".join(child.tail or "" for child in t)
            for child in list(t):
                t.remove(child)
    return "".join(run.text for run in paragraph._p.xpath(_RUNS))


def _block(item, numbering: "_Numbering") -> str | TableBlock:
    if isinstance(item, Table):
        return TableBlock("", tuple(table_lines(_cells(item))))
    text = _text(item)
    label = numbering.label(item)
    if label and text.strip():
        text = text.lstrip()
        # "一、总则", "（二）范围", "1.总则" but "1. Scope", and "第一章 总则" after a word
        joined = label[-1] in _CJK_ENDS or (label[-1] in ".):]" and is_cjk(text[0]))
        text = label + ("" if joined else " ") + text
    level = _heading_level(item)
    if level:
        words = " ".join(text.split())
        return f"{'#' * level} {words}" if words else ""
    lines = [line.strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)  # a soft break stays a line, never a paragraph break


_CJK_ENDS = frozenset("、，．）】」』：")
_DIGITS = "零一二三四五六七八九"


def _chinese(n: int) -> str:
    """1 → 一, 10 → 十, 21 → 二十一, 105 → 一百零五: how Word's chineseCounting writes a number (below 10,000)."""
    if n <= 0 or n >= 10_000:
        return str(n)
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit, n = divmod(n, value)
        if digit:
            if zero and out:
                out += "零"
            out += ("" if (value == 10 and digit == 1 and not out) else _DIGITS[digit]) + unit
            zero = False
        elif out:
            zero = True
    return out


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"),
                           (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out, n = out + letters, n - value
    return out


def _letters(n: int) -> str:
    return chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)  # a … z, aa … zz, as Word goes on


_FORMATS = {
    "decimal": str, "decimalZero": lambda n: f"{n:02d}", "chineseCounting": _chinese,
    "chineseCountingThousand": _chinese, "chineseLegalSimplified": lambda n: _chinese(n).translate(
        str.maketrans("一二三四五六七八九十百千", "壹贰叁肆伍陆柒捌玖拾佰仟")),
    "ideographDigital": lambda n: "".join("〇一二三四五六七八九"[int(d)] for d in str(n)),
    "lowerLetter": _letters, "upperLetter": lambda n: _letters(n).upper(), "lowerRoman": _roman,
    "upperRoman": lambda n: _roman(n).upper(),
    "decimalEnclosedCircle": lambda n: chr(0x2460 + n - 1) if 1 <= n <= 20 else str(n),
    "decimalFullWidth": lambda n: str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
}


class _Numbering:
    """Word's automatic numbering: each list's levels (format, text such as "（%1）", start) and
    the counts so far, as Word keeps them while it lays the document out, a list at a time."""

    def __init__(self, document) -> None:
        self._levels: dict[str, dict[int, tuple[str, str, int]]] = {}
        self._counts: dict[str, dict[int, int]] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return
        abstract = {a.get(qn("w:abstractNumId")): self._read_levels(a) for a in root.iter(qn("w:abstractNum"))}
        for num in root.iter(qn("w:num")):
            ref = num.find(qn("w:abstractNumId"))
            levels = dict(abstract.get(ref.get(qn("w:val")) if ref is not None else None, {}))
            for override in num.iter(qn("w:lvlOverride")):  # a list restarted at another number
                ilvl, start = int(override.get(qn("w:ilvl"), "0")), override.find(qn("w:startOverride"))
                if start is not None and ilvl in levels:
                    fmt, text, _ = levels[ilvl]
                    levels[ilvl] = (fmt, text, int(start.get(qn("w:val"), "1")))
            self._levels[num.get(qn("w:numId"))] = levels

    @staticmethod
    def _read_levels(abstract) -> dict[int, tuple[str, str, int]]:
        levels = {}
        for lvl in abstract.iter(qn("w:lvl")):
            val = lambda tag, default: (lvl.find(qn(tag)).get(qn("w:val"), default)  # noqa: E731
                                        if lvl.find(qn(tag)) is not None else default)
            levels[int(lvl.get(qn("w:ilvl"), "0"))] = (val("w:numFmt", "decimal"), val("w:lvlText", ""),
                                                        int(val("w:start", "1")))
        return levels

    def label(self, paragraph) -> str:
        """The number Word shows before ``paragraph`` ("" when it has none), counted."""
        found = self._num(paragraph)
        if found is None:
            return ""
        num_id, ilvl = found
        levels = self._levels.get(num_id)
        if not levels or ilvl not in levels:
            return ""
        fmt, text, start = levels[ilvl]
        counts = self._counts.setdefault(num_id, {})
        counts[ilvl] = counts.get(ilvl, start - 1) + 1
        for deeper in [k for k in counts if k > ilvl]:  # a new item restarts the levels under it
            del counts[deeper]
        if fmt in ("bullet", "none"):
            return ""  # a bullet carries no number to cite

        def shown(m: re.Match) -> str:
            level = int(m.group(1)) - 1
            lvl_fmt, _, lvl_start = levels.get(level, ("decimal", "", 1))
            return _FORMATS.get(lvl_fmt, str)(counts.get(level, lvl_start))

        return re.sub(r"%([1-9])", shown, text).strip()

    @staticmethod
    def _num(paragraph) -> tuple[str, int] | None:
        """The paragraph's list and level: its own w:numPr, else its style's (a numbered heading style)."""
        sources = [paragraph._p.pPr]
        style = paragraph.style
        while style is not None:
            sources.append(style.element.pPr)
            style = style.base_style
        for ppr in sources:
            numpr = ppr.find(qn("w:numPr")) if ppr is not None else None
            if numpr is None:
                continue
            num, ilvl = numpr.find(qn("w:numId")), numpr.find(qn("w:ilvl"))
            num_id = num.get(qn("w:val")) if num is not None else None
            if num_id in (None, "0"):
                return None  # numId 0: numbering switched off here
            return num_id, int(ilvl.get(qn("w:val"), "0")) if ilvl is not None else 0
        return None


def _heading_level(paragraph) -> int:
    """1–6 for Title/Subtitle/Heading N or an outline level (own or by style), else 0."""
    own = _outline(paragraph._p.pPr)
    if own is not None:
        return own
    style = paragraph.style
    while style is not None:
        name = (style.name or "").strip()
        if name.lower() in _TITLES:
            return _TITLES[name.lower()]
        m = _STYLE_LEVEL.match(name)
        if m:
            return min(int(m.group(1)), 6)
        outline = _outline(style.element.pPr)
        if outline is not None:
            return outline
        style = style.base_style
    return 0


def _outline(ppr) -> int | None:
    """The level a paragraph property's w:outlineLvl gives (0 = level 1; 9 = body text, None)."""
    if ppr is None:
        return None
    found = ppr.find(qn("w:outlineLvl"))
    if found is None:
        return None
    value = int(found.get(qn("w:val"), "9"))
    return min(value + 1, 6) if value < 9 else 0


def _cells(table) -> Cells:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is listed once per column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(" ".join(_text(p) for p in cell.paragraphs).split()))
        rows.append(tuple(cells))
    first = table.rows[0]._tr.trPr if len(table.rows) else None
    marked = first is not None and first.find(qn("w:tblHeader")) is not None
    return Cells(tuple(rows), True if marked else None)


def _meta(props) -> dict[str, str]:
    meta = {key: str(getattr(props, key) or "").strip() for key in _META}
    for key, attr in (("created", "created"), ("modified", "modified")):
        value = getattr(props, attr)
        meta[key] = value.isoformat() if value else ""
    return {k: v for k, v in meta.items() if v}

"""HTML, parsed by lxml: the page's main content, h1–h6 as headings, tables as rows.

The main content is the page's one ``<article>``, else its ``<main>`` (or role=main),
when it holds a fair share of the page's text, else the body; scripts, styles, hidden
elements, navigation, asides, forms, footers and the page's own header are left out.  Headings become Markdown heading lines,
block elements paragraphs, ``<br>`` a line break, and a table row one sentence naming its
columns (``corpus.tables``), as the Word loader writes them.
"""
from __future__ import annotations

import codecs
import re

import lxml.etree
import lxml.html

from corpus.formats import BINARY, Extracted, FormatError, Limits, mismatch, sniff
from corpus.tables import Table, TableBlock, join, lines as table_lines

_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "big5": "big5hkscs"}  # what browsers do
_CODE = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math", "canvas", "head"}
_CHROME = {"nav", "aside", "footer", "form", "button", "select", "input", "textarea", "dialog", "menu"}
_MAIN_SHARE = 0.25  # an <article> or <main> holding less of the page's text is not its main content
_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar", "dialog"}
_BLOCKS = {"address", "article", "blockquote", "body", "caption", "center", "dd", "details", "div", "dl", "dt",
           "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "hr", "li", "main", "ol", "p",
           "section", "summary", "ul", "td", "th", "tr", "tbody", "thead", "tfoot", "html"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def extract(raw: bytes, kind: str, limits: Limits = Limits()) -> Extracted:
    markup = decode(raw)  # lxml reads the 20 MiB an upload may be in about a second; the text is checked after
    try:
        root = lxml.html.document_fromstring(markup)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise FormatError(f"not readable as HTML: {exc}") from None
    meta = _meta(root)
    _prune(root, lambda el: el.tag in _CODE or _hidden(el))
    main = _main(root)
    page = main.tag in ("body", "html")
    _prune(main, lambda el: el.tag in _CHROME or (el.get("role") or "").lower() in _ROLES
           or (el.tag == "header" and page and not el.xpath(".//h1")))  # an article's header holds its title
    out = _Writer()
    out.walk(main)
    text, tables = join(out.blocks)
    if not text.strip():
        raise FormatError("the HTML page holds no text")
    return Extracted(text + "\n", kind, (), meta, tables=tables)


def decode(raw: bytes) -> str:
    """The page as text: by its byte-order mark, its declared charset, else UTF-8 (or GB18030)."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return _decode(raw[len(bom):], encoding)
    found = sniff(raw)
    if found in BINARY or b"\0" in raw:
        raise mismatch("html", found or "binary")
    declared = _CHARSET_RE.search(raw[:4096])
    if declared:
        name = declared.group(1).decode("ascii").lower()
        try:
            encoding = _WIDER.get(codecs.lookup(name).name, _WIDER.get(name, codecs.lookup(name).name))
        except LookupError:
            raise FormatError(f"the page declares an unknown charset '{name}'") from None
        return _decode(raw, encoding)
    try:
        return _decode(raw, "utf-8")
    except FormatError:
        try:
            return raw.decode("gb18030")  # the usual undeclared encoding of a Chinese page
        except UnicodeDecodeError:
            raise FormatError("not valid UTF-8 and no charset declared; add <meta charset=…>") from None


def _decode(raw: bytes, encoding: str) -> str:
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FormatError(f"not valid {encoding} (byte {exc.start}), the page's encoding") from None
    return re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # lxml refuses an encoding declaration in decoded text


def _meta(root) -> dict[str, str]:
    meta = {}
    title = root.find(".//title")
    if title is not None and title.text_content().strip():
        meta["title"] = " ".join(title.text_content().split())
    names = {"author": "author", "description": "description", "keywords": "keywords",
             "article:published_time": "created", "date": "created", "article:modified_time": "modified"}
    for tag in root.iter("meta"):
        key = names.get((tag.get("name") or tag.get("property") or "").strip().lower())
        value = " ".join((tag.get("content") or "").split())
        if key and value and key not in meta:
            meta[key] = value
    return meta


def _main(root):
    """The one <article>, else <main>, when it holds a fair share of the page's text; else the body."""
    body = root.find("body")
    body = body if body is not None else root
    total = len("".join(body.text_content().split()))
    articles = root.xpath("//article")
    for candidate in (articles if len(articles) == 1 else []) + root.xpath("//main | //*[@role='main']")[:1]:
        if len("".join(candidate.text_content().split())) >= _MAIN_SHARE * total:
            return candidate
    return body


def _hidden(el) -> bool:
    return (el.get("hidden") is not None or el.get("aria-hidden") == "true"
            or bool(_HIDDEN_STYLE.search(el.get("style") or "")))


def _prune(top, doomed) -> None:
    """Remove the elements under ``top`` that ``doomed`` names, and comments (the text after each stays)."""
    found = [el for el in top.iter() if el is not top and (not isinstance(el.tag, str) or doomed(el))]
    for el in found:
        if el.getparent() is not None:
            el.drop_tree()


def _inline(el) -> str:
    return " ".join(el.text_content().split())


class _Writer:
    """Collects blocks of text: headings, paragraphs (with their <br> breaks) and tables."""

    def __init__(self) -> None:
        self.blocks: list[str | TableBlock] = []
        self.buffer: list[str] = []

    def add(self, text: str | None) -> None:
        if text:
            self.buffer.append(re.sub(r"\s+", " ", text))  # source line breaks are spaces; only <br> breaks

    def flush(self) -> None:
        lines = [" ".join(line.split()) for line in "".join(self.buffer).split("\n")]
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            self.blocks.append(paragraph)
        self.buffer = []

    def walk(self, el) -> None:
        tag = el.tag
        if tag in _HEADINGS:
            self.flush()
            words = _inline(el)
            if words:
                self.blocks.append(f"{'#' * _HEADINGS[tag]} {words}")
        elif tag == "table":
            self.flush()
            rows = table_lines(_cells(el))
            if rows:
                caption = el.find("caption")
                self.blocks.append(TableBlock("" if caption is None else _inline(caption), tuple(rows)))
        elif tag == "br":
            self.buffer.append("\n")
        elif tag == "pre":
            self.flush()
            lines = [line.rstrip() for line in el.text_content().splitlines() if line.strip()]
            if lines:
                self.blocks.append("\n".join(lines))
        else:
            block = tag in _BLOCKS
            if block:
                self.flush()
            self.add(el.text)
            for child in el:
                self.walk(child)
                self.add(child.tail)
            if block:
                self.flush()


def _cells(table) -> Table:
    """The table's rows; its first row is the header when it is in <thead> or all <th>, and
    data when <th> cells head the rows instead (a form: 地址 | 北京市)."""
    rows, tags = [], []
    for tr in table.iter("tr"):
        if next(tr.iterancestors("table"), None) is not table:
            continue  # a nested table's rows belong to its cell
        cells = [cell for cell in tr if cell.tag in ("td", "th")]
        if any(_inline(cell) for cell in cells):
            rows.append(tuple(_inline(cell) for cell in cells))
            tags.append((tuple(cell.tag for cell in cells), any(a.tag == "thead" for a in tr.iterancestors())))
    if not rows:
        return Table(())
    (first, in_head), rest = tags[0], tags[1:]
    if in_head or (set(first) == {"th"} and len(rows) > 1):
        return Table(tuple(rows), True)
    if rest and all(t[0] == "th" for t, _ in tags):
        return Table(tuple(rows), False)
    return Table(tuple(rows))

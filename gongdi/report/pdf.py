"""The yearly report as PDF with reportlab: its built-in Chinese font, the same sentences, charts and tables."""
from __future__ import annotations

import io
import itertools
from html import escape
from typing import Any

from reportlab.graphics.shapes import Drawing, Group, String
from reportlab.graphics.shapes import Line as RLine
from reportlab.graphics.shapes import Rect as RRect
from reportlab.lib.colors import HexColor
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Table as RTable

from gongdi.report.charts import Line, Rect, layout
from gongdi.report.model import Report
from gongdi.report.text import Chart, Table, as_of_line, charts, colophon, sections, tables, warnings

# Adobe's CID font for simplified Chinese: reportlab knows its metrics and every PDF reader supplies the glyphs
# (Acrobat, poppler through fontconfig, browsers), so nothing is embedded or installed.
FONT = "STSong-Light"
PRODUCER = "gongdi report"


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=17, wordWrap="CJK", firstLineIndent=21,
                          spaceAfter=4)
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=26, alignment=TA_CENTER,
                                firstLineIndent=0, textColor="#b71c1c", spaceAfter=6),
        "asof": ParagraphStyle("asof", parent=base, fontSize=9.5, alignment=TA_CENTER, firstLineIndent=0,
                               textColor="#555555", spaceAfter=10),
        "warning": ParagraphStyle("warning", parent=base, firstLineIndent=0, textColor="#b71c1c"),
        "h2": ParagraphStyle("h2", parent=base, fontSize=13, leading=20, firstLineIndent=0, textColor="#b71c1c",
                             spaceBefore=10, spaceAfter=4, keepWithNext=1),
        "caption": ParagraphStyle("caption", parent=base, fontSize=10.5, firstLineIndent=0, spaceBefore=6,
                                  keepWithNext=1),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5, firstLineIndent=0, spaceAfter=0),
        "note": ParagraphStyle("note", parent=base, fontSize=8.5, leading=13, firstLineIndent=0,
                               textColor="#777777", spaceBefore=8),
        "body": base,
    }


# Chinese typesetting keeps these off the start of a line; reportlab's own list (for Japanese) lacks the full-width
# comma, semicolon, colon and the like, so a sentence could wrap with "，" first on the line.
CANNOT_START = "，。、；：！？）》」』】〕…·％"


def _line_texts(p: Paragraph) -> list[str]:
    para = p.blPara
    if para.kind == 0:
        return ["".join(line[1]) for line in para.lines]
    return ["".join(w.text for w in line.words) for line in para.lines]


class _Para(Paragraph):
    """A paragraph of plain text that never starts a line with closing punctuation: where reportlab would, the
    character before the punctuation goes to the next line with it (a break put before it), as 避头点 asks."""

    def __init__(self, text: str, style: ParagraphStyle) -> None:
        self._plain, self._breaks, self._given = text, (), style
        super().__init__(escape(text, quote=False), style)

    def _markup(self) -> str:
        cuts = (0, *self._breaks, len(self._plain))
        return "<br/>".join(escape(self._plain[a:b], quote=False) for a, b in itertools.pairwise(cuts))

    def _next_break(self, lines: list[str]) -> int | None:
        """Where to break before the first line that starts with closing punctuation, after the breaks made."""
        start = 0
        for before, line in itertools.pairwise(lines):
            previous, start = start, start + len(before)
            if start <= max((0, *self._breaks)) or line[0] not in CANNOT_START:
                continue
            cut = start - 1
            while cut > previous and self._plain[cut] in CANNOT_START:
                cut -= 1
            if cut > previous:
                return cut
        return None

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        size = super().wrap(availWidth, availHeight)
        while "".join(lines := _line_texts(self)) == self._plain and (cut := self._next_break(lines)) is not None:
            self._breaks = (*self._breaks, cut)
            Paragraph.__init__(self, self._markup(), self._given)
            size = super().wrap(availWidth, availHeight)
        return size


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text: reportlab reads its text as markup, and a name may hold `&` or `<`."""
    return _Para(text, style)


def drawing(chart: Chart, width: float) -> Drawing:
    """The chart's layout (gongdi.report.charts) as a reportlab drawing `width` points wide, y turned upwards."""
    w, h, shapes = layout(chart)
    scale = width / w
    group = Group()
    for s in shapes:
        if isinstance(s, Rect):
            group.add(RRect(s.x, h - s.y - s.h, s.w, s.h, fillColor=HexColor(s.fill), strokeColor=None))
        elif isinstance(s, Line):
            group.add(RLine(s.x1, h - s.y1, s.x2, h - s.y2, strokeColor=HexColor(s.stroke), strokeWidth=0.8))
        else:
            group.add(String(s.x, h - s.y, s.text, fontName=FONT, fontSize=s.size, textAnchor=s.anchor,
                             fillColor=HexColor(s.fill)))
    group.scale(scale, scale)
    d = Drawing(width, h * scale)
    d.add(group)
    return d


def _table(t: Table, styles: dict[str, ParagraphStyle], width: float) -> RTable:
    cell = styles["cell"]

    def row(cells: tuple[str, ...]) -> list[Any]:
        return [_p(c, cell) if not i else c for i, c in enumerate(cells)]

    rows: list[list[Any]] = [[_p(h, cell) for h in t.header]]
    rows += [row(r) for r in t.rows] or [["无"]]
    if t.total:
        rows.append(row(t.total))
    first = min(width * 0.2, 90.0) if len(t.header) > 4 else width / len(t.header)
    rest = (width - first) / max(len(t.header) - 1, 1)
    table = RTable(rows, colWidths=[first] + [rest] * (len(t.header) - 1), repeatRows=1)
    style = [("FONT", (0, 0), (-1, -1), FONT, 7.5), ("GRID", (0, 0), (-1, -1), 0.4, HexColor("#999999")),
             ("BACKGROUND", (0, 0), (-1, 0), HexColor("#f3e5e5")), ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]
    if t.total:
        style.append(("BACKGROUND", (0, -1), (-1, -1), HexColor("#faf5f5")))
    table.setStyle(TableStyle(style))
    return table


def render_pdf(r: Report) -> bytes:
    """The report's PDF; `invariant` fixes the dates and the document id, so the same report gives the same
    bytes."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    styles = _styles()
    title = f"{r.city_name}{r.year}年度工地党建工作报告"
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=title, author=r.city_name, subject=as_of_line(r),
                            creator=PRODUCER, producer=PRODUCER, keywords="", invariant=1)
    story: list[Any] = [_p(title, styles["title"]), _p(as_of_line(r), styles["asof"])]
    story += [_p(w, styles["warning"]) for w in warnings(r)]
    for s in sections(r):
        story.append(_p(s.title, styles["h2"]))
        story += [_p(p, styles["body"]) for p in s.paragraphs]
    story.append(_p("图表", styles["h2"]))
    for c in charts(r):
        story.append(KeepTogether([_p(c.title, styles["caption"]), drawing(c, doc.width * 0.92),
                                   Spacer(1, 6)]))
    story.append(_p("统计表", styles["h2"]))
    for t in tables(r):
        story += [_p(t.title, styles["caption"]), _table(t, styles, doc.width), Spacer(1, 8)]
    story.append(_p(colophon(r), styles["note"]))

    def page(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawCentredString(A4[0] / 2, 9 * mm, f"{title}　第 {document.page} 页")
        canvas.restoreState()

    doc.build(story, onFirstPage=page, onLaterPages=page)
    return buffer.getvalue()

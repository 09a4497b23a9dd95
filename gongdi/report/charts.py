"""Bar charts laid out once as rectangles, lines and text, then written as inline SVG or a reportlab drawing."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from gongdi.report.text import Chart, grouped

WIDTH = 480.0
ROW = 18.0
BAR = 12.0
FONT = 9.0
INK, RULE = "#333333", "#bbbbbb"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    text: str
    size: float
    anchor: str  # start, middle, end
    fill: str = INK


Shape = Rect | Line | Text


def text_width(text: str, size: float) -> float:
    """An estimate good enough for layout, the same for the browser and the PDF: CJK is square, the rest narrow."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.56 for ch in text)


def layout(chart: Chart) -> tuple[float, float, list[Shape]]:
    """Horizontal bars, one row per label, series stacked left to right, the total at each bar's end."""
    shapes: list[Shape] = []
    y = 4.0
    if len(chart.series) > 1:  # a legend
        x = 0.0
        for s in chart.series:
            shapes.append(Rect(x, y, 9, 9, s.color))
            shapes.append(Text(x + 12, y + 8, s.name, FONT, "start"))
            x += 12 + text_width(s.name, FONT) + 14
        y += 16
    label_w = max((text_width(label, FONT) for label in chart.labels), default=0) + 8
    totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.labels))]
    ends = chart.ends or tuple(f"{grouped(t)}{chart.unit}" for t in totals)
    value_w = max((text_width(e, FONT) for e in ends), default=0) + 6
    span = WIDTH - label_w - value_w
    top = max(totals, default=0) or 1
    first = y
    for i, label in enumerate(chart.labels):
        shapes.append(Text(label_w - 6, y + BAR - 2.5, label, FONT, "end"))
        x = label_w
        for s in chart.series:
            w = span * s.values[i] / top
            if w > 0:
                shapes.append(Rect(round(x, 2), y, round(w, 2), BAR, s.color))
            x += w
        shapes.append(Text(round(x + 4, 2), y + BAR - 2.5, ends[i], FONT, "start"))
        y += ROW
    shapes.append(Line(label_w, first - 3, label_w, y - ROW + BAR + 3, RULE))
    return WIDTH, y + 2, shapes


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def svg(chart: Chart) -> str:
    """The chart as an inline SVG element: no script, no external font or file."""
    width, height, shapes = layout(chart)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" role="img"'
           f' aria-label="{escape(chart.title)}" class="chart">']
    for s in shapes:
        if isinstance(s, Rect):
            out.append(f'<rect x="{_n(s.x)}" y="{_n(s.y)}" width="{_n(s.w)}" height="{_n(s.h)}" fill="{s.fill}"/>')
        elif isinstance(s, Line):
            out.append(f'<line x1="{_n(s.x1)}" y1="{_n(s.y1)}" x2="{_n(s.x2)}" y2="{_n(s.y2)}"'
                       f' stroke="{s.stroke}" stroke-width="0.8"/>')
        else:
            out.append(f'<text x="{_n(s.x)}" y="{_n(s.y)}" font-size="{_n(s.size)}" text-anchor="{s.anchor}"'
                       f' fill="{s.fill}">{escape(s.text)}</text>')
    out.append("</svg>")
    return "\n".join(out)

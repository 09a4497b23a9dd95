"""The yearly report as one self-contained HTML file: inline CSS and SVG charts, no script, no outside asset."""
from __future__ import annotations

from html import escape

from gongdi.report.charts import svg
from gongdi.report.model import Report
from gongdi.report.text import Table, as_of_line, charts, colophon, sections, tables, warnings

# The system's CJK fonts; nothing is downloaded (the report is read on intranets and printed).
CSS = """
body { font-family: "Noto Serif CJK SC", "Source Han Serif SC", "Songti SC", "SimSun", serif; color: #222;
       max-width: 60em; margin: 2em auto; padding: 0 1.5em; line-height: 1.8; background: #fff; }
h1 { color: #b71c1c; text-align: center; font-size: 1.7em; margin-bottom: 0.2em; }
.asof { text-align: center; color: #555; margin-top: 0; }
.warning { color: #b71c1c; border: 1px solid #b71c1c; padding: 0.4em 0.8em; }
h2 { color: #b71c1c; font-size: 1.2em; border-bottom: 2px solid #b71c1c; padding-bottom: 0.15em; margin-top: 1.6em; }
p { text-indent: 2em; margin: 0.5em 0; }
figure { margin: 1em 0 1.6em; }
figcaption { font-weight: bold; margin-bottom: 0.3em; }
svg.chart { width: 100%; max-width: 46em; height: auto;
            font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif; }
table { border-collapse: collapse; width: 100%; font-size: 0.85em; margin: 0.5em 0 1.5em; }
caption { font-weight: bold; text-align: left; padding: 0.3em 0; font-size: 1.1em; }
th, td { border: 1px solid #999; padding: 0.2em 0.4em; }
th { background: #f3e5e5; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #faf5f5; }
footer { color: #777; font-size: 0.85em; border-top: 1px solid #ccc; margin-top: 2em; padding-top: 0.5em; }
"""


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    rows = [f"<caption>{escape(t.title)}</caption>", f"<thead><tr>{head}</tr></thead>", "<tbody>"]

    def row(cells: tuple[str, ...], cls: str = "") -> str:
        tds = "".join(f'<td class="n">{escape(c)}</td>' if i and _numeric(c) else f"<td>{escape(c)}</td>"
                      for i, c in enumerate(cells))
        return f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>"

    rows += [row(r) for r in t.rows] or [f'<tr><td colspan="{len(t.header)}">无</td></tr>']
    if t.total:
        rows.append(row(t.total, "total"))
    rows.append("</tbody>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _numeric(cell: str) -> bool:
    return bool(cell) and cell.replace(",", "").replace(".", "").isdigit()


def render_html(r: Report) -> str:
    """The whole page; the same report gives the same text (no clock, no random id, everything in order)."""
    title = f"{r.city_name}{r.year}年度工地党建工作报告"
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             f"<h1>{escape(title)}</h1>", f'<p class="asof">{escape(as_of_line(r))}</p>']
    parts += [f'<p class="warning">{escape(w)}</p>' for w in warnings(r)]
    for s in sections(r):
        parts.append(f"<h2>{escape(s.title)}</h2>")
        parts += [f"<p>{escape(p)}</p>" for p in s.paragraphs]
    parts.append("<h2>图表</h2>")
    for c in charts(r):
        parts.append(f"<figure><figcaption>{escape(c.title)}</figcaption>\n{svg(c)}\n</figure>")
    parts.append("<h2>统计表</h2>")
    parts += [_table(t) for t in tables(r)]
    parts.append(f"<footer>{escape(colophon(r))}</footer>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)

"""Sections as file bytes: an Excel workbook with one sheet per section (openpyxl), or one CSV in UTF-8 with a
byte-order mark, which Excel opens as Chinese text (the csv module)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from gongdi.sheets.columns import FORMULA_START
from gongdi.sheets.export import Cell, Section

XLSX = "xlsx"
CSV = "csv"
MEDIA_TYPES = {XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               CSV: "text/csv; charset=utf-8"}
BOM = "\ufeff"
# Column widths in Excel's units (about one Latin character): by the longest cell, a Chinese character counting two,
# within bounds so that one long note does not push the rest of the table off the screen.
MIN_WIDTH, MAX_WIDTH, PADDING = 6, 60, 2
DAY_FORMAT = "yyyy-mm-dd"
MOMENT_FORMAT = "yyyy-mm-dd hh:mm:ss"
SHEET_NAME_MAX = 31  # Excel's limit
NOT_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="FFF2E0E0")
CREATOR = "工地党建平台"


def text_width(text: str) -> int:
    """Columns the text takes on screen: a wide (Chinese) character two, any other one."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def plain(value: Decimal | float) -> str:
    """A decimal as people write it: 1200.5, 20000, never 2E+4."""
    text = format(Decimal(str(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def shown(value: Cell) -> str:
    """A cell as text: what the CSV holds and what a column's width is measured by."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal | float):
        return plain(value)
    return str(value)


def csv_text(value: Cell) -> str:
    text = shown(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text  # how Excel itself marks text; a reader of the CSV drops the mark again
    return text


def to_csv(sections: Sequence[Section]) -> bytes:
    """One CSV for all sections. A single section is a plain table (header row first, so a list imports as it is);
    several get a title row 【标题】 each, a blank row between them: one file Excel opens by a double click."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)  # Excel's dialect: commas, CRLF, quotes where needed
    titled = len(sections) > 1
    for i, s in enumerate(sections):
        if titled:
            if i:
                writer.writerow([])
            writer.writerow([f"【{s.title}】"])
        writer.writerow(s.headers)
        writer.writerows([csv_text(v) for v in row] for row in s.rows)
    return (BOM + out.getvalue()).encode("utf-8")


def sheet_name(title: str, used: set[str]) -> str:
    """The section's title as a sheet name Excel accepts: no []:*?/\\, at most 31 characters, unique in the book."""
    base = NOT_IN_SHEET_NAMES.sub("_", title).strip("'") or "表"
    name, n = base[:SHEET_NAME_MAX], 1
    while name.lower() in used:
        n += 1
        suffix = f"({n})"
        name = base[:SHEET_NAME_MAX - len(suffix)] + suffix
    used.add(name.lower())
    return name


def to_xlsx(sections: Sequence[Section], title: str | None = None) -> bytes:
    """One sheet per section: a bold header row frozen in place and filterable, numbers as numbers, days as dates,
    columns as wide as their longest cell."""
    book = Workbook()
    book.remove(book.active)
    book.properties.creator = CREATOR
    if title:
        book.properties.title = title
    used: set[str] = set()
    for s in sections:
        sheet = book.create_sheet(sheet_name(s.title, used))
        widths = [text_width(h) for h in s.headers]
        for c, header in enumerate(s.headers, 1):
            cell = sheet.cell(row=1, column=c, value=header)
            cell.font, cell.fill = HEADER_FONT, HEADER_FILL
            cell.alignment = Alignment(vertical="center")
        for r, row in enumerate(s.rows, 2):
            for c, value in enumerate(row, 1):
                cell = sheet.cell(row=r, column=c)
                cell.value = "是" if value is True else "否" if value is False else value
                if cell.data_type == "f":  # text beginning with "=" stays text: a name is never run as a formula
                    cell.data_type = "s"
                if isinstance(value, dt.datetime):
                    cell.number_format = MOMENT_FORMAT
                elif isinstance(value, dt.date):
                    cell.number_format = DAY_FORMAT
                if c <= len(widths):
                    widths[c - 1] = max(widths[c - 1], text_width(shown(value)))
                else:
                    widths.append(text_width(shown(value)))
        for c, w in enumerate(widths, 1):
            sheet.column_dimensions[get_column_letter(c)].width = min(MAX_WIDTH, max(MIN_WIDTH, w + PADDING))
        sheet.freeze_panes = "A2"
        if s.headers:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(s.headers))}{len(s.rows) + 1}"
    if not sections:
        book.create_sheet("表")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write(sections: Sequence[Section], format: str, title: str | None = None) -> bytes:
    """The file's bytes in `format` (xlsx or csv)."""
    if format == XLSX:
        return to_xlsx(sections, title)
    if format == CSV:
        return to_csv(sections)
    raise ValueError(f"no such format {format!r}: {XLSX} or {CSV}")

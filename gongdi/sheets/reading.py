"""An uploaded .xlsx or .csv → its header row found and its rows as dicts keyed by the known headers.

What people's files look like is taken as it comes: a title row (or several) above the header, columns in any order
and under other names (columns.HEADER_ALIASES), extra columns, merged cells (each cell of a merge reads as its
top-left value), blank rows, CSV in UTF-8 with or without BOM, GBK/GB18030 or UTF-16, comma- or tab-separated. What
is not a spreadsheet, or too big, is refused with a `SheetError` (a code and a Chinese message) before anything
else looks at it."""
from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.worksheet import Worksheet

from gongdi.sheets.cells import blank
from gongdi.sheets.columns import FORMULA_START

MAX_BYTES = 10 * 1024 * 1024  # a roster of thousands is a few hundred KiB
MAX_UNZIPPED = 200 * 1024 * 1024  # what an .xlsx may unpack to (a zip bomb stops here)
MAX_ZIP_ENTRIES = 2_000
MAX_ROWS = 20_000  # data rows of one file
MAX_SHEET_ROWS = 200_000  # rows a worksheet may claim, blank ones included
MAX_COLUMNS = 200
HEADER_SEARCH = 30  # rows looked at for the header: title rows and notes above it
MIN_HEADERS = 2  # known headers a row needs to count as the header row

_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and any Office file protected by a password
# What a broken or hostile .xlsx makes openpyxl raise; each is answered NOT_A_SPREADSHEET.
_XLSX_BROKEN = (InvalidFileException, zipfile.BadZipFile, zlib.error, KeyError, ValueError, TypeError, IndexError,
                AttributeError, SyntaxError, EOFError, OSError)


class SheetError(Exception):
    """The file as a whole cannot be read: a machine `code` and what to do about it in Chinese."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Uncomputed:
    """A formula cell whose result the file does not hold (written by a program, never saved by Excel or WPS):
    refused as such by the importer (gongdi.sheets.cells.UNCOMPUTED_FORMULA), not read as a blank cell."""

    formula: str


@dataclass(frozen=True)
class Row:
    number: int  # the row's number as the spreadsheet shows it (a CSV: its record number, from 1)
    values: dict[str, Any]  # known header → the cell's value (None when blank or the column is absent)
    extra: dict[str, Any]  # other columns, by their header as written


@dataclass(frozen=True)
class Sheet:
    format: str  # "xlsx" or "csv"
    name: str | None  # the worksheet's title (xlsx)
    header_row: int  # its number as the spreadsheet shows it
    headers: list[str]  # the header row as written
    columns: dict[str, int]  # known header → 0-based column index
    rows: list[Row]
    encoding: str | None = None  # a CSV's
    delimiter: str = ","
    records: list[list[str]] = field(default_factory=list)  # a CSV's every record, for the result file
    others: tuple[str, ...] = ()  # other worksheets with a header of their own: not read, said in the summary


def header_key(value: Any) -> str:
    """A header compared as a person means it: spaces, * and （必填） marks dropped, full-width forms folded."""
    if value is None:
        return ""
    text = "".join(unicodedata.normalize("NFKC", str(value)).split())
    for mark in ("(必填)", "(选填)", "(可空)", "(可不填)", "*"):
        text = text.replace(mark, "")
    return text.casefold()


def read_sheet(data: bytes, filename: str, known: Mapping[str, str]) -> Sheet:
    """`known`: header_key of each accepted header → the canonical header it stands for."""
    if not data:
        raise SheetError("EMPTY_FILE", "文件是空的")
    if len(data) > MAX_BYTES:
        raise SheetError("FILE_TOO_LARGE", f"文件超过 {MAX_BYTES // (1024 * 1024)} MB，请分成几个文件导入")
    if data.startswith(_OLE):
        raise SheetError("OLD_EXCEL_FORMAT",
                         "这是旧版 .xls 或加了密码的文件，请在 Excel 中“另存为” .xlsx 或 .csv 后再导入")
    if data.startswith(_ZIP):
        return _read_xlsx(data, known)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise SheetError("NOT_A_SPREADSHEET", "文件扩展名是 .xlsx，内容却不是 Excel 工作簿")
    return _read_csv(data, known)


# ---- headers ------------------------------------------------------------------------------------------------------


def _match(row: Sequence[Any], known: Mapping[str, str]) -> dict[str, int]:
    """Known header → column of one candidate header row. The header's own words win over an alias (a roster with
    both 工段 and 工段/班组 reads 工段/班组); between two aliases the first column does."""
    exact: dict[str, int] = {}
    alias: dict[str, int] = {}
    for i, cell in enumerate(row):
        key = header_key(cell)
        canonical = known.get(key)
        if canonical is None:
            continue
        if key == header_key(canonical):
            if canonical in exact:
                raise SheetError("DUPLICATE_COLUMN", f"表头“{canonical}”出现了两次（第 {exact[canonical] + 1} 列和"
                                 f"第 {i + 1} 列），请删去一列")
            exact[canonical] = i
        else:
            alias.setdefault(canonical, i)
    return {**alias, **exact}


def _find_header(grid: Sequence[Sequence[Any]], known: Mapping[str, str]) -> tuple[int, dict[str, int]] | None:
    """The first row among the first HEADER_SEARCH with the most known headers (at least MIN_HEADERS)."""
    best: tuple[int, dict[str, int]] | None = None
    for i, row in enumerate(grid[:HEADER_SEARCH]):
        try:
            columns = _match(row, known)
        except SheetError:
            if len({known.get(header_key(c)) for c in row} - {None}) >= MIN_HEADERS:
                raise  # a real header row with a column twice
            continue
        if len(columns) >= MIN_HEADERS and (best is None or len(columns) > len(best[1])):
            best = (i, columns)
    return best


def _header_missing(known: Mapping[str, str]) -> SheetError:
    wanted = "、".join(dict.fromkeys(known.values()))
    return SheetError("HEADER_NOT_FOUND", f"没有找到表头行：前 {HEADER_SEARCH} 行中没有一行含有这些列名中的至少"
                      f" {MIN_HEADERS} 个：{wanted}。请用模板的列名")


def _rows(grid: Sequence[Sequence[Any]], header_index: int, columns: dict[str, int]) -> Sheet:
    """The rows under the header (row numbers as the spreadsheet shows them: index + 1)."""
    headers = [_header_text(c) for c in grid[header_index]]
    extra_columns = {i: name or f"第{get_column_letter(i + 1)}列" for i, name in enumerate(headers)
                     if i not in columns.values()}
    rows: list[Row] = []
    for i in range(header_index + 1, len(grid)):
        cells = grid[i]
        if all(blank(c) for c in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise SheetError("TOO_MANY_ROWS", f"数据超过 {MAX_ROWS:,} 行，请分成几个文件导入")
        values = {name: cells[c] if c < len(cells) and not blank(cells[c]) else None for name, c in columns.items()}
        extra = {name: cells[c] for c, name in extra_columns.items() if c < len(cells) and not blank(cells[c])}
        rows.append(Row(i + 1, values, extra))
    return Sheet(format="", name=None, header_row=header_index + 1, headers=headers, columns=columns,
                 rows=rows)


def _header_text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


# ---- xlsx ---------------------------------------------------------------------------------------------------------


def _read_xlsx(data: bytes, known: Mapping[str, str]) -> Sheet:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise SheetError("NOT_A_SPREADSHEET", "文件已损坏或不是 Excel 工作簿 (.xlsx)") from exc
    if len(entries) > MAX_ZIP_ENTRIES or sum(e.file_size for e in entries) > MAX_UNZIPPED:
        raise SheetError("FILE_TOO_LARGE", "工作簿解压后过大，请分成几个文件导入")
    try:
        book = load_workbook(io.BytesIO(data), data_only=True)  # not read-only: merged cells need the full model
    except _XLSX_BROKEN as exc:
        raise SheetError("NOT_A_SPREADSHEET", "无法读取这个工作簿：文件已损坏，或不是 .xlsx 格式（.xls、.ods、.numbers"
                         " 请先另存为 .xlsx）") from exc
    try:
        sheets = [ws for ws in (book.active, *(w for w in book.worksheets if w is not book.active))
                  if isinstance(ws, Worksheet)]  # not a chart sheet
        formulas = _formula_book(data, entries)
        for n, ws in enumerate(sheets):
            grid = _grid(ws, formulas[ws.title] if formulas is not None else None)
            found = _find_header(grid, known)
            if found is not None:
                # A workbook with a roster per worksheet: the first is read, the others are named in the summary
                # (before, they were left out without a word).
                others = tuple(w.title for w in sheets[n + 1:] if _find_header(_grid(w), known) is not None)
                return replace(_rows(grid, found[0], found[1]), format="xlsx", name=ws.title, others=others)
        raise _header_missing(known)
    finally:
        book.close()


def _formula_book(data: bytes, entries: Sequence[zipfile.ZipInfo]) -> Any:
    """The workbook's formulas (a second reading), when some worksheet has one: a formula without its result reads
    None among the values, the same as a blank cell."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if not any(e.filename.startswith("xl/worksheets/") and b"<f" in archive.read(e) for e in entries):
            return None
    return load_workbook(io.BytesIO(data), data_only=False)


def _grid(ws: Worksheet, formulas: Worksheet | None = None) -> list[list[Any]]:
    """The worksheet's values, each merged range filled with its top-left value; a formula without its result is
    `Uncomputed`."""
    if ws.max_row > MAX_SHEET_ROWS:
        raise SheetError("TOO_MANY_ROWS", f"工作表“{ws.title}”有 {ws.max_row:,} 行，超过上限，请删去空行或分成几个文件")
    width = min(ws.max_column, MAX_COLUMNS)
    grid = [list(r) for r in ws.iter_rows(max_col=width, values_only=True)]
    if formulas is not None:
        for row, written in zip(grid, formulas.iter_rows(max_col=width, values_only=True), strict=False):
            for c, (value, formula) in enumerate(zip(row, written, strict=False)):
                text = getattr(formula, "text", formula)  # an array formula is an object with its text
                if value is None and isinstance(text, str) and text.startswith("="):
                    row[c] = Uncomputed(text)
    for merged in ws.merged_cells.ranges:
        if merged.min_row > len(grid) or merged.min_col > width:
            continue  # beyond the cells read
        top = grid[merged.min_row - 1][merged.min_col - 1]
        for r in range(merged.min_row - 1, min(merged.max_row, len(grid))):
            for c in range(merged.min_col - 1, min(merged.max_col, width)):
                grid[r][c] = top
    return [[_cell(v) for v in row] for row in grid]


def _cell(value: Any) -> Any:
    # A formula whose cached value was never computed (a file written by a program, not saved by Excel) reads None;
    # error values (#N/A) read as text and are refused by the column's rule.
    return value.date() if isinstance(value, dt.datetime) and value.time() == dt.time() else value


# ---- csv ----------------------------------------------------------------------------------------------------------

_DELIMITERS = (",", "\t", ";")


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]  # Excel's “Unicode text”
    elif b"\x00" in data:
        raise SheetError("NOT_A_SPREADSHEET", "文件不是 Excel 工作簿 (.xlsx)，也不是 CSV 文本")
    else:
        encodings = ["utf-8", "gb18030"]  # GB18030 reads every GBK file
    for encoding in encodings:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise SheetError("UNREADABLE_ENCODING", "无法识别 CSV 的文字编码，请用 UTF-8 或 GBK 保存")


def _unguarded(text: str) -> str:
    """A CSV cell without the ' the export puts before text that would read as a formula."""
    return text[1:] if text[:1] == "'" and text[1:2] and text[1:2] in FORMULA_START else text


def _read_csv(data: bytes, known: Mapping[str, str]) -> Sheet:
    text, encoding = _decode(data)
    if "\x00" in text:
        raise SheetError("NOT_A_SPREADSHEET", "文件不是 Excel 工作簿 (.xlsx)，也不是 CSV 文本")
    best: tuple[int, str, list[list[str]], tuple[int, dict[str, int]]] | None = None
    for delimiter in _DELIMITERS:
        try:
            records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as exc:
            raise SheetError("NOT_A_SPREADSHEET", "CSV 格式有误（引号不成对或某一格过长）") from exc
        if len(records) > MAX_SHEET_ROWS:
            raise SheetError("TOO_MANY_ROWS", f"数据超过 {MAX_ROWS:,} 行，请分成几个文件导入")
        records = [[_unguarded(c) for c in r[:MAX_COLUMNS]] for r in records]
        found = _find_header(records, known)
        if found is not None and (best is None or len(found[1]) > best[0]):
            best = (len(found[1]), delimiter, records, found)
    if best is None:
        raise _header_missing(known)
    _, delimiter, records, (header_index, columns) = best
    return replace(_rows(records, header_index, columns), format="csv", encoding=encoding, delimiter=delimiter,
                   records=records)

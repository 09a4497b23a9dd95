"""Files as people keep them, built here with openpyxl and csv: the header row found below a title, merged cells
filled, blank rows skipped, extra columns kept, columns in any order and under other names, CSV in several encodings;
and what is no spreadsheet (or too big) refused with a code before anything reads further."""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from typing import Any

import pytest
from openpyxl import Workbook

from gongdi.sheets import reading
from gongdi.sheets.columns import MEMBER_COLUMNS, SITE_COLUMNS
from gongdi.sheets.importing import KINDS
from gongdi.sheets.reading import SheetError, Uncomputed, header_key, read_sheet

MEMBERS = KINDS["members"].known
SITES = KINDS["sites"].known
HEADERS = [h for h, _ in MEMBER_COLUMNS]
ROW = ["xm-002", "m1", "张三", "男", "2010-07-01", "正式", "施工单位", "中交三航局", "农民工", "一工段", "某村党支部",
       "流动", "2020-06-01"]


def xlsx(rows: list[list[Any]], merge: list[str] = (), title: str = "花名册", more: dict | None = None) -> bytes:
    book = Workbook()
    ws = book.active
    ws.title = title
    for row in rows:
        ws.append(row)
    for cells in merge:
        ws.merge_cells(cells)
    for name, other in (more or {}).items():
        sheet = book.create_sheet(name)
        for row in other:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_text(rows: list[list[Any]], delimiter: str = ",") -> str:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def refused(data: bytes, filename: str = "x.xlsx", known: dict = MEMBERS) -> SheetError:
    with pytest.raises(SheetError) as caught:
        read_sheet(data, filename, known)
    return caught.value


# ---- xlsx -----------------------------------------------------------------------------------------------------


def test_a_plain_roster_reads_by_header():
    sheet = read_sheet(xlsx([HEADERS, ROW]), "r.xlsx", MEMBERS)
    assert (sheet.format, sheet.name, sheet.header_row) == ("xlsx", "花名册", 1)
    [row] = sheet.rows
    assert row.number == 2 and row.values["姓名"] == "张三" and row.values["进场日期"] == "2020-06-01"
    assert row.extra == {}


def test_a_title_row_and_a_merged_title_above_the_header():
    data = xlsx([["福鼎市重点项目党员花名册"], ["填报单位：白琳镇", None, "2020年6月"], HEADERS, ROW], merge=["A1:M1"])
    sheet = read_sheet(data, "r.xlsx", MEMBERS)
    assert sheet.header_row == 3
    assert [r.number for r in sheet.rows] == [4]


def test_merged_cells_read_as_their_top_left_value():
    rows = [HEADERS, ROW, ["", "m2", "李四", *ROW[3:]], ["", "m3", "王五", *ROW[3:]]]
    sheet = read_sheet(xlsx(rows, merge=["A2:A4", "K2:K4"]), "r.xlsx", MEMBERS)
    assert [r.values["工地编号"] for r in sheet.rows] == ["xm-002"] * 3
    assert [r.values["原党组织"] for r in sheet.rows] == ["某村党支部"] * 3


def test_columns_beyond_the_limit_and_their_merges_are_left_out(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(reading, "MAX_COLUMNS", len(HEADERS) + 1)
    rows = [[*HEADERS, "备注", "多余1", "多余2"], [*ROW, "a", "b", "c"], [*ROW[:2], "李四", *ROW[3:], "d", "e", "f"]]
    sheet = read_sheet(xlsx(rows, merge=["O2:P3", "A2:A3"]), "r.xlsx", MEMBERS)
    assert [r.extra for r in sheet.rows] == [{"备注": "a"}, {"备注": "d"}]
    assert [r.values["工地编号"] for r in sheet.rows] == ["xm-002", "xm-002"]


def test_blank_rows_are_skipped_and_row_numbers_stay_the_spreadsheets():
    rows = [HEADERS, ROW, [], [None] * 13, ["", "  ", "\u3000"], ["xm-002", "m2", "李四", *ROW[3:]]]
    sheet = read_sheet(xlsx(rows), "r.xlsx", MEMBERS)
    assert [(r.number, r.values["姓名"]) for r in sheet.rows] == [(2, "张三"), (6, "李四")]


def test_extra_columns_are_kept_and_columns_may_come_in_any_order():
    headers = ["序号", *reversed(HEADERS), "备注"]
    sheet = read_sheet(xlsx([headers, [1, *reversed(ROW), "班长"]]), "r.xlsx", MEMBERS)
    [row] = sheet.rows
    assert row.values["姓名"] == "张三" and row.values["工地编号"] == "xm-002"
    assert row.extra == {"序号": 1, "备注": "班长"}
    assert sheet.columns["工地编号"] == 13


def test_headers_with_spaces_marks_full_width_forms_and_other_names():
    headers = ["工地 编号", "*姓名", "性　别", "入党时间", "党员类别", "单位类型", "单位名称（必填）", "岗位",
               "工段／班组", "原党组织", "组织关系", "进场时间"]
    sheet = read_sheet(xlsx([headers, ["xm-002", *ROW[2:]]]), "r.xlsx", MEMBERS)
    assert set(sheet.columns) == set(HEADERS) - {"党员编号"}
    assert sheet.rows[0].values["入党日期"] == "2010-07-01"


def test_the_headers_own_words_win_over_an_alias():
    headers = ["工段", *HEADERS]
    sheet = read_sheet(xlsx([headers, ["二工段", *ROW]]), "r.xlsx", MEMBERS)
    assert sheet.rows[0].values["工段/班组"] == "一工段"
    assert sheet.rows[0].extra == {"工段": "二工段"}


def test_a_column_twice_is_refused():
    error = refused(xlsx([[*HEADERS, "姓名"], [*ROW, "李四"]]))
    assert error.code == "DUPLICATE_COLUMN" and "姓名" in error.message


def test_date_cells_and_numbers_come_as_cells():
    row = [*ROW[:4], dt.datetime(2010, 7, 1), *ROW[5:12], 43983]
    cell = read_sheet(xlsx([HEADERS, row]), "r.xlsx", MEMBERS).rows[0].values
    assert cell["入党日期"] == dt.date(2010, 7, 1) and cell["进场日期"] == 43983


def test_the_sheet_with_the_header_is_found_among_several():
    data = xlsx([["说明：请在第二个工作表填写"]], title="说明", more={"党员": [HEADERS, ROW]})
    sheet = read_sheet(data, "r.xlsx", MEMBERS)
    assert sheet.name == "党员" and len(sheet.rows) == 1


def test_a_formula_reads_as_its_cached_value_or_as_uncomputed():
    data = xlsx([HEADERS, [*ROW[:2], "=CONCAT(\"张\",\"三\")", *ROW[3:]]])
    # Written by a program, never computed: not a blank cell (before, refused as 必填), but a formula without result.
    assert read_sheet(data, "r.xlsx", MEMBERS).rows[0].values["姓名"] == Uncomputed('=CONCAT("张","三")')


def test_no_header_row_is_refused_naming_the_columns_wanted():
    error = refused(xlsx([["a", "b"], [1, 2]]))
    assert error.code == "HEADER_NOT_FOUND" and "姓名" in error.message


def test_a_project_list_is_read_with_its_own_columns():
    headers = [h for h, _ in SITE_COLUMNS]
    sheet = read_sheet(xlsx([headers, ["", "大桥", "白琳镇", "交通运输局", "9,000", 30, "2020-06-01", "a", "b", "c",
                                       "d"]]), "s.xlsx", SITES)
    assert sheet.rows[0].values["总投资(万元)"] == "9,000"
    assert sheet.rows[0].values["工地编号"] is None


# ---- csv ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "prefix"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gbk", b""),
                                                  ("gb18030", b""), ("utf-16", b"")])
def test_csv_in_the_encodings_excel_and_wps_write(encoding, prefix):
    data = prefix + csv_text([HEADERS, ROW]).encode(encoding)
    sheet = read_sheet(data, "r.csv", MEMBERS)
    assert sheet.format == "csv" and sheet.rows[0].values["姓名"] == "张三"
    assert sheet.rows[0].values["原党组织"] == "某村党支部"


def test_a_tab_separated_file_and_a_title_line():
    data = csv_text([["党员花名册"], [], HEADERS, ROW], delimiter="\t").encode()
    sheet = read_sheet(data, "r.txt", MEMBERS)
    assert (sheet.delimiter, sheet.header_row, sheet.rows[0].number) == ("\t", 3, 4)


def test_csv_keeps_every_record_for_the_result_file():
    data = csv_text([["标题"], HEADERS, ROW, [], ROW]).encode()
    sheet = read_sheet(data, "r.csv", MEMBERS)
    assert len(sheet.records) == 5 and [r.number for r in sheet.rows] == [3, 5]


def test_csv_blank_cells_read_as_none():
    data = csv_text([HEADERS, ["xm-002", "", *ROW[2:]]]).encode()
    assert read_sheet(data, "r.csv", MEMBERS).rows[0].values["党员编号"] is None


def test_a_broken_quote_or_an_unknown_encoding_is_refused():
    assert refused(b"\xff\xfe\x00", "r.csv").code in ("NOT_A_SPREADSHEET", "UNREADABLE_ENCODING", "HEADER_NOT_FOUND")
    assert refused(bytes(range(128, 256)) * 10, "r.csv").code in ("UNREADABLE_ENCODING", "HEADER_NOT_FOUND")


# ---- what is no spreadsheet ---------------------------------------------------------------------------------------


def test_an_empty_file():
    assert refused(b"").code == "EMPTY_FILE"


def test_a_file_too_large_is_refused_before_it_is_read():
    assert refused(b"x" * (reading.MAX_BYTES + 1), "r.csv").code == "FILE_TOO_LARGE"


def test_an_old_xls_or_a_password_protected_workbook():
    error = refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "r.xls")
    assert error.code == "OLD_EXCEL_FORMAT" and ".xlsx" in error.message


def test_a_picture_named_xlsx():
    assert refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "r.xlsx").code == "NOT_A_SPREADSHEET"


def test_a_binary_file_named_csv():
    assert refused(b"%PDF-1.4\n\x00\x01\x02", "r.csv").code == "NOT_A_SPREADSHEET"


def test_a_zip_that_is_no_workbook():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "hi")
    assert refused(out.getvalue()).code == "NOT_A_SPREADSHEET"


def test_a_truncated_workbook():
    assert refused(xlsx([HEADERS, ROW])[:500]).code == "NOT_A_SPREADSHEET"


def test_a_zip_bomb_is_refused_by_its_unpacked_size():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\x00" * (reading.MAX_UNZIPPED + 1))
    assert len(out.getvalue()) < reading.MAX_BYTES
    assert refused(out.getvalue()).code == "FILE_TOO_LARGE"


def test_too_many_rows(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(reading, "MAX_ROWS", 3)
    assert refused(xlsx([HEADERS, ROW, ROW, ROW, ROW])).code == "TOO_MANY_ROWS"
    assert refused(csv_text([HEADERS, ROW, ROW, ROW, ROW]).encode(), "r.csv").code == "TOO_MANY_ROWS"


def test_header_keys_fold_what_people_vary():
    assert header_key(" 总投资（万元）* ") == header_key("总投资(万元)")
    assert header_key("工段／班组") == header_key("工段/班组")
    assert header_key(None) == ""


def test_an_xml_entity_bomb_inside_a_workbook_is_refused():
    entities = "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                       for i in range(1, 10))  # lol9 is a billion lols
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lololololololololol">' + entities
              + ']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
              '<c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>')
    source = zipfile.ZipFile(io.BytesIO(xlsx([HEADERS, ROW])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bomb:
        for item in source.infolist():
            data = laughs.encode() if item.filename == "xl/worksheets/sheet1.xml" else source.read(item.filename)
            bomb.writestr(item, data)
    assert refused(out.getvalue()).code == "NOT_A_SPREADSHEET"


def test_the_exports_formula_mark_is_dropped_from_a_csv_cell():
    from gongdi.sheets.workbook import csv_text

    name = "-王五"  # would run as a formula in Excel: the export writes it as '-王五
    data = ("\ufeff" + ",".join(h for h, _ in MEMBER_COLUMNS) + "\n"
            + ",".join(csv_text(name) if h == "姓名" else "x" for h, _ in MEMBER_COLUMNS) + "\n'plain\n").encode()
    sheet = read_sheet(data, "名册.csv", MEMBERS)
    assert csv_text(name) == "'-王五" and sheet.rows[0].values["姓名"] == "-王五"
    assert sheet.rows[1].values["工地编号"] == "'plain"  # a ' before anything else is the writer's own

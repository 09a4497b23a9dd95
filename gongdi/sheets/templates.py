"""The blank roster and project list to fill in: the headers of columns.py, one example row, widths, drop-down lists
for the coded columns, and a sheet saying what each column accepts."""
from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from contracts.city import City
from gongdi.sheets.cells import DATE_FORMS
from gongdi.sheets.columns import GENDER, JOB, MEMBER_COLUMNS, RELATION, SITE_COLUMNS, STATUS, UNIT_KIND

# The example row's name: a row still carrying it is the template's own and is skipped, never imported.
EXAMPLE_MEMBER = "张三（示例）"
EXAMPLE_SITE = "示例大桥工程（示例）"
TITLES = {"members": "党员花名册", "sites": "重点项目清单"}
DATA_ROWS = 5_000  # rows the drop-down lists cover
_HEADER_FILL = PatternFill("solid", fgColor="C8161D")
_EXAMPLE_FONT = Font(italic=True, color="86909C")


def example(kind: str, city: City) -> dict[str, Any]:
    """The example row, by header."""
    township = next(iter(city.townships.values()))
    department = next(iter(city.departments.values()))
    if kind == "members":
        return {"工地编号": "xm-001", "党员编号": "", "姓名": EXAMPLE_MEMBER, "性别": "男",
                "入党日期": dt.date(2010, 7, 1), "党员状态": "正式", "单位类别": "施工单位", "单位名称": "中交某工程局",
                "岗位": "农民工", "工段/班组": "一工段", "原党组织": "某某村党支部", "组织关系": "流动",
                "进场日期": dt.date(2020, 6, 1)}
    return {"工地编号": "", "项目名称": EXAMPLE_SITE, "所属乡镇": township, "主管部门": department,
            "总投资(万元)": 9000, "计划工期(月)": 30, "开工日期": dt.date(2020, 6, 1),
            "建设单位": "某某建设投资有限公司", "设计单位": "某某设计研究院", "施工单位": "中交某工程局",
            "监理单位": "某某监理公司"}


def notes(kind: str, city: City) -> dict[str, str]:
    """What each column accepts, in the words of the 填写说明 sheet."""
    def one_of(named: dict) -> str:
        return "填写：" + "、".join(named.values())

    if kind == "members":
        return {
            "工地编号": "本工地的编号（小写字母、数字、-、_），或工地的项目名称",
            "党员编号": "全市统一的党员编号；可空，空着时按姓名、入党日期、原党组织生成，同一人每次生成相同",
            "姓名": "必填；不要填身份证号、手机号", "性别": one_of(GENDER), "入党日期": f"日期，如 {DATE_FORMS}",
            "党员状态": one_of(STATUS) + "（或 正式党员、预备党员）",
            "单位类别": one_of(UNIT_KIND) + "（业主即建设单位）",
            "单位名称": "必填", "岗位": one_of(JOB), "工段/班组": "必填", "原党组织": "必填",
            "组织关系": one_of(RELATION) + "（或 组织关系转入、流动党员）", "进场日期": f"日期，如 {DATE_FORMS}",
        }
    return {
        "工地编号": "可空，空着时按所属乡镇和项目名称生成，同一项目每次生成相同",
        "项目名称": "必填", "所属乡镇": "乡镇名称或代码：" + "、".join(list(city.townships.values())[:4]) + "…",
        "主管部门": "填写：" + "、".join(city.departments.values()),
        "总投资(万元)": "以万元计，如 9000、9,000、9000万元、0.9亿", "计划工期(月)": "月数，如 30、30个月、2.5年",
        "开工日期": f"日期，如 {DATE_FORMS}", "建设单位": "必填（业主）", "设计单位": "必填", "施工单位": "必填",
        "监理单位": "必填",
    }


_CHOICES = {"性别": GENDER, "党员状态": STATUS, "单位类别": UNIT_KIND, "岗位": JOB, "组织关系": RELATION}


def template(kind: str, city: City) -> bytes:
    """The .xlsx template of `kind` ("members" or "sites")."""
    columns = MEMBER_COLUMNS if kind == "members" else SITE_COLUMNS
    headers = [h for h, _ in columns]
    row = example(kind, city)
    book = Workbook()
    ws = book.active
    ws.title = TITLES[kind]
    ws.append(headers)
    ws.append([row[h] for h in headers])
    for i, header in enumerate(headers, start=1):
        cell = ws.cell(1, i)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
        sample = ws.cell(2, i)
        sample.font = _EXAMPLE_FONT
        if isinstance(row[header], dt.date):
            sample.number_format = "yyyy-mm-dd"
        ws.column_dimensions[get_column_letter(i)].width = max(10, _width(header), _width(row[header])) + 2
    ws.freeze_panes = "A2"
    for header, named in _CHOICES.items():
        if header in headers:
            letter = get_column_letter(headers.index(header) + 1)
            rule = DataValidation(type="list", formula1='"' + ",".join(named.values()) + '"', allow_blank=True)
            rule.error, rule.errorTitle = "请从列表中选择", header
            rule.add(f"{letter}2:{letter}{DATA_ROWS + 1}")
            ws.add_data_validation(rule)
    guide = book.create_sheet("填写说明")
    guide.append(["列名", "填写说明"])
    guide["A1"].font = guide["B1"].font = Font(bold=True)
    for header, note in notes(kind, city).items():
        guide.append([header, note])
    guide.append([])
    guide.append(["说明", f"第 2 行是示例（{row['姓名' if kind == 'members' else '项目名称']}），导入时自动跳过；"
                  "可以在表头上方加标题行，列的顺序可以调整，多余的列会保留在导入结果中。"])
    guide.column_dimensions["A"].width = 16
    guide.column_dimensions["B"].width = 90
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv(kind: str, city: City) -> bytes:
    """The same headers and example row as CSV, UTF-8 with BOM (what Excel opens in Chinese without asking)."""
    columns = MEMBER_COLUMNS if kind == "members" else SITE_COLUMNS
    row = example(kind, city)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([h for h, _ in columns])
    writer.writerow([v.isoformat() if isinstance(v, dt.date) else v for v in (row[h] for h, _ in columns)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _width(value: Any) -> int:
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

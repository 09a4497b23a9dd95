"""Rows → commands without any server: derived ids that stay the same, messy rows understood, bad ones refused by
column, sites found by project name, rows sent in a bounded, ordered way against a fake bus, and the result file."""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import nats.errors
import pytest
from openpyxl import Workbook, load_workbook

from contracts.city import DEFAULT_CITY_FILE, load_city
from contracts.membership import Gender, Job, MemberStatus, RecordArrival, RegisterSite, Relation, UnitKind
from gongdi.sheets import importing
from gongdi.sheets.columns import MEMBER_COLUMNS, SITE_COLUMNS
from gongdi.sheets.importing import (
    ALREADY,
    KINDS,
    RECORDED,
    REFUSED,
    SKIPPED,
    VALID,
    Context,
    Outcome,
    from_reply,
    plan,
    read,
    result_file,
    run_import,
    send_all,
)
from gongdi.sheets.reading import SheetError
from gongdi.sheets.templates import EXAMPLE_MEMBER, template, template_csv

CITY = load_city(DEFAULT_CITY_FILE)
MEMBERS, SITES = KINDS["members"], KINDS["sites"]
M_HEADERS = [h for h, _ in MEMBER_COLUMNS]
S_HEADERS = [h for h, _ in SITE_COLUMNS]


def member(**cells: Any) -> list[Any]:
    row = {"工地编号": "xm-002", "党员编号": "m1", "姓名": "张三", "性别": "男", "入党日期": "2010-07-01",
           "党员状态": "正式", "单位类别": "施工单位", "单位名称": "中交三航局", "岗位": "农民工",
           "工段/班组": "一工段", "原党组织": "某村党支部", "组织关系": "流动", "进场日期": "2020-06-01", **cells}
    return [row[h] for h in M_HEADERS]


def site(**cells: Any) -> list[Any]:
    row = {"工地编号": "", "项目名称": "白琳大桥", "所属乡镇": "白琳镇", "主管部门": "交通运输局",
           "总投资(万元)": "9,000", "计划工期(月)": "30个月", "开工日期": "2020/6/1", "建设单位": "业主公司",
           "设计单位": "设计院", "施工单位": "施工公司", "监理单位": "监理公司", **cells}
    return [row[h] for h in S_HEADERS]


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def planned(kind, rows: list[list[Any]], importer: str = "city", sites: dict | None = None):
    headers = M_HEADERS if kind is MEMBERS else S_HEADERS
    sheet = read(kind, xlsx([headers, *rows]), "x.xlsx")
    return plan(kind, sheet, Context(CITY, importer, sites or {}))


# ---- rows → commands ----------------------------------------------------------------------------------------------


def test_a_messy_member_row_becomes_the_arrival_it_means():
    [p] = planned(MEMBERS, [member(工地编号=" XM-002 ", 党员编号="Ｍ１", 姓名="张\u3000三", 性别="男性",
                                   入党日期="2010年7月1日", 党员状态="正式党员", 单位类别="业主", 岗位="工人",
                                   组织关系="组织关系转入", 进场日期=43983)])
    assert p.outcome is None
    c = p.command
    assert isinstance(c, RecordArrival)
    assert (c.site_id, c.member_id, c.arrived_on) == ("xm-002", "m1", dt.date(2020, 6, 1))
    m = c.member
    assert (m.name, m.gender, m.admitted_on, m.status) == ("张三", Gender.male, dt.date(2010, 7, 1), MemberStatus.full)
    assert (m.unit_kind, m.job, m.relation) == (UnitKind.owner, Job.worker, Relation.transferred)


def test_a_messy_site_row_becomes_the_registration_it_means():
    [p] = planned(SITES, [site(所属乡镇="白琳", 主管部门="福鼎市交通运输局", **{"总投资(万元)": "0.9亿"})])
    c = p.command
    assert isinstance(c, RegisterSite)
    assert (c.township, c.department, c.cost_wan, c.planned_months) == ("bailin", "交通运输局", Decimal(9000), 30)
    assert c.site_id.startswith("bailin-") and c.units.owner == "业主公司"


def test_ids_and_command_ids_are_derived_the_same_each_time():
    rows = [member(党员编号=""), site()]
    first = planned(MEMBERS, rows[:1])[0].command
    again = planned(MEMBERS, rows[:1])[0].command
    assert first.member_id == again.member_id and first.member_id.startswith("m-")
    assert first.command_id == again.command_id
    # the same person written otherwise is the same member
    spaced = planned(MEMBERS, [member(党员编号="", 姓名="张 三", 入党日期="2010/7/1")])[0].command
    assert spaced.member_id == first.member_id and spaced.command_id == first.command_id
    padded = planned(SITES, [site(项目名称=" 白琳大桥 ")])[0].command
    assert planned(SITES, [site()])[0].command.site_id == padded.site_id


def test_the_command_id_differs_by_importer_and_by_content():
    base = planned(MEMBERS, [member()])[0].command.command_id
    assert planned(MEMBERS, [member()], importer="township.bailin")[0].command.command_id != base
    assert planned(MEMBERS, [member(**{"工段/班组": "二工段"})])[0].command.command_id != base


def test_a_row_with_several_mistakes_names_each_column():
    [p] = planned(MEMBERS, [member(性别="男生", 入党日期="去年", 岗位="", 党员编号="张三!")])
    assert p.command is None and p.outcome.status == REFUSED
    assert p.outcome.code == "INVALID_CHOICE" and p.outcome.column == "性别"
    for column in ("性别", "入党日期", "岗位", "党员编号"):
        assert column in p.outcome.message
    assert "INVALID_DATE" not in p.outcome.message  # the codes other than the first are in the words, not repeated


def test_what_the_contract_refuses_names_the_column():
    [p] = planned(MEMBERS, [member(姓名="张三13912345678")])
    assert p.outcome.code == "VALIDATION_FAILED" and p.outcome.column == "姓名"
    assert "手机号" in p.outcome.message and p.outcome.message.startswith("姓名：")
    [late] = planned(MEMBERS, [member(进场日期="2999-01-01")])
    assert late.outcome.column == "进场日期" and "日期不合理" in late.outcome.message


def test_a_site_named_by_its_project_name_is_found_among_the_visible_ones():
    sites = {importing.site_key("宝龙世家"): ["baolong"], importing.site_key("同名工程"): ["a", "b"]}
    found, twice, unknown = planned(MEMBERS, [member(工地编号="宝龙 世家"), member(工地编号="同名工程", 党员编号="m2"),
                                              member(工地编号="不存在的工程", 党员编号="m3")], sites=sites)
    assert found.command.site_id == "baolong"
    assert twice.outcome.code == "AMBIGUOUS_SITE" and twice.outcome.column == "工地编号"
    assert unknown.outcome.code == "UNKNOWN_SITE"


def test_a_site_secretary_may_leave_the_site_blank_others_may_not():
    assert planned(MEMBERS, [member(工地编号=None)], importer="site.bailin.xm-9")[0].command.site_id == "xm-9"
    assert planned(MEMBERS, [member(工地编号=None)])[0].outcome.code == "MISSING_VALUE"


def test_the_same_row_twice_is_sent_once():
    first, second = planned(MEMBERS, [member(), member(姓名=" 张三 ")])
    assert first.command is not None
    assert second.command is None and second.outcome.status == ALREADY and "第 2 行" in second.outcome.text()


def test_the_templates_example_row_is_skipped():
    [p] = planned(MEMBERS, [member(姓名=EXAMPLE_MEMBER)])
    assert p.outcome.status == SKIPPED


def test_the_template_reads_back_as_only_its_example():
    for kind in (MEMBERS, SITES):
        for data, name in ((template(kind.name, CITY), "t.xlsx"), (template_csv(kind.name, CITY), "t.csv")):
            sheet = read(kind, data, name)
            assert [p.outcome.status for p in plan(kind, sheet, Context(CITY, "city"))] == [SKIPPED]
    book = load_workbook(io.BytesIO(template("members", CITY)))
    ws = book.active
    assert [c.value for c in ws[1]] == M_HEADERS
    assert ws.column_dimensions["C"].width >= 10 and ws.freeze_panes == "A2"
    assert "填写说明" in book.sheetnames
    assert template_csv("sites", CITY).startswith(b"\xef\xbb\xbf")


# ---- sending ------------------------------------------------------------------------------------------------------


class FakeBus:
    """Answers like the services would: ok, duplicate on an id seen before, or a refusal it is told to give."""

    def __init__(self, refuse: dict[str, dict] | None = None, delay: float = 0.001):
        self.seen: set[str] = set()
        self.order: list[tuple[str, str]] = []
        self.sites: list[tuple[str, str]] = []  # (target, site) in the order sent
        self.refuse = refuse or {}
        self.delay = delay
        self.in_flight = 0
        self.most = 0

    async def send(self, service: str, name: str, body: bytes) -> dict[str, Any]:
        import orjson

        command = orjson.loads(body)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        target = command.get("member_id") or command["site_id"]
        self.order.append((name, target))
        self.sites.append((target, command["site_id"]))
        if target in self.refuse:
            return {"ok": False, "error": self.refuse[target]}
        duplicate = command["command_id"] in self.seen
        self.seen.add(command["command_id"])
        return {"ok": True, "duplicate": duplicate, "events": [], "warnings": []}


def test_rows_are_sent_a_bounded_number_at_a_time_and_a_members_rows_in_file_order():
    rows = [member(党员编号=f"m{i}", 姓名=f"人{i}") for i in range(100)]
    rows += [member(党员编号="m5", 姓名="人5", 工地编号=f"xm-{n}", 进场日期=f"2020-07-0{n}") for n in range(1, 4)]
    items = planned(MEMBERS, rows)
    bus = FakeBus()
    ticks: list[tuple[int, int]] = []
    outcomes = asyncio.run(send_all(items, bus.send, width=8, progress=lambda d, t: ticks.append((d, t))))
    assert bus.most <= 8 and bus.most > 1
    assert [o.status for o in outcomes] == [RECORDED] * 103
    assert [s for target, s in bus.sites if target == "m5"] == ["xm-002", "xm-1", "xm-2", "xm-3"]  # file order
    assert ticks[-1] == (103, 103)


def test_sites_go_before_members():
    items = [*planned(MEMBERS, [member()]), *planned(SITES, [site()])]
    bus = FakeBus()
    asyncio.run(send_all(items, bus.send))
    assert [name for name, _ in bus.order] == ["RegisterSite", "RecordArrival"]


def test_a_second_run_reports_already_and_refusals_keep_the_services_words():
    items = planned(MEMBERS, [member(), member(党员编号="m2")])
    bus = FakeBus(refuse={"m2": {"code": "FORBIDDEN", "message": "工地 xm-002 属于 bailin [OTHER_TOWNSHIP]",
                                 "field": "OTHER_TOWNSHIP"}})
    first = asyncio.run(send_all(items, bus.send))
    again = asyncio.run(send_all(items, bus.send))
    assert [o.status for o in first] == [RECORDED, REFUSED] and [o.status for o in again] == [ALREADY, REFUSED]
    assert first[1].text() == "未导入 FORBIDDEN：工地 xm-002 属于 bailin [OTHER_TOWNSHIP]"
    assert again[0].text() == "已导入（此前已导入过这一行，未重复记录）"  # said, not a blank 说明


def test_once_the_platform_is_unreachable_the_rest_is_marked_not_sent():
    items = planned(MEMBERS, [member(党员编号=f"m{i}") for i in range(20)])
    calls = []

    async def down(service: str, name: str, body: bytes) -> dict:
        calls.append(name)
        raise nats.errors.NoRespondersError()

    outcomes = asyncio.run(send_all(items, down, width=1))
    assert len(calls) == 1 and all(o.code == "UNREACHABLE" for o in outcomes)
    assert "重新导入" in outcomes[-1].message


def test_a_reply_names_the_column_of_its_field_and_keeps_warnings():
    reply = {"ok": False, "error": {"code": "VALIDATION_FAILED", "field": "member.name",
                                    "message": "member.name: 太长（最多 100 个字符） (String should have at most 100"
                                               " characters)"}}
    outcome = from_reply(MEMBERS, reply)
    assert outcome.column == "姓名" and outcome.message.startswith("姓名：太长")
    assert from_reply(SITES, {"ok": False, "error": {"code": "UNKNOWN_TOWNSHIP", "field": "township",
                                                     "message": "x"}}).column == "所属乡镇"
    warned = from_reply(MEMBERS, {"ok": True, "warnings": [{"code": "BRANCH_TOO_BIG", "message": "超过50人"}]})
    assert warned.text() == "成功（提示：超过50人）"


# ---- the whole run and the result file ------------------------------------------------------------------------------


def test_a_dry_run_sends_nothing_and_says_what_would_pass():
    data = xlsx([["党员花名册"], M_HEADERS, member(), member(党员编号="m2", 性别="?")])
    report = asyncio.run(run_import(MEMBERS, data, "名册.xlsx", CITY, None, dry_run=True, importer="city"))
    assert report.dry_run and report.counts() == {RECORDED: 0, ALREADY: 0, REFUSED: 1, VALID: 1, SKIPPED: 0}
    assert report.result_name() == "名册-校验结果.xlsx"
    assert "校验通过 1" in report.summary()


def test_the_xlsx_result_is_the_original_with_a_result_column():
    data = xlsx([["党员花名册"], [*M_HEADERS, "备注"], [*member(), "班长"], [*member(党员编号="m2", 性别="?"), ""]])
    report = asyncio.run(run_import(MEMBERS, data, "名册.xlsx", CITY, None, dry_run=True, importer="city"))
    out = load_workbook(io.BytesIO(result_file(data, report))).active
    assert out["A1"].value == "党员花名册" and out.cell(2, 15).value == "导入结果" and out.cell(3, 14).value == "班长"
    assert out.cell(3, 15).value == "校验通过" and out.cell(4, 15).value.startswith("未导入 INVALID_CHOICE：性别")
    # a result file imported again keeps one result column, overwritten
    again = asyncio.run(run_import(MEMBERS, result_file(data, report), "名册-导入结果.xlsx", CITY, None, dry_run=True,
                                   importer="city"))
    assert again.counts()[REFUSED] == 1
    twice = load_workbook(io.BytesIO(result_file(result_file(data, report), again))).active
    assert twice.cell(2, 15).value == "导入结果" and twice.cell(2, 16).value is None


def test_the_csv_result_is_utf8_with_bom_and_keeps_every_line():
    text = "\r\n".join([",".join(["党员花名册"]), ",".join(M_HEADERS), ",".join(map(str, member())), "",
                        ",".join(map(str, member(党员编号="m2", 入党日期="2010-13-01")))]) + "\r\n"
    data = text.encode("gbk")
    report = asyncio.run(run_import(MEMBERS, data, "名册.csv", CITY, None, dry_run=True, importer="city"))
    made = result_file(data, report)
    assert made.startswith(b"\xef\xbb\xbf") and report.result_name() == "名册-校验结果.csv"
    rows = list(csv.reader(io.StringIO(made.decode("utf-8-sig"))))
    assert rows[0] == ["党员花名册"] and rows[1][-1] == "导入结果" and rows[2][-1] == "校验通过"
    assert rows[3] == [] and rows[4][-1].startswith("未导入 INVALID_DATE：入党日期")


def test_a_header_without_a_column_every_row_needs_is_refused_once_naming_it():
    headers = [h for h in M_HEADERS if h not in ("进场日期", "岗位")]
    rows = [[v for h, v in zip(M_HEADERS, member(党员编号=f"m{i}"), strict=True) if h in headers] for i in range(3)]
    with pytest.raises(SheetError) as refused:
        read(MEMBERS, xlsx([headers, *rows]), "名册.xlsx")
    assert refused.value.code == "MISSING_COLUMNS"
    assert "第 1 行的表头缺少必填的列：岗位、进场日期" in refused.value.message
    # The ids may be left out: they are derived (and a site secretary's rows go to the secretary's site).
    optional = [h for h in M_HEADERS if h not in ("工地编号", "党员编号")]
    short = [[v for h, v in zip(M_HEADERS, member(), strict=True) if h in optional]]
    assert read(MEMBERS, xlsx([optional, *short]), "名册.xlsx").rows


def test_other_worksheets_with_a_roster_are_named_in_the_summary():
    book = Workbook()
    book.active.title = "一标段"
    for title, rows in (("一标段", [M_HEADERS, member()]), ("二标段", [M_HEADERS, member(党员编号="m2")]),
                        ("说明", [["填表说明"]]), ("三标段", [["三标段花名册"], M_HEADERS, member(党员编号="m3")])):
        ws = book.active if title == "一标段" else book.create_sheet(title)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    book.save(out)
    report = asyncio.run(run_import(MEMBERS, out.getvalue(), "名册.xlsx", CITY, None, dry_run=True, importer="city"))
    assert report.counts()[VALID] == 1
    assert "只读了工作表“一标段”；工作表“二标段”、“三标段”也有党员花名册的表头，未校验" in report.summary()


def test_a_formula_the_file_holds_no_result_of_is_refused_as_such_not_as_blank():
    # openpyxl, like many programs, writes formulas without their results; Excel or WPS would compute and keep them.
    [p] = planned(MEMBERS, [member(姓名='=CONCATENATE("张","三")', 入党日期="=DATE(2010,7,1)")])
    assert p.outcome.status == REFUSED and p.outcome.code == "UNCOMPUTED_FORMULA"
    assert "姓名：是公式 =CONCATENATE" in p.outcome.message and "入党日期：是公式 =DATE(2010,7,1)" in p.outcome.message
    assert "打开并保存一次" in p.outcome.message and "必填" not in p.outcome.message
    [q] = planned(MEMBERS, [member(工地编号="=A1")])
    assert q.outcome.code == "UNCOMPUTED_FORMULA" and q.outcome.column == "工地编号"


def test_outcome_texts():
    assert Outcome(RECORDED).text() == "成功"
    assert Outcome(ALREADY).text() == "已导入"
    assert Outcome(VALID).text() == "校验通过"
    assert Outcome(REFUSED, "X", "y").text() == "未导入 X：y"


@pytest.mark.parametrize("kind", ["members", "sites"])
def test_kinds_know_their_columns(kind):
    k = importing.kind_of(kind)
    assert set(k.known.values()) == {h for h, _ in k.columns}
    with pytest.raises(ValueError):
        importing.kind_of("branches")

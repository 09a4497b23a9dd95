"""Import against the real processes: a messy project list and roster, each row accepted or refused by its named rule,
refused rows writing nothing, a second import recording nothing new, a dry run writing nothing, a township refused
(FORBIDDEN) on another township's rows, the CLI and the upload API. One platform for the module; each test its own
sites."""
from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from openpyxl import Workbook, load_workbook

from contracts.city import DEFAULT_CITY_FILE, load_city
from gongdi.ops.client import GongdiClient
from gongdi.ops.runtime import free_port
from gongdi.sheets.columns import MEMBER_COLUMNS, SITE_COLUMNS
from gongdi.sheets.importing import ALREADY, KINDS, RECORDED, REFUSED, VALID, Report, result_file, run_import
from tests.conftest import Servers
from tests.integration.gateway import Gateway, eventually, running_gateway
from tests.integration.waiting import eventually as eventually_async

CITY = load_city(DEFAULT_CITY_FILE)
M_HEADERS = [h for h, _ in MEMBER_COLUMNS]
S_HEADERS = [h for h, _ in SITE_COLUMNS]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def gw(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(servers, tmp_path_factory.mktemp("import")) as gateway:
        yield gateway


# ---- files as people keep them ------------------------------------------------------------------------------------


def site_row(**cells: Any) -> list[Any]:
    row = {"工地编号": "", "项目名称": "工程", "所属乡镇": "白琳镇", "主管部门": "交通运输局",
           "总投资(万元)": "9,000万元", "计划工期(月)": "30个月", "开工日期": "2020/6/1", "建设单位": "某建设投资公司",
           "设计单位": "某设计院", "施工单位": "中交某局", "监理单位": "某监理公司", **cells}
    return [row[h] for h in S_HEADERS]


def member_row(**cells: Any) -> list[Any]:
    row = {"工地编号": "", "党员编号": "", "姓名": "张三", "性别": "男", "入党日期": "2010-07-01", "党员状态": "正式",
           "单位类别": "施工单位", "单位名称": "中交某局", "岗位": "农民工", "工段/班组": "一工段",
           "原党组织": "某村党支部", "组织关系": "流动", "进场日期": "2020-07-01", **cells}
    return [row[h] for h in M_HEADERS]


def workbook(title: str, headers: list[str], rows: list[list[Any]]) -> bytes:
    """A title row merged over the header, the header, the rows with a blank row between, an extra column."""
    book = Workbook()
    ws = book.active
    ws.append([title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    ws.append(["序号", *headers])
    for i, row in enumerate(rows, start=1):
        ws.append([i, *row])
        if i == 1:
            ws.append([])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def gbk_csv(headers: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["党员花名册（白琳镇）"])
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode("gbk")


async def count_events(gw: Gateway, schema: str = "membership") -> int:
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {schema}.events")
    finally:
        await conn.close()


def settled(gw: Gateway) -> bool:
    """Every recorded event applied by every consumer (the policies' own events included), as /health reports."""
    health = httpx.get(f"{gw.url}/health", timeout=10).json()
    return health["ok"] and health["lag"] == 0 and health["dead_letters"] == 0


async def connect(gw: Gateway, who: str) -> GongdiClient:
    return await GongdiClient.connect(gw.servers.as_identity(gw.settings, who))


async def imported(gw: Gateway, who: str, kind: str, data: bytes, name: str, dry_run: bool = False) -> Report:
    client = await connect(gw, who)
    try:
        return await run_import(KINDS[kind], data, name, CITY, client, dry_run)
    finally:
        await client.close()


def by_row(report: Report) -> dict[int, tuple[str, str | None]]:
    return {r["row"]: (r["status"], r["code"]) for r in report.rows()}


async def site_names_visible(gw: Gateway, township: str, *names: str) -> bool:
    client = await connect(gw, "city")
    try:
        reply = await client.query("views", "township", {"township": township})
    finally:
        await client.close()
    return reply.get("ok") and set(names) <= {s["name"] for s in reply["data"]["sites"]}


# ---- the project list and the roster, messy --------------------------------------------------------------------------


async def test_a_messy_project_list_then_roster_each_row_accepted_or_refused_by_its_rule(gw: Gateway):
    sites = workbook("福鼎市重点项目清单", S_HEADERS, [
        site_row(项目名称="白琳大桥工程", 所属乡镇="白琳"),  # its id derived from township and name
        site_row(工地编号="ＩＭ-ROAD", 项目名称="点头公路", 所属乡镇="diantou", 主管部门="福鼎市住房和城乡建设局",
                 **{"总投资(万元)": 12000, "计划工期(月)": "2年", "开工日期": dt.date(2020, 5, 1)}),
        site_row(项目名称="外市工程", 所属乡镇="宁德市"),
        site_row(工地编号="im-road", 项目名称="点头公路二期", 所属乡镇="点头镇"),  # the id is taken by the row before
        site_row(项目名称="预算不明", **{"总投资(万元)": "约九千万"}),
    ])
    before = await count_events(gw)
    report = await imported(gw, "city", "sites", sites, "项目清单.xlsx")
    assert by_row(report) == {3: (RECORDED, None), 5: (RECORDED, None), 6: (REFUSED, "UNKNOWN_TOWNSHIP"),
                              7: (REFUSED, "SITE_ALREADY_REGISTERED"), 8: (REFUSED, "INVALID_NUMBER")}
    assert await count_events(gw) == before + 2  # refused rows write nothing
    assert report.refused == 3
    rows = {r["row"]: r for r in report.rows()}
    assert rows[6]["column"] == "所属乡镇" and "所属乡镇" in rows[6]["result"]
    assert rows[8]["result"].startswith("未导入 INVALID_NUMBER：总投资(万元)")
    assert await eventually_async(lambda: site_names_visible(gw, "bailin", "白琳大桥工程"))

    roster = gbk_csv(M_HEADERS, [
        member_row(工地编号="白琳大桥工程", 姓名="张\u3000三", 入党日期="2010年7月1日", 党员状态="正式党员",
                   单位类别="业主", 进场日期="2020.7.1"),  # the site by its project name, the member id derived
        member_row(工地编号="IM-ROAD", 党员编号="ｉｍ００２", 姓名="李四", 性别="女", 党员状态="预备",
                   组织关系="组织关系转入", 岗位="技术员", 进场日期="20200702"),
        member_row(工地编号="im-road", 党员编号="im003", 姓名="王五", 入党日期="2010-02-30"),
        member_row(工地编号="im-road", 党员编号="im004", 姓名="赵六13912345678"),  # a phone number in the name
        member_row(工地编号="no-such-site", 党员编号="im005", 姓名="钱七"),  # refused by the service
        member_row(工地编号="不存在的工程", 党员编号="im006", 姓名="孙八"),
        member_row(工地编号="白琳大桥工程", 姓名="张三", 入党日期="2010/7/1", 党员状态="正式", 单位类别="建设单位",
                   进场日期="2020-07-01"),  # the first row once more, written otherwise
        member_row(工地编号="im-road", 党员编号="im007", 姓名="周九", 性别="未知", 组织关系="借调"),
    ])
    before = await count_events(gw)
    report = await imported(gw, "city", "members", roster, "花名册.csv")
    assert by_row(report) == {3: (RECORDED, None), 4: (RECORDED, None), 5: (REFUSED, "INVALID_DATE"),
                              6: (REFUSED, "VALIDATION_FAILED"), 7: (REFUSED, "SITE_NOT_FOUND"),
                              8: (REFUSED, "UNKNOWN_SITE"), 9: (ALREADY, None), 10: (REFUSED, "INVALID_CHOICE")}
    assert await count_events(gw) == before + 2
    rows = {r["row"]: r for r in report.rows()}
    assert rows[6]["column"] == "姓名" and "手机号" in rows[6]["message"]
    assert "性别" in rows[10]["message"] and "组织关系" in rows[10]["message"]
    assert rows[9]["result"] == "与第 3 行相同（不重复发送）"

    client = await connect(gw, "city")

    async def members_of(site_id: str) -> list[dict[str, Any]]:
        return (await client.query("views", "site", {"site_id": site_id}))["data"]["members"]

    try:
        derived = next(p.command for p in report.planned if p.number == 3)
        assert await eventually_async(lambda: members_of(derived.site_id))
        assert [(m["member_id"], m["name"], m["unit_kind"]) for m in await members_of(derived.site_id)] == [
            (derived.member_id, "张三", "owner")]
        assert await eventually_async(lambda: members_of("im-road"))
        road = (await client.query("views", "site", {"site_id": "im-road"}))["data"]
        assert road["department"] == "住房和城乡建设局" and road["cost_wan"] == "12000" and road["planned_months"] == 24
        assert [(m["member_id"], m["status"], m["relation"], m["arrived_on"]) for m in road["members"]] == [
            ("im002", "probationary", "transferred", "2020-07-02")]
    finally:
        await client.close()

    # the result file: the CSV as it came (title line included), UTF-8 with BOM, a column 导入结果
    made = result_file(roster, report)
    lines = list(csv.reader(io.StringIO(made.decode("utf-8-sig"))))
    assert made.startswith(b"\xef\xbb\xbf") and lines[0] == ["党员花名册（白琳镇）"] and lines[1][-1] == "导入结果"
    assert lines[2][-1] == "成功" and lines[4][-1].startswith("未导入 INVALID_DATE：入党日期")
    assert lines[6][-1].startswith("未导入 SITE_NOT_FOUND：")


async def test_importing_the_same_file_again_records_nothing_new(gw: Gateway):
    sites = workbook("清单", S_HEADERS, [site_row(工地编号="re-1", 项目名称="再导入工程"),
                                        site_row(工地编号="re-2", 项目名称="再导入工程二", 所属乡镇="nowhere")])
    roster = workbook("名册", M_HEADERS, [member_row(工地编号="re-1", 党员编号=f"re-m{i}", 姓名=f"党员{i}")
                                        for i in range(1, 6)] + [member_row(工地编号="re-1", 进场日期="昨天")])
    first = [await imported(gw, "city", "sites", sites, "s.xlsx"), await imported(gw, "city", "members", roster,
                                                                                   "m.xlsx")]
    assert [r.counts()[RECORDED] for r in first] == [1, 5] and [r.refused for r in first] == [1, 1]
    assert eventually(lambda: settled(gw))  # the talk obligations the arrivals caused are recorded too
    events = {s: await count_events(gw, s) for s in ("membership", "activities")}
    again = [await imported(gw, "city", "sites", sites, "s.xlsx"), await imported(gw, "city", "members", roster,
                                                                                   "m.xlsx")]
    assert [r.counts()[RECORDED] for r in again] == [0, 0]
    assert [r.counts()[ALREADY] for r in again] == [1, 5] and [r.refused for r in again] == [1, 1]
    assert eventually(lambda: settled(gw))
    assert {s: await count_events(gw, s) for s in events} == events
    # the result file of the second run says so, row by row
    ws = load_workbook(io.BytesIO(result_file(roster, again[1]))).active
    results = [ws.cell(r, ws.max_column).value for r in range(2, ws.max_row + 1)]
    assert results[0] == "导入结果" and results.count("已导入（此前已导入过这一行，未重复记录）") == 5


async def test_a_dry_run_checks_every_row_and_records_nothing(gw: Gateway):
    sites = workbook("清单", S_HEADERS, [site_row(工地编号="dry-1", 项目名称="试运行工程"),
                                        site_row(工地编号="dry-2", 项目名称="试运行工程二", 主管部门="交通局")])
    assert eventually(lambda: settled(gw))
    before = {s: await count_events(gw, s) for s in ("membership", "activities")}
    report = await imported(gw, "city", "sites", sites, "s.xlsx", dry_run=True)
    assert by_row(report) == {3: (VALID, None), 5: (REFUSED, "UNKNOWN_DEPARTMENT")}
    assert report.result_name() == "s-校验结果.xlsx"
    assert eventually(lambda: settled(gw))
    assert {s: await count_events(gw, s) for s in before} == before
    client = await connect(gw, "city")
    try:
        assert (await client.query("views", "site", {"site_id": "dry-1"}))["error"]["code"] == "SITE_NOT_FOUND"
    finally:
        await client.close()


async def test_a_township_importing_another_townships_rows_is_forbidden_on_those_rows(gw: Gateway):
    setup = workbook("清单", S_HEADERS, [site_row(工地编号="own-1", 项目名称="本镇工程", 所属乡镇="白琳镇"),
                                        site_row(工地编号="far-1", 项目名称="外镇工程", 所属乡镇="点头镇")])
    assert (await imported(gw, "city", "sites", setup, "s.xlsx")).refused == 0
    sites = workbook("清单", S_HEADERS, [site_row(工地编号="own-2", 项目名称="本镇新工程", 所属乡镇="bailin"),
                                        site_row(工地编号="far-2", 项目名称="外镇新工程", 所属乡镇="diantou")])
    foreseen = await imported(gw, "township.bailin", "sites", sites, "s.xlsx", dry_run=True)
    assert by_row(foreseen) == {3: (VALID, None), 5: (REFUSED, "FORBIDDEN")}  # the dry run says so beforehand
    report = await imported(gw, "township.bailin", "sites", sites, "s.xlsx")
    assert by_row(report) == {3: (RECORDED, None), 5: (REFUSED, "FORBIDDEN")}
    roster = workbook("名册", M_HEADERS, [member_row(工地编号="own-1", 党员编号="tw-1", 姓名="本镇党员"),
                                        member_row(工地编号="far-1", 党员编号="tw-2", 姓名="外镇党员"),
                                        member_row(工地编号="外镇工程", 党员编号="tw-3", 姓名="按名称")])
    # the dry run finds sites through the views: wait until they show own-1
    assert await eventually_async(lambda: site_names_visible(gw, "bailin", "本镇工程"))
    foreseen = await imported(gw, "township.bailin", "members", roster, "m.xlsx", dry_run=True)
    assert by_row(foreseen) == {3: (VALID, None), 5: (REFUSED, "UNKNOWN_SITE"), 6: (REFUSED, "UNKNOWN_SITE")}
    before = await count_events(gw)
    report = await imported(gw, "township.bailin", "members", roster, "m.xlsx")
    assert by_row(report) == {3: (RECORDED, None), 5: (REFUSED, "FORBIDDEN"), 6: (REFUSED, "UNKNOWN_SITE")}
    assert await count_events(gw) == before + 1
    forbidden = next(r for r in report.rows() if r["row"] == 5)
    assert "OTHER_TOWNSHIP" in forbidden["message"]
    ws = load_workbook(io.BytesIO(result_file(roster, report))).active
    column = [ws.cell(r, ws.max_column).value for r in range(1, ws.max_row + 1)]
    assert column[2] == "成功" and column[4].startswith("未导入 FORBIDDEN：") and "外镇工程" not in column[4]


async def test_what_the_export_writes_imports_back_as_already_recorded(gw: Gateway):
    """The lists `gongdi export members|sites` writes are the import's columns: imported again by the same identity,
    every row is the command it came from (已导入), and nothing is recorded."""
    sites = workbook("清单", S_HEADERS, [
        site_row(工地编号="rt-1", 项目名称="往返工程", 所属乡镇="磻溪镇"),
        site_row(项目名称="往返工程二", 所属乡镇="panxi", **{"总投资(万元)": "1.25亿"})])
    roster = workbook("名册", M_HEADERS, [
        member_row(工地编号="往返工程", 党员编号="", 姓名="往返甲", 单位类别="业主", 组织关系="转入"),
        member_row(工地编号="rt-1", 党员编号="rt-m2", 姓名="往返乙", 性别="女", 党员状态="预备", 岗位="管理人员")])
    assert (await imported(gw, "city", "sites", sites, "s.xlsx")).refused == 0
    assert await eventually_async(lambda: site_names_visible(gw, "panxi", "往返工程", "往返工程二"))
    assert (await imported(gw, "city", "members", roster, "m.xlsx")).refused == 0
    assert eventually(lambda: settled(gw))
    before = {s: await count_events(gw, s) for s in ("membership", "activities")}
    with gw.client("city") as city:
        exported = {kind: city.get(f"/api/export/{kind}", params={"township": "panxi", "format": "xlsx"})
                    for kind in ("sites", "members")}
    for kind, reply in exported.items():
        assert reply.status_code == 200, reply.text
        report = await imported(gw, "city", kind, reply.content, f"{kind}.xlsx")
        assert [r["status"] for r in report.rows()] == [ALREADY, ALREADY], report.rows()
    assert eventually(lambda: settled(gw))
    assert {s: await count_events(gw, s) for s in before} == before


# ---- the CLI ------------------------------------------------------------------------------------------------------


def cli(gw: Gateway, home: Path, who: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GONGDI_CITY_FILE")}
    env.update(NATS_URL=gw.settings.nats_url, GONGDI_NATS_USER=who, GONGDI_NATS_PASSWORD=gw.password(who))
    return subprocess.run([sys.executable, "-m", "gongdi", "--home", str(home), "import", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_the_cli_imports_writes_the_result_file_and_says_when_rows_were_refused(gw: Gateway, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    template = tmp_path / "模板.xlsx"
    made = cli(gw, home, "city", "sites", "--template", str(template))
    assert made.returncode == 0, made.stderr
    assert [c.value for c in load_workbook(template).active[1]] == S_HEADERS
    sites = tmp_path / "项目.xlsx"
    sites.write_bytes(workbook("清单", S_HEADERS, [site_row(工地编号="cli-1", 项目名称="命令行工程")]))
    done = cli(gw, home, "city", "sites", str(sites))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "成功 1" in done.stdout and (tmp_path / "项目-导入结果.xlsx").exists()

    roster = tmp_path / "名册.xlsx"
    roster.write_bytes(workbook("名册", M_HEADERS, [member_row(工地编号="cli-1", 党员编号="cli-m1"),
                                                   member_row(工地编号="cli-1", 党员编号="cli-m2", 性别="X")]))
    with gw.client("city") as city:  # the dry run finds sites through the views
        assert eventually(lambda: city.get("/api/views/site", params={"site_id": "cli-1"}).status_code == 200)
    dry = cli(gw, home, "city", "members", str(roster), "--dry-run")
    assert dry.returncode == 1 and "校验通过 1" in dry.stdout and "INVALID_CHOICE" in dry.stdout
    assert (tmp_path / "名册-校验结果.xlsx").exists()
    out = tmp_path / "结果.xlsx"
    first = cli(gw, home, "city", "members", str(roster), "--result", str(out))
    assert first.returncode == 1 and "成功 1" in first.stdout and "未导入 1" in first.stdout
    assert "导入 [" in first.stderr  # the progress bar
    ws = load_workbook(out).active
    assert ws.cell(2, ws.max_column).value == "导入结果" and ws.cell(3, ws.max_column).value == "成功"
    again = cli(gw, home, "city", "members", str(roster), "--result", str(out))
    assert again.returncode == 1 and "成功 0，已导入 1" in again.stdout

    unreadable = tmp_path / "名册.csv"
    unreadable.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    bad = cli(gw, home, "city", "members", str(unreadable))
    assert bad.returncode == 2 and "NOT_A_SPREADSHEET" in bad.stderr


def test_a_cli_dry_run_checks_the_file_even_without_the_platform(tmp_path: Path):
    roster = tmp_path / "名册.xlsx"
    rows = [member_row(工地编号="off-1", 党员编号="off-m1"), member_row(工地编号="某工程", 党员编号="off-m2"),
            member_row(工地编号="off-1", 党员编号="off-m3", 入党日期="2010-2-30")]
    roster.write_bytes(workbook("名册", M_HEADERS, rows))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GONGDI_CITY_FILE")}
    env.update(NATS_URL=f"nats://127.0.0.1:{free_port()}", GONGDI_NATS_USER="city", GONGDI_NATS_PASSWORD="x")
    done = subprocess.run([sys.executable, "-m", "gongdi", "--home", str(tmp_path), "import", "members", str(roster),
                           "--dry-run"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "平台未连接" in done.stderr
    assert "校验通过 1" in done.stdout and "UNKNOWN_SITE" in done.stdout and "INVALID_DATE" in done.stdout
    real = subprocess.run([sys.executable, "-m", "gongdi", "--home", str(tmp_path), "import", "members", str(roster)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert real.returncode == 1 and "无法连接平台" in real.stderr and not (tmp_path / "名册-导入结果.xlsx").exists()


def test_the_cli_acts_as_the_identity_it_is_given(gw: Gateway, tmp_path: Path):
    sites = tmp_path / "项目.csv"
    row = site_row(工地编号="cli-far", 项目名称="外镇命令行工程", 所属乡镇="点头镇", **{"总投资(万元)": "9000"})
    sites.write_bytes(("\ufeff" + ",".join(S_HEADERS) + "\r\n" + ",".join(map(str, row)) + "\r\n").encode())
    done = cli(gw, tmp_path, "township.bailin", "sites", str(sites))
    assert done.returncode == 1 and "FORBIDDEN" in done.stdout
    lines = (tmp_path / "项目-导入结果.csv").read_bytes().decode("utf-8-sig").splitlines()
    assert lines[0].endswith(",导入结果") and "FORBIDDEN" in lines[1]


# ---- the upload API -------------------------------------------------------------------------------------------------


def test_the_upload_api_imports_and_answers_per_row_with_the_result_file(gw: Gateway):
    data = workbook("清单", S_HEADERS, [site_row(工地编号="api-1", 项目名称="接口工程"),
                                       site_row(工地编号="api-2", 项目名称="接口工程二", 所属乡镇="火星")])
    with gw.client("city") as city:
        checked = city.post("/api/import/sites", files={"file": ("清单.xlsx", data, XLSX)}, data={"dry_run": "true"})
        assert checked.status_code == 200, checked.text
        assert checked.json()["data"]["counts"]["valid"] == 1 and checked.json()["data"]["dry_run"] is True
        reply = city.post("/api/import/sites", files={"file": ("清单.xlsx", data, XLSX)})
        assert reply.status_code == 200, reply.text
        body = reply.json()["data"]
        assert body["counts"] == {"recorded": 1, "already": 0, "refused": 1, "valid": 0, "skipped": 0}
        rows = {r["row"]: r for r in body["rows"]}
        assert rows[3]["result"] == "成功" and rows[5]["code"] == "UNKNOWN_TOWNSHIP" and rows[5]["column"] == "所属乡镇"
        assert body["result_file"]["name"] == "清单-导入结果.xlsx" and body["result_file"]["media_type"] == XLSX
        ws = load_workbook(io.BytesIO(base64.b64decode(body["result_file"]["base64"]))).active
        assert ws.cell(3, ws.max_column).value == "成功"
        assert eventually(lambda: city.get("/api/views/site", params={"site_id": "api-1"}).status_code == 200)
        again = city.post("/api/import/sites?dry_run=false", files={"file": ("清单.xlsx", data, XLSX)})
        assert again.json()["data"]["counts"]["already"] == 1

        template = city.get("/api/import/members/template")
        assert template.status_code == 200 and template.headers["content-type"] == XLSX
        assert "filename*=UTF-8''" in template.headers["content-disposition"]
        assert [c.value for c in load_workbook(io.BytesIO(template.content)).active[1]] == M_HEADERS
        assert city.get("/api/import/sites/template?format=csv").content.startswith(b"\xef\xbb\xbf")


def test_the_upload_api_streams_its_progress_when_asked_then_the_same_reply(gw: Gateway):
    rows = [site_row(工地编号=f"prog-{i}", 项目名称=f"进度工程{i}") for i in range(30)]
    data = workbook("清单", S_HEADERS, [*rows, site_row(工地编号="prog-x", 项目名称="进度外", 所属乡镇="火星")])
    with gw.client("city") as city:
        streamed = city.post("/api/import/sites", files={"file": ("清单.xlsx", data, XLSX)},
                             headers={"Accept": "application/x-ndjson"})
        assert streamed.status_code == 200 and streamed.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in streamed.text.splitlines()]
        progress = [line["progress"] for line in lines[:-1]]
        assert progress[0] == {"done": 1, "total": 30} and progress[-1] == {"done": 30, "total": 30}, progress
        assert all(a["done"] < b["done"] for a, b in itertools.pairwise(progress))  # only forward
        reply = lines[-1]
        assert reply["ok"] and reply["data"]["counts"]["recorded"] == 30 and reply["data"]["counts"]["refused"] == 1
        # the same file again, the plain way: the same reply's shape, every row already there
        again = city.post("/api/import/sites", files={"file": ("清单.xlsx", data, XLSX)}).json()
        assert set(again) == set(reply) and set(again["data"]) == set(reply["data"])
        assert again["data"]["counts"]["already"] == 30
        # a file that cannot be read is refused before any line, with its status, as without the header
        junk = city.post("/api/import/members", files={"file": ("名册.xlsx", b"\x89PNG\r\n\x1a\n\x00", XLSX)},
                         headers={"Accept": "application/x-ndjson"})
        assert junk.status_code == 422 and "NOT_A_SPREADSHEET" in junk.json()["error"]["message"]


def test_the_upload_api_refuses_what_is_no_spreadsheet_clearly(gw: Gateway):
    with gw.client("city") as city:
        junk = city.post("/api/import/members", files={"file": ("名册.xlsx", b"\x89PNG\r\n\x1a\n\x00", XLSX)})
        assert junk.status_code == 422
        assert junk.json()["error"]["code"] == "VALIDATION_FAILED" and "NOT_A_SPREADSHEET" in junk.json()["error"][
            "message"]
        headless = city.post("/api/import/members", files={"file": ("a.csv", b"a,b\r\n1,2\r\n", "text/csv")})
        assert headless.status_code == 422 and "HEADER_NOT_FOUND" in headless.json()["error"]["message"]
        nofile = city.post("/api/import/members", data={"dry_run": "true"}, files={"other": ("a.csv", b"x")})
        assert nofile.status_code == 422 and nofile.json()["error"]["field"] == "file"
        raw = city.post("/api/import/members", content=b"a,b", headers={"Content-Type": "text/csv"})
        assert raw.status_code == 422
        big = city.post("/api/import/members", files={"file": ("big.csv", b"x" * (11 * 1024 * 1024), "text/csv")})
        assert big.status_code == 413 and big.json()["error"]["code"] == "REQUEST_TOO_LARGE"
        wrong = city.post("/api/import/branches", files={"file": ("a.csv", b"x", "text/csv")})
        assert wrong.status_code == 422
    with gw.client() as anonymous:
        assert anonymous.post("/api/import/members", files={"file": ("a.csv", b"x")}).status_code == 401
        assert anonymous.get("/api/import/members/template").status_code == 401


def test_the_upload_api_uses_the_logged_in_identity(gw: Gateway):
    data = workbook("清单", S_HEADERS, [site_row(工地编号="api-far", 项目名称="接口外镇工程", 所属乡镇="点头镇")])
    with gw.client("township.bailin") as township:
        reply = township.post("/api/import/sites", files={"file": ("清单.xlsx", data, XLSX)})
        assert reply.status_code == 200
        [row] = reply.json()["data"]["rows"]
        assert row["status"] == REFUSED and row["code"] == "FORBIDDEN"


def test_a_read_only_identity_is_refused_before_its_file_is_read(gw: Gateway, tmp_path: Path):
    """主管部门, 审计 and 大屏 only read: an import of theirs is refused once, up front, dry run or not, by the CLI and
    the API alike, before the rows (or even the headers) are looked at."""
    roster = tmp_path / "名册.csv"
    roster.write_bytes(("\ufeff" + ",".join(M_HEADERS) + "\r\n"
                        + ",".join(map(str, member_row(工地编号="ro-1", 党员编号="ro-m1"))) + "\r\n").encode())
    for flags in (["--dry-run"], []):
        done = cli(gw, tmp_path, "department.jiaotong", "members", str(roster), *flags)
        assert done.returncode == 1 and "FORBIDDEN" in done.stderr and "READ_ONLY_ROLE" in done.stderr, done.stderr
        assert "主管部门身份只能查看，不能导入" in done.stderr and "UNKNOWN_SITE" not in done.stdout + done.stderr
    assert not list(tmp_path.glob("名册-*"))  # no result file: no row was looked at
    headless = b"a,b\r\n1,2\r\n"  # not even the headers are read: the refusal is the identity's, not the file's
    for who in ("department.jiaotong", "auditor", "dashboard"):
        with gw.client(who) as reader:
            for body, dry in ((roster.read_bytes(), "true"), (roster.read_bytes(), "false"), (headless, "false")):
                reply = reader.post("/api/import/members", files={"file": ("名册.csv", body, "text/csv")},
                                    data={"dry_run": dry})
                assert reply.status_code == 403, reply.text
                error = reply.json()["error"]
                assert (error["code"], error["field"]) == ("FORBIDDEN", "READ_ONLY_ROLE")
                assert "只能查看" in error["message"]


def test_the_import_page_is_served_to_a_login(gw: Gateway):
    with gw.client() as anonymous:
        page = anonymous.get("/import", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/import"
    with gw.client("city") as city:
        page = city.get("/import")
        assert page.status_code == 200 and "批量导入" in page.text
        # only this machine's files, no inline script (the pages' Content-Security-Policy allows neither)
        urls = re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', page.text)
        assert urls and all(u.startswith("/static/") and city.get(u).status_code == 200 for u in urls), urls
        assert not re.findall(r"<script\b(?![^>]*\bsrc=)[^>]*>\s*\S", page.text)
        assert "default-src 'self'" in page.headers["content-security-policy"]


"""Exports against the real platform: `gongdi export` and GET /api/export/… give the figures of the views they come
from, in .xlsx and .csv; a dashboard's files name nobody; a township cannot export another's; the roster and the
project list come in the import's columns. One platform for the module, a few sites recorded over HTTP."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from contracts.membership import MemberFacts, RecordArrival
from gongdi.sheets.columns import GENDER, JOB, MEMBER_COLUMNS, RELATION, SITE_COLUMNS, STATUS, UNIT_KIND
from gongdi.sheets.export import EXPORTS
from gongdi.sheets.workbook import MEDIA_TYPES
from tests.conftest import Servers
from tests.integration.gateway import Gateway, arrival, eventually, post, running_gateway, site

# Sites of two townships, and members with names found nowhere else, so a file naming them is caught.
SITES = {"ex-a": "bailin", "ex-b": "bailin", "ex-c": "diantou"}
MEMBERS = {"ex-a-m1": ("ex-a", "欧阳明月", "female"), "ex-a-m2": ("ex-a", "司马青山", "male"),
           "ex-b-m1": ("ex-b", "上官红梅", "female"), "ex-c-m1": ("ex-c", "诸葛云飞", "male")}
NAMES = [name for _, name, _ in MEMBERS.values()]
PARAMS: dict[str, dict[str, str]] = {
    "city": {}, "township": {"township": "bailin"}, "department": {"department": "jiaotong"},
    "site": {"site_id": "ex-a"}, "talks": {"site_id": "ex-a"}, "birthdays": {"site_id": "ex-a", "month": "2020-07"},
    "records": {"site_id": "ex-a", "record": "talk"},
    "status": {}, "members": {}, "sites": {}}


@pytest.fixture(scope="module")
def gw(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(servers, tmp_path_factory.mktemp("export")) as gateway:
        with gateway.client("city") as city:
            for site_id, township in SITES.items():
                assert post(city, "membership", "RegisterSite", site(site_id, township)).status_code == 200
                assert post(city, "membership", "ReportWorkforce", {"site_id": site_id, "headcount": 120,
                                                                    "as_of": "2020-07-01"}).status_code == 200
            for member_id, (site_id, name, gender) in MEMBERS.items():
                body = arrival(site_id, member_id, name)
                body["member"]["gender"] = gender
                assert post(city, "membership", "RecordArrival", body).status_code == 200

            def settled() -> bool:  # every member in the views, and the talks their arrivals made
                members = city.get("/api/views/city").json()["data"]["members"]
                talks = city.get("/api/views/talks", params={"site_id": "ex-a"}).json()["data"]["open"]
                return members == len(MEMBERS) and len(talks) == 2

            assert eventually(settled, timeout=30), "the arrivals did not reach the views"
        yield gateway


def view(gw: Gateway, who: str, name: str, **params: str) -> dict[str, Any]:
    with gw.client(who) as c:
        reply = c.get(f"/api/views/{name}", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def download(gw: Gateway, who: str, name: str, **params: str) -> httpx.Response:
    with gw.client(who, timeout=60) as c:
        return c.get(f"/api/export/{name}", params=params)


def gongdi(gw: Gateway, who: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`gongdi export …` as `who`, its identity from the environment (a deployment without a state folder)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env.update(NATS_URL=gw.settings.nats_url, GONGDI_NATS_USER=who, GONGDI_NATS_PASSWORD=gw.password(who))
    return subprocess.run([sys.executable, "-m", "gongdi", "--home", str(cwd / "home"), "export", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def book(data: bytes) -> Workbook:
    return load_workbook(io.BytesIO(data))


def figures(workbook: Workbook, sheet: str = "概况") -> dict[str, Any]:
    return {row[0]: row[1] for row in workbook[sheet].iter_rows(min_row=2, values_only=True)}


def rows(workbook: Workbook, sheet: str) -> list[tuple[Any, ...]]:
    return list(workbook[sheet].iter_rows(min_row=2, values_only=True))


def every_text(workbook: Workbook) -> str:
    return "\n".join(str(v) for ws in workbook.worksheets for row in ws.iter_rows(values_only=True) for v in row
                     if v is not None)


def csv_blocks(data: bytes) -> dict[str, list[list[str]]]:
    """A sectioned CSV's blocks by title: 【标题】, then the header row and the rows up to the blank line."""
    assert data.startswith(b"\xef\xbb\xbf"), "no byte-order mark: Excel would not read it as UTF-8"
    blocks: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for record in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")):
        if len(record) == 1 and record[0].startswith("【") and record[0].endswith("】"):
            current = blocks.setdefault(record[0][1:-1], [])
        elif record:
            current.append(record)
    return blocks


# ---- the figures of the view ------------------------------------------------------------------------------------


def test_the_city_export_over_cli_and_http_holds_the_figures_of_the_city_view(gw: Gateway, tmp_path: Path):
    city = view(gw, "city", "city")
    reply = download(gw, "city", "city", format="xlsx")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == MEDIA_TYPES["xlsx"]
    disposition = reply.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("UTF-8''", 1)[1]).startswith("福鼎市-全市视图-")

    made = gongdi(gw, "city", "city", "--out", "city.xlsx", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "全市视图" in made.stdout
    expected = (city["projects"], city["workers"], city["members"], city["full_members"], city["branches"])
    assert expected == (3, 360, 4, 4, 0)
    townships = [(t["name"], t["projects"], t["workers"], t["members"], t["branches"]) for t in city["townships"]]
    for workbook in (book(reply.content), book((tmp_path / "city.xlsx").read_bytes())):
        first = figures(workbook)
        shown = tuple(first[k] for k in ("重点工程项目", "从业人员", "党员", "正式党员", "工地党支部"))
        assert shown == expected
        assert (first["对象"], first["导出身份"]) == ("福鼎市", "市工委（city）")
        assert rows(workbook, "各乡镇") == townships
        assert workbook["概况"].freeze_panes == "A2"
        assert len(rows(workbook, "空白点")) == len(city["gaps"])

    made = gongdi(gw, "city", "city", "--format", "csv", "--out", "city.csv", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    blocks = csv_blocks((tmp_path / "city.csv").read_bytes())
    summary = {r[0]: r[1] for r in blocks["概况"][1:]}
    assert (summary["重点工程项目"], summary["党员"]) == (str(city["projects"]), str(city["members"]))
    assert blocks["各乡镇"][0] == ["乡镇（街道）", "项目", "从业人员", "党员", "党支部"]
    assert blocks["各乡镇"][1:] == [[str(x) for x in t] for t in townships]


@pytest.mark.parametrize("name", list(EXPORTS))
def test_every_export_downloads_as_a_workbook_and_as_a_csv(gw: Gateway, name: str):
    for fmt in ("xlsx", "csv"):
        reply = download(gw, "city", name, format=fmt, **PARAMS[name])
        assert reply.status_code == 200, (name, fmt, reply.text)
        assert reply.headers["content-type"] == MEDIA_TYPES[fmt]
        if fmt == "xlsx":
            workbook = book(reply.content)
            assert workbook.sheetnames[0] == ("概况" if name not in ("members", "sites") else EXPORTS[name])
        else:
            assert reply.content.startswith(b"\xef\xbb\xbf")
    if name in ("site", "talks", "birthdays"):
        assert "欧阳明月" in every_text(book(download(gw, "city", name, **PARAMS[name]).content))


def test_a_past_view_exports_as_of_its_day(gw: Gateway, tmp_path: Path):
    reply = download(gw, "city", "city", as_of="2020-06-15")
    assert reply.status_code == 200, reply.text
    first = figures(book(reply.content))
    assert str(first["数据时间"]).startswith("截至2020年6月15日") and first["党员"] == 0  # they arrived in July
    assert "2020-06-15" in unquote(reply.headers["content-disposition"])
    made = gongdi(gw, "city", "city", "--as-of", "2020-06-15", "--out", "past.xlsx", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert figures(book((tmp_path / "past.xlsx").read_bytes()))["重点工程项目"] == 3


# ---- rights ---------------------------------------------------------------------------------------------------------


def test_a_dashboards_exports_name_nobody(gw: Gateway, tmp_path: Path):
    assert "欧阳明月" in every_text(book(download(gw, "city", "site", site_id="ex-a").content))  # names do show
    for name in ("city", "township", "department"):
        workbook = download(gw, "dashboard", name, **PARAMS[name])
        assert workbook.status_code == 200, (name, workbook.text)
        table = download(gw, "dashboard", name, format="csv", **PARAMS[name])
        text = every_text(book(workbook.content)) + table.content.decode("utf-8-sig")
        assert "工地ex-a" in text, name  # projects by name: the file does hold the view
        assert not [n for n in NAMES if n in text], name
    made = gongdi(gw, "dashboard", "city", "--out", "dash.xlsx", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert not [n for n in NAMES if n in every_text(book((tmp_path / "dash.xlsx").read_bytes()))]

    for name in ("site", "talks", "members", "sites"):
        refused = download(gw, "dashboard", name, **PARAMS[name])
        assert refused.status_code == 403, (name, refused.text)
        assert refused.json()["error"]["code"] == "FORBIDDEN"
    made = gongdi(gw, "dashboard", "members", "--out", "roster.xlsx", cwd=tmp_path)
    assert made.returncode == 1 and "FORBIDDEN" in made.stderr
    assert not (tmp_path / "roster.xlsx").exists()


def test_a_township_cannot_export_another_townships_views_or_lists(gw: Gateway, tmp_path: Path):
    for args in (("township", "bailin"), ("site", "ex-a"), ("members", "bailin"), ("sites", "bailin")):
        made = gongdi(gw, "township.diantou", *args, "--out", "theirs.xlsx", cwd=tmp_path)
        assert made.returncode == 1, (args, made.stdout, made.stderr)
        assert "FORBIDDEN" in made.stderr and "township.diantou" in made.stderr, args
        assert not (tmp_path / "theirs.xlsx").exists()
    for name, params in (("township", {"township": "bailin"}), ("site", {"site_id": "ex-b"}),
                         ("members", {"township": "bailin"})):
        refused = download(gw, "township.diantou", name, **params)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN", (name, refused.text)
    own = gongdi(gw, "township.diantou", "township", "diantou", "--out", "own.xlsx", cwd=tmp_path)
    assert own.returncode == 0, own.stderr
    assert figures(book((tmp_path / "own.xlsx").read_bytes()))["对象"] == "点头镇"


# ---- the roster and the project list --------------------------------------------------------------------------------


def back(words: dict[Any, str], word: str) -> str:
    return next(code.value for code, w in words.items() if w == word)


def test_the_roster_and_the_project_list_come_in_the_import_columns_for_what_the_identity_sees(
        gw: Gateway, tmp_path: Path):
    made = gongdi(gw, "township.bailin", "members", "--out", "roster.xlsx", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    roster = book((tmp_path / "roster.xlsx").read_bytes())
    assert roster.sheetnames == ["党员花名册"]
    sheet = roster["党员花名册"]
    assert [c.value for c in sheet[1]] == [header for header, _ in MEMBER_COLUMNS]
    fields = [field for _, field in MEMBER_COLUMNS]
    found = [dict(zip(fields, row, strict=True)) for row in rows(roster, "党员花名册")]
    assert sorted(r["member_id"] for r in found) == ["ex-a-m1", "ex-a-m2", "ex-b-m1"]  # bailin's only
    first = next(r for r in found if r["member_id"] == "ex-a-m1")
    assert (first["site_id"], first["name"], first["gender"], first["status"], first["relation"]) == (
        "ex-a", "欧阳明月", "女", "正式", "流动")
    assert first["admitted_on"] == dt.datetime(2005, 7, 1) and first["arrived_on"] == dt.datetime(2020, 7, 1)
    words = {"gender": GENDER, "status": STATUS, "unit_kind": UNIT_KIND, "job": JOB, "relation": RELATION}
    for r in found:  # each row is the arrival that records the member again
        facts = {f: back(words[f], r[f]) if f in words else r[f] for f in MemberFacts.model_fields}
        facts["admitted_on"] = r["admitted_on"].date()
        RecordArrival.model_validate({"command_id": "6f1e3c2a-4f8e-4d1e-9d1e-6a7c1b2e9f40", "site_id": r["site_id"],
                                      "member_id": r["member_id"], "arrived_on": r["arrived_on"].date(),
                                      "member": facts})

    as_csv = download(gw, "township.bailin", "members", format="csv")
    assert as_csv.status_code == 200, as_csv.text
    records = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"), newline="")))
    assert records[0] == [header for header, _ in MEMBER_COLUMNS]  # a plain table: the header comes first
    assert sorted(records[1:]) == sorted(
        [[v.date().isoformat() if isinstance(v, dt.datetime) else str(v) for v in row]
         for row in rows(roster, "党员花名册")])

    everyone = book(download(gw, "city", "members").content)
    assert sorted(row[1] for row in rows(everyone, "党员花名册")) == sorted(MEMBERS)

    projects = book(download(gw, "township.bailin", "sites").content)
    assert [c.value for c in projects["重点项目清单"][1]] == [header for header, _ in SITE_COLUMNS]
    listed = [dict(zip([f for _, f in SITE_COLUMNS], row, strict=True)) for row in rows(projects, "重点项目清单")]
    assert [r["site_id"] for r in listed] == ["ex-a", "ex-b"]
    assert (listed[0]["township"], listed[0]["department"], listed[0]["cost_wan"], listed[0]["planned_months"],
            listed[0]["start_date"]) == ("白琳镇", "交通运输局", 9000, 30, dt.datetime(2020, 6, 1))


# ---- file names -----------------------------------------------------------------------------------------------------


def test_a_file_is_named_after_the_area_it_holds_the_same_from_the_cli_and_the_web(gw: Gateway, tmp_path: Path):
    """A township's roster holds its own township only (before: 福鼎市-党员花名册-… for 白琳镇's members), and the
    views' progress carries no internal service name (before: views-视图进度-…)."""
    for who, what, expected in (("township.bailin", "members", "白琳镇-党员花名册-"),
                                ("township.bailin", "sites", "白琳镇-重点项目清单-"),
                                ("city", "members", "福鼎市-党员花名册-"), ("city", "status", "视图进度-")):
        reply = download(gw, who, what)
        assert reply.status_code == 200, reply.text
        web = unquote(reply.headers["content-disposition"].split("UTF-8''", 1)[1])
        folder = tmp_path / f"{who}-{what}"
        folder.mkdir()
        made = gongdi(gw, who, what, cwd=folder)
        assert made.returncode == 0, made.stderr
        written = [p.name for p in folder.iterdir() if p.is_file()]
        assert written == [web], (written, web)  # the CLI's default name is the download's
        assert web.startswith(expected) and web.endswith(".xlsx") and "views" not in web, web

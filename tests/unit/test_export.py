"""Exports without servers: view replies as Chinese sections, the lists in the import's columns (and valid commands
again), scoping through a fake views service, and the .xlsx and .csv bytes read back with openpyxl and csv."""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from contracts.city import DEFAULT_CITY_FILE, load_city
from contracts.identity import Identity, Role
from contracts.membership import MemberFacts, RecordArrival, RegisterSite
from contracts.queries import QUERIES
from gongdi.sheets.columns import GENDER, JOB, MEMBER_COLUMNS, RELATION, SITE_COLUMNS, STATUS, UNIT_KIND
from gongdi.sheets.export import EXPORTS, Refused, Section, gather, list_section, view_sections
from gongdi.sheets.workbook import BOM, MAX_WIDTH, to_csv, to_xlsx, write
from services.gateway.exports import content_disposition

CITY = load_city(DEFAULT_CITY_FILE)
CJK = re.compile("[\u4e00-\u9fff]")
SNAPSHOT = {"seq": 42, "at": "2020-12-31T04:05:06.789+00:00"}  # 12:05:06 in the city


# ---- replies as the views give them (trimmed) ------------------------------------------------------------------


def activities() -> dict[str, Any]:
    return {
        "zones": 60, "teams": {"vanguard": 18, "assault": 16, "emergency": 11},
        "posts": {"policy_consultation": 10, "safety_patrol": 10}, "post_kinds": 2, "work_points": 7,
        "innovations": 6, "innovations_adopted": 5, "visits": {"section": 10, "crew": 9, "dormitory": 8},
        "talks": {"open": 100, "overdue": 90, "done": 220, "mooted": 1},
        "talks_by_method": {"in_person": 200, "phone": 20}, "birthdays_this_month": 17,
        "talks_by_reason": {"new_arrival": 140, "safety_violation": 13, "personal_change": 0, "application": 67},
        "lessons": {"night_school": {"sessions": 10, "attendance": 525}},
        "talent": {"backbone_trained": 48, "recommended_management": 32, "recommended_crew_leaders": 6,
                   "promoted_management": 3},
        "points": {"year": 2020, "total": 1600, "members": 24, "sites": 2, "by_category": {"post_goals": 692},
                   "years": [{"year": 2020, "sites": 2, "members": 24, "total": 1600},
                             {"year": 2019, "sites": 1, "members": 5, "total": 40}]},
        "appraisal": {"year": 2020, "branches": 1, "appraised": 15, "grades": {"excellent": 5, "qualified": 10},
                      "years": [{"year": 2020, "branches": 1, "appraised": 15},
                                {"year": 2019, "branches": 1, "appraised": 9}]},
        "meetings": {"due": 4, "overdue": 3, "held": 97,
                     "by_kind": {"general_assembly": {"held": 30, "due": 2, "overdue": 1}}},
    }


def liaison() -> dict[str, Any]:
    return {
        "meetings": 20, "meeting_items": {"open": 4, "overdue": 4, "resolved": 26,
                                          "by_unit": {"township": {"open": 4, "overdue": 4}}},
        "compliance": {"quality": {"met": 10, "not_met": 0, "unassessed": 0}},
        "cobuilding": {"agreements": 1, "items": 7, "completed": 5,
                       "by_agreement": [{"site_id": "s1", "site_name": "白琳大桥", "agreement_id": "a",
                                         "village": "棠园村", "items": 7, "completed": 5}]},
        "disputes": {"wages": {"reported": 0, "mediating": 1, "resolved": 2, "petitioned": 0}},
        "petitions": 0, "wage_petitions": 0,
        "support": {"road_hardening": {"total": 350, "unit": "米"}, "donation": {"total": 30000.5, "unit": "元"}},
        "support_by_village": [{"village": "马洋村", "kind": "donation", "total": 30000.5, "unit": "元"}],
    }


DEVELOPMENT = {"applied": 39, "activists": 18, "targets": 0, "probationary": 28, "full_confirmed": 0,
               "developed": 28, "developed_this_year": 0, "overdue": 28}


def city_reply(**more: Any) -> dict[str, Any]:
    return {
        "city": "fuding", "city_name": "福鼎市", "projects": 82, "completed": 1, "workers": 12708, "members": 251,
        "full_members": 199, "branches": 10,
        "coverage": {"qualifying": 34, "covered": 10, "rule": "造价≥5000万元且工期≥24个月"},
        "gaps": [{"site_id": "xm-001", "name": "白琳镇道路改造工程01", "township": "bailin", "full_members": 2}],
        "should_form_branch": [{"site_id": "xm-002", "name": "点头镇安置房项目02", "township": "diantou",
                                "full_members": 3}],
        "branch_warnings": [],
        "townships": [{"township": "bailin", "name": "白琳镇", "projects": 6, "workers": 844, "members": 25,
                       "branches": 1},
                      {"township": "diantou", "name": "点头镇", "projects": 6, "workers": 1444, "members": 30,
                       "branches": 1}],
        "by_month": [{"month": "2020-03", "arrivals": 230, "departures": 0, "sites_started": 82}],
        "development": DEVELOPMENT, "activities": activities(), "liaison": liaison(),
        "mobility": {"transfer_prompts_open": 1, "escalated": 0, "contact_lost": 2},
        "snapshot": SNAPSHOT, **more,
    }


def area_site(site_id: str, name: str, township: str = "bailin", **more: Any) -> dict[str, Any]:
    return {"site_id": site_id, "name": name, "township": township, "township_name": CITY.township_name(township),
            "department": "交通运输局", "workforce": 120, "members_present": 2, "full_members": 2, "branch": None,
            "qualifies": True, "gap": True, "should_form_branch": False, "completed_on": None, "branch_warning": None,
            **more}


def township_reply(code: str = "bailin", sites: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    sites = sites if sites is not None else [area_site("s1", "白琳大桥"),
                                             area_site("s2", "白琳隧道", completed_on="2021-01-01", gap=False)]
    return {"township": code, "name": CITY.township_name(code), "projects": len(sites), "workers": 240,
            "members": 4, "branches": 0, "sites": sites, "branch_warnings": [], "activities": activities(),
            "liaison": liaison(),
            "mobility": {"transfer_prompts_open": 1, "escalated": 0, "contact_lost": 0,
                         "sites": [{"site_id": "s1", "name": "白琳大桥", "transfer_prompts_open": 1, "escalated": 0}]},
            "development": DEVELOPMENT, "snapshot": SNAPSHOT}


def member(member_id: str, name: str, **more: Any) -> dict[str, Any]:
    return {"member_id": member_id, "name": name, "status": "full", "unit_kind": "construction",
            "unit_name": "中交三航局", "job": "worker", "section": "一工段", "relation": "mobile",
            "arrived_on": "2020-07-01", "gender": "female", "home_org": "某村党支部", "admitted_on": "2005-07-01",
            **more}


def site_reply(site_id: str = "s1", name: str = "白琳大桥", township: str = "bailin",
               members: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    members = members if members is not None else [
        member("m1", "欧阳明月"), member("m2", "司马青山", gender="male", status="probationary", relation="transferred",
                                     job="technician", unit_kind="owner")]
    return {
        "site_id": site_id, "name": name, "township": township, "township_name": CITY.township_name(township),
        "department": "交通运输局", "cost_wan": "9000.5", "planned_months": 30, "start_date": "2020-06-01",
        "units": {"owner": "业主", "design": "设计院", "construction": "施工单位", "supervision": "监理公司"},
        "workforce": 120, "qualifies": True, "completed_on": None,
        "branch": {"name": "工地兼合党支部", "secretary": "m1", "secretary_name": "欧阳明月", "instructor": "指导员",
                   "liaison": "联络员", "member_units": ["施工单位", "监理公司"], "committee": [],
                   "formed_on": "2020-07-10", "full_members": 3, "members": 3},
        "gap": False, "should_form_branch": False, "branch_warning": None, "members_present": len(members),
        "full_members": sum(m["status"] == "full" for m in members),
        "by_unit_kind": {"construction": 1, "owner": 1}, "by_section": {"一工段": 2},
        "by_relation": {"mobile": 1, "transferred": 1}, "members": members,
        "groups": [{"group_id": "g1", "name": "第一党小组", "section": "一工段", "leader": "m1",
                    "members": ["m1", "m9"], "formed_on": "2020-07-10", "closed_on": None, "leader_name": "欧阳明月",
                    "member_names": ["欧阳明月", None]}],
        "recent_departures": [{"member_id": "m9", "name": "", "departed_on": "2020-07-10", "moved_to_site": None,
                               "moved_to_name": None, "recorded_by": "township.bailin"},
                              {"member_id": "m8", "name": "王五", "departed_on": "2020-07-09", "moved_to_site": "xm-7",
                               "moved_to_name": "点头公路", "recorded_by": "site.bailin.xm-1"}],
        "departed_holders": [{"what": "post", "id": "p1", "kind": "safety_patrol", "member_id": "m9",
                              "name": "王五"},
                             {"what": "team", "id": "k1", "kind": "党员突击队", "member_id": "m9", "name": "王五"}],
        "points_ranking": {"year": 2020, "members": [{"rank": 1, "member_id": "m1", "name": "欧阳明月", "points": 5}],
                           "earlier": {"year": 2019, "members": [
                               {"rank": 1, "member_id": "m7", "name": None, "points": 9}]}},
        "meetings_due": [{"site_id": site_id, "kind": "themed_day", "period": ["2020-12-01", "2020-12-31"],
                          "held_this_period": 0, "due": True, "overdue": False, "last_held_on": None}],
        "mobility": {"transfer_prompts": [{"member_id": "m1", "name": "欧阳明月", "arrived_on": "2020-07-01",
                                           "due_on": "2021-01-01", "prompted_on": "2021-01-02"}],
                     "escalated": [], "contact_lost": []},
        "development": DEVELOPMENT,
        "development_candidates": {"applicant": [{"person_id": "p1", "name": "王小明", "applied_on": "2018-01-01"}]},
        "activities": activities(), "liaison": liaison(), "snapshot": SNAPSHOT, "last_position": 9,
    }


def talks_reply() -> dict[str, Any]:
    return {"site_id": "s1", "site_name": "白琳大桥", "open": [
        {"obligation_id": "o1", "member_id": "m1", "name": "欧阳明月", "reason": "new_arrival",
         "created_on": "2020-07-01", "due_on": "2020-07-08", "overdue": True},
        {"obligation_id": "o2", "member_id": "m7", "name": None, "reason": "safety_violation",
         "created_on": "2020-07-02", "due_on": "2020-07-09", "overdue": False}]}


def records_reply() -> dict[str, Any]:
    return {"site_id": "s1", "site_name": "白琳大桥", "more": False, "records": [
        {"record": "points", "record_id": "a1", "day": "2020-07-03", "kind": "rules_kept",
         "title": "欧阳明月（m1）：班前安全讲话", "count": 2}]}


def birthdays_reply() -> dict[str, Any]:
    return {"site_id": "s1", "site_name": "白琳大桥", "month": "2020-07",
            "members": [{"member_id": "m1", "name": "欧阳明月", "admitted_on": "2005-07-01",
                         "celebrated_on": "2020-07-01"}],
            "not_celebrated_this_year": [{"member_id": "m2", "name": "司马青山", "admitted_on": "2005-01-01"}]}


def status_reply() -> dict[str, Any]:
    return {"service": "views", "stream": None, "recorded": None, "published": None, "consumers": [
        {"service": "views", "consumer": "views", "stream": "MEMBERSHIP", "applied": 10, "published": 12,
         "dead_letters": 1, "letters": [{"stream_seq": 11, "event_type": "MemberArrived", "event_id": None,
                                         "stream_id": None, "site_id": "s1", "code": "KeyError",
                                         "error": "KeyError at x", "recorded_at": "2020-12-31T00:00:00+00:00",
                                         "retries": 0, "last_retry_at": None}]}]}


REPLIES = {"city": city_reply, "township": township_reply, "department": lambda: {
    **township_reply(), "department": "jiaotong", "name": "交通运输局"}, "site": site_reply, "talks": talks_reply,
    "birthdays": birthdays_reply, "records": records_reply, "status": status_reply}


def by_title(sections: list[Section]) -> dict[str, Section]:
    return {s.title: s for s in sections}


def figures(s: Section) -> dict[str, Any]:
    return {row[0]: row[1] for row in s.rows}


# ---- views → sections ---------------------------------------------------------------------------------------------


def test_every_query_of_the_registry_has_an_export_and_the_lists_too():
    assert set(REPLIES) == set(QUERIES)
    assert list(EXPORTS) == [*QUERIES, "members", "sites"]


@pytest.mark.parametrize("view", list(QUERIES))
def test_every_view_becomes_sections_with_chinese_headers_and_square_rows(view: str):
    sections = view_sections(view, REPLIES[view](), CITY, "city")
    assert sections[0].title == "概况" and figures(sections[0])["视图"] == QUERIES[view].title
    assert figures(sections[0])["导出身份"] == "市工委（city）"
    assert len({s.title for s in sections}) == len(sections)  # one sheet each
    for s in sections:
        assert CJK.search(s.title), s.title
        assert all(CJK.search(h) for h in s.headers), (s.title, s.headers)
        assert all(len(row) == len(s.headers) for row in s.rows), s.title


def test_the_city_sections_carry_the_views_figures_and_townships_by_name():
    d = city_reply()
    sections = by_title(view_sections("city", d, CITY, "dashboard"))
    first = figures(sections["概况"])
    assert (first["对象"], first["重点工程项目"], first["从业人员"], first["党员"], first["工地党支部"]) == (
        "福鼎市", 82, 12708, 251, 10)
    assert first["预备党员"] == 251 - 199 and first["空白点"] == 1 and first["应组建党支部"] == 1
    assert first["数据时间"] == dt.datetime(2020, 12, 31, 12, 5, 6)  # the city's wall clock, to the second
    assert sections["各乡镇"].rows == (("白琳镇", 6, 844, 25, 1), ("点头镇", 6, 1444, 30, 1))
    assert sections["空白点"].rows == (("白琳镇道路改造工程01", "白琳镇", 2),)
    assert ("党员队伍", "党员突击队", 16) in sections["党员活动"].rows
    assert ("谈话", "已谈（电话）", 20) in sections["党员活动"].rows
    # The years before the latest one by one (before, the latest year alone, which one site's entry may turn)
    assert {("党员积分", "2020年积分工地", 2), ("党员积分", "2019年总分", 40), ("党员积分", "2019年积分工地", 1),
            ("民主评议", "2019年度评议党员", 9)} <= set(sections["党员活动"].rows)
    # 220 talks done: 153 of them the three 必谈, 67 applicants' (before, all 220 were said to be 三必谈)
    assert {("谈话", "已谈", 220), ("谈话", "已谈中三必谈", 153), ("谈话", "已谈中入党申请人谈话", 67)} <= set(
        sections["党员活动"].rows)
    assert sections["纠纷调解"].rows == (("薪资", 0, 1, 2, 0, 3),)
    # Every agreement's site by name, not only those the city view names elsewhere (before: s1).
    assert sections["共建协议"].rows == (("棠园村", "白琳大桥", 7, 5),)
    assert ("捐款", Decimal("30000.5"), "元") in sections["帮扶驻地"].rows
    assert figures(sections["流动党员"]) == {"应转接组织关系": 1, "失联党员上报": 0, "失联登记": 2}


def test_a_past_view_says_which_day_it_shows():
    title = "截至2020年12月31日，按业务日期（当时的实际情况，含事后补录）"
    past = city_reply(as_of={"title": title, "day": "2020-12-31"})
    del past["snapshot"]
    assert figures(view_sections("city", past, CITY)[0])["数据时间"].startswith("截至2020年12月31日")


def test_the_site_sections_name_people_and_say_coded_values_in_chinese():
    sections = by_title(view_sections("site", site_reply(), CITY))
    project = figures(sections["概况"])
    assert (project["项目名称"], project["所属乡镇"], project["总投资(万元)"], project["开工日期"]) == (
        "白琳大桥", "白琳镇", Decimal("9000.5"), dt.date(2020, 6, 1))
    assert project["建设单位"] == "业主" and project["强制覆盖"] == "是" and project["竣工日期"] is None
    assert figures(sections["党支部"])["书记"] == "欧阳明月"
    assert sections["党小组"].rows[0][2:5] == ("欧阳明月", 2, "欧阳明月、m9")  # one who left: by id
    assert sections["在场党员名册"].rows[1] == ("司马青山", "男", "预备", dt.date(2005, 7, 1), "建设单位", "中交三航局",
                                            "技术人员", "一工段", "某村党支部", "转入", dt.date(2020, 7, 1))
    assert ("按组织关系", "流动", 1) in sections["党员构成"].rows
    # Sites and recorders by name, as the site page shows them (before: xm-7, township.bailin).
    assert sections["近期离场"].rows == (("m9", dt.date(2020, 7, 10), None, "白琳镇（乡镇）"),
                                      ("王五", dt.date(2020, 7, 9), "点头公路", "白琳镇 工地书记"))
    assert sections["三会一课待开"].rows[0][0] == "主题党日"
    assert sections["积分排名"].rows == ((2020, 1, "欧阳明月", 5), (2019, 1, "m7", 9))  # and the year before
    assert sections["发展党员名单"].rows[0][:3] == ("入党申请人", "王小明", dt.date(2018, 1, 1))
    assert sections["流动党员待办"].rows[0][:2] == ("应转接组织关系", "欧阳明月")
    assert sections["岗位责任人已离场"].rows == (("示范岗", "p1", "安全生产巡查岗", "王五", "m9"),
                                          ("队组（组长）", "k1", "党员突击队", "王五", "m9"))


def test_talks_name_the_member_and_birthdays_say_who_celebrated():
    talks = by_title(view_sections("talks", talks_reply()))
    assert figures(talks["概况"])["对象"] == "白琳大桥"
    assert talks["待谈话"].rows == (("欧阳明月", "新来党员必谈", dt.date(2020, 7, 1), dt.date(2020, 7, 8), "是"),
                                  ("m7", "施工违章必谈", dt.date(2020, 7, 2), dt.date(2020, 7, 9), "否"))
    birthdays = by_title(view_sections("birthdays", birthdays_reply()))
    assert birthdays["本月政治生日"].rows == (("欧阳明月", dt.date(2005, 7, 1), "是", dt.date(2020, 7, 1)),)
    assert birthdays["2020年尚未过政治生日"].rows == (("司马青山", dt.date(2005, 1, 1)),)


# ---- the lists: exactly the import's columns ---------------------------------------------------------------------


def back(words: dict[Any, str], word: str) -> str:
    return next(code.value for code, w in words.items() if w == word)


def test_the_roster_is_in_the_import_columns_and_each_row_is_an_arrival_again():
    other = site_reply("s2", "点头大桥", "diantou", [member("m3", "诸葛云飞")])
    roster = list_section("members", [site_reply(), other])
    assert roster.title == "党员花名册"
    assert list(roster.headers) == [header for header, _ in MEMBER_COLUMNS]
    assert [r[:3] for r in roster.rows] == [("s1", "m1", "欧阳明月"), ("s1", "m2", "司马青山"),
                                           ("s2", "m3", "诸葛云飞")]
    for row in roster.rows:
        cells = {field: value for (_, field), value in zip(MEMBER_COLUMNS, row, strict=True)}
        words = {"gender": GENDER, "status": STATUS, "unit_kind": UNIT_KIND, "job": JOB, "relation": RELATION}
        facts = {f: back(words[f], cells[f]) if f in words else cells[f] for f in MemberFacts.model_fields}
        arrival = RecordArrival.model_validate({"command_id": "6f1e3c2a-4f8e-4d1e-9d1e-6a7c1b2e9f40",
                                                "site_id": cells["site_id"], "member_id": cells["member_id"],
                                                "arrived_on": cells["arrived_on"], "member": facts})
        assert isinstance(cells["admitted_on"], dt.date) and arrival.member.name == cells["name"]


def test_the_project_list_is_in_the_import_columns_and_each_row_a_registration_again():
    projects = list_section("sites", [site_reply()])
    assert projects.title == "重点项目清单"
    assert list(projects.headers) == [header for header, _ in SITE_COLUMNS]
    row = dict(zip([f for _, f in SITE_COLUMNS], projects.rows[0], strict=True))
    assert (row["township"], row["department"], row["cost_wan"], row["start_date"]) == (
        "白琳镇", "交通运输局", Decimal("9000.5"), dt.date(2020, 6, 1))
    code = next(c for c, name in CITY.townships.items() if name == row["township"])
    units = {k: row.pop(k) for k in ("owner", "design", "construction", "supervision")}
    RegisterSite.model_validate({"command_id": "6f1e3c2a-4f8e-4d1e-9d1e-6a7c1b2e9f40", **row, "township": code,
                                 "units": units})


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_an_exported_project_list_and_roster_plan_into_the_very_commands_that_recorded_them(fmt: str):
    """What `gongdi import` makes of the files (a dry run: read and planned, nothing sent): the registrations and
    arrivals whose facts the site views show, so a list moves from one platform into an empty one."""
    from gongdi.sheets.importing import kind_of, run_import

    sites = [site_reply(), site_reply("s2", "点头大桥", "diantou", [member("m3", "诸葛云飞", job="manager")])]
    planned: dict[str, list[dict[str, Any]]] = {}
    for what in ("sites", "members"):
        data = write([list_section(what, sites)], fmt)
        report = asyncio.run(run_import(kind_of(what), data, f"{what}.{fmt}", CITY, None, importer="city"))
        assert all(p.command is not None for p in report.planned), [p.outcome for p in report.planned]
        planned[what] = [p.command.model_dump(mode="json", exclude={"command_id", "correlation_id"})
                         for p in report.planned if p.command is not None]
    assert planned["sites"] == [
        {"site_id": s["site_id"], "name": s["name"], "township": s["township"], "department": s["department"],
         "cost_wan": s["cost_wan"], "planned_months": s["planned_months"], "start_date": s["start_date"],
         "units": s["units"]} for s in sites]
    facts = list(MemberFacts.model_fields)
    assert planned["members"] == [
        {"site_id": s["site_id"], "member_id": m["member_id"], "arrived_on": m["arrived_on"],
         "member": {f: m[f] for f in facts}} for s in sites for m in s["members"]]


# ---- gathering from the views, as the caller ---------------------------------------------------------------------


class FakeViews:
    """The views' answers for a city with sites s1, s2 (bailin) and s3 (diantou); a township may read its own."""

    def __init__(self, identity: Identity):
        self.identity = identity
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.sites = {"bailin": [area_site("s1", "白琳大桥"), area_site("s2", "白琳隧道")],
                      "diantou": [area_site("s3", "点头大桥", "diantou")]}

    async def ask(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((name, params))
        if name == "city":
            return {"ok": True, "data": city_reply()}
        if name == "township":
            code = params["township"]
            if not self.identity.may_read_township(code):
                return {"ok": False, "error": {"code": "FORBIDDEN", "message": "无权查看这一乡镇视图 [NOT_YOURS]"}}
            if code not in self.sites:
                return {"ok": False, "error": {"code": "TOWNSHIP_NOT_FOUND", "message": "没有登记的工地"}}
            return {"ok": True, "data": township_reply(code, self.sites[code])}
        if name == "department":  # every site is the transport bureau's
            sites = [s for listed in self.sites.values() for s in listed]
            return {"ok": True, "data": {**township_reply("bailin", sites), "department": params["department"],
                                         "name": CITY.departments[params["department"]]}}
        if name == "site":
            where, found = next((t, s) for t, sites in self.sites.items() for s in sites
                                if s["site_id"] == params["site_id"])
            if not self.identity.may_read_site(where, "jiaotong", params["site_id"]):
                return {"ok": False, "error": {"code": "FORBIDDEN", "message": "无权查看这一工地视图 [NOT_YOURS]"}}
            return {"ok": True, "data": site_reply(params["site_id"], found["name"], township=where,
                                                   members=[member(f"{params['site_id']}-m", "欧阳明月")])}
        if name == "status":
            return {"ok": True, "data": status_reply()}
        raise AssertionError(name)


def test_the_city_lists_every_site_and_a_township_its_own():
    city = FakeViews(Identity(Role.CITY))
    made = asyncio.run(gather(city.ask, "members", {}, city.identity, CITY, today=dt.date(2020, 12, 31)))
    assert [r[0] for r in made.sections[0].rows] == ["s1", "s2", "s3"]
    assert made.stem == "福鼎市-党员花名册-2020-12-31" and made.ascii_stem == "members-all-2020-12-31"

    township = FakeViews(Identity(Role.TOWNSHIP, township="bailin"))
    made = asyncio.run(gather(township.ask, "sites", {}, township.identity, CITY))
    assert [r[0] for r in made.sections[0].rows] == ["s1", "s2"]
    assert {name for name, _ in township.asked} == {"township", "site"}  # never the city's list


def test_a_township_asking_for_another_townships_list_is_refused_by_the_views():
    township = FakeViews(Identity(Role.TOWNSHIP, township="diantou"))
    with pytest.raises(Refused) as refused:
        asyncio.run(gather(township.ask, "members", {"township": "bailin"}, township.identity, CITY))
    assert refused.value.code == "FORBIDDEN" and "NOT_YOURS" in refused.value.message


def test_a_dashboard_gets_no_roster_and_a_township_without_sites_an_empty_one():
    dashboard = FakeViews(Identity(Role.DASHBOARD))
    with pytest.raises(Refused) as refused:
        asyncio.run(gather(dashboard.ask, "members", {}, dashboard.identity, CITY))
    assert refused.value.code == "FORBIDDEN"
    city = FakeViews(Identity(Role.CITY))
    made = asyncio.run(gather(city.ask, "members", {"township": "yushan"}, city.identity, CITY))
    assert made.sections[0].rows == () and made.stem.startswith("嵛山镇-党员花名册-")


def test_a_list_takes_no_view_parameters_and_an_unknown_view_is_refused():
    city = FakeViews(Identity(Role.CITY))
    with pytest.raises(Refused) as refused:
        asyncio.run(gather(city.ask, "members", {"as_of": "2020-12-31"}, city.identity, CITY))
    assert (refused.value.code, refused.value.field) == ("VALIDATION_FAILED", "as_of")
    with pytest.raises(Refused):
        asyncio.run(gather(city.ask, "mayor", {}, city.identity, CITY))


@pytest.mark.parametrize(("identity", "named", "code"), [
    (Identity(Role.TOWNSHIP, township="bailin"), "白琳镇", "bailin"),
    (Identity(Role.SITE, township="diantou", site="s3"), "点头大桥", "s3"),
    (Identity(Role.DEPARTMENT, department="jiaotong"), "交通运输局", "jiaotong"),
    (Identity(Role.AUDITOR), "福鼎市", "all"),
])
def test_a_list_is_named_after_the_area_it_holds(identity: Identity, named: str, code: str):
    """A township's roster holds its own sites only: its file says the township, not the city (before:
    福鼎市-党员花名册-… for 白琳镇's members); a site secretary's says the project."""
    views = FakeViews(identity)
    for what, title in (("members", "党员花名册"), ("sites", "重点项目清单")):
        made = asyncio.run(gather(views.ask, what, {}, identity, CITY, today=dt.date(2020, 12, 31)))
        assert made.stem == f"{named}-{title}-2020-12-31", made.stem
        assert made.ascii_stem == f"{what}-{code}-2020-12-31"


def test_the_status_export_has_no_internal_service_name_in_its_name():
    city = FakeViews(Identity(Role.CITY))
    made = asyncio.run(gather(city.ask, "status", {}, city.identity, CITY, today=dt.date(2020, 12, 31)))
    assert made.stem == "视图进度-2020-12-31" and made.ascii_stem == "status-2020-12-31"


def test_a_views_export_is_named_after_what_and_when_it_shows():
    city = FakeViews(Identity(Role.CITY))
    made = asyncio.run(gather(city.ask, "city", {}, city.identity, CITY))
    assert made.title == "全市视图" and made.stem == "福鼎市-全市视图-2020-12-31"
    assert made.ascii_stem == "city-fuding-2020-12-31"
    assert figures(made.sections[0])["重点工程项目"] == 82


# ---- files ---------------------------------------------------------------------------------------------------------

SECTIONS = [
    Section("概况", ("项目", "数值"), (("重点工程项目", 82), ("数据时间", dt.datetime(2020, 12, 31, 12, 5, 6)),
                                   ("总投资(万元)", Decimal("9000.5")))),
    Section("在场党员名册", ("姓名", "入党日期", "备注"),
            (("=HYPERLINK(\"http://x\")", dt.date(2005, 7, 1), "长" * 80), ("欧阳明月", None, "-1+2"))),
]


def test_the_workbook_has_a_sheet_per_section_frozen_headers_and_typed_cells():
    book = load_workbook(io.BytesIO(to_xlsx(SECTIONS, "全市视图")))
    assert book.sheetnames == ["概况", "在场党员名册"] and book.properties.title == "全市视图"
    first, people = book["概况"], book["在场党员名册"]
    assert first.freeze_panes == "A2" and people.freeze_panes == "A2"
    assert [c.value for c in first[1]] == ["项目", "数值"] and first["A1"].font.bold
    assert first["B2"].value == 82 and first["B2"].data_type == "n"
    assert first["B3"].value == dt.datetime(2020, 12, 31, 12, 5, 6) and first["B3"].is_date
    assert first["B4"].value == 9000.5
    assert people["B2"].value == dt.datetime(2005, 7, 1) and people["B2"].number_format == "yyyy-mm-dd"
    # a name that looks like a formula stays the text it is
    assert people["A2"].value == "=HYPERLINK(\"http://x\")" and people["A2"].data_type == "s"
    widths = {c: people.column_dimensions[c].width for c in "ABC"}
    assert widths["A"] >= len("=HYPERLINK(\"http://x\")") and widths["C"] == MAX_WIDTH  # capped
    assert first.column_dimensions["A"].width >= 2 * len("重点工程项目")  # Chinese counts double


def test_sheet_names_are_ones_excel_accepts():
    long = Section("一" * 40, ("甲",), ())
    odd = Section("a/b:c?", ("甲",), ())
    book = load_workbook(io.BytesIO(to_xlsx([long, long, odd])))
    assert book.sheetnames[0] == "一" * 31 and book.sheetnames[1].endswith("(2)") and len(book.sheetnames[1]) <= 31
    assert book.sheetnames[2] == "a_b_c_"


def test_the_csv_has_a_bom_titled_sections_and_no_formula_excel_would_run():
    data = to_csv(SECTIONS)
    assert data.startswith(b"\xef\xbb\xbf") and BOM == "\ufeff"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[:5] == [["【概况】"], ["项目", "数值"], ["重点工程项目", "82"], ["数据时间", "2020-12-31 12:05:06"],
                        ["总投资(万元)", "9000.5"]]
    assert rows[5] == [] and rows[6] == ["【在场党员名册】"] and rows[7] == ["姓名", "入党日期", "备注"]
    assert rows[8][:2] == ["'=HYPERLINK(\"http://x\")", "2005-07-01"] and rows[9] == ["欧阳明月", "", "'-1+2"]


def test_a_single_section_csv_is_a_plain_table_a_list_imports_from():
    roster = list_section("members", [site_reply()])
    rows = list(csv.reader(io.StringIO(write([roster], "csv").decode("utf-8-sig"), newline="")))
    assert rows[0] == [header for header, _ in MEMBER_COLUMNS]
    assert rows[1] == ["s1", "m1", "欧阳明月", "女", "2005-07-01", "正式", "施工单位", "中交三航局", "农民工", "一工段",
                       "某村党支部", "流动", "2020-07-01"]
    with pytest.raises(ValueError):
        write([roster], "pdf")


def test_the_download_has_its_chinese_name_and_an_ascii_one():
    header = content_disposition("福鼎市-全市视图-2020-12-31", "city-fuding-2020-12-31", "xlsx")
    assert header.startswith('attachment; filename="city-fuding-2020-12-31.xlsx"; filename*=UTF-8\'\'')
    assert unquote(header.split("UTF-8''", 1)[1]) == "福鼎市-全市视图-2020-12-31.xlsx"
    assert header.isascii()
    assert 'filename="x_y.csv"' in content_disposition("x", "x\"y", "csv")


def test_a_townships_site_list_has_the_site_ids_beside_their_names():
    """Two projects may share a name (registration only warns); the id tells them apart, as an import names it."""
    twins = [area_site("tw-1", "沙埕港大桥引线工程"), area_site("tw-2", "沙埕港大桥引线工程")]
    listed = by_title(view_sections("township", township_reply(sites=twins), CITY, "city"))["工地一览"]
    assert listed.headers[:2] == ("工地", "工地编号")
    assert [row[:2] for row in listed.rows] == [("沙埕港大桥引线工程", "tw-1"), ("沙埕港大桥引线工程", "tw-2")]


def test_the_status_export_names_the_service_in_chinese():
    first = figures(by_title(view_sections("status", REPLIES["status"](), CITY, "city"))["概况"])
    assert first["对象"] == "视图服务（views）"


def test_the_status_export_holds_every_service_when_the_login_may_ask_them():
    """Before, it held the views' consumers only: not the writers' streams nor the policies that read them."""
    city = FakeViews(Identity(Role.CITY))
    every = {"streams": [{"service": "membership", "stream": "EVT_MEMBERSHIP", "recorded": 12, "published": 11}],
             "consumers": [{**status_reply()["consumers"][0], "recorded": 12},
                           {"service": "activities", "consumer": "activities-policy", "stream": "EVT_MEMBERSHIP",
                            "applied": 11, "published": 11, "dead_letters": 0, "letters": [], "recorded": 12}]}

    async def platform() -> dict[str, Any]:
        return every

    made = asyncio.run(gather(city.ask, "status", {}, city.identity, CITY, platform=platform))
    sections = by_title(list(made.sections))
    assert sections["事件流"].rows == (("党员管理服务", "EVT_MEMBERSHIP", 12, 11, 1),)
    assert [row[:2] for row in sections["消费者"].rows] == [("视图服务", "views"),
                                                         ("党建活动服务", "activities-policy")]

    async def refused() -> None:
        return None

    alone = asyncio.run(gather(city.ask, "status", {}, city.identity, CITY, platform=refused))
    assert "事件流" not in by_title(list(alone.sections))

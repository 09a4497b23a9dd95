"""Exports as data: each view's reply as Chinese sections (title, headers, rows), and the roster and project list in
the import columns, gathered from the views as the caller's own identity.

Nothing here reads the database or writes a file: `gather` asks the views through the function it is given (the
CLI's bus client, or the gateway's session), so the views' rights checks apply to every export unchanged, and
`gongdi.sheets.workbook` turns the sections into .xlsx or .csv bytes.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts.activities import LABELS as ACTIVITY_LABELS
from contracts.activities import split_talks_done
from contracts.city import City
from contracts.identity import LABELS as ROLE_LABELS
from contracts.identity import Identity, Role
from contracts.liaison import LABELS as LIAISON_LABELS
from contracts.queries import QUERIES, SERVICE_NAMES
from contracts.timeline import CITY_TZ, city_today
from gongdi.sheets.columns import GENDER, JOB, MEMBER_COLUMNS, RELATION, SITE_COLUMNS, STATUS, UNIT_KIND

Cell = str | int | float | Decimal | dt.date | dt.datetime | None
Reply = dict[str, Any]
# Asks one views query as the caller: (query name, parameters) → the reply {"ok": …, "data" | "error": …}.
Ask = Callable[[str, dict[str, Any]], Awaitable[Reply]]


@dataclass(frozen=True)
class Section:
    """One table of an export: a sheet of the workbook, or a titled block of the CSV."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Export:
    """What one export holds and the names its file gets."""

    title: str  # what it is, in Chinese: 全市视图, 党员花名册 …
    sections: tuple[Section, ...]
    stem: str  # the file's name without extension, in Chinese: 福鼎市-全市视图-2020-12-31
    ascii_stem: str  # the same for programs that cannot take a Chinese name: city-fuding-2020-12-31


class Refused(Exception):
    """The views refused a query of the export (its typed error), or the export cannot be made as asked."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field


# The two lists people keep in Excel, in exactly the columns `gongdi import` reads (gongdi.sheets.columns).
LISTS = {"members": ("党员花名册", MEMBER_COLUMNS), "sites": ("重点项目清单", SITE_COLUMNS)}
# Everything `gongdi export` and GET /api/export/… make: every views query, then the two lists.
EXPORTS: dict[str, str] = {**{name: q.title for name, q in QUERIES.items()},
                           **{name: title for name, (title, _) in LISTS.items()}}
# Site views asked at once for a list: each is a short read; more would only queue in the views' workers.
LIST_CONCURRENCY = 4

YES, NO = "是", "否"
STAGES = {"applicant": "入党申请人", "activist": "入党积极分子", "target": "发展对象", "probationary": "预备党员",
          "full": "已转正"}
STAGE_DAY = {"applicant": "applied_on", "activist": "activist_on", "target": "target_on",
             "probationary": "admitted_on", "full": "confirmed_on"}
TALENT = {"backbone_trained": "培养党员骨干", "recommended_management": "推荐进入项目管理层",
          "promoted_management": "骨干培养成管理人员", "recommended_crew_leaders": "推荐为班组长"}
DEVELOPMENT = {"applied": "入党申请人（含积极分子）", "activists": "入党积极分子", "targets": "发展对象",
               "probationary": "在工地接收的预备党员", "full_confirmed": "已转正", "developed": "发展党员",
               "developed_this_year": "今年发展党员", "applied_this_year": "今年递交入党申请",
               "activists_this_year": "今年列为积极分子", "confirmed_this_year": "今年转正",
               "overdue": "预备期满未转正"}
MOBILITY = {"transfer_prompts_open": "应转接组织关系", "escalated": "失联党员上报", "contact_lost": "失联登记"}
CASE_STATES = ("reported", "mediating", "resolved", "petitioned")
SITE_FIELDS = {"owner": "建设单位", "design": "设计单位", "construction": "施工单位", "supervision": "监理单位"}


# ---- cells -----------------------------------------------------------------------------------------------------


def day(value: str | None) -> dt.date | None:
    """An ISO day of a reply as a date (a date cell in the workbook, YYYY-MM-DD in the CSV)."""
    return dt.date.fromisoformat(value) if value else None


def moment(value: str | None) -> dt.datetime | None:
    """An ISO timestamp of a reply as the city's wall-clock time, to the second (spreadsheets have no zones)."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value).astimezone(CITY_TZ).replace(tzinfo=None, microsecond=0)


def number(value: str | int | float | None) -> int | Decimal | None:
    """A decimal of a reply (sent as text, 456000 or 1200.5) as a number: an int when whole."""
    if value is None or value == "":
        return None
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    return int(exact) if exact == exact.to_integral_value() else exact


def yes(flag: object) -> str:
    return YES if flag else NO


def word(labels: dict[Any, str], key: str | None) -> str | None:
    """The Chinese word for a coded value; the code itself when no word is known (a newer value than this code)."""
    if key is None:
        return None
    return labels.get(key, key)


def section(title: str, headers: Iterable[str], rows: Iterable[Iterable[Cell]]) -> Section:
    return Section(title, tuple(headers), tuple(tuple(r) for r in rows))


# ---- views → sections ---------------------------------------------------------------------------------------------


def about(data: Reply, view: str, subject: str, who: str | None) -> list[tuple[str, Cell]]:
    """The first rows of every view's 概况: which view of what, as of when, exported as whom."""
    rows: list[tuple[str, Cell]] = [("视图", QUERIES[view].title), ("对象", subject)]
    if data.get("as_of"):
        rows.append(("数据时间", data["as_of"]["title"]))
    elif data.get("snapshot"):
        rows.append(("数据时间", moment(data["snapshot"]["at"])))
    if who:
        rows.append(("导出身份", shown_identity(who)))
    return rows


def shown_identity(who: str) -> str:
    """Who exported, as people call that role, with the login name: 市工委（city）, 乡镇（township.bailin）."""
    try:
        role = Identity.parse(who).role
    except ValueError:
        return who
    return f"{ROLE_LABELS[role]}（{who}）"


HOLDS = {"post": "示范岗", "zone": "责任区", "team": "队组（组长）"}  # what a departed holder held


def recorder(actor: str, city: City | None) -> str:
    """Who recorded, as the site page says it: 沙城镇（乡镇）, 沙城镇 工地书记, 平台规则 …; the login name otherwise."""
    if actor.startswith("policy:"):
        return f"平台规则 {actor.removeprefix('policy:')}"
    try:
        identity = Identity.parse(actor)
    except ValueError:
        return actor
    if identity.role is Role.TOWNSHIP and identity.township:
        return f"{township_of(identity.township, city)}（乡镇）"
    if identity.role is Role.SITE and identity.township:
        return f"{township_of(identity.township, city)} 工地书记"
    if identity.role is Role.DEPARTMENT and identity.department and city is not None:
        return f"{city.departments.get(identity.department, identity.department)}（主管部门）"
    return shown_identity(actor)


def overview(rows: Iterable[tuple[str, Cell]]) -> Section:
    return section("概况", ("项目", "数值"), rows)


def township_of(code: str | None, city: City | None, known: str | None = None) -> str | None:
    if known:
        return known
    if code is None:
        return None
    return city.township_name(code) if city else code


def development_section(d: dict[str, Any]) -> Section:
    return section("发展党员", ("项目", "人数"), [(label, d.get(key)) for key, label in DEVELOPMENT.items()
                                              if key in d])


def activities_sections(a: dict[str, Any]) -> list[Section]:
    """党员活动 (counts by kind), 教育培训 (sessions and attendance), 三会一课 (held, due, overdue by kind)."""
    L = ACTIVITY_LABELS
    rows: list[tuple[Cell, ...]] = [("党员责任区", "", a["zones"])]
    rows += [("党员队伍", L.get(k, k), n) for k, n in a["teams"].items()]
    rows += [("党员示范岗", L.get(k, k), n) for k, n in a["posts"].items()]
    rows += [("党员示范岗", "岗位类别", a["post_kinds"]), ("党建引领示范工点", "", a["work_points"]),
             ("小发明小革新小改良", "创新成果", a["innovations"]),
             ("小发明小革新小改良", "全项目推广", a["innovations_adopted"])]
    rows += [("三进三必谈", L.get(k, k), n) for k, n in a["visits"].items()]
    talks = a["talks"]
    # 谈话: the three 必谈 and applicants' talks, owed and held alike and counted together, then told apart.
    rows += [("谈话", "待谈", talks["open"]), ("谈话", "其中逾期", talks["overdue"]),
             ("谈话", "已谈", talks["done"])]
    if isinstance(reasons := a.get("talks_by_reason"), dict):
        required, applicants = split_talks_done(reasons)
        rows += [("谈话", "已谈中三必谈", required), ("谈话", "已谈中入党申请人谈话", applicants)]
    if talks.get("mooted"):
        rows.append(("谈话", "关闭未谈（竣工或离场）", talks["mooted"]))
    rows += [("谈话", f"已谈（{L.get(k, k)}）", n) for k, n in (a.get("talks_by_method") or {}).items()]
    rows.append(("政治生日", "本月政治生日", a["birthdays_this_month"]))
    rows += [("三培两推", label, a["talent"][k]) for k, label in TALENT.items() if k in a.get("talent", {})]
    points = a.get("points") or {}
    if points.get("year"):
        year = f"{points['year']}年"
        rows += [("党员积分", f"{year}总分", points["total"]), ("党员积分", f"{year}积分党员", points["members"])]
        if "sites" in points:
            rows.append(("党员积分", f"{year}积分工地", points["sites"]))
        rows += [("党员积分", f"{year}{L.get(k, k)}", n) for k, n in points["by_category"].items()]
        # the years before, one by one: a scope's latest year may be one site's first entry of a new year
        for y in points.get("years", [])[1:]:
            rows += [("党员积分", f"{y['year']}年总分", y["total"]),
                     ("党员积分", f"{y['year']}年积分党员", y["members"]),
                     ("党员积分", f"{y['year']}年积分工地", y["sites"])]
    appraisal = a.get("appraisal") or {}
    if appraisal.get("year"):
        year = f"{appraisal['year']}年度"
        rows += [("民主评议", f"{year}评议支部", appraisal["branches"]),
                 ("民主评议", f"{year}评议党员", appraisal["appraised"])]
        rows += [("民主评议", f"{year}{L.get(k, k)}", n) for k, n in appraisal["grades"].items()]
        for y in appraisal.get("years", [])[1:]:
            rows += [("民主评议", f"{y['year']}年度评议支部", y["branches"]),
                     ("民主评议", f"{y['year']}年度评议党员", y["appraised"])]
    out = [section("党员活动", ("类别", "项目", "数量"), rows),
           section("教育培训", ("活动", "场次", "参加人次"),
                   [(L.get(k, k), v["sessions"], v["attendance"]) for k, v in a["lessons"].items()])]
    if "meetings" in a:
        out.append(section("三会一课", ("会议", "已开", "本期待开", "上期未开"),
                           [(L.get(k, k), v["held"], v["due"], v["overdue"])
                            for k, v in a["meetings"]["by_kind"].items()]))
    return out


def liaison_sections(li: dict[str, Any], site_names: dict[str, str]) -> list[Section]:
    """联席会议 and 党建联创 figures, 双达标, 纠纷调解, 帮扶驻地 and its villages, 共建协议."""
    L = LIAISON_LABELS
    items, co = li["meeting_items"], li["cobuilding"]
    rows: list[tuple[Cell, ...]] = [
        ("联席会议", "召开次数", li["meetings"]), ("议定事项", "已解决", items["resolved"]),
        ("议定事项", "未解决", items["open"]), ("议定事项", "其中逾期", items["overdue"])]
    rows += [("议定事项未解决", f"{L.get(k, k)}（逾期 {v['overdue']}）", v["open"])
             for k, v in items["by_unit"].items() if v["open"]]
    rows += [("党建联创", "协议", co["agreements"]), ("党建联创", "共建事项", co["items"]),
             ("党建联创", "已完成", co["completed"]), ("上访", "上访", li["petitions"]),
             ("上访", "其中薪资纠纷上访", li["wage_petitions"])]
    disputes = li["disputes"]
    return [
        section("联席会议", ("类别", "项目", "数量"), rows),
        section("双达标", ("目标", "达标", "未达标", "未考核"),
                [(L.get(k, k), v["met"], v["not_met"], v.get("unassessed")) for k, v in li["compliance"].items()]),
        section("纠纷调解", ("类别", *(L.get(s, s) for s in CASE_STATES), "合计"),
                [(L.get(k, k), *(v.get(s, 0) for s in CASE_STATES), sum(v.get(s, 0) for s in CASE_STATES))
                 for k, v in disputes.items()]),
        section("帮扶驻地", ("项目", "数量", "单位"),
                [(L.get(k, k), number(v["total"]), v["unit"]) for k, v in li["support"].items()]),
        section("帮扶明细", ("村（社区）", "项目", "数量", "单位"),
                [(x["village"], L.get(x["kind"], x["kind"]), number(x["total"]), x["unit"])
                 for x in li.get("support_by_village", [])]),
        section("共建协议", ("村", "工地", "共建事项", "已完成"),
                [(x["village"], x.get("site_name") or site_names.get(x["site_id"], x["site_id"]), x["items"],
                  x["completed"]) for x in co.get("by_agreement", [])]),
    ]


def mobility_sections(mo: dict[str, Any]) -> list[Section]:
    out = [section("流动党员", ("项目", "人数"), [(label, mo[k]) for k, label in MOBILITY.items() if k in mo])]
    if "sites" in mo:
        out.append(section("流动党员待办", ("工地", "应转接组织关系", "失联党员上报"),
                           [(x["name"], x["transfer_prompts_open"], x["escalated"]) for x in mo["sites"]]))
    return out


def shared_sections(d: Reply, site_names: dict[str, str]) -> list[Section]:
    """The sections every city, township and department view has, in the pages' order."""
    out = [development_section(d["development"])] if "development" in d else []
    if "activities" in d:
        out += activities_sections(d["activities"])
    if "liaison" in d:
        out += liaison_sections(d["liaison"], site_names)
    if "mobility" in d:
        out += mobility_sections(d["mobility"])
    return out


def city_sections(d: Reply, city: City | None, who: str | None) -> list[Section]:
    cov = d["coverage"]
    names = {x["site_id"]: x["name"] for x in [*d["gaps"], *d["should_form_branch"], *d["branch_warnings"]]}
    brief = ("工地", "所属乡镇", "在场正式党员")
    return [
        overview([*about(d, "city", subject_of("city", d), who),
                  ("重点工程项目", d["projects"]), ("已竣工", d["completed"]), ("从业人员", d["workers"]),
                  ("党员", d["members"]), ("正式党员", d["full_members"]),
                  ("预备党员", d["members"] - d["full_members"]), ("工地党支部", d["branches"]),
                  ("应覆盖工地", cov["qualifying"]), ("已覆盖", cov["covered"]), ("空白点", len(d["gaps"])),
                  ("应组建党支部", len(d["should_form_branch"])), ("强制覆盖标准", cov["rule"])]),
        section("各乡镇", ("乡镇（街道）", "项目", "从业人员", "党员", "党支部"),
                [(township_of(t["township"], city, t.get("name")), t["projects"], t["workers"], t["members"],
                  t["branches"]) for t in d["townships"]]),
        section("空白点", brief, [(g["name"], township_of(g["township"], city), g["full_members"])
                               for g in d["gaps"]]),
        section("应组建党支部", brief, [(g["name"], township_of(g["township"], city), g["full_members"])
                                   for g in d["should_form_branch"]]),
        section("支部规模提示", ("工地", "所属乡镇", "在场党员", "提示"),
                [(w["name"], township_of(w.get("township"), city), w["members"], w["warning"])
                 for w in d["branch_warnings"]]),
        section("逐月动态", ("月份", "党员进场", "党员离场", "新开工项目"),
                [(m["month"], m["arrivals"], m["departures"], m["sites_started"]) for m in d["by_month"]]),
        *shared_sections(d, names),
    ]


def area_sections(view: str, d: Reply, city: City | None, who: str | None) -> list[Section]:
    """A township's or a department's view: its figures and its sites, by name."""
    sites = d.get("sites", [])
    return [
        overview([*about(d, view, subject_of(view, d), who),
                  ("重点工程项目", d["projects"]), ("从业人员", d["workers"]), ("党员", d["members"]),
                  ("正式党员", sum(s["full_members"] for s in sites)), ("工地党支部", d["branches"]),
                  ("应覆盖工地", sum(1 for s in sites if s["qualifies"])),
                  ("空白点", sum(1 for s in sites if s["gap"])),
                  ("应组建党支部", sum(1 for s in sites if s["should_form_branch"]))]),
        # 工地编号 beside the name: two projects may share a name, and the id is what an import file names a site by.
        section("工地一览", ("工地", "工地编号", "所属乡镇", "主管部门", "从业人员", "在场党员", "正式党员", "党支部",
                         "强制覆盖", "空白点", "应组建党支部", "竣工日期", "规模提示"),
                [(s["name"], s["site_id"], township_of(s["township"], city, s.get("township_name")), s["department"],
                  s["workforce"], s["members_present"], s["full_members"], s["branch"] or "未建",
                  yes(s["qualifies"]), yes(s["gap"]), yes(s["should_form_branch"]), day(s["completed_on"]),
                  s.get("branch_warning")) for s in sites]),
        *shared_sections(d, {s["site_id"]: s["name"] for s in sites}),
    ]


def site_sections(d: Reply, city: City | None, who: str | None) -> list[Section]:
    """One site: the project, its branch and groups, the members present by name, and everything done there."""
    units = d["units"]
    members = d["members"]
    names = {m["member_id"]: m["name"] for m in members}
    out = [overview([
        *about(d, "site", subject_of("site", d), who),
        ("项目名称", d["name"]), ("所属乡镇", township_of(d["township"], city, d.get("township_name"))),
        ("主管部门", d["department"]), ("总投资(万元)", number(d["cost_wan"])), ("计划工期(月)", d["planned_months"]),
        ("开工日期", day(d["start_date"])), ("竣工日期", day(d["completed_on"])),
        *((label, units.get(k)) for k, label in SITE_FIELDS.items()),
        ("从业人员", d["workforce"]), ("在场党员", d["members_present"]), ("正式党员", d["full_members"]),
        ("预备党员", d["members_present"] - d["full_members"]), ("强制覆盖", yes(d["qualifies"])),
        ("空白点", yes(d["gap"])), ("应组建党支部", yes(d["should_form_branch"])),
        ("规模提示", d.get("branch_warning"))])]
    b = d["branch"]
    if b:
        out.append(section("党支部", ("项目", "内容"), [
            ("支部名称", b["name"]), ("成立日期", day(b["formed_on"])),
            ("书记", b.get("secretary_name") or b["secretary"]), ("党建工作指导员", b["instructor"]),
            ("联络员", b["liaison"]), ("支委", "、".join(names.get(x, x) for x in b.get("committee", [])) or None),
            ("组成单位", "、".join(b["member_units"])), ("成立时党员", b.get("members")),
            ("成立时正式党员", b.get("full_members")), ("撤销日期", day(b.get("dissolved_on")))]))
    else:
        out.append(section("党支部", ("项目", "内容"), [("支部名称", "未成立")]))
    out += [
        section("党小组", ("党小组", "工段/班组", "组长", "人数", "成员", "成立日期", "撤销日期"),
                [(g["name"], g["section"], g.get("leader_name") or g["leader"], len(g["members"]),
                  "、".join(n or m for m, n in zip(g["members"], g.get("member_names") or g["members"], strict=True)),
                  day(g["formed_on"]), day(g.get("closed_on"))) for g in d["groups"]]),
        section("在场党员名册", ("姓名", "性别", "党员状态", "入党日期", "单位类别", "单位名称", "岗位", "工段/班组",
                           "原党组织", "组织关系", "进场日期"),
                [(m["name"], word(GENDER, m.get("gender")), word(STATUS, m["status"]), day(m.get("admitted_on")),
                  word(UNIT_KIND, m["unit_kind"]), m["unit_name"], word(JOB, m["job"]), m["section"],
                  m.get("home_org"), word(RELATION, m["relation"]), day(m["arrived_on"])) for m in members]),
        section("党员构成", ("分类", "类别", "人数"),
                [*(("按单位类别", word(UNIT_KIND, k), n) for k, n in d["by_unit_kind"].items()),
                 *(("按工段/班组", k, n) for k, n in d["by_section"].items()),
                 *(("按组织关系", word(RELATION, k), n) for k, n in d["by_relation"].items())]),
        section("近期离场", ("姓名", "离场日期", "转至工地", "记录人"),
                [(x["name"] or x["member_id"], day(x["departed_on"]), x.get("moved_to_name") or x.get("moved_to_site"),
                  recorder(x["recorded_by"], city)) for x in d.get("recent_departures", [])]),
    ]
    ranking = d.get("points_ranking") or {}
    years = [ranking, *([ranking["earlier"]] if ranking.get("earlier") else [])]
    out.append(section("积分排名", ("年度", "名次", "姓名", "积分"),
                       [(y.get("year"), r["rank"], r["name"] or r["member_id"], r["points"])
                        for y in years for r in y.get("members", [])]))
    out.append(section("三会一课待开", ("会议", "本期起", "本期止", "本期已开", "本期待开", "上期未开", "最近召开"),
                       [(ACTIVITY_LABELS.get(m["kind"], m["kind"]), day(m["period"][0]), day(m["period"][1]),
                         m["held_this_period"], yes(m["due"]), yes(m["overdue"]), day(m["last_held_on"]))
                        for m in d.get("meetings_due", [])]))
    if "development" in d:
        out.append(development_section(d["development"]))
    candidates = d.get("development_candidates") or {}
    out.append(section("发展党员名单", ("阶段", "姓名", "申请日期", "确定积极分子", "确定发展对象", "入党日期",
                                    "预备期满", "延长预备期", "转正日期", "本阶段日期"),
                       [(STAGES.get(stage, stage), p["name"], day(p.get("applied_on")), day(p.get("activist_on")),
                         day(p.get("target_on")), day(p.get("admitted_on")), day(p.get("probation_ends")),
                         p.get("extensions"), day(p.get("confirmed_on")), day(p.get(STAGE_DAY.get(stage, ""))))
                        for stage, people in candidates.items() for p in people]))
    mo = d.get("mobility") or {}
    out.append(section("流动党员待办", ("事项", "姓名", "进场日期", "最后联系", "应办日期", "提醒/上报日期"), [
        *(("应转接组织关系", p["name"] or p["member_id"], day(p.get("arrived_on")), None, day(p.get("due_on")),
           day(p.get("prompted_on"))) for p in mo.get("transfer_prompts", [])),
        *(("失联党员上报", x["name"] or x["member_id"], None, day(x.get("last_contact_on")), None,
           day(x.get("escalated_on"))) for x in mo.get("escalated", [])),
        *(("失联党员", x["name"] or x["member_id"], None, day(x.get("last_contact_on")), None, None)
          for x in mo.get("contact_lost", []))]))
    out.append(section("岗位责任人已离场", ("类别", "编号", "名称", "负责人", "党员编号"),
                       [(HOLDS.get(h["what"], h["what"]), h["id"],
                         ACTIVITY_LABELS.get(h["kind"], h["kind"]), h.get("name"), h["member_id"])
                        for h in d.get("departed_holders", [])]))
    if "activities" in d:
        out += activities_sections(d["activities"])
    if "liaison" in d:
        out += liaison_sections(d["liaison"], {d["site_id"]: d["name"]})
    return out


def talks_sections(d: Reply, who: str | None) -> list[Section]:
    talks = d["open"]
    return [
        overview([*about(d, "talks", subject_of("talks", d), who), ("待谈话", len(talks)),
                  ("其中逾期", sum(1 for t in talks if t["overdue"]))]),
        section("待谈话", ("党员", "事由", "生成日期", "应谈日期", "逾期"),
                [(t.get("name") or t["member_id"], ACTIVITY_LABELS.get(t["reason"], t["reason"]),
                  day(t["created_on"]), day(t["due_on"]), yes(t["overdue"])) for t in talks]),
    ]


def records_sections(d: Reply, who: str | None) -> list[Section]:
    records = d["records"]
    return [
        overview([*about(d, "records", subject_of("records", d), who), ("可撤销的记录", len(records)),
                  ("是否全部列出", "否，只列出最近的" if d.get("more") else "是")]),
        section("可撤销的记录", ("类别", "日期", "类型", "内容", "数量", "编号"),
                [(ACTIVITY_LABELS.get(r["record"], r["record"]), day(r["day"]),
                  ACTIVITY_LABELS.get(r["kind"], r["kind"]), r["title"], r["count"], r["record_id"]) for r in records]),
    ]


def birthdays_sections(d: Reply, who: str | None) -> list[Section]:
    members, waiting = d["members"], d["not_celebrated_this_year"]
    year = d["month"][:4]
    return [
        overview([*about(d, "birthdays", subject_of("birthdays", d), who), ("月份", d["month"]),
                  ("本月政治生日", len(members)), (f"{year}年尚未过政治生日", len(waiting))]),
        section("本月政治生日", ("姓名", "入党日期", "已过政治生日", "过生日日期"),
                [(m["name"], day(m["admitted_on"]), yes(m["celebrated_on"]), day(m["celebrated_on"]))
                 for m in members]),
        section(f"{year}年尚未过政治生日", ("姓名", "入党日期"),
                [(m["name"], day(m["admitted_on"])) for m in waiting]),
    ]


def status_sections(d: Reply, who: str | None, platform: Reply | None = None) -> list[Section]:
    """The views' consumers; with `platform` (gongdi.ops.readiness.stream_status, for a login that may ask every
    service), every writer's stream, recorded against published, and every consumer of it, policies too."""
    consumers = (platform or d).get("consumers", [])
    streams = [section("事件流", ("服务", "流", "已记录", "已发布", "未发布"),
                       [(SERVICE_NAMES.get(x["service"], x["service"]), x["stream"], x["recorded"], x["published"],
                         max(0, x["recorded"] - x["published"])) for x in platform["streams"]])] if platform else []
    subject = "全平台：记录服务与视图服务" if platform else subject_of("status", d)
    return [
        overview(about(d, "status", subject, who)),
        *streams,
        section("消费者", ("服务", "消费者", "流", "已处理", "已发布", "落后", "死信"),
                [(SERVICE_NAMES.get(c["service"], c["service"]), c["consumer"], c["stream"], c["applied"],
                  c["published"], max(0, c["published"] - c["applied"]), c["dead_letters"]) for c in consumers]),
        section("死信", ("消费者", "流", "序号", "事件", "工地", "错误", "记录时间", "重试次数"),
                [(c["consumer"], c["stream"], x["stream_seq"], x.get("event_type"), x.get("site_id"), x["code"],
                  moment(x["recorded_at"]), x.get("retries", 0)) for c in consumers for x in c["letters"]]),
    ]




def subject_of(view: str, data: Reply) -> str:
    """What a view is of, by name: the city, township, department or project."""
    if view == "city":
        return str(data["city_name"])
    if view in ("township", "department"):
        return str(data.get("name") or data.get(view))
    if view == "site":
        return str(data["name"])
    if view in ("talks", "birthdays", "records"):
        return str(data.get("site_name") or data["site_id"])
    service = str(data.get("service", "views"))
    return f"{SERVICE_NAMES.get(service, service)}（{service}）"  # the platform's own: its internal name beside


def view_sections(view: str, data: Reply, city: City | None = None, who: str | None = None) -> list[Section]:
    """A view's reply (its `data`) as sections with Chinese headers and words, names rather than ids."""
    if view == "city":
        return city_sections(data, city, who)
    if view in ("township", "department"):
        return area_sections(view, data, city, who)
    if view == "site":
        return site_sections(data, city, who)
    if view == "talks":
        return talks_sections(data, who)
    if view == "birthdays":
        return birthdays_sections(data, who)
    if view == "records":
        return records_sections(data, who)
    if view == "status":
        return status_sections(data, who)
    raise ValueError(f"no export of view {view!r}")


# ---- the roster and the project list ----------------------------------------------------------------------------

# Coded values written as the Chinese words the import reads; days as dates; figures as numbers.
WORDS: dict[str, dict[Any, str]] = {"gender": GENDER, "status": STATUS, "unit_kind": UNIT_KIND, "job": JOB,
                                    "relation": RELATION}
DAYS = {"admitted_on", "arrived_on", "start_date"}


def list_cell(field: str, value: Any) -> Cell:
    if field in WORDS:
        return word(WORDS[field], value)
    if field in DAYS:
        return day(value)
    if field in ("cost_wan", "planned_months"):
        return number(value)
    return value


def member_records(site: Reply) -> list[dict[str, Any]]:
    """The members present on a site view, each as the fields of the arrival that would record them again."""
    return [{**m, "site_id": site["site_id"]} for m in site["members"]]


def site_record(site: Reply) -> dict[str, Any]:
    """A site view's registration facts, as the fields of RegisterSite (units flattened into their columns). The
    township by its name, as people write it (the import takes the name or the code); the department by its name,
    which is what a site records."""
    return {"site_id": site["site_id"], "name": site["name"], "township": site.get("township_name") or site["township"],
            "department": site["department"], "cost_wan": site["cost_wan"], "planned_months": site["planned_months"],
            "start_date": site["start_date"], **site["units"]}


def list_section(what: str, sites: list[Reply]) -> Section:
    """The roster (members) or the project list (sites) of these site views, in the import's columns."""
    title, columns = LISTS[what]
    records = ([r for s in sites for r in member_records(s)] if what == "members"
               else [site_record(s) for s in sites])
    return section(title, (header for header, _ in columns),
                   ((list_cell(field, r.get(field)) for _, field in columns) for r in records))


async def asked(ask: Ask, name: str, params: dict[str, Any]) -> Reply:
    """The data of one views query, or Refused with the service's code and message."""
    reply = await ask(name, params)
    if not reply.get("ok"):
        error = reply.get("error") or {}
        raise Refused(str(error.get("code", "INTERNAL")), str(error.get("message", "")), error.get("field"))
    return reply["data"]


async def scope_sites(ask: Ask, identity: Identity, township: str | None) -> list[str]:
    """The sites a list covers: the township asked for, else what the identity answers for (a township its sites,
    a department the projects it supervises, a site secretary the site, the city and everyone else all). The views
    decide what may be read: a township asking for another's is refused there."""
    async def area(view: str, key: str) -> list[str]:
        try:
            data = await asked(ask, view, {view: key})
        except Refused as exc:
            if exc.code == "TOWNSHIP_NOT_FOUND":  # a township without sites has nothing to list
                return []
            raise
        return [s["site_id"] for s in data.get("sites", [])]

    if township:
        return await area("township", township)
    if identity.role is Role.SITE and identity.site:
        return [identity.site]
    if identity.role is Role.TOWNSHIP and identity.township:
        return await area("township", identity.township)
    if identity.role is Role.DEPARTMENT and identity.department:
        return await area("department", identity.department)
    city = await asked(ask, "city", {})
    found: list[str] = []
    for t in city["townships"]:
        found += await area("township", t["township"])
    return found


async def site_views(ask: Ask, site_ids: list[str]) -> list[Reply]:
    """Each site's view, a few at a time; the first refusal ends the export (the rest are cancelled)."""
    gate = asyncio.Semaphore(LIST_CONCURRENCY)

    async def one(site_id: str) -> Reply:
        async with gate:
            return await asked(ask, "site", {"site_id": site_id})

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(s)) for s in sorted(set(site_ids))]
    except ExceptionGroup as failed:
        # The group cancels the other queries at the first failure, so there is one to report, as a single ask
        # would have raised it (a refusal, or the bus's own error for the CLI and the gateway to explain).
        raise failed.exceptions[0] from None
    return [t.result() for t in tasks]


def list_area(identity: Identity, township: str | None, sites: list[Reply],
              city: City | None) -> tuple[str | None, str]:
    """Whose sites a list holds, as (name, code) for the file's names, as `scope_sites` chose them: the township asked
    for, else the identity's own township, department or site (by the project's name), else the whole city."""
    if township:
        return township_of(township, city), township
    if identity.role is Role.SITE and identity.site:
        name = next((str(s["name"]) for s in sites if s["site_id"] == identity.site), identity.site)
        return name, identity.site
    if identity.role is Role.TOWNSHIP and identity.township:
        return township_of(identity.township, city), identity.township
    if identity.role is Role.DEPARTMENT and identity.department:
        code = identity.department
        return (city.departments.get(code, code) if city else code), code
    return (city.name if city else None), "all"


def stem_day(data: Reply | None, today: dt.date) -> str:
    """The day in a file's name: the as-of day asked, else the day the data were read, in the city's time."""
    if data and data.get("as_of"):
        return str(data["as_of"]["day"])
    if data and data.get("snapshot"):
        stamp = moment(data["snapshot"]["at"])
        if stamp:
            return stamp.date().isoformat()
    return today.isoformat()


async def gather(ask: Ask, what: str, params: dict[str, Any], identity: Identity, city: City | None = None,
                 today: dt.date | None = None,
                 platform: Callable[[], Awaitable[Reply | None]] | None = None) -> Export:
    """Everything one export holds, asked from the views as `identity` through `ask`: a view with the parameters
    of its query, or a list (`members`, `sites`; `params` may name a `township`) of the sites in scope. The status
    takes every service's from `platform` when it answers (None: the login may not ask them all)."""
    today = today or city_today()
    if what in LISTS:
        unknown = sorted(set(params) - {"township"})
        if unknown:
            raise Refused("VALIDATION_FAILED", f"{unknown[0]}: 名册与项目清单只能按乡镇导出 (not taken by a list)",
                          unknown[0])
        township = params.get("township")
        sites = await site_views(ask, await scope_sites(ask, identity, township))
        title = LISTS[what][0]
        where, code = list_area(identity, township, sites, city)
        stem = "-".join(x for x in (where, title, today.isoformat()) if x)
        return Export(title, (list_section(what, sites),), stem, f"{what}-{code}-{today.isoformat()}")
    if what not in QUERIES:
        raise Refused("VALIDATION_FAILED", f"没有这个视图 {what} (no such view)", "view")
    data = await asked(ask, what, params)
    query = QUERIES[what]
    sections = view_sections(what, data, city, identity.name)
    subject = subject_of(what, data)
    key = params.get(query.key) if query.key else (city.code if city else None)
    when = stem_day(data, today)
    if what == "birthdays":
        when = str(data["month"])
    if what == "status":  # the platform's own progress: its subject is the internal service name, not an area
        subject = key = None
        if platform is not None and (every := await platform()) is not None:
            sections = status_sections(data, identity.name, every)
    stem = "-".join(str(x) for x in (subject, query.title, when) if x)
    return Export(query.title, tuple(sections), stem, "-".join(str(x) for x in (what, key, when) if x))

"""Demo city data: the Fuding 2020 snapshot (82 projects, 12,708 workers, 251 members), sent as ordinary commands."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from contracts.base import Command
from contracts.city import DEFAULT_CITY_FILE, load_city
from contracts.membership import (
    FormBranch,
    FormPartyGroup,
    Gender,
    Job,
    MemberFacts,
    MemberStatus,
    RecordArrival,
    RegisterSite,
    Relation,
    ReportWorkforce,
    UnitKind,
    Units,
)
from gongdi.demo import development

# Fixed ids make seeding idempotent: a second run gets the first run's replies and writes nothing.
NAMESPACE = uuid.UUID("6f1c3a52-7d1e-4c55-9a0e-0f7c2d1b9e40")

PROJECTS, WORKERS, MEMBERS = 82, 12_708, 251
CATCHING_UP = {"SITE_NOT_FOUND", "NO_BRANCH", "MEMBER_NOT_PRESENT"}

# (site_id, name, township, department, cost 万元, months, workers, members) — the pilot sites of the report.
PILOTS = [
    ("shachengwan", "沙埕湾跨海公路通道工程", "shacheng", "交通运输局", 456000, 48, 2100, 40),
    ("baolong", "宝龙世家", "tongshan", "住房和城乡建设局", 150000, 36, 1500, 30),
    ("binhai-2", "滨海大道二期道路工程", "diantou", "交通运输局", 98000, 30, 1200, 25),
    ("dingsheng", "鼎盛钢铁项目", "dianxia", "工业和信息化局", 1200000, 36, 1800, 25),
    ("tangyuan-500kv", "棠园500KV输变电工程", "bailin", "发展和改革局", 62000, 24, 600, 20),
    ("wenhua-center", "福鼎市文化艺术中心", "tongcheng", "住房和城乡建设局", 52000, 30, 500, 15),
    ("taimu-road", "太姥山旅游公路", "taimushan", "交通运输局", 76000, 36, 450, 12),
    ("qianqi-port", "前岐港区码头工程", "qianqi", "交通运输局", 88000, 40, 400, 10),
    ("guanling-park", "贯岭工业园区基础设施", "guanling", "工业和信息化局", 43000, 24, 350, 8),
    ("shanqian-hospital", "山前医院迁建工程", "shanqian", "卫生健康局", 61000, 30, 300, 6),
]
OTHER_KINDS = [
    ("道路改造工程", "交通运输局"), ("安置房项目", "住房和城乡建设局"), ("供水管网工程", "水利局"),
    ("学校扩建工程", "教育局"), ("变电站工程", "发展和改革局"), ("河道整治工程", "水利局"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈"
GIVEN = ["建国", "志强", "海峰", "丽华", "明", "伟", "秀英", "立新", "国庆", "春梅", "晓东", "宏伟", "金龙", "永福",
         "少华", "玉兰", "文斌", "德胜", "红霞", "家豪"]
FEMALE_GIVEN = {"丽华", "秀英", "春梅", "玉兰", "红霞"}  # a member's gender goes with the given name
SECTIONS = ["一工段", "二工段", "三工段", "钢筋班组", "混凝土班组", "架桥班组"]
UNIT_KINDS = [UnitKind.construction, UnitKind.construction, UnitKind.construction, UnitKind.owner,
              UnitKind.supervision, UnitKind.design, UnitKind.department, UnitKind.township]
START = dt.date(2020, 3, 1)
REPORTED_ON = dt.date(2020, 8, 31)  # the day of the report's workforce figures
DESIGNER, SUPERVISOR = "福建省交通规划设计院", "福州市建设监理公司"


def demo_townships() -> dict[str, str]:
    """The demo is the report's own city: the platform's default configuration."""
    return load_city(DEFAULT_CITY_FILE).townships


def cid(*key: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(str(k) for k in key))


def sites() -> list[tuple[str, str, str, str, int, int, int, int]]:
    """82 sites whose workers and members add up exactly to the report's figures."""
    out = list(PILOTS)
    others = PROJECTS - len(PILOTS)
    workers_left = WORKERS - sum(p[6] for p in PILOTS)
    members_left = MEMBERS - sum(p[7] for p in PILOTS)
    names = demo_townships()
    townships = sorted(names)
    for i in range(others):
        kind, dept = OTHER_KINDS[i % len(OTHER_KINDS)]
        township = townships[i % len(townships)]
        workers = workers_left // others + (1 if i < workers_left % others else 0)
        # The first sites get 3 members: not yet a branch, so the city view flags them.
        flagged, rest = 12, members_left - 36
        j = i - flagged
        members = 3 if i < flagged else rest // (others - flagged) + (1 if j < rest % (others - flagged) else 0)
        big = i % 3 == 0  # every third one qualifies for mandatory coverage: a 空白点 until it forms a branch
        cost, months = (12000 + 500 * i, 24 + i % 12) if big else (800 + 60 * i, 6 + i % 14)
        out.append((f"xm-{i + 1:03d}", f"{names[township]}{kind}{i + 1:02d}", township, dept, cost, months,
                    workers, members))
    return out


def member_facts(n: int, site_name: str, department: str, township_name: str) -> MemberFacts:
    given = GIVEN[(n * 7) % len(GIVEN)]
    status = MemberStatus.probationary if n % 9 == 4 else MemberStatus.full
    month, day = 1 + n % 12, 1 + n % 28
    if status is MemberStatus.probationary:
        # Probation lasts a year (two at most, extended): a probationary member who arrives was admitted in the
        # year before. The month stays that of the roster's rule, so the political birthdays fall as before.
        admitted = dt.date(START.year - (month >= START.month), month, day)
    else:
        admitted = dt.date(1985 + n % 34, month, day)
    kind = UNIT_KINDS[n % len(UNIT_KINDS)]
    return MemberFacts(
        name=SURNAMES[n % len(SURNAMES)] + given,
        gender=Gender.female if given in FEMALE_GIVEN else Gender.male,
        admitted_on=admitted,
        status=status,
        unit_kind=kind,
        unit_name=unit_name(kind, site_name, department, township_name),
        job=[Job.worker, Job.worker, Job.technician, Job.manager][n % 4],
        section=SECTIONS[n % len(SECTIONS)],
        home_org=f"{['福建', '浙江', '江西', '安徽'][n % 4]}某村党支部",
        relation=Relation.transferred if n % 3 == 0 else Relation.mobile,
    )


def unit_name(kind: UnitKind, site_name: str, department: str, township_name: str) -> str:
    """The name of a member's unit as the site's records would give it (the units of `plan()`'s registrations)."""
    return {UnitKind.owner: f"{site_name}业主单位", UnitKind.design: DESIGNER,
            UnitKind.construction: f"{site_name}施工单位", UnitKind.supervision: SUPERVISOR,
            UnitKind.department: department, UnitKind.township: f"{township_name}人民政府"}[kind]


def roster() -> dict[str, list[tuple[str, MemberFacts]]]:
    """The members present on each site once seeded, numbered m0001… across the city: 28 of them admitted on the
    pilot sites in 2020 (gongdi/demo/development.py), the others arrived."""
    return development.admitted_roster(base_roster(), _township_names())


def _township_names() -> dict[str, str]:
    names = demo_townships()
    return {site[0]: names[site[2]] for site in sites()}


def development_plan() -> list[list[Command]]:
    """The membership development phases and the completed site, after `plan()`."""
    return development.phases(base_roster(), {site[0]: site[1] for site in sites()}, _township_names(), cid)


def base_roster() -> dict[str, list[tuple[str, MemberFacts]]]:
    """The members each site would have if all had arrived, numbered m0001… across the city."""
    out: dict[str, list[tuple[str, MemberFacts]]] = {}
    n = 0
    townships = demo_townships()
    for site_id, name, township, department, *_, members in sites():
        out[site_id] = []
        for _ in range(members):
            n += 1
            out[site_id].append((f"m{n:04d}", member_facts(n, name, department, townships[township])))
    return out


def plan() -> list[list[Command]]:
    """Commands in phases; the commands of one phase are independent of each other."""
    registrations, started, workforce, arrivals, branches, groups = [], [], [], [], [], []
    members_at = roster()
    names = demo_townships()
    admitted = {p.person_id for p in development.developed(base_roster())}  # present by admission, not arrival
    for site_id, name, township, dept, cost, months, workers, _ in sites():
        registrations.append(RegisterSite(
            command_id=cid("register", site_id), site_id=site_id, name=name, township=township,
            department=dept, cost_wan=Decimal(cost), planned_months=months, start_date=START,
            units=Units(owner=unit_name(UnitKind.owner, name, dept, names[township]), design=DESIGNER,
                        construction=unit_name(UnitKind.construction, name, dept, names[township]),
                        supervision=SUPERVISOR),
        ))
        # Reported when the site starts, as its members arrive, and again on the report's day: a view as of any day
        # from the start on shows a workforce. The same headcount both times, so the figure does not depend on the
        # order they are recorded in: a folder an older demo seeded has the later report first.
        started.append(ReportWorkforce(command_id=cid("workforce-start", site_id), site_id=site_id,
                                       headcount=workers, as_of=START))
        workforce.append(ReportWorkforce(command_id=cid("workforce", site_id), site_id=site_id,
                                         headcount=workers, as_of=REPORTED_ON))
        present = [(m, f) for m, f in members_at[site_id] if m not in admitted]
        for member_id, facts in present:
            arrivals.append(RecordArrival(command_id=cid("arrive", member_id), site_id=site_id,
                                          member_id=member_id, member=facts, arrived_on=START))
        if site_id in {p[0] for p in PILOTS}:
            full = [m for m, f in present if f.status is MemberStatus.full]
            branches.append(FormBranch(
                command_id=cid("branch", site_id), site_id=site_id, name=f"{name}工地兼合党支部",
                secretary=full[0], instructor="市委两新工委指导员", liaison=f"{names[township]}联络员",
                member_units=["业主单位", "施工单位", "监理单位", "驻地乡镇"], formed_on=dt.date(2020, 4, 1),
            ))
            by_section: dict[str, list[str]] = {}
            for m, f in present:
                by_section.setdefault(f.section, []).append(m)
            for k, (section, ids) in enumerate(sorted(by_section.items())):
                if len(ids) >= 3 and any(m in full for m in ids):
                    leader = next(m for m in ids if m in full)
                    groups.append(FormPartyGroup(
                        command_id=cid("group", site_id, section), site_id=site_id,
                        group_id=f"g{k + 1}", name=f"{section}党小组", section=section, leader=leader, members=ids,
                        formed_on=dt.date(2020, 4, 15),
                    ))
    return [registrations, started, workforce, arrivals, branches, groups]

"""Demo activities at the pilot sites: 60 zones, 45 teams, six kinds of posts, 7 work points, 三培两推, 三会一课."""
from __future__ import annotations

import datetime as dt
import uuid

from contracts.activities import (
    ActivityKind,
    AppraiseMembers,
    AwardPoints,
    CelebrateBirthdays,
    CrewCandidate,
    DesignateWorkPoint,
    DesignateZone,
    EstablishPost,
    FormTeam,
    Grade,
    Grading,
    MeetingKind,
    PointsCategory,
    PostKind,
    PromoteToManagement,
    RecommendCrewLeader,
    RecommendForManagement,
    RecordActivity,
    RecordBranchMeeting,
    RecordInnovation,
    RecordSafetyViolation,
    RecordTalk,
    RecordVisit,
    ReportPersonalChange,
    TeamKind,
    TrainBackbone,
    VisitKind,
)
from contracts.base import Command
from contracts.membership import MemberFacts
from gongdi.demo import development
from gongdi.demo.city import PILOTS, base_roster, cid
from gongdi.ops.client import GongdiClient

ZONES_PER_PILOT = 6  # 10 pilots × 6 = 60 党员责任区
TEAMS = [8, 6, 5, 5, 5, 4, 4, 3, 3, 2]  # 45 teams over the 10 pilots
TEAM_NAMES = {TeamKind.vanguard: "工建先锋小组", TeamKind.assault: "党员突击队", TeamKind.emergency: "党员应急小组"}
POST_PLACES = {
    PostKind.policy_consultation: "项目部党群服务中心", PostKind.opinion_collection: "驻地村部",
    PostKind.safety_patrol: "施工现场", PostKind.quality_supervision: "关键工点",
    PostKind.skills_mentoring: "工地夜校", PostKind.epidemic_prevention: "工地出入口",
}
WORK_POINTS = ["坑门里大桥主墩", "坑门里大桥合龙段", "A1标隧道进口", "A1标隧道出口", "沙埕湾特大桥", "互通立交",
               "钢筋加工场"]
INNOVATIONS = [
    ("shachengwan", "a1-waterproof", "防水板铺设工艺改良", "A1标段项目部"),
    ("shachengwan", "a1-levelling", "调平层施工平整度控制", "A1标段项目部"),
    ("shachengwan", "a1-blasting", "隧道光面爆破控制", "A1标段项目部"),
    ("shachengwan", "a1-escape-pipe", "隧道应急逃生管道连接", "A1标段项目部"),
    ("baolong", "bim-layout", "BIM总平布置", "宝龙世家兼合党支部"),
    ("baolong", "standard-fixtures", "定型化设置", "宝龙世家兼合党支部"),
]
SERVICES = [("文艺团体党支部", "文艺慰问演出"), ("茶业协会党支部", "送茶进工地"), ("美发协会党支部", "义务理发"),
            ("民办医院党支部", "义诊体检")]
DAY = dt.date(2020, 7, 1)
# 三培两推 per pilot site, in PILOTS order: the report's 48 backbone trained, 32 of them recommended into project
# management; a few promoted to management and recommended as crew leaders (with some workers).
BACKBONE = [10, 8, 6, 6, 5, 4, 3, 2, 2, 2]
RECOMMENDED = [7, 5, 4, 4, 3, 3, 2, 2, 1, 1]
PROMOTED = [2, 1, 0, 0, 0, 0, 0, 0, 0, 0]
CREW_LEADERS = [2, 1, 0, 0, 0, 0, 0, 0, 0, 0]  # backbone, and as many workers
SKILLS = ["钢筋焊接", "桥梁架设", "隧道爆破", "混凝土浇筑", "测量放样", "电气安装"]
MEETING_SITES = ("shachengwan", "baolong")  # every kind but 支委会 (the demo branches have a secretary only)


def _day(offset: int) -> dt.date:
    return DAY + dt.timedelta(days=offset)


def activity_plan(roster: dict[str, list[tuple[str, MemberFacts]]]) -> list[Command]:
    """Independent activity commands for the pilot sites; ids are fixed so that seeding twice writes once."""
    out: list[Command] = []
    joined = {p.person_id: p.admitted_on for p in development.developed(base_roster())}
    for p, (site_id, *_rest) in enumerate(PILOTS):
        ids = [m for m, _ in roster[site_id]]
        for z in range(ZONES_PER_PILOT):
            out.append(DesignateZone(
                command_id=cid("zone", site_id, z), site_id=site_id, zone_id=f"z{z + 1}",
                name=f"党员责任区{z + 1}", area=f"第{z + 1}作业面", responsible=[ids[z % len(ids)]],
                designated_on=_day(z),
            ))
        kinds = list(TeamKind)
        for t in range(TEAMS[p]):
            kind = kinds[t % 3]
            members = [ids[(t + k) % len(ids)] for k in range(min(3, len(ids)))]
            out.append(FormTeam(
                command_id=cid("team", site_id, t), site_id=site_id, team_id=f"t{t + 1}", kind=kind,
                name=f"{TEAM_NAMES[kind]}{t // 3 + 1}", leader=members[0], members=members,
                purpose="攻坚克难、关键时刻冲锋在前", formed_on=_day(t),
            ))
        for k, kind in enumerate(PostKind):
            out.append(EstablishPost(
                command_id=cid("post", site_id, kind.value), site_id=site_id, post_id=kind.value,
                kind=kind, holder=ids[k % len(ids)], place=POST_PLACES[kind], established_on=_day(k),
            ))
        out += _lessons(site_id, p, ids)
        out += _birthdays(site_id, roster[site_id])
        for v, kind in enumerate(VisitKind):
            out.append(RecordVisit(command_id=cid("visit", site_id, kind.value), site_id=site_id,
                                   kind=kind, place=f"{kind.value}-1", visitor="支部书记", visited_on=_day(v),
                                   members_met=(ids[v % len(ids)],)))
        out += _talent(site_id, p, ids)
        out += _meetings(site_id, ids, joined)
    out += _points_and_appraisal(roster)
    for w, name in enumerate(WORK_POINTS):
        out.append(DesignateWorkPoint(command_id=cid("point", w), site_id="shachengwan",
                                      point_id=f"w{w + 1}", name=name, designated_on=dt.date(2020, 5, 1)))
    for site_id, ident, title, team in INNOVATIONS:
        out.append(RecordInnovation(command_id=cid("innovation", ident), site_id=site_id,
                                    innovation_id=ident, title=title, team=team, recorded_on=_day(20),
                                    adopted_project_wide=True))
    first = {site_id: roster[site_id][0][0] for site_id, *_ in PILOTS}
    out.append(RecordSafetyViolation(command_id=cid("violation", "binhai-2"), site_id="binhai-2",
                                     member_id=first["binhai-2"], occurred_on=_day(25),
                                     description="高空作业未系安全带"))
    out.append(ReportPersonalChange(command_id=cid("change", "dingsheng"), site_id="dingsheng",
                                    member_id=first["dingsheng"], reported_on=_day(26), description="家人患病住院"))
    return out


def _talent(site_id: str, p: int, ids: list[str]) -> list[Command]:
    """培养骨干: the first members of each pilot site, trained in June 2020."""
    return [TrainBackbone(command_id=cid("backbone", site_id, m), site_id=site_id, member_id=m,
                          trained_on=dt.date(2020, 6, 1 + k), skill=SKILLS[k % len(SKILLS)])
            for k, m in enumerate(ids[:BACKBONE[p]])]


def talent_followups(roster: dict[str, list[tuple[str, MemberFacts]]]) -> list[Command]:
    """What needs the backbone trained first (send after activity_plan): promotions, recommendations."""
    out: list[Command] = []
    for p, (site_id, *_rest) in enumerate(PILOTS):
        backbone = [m for m, _ in roster[site_id]][:BACKBONE[p]]
        for k, m in enumerate(backbone[:RECOMMENDED[p]]):
            out.append(RecommendForManagement(command_id=cid("recommend", site_id, m), site_id=site_id,
                                              member_id=m, recommended_on=dt.date(2020, 9, 1 + k),
                                              position="项目部管理人员"))
        for m in backbone[-PROMOTED[p]:] if PROMOTED[p] else []:
            out.append(PromoteToManagement(command_id=cid("promote", site_id, m), site_id=site_id, member_id=m,
                                           promoted_on=dt.date(2020, 10, 8), position="施工员"))
        names = {m: facts.name for m, facts in roster[site_id]}
        for k in range(CREW_LEADERS[p]):
            m = backbone[RECOMMENDED[p] + k]
            out.append(RecommendCrewLeader(command_id=cid("crew-leader", site_id, m), site_id=site_id, person_id=m,
                                           name=names[m], candidate=CrewCandidate.backbone,
                                           recommended_on=dt.date(2020, 10, 15), crew="钢筋班组"))
            out.append(RecommendCrewLeader(command_id=cid("crew-leader", site_id, "worker", k), site_id=site_id,
                                           person_id=f"w-{site_id}-{k + 1}", name=f"优秀农民工{k + 1}",
                                           candidate=CrewCandidate.worker, recommended_on=dt.date(2020, 10, 15),
                                           crew="混凝土班组"))
    return out


def _meetings(site_id: str, ids: list[str], joined: dict[str, dt.date]) -> list[Command]:
    """三会一课 of 2020 after the branches were formed (1 April): every pilot holds its quarterly 支部党员大会 and
    党课; two sites also their monthly 主题党日 and 党小组会, and 沙埕湾 its 组织生活会. All but two of the members
    present that day attend (`joined`: the members admitted on the site during the year, present from then)."""
    plan: list[tuple[MeetingKind, dt.date, str]] = []
    for month in (4, 7, 10):
        plan.append((MeetingKind.general_assembly, dt.date(2020, month, 20), "支部党员大会：通报工作"))
        plan.append((MeetingKind.lecture, dt.date(2020, month, 25), "党课：安全生产与党员先锋作用"))
    if site_id in MEETING_SITES:
        for month in range(4, 13):
            plan.append((MeetingKind.themed_day, dt.date(2020, month, 5), "主题党日：党员进班组"))
            plan.append((MeetingKind.group, dt.date(2020, month, 16), "党小组会：学习与工段安全"))
    if site_id == "shachengwan":
        plan.append((MeetingKind.life_meeting, dt.date(2020, 12, 30), "2020年度组织生活会"))
    def present(on: dt.date) -> int:
        return sum(1 for m in ids if m not in joined or joined[m] <= on)

    return [RecordBranchMeeting(command_id=cid("meeting", site_id, kind.value, on), site_id=site_id, kind=kind,
                                held_on=on, topic=topic, attendance=max(present(on) - 2, 1), attendees=tuple(ids[:3]))
            for kind, on, topic in plan]


def _points_and_appraisal(roster: dict[str, list[tuple[str, MemberFacts]]]) -> list[Command]:
    """党员积分 of 2020 for the first twelve members of two sites, and 沙埕湾's 民主评议 of fifteen members: 5
    优秀 (exactly the third allowed), 9 合格, 1 基本合格."""
    out: list[Command] = []
    for site_id in MEETING_SITES:
        for k, m in enumerate([m for m, _ in roster[site_id]][:12]):
            for category, points in ((PointsCategory.post_goals, 25 + k % 10), (PointsCategory.obligations, 20 + k % 7),
                                     (PointsCategory.rules_kept, 12 + k % 5), (PointsCategory.innovation, k % 4)):
                if points:
                    out.append(AwardPoints(command_id=cid("points", site_id, m, category.value), site_id=site_id,
                                           member_id=m, category=category, points=points,
                                           awarded_on=dt.date(2020, 12, 20), reason="2020年度党员积分"))
    members = [m for m, _ in roster["shachengwan"]][:15]
    grades = [Grade.excellent] * 5 + [Grade.qualified] * 9 + [Grade.basically_qualified]
    out.append(AppraiseMembers(command_id=cid("appraisal", "shachengwan", 2020), site_id="shachengwan", year=2020,
                               appraised_on=dt.date(2020, 12, 28),
                               grades=[Grading(member_id=m, grade=g) for m, g in zip(members, grades, strict=True)]))
    return out


def _lessons(site_id: str, p: int, ids: list[str]) -> list[Command]:
    out: list[Command] = [
        RecordActivity(command_id=cid("night-school", site_id), site_id=site_id,
                       kind=ActivityKind.night_school, title="工地夜校：安全生产法", held_on=_day(3),
                       headcount=30 + 5 * p, attendees=tuple(ids[:3])),
        RecordActivity(command_id=cid("micro-lesson", site_id), site_id=site_id,
                       kind=ActivityKind.micro_lesson, title="微党课进工地", held_on=_day(5), headcount=len(ids)),
        RecordActivity(command_id=cid("safety-month", site_id), site_id=site_id,
                       kind=ActivityKind.safety_month, title="安全生产月", held_on=dt.date(2020, 6, 10),
                       headcount=80 + 10 * p),
    ]
    if p < 4:
        organisation, service = SERVICES[p]
        out.append(RecordActivity(command_id=cid("social", site_id), site_id=site_id,
                                  kind=ActivityKind.social_service, title="社会组织送服务", held_on=_day(12),
                                  headcount=60, organisation=organisation, service=service))
    if site_id == "baolong":
        out.append(RecordActivity(command_id=cid("drill", site_id), site_id=site_id,
                                  kind=ActivityKind.safety_drill, title="消防安全应急演练", held_on=_day(15),
                                  headcount=120))
    if site_id == "shachengwan":
        out.append(RecordActivity(command_id=cid("evening", site_id), site_id=site_id,
                                  kind=ActivityKind.cultural_evening, title="沙埕湾跨海大桥合龙暨全线贯通联欢晚会",
                                  held_on=dt.date(2020, 8, 28), headcount=600))
        out.append(RecordActivity(command_id=cid("contest", site_id), site_id=site_id,
                                  kind=ActivityKind.skills_contest, title="技能大练兵", held_on=_day(18),
                                  headcount=150))
    return out


def _birthdays(site_id: str, members: list[tuple[str, MemberFacts]]) -> list[Command]:
    """A 红色生日会 on 1 July 2020 for the members admitted in July."""
    july = [m for m, f in members if f.admitted_on.month == 7]
    if not july:
        return []
    return [CelebrateBirthdays(command_id=cid("birthday", site_id, 2020, 7), site_id=site_id,
                               held_on=DAY, members=july, cards_sent=len(july))]


async def close_talks(client: GongdiClient, site_ids: list[str]) -> list[Command]:
    """Talks the secretaries held: all arrival talks but those with every fifth member, left open to show, and
    every applicant's talk, ten days after the application (within the month the rule gives)."""
    out: list[Command] = []
    for site_id in site_ids:
        talks = (await client.query("views", "talks", {"site_id": site_id}))["data"]["open"]
        for t in talks:
            if t["reason"] == "application":
                out.append(RecordTalk(command_id=cid("talk", t["obligation_id"]), site_id=site_id,
                                      obligation_id=uuid.UUID(t["obligation_id"]), talked_by="支部书记",
                                      talked_on=dt.date.fromisoformat(t["created_on"]) + dt.timedelta(days=10),
                                      note="入党申请人谈话"))
                continue
            if t["reason"] != "new_arrival" or int(t["member_id"][1:]) % 5 == 0:
                continue
            out.append(RecordTalk(command_id=cid("talk", t["obligation_id"]), site_id=site_id,
                                  obligation_id=uuid.UUID(t["obligation_id"]), talked_by="支部书记",
                                  talked_on=dt.date(2020, 3, 5), note="了解思想、工作和家庭情况"))
    return out

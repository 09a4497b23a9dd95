"""Activities contracts: must-talks, visits, birthdays, zones, teams, posts, lessons, 三培两推, points, 三会一课."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Day, DoneDay, Event, Ids, Name, NonNegative, Note, Slug, SomeIds, parse
from contracts.errors import rule_broken
from contracts.upcasting import upcaster

SERVICE = "activities"

Members = Ids


class VisitKind(StrEnum):
    section = "section"  # 进工段
    crew = "crew"  # 进班组
    dormitory = "dormitory"  # 进宿舍


class TalkReason(StrEnum):
    new_arrival = "new_arrival"  # 新来的党员必谈
    safety_violation = "safety_violation"  # 施工违章必谈
    personal_change = "personal_change"  # 个人或家庭发生变故必谈
    application = "application"  # 入党申请人谈话: within a month of the application (membership's ApplicationSubmitted)


def split_talks_done(by_reason: dict[str, int]) -> tuple[int, int]:
    """Talks done by reason (a view's `talks_by_reason`) as (三必谈, 入党申请人谈话): an applicant's talk is owed
    and held like the three 必谈, and counted with them in a view's `talks`, but is none of them."""
    applicants = by_reason.get(TalkReason.application.value, 0)
    return sum(by_reason.values()) - applicants, applicants


class TalkMethod(StrEnum):
    in_person = "in_person"  # 面谈
    phone = "phone"  # 电话


class TeamKind(StrEnum):
    vanguard = "vanguard"  # 工建先锋小组
    assault = "assault"  # 党员突击队
    emergency = "emergency"  # 党员应急小组


class PostKind(StrEnum):
    policy_consultation = "policy_consultation"  # 政策宣传咨询岗
    opinion_collection = "opinion_collection"  # 民意收集反馈岗
    safety_patrol = "safety_patrol"  # 安全生产巡查岗
    quality_supervision = "quality_supervision"  # 工程质量监督岗
    skills_mentoring = "skills_mentoring"  # 技能帮带岗
    epidemic_prevention = "epidemic_prevention"  # 防疫专管岗


class ActivityKind(StrEnum):
    night_school = "night_school"  # 工地夜校
    micro_lesson = "micro_lesson"  # 微党课
    safety_month = "safety_month"  # 安全生产月
    skills_contest = "skills_contest"  # 技能大练兵
    safety_drill = "safety_drill"  # 安全应急演练
    social_service = "social_service"  # 社会组织送服务
    cultural_evening = "cultural_evening"  # 文艺晚会


class CrewCandidate(StrEnum):
    """Who is recommended as a crew leader (推荐为班组长)."""

    worker = "worker"  # 优秀农民工
    backbone = "backbone"  # 党员技术骨干 (trained here: BackboneTrained)


class PointsCategory(StrEnum):
    """党员积分: each category's yearly weight is a rule (contracts.rules, points_weight_<category>)."""

    post_goals = "post_goals"  # 岗位目标
    obligations = "obligations"  # 履行义务
    rules_kept = "rules_kept"  # 遵规守纪
    innovation = "innovation"  # 创新创效


class Grade(StrEnum):
    """民主评议 grades."""

    excellent = "excellent"  # 优秀
    qualified = "qualified"  # 合格
    basically_qualified = "basically_qualified"  # 基本合格
    unqualified = "unqualified"  # 不合格


class MeetingKind(StrEnum):
    """三会一课, 主题党日 and 组织生活会; how often each is due is a rule (contracts.rules.meeting_months)."""

    general_assembly = "general_assembly"  # 支部党员大会, quarterly
    committee = "committee"  # 支委会, monthly, where the branch has a committee
    group = "group"  # 党小组会, monthly, where the branch has party groups
    lecture = "lecture"  # 党课, quarterly
    themed_day = "themed_day"  # 主题党日, monthly
    life_meeting = "life_meeting"  # 组织生活会, yearly


LABELS: dict[str, str] = {
    "section": "进工段", "crew": "进班组", "dormitory": "进宿舍",
    "new_arrival": "新来党员必谈", "safety_violation": "施工违章必谈", "personal_change": "个人或家庭变故必谈",
    "application": "入党申请人谈话",
    "worker": "优秀农民工", "backbone": "党员骨干",
    "post_goals": "岗位目标", "obligations": "履行义务", "rules_kept": "遵规守纪", "innovation": "创新创效",
    "excellent": "优秀", "qualified": "合格", "basically_qualified": "基本合格", "unqualified": "不合格",
    "general_assembly": "支部党员大会", "committee": "支委会", "group": "党小组会", "lecture": "党课",
    "themed_day": "主题党日", "life_meeting": "组织生活会",
    "in_person": "面谈", "phone": "电话",
    "vanguard": "工建先锋小组", "assault": "党员突击队", "emergency": "党员应急小组",
    "policy_consultation": "政策宣传咨询岗", "opinion_collection": "民意收集反馈岗", "safety_patrol": "安全生产巡查岗",
    "quality_supervision": "工程质量监督岗", "skills_mentoring": "技能帮带岗", "epidemic_prevention": "防疫专管岗",
    "night_school": "工地夜校", "micro_lesson": "微党课", "safety_month": "安全生产月", "skills_contest": "技能大练兵",
    "safety_drill": "安全应急演练", "social_service": "社会组织送服务", "cultural_evening": "文艺晚会",
    "meeting": "会议", "activity": "活动", "appraisal": "民主评议", "talk": "谈心谈话", "points": "党员积分",
    "violation": "施工违章", "change": "个人或家庭变故", "post": "党员示范岗", "zone": "党员责任区", "team": "党员队伍",
}


# ---- commands ---------------------------------------------------------------------------------


class RecordVisit(Command):
    site_id: Slug
    kind: VisitKind
    place: Name
    visitor: Name
    visited_on: Day
    members_met: SomeIds = ()
    note: Note = ""


class RecordSafetyViolation(Command):
    site_id: Slug
    member_id: Slug
    occurred_on: DoneDay
    description: Name


class ReportPersonalChange(Command):
    site_id: Slug
    member_id: Slug
    reported_on: DoneDay
    description: Name


class RecordTalk(Command):
    site_id: Slug
    obligation_id: UUID
    talked_by: Name
    talked_on: DoneDay
    method: TalkMethod = TalkMethod.in_person  # 谈话方式
    note: Note = ""


class CelebrateBirthdays(Command):
    """A collective 红色生日会 for the members whose political birthday falls in the month."""

    site_id: Slug
    held_on: Day
    members: Members
    cards_sent: NonNegative = 0

    @model_validator(mode="after")
    def _unique(self) -> CelebrateBirthdays:
        if len(set(self.members)) != len(self.members):
            raise rule_broken("members", "参加党员有重复", "members must not repeat")
        return self


class DesignateZone(Command):
    site_id: Slug
    zone_id: Slug
    name: Name
    area: Name
    responsible: Members
    designated_on: Day | None = None  # 划定日期; not given: the day it is recorded


class FormTeam(Command):
    site_id: Slug
    team_id: Slug
    kind: TeamKind
    name: Name
    leader: Slug
    members: Members
    purpose: Name
    formed_on: Day | None = None  # 组建日期; not given: the day it is recorded

    @model_validator(mode="after")
    def _leader_in_team(self) -> FormTeam:
        if self.leader not in self.members:
            raise rule_broken("leader", "队伍负责人须为队伍成员之一", "leader must be one of the members")
        return self


class EstablishPost(Command):
    site_id: Slug
    post_id: Slug
    kind: PostKind
    holder: Slug
    place: Name
    established_on: Day | None = None  # 设岗日期; not given: the day it is recorded


class DesignateWorkPoint(Command):
    """党建引领示范工点."""

    site_id: Slug
    point_id: Slug
    name: Name
    designated_on: Day


class RecordActivity(Command):
    site_id: Slug
    kind: ActivityKind
    title: Name
    held_on: Day
    headcount: NonNegative
    attendees: SomeIds = ()
    organisation: Name | None = None  # 社会组织送服务: which organisation
    service: Name | None = None  # … and what service

    @model_validator(mode="after")
    def _social_service_names_organisation(self) -> RecordActivity:
        if self.kind is ActivityKind.social_service and not (self.organisation and self.service):
            raise rule_broken("service" if self.organisation else "organisation",
                              "社会组织送服务须填写社会组织和服务内容",
                              "a social-organisation service names the organisation and the service")
        if len(self.attendees) > self.headcount:
            raise rule_broken("headcount", f"参加人数不能少于所选参加党员人数（{len(self.attendees)} 名）",
                              "headcount must count at least the attendees named")
        return self


class RecordInnovation(Command):
    """小发明小革新小改良."""

    site_id: Slug
    innovation_id: Slug
    title: Name
    team: Name
    recorded_on: Day
    adopted_project_wide: bool = False


# 三培两推: a member trained as technical backbone, backbone promoted to management, a worker or backbone
# recommended as crew leader, a member recommended into project management. (Workers cultivated into members are
# membership's development path.)


class TrainBackbone(Command):
    """培养骨干: a member present on the site trained as technical backbone."""

    site_id: Slug
    member_id: Slug
    trained_on: Day
    skill: Name


class PromoteToManagement(Command):
    """培养成管理人员: backbone trained on this site promoted into management."""

    site_id: Slug
    member_id: Slug
    promoted_on: Day
    position: Name


class RecommendCrewLeader(Command):
    """推荐为班组长: a worker (maybe not a member: named here) or backbone trained on this site."""

    site_id: Slug
    person_id: Slug
    name: Name
    candidate: CrewCandidate
    recommended_on: Day
    crew: Name


class RecommendForManagement(Command):
    """推荐进入管理层: a member present on the site recommended into project management."""

    site_id: Slug
    member_id: Slug
    recommended_on: Day
    position: Name


Points = Annotated[int, Field(ge=1, le=100)]
Year = Annotated[int, Field(ge=1921, le=9999)]


class AwardPoints(Command):
    """党员积分: points for one member in one category; a year's points in a category stay within its weight."""

    site_id: Slug
    member_id: Slug
    category: PointsCategory
    points: Points
    awarded_on: DoneDay
    reason: Name


class Grading(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    member_id: Slug
    grade: Grade


class AppraiseMembers(Command):
    """民主评议: the branch's yearly appraisal, one grade per member appraised."""

    site_id: Slug
    year: Year
    appraised_on: Day
    grades: Annotated[list[Grading], Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _unique(self) -> AppraiseMembers:
        ids = [g.member_id for g in self.grades]
        if len(set(ids)) != len(ids):
            raise rule_broken("grades", "同一名党员只能评定一次", "a member is graded once")
        return self


class RecordBranchMeeting(Command):
    """三会一课, 主题党日, 组织生活会: a meeting of the site's branch (or one of its party groups)."""

    site_id: Slug
    kind: MeetingKind
    held_on: Day
    topic: Name
    attendance: NonNegative
    attendees: SomeIds = ()

    @model_validator(mode="after")
    def _attendance_counts_attendees(self) -> RecordBranchMeeting:
        if len(self.attendees) > self.attendance:
            raise rule_broken("attendance", f"到会人数不能少于所选到会党员人数（{len(self.attendees)} 名）",
                              "attendance must count at least the attendees named")
        return self


class RecordKind(StrEnum):
    """A record that can be retracted (撤销), and what names it: a meeting, an activity, points, a violation and a
    personal change by their ids (the command id that recorded them), an appraisal by its year, a talk by the id of
    the talk obligation it closed, a post, a zone and a team by the id they were given."""

    meeting = "meeting"  # 三会一课 etc. (BranchMeetingHeld)
    activity = "activity"  # 开展活动 (ActivityHeld)
    appraisal = "appraisal"  # 民主评议 (MembersAppraised)
    talk = "talk"  # 谈心谈话 (TalkHeld): its obligation is open again
    points = "points"  # 党员积分 (PointsAwarded, by its award_id): the category's year has room for them again
    violation = "violation"  # 施工违章 (SafetyViolationRecorded, by its violation_id): the talk it caused goes with it
    change = "change"  # 个人或家庭变故 (PersonalChangeReported, by its change_id): likewise
    post = "post"  # 党员示范岗 (PostEstablished, by its post_id)
    zone = "zone"  # 党员责任区 (ZoneDesignated, by its zone_id)
    team = "team"  # 党员队伍 (TeamFormed, by its team_id)


class RetractRecord(Command):
    """撤销: a record entered by mistake (twice, on the wrong site, with wrong grades) is withdrawn from the views.
    The log keeps the record and its retraction, with who retracted it and why."""

    site_id: Slug
    record: RecordKind
    record_id: Slug
    reason: Name


COMMANDS: dict[str, type[Command]] = {
    c.__name__: c
    for c in (RecordVisit, RecordSafetyViolation, ReportPersonalChange, RecordTalk, CelebrateBirthdays,
              DesignateZone, FormTeam, EstablishPost, DesignateWorkPoint, RecordActivity, RecordInnovation,
              TrainBackbone, PromoteToManagement, RecommendCrewLeader, RecommendForManagement, AwardPoints,
              AppraiseMembers, RecordBranchMeeting, RetractRecord)
}


# ---- events -----------------------------------------------------------------------------------


class VisitRecorded(Event):
    site_id: str
    kind: VisitKind
    place: str
    visitor: str
    visited_on: dt.date
    members_met: list[str]
    note: str


class SafetyViolationRecorded(Event):
    site_id: str
    member_id: str
    occurred_on: dt.date
    description: str
    violation_id: UUID | None = None  # the command id that recorded it, which names it to a retraction (None before)


class PersonalChangeReported(Event):
    site_id: str
    member_id: str
    reported_on: dt.date
    description: str
    change_id: UUID | None = None  # as violation_id


class TalkObligationCreated(Event):
    site_id: str
    obligation_id: UUID
    member_id: str
    reason: TalkReason
    created_on: dt.date
    due_on: dt.date


class TalkHeld(Event):
    """v2 says how the talk was held (谈话方式); v1 events, from before the command asked, read as 面谈."""

    schema_version: ClassVar[int] = 2
    site_id: str
    obligation_id: UUID
    member_id: str
    talked_by: str
    talked_on: dt.date
    method: TalkMethod = TalkMethod.in_person
    note: str


@upcaster("TalkHeld", 1)
def _talk_held_v2(payload: dict) -> dict:
    """Every talk recorded before v2 was recorded as held face to face: the command offered nothing else."""
    return {**payload, "method": TalkMethod.in_person.value}


class BirthdaysCelebrated(Event):
    site_id: str
    held_on: dt.date
    members: list[str]
    cards_sent: int


class ZoneDesignated(Event):
    site_id: str
    zone_id: str
    name: str
    area: str
    responsible: list[str]
    # Events recorded before the day was kept have none: as of a day they take the day of the fact before them on
    # the site (contracts.timeline.Window).
    designated_on: dt.date | None = None


class TeamFormed(Event):
    site_id: str
    team_id: str
    kind: TeamKind
    name: str
    leader: str
    members: list[str]
    purpose: str
    formed_on: dt.date | None = None  # None in events recorded before the day was kept (as designated_on)


class PostEstablished(Event):
    site_id: str
    post_id: str
    kind: PostKind
    holder: str
    place: str
    established_on: dt.date | None = None  # None in events recorded before the day was kept (as designated_on)


class WorkPointDesignated(Event):
    site_id: str
    point_id: str
    name: str
    designated_on: dt.date


class ActivityHeld(Event):
    site_id: str
    activity_id: UUID
    kind: ActivityKind
    title: str
    held_on: dt.date
    headcount: int
    attendees: list[str]
    organisation: str | None
    service: str | None


class InnovationRecorded(Event):
    site_id: str
    innovation_id: str
    title: str
    team: str
    recorded_on: dt.date
    adopted_project_wide: bool


class TalkObligationMooted(Event):
    """The site was completed, or the member left it, before the talk was held: the obligation is closed, not held
    (不再需要)."""

    site_id: str
    mooted_on: dt.date
    obligation_id: UUID
    member_id: str
    reason: str  # why it is moot: "site_completed" or "member_departed"


class BackboneTrained(Event):
    site_id: str
    member_id: str
    trained_on: dt.date
    skill: str


class PromotedToManagement(Event):
    site_id: str
    member_id: str
    promoted_on: dt.date
    position: str


class CrewLeaderRecommended(Event):
    site_id: str
    person_id: str
    name: str
    candidate: CrewCandidate
    recommended_on: dt.date
    crew: str


class RecommendedForManagement(Event):
    site_id: str
    member_id: str
    recommended_on: dt.date
    position: str
    backbone: bool  # trained as backbone on this site first (the seed's "骨干推荐进入项目管理层")


class PointsAwarded(Event):
    site_id: str
    member_id: str
    category: PointsCategory
    points: int
    awarded_on: dt.date
    reason: str
    award_id: UUID | None = None  # the command id that awarded them, which names them to a retraction (None before)


class MembersAppraised(Event):
    site_id: str
    appraised_on: dt.date
    year: int
    grades: list[Grading]


class BranchMeetingHeld(Event):
    site_id: str
    meeting_id: UUID
    kind: MeetingKind
    held_on: dt.date
    topic: str
    attendance: int
    attendees: list[str]


class RecordRetracted(Event):
    """A record withdrawn (撤销). Its business day is the record's own: a view of what was true at a time never
    shows the record, while one of what the platform showed then shows it until the retraction was recorded."""

    BUSINESS_DAY: ClassVar[str] = "record_day"
    site_id: str
    record: RecordKind
    record_id: str
    record_day: dt.date
    what: str  # the record as people read it, kept so the history says what was withdrawn
    reason: str
    member_id: str | None = None  # whom a retracted talk was with: the retraction is in their history too
    # The talk obligation a retracted violation or personal change had caused, withdrawn with it (its talk not held).
    obligation_id: UUID | None = None
    # The members a retracted zone, team, appraisal, meeting or activity named: the retraction is in their histories.
    members: list[str] | None = None


EVENTS: dict[str, type[Event]] = {
    e.__name__: e
    for e in (VisitRecorded, SafetyViolationRecorded, PersonalChangeReported, TalkObligationCreated, TalkHeld,
              BirthdaysCelebrated, ZoneDesignated, TeamFormed, PostEstablished, WorkPointDesignated, ActivityHeld,
              InnovationRecorded, TalkObligationMooted, BackboneTrained, PromotedToManagement, CrewLeaderRecommended,
              RecommendedForManagement, PointsAwarded, MembersAppraised, BranchMeetingHeld, RecordRetracted)
}


def parse_event(event_type: str, schema_version: int, payload: dict) -> Event:
    return parse(EVENTS, event_type, schema_version, payload)


def meeting_period(day: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """The first and last day of the period of `months` (a divisor of 12, periods start in January) holding `day`."""
    first_month = (day.month - 1) // months * months + 1
    start = dt.date(day.year, first_month, 1)
    end_month = first_month + months
    end = (dt.date(day.year + 1, 1, 1) if end_month > 12 else dt.date(day.year, end_month, 1)) - dt.timedelta(days=1)
    return start, end

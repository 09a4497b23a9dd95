"""Activities contracts: must-talks, visits, political birthdays, zones, teams, posts, work points, lessons."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import model_validator

from contracts.base import Command, Day, Event, Ids, Name, NonNegative, Note, Slug, SomeIds, parse
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


LABELS: dict[str, str] = {
    "section": "进工段", "crew": "进班组", "dormitory": "进宿舍",
    "new_arrival": "新来党员必谈", "safety_violation": "施工违章必谈", "personal_change": "个人或家庭变故必谈",
    "in_person": "面谈", "phone": "电话",
    "vanguard": "工建先锋小组", "assault": "党员突击队", "emergency": "党员应急小组",
    "policy_consultation": "政策宣传咨询岗", "opinion_collection": "民意收集反馈岗", "safety_patrol": "安全生产巡查岗",
    "quality_supervision": "工程质量监督岗", "skills_mentoring": "技能帮带岗", "epidemic_prevention": "防疫专管岗",
    "night_school": "工地夜校", "micro_lesson": "微党课", "safety_month": "安全生产月", "skills_contest": "技能大练兵",
    "safety_drill": "安全应急演练", "social_service": "社会组织送服务", "cultural_evening": "文艺晚会",
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
    occurred_on: Day
    description: Name


class ReportPersonalChange(Command):
    site_id: Slug
    member_id: Slug
    reported_on: Day
    description: Name


class RecordTalk(Command):
    site_id: Slug
    obligation_id: UUID
    talked_by: Name
    talked_on: Day
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
            raise ValueError("members must not repeat")
        return self


class DesignateZone(Command):
    site_id: Slug
    zone_id: Slug
    name: Name
    area: Name
    responsible: Members


class FormTeam(Command):
    site_id: Slug
    team_id: Slug
    kind: TeamKind
    name: Name
    leader: Slug
    members: Members
    purpose: Name

    @model_validator(mode="after")
    def _leader_in_team(self) -> FormTeam:
        if self.leader not in self.members:
            raise ValueError("leader must be one of the members")
        return self


class EstablishPost(Command):
    site_id: Slug
    post_id: Slug
    kind: PostKind
    holder: Slug
    place: Name


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
            raise ValueError("a social-organisation service names the organisation and the service")
        if len(self.attendees) > self.headcount:
            raise ValueError("headcount must count at least the attendees named")
        return self


class RecordInnovation(Command):
    """小发明小革新小改良."""

    site_id: Slug
    innovation_id: Slug
    title: Name
    team: Name
    recorded_on: Day
    adopted_project_wide: bool = False


COMMANDS: dict[str, type[Command]] = {
    c.__name__: c
    for c in (RecordVisit, RecordSafetyViolation, ReportPersonalChange, RecordTalk, CelebrateBirthdays,
              DesignateZone, FormTeam, EstablishPost, DesignateWorkPoint, RecordActivity, RecordInnovation)
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


class PersonalChangeReported(Event):
    site_id: str
    member_id: str
    reported_on: dt.date
    description: str


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


class TeamFormed(Event):
    site_id: str
    team_id: str
    kind: TeamKind
    name: str
    leader: str
    members: list[str]
    purpose: str


class PostEstablished(Event):
    site_id: str
    post_id: str
    kind: PostKind
    holder: str
    place: str


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


EVENTS: dict[str, type[Event]] = {
    e.__name__: e
    for e in (VisitRecorded, SafetyViolationRecorded, PersonalChangeReported, TalkObligationCreated, TalkHeld,
              BirthdaysCelebrated, ZoneDesignated, TeamFormed, PostEstablished, WorkPointDesignated, ActivityHeld,
              InnovationRecorded)
}


def parse_event(event_type: str, schema_version: int, payload: dict) -> Event:
    return parse(EVENTS, event_type, schema_version, payload)

"""History as wire contract: every event touching a site, a member, a dispute case or a site's party branch.

Every writing service answers `qry.<service>.history` (the kit, gongdi.service.kit) from its own log with a
`HistoryPage`; `gongdi.ops.history` asks all of them, follows the causes across services and merges the answers
into one `History` (the CLI's `gongdi history`, the gateway's `GET /api/history/{kind}/{ident}`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import activities, liaison, membership
from contracts.base import Slug
from contracts.errors import rule_broken
from contracts.identity import Identity, Role
from contracts.subjects import query_subject

HISTORY = "history"
SERVICES = (membership.SERVICE, activities.SERVICE, liaison.SERVICE)  # the writers, in the order they are merged


def history_subject(service: str) -> str:
    return query_subject(service, HISTORY)


# What a history is of; `branch` is the party branch of the site with that id (a site has at most one).
SUBJECTS: dict[str, str] = {"site": "工地", "member": "党员", "case": "纠纷案件", "branch": "工地党支部"}
Subject = Literal["site", "member", "case", "branch"]
# The follow-ups: events caused by given events (`causation_id`), events closing given obligations, and the events
# naming given members (their arrivals and applications, for the names a history's lines show).
Follow = Literal["caused_by", "closing", "naming"]
MAX_IDS = 500  # ids per follow-up request (about 20 KiB); the merge sends more in several requests
LIMIT = 2000  # events per answer, the first in recorded order; `truncated` says there were more


class HistoryQuery(BaseModel):
    """`{kind, id}` for a subject's events; `{kind: caused_by|closing, ids}` and `{kind: naming, members}` for the
    follow-ups."""

    model_config = ConfigDict(extra="forbid")
    kind: Subject | Follow
    id: Slug | None = None  # site id, member id, case id, or the site id of the branch
    ids: Annotated[list[UUID], Field(max_length=MAX_IDS)] = []  # event ids (caused_by), obligation ids (closing)
    members: Annotated[list[Slug], Field(max_length=MAX_IDS)] = []  # member or applicant ids (naming)

    @model_validator(mode="after")
    def _one_target(self) -> HistoryQuery:
        if self.kind in SUBJECTS and (self.id is None or self.ids or self.members):
            raise rule_broken("id", f"查{SUBJECTS[self.kind]}的历史须给出一个编号 id，不给 ids 或 members",
                              f"kind {self.kind} takes an id only")
        if self.kind == "naming" and (self.id is not None or self.ids or not self.members):
            raise rule_broken("members", "按党员查姓名须给出党员编号 members，不给 id 或 ids",
                              "kind naming takes members only")
        if self.kind in ("caused_by", "closing") and (self.id is not None or self.members or not self.ids):
            raise rule_broken("ids", "按事件追溯须给出事件编号 ids，不给 id 或 members",
                              f"kind {self.kind} takes ids only")
        return self


# Which payload fields name a member: one id, or a list of ids.
# `person_id`: the 发展党员 path (application to confirmation, the admission too) and 三培两推's recommendations name
# the person so, before and after admission (an admitted person's member id is the same).
MEMBER_FIELDS = ("member_id", "person_id", "secretary", "leader", "holder")
MEMBER_LISTS = ("members", "attendees", "members_met", "responsible", "committee")
MEMBER_ENTRIES = ("grades",)  # lists of entries each naming a member by `member_id` (民主评议's grades)
CASE_FIELD = "case_id"
# The events that give a member's or an applicant's name, by the field naming them (`naming`); all are the
# membership service's.
NAMING: dict[str, str] = {membership.MemberArrived.__name__: "member_id",
                          membership.ApplicationSubmitted.__name__: "person_id"}
NAMED_BY = membership.SERVICE

# A branch's history: its forming, its party groups, the teams, posts and zones of its members, its birthdays and
# lessons, its 三会一课 and 民主评议, and its co-building with villages (which needs a branch).
BRANCH_EVENTS: dict[str, frozenset[str]] = {
    membership.SERVICE: frozenset({membership.BranchFormed.__name__, membership.PartyGroupFormed.__name__,
                                   membership.BranchDissolved.__name__, membership.PartyGroupClosed.__name__}),
    activities.SERVICE: frozenset({activities.TeamFormed.__name__, activities.PostEstablished.__name__,
                                   activities.ZoneDesignated.__name__, activities.BirthdaysCelebrated.__name__,
                                   activities.ActivityHeld.__name__, activities.BranchMeetingHeld.__name__,
                                   activities.MembersAppraised.__name__, activities.RecordRetracted.__name__}),
    liaison.SERVICE: frozenset({liaison.CoBuildingAgreementSigned.__name__, liaison.CoBuildingItemCompleted.__name__}),
}

# A branch's officers (its secretary and committee, as formed) leaving belongs to its history: the event naming
# them, the fields that do, and the events of theirs that are added. (Their arrivals are not: each would bring its
# talk obligations along as consequences.)
BRANCH_OFFICERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    membership.SERVICE: (membership.BranchFormed.__name__, ("secretary",), ("committee",)),
}
OFFICER_EVENTS = (membership.MemberDeparted.__name__,)

# Something opened by one event and closed by another naming the same id in the same field: a talk obligation and
# the talk held for it.
OPENS: dict[str, str] = {activities.TalkObligationCreated.__name__: "obligation_id"}
CLOSES: dict[str, str] = {activities.TalkHeld.__name__: "obligation_id",
                          activities.TalkObligationMooted.__name__: "obligation_id"}

# The records a `RecordRetracted` names (its `record` and `record_id`): the event and the field holding the id.
RETRACTABLE: dict[str, tuple[str, str]] = {
    activities.BranchMeetingHeld.__name__: (activities.RecordKind.meeting.value, "meeting_id"),
    activities.ActivityHeld.__name__: (activities.RecordKind.activity.value, "activity_id"),
    activities.MembersAppraised.__name__: (activities.RecordKind.appraisal.value, "year"),
    activities.TalkHeld.__name__: (activities.RecordKind.talk.value, "obligation_id"),
    activities.PointsAwarded.__name__: (activities.RecordKind.points.value, "award_id"),
    activities.SafetyViolationRecorded.__name__: (activities.RecordKind.violation.value, "violation_id"),
    activities.PersonalChangeReported.__name__: (activities.RecordKind.change.value, "change_id"),
    activities.PostEstablished.__name__: (activities.RecordKind.post.value, "post_id"),
    activities.ZoneDesignated.__name__: (activities.RecordKind.zone.value, "zone_id"),
    activities.TeamFormed.__name__: (activities.RecordKind.team.value, "team_id"),
}
RETRACTION = activities.RecordRetracted.__name__

EVENT_LABELS: dict[str, str] = {
    # membership
    "SiteRegistered": "工地登记", "WorkforceReported": "报告从业人数", "MemberArrived": "党员进场",
    "MemberDeparted": "党员离场", "BranchFormed": "成立党支部", "PartyGroupFormed": "成立党小组",
    "SiteCompleted": "工程竣工",
    "ApplicationSubmitted": "递交入党申请", "ActivistDesignated": "确定入党积极分子",
    "DevelopmentTargetDesignated": "确定发展对象", "ProbationaryAdmitted": "接收预备党员",
    "ProbationExtended": "延长预备期", "FullMembershipConfirmed": "预备党员转正", "BranchDissolved": "党支部撤销",
    "PartyGroupClosed": "党小组撤销",
    "RelationTransferred": "组织关系转入", "ContactLost": "登记失联", "ContactRestored": "恢复联系",
    "TransferPrompted": "提醒转接组织关系", "ContactEscalated": "失联党员上报",
    # activities
    "VisitRecorded": "走访", "SafetyViolationRecorded": "施工违章", "PersonalChangeReported": "个人或家庭变故",
    "TalkObligationCreated": "产生谈话任务", "TalkHeld": "谈话完成", "BirthdaysCelebrated": "过政治生日",
    "ZoneDesignated": "划定党员责任区", "TeamFormed": "组建党员队伍", "PostEstablished": "设立党员示范岗",
    "WorkPointDesignated": "确定示范工点", "ActivityHeld": "开展活动", "InnovationRecorded": "创新成果",
    "TalkObligationMooted": "谈话任务关闭（不再需要）", "BackboneTrained": "培养党员骨干",
    "PromotedToManagement": "骨干培养成管理人员", "CrewLeaderRecommended": "推荐为班组长",
    "RecommendedForManagement": "推荐进入项目管理层", "PointsAwarded": "党员积分", "MembersAppraised": "民主评议",
    "BranchMeetingHeld": "三会一课", "RecordRetracted": "撤销记录",
    # liaison
    "JointMeetingHeld": "召开联席会议", "ComplianceLetterSigned": "签订双达标承诺书",
    "ComplianceAssessed": "双达标考核",
    "CoBuildingAgreementSigned": "签订党建联创协议", "CoBuildingItemCompleted": "完成共建事项",
    "DisputeReported": "受理纠纷", "MediationStarted": "开始调解", "MediationResolved": "调解成功",
    "DisputeEscalated": "纠纷上访", "VillageSupportRecorded": "帮扶驻地",
}


# ---- rights ---------------------------------------------------------------------------------------------------

# A history names people and who recorded what: the city and the auditor read every one, a township its own
# sites', a site's secretary its own site's. Departments and the dashboard see figures only.
HISTORY_READERS = frozenset({Role.CITY, Role.AUDITOR, Role.TOWNSHIP, Role.SITE})


def may_ask_history(sender: Identity) -> bool:
    return sender.role in HISTORY_READERS


def may_read_event(sender: Identity, township: str, site_id: str | None) -> bool:
    """One event of a history, by the site it was recorded on (the department is not asked: departments do not
    read histories at all)."""
    return may_ask_history(sender) and sender.may_read_site(township, None, site_id or "")


# ---- replies --------------------------------------------------------------------------------------------------


class HistoryEvent(BaseModel):
    """One event as its service recorded it."""

    service: str
    position: int  # in its service's log
    event_id: UUID
    type: str
    stream_id: str
    version: int
    site_id: str | None
    township: str
    actor: str  # the identity that recorded it (contracts.identity), or `policy:<rule>` for a policy's event
    command_id: UUID | None
    correlation_id: UUID | None
    causation_id: UUID | None  # the event it follows from, when a policy recorded it
    occurred_at: datetime  # when it happened, as the command said
    recorded_at: datetime  # when the store committed it
    payload: dict[str, Any]
    intact: bool = True  # False: its hash no longer matches what the row holds (changed after it was written)


class HistoryPage(BaseModel):
    """One service's answer, in recorded order."""

    service: str
    kind: str
    id: str | None = None
    events: list[HistoryEvent]
    withheld: int = 0  # events that match but lie on sites the sender may not read (a member who moved on)
    truncated: bool = False  # more than LIMIT matched: the first LIMIT are listed


class HistoryEntry(HistoryEvent):
    cause: UUID | None = None  # the event of the list this one follows from (原因 → 结果)
    followed: bool = False  # found by following causes, not because it touches the subject itself


class HistoryLine(BaseModel):
    """One event as people read it (gongdi.ops.history.reading): at `depth` under the event that caused it."""

    depth: int
    what: str  # its day, what happened, whom or what it is about
    where: str  # the site, when the history is not a site's own
    when: str  # when it was done and recorded, by whom, by which command, in which service
    event_id: str
    type: str
    intact: bool
    member: str | None = None  # the member (or applicant) it is about, other than the history's own


class HistoryReading(BaseModel):
    """The history as the CLI prints it and the pages show it: a title, warnings, the lines, notes."""

    title: str
    warnings: list[str]
    lines: list[HistoryLine]
    notes: list[str]


class History(BaseModel):
    """Every service's events on the subject and what they caused, merged by recorded time."""

    kind: Subject
    id: str
    events: list[HistoryEntry]
    withheld: int = 0
    truncated: bool = False
    site_names: dict[str, str] = {}  # the projects' names of the sites the events are on, as the views have them
    member_names: dict[str, str] = {}  # the names of the members the events name, from their arrivals elsewhere
    actor_names: dict[str, str] = {}  # the townships and departments that acted, by their names in the city file
    reading: HistoryReading | None = None  # the same in words (gongdi.ops.history.reading)

"""Membership contracts: sites, workforce, member arrivals and departures, branches, party groups."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from contracts.base import (
    Command,
    CostWan,
    Day,
    Event,
    Ids,
    Months,
    Name,
    NonNegative,
    People,
    PlanDay,
    ShortNote,
    Slug,
    SomeIds,
    parse,
)

SERVICE = "membership"


# The choices' Chinese names, as a refusal lists them (contracts.errors) and the record form shows them.
LABELS: dict[str, str] = {
    "owner": "建设单位", "design": "设计单位", "construction": "施工单位", "supervision": "监理单位",
    "department": "主管部门", "township": "驻地乡镇/村", "full": "正式党员", "probationary": "预备党员",
    "transferred": "组织关系转入", "mobile": "流动党员", "worker": "农民工", "technician": "技术人员",
    "manager": "管理人员", "male": "男", "female": "女", "transfer_prompt": "应转接组织关系",
    "contact_escalation": "失联党员上报",
}


class UnitKind(StrEnum):
    owner = "owner"  # 业主/建设单位
    design = "design"  # 设计
    construction = "construction"  # 施工
    supervision = "supervision"  # 监理
    department = "department"  # 主管部门
    township = "township"  # 驻地乡镇/村


class MemberStatus(StrEnum):
    full = "full"  # 正式党员
    probationary = "probationary"  # 预备党员


class Relation(StrEnum):
    transferred = "transferred"  # 组织关系转入
    mobile = "mobile"  # 流动党员


class Job(StrEnum):
    worker = "worker"  # 农民工
    technician = "technician"
    manager = "manager"


class Gender(StrEnum):
    male = "male"
    female = "female"


class UnitsRecord(BaseModel):
    """The four participating companies of a project (参建单位) as an event keeps them: checked when recorded
    (`Units`), read back as they are, so that a rule made stricter later does not refuse an older event on replay
    (validating them again was a third of reading an event back)."""

    # A command's `Units` given to an event becomes this class, so that events compare and dump alike.
    model_config = ConfigDict(extra="forbid", frozen=True, revalidate_instances="subclass-instances")
    owner: str
    design: str
    construction: str
    supervision: str


class Units(UnitsRecord):
    """The four participating companies as a command gives them: names by the rules."""

    owner: Name
    design: Name
    construction: Name
    supervision: Name




# ---- commands ---------------------------------------------------------------------------------


class RegisterSite(Command):
    opens_site: ClassVar[bool] = True
    site_id: Slug
    name: Name
    township: Slug  # one of the configured city's townships (checked by the rules)
    department: Name  # one of its competent departments (checked by the rules)
    cost_wan: CostWan
    planned_months: Months
    start_date: PlanDay
    units: Units


class ReportWorkforce(Command):
    site_id: Slug
    headcount: NonNegative
    as_of: Day


class MemberRecord(BaseModel):
    """What a site records of an arriving member, as an event keeps it (see `UnitsRecord`); ID-card numbers and
    phones are never part of it."""

    model_config = ConfigDict(extra="forbid", frozen=True, revalidate_instances="subclass-instances")
    name: str
    gender: Gender
    admitted_on: dt.date
    status: MemberStatus
    unit_kind: UnitKind
    unit_name: str
    job: Job
    section: str
    home_org: str
    relation: Relation


class MemberFacts(MemberRecord):
    """A member's facts as a command gives them: names and days by the rules."""

    name: Name
    admitted_on: Day
    unit_name: Name
    section: Name
    home_org: Name


class RecordArrival(Command):
    site_id: Slug
    member_id: Slug
    member: MemberFacts
    arrived_on: Day


class RecordDeparture(Command):
    site_id: Slug
    member_id: Slug
    departed_on: Day
    reason: ShortNote = ""


class FormBranch(Command):
    site_id: Slug
    name: Name
    secretary: Slug
    instructor: Name
    liaison: Name
    member_units: People
    committee: SomeIds = ()
    formed_on: Day


class FormPartyGroup(Command):
    site_id: Slug
    group_id: Slug
    name: Name
    section: Name
    leader: Slug
    members: Ids
    formed_on: Day


class CompleteSite(Command):
    """The project is completed (竣工): the site takes no more arrivals and is no longer a coverage gap; its branch
    is dissolved, its groups closed and every member present handed back to the home organisation."""

    site_id: Slug
    completed_on: Day


COMMANDS: dict[str, type[Command]] = {
    c.__name__: c
    for c in (RegisterSite, ReportWorkforce, RecordArrival, RecordDeparture, FormBranch, FormPartyGroup,
              CompleteSite)
}


# ---- events -----------------------------------------------------------------------------------


class SiteRegistered(Event):
    site_id: str
    name: str
    township: str
    department: str
    cost_wan: Decimal
    planned_months: int
    start_date: dt.date
    units: UnitsRecord


class WorkforceReported(Event):
    site_id: str
    headcount: int
    as_of: dt.date


class MemberArrived(Event):
    site_id: str
    member_id: str
    member: MemberRecord
    arrived_on: dt.date


class MemberDeparted(Event):
    site_id: str
    member_id: str
    departed_on: dt.date
    reason: str = ""
    moved_to_site: str | None = None


class BranchFormed(Event):
    site_id: str
    name: str
    secretary: str
    instructor: str
    liaison: str
    member_units: list[str]
    committee: list[str]
    formed_on: dt.date
    full_members: int
    members: int


class PartyGroupFormed(Event):
    site_id: str
    group_id: str
    name: str
    section: str
    leader: str
    members: list[str]
    formed_on: dt.date


class SiteCompleted(Event):
    site_id: str
    completed_on: dt.date


EVENTS: dict[str, type[Event]] = {
    e.__name__: e
    for e in (SiteRegistered, WorkforceReported, MemberArrived, MemberDeparted, BranchFormed, PartyGroupFormed,
              SiteCompleted)
}


def parse_event(event_type: str, schema_version: int, payload: dict) -> Event:
    return parse(EVENTS, event_type, schema_version, payload)


# ---- membership development (发展党员) and the branch lifecycle (docs/architecture.md, "Membership development") --
# A person's path on a site: 入党申请 → 入党积极分子 → 发展对象 → 预备党员 → 正式党员, each step dated, the steps after
# the application approved by a named organisation (`approved_by`): a site's joint branch is a temporary organisation
# and may not develop members, so the rules refuse its own name there. Timelines: contracts.rules.Rules.


class SubmitApplication(Command):
    """A worker on the site hands in an application to join (入党申请书). The activities service turns the event into
    a talk obligation (reason "application", due `application_talk_months` after `applied_on`)."""

    site_id: Slug
    person_id: Slug  # the site's own id for the person (like member_id); the member id once admitted
    name: Name
    gender: Gender
    birth_date: Day  # for the age rule only (applicant_min_age); no view shows it
    applied_on: Day
    unit_kind: UnitKind
    unit_name: Name
    job: Job
    section: Name


class DesignateActivist(Command):
    """确定入党积极分子."""

    site_id: Slug
    person_id: Slug
    designated_on: Day
    approved_by: Name  # the organisation that decided it; never the site's joint branch


class DesignateDevelopmentTarget(Command):
    """确定发展对象: an activist cultivated at least `activist_min_months`."""

    site_id: Slug
    person_id: Slug
    designated_on: Day
    approved_by: Name


class AdmitProbationary(Command):
    """接收预备党员: the development target becomes a probationary member present on the site, admitted (political
    birthday) on `admitted_on`; the approving organisation is the member's home organisation (原党组织)."""

    site_id: Slug
    person_id: Slug
    admitted_on: Day
    approved_by: Name


class ExtendProbation(Command):
    """延长预备期: once, by at most `probation_extension_max_months`."""

    site_id: Slug
    person_id: Slug  # a probationary member present: one admitted here, or one who arrived as probationary
    extended_on: Day
    months: Months
    approved_by: Name


class ConfirmFullMembership(Command):
    """预备党员转正: not before the probation (with its extension) has run; ends the probation."""

    site_id: Slug
    person_id: Slug
    confirmed_on: Day
    approved_by: Name


COMMANDS.update({c.__name__: c for c in (SubmitApplication, DesignateActivist, DesignateDevelopmentTarget,
                                         AdmitProbationary, ExtendProbation, ConfirmFullMembership)})

# The reason every member present gets when the site's project is completed and its branch dissolved.
HANDED_BACK = "工程竣工，党员回原党组织 (handed back to home organisation)"


class ApplicationSubmitted(Event):
    """The activities service's policy keys on `site_id`, `person_id`, `name` and `applied_on`."""

    site_id: str
    person_id: str
    name: str
    applied_on: dt.date  # the first date field: the event's business day (before birth_date)
    birth_date: dt.date
    gender: Gender
    unit_kind: UnitKind
    unit_name: str
    job: Job
    section: str


class ActivistDesignated(Event):
    site_id: str
    person_id: str
    designated_on: dt.date
    approved_by: str


class DevelopmentTargetDesignated(Event):
    site_id: str
    person_id: str
    designated_on: dt.date
    approved_by: str


class ProbationaryAdmitted(Event):
    """Always followed, in the same command, by the MemberArrived that makes the person a member present."""

    site_id: str
    person_id: str
    admitted_on: dt.date
    approved_by: str
    probation_ends: dt.date


class ProbationExtended(Event):
    site_id: str
    person_id: str
    extended_on: dt.date
    months: int
    approved_by: str
    probation_ends: dt.date  # the new end


class FullMembershipConfirmed(Event):
    site_id: str
    person_id: str
    confirmed_on: dt.date
    approved_by: str


class BranchDissolved(Event):
    """The site's project was completed: its joint branch is dissolved (in the same command as SiteCompleted)."""

    site_id: str
    name: str
    dissolved_on: dt.date


class PartyGroupClosed(Event):
    site_id: str
    group_id: str
    closed_on: dt.date


EVENTS.update({e.__name__: e for e in (ApplicationSubmitted, ActivistDesignated, DevelopmentTargetDesignated,
                                       ProbationaryAdmitted, ProbationExtended, FullMembershipConfirmed,
                                       BranchDissolved, PartyGroupClosed)})


# ---- mobility: relation transfers, lost contact, and the timers' outcomes (docs/architecture.md, "Timers") ------


class TransferRelation(Command):
    """A mobile member's organisational relation is transferred to the site (转入): closes the transfer prompt."""

    site_id: Slug
    member_id: Slug
    transferred_on: Day


class RecordContactLost(Command):
    """The site has lost contact with a member present (失联); escalated once out of contact for six months."""

    site_id: Slug
    member_id: Slug
    last_contact_on: Day


class RecordContactRestored(Command):
    site_id: Slug
    member_id: Slug
    restored_on: Day


class Timer(StrEnum):
    transfer_prompt = "transfer_prompt"  # 应转接组织关系
    contact_escalation = "contact_escalation"  # 失联党员上报


class FireTimer(Command):
    """Internal: the membership service's timer runner fires one member's timer on the runner clock's `today`. Not
    in COMMANDS, so no one can send it on the bus; `today` is a plain date, as an injected clock may run ahead."""

    site_id: Slug
    member_id: Slug
    timer: Timer
    today: dt.date


COMMANDS.update({c.__name__: c for c in (TransferRelation, RecordContactLost, RecordContactRestored)})


class RelationTransferred(Event):
    site_id: str
    member_id: str
    transferred_on: dt.date


class ContactLost(Event):
    site_id: str
    member_id: str
    last_contact_on: dt.date


class ContactRestored(Event):
    site_id: str
    member_id: str
    restored_on: dt.date


class TransferPrompted(Event):
    """A mobile member present `transfer_prompt_months` since `arrived_on`: the site should transfer the relation."""

    # True from the day it falls due (a timer that ran later, or a log filled in afterwards, fires it later).
    BUSINESS_DAY: ClassVar[str] = "due_on"
    site_id: str
    member_id: str
    arrived_on: dt.date  # the stay it belongs to: one prompt per stay
    due_on: dt.date
    prompted_on: dt.date  # the runner clock's day when it fired (on or after due_on)


class ContactEscalated(Event):
    """A member out of contact `contact_escalation_months` since `last_contact_on`: reported to the township."""

    BUSINESS_DAY: ClassVar[str] = "due_on"  # as for a transfer prompt
    site_id: str
    member_id: str
    last_contact_on: dt.date
    due_on: dt.date
    escalated_on: dt.date


EVENTS.update({e.__name__: e for e in (RelationTransferred, ContactLost, ContactRestored, TransferPrompted,
                                       ContactEscalated)})

"""Membership contracts: sites, workforce, member arrivals and departures, branches, party groups."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

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


class Units(BaseModel):
    """The four participating companies of a project (参建单位)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
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


class MemberFacts(BaseModel):
    """What a site records of an arriving member; ID-card numbers and phones are never part of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    gender: Gender
    admitted_on: Day
    status: MemberStatus
    unit_kind: UnitKind
    unit_name: Name
    job: Job
    section: Name
    home_org: Name
    relation: Relation


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

    @model_validator(mode="after")
    def _members_unique(self) -> FormPartyGroup:
        if len(set(self.members)) != len(self.members):
            raise ValueError("members must not repeat")
        return self


class CompleteSite(Command):
    """The project is completed (竣工): the site takes no more arrivals and is no longer a coverage gap."""

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
    units: Units


class WorkforceReported(Event):
    site_id: str
    headcount: int
    as_of: dt.date


class MemberArrived(Event):
    site_id: str
    member_id: str
    member: MemberFacts
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

"""Command builders for integration tests and benchmarks."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from contracts.membership import (
    FormBranch,
    Gender,
    Job,
    MemberFacts,
    MemberStatus,
    RecordArrival,
    RecordDeparture,
    RegisterSite,
    Relation,
    ReportWorkforce,
    UnitKind,
    Units,
)

DAY = dt.date(2020, 6, 1)
UNITS = Units(owner="业主", design="设计院", construction="施工单位", supervision="监理公司")


def register(site_id: str, cost: int = 9000, months: int = 30, township: str = "bailin") -> RegisterSite:
    return RegisterSite(command_id=uuid.uuid4(), site_id=site_id, name=f"工地{site_id}", township=township,
                        department="交通运输局", cost_wan=Decimal(cost), planned_months=months, start_date=DAY,
                        units=UNITS)


def workforce(site_id: str, headcount: int) -> ReportWorkforce:
    return ReportWorkforce(command_id=uuid.uuid4(), site_id=site_id, headcount=headcount, as_of=DAY)


def arrive(site_id: str, member_id: str, status: MemberStatus = MemberStatus.full) -> RecordArrival:
    facts = MemberFacts(name="李四", gender=Gender.male, admitted_on=dt.date(2005, 7, 1), status=status,
                        unit_kind=UnitKind.construction, unit_name="施工单位", job=Job.worker, section="一工段",
                        home_org="某村党支部", relation=Relation.mobile)
    return RecordArrival(command_id=uuid.uuid4(), site_id=site_id, member_id=member_id, member=facts, arrived_on=DAY)


def depart(site_id: str, member_id: str) -> RecordDeparture:
    return RecordDeparture(command_id=uuid.uuid4(), site_id=site_id, member_id=member_id, departed_on=DAY)


def form_branch(site_id: str, secretary: str) -> FormBranch:
    return FormBranch(command_id=uuid.uuid4(), site_id=site_id, name=f"{site_id}兼合党支部", secretary=secretary,
                      instructor="指导员", liaison="联络员", member_units=["施工单位"], formed_on=DAY)

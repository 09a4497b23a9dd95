"""Liaison contracts: joint meetings, dual-compliance letters, co-building with villages, mediation, village support."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Day, Event, Name, Note, People, PlanDay, Slug, Yuan, parse
from contracts.errors import rule_broken
from contracts.rules import LIMITS

SERVICE = "liaison"



class Party(StrEnum):
    owner = "owner"  # 业主
    department = "department"  # 项目主管部门
    township = "township"  # 驻地乡镇
    village = "village"  # 村
    design = "design"  # 设计
    construction = "construction"  # 施工
    supervision = "supervision"  # 监理


class ItemKind(StrEnum):
    technical_bottleneck = "technical_bottleneck"  # 技术瓶颈
    dispute = "dispute"  # 矛盾纠纷
    risk = "risk"  # 风险防控
    party_activity = "party_activity"  # 党建活动
    member_education = "member_education"  # 党员教育管理


class Target(StrEnum):
    quality = "quality"  # 工程质量
    safety = "safety"  # 安全
    progress = "progress"  # 进度
    civilised_site = "civilised_site"  # 文明工地


class DisputeKind(StrEnum):
    wages = "wages"  # 薪资
    land_acquisition = "land_acquisition"  # 征地拆迁
    work_obstruction = "work_obstruction"  # 阻工
    neighbours = "neighbours"  # 邻里
    other = "other"


class CaseState(StrEnum):
    reported = "reported"  # 已受理，尚未调解 (shown 待调解)
    mediating = "mediating"  # 调解中
    resolved = "resolved"  # 调解成功
    petitioned = "petitioned"  # 上访


class SupportKind(StrEnum):
    road_hardening = "road_hardening"  # 硬化道路 (米)
    donation = "donation"  # 捐款 (元)
    poverty_visit = "poverty_visit"  # 慰问贫困户 (元)
    transport = "transport"  # 免费运输 (车次)
    joint_patrol = "joint_patrol"  # 联合巡逻 (次)
    epidemic_help = "epidemic_help"  # 疫情防控协助 (次)


UNITS: dict[SupportKind, str] = {
    SupportKind.road_hardening: "米", SupportKind.donation: "元", SupportKind.poverty_visit: "元",
    SupportKind.transport: "车次", SupportKind.joint_patrol: "次", SupportKind.epidemic_help: "次",
}

LABELS: dict[str, str] = {
    "owner": "业主", "department": "主管部门", "township": "乡镇", "village": "村", "design": "设计",
    "construction": "施工", "supervision": "监理", "technical_bottleneck": "技术瓶颈", "dispute": "矛盾纠纷",
    "risk": "风险防控",
    "party_activity": "党建活动", "member_education": "党员教育管理", "quality": "质量", "safety": "安全",
    "progress": "进度", "civilised_site": "文明工地", "wages": "薪资", "land_acquisition": "征地拆迁",
    "work_obstruction": "阻工", "neighbours": "邻里", "other": "其他", "reported": "待调解", "mediating": "调解中",
    "resolved": "调解成功", "petitioned": "上访", "road_hardening": "硬化道路", "donation": "捐款",
    "poverty_visit": "慰问贫困户", "transport": "免费运输", "joint_patrol": "联合巡逻", "epidemic_help": "疫情防控协助",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeetingItem(Strict):
    item_id: Slug
    kind: ItemKind
    description: Name
    responsible: Party
    due_on: PlanDay  # a deadline: ahead of the meeting, by up to the plan horizon (not a week, as a fact)


class TargetResult(Strict):
    target: Target
    met: bool
    note: Note = ""


class AgreementItem(Strict):
    item_id: Slug
    title: Name


def _unique(values: list, field: str, what: str) -> None:
    """`what` (the field's name in Chinese) lists each value once."""
    if len(set(values)) != len(values):
        raise rule_broken(field, f"{what}有重复", f"{field} must not repeat")


# ---- commands ---------------------------------------------------------------------------------


class HoldJointMeeting(Command):
    """工地党建工作联席会议: items raised (with the unit responsible and a due date) and items resolved."""

    site_id: Slug
    meeting_id: Slug
    held_on: Day
    parties: Annotated[list[Party], Field(min_length=2)]
    items: Annotated[tuple[MeetingItem, ...], Field(max_length=LIMITS.max_items)] = ()
    resolves: Annotated[tuple[Slug, ...], Field(max_length=LIMITS.max_items)] = ()

    @model_validator(mode="after")
    def _check(self) -> HoldJointMeeting:
        _unique(self.parties, "parties", "参会单位")
        _unique([i.item_id for i in self.items], "items", "议定事项编号")
        _unique(self.resolves, "resolves", "已解决事项")
        late = next((n for n, i in enumerate(self.items) if i.due_on < self.held_on), None)
        if late is not None:
            raise rule_broken(f"items.{late}.due_on", "事项的完成期限不能早于会议日期",
                              "an item's due date cannot be before the meeting")
        return self


class SignComplianceLetter(Command):
    """双达标责任书: party work bound to quality, safety, progress and civilised-site targets."""

    site_id: Slug
    letter_id: Slug
    signed_on: Day
    signatories: Annotated[People, Field(min_length=2)]
    targets: dict[Target, Name]

    @model_validator(mode="after")
    def _all_targets(self) -> SignComplianceLetter:
        missing = set(Target) - set(self.targets)
        if missing:
            raise rule_broken("targets", "缺少目标：" + "、".join(LABELS[t] for t in sorted(missing)),
                              f"targets missing: {', '.join(sorted(missing))}")
        return self


class AssessCompliance(Command):
    site_id: Slug
    letter_id: Slug
    assessed_on: Day
    results: Annotated[list[TargetResult], Field(min_length=1)]

    @model_validator(mode="after")
    def _once_each(self) -> AssessCompliance:
        _unique([r.target for r in self.results], "results", "考核目标")
        return self


class SignCoBuildingAgreement(Command):
    """党建联创协议 between the site branch and a village, with its 共建清单."""

    site_id: Slug
    agreement_id: Slug
    village: Name
    signed_on: Day
    items: Annotated[list[AgreementItem], Field(min_length=1, max_length=LIMITS.max_items)]

    @model_validator(mode="after")
    def _check(self) -> SignCoBuildingAgreement:
        _unique([i.item_id for i in self.items], "items", "共建事项编号")
        return self


class CompleteCoBuildingItem(Command):
    site_id: Slug
    agreement_id: Slug
    item_id: Slug
    completed_on: Day
    note: Note = ""


class ReportDispute(Command):
    site_id: Slug
    case_id: Slug
    kind: DisputeKind
    reported_on: Day
    parties: People
    amount_yuan: Yuan | None = None
    description: Name

    @model_validator(mode="after")
    def _wages_have_amount(self) -> ReportDispute:
        if self.kind is DisputeKind.wages and not self.amount_yuan:
            raise rule_broken("amount_yuan", "薪资纠纷须填写争议金额（大于 0）",
                              "a wage dispute states the amount in dispute, more than 0")
        return self


class StartMediation(Command):
    site_id: Slug
    case_id: Slug
    mediator: Name
    started_on: Day


class ResolveMediation(Command):
    site_id: Slug
    case_id: Slug
    resolved_on: Day
    outcome: Name
    amount_settled_yuan: Yuan | None = None


class EscalateToPetition(Command):
    site_id: Slug
    case_id: Slug
    escalated_on: Day
    reason: Name


class RecordVillageSupport(Command):
    site_id: Slug
    village: Name
    kind: SupportKind
    given_on: Day
    quantity: Annotated[Decimal, Field(gt=0, le=LIMITS.max_quantity, max_digits=14, decimal_places=2)]
    note: Note = ""

    @model_validator(mode="after")
    def _whole_counts(self) -> RecordVillageSupport:
        # Trips, patrols and helps are counted, metres and yuan measured: 0.01 of a trip is a typing slip.
        if UNITS[self.kind] in ("车次", "次") and self.quantity != self.quantity.to_integral_value():
            raise rule_broken("quantity", f"{LABELS[self.kind]}按整{UNITS[self.kind]}计，不能有小数",
                              f"{self.kind.value} is counted in whole {UNITS[self.kind]}")
        return self


COMMANDS: dict[str, type[Command]] = {
    c.__name__: c
    for c in (HoldJointMeeting, SignComplianceLetter, AssessCompliance, SignCoBuildingAgreement,
              CompleteCoBuildingItem, ReportDispute, StartMediation, ResolveMediation, EscalateToPetition,
              RecordVillageSupport)
}


# ---- events -----------------------------------------------------------------------------------


class JointMeetingHeld(Event):
    site_id: str
    meeting_id: str
    held_on: dt.date
    parties: list[Party]
    items: list[MeetingItem]
    resolves: list[str]


class ComplianceLetterSigned(Event):
    site_id: str
    letter_id: str
    signed_on: dt.date
    signatories: list[str]
    targets: dict[Target, str]


class ComplianceAssessed(Event):
    site_id: str
    letter_id: str
    assessed_on: dt.date
    results: list[TargetResult]


class CoBuildingAgreementSigned(Event):
    site_id: str
    agreement_id: str
    village: str
    signed_on: dt.date
    items: list[AgreementItem]


class CoBuildingItemCompleted(Event):
    site_id: str
    agreement_id: str
    item_id: str
    completed_on: dt.date
    note: str


class DisputeReported(Event):
    site_id: str
    case_id: str
    kind: DisputeKind
    reported_on: dt.date
    parties: list[str]
    amount_yuan: Decimal | None
    description: str


class MediationStarted(Event):
    site_id: str
    case_id: str
    mediator: str
    started_on: dt.date


class MediationResolved(Event):
    site_id: str
    case_id: str
    resolved_on: dt.date
    outcome: str
    amount_settled_yuan: Decimal | None


class DisputeEscalated(Event):
    """The case went to a petition (上访)."""

    site_id: str
    case_id: str
    escalated_on: dt.date
    reason: str


class VillageSupportRecorded(Event):
    site_id: str
    support_id: str
    village: str
    kind: SupportKind
    given_on: dt.date
    quantity: Decimal
    note: str


EVENTS: dict[str, type[Event]] = {
    e.__name__: e
    for e in (JointMeetingHeld, ComplianceLetterSigned, ComplianceAssessed, CoBuildingAgreementSigned,
              CoBuildingItemCompleted, DisputeReported, MediationStarted, MediationResolved, DisputeEscalated,
              VillageSupportRecorded)
}


def parse_event(event_type: str, schema_version: int, payload: dict) -> Event:
    return parse(EVENTS, event_type, schema_version, payload)

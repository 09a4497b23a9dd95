"""Liaison domain: pure decide/evolve over a site's liaison stream; the dispute case only moves forward."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from contracts.base import Command, Event
from contracts.errors import DomainError
from contracts.liaison import (
    LABELS,
    AssessCompliance,
    CaseState,
    CoBuildingAgreementSigned,
    CoBuildingItemCompleted,
    CompleteCoBuildingItem,
    ComplianceAssessed,
    ComplianceLetterSigned,
    DisputeEscalated,
    DisputeReported,
    EscalateToPetition,
    HoldJointMeeting,
    JointMeetingHeld,
    MediationResolved,
    MediationStarted,
    RecordVillageSupport,
    ReportDispute,
    ResolveMediation,
    SignCoBuildingAgreement,
    SignComplianceLetter,
    StartMediation,
    VillageSupportRecorded,
)
from contracts.replies import ErrorInfo

# The site's life is one rule of every service recording on sites: its errors are this domain's too.
from contracts.timeline import BeforeSiteStartError, SiteCompletedError, within_site_life  # noqa: F401

# ---- errors -----------------------------------------------------------------------------------


class SiteNotFoundError(DomainError):
    code = "SITE_NOT_FOUND"


class AlreadyExistsError(DomainError):
    code = "ALREADY_EXISTS"


class ItemNotFoundError(DomainError):
    code = "ITEM_NOT_FOUND"


class ItemAlreadyResolvedError(DomainError):
    code = "ITEM_ALREADY_RESOLVED"


class LetterNotFoundError(DomainError):
    code = "LETTER_NOT_FOUND"


class NoBranchError(DomainError):
    code = "NO_BRANCH"


class AgreementNotFoundError(DomainError):
    code = "AGREEMENT_NOT_FOUND"


class ItemAlreadyCompletedError(DomainError):
    code = "ITEM_ALREADY_COMPLETED"


class CaseNotFoundError(DomainError):
    code = "CASE_NOT_FOUND"


class IllegalTransitionError(DomainError):
    code = "ILLEGAL_TRANSITION"


class DateBeforeError(DomainError):
    code = "DATE_BEFORE_EARLIER_STEP"


# ---- state ------------------------------------------------------------------------------------


class Item(BaseModel):
    model_config = ConfigDict(frozen=True)
    due_on: dt.date
    resolved_on: dt.date | None = None
    raised_on: dt.date | None = None  # the meeting's day (None: folded before it was kept, not checked)


class Case(BaseModel):
    model_config = ConfigDict(frozen=True)
    state: CaseState
    since: dt.date
    claimed: Decimal | None = None  # the amount in dispute as reported (states folded before kept none)


class LiaisonSite(BaseModel):
    model_config = ConfigDict(frozen=True)
    site_id: str
    meetings: list[str] = []
    items: dict[str, Item] = {}
    letters: dict[str, dt.date] = {}  # letter id → signed on
    agreements: dict[str, dict[str, bool]] = {}  # agreement id → item id → completed
    signed: dict[str, dt.date] = {}  # agreement id → signed on (states folded before this kept none: not checked)
    cases: dict[str, Case] = {}


@dataclass(frozen=True)
class Given:
    site: LiaisonSite | None
    known: bool
    has_branch: bool = False
    completed_on: dt.date | None = None  # the site's completion, as membership's events said
    branch_formed_on: dt.date | None = None  # None: no branch, or learnt before the day was kept (not checked)
    started_on: dt.date | None = None  # the site's start; None for sites learnt before it was kept (not checked)


# A land dispute, its mediation and the pledge of 双达标 may come before construction starts; the rest of liaison's
# facts happen on a running site.
BEFORE_START_TOO = (ReportDispute, StartMediation, ResolveMediation, EscalateToPetition, SignComplianceLetter)

# Forward only: reported → mediating → resolved, and reported or mediating → petitioned.
TRANSITIONS: dict[type[Command], tuple[set[CaseState], CaseState]] = {
    StartMediation: ({CaseState.reported}, CaseState.mediating),
    ResolveMediation: ({CaseState.mediating}, CaseState.resolved),
    EscalateToPetition: ({CaseState.reported, CaseState.mediating}, CaseState.petitioned),
}


# ---- evolve -----------------------------------------------------------------------------------


def evolve(state: LiaisonSite | None, event: Event) -> LiaisonSite:
    s = state or LiaisonSite(site_id=event.site_id)  # type: ignore[attr-defined]
    match event:
        case JointMeetingHeld():
            items = dict(s.items)
            for i in event.items:
                items[i.item_id] = Item(due_on=i.due_on, raised_on=event.held_on)
            for item_id in event.resolves:  # an item may be raised and settled in the same meeting
                items[item_id] = items[item_id].model_copy(update={"resolved_on": event.held_on})
            return s.model_copy(update={"meetings": [*s.meetings, event.meeting_id], "items": items})
        case ComplianceLetterSigned():
            return s.model_copy(update={"letters": {**s.letters, event.letter_id: event.signed_on}})
        case CoBuildingAgreementSigned():
            new = {i.item_id: False for i in event.items}
            return s.model_copy(update={"agreements": {**s.agreements, event.agreement_id: new},
                                        "signed": {**s.signed, event.agreement_id: event.signed_on}})
        case CoBuildingItemCompleted():
            items = {**s.agreements[event.agreement_id], event.item_id: True}
            return s.model_copy(update={"agreements": {**s.agreements, event.agreement_id: items}})
        case DisputeReported():
            return _case(s, event.case_id, CaseState.reported, event.reported_on, event.amount_yuan)
        case MediationStarted():
            return _case(s, event.case_id, CaseState.mediating, event.started_on)
        case MediationResolved():
            return _case(s, event.case_id, CaseState.resolved, event.resolved_on)
        case DisputeEscalated():
            return _case(s, event.case_id, CaseState.petitioned, event.escalated_on)
        case ComplianceAssessed() | VillageSupportRecorded():
            return s
    raise TypeError(f"liaison cannot evolve {type(event).__name__}")


def _case(s: LiaisonSite, case_id: str, state: CaseState, on: dt.date, claimed: Decimal | None = None
          ) -> LiaisonSite:
    before = s.cases.get(case_id)
    case = Case(state=state, since=on, claimed=claimed if claimed is not None else before and before.claimed)
    return s.model_copy(update={"cases": {**s.cases, case_id: case}})


# ---- advise: recorded, with a warning the sender should look at -----------------------------------------------


def advise(command: Command, given: Given) -> list[ErrorInfo]:
    """Plausible but unusual, so said back: a settlement above the amount in dispute (a typo of a digit, or a
    settlement that included more than was claimed), an item put on a unit that was not at the meeting."""
    site = given.site
    if isinstance(command, ResolveMediation) and command.amount_settled_yuan is not None and site is not None:
        case = site.cases.get(command.case_id)
        if case is not None and case.claimed is not None and command.amount_settled_yuan > case.claimed:
            return [ErrorInfo(code="SETTLED_OVER_CLAIM", field="amount_settled_yuan", message=(
                f"兑付金额 {command.amount_settled_yuan} 元高于受理时的争议金额 {case.claimed} 元：请核对"
                " (settled above the amount in dispute)"))]
    if isinstance(command, HoldJointMeeting):
        absent = sorted({i.responsible for i in command.items} - set(command.parties))
        if absent:
            return [ErrorInfo(code="RESPONSIBLE_NOT_PRESENT", field="items", message=(
                f"议定事项的责任方{'、'.join(LABELS[p.value] for p in absent)}未参会：请确认已告知"
                " (an item's unit was not at the meeting)"))]
    return []


# ---- decide -----------------------------------------------------------------------------------


def decide(command: Command, given: Given) -> list[Event]:
    events = _decide(command, given)
    within_site_life(command, events, None if isinstance(command, BEFORE_START_TOO) else given.started_on,
                     given.completed_on)
    return events


def _decide(command: Command, given: Given) -> list[Event]:
    site_id: str = command.site_id  # type: ignore[attr-defined]
    if not given.known:
        raise SiteNotFoundError(f"工地 {site_id} 未登记 (site not registered)", "site_id")
    site = given.site or LiaisonSite(site_id=site_id)
    match command:
        case HoldJointMeeting():
            return [_meeting(command, site)]
        case SignComplianceLetter():
            _new(command.letter_id, site.letters, "责任书", "letter_id")
            return [ComplianceLetterSigned(**_fields(command, ComplianceLetterSigned))]
        case AssessCompliance():
            signed = site.letters.get(command.letter_id)
            if signed is None:
                raise LetterNotFoundError(f"责任书 {command.letter_id} 不存在", "letter_id")
            if command.assessed_on < signed:
                raise DateBeforeError(f"考核日期早于签订日期 {signed}", "assessed_on")
            return [ComplianceAssessed(**_fields(command, ComplianceAssessed))]
        case SignCoBuildingAgreement():
            if not given.has_branch:
                raise NoBranchError("只有已成立党支部的工地才能签订党建联创协议 (the site has no branch)", "site_id")
            if given.branch_formed_on is not None and command.signed_on < given.branch_formed_on:
                raise DateBeforeError(f"党支部于 {given.branch_formed_on} 成立，联创协议不能签于 {command.signed_on}"
                                      " (signed before the branch was formed)", "signed_on")
            _new(command.agreement_id, site.agreements, "联创协议", "agreement_id")
            return [CoBuildingAgreementSigned(**_fields(command, CoBuildingAgreementSigned))]
        case CompleteCoBuildingItem():
            return [_complete(command, site)]
        case ReportDispute():
            _new(command.case_id, site.cases, "纠纷案件", "case_id")
            return [DisputeReported(**_fields(command, DisputeReported))]
        case StartMediation() | ResolveMediation() | EscalateToPetition():
            return [_transition(command, site)]
        case RecordVillageSupport():
            return [VillageSupportRecorded(**_fields(command, VillageSupportRecorded),
                                           support_id=str(command.command_id))]
    raise TypeError(f"liaison cannot decide {type(command).__name__}")


def _fields(command: Command, event: type[Event]) -> dict:
    return command.model_dump(include=set(event.model_fields))


def _new(ident: str, existing: object, what: str, field: str) -> None:
    if ident in existing:  # type: ignore[operator]
        raise AlreadyExistsError(f"{what} {ident} 已存在 (already recorded)", field)


def _meeting(command: HoldJointMeeting, site: LiaisonSite) -> Event:
    _new(command.meeting_id, site.meetings, "联席会议", "meeting_id")
    for item in command.items:
        _new(item.item_id, site.items, "议题", "items")
    raised_now = {i.item_id: Item(due_on=i.due_on) for i in command.items}
    for item_id in command.resolves:
        item = site.items.get(item_id) or raised_now.get(item_id)
        if item is None:
            raise ItemNotFoundError(f"议题 {item_id} 不存在", "resolves")
        if item.resolved_on is not None:
            raise ItemAlreadyResolvedError(f"议题 {item_id} 已于 {item.resolved_on} 解决", "resolves")
        if item.raised_on is not None and command.held_on < item.raised_on:
            raise DateBeforeError(f"议题 {item_id} 于 {item.raised_on} 的会议提出，{command.held_on} 的会议不能先解决它"
                                  " (resolved before it was raised)", "held_on")
    return JointMeetingHeld(**_fields(command, JointMeetingHeld))


def _complete(command: CompleteCoBuildingItem, site: LiaisonSite) -> Event:
    agreement = site.agreements.get(command.agreement_id)
    if agreement is None:
        raise AgreementNotFoundError(f"联创协议 {command.agreement_id} 不存在", "agreement_id")
    if command.item_id not in agreement:
        raise ItemNotFoundError(f"共建清单中没有 {command.item_id}", "item_id")
    if agreement[command.item_id]:
        raise ItemAlreadyCompletedError(f"共建事项 {command.item_id} 已完成", "item_id")
    signed_on = site.signed.get(command.agreement_id)
    if signed_on is not None and command.completed_on < signed_on:
        raise DateBeforeError(f"联创协议 {command.agreement_id} 于 {signed_on} 签订，{command.completed_on}"
                              " 不能完成其中的事项 (completed before the agreement was signed)", "completed_on")
    return CoBuildingItemCompleted(**_fields(command, CoBuildingItemCompleted))


def _transition(command: StartMediation | ResolveMediation | EscalateToPetition, site: LiaisonSite) -> Event:
    case = site.cases.get(command.case_id)
    if case is None:
        # Cases are kept per site: one reported at another site is not found here, which the message says.
        raise CaseNotFoundError(f"工地 {site.site_id} 没有纠纷案件 {command.case_id}：案件按工地登记，"
                                "请确认工地编号与案件编号", "case_id")
    allowed, to = TRANSITIONS[type(command)]
    if case.state not in allowed:
        raise IllegalTransitionError(
            f"纠纷案件 {command.case_id} 处于“{LABELS[case.state.value]}”，不能转为“{LABELS[to.value]}”："
            "案件只能向前：待调解→调解中→调解成功，待调解或调解中→上访 (cases only move forward)", "case_id"
        )
    on = {StartMediation: "started_on", ResolveMediation: "resolved_on", EscalateToPetition: "escalated_on"}
    when: dt.date = getattr(command, on[type(command)])
    if when < case.since:
        raise DateBeforeError(f"日期早于上一步 {case.since}", on[type(command)])
    event = {StartMediation: MediationStarted, ResolveMediation: MediationResolved,
             EscalateToPetition: DisputeEscalated}[type(command)]
    return event(**_fields(command, event))

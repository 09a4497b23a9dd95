"""Liaison rules and dispute transitions as given/when/then: no I/O."""
from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest

from contracts.base import Event
from contracts.liaison import (
    AgreementItem,
    AssessCompliance,
    CoBuildingAgreementSigned,
    CoBuildingItemCompleted,
    CompleteCoBuildingItem,
    ComplianceAssessed,
    ComplianceLetterSigned,
    DisputeEscalated,
    DisputeKind,
    DisputeReported,
    EscalateToPetition,
    HoldJointMeeting,
    ItemKind,
    JointMeetingHeld,
    MediationResolved,
    MediationStarted,
    MeetingItem,
    Party,
    RecordVillageSupport,
    ReportDispute,
    ResolveMediation,
    SignCoBuildingAgreement,
    SignComplianceLetter,
    StartMediation,
    SupportKind,
    Target,
    TargetResult,
)
from contracts.timeline import city_today
from services.liaison import domain
from services.liaison.domain import Given, decide, evolve

DAY = dt.date(2020, 6, 1)
LATER = dt.date(2020, 6, 20)
TARGETS = {Target.quality: "优良率95%", Target.safety: "零死亡", Target.progress: "年底通车",
           Target.civilised_site: "省级文明工地"}


def cid() -> uuid.UUID:
    return uuid.uuid4()


def given(*events: Event, known: bool = True, branch: bool = True) -> Given:
    state = None
    for e in events:
        state = evolve(state, e)
    return Given(site=state, known=known, has_branch=branch)


def item(item_id: str = "i1", due: dt.date = LATER) -> MeetingItem:
    return MeetingItem(item_id=item_id, kind=ItemKind.dispute, description="征迁补偿争议", responsible=Party.township,
                       due_on=due)


def meeting(meeting_id: str = "mt1", items=None, resolves=(), on: dt.date = DAY) -> HoldJointMeeting:
    items = (item(),) if items is None else items
    return HoldJointMeeting(command_id=cid(), site_id="a", meeting_id=meeting_id, held_on=on,
                            parties=[Party.owner, Party.township, Party.construction], items=items, resolves=resolves)


def held(cmd: HoldJointMeeting) -> Event:
    [event] = decide(cmd, given())
    return event


# ---- joint meetings ---------------------------------------------------------------------------


def test_meeting_raises_items():
    [event] = decide(meeting(), given())
    assert isinstance(event, JointMeetingHeld) and [i.item_id for i in event.items] == ["i1"]


def test_item_is_resolved_in_a_later_meeting():
    first = held(meeting())
    [event] = decide(meeting("mt2", items=(), resolves=("i1",), on=LATER), given(first))
    state = evolve(given(first).site, event)
    assert state.items["i1"].resolved_on == LATER


def test_item_raised_and_resolved_in_the_same_meeting():
    [event] = decide(meeting(resolves=("i1",)), given())
    assert evolve(None, event).items["i1"].resolved_on == DAY


def test_a_meeting_does_not_resolve_an_item_raised_at_a_later_one():
    first = held(meeting(on=LATER))
    with pytest.raises(domain.DateBeforeError) as refused:
        decide(meeting("mt0", items=(), resolves=("i1",), on=DAY), given(first))
    assert refused.value.field == "held_on"


def test_resolving_an_unknown_item_is_refused():
    with pytest.raises(domain.ItemNotFoundError):
        decide(meeting("mt2", items=(), resolves=("nope",)), given())


def test_resolving_twice_is_refused():
    first = held(meeting())
    second = JointMeetingHeld(site_id="a", meeting_id="mt2", held_on=LATER, parties=[Party.owner, Party.village],
                              items=[], resolves=["i1"])
    with pytest.raises(domain.ItemAlreadyResolvedError):
        decide(meeting("mt3", items=(), resolves=("i1",)), given(first, second))


def test_item_ids_are_unique_per_site():
    with pytest.raises(domain.AlreadyExistsError):
        decide(meeting("mt2"), given(held(meeting())))


def test_meeting_needs_two_distinct_parties():
    with pytest.raises(ValueError):
        HoldJointMeeting(command_id=cid(), site_id="a", meeting_id="m", held_on=DAY, parties=[Party.owner])
    with pytest.raises(ValueError, match="repeat"):
        HoldJointMeeting(command_id=cid(), site_id="a", meeting_id="m", held_on=DAY, parties=[Party.owner, Party.owner])


def test_item_cannot_be_due_before_the_meeting():
    with pytest.raises(ValueError, match="due date"):
        meeting(items=(item(due=DAY - dt.timedelta(days=1)),))


def test_an_item_may_be_due_months_ahead_of_today():
    # A deadline is a plan, not a fact: a meeting held today may give an item a month or more (before, a week).
    today = city_today()
    held = meeting(items=(item(due=today + dt.timedelta(days=90)),), on=today)
    assert held.items[0].due_on == today + dt.timedelta(days=90)
    with pytest.raises(ValueError, match="日期不合理"):
        item(due=today + dt.timedelta(days=366 * 6))


def test_unknown_site_is_refused():
    with pytest.raises(domain.SiteNotFoundError):
        decide(meeting(), given(known=False))


# ---- dual compliance --------------------------------------------------------------------------


def letter() -> SignComplianceLetter:
    return SignComplianceLetter(command_id=cid(), site_id="a", letter_id="l1", signed_on=DAY,
                                signatories=["项目业主", "工地兼合党支部"], targets=TARGETS)


def test_letter_needs_all_four_targets():
    with pytest.raises(ValueError, match="targets missing"):
        SignComplianceLetter(command_id=cid(), site_id="a", letter_id="l1", signed_on=DAY, signatories=["a", "b"],
                             targets={Target.quality: "x"})


def test_assessment_of_a_signed_letter():
    [signed] = decide(letter(), given())
    cmd = AssessCompliance(command_id=cid(), site_id="a", letter_id="l1", assessed_on=LATER,
                           results=[TargetResult(target=Target.safety, met=True)])
    [event] = decide(cmd, given(signed))
    assert isinstance(event, ComplianceAssessed)


def test_assessment_of_unknown_letter_is_refused():
    cmd = AssessCompliance(command_id=cid(), site_id="a", letter_id="l9", assessed_on=LATER,
                           results=[TargetResult(target=Target.safety, met=False, note="发生轻伤事故")])
    with pytest.raises(domain.LetterNotFoundError):
        decide(cmd, given())


def test_assessment_before_signing_is_refused():
    signed = ComplianceLetterSigned(site_id="a", letter_id="l1", signed_on=LATER, signatories=["a", "b"],
                                    targets=TARGETS)
    cmd = AssessCompliance(command_id=cid(), site_id="a", letter_id="l1", assessed_on=DAY,
                           results=[TargetResult(target=Target.quality, met=True)])
    with pytest.raises(domain.DateBeforeError):
        decide(cmd, given(signed))


def test_letter_id_is_unique():
    [signed] = decide(letter(), given())
    with pytest.raises(domain.AlreadyExistsError):
        decide(letter(), given(signed))


# ---- co-building ------------------------------------------------------------------------------


def agreement() -> SignCoBuildingAgreement:
    items = [AgreementItem(item_id=f"c{i}", title=f"共建事项{i}") for i in range(1, 8)]
    return SignCoBuildingAgreement(command_id=cid(), site_id="a", agreement_id="tangyuan", village="棠园村",
                                   signed_on=DAY, items=items)


def test_only_a_site_with_a_branch_signs():
    with pytest.raises(domain.NoBranchError):
        decide(agreement(), given(branch=False))


def test_no_agreement_is_signed_before_the_branch_was_formed():
    formed = Given(site=None, known=True, has_branch=True, branch_formed_on=DAY + dt.timedelta(days=1))
    with pytest.raises(domain.DateBeforeError) as refused:
        decide(agreement(), formed)
    assert refused.value.field == "signed_on" and "党支部于 2020-06-02 成立" in refused.value.message
    assert decide(agreement().model_copy(update={"signed_on": DAY + dt.timedelta(days=1)}), formed)


def test_agreement_items_are_completed_once():
    [signed] = decide(agreement(), given())
    assert isinstance(signed, CoBuildingAgreementSigned) and len(signed.items) == 7
    complete = CompleteCoBuildingItem(command_id=cid(), site_id="a", agreement_id="tangyuan", item_id="c1",
                                      completed_on=LATER)
    [done] = decide(complete, given(signed))
    assert isinstance(done, CoBuildingItemCompleted)
    with pytest.raises(domain.ItemAlreadyCompletedError):
        decide(complete, given(signed, done))


def test_an_item_is_not_completed_before_its_agreement_was_signed():
    [signed] = decide(agreement(), given())
    early = CompleteCoBuildingItem(command_id=cid(), site_id="a", agreement_id="tangyuan", item_id="c1",
                                   completed_on=DAY - dt.timedelta(days=1))
    with pytest.raises(domain.DateBeforeError) as refused:
        decide(early, given(signed))
    assert refused.value.field == "completed_on"
    assert decide(early.model_copy(update={"completed_on": DAY}), given(signed))  # the day it was signed will do


def test_completing_an_unknown_item_or_agreement_is_refused():
    [signed] = decide(agreement(), given())
    unknown_item = CompleteCoBuildingItem(command_id=cid(), site_id="a", agreement_id="tangyuan", item_id="c9",
                                          completed_on=LATER)
    with pytest.raises(domain.ItemNotFoundError):
        decide(unknown_item, given(signed))
    with pytest.raises(domain.AgreementNotFoundError):
        decide(unknown_item.model_copy(update={"agreement_id": "other"}), given(signed))


# ---- disputes: every transition ---------------------------------------------------------------


def reported(kind: DisputeKind = DisputeKind.wages) -> DisputeReported:
    return DisputeReported(site_id="a", case_id="d1", kind=kind, reported_on=DAY, parties=["班组长", "农民工"],
                           amount_yuan=Decimal(12000), description="拖欠工资")


STARTED = MediationStarted(site_id="a", case_id="d1", mediator="调解员", started_on=DAY)
RESOLVED = MediationResolved(site_id="a", case_id="d1", resolved_on=LATER, outcome="足额支付", amount_settled_yuan=None)
ESCALATED = DisputeEscalated(site_id="a", case_id="d1", escalated_on=LATER, reason="不服调解")


def start() -> StartMediation:
    return StartMediation(command_id=cid(), site_id="a", case_id="d1", mediator="调解员", started_on=DAY)


def resolve() -> ResolveMediation:
    return ResolveMediation(command_id=cid(), site_id="a", case_id="d1", resolved_on=LATER, outcome="足额支付",
                            amount_settled_yuan=Decimal(12000))


def escalate() -> EscalateToPetition:
    return EscalateToPetition(command_id=cid(), site_id="a", case_id="d1", escalated_on=LATER, reason="不服调解")


def test_wage_dispute_states_the_amount():
    with pytest.raises(ValueError, match="amount"):
        ReportDispute(command_id=cid(), site_id="a", case_id="d1", kind=DisputeKind.wages, reported_on=DAY,
                      parties=["x"], description="欠薪")


def dispute(on: dt.date) -> ReportDispute:
    return ReportDispute(command_id=cid(), site_id="a", case_id="d1", kind=DisputeKind.neighbours, reported_on=on,
                         parties=["工地", "村民"], description="噪音")


def test_a_meeting_is_not_held_before_the_site_started_but_a_land_dispute_may_come_first():
    started = Given(site=None, known=True, has_branch=True, started_on=LATER)
    with pytest.raises(domain.BeforeSiteStartError) as refused:
        decide(meeting(on=DAY, items=[]), started)
    assert refused.value.field == "held_on" and "开工" in str(refused.value)
    [event] = decide(dispute(DAY), started)
    assert event.reported_on == DAY  # type: ignore[attr-defined]


def test_nothing_is_reported_at_a_site_after_its_completion():
    done = Given(site=None, known=True, has_branch=True, completed_on=DAY)
    with pytest.raises(domain.SiteCompletedError) as refused:
        decide(dispute(LATER), done)
    assert refused.value.field == "reported_on" and "已于 2020-06-01 竣工" in str(refused.value)
    with pytest.raises(domain.SiteCompletedError):
        decide(meeting(on=LATER, items=[]), done)
    [event] = decide(dispute(DAY), done)  # on the day itself, recorded late: taken
    assert event.reported_on == DAY  # type: ignore[attr-defined]


def test_report_a_dispute():
    cmd = ReportDispute(command_id=cid(), site_id="a", case_id="d1", kind=DisputeKind.neighbours, reported_on=DAY,
                        parties=["村民"], description="噪声扰民")
    [event] = decide(cmd, given())
    assert isinstance(event, DisputeReported)


def test_case_id_is_unique():
    cmd = ReportDispute(command_id=cid(), site_id="a", case_id="d1", kind=DisputeKind.other, reported_on=DAY,
                        parties=["x"], description="d")
    with pytest.raises(domain.AlreadyExistsError):
        decide(cmd, given(reported()))


def test_reported_to_mediating():
    assert isinstance(decide(start(), given(reported()))[0], MediationStarted)


def test_mediating_to_resolved():
    [event] = decide(resolve(), given(reported(), STARTED))
    assert isinstance(event, MediationResolved) and event.amount_settled_yuan == Decimal(12000)


def test_reported_to_petition():
    assert isinstance(decide(escalate(), given(reported()))[0], DisputeEscalated)


def test_mediating_to_petition():
    assert isinstance(decide(escalate(), given(reported(), STARTED))[0], DisputeEscalated)


@pytest.mark.parametrize(
    ("history", "command"),
    [
        ((), resolve),  # resolved without mediation
        ((STARTED,), start),  # mediation started twice
        ((STARTED, RESOLVED), escalate),  # a resolved case does not go to petition
        ((STARTED, RESOLVED), start),
        ((ESCALATED,), resolve),  # a petition is final here
        ((ESCALATED,), start),
    ],
)
def test_cases_only_move_forward(history, command):
    with pytest.raises(domain.IllegalTransitionError):
        decide(command(), given(reported(), *history))


def test_a_refused_step_names_the_states_in_chinese():
    with pytest.raises(domain.IllegalTransitionError) as refused:
        decide(escalate(), given(reported(), STARTED, RESOLVED))
    assert "处于“调解成功”，不能转为“上访”" in str(refused.value)
    assert not re.search("resolved|petitioned", str(refused.value).split(" (")[0])


def test_transition_of_unknown_case_is_refused_naming_the_site_it_was_looked_for_at():
    with pytest.raises(domain.CaseNotFoundError) as refused:
        decide(start(), given())
    # A case reported at another site is not found at this one: the message says where it was looked for.
    assert "工地 a 没有纠纷案件 d1" in refused.value.message and "案件按工地登记" in refused.value.message


def test_transition_before_the_previous_step_is_refused():
    early = StartMediation(command_id=cid(), site_id="a", case_id="d1", mediator="m",
                           started_on=DAY - dt.timedelta(days=1))
    with pytest.raises(domain.DateBeforeError):
        decide(early, given(reported()))


# ---- village support --------------------------------------------------------------------------


def test_support_is_recorded_with_its_kind():
    cmd = RecordVillageSupport(command_id=cid(), site_id="a", village="马洋村", kind=SupportKind.road_hardening,
                               given_on=DAY, quantity=Decimal(200))
    [event] = decide(cmd, given())
    assert event.quantity == Decimal(200) and event.support_id == str(cmd.command_id)  # type: ignore[attr-defined]


def test_support_quantity_is_positive():
    with pytest.raises(ValueError):
        RecordVillageSupport(command_id=cid(), site_id="a", village="v", kind=SupportKind.donation, given_on=DAY,
                             quantity=Decimal(0))


def test_error_codes_are_unique():
    codes = [c.code for c in domain.DomainError.__subclasses__() if c.__module__ == domain.__name__]
    assert len(codes) == len(set(codes))


def test_a_settlement_above_the_amount_in_dispute_is_recorded_with_a_warning():
    state = given(reported(), STARTED)  # 12000 in dispute
    over = resolve().model_copy(update={"amount_settled_yuan": Decimal(120000)})
    assert decide(over, state)  # recorded
    [warning] = domain.advise(over, state)
    assert (warning.code, warning.field) == ("SETTLED_OVER_CLAIM", "amount_settled_yuan")
    assert "120000" in warning.message and "12000" in warning.message
    assert domain.advise(resolve(), state) == []  # settled in full


def test_an_item_put_on_a_unit_not_at_the_meeting_is_recorded_with_a_warning():
    absent = meeting(items=[item().model_copy(update={"responsible": Party.supervision})])
    [warning] = domain.advise(absent, given())
    assert warning.code == "RESPONSIBLE_NOT_PRESENT" and "监理" in warning.message
    assert domain.advise(meeting(), given()) == []

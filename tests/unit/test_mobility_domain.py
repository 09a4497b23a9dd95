"""Mobility rules and timers as given/when/then on events: exact boundaries, once per stay, closing by a transfer."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from contracts.base import Event
from contracts.membership import (
    ContactEscalated,
    ContactLost,
    ContactRestored,
    FireTimer,
    Gender,
    Job,
    MemberArrived,
    MemberDeparted,
    MemberFacts,
    MemberStatus,
    RecordContactLost,
    RecordContactRestored,
    Relation,
    RelationTransferred,
    SiteRegistered,
    Timer,
    TransferPrompted,
    TransferRelation,
    UnitKind,
    Units,
)
from contracts.rules import Rules
from services.membership import domain
from services.membership.domain import Given, add_months, decide, due_timers, evolve
from services.membership.timers import firing_id

START = dt.date(2020, 5, 1)
ARRIVED = dt.date(2020, 8, 31)  # six months on is 28 February 2021: the month-end case
DUE = dt.date(2021, 2, 28)
UNITS = Units(owner="业主", design="设计院", construction="施工单位", supervision="监理公司")


def facts(relation: Relation = Relation.mobile) -> MemberFacts:
    return MemberFacts(name="张三", gender=Gender.male, admitted_on=dt.date(2001, 7, 1), status=MemberStatus.full,
                       unit_kind=UnitKind.construction, unit_name="施工单位", job=Job.worker, section="一工段",
                       home_org="某村党支部", relation=relation)


def site(*events: Event) -> domain.SiteState:
    state = evolve(None, SiteRegistered(site_id="a", name="工地a", township="shacheng", department="交通运输局",
                                        cost_wan=Decimal(6000), planned_months=30, start_date=START, units=UNITS))
    for e in events:
        state = evolve(state, e)
    assert state is not None
    return state


def arrived(member_id: str = "m1", on: dt.date = ARRIVED, relation: Relation = Relation.mobile) -> MemberArrived:
    return MemberArrived(site_id="a", member_id=member_id, member=facts(relation), arrived_on=on)


def fire(state: domain.SiteState, today: dt.date, member_id: str = "m1",
         timer: Timer = Timer.transfer_prompt) -> list[Event]:
    return decide(FireTimer(command_id=uuid.uuid4(), site_id="a", member_id=member_id, timer=timer, today=today),
                  Given(site=state))


def test_six_months_are_calendar_months_ending_at_the_month_end():
    assert add_months(dt.date(2020, 6, 1), 6) == dt.date(2020, 12, 1)
    assert add_months(ARRIVED, 6) == DUE
    assert add_months(dt.date(2023, 8, 31), 6) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2020, 7, 15), 6) == dt.date(2021, 1, 15)


def test_prompt_not_due_the_day_before_six_months():
    state = site(arrived())
    assert due_timers(state, DUE - dt.timedelta(days=1)) == []
    assert fire(state, DUE - dt.timedelta(days=1)) == []


def test_prompt_fires_on_the_day_six_months_are_reached():
    state = site(arrived())
    [due] = due_timers(state, DUE)
    assert (due.member_id, due.timer, due.since, due.due_on) == ("m1", Timer.transfer_prompt, ARRIVED, DUE)
    assert fire(state, DUE) == [TransferPrompted(site_id="a", member_id="m1", arrived_on=ARRIVED, due_on=DUE,
                                                 prompted_on=DUE)]


def test_a_later_firing_records_the_day_it_fired():
    [event] = fire(site(arrived()), dt.date(2026, 1, 5))
    assert isinstance(event, TransferPrompted) and event.due_on == DUE and event.prompted_on == dt.date(2026, 1, 5)


def test_firing_twice_records_once():
    state = site(arrived())
    events = fire(state, DUE)
    again = site(arrived(), *events)
    assert due_timers(again, DUE + dt.timedelta(days=400)) == []
    assert fire(again, DUE) == [] and fire(again, DUE + dt.timedelta(days=400)) == []


def test_a_transferred_member_is_never_prompted():
    state = site(arrived(relation=Relation.transferred))
    assert due_timers(state, DUE + dt.timedelta(days=1000)) == [] and fire(state, DUE) == []


def test_the_rule_is_a_named_setting():
    state = site(arrived())
    three = Rules(transfer_prompt_months=3)
    assert [d.due_on for d in due_timers(state, DUE, three)] == [dt.date(2020, 11, 30)]
    assert due_timers(state, dt.date(2020, 11, 29), three) == []


def test_transfer_closes_the_prompt_and_ends_the_timer():
    prompted = site(arrived(), *fire(site(arrived()), DUE))
    assert prompted.prompted == {"m1": ARRIVED}
    events = decide(TransferRelation(command_id=uuid.uuid4(), site_id="a", member_id="m1",
                                     transferred_on=DUE + dt.timedelta(days=3)), Given(site=prompted))
    assert events == [RelationTransferred(site_id="a", member_id="m1", transferred_on=DUE + dt.timedelta(days=3))]
    after = evolve(prompted, events[0])
    assert after.members["m1"].relation is Relation.transferred and after.prompted == {}
    assert due_timers(after, DUE + dt.timedelta(days=1000)) == []
    with pytest.raises(domain.RelationAlreadyTransferredError):
        decide(TransferRelation(command_id=uuid.uuid4(), site_id="a", member_id="m1", transferred_on=DUE),
               Given(site=after))


def test_transfer_needs_the_member_present_and_not_before_arrival():
    with pytest.raises(domain.MemberNotPresentError):
        decide(TransferRelation(command_id=uuid.uuid4(), site_id="a", member_id="m9", transferred_on=DUE),
               Given(site=site(arrived())))
    with pytest.raises(domain.DateOutOfOrderError):
        decide(TransferRelation(command_id=uuid.uuid4(), site_id="a", member_id="m1",
                                transferred_on=ARRIVED - dt.timedelta(days=1)), Given(site=site(arrived())))


def test_a_new_stay_is_prompted_again_and_a_departure_forgets_the_old():
    first = fire(site(arrived()), DUE)
    left = site(arrived(), *first, MemberDeparted(site_id="a", member_id="m1", departed_on=DUE))
    assert left.prompted == {}
    back_on = dt.date(2022, 3, 1)
    back = evolve(left, arrived(on=back_on))
    assert due_timers(back, dt.date(2022, 8, 31)) == []
    [event] = fire(back, dt.date(2022, 9, 1))
    assert isinstance(event, TransferPrompted) and event.arrived_on == back_on
    # each stay's firing has its own command id; the same stay's always the same
    assert firing_id("a", "m1", "transfer_prompt", back_on) != firing_id("a", "m1", "transfer_prompt", ARRIVED)
    assert firing_id("a", "m1", "transfer_prompt", ARRIVED) == firing_id("a", "m1", "transfer_prompt", ARRIVED)


def test_firing_for_a_member_who_left_or_an_unknown_site_records_nothing():
    left = site(arrived(), MemberDeparted(site_id="a", member_id="m1", departed_on=DUE))
    assert fire(left, DUE) == []
    assert decide(FireTimer(command_id=uuid.uuid4(), site_id="zz", member_id="m1", timer=Timer.transfer_prompt,
                            today=DUE), Given(site=None)) == []


LAST = dt.date(2021, 3, 15)
ESCALATE_ON = dt.date(2021, 9, 15)


def lost(state: domain.SiteState, last: dt.date = LAST) -> domain.SiteState:
    [event] = decide(RecordContactLost(command_id=uuid.uuid4(), site_id="a", member_id="m1", last_contact_on=last),
                     Given(site=state))
    assert event == ContactLost(site_id="a", member_id="m1", last_contact_on=last)
    return evolve(state, event)


def test_escalation_at_exact_boundary_and_once():
    state = lost(site(arrived(relation=Relation.transferred)))
    assert fire(state, ESCALATE_ON - dt.timedelta(days=1), timer=Timer.contact_escalation) == []
    events = fire(state, ESCALATE_ON, timer=Timer.contact_escalation)
    assert events == [ContactEscalated(site_id="a", member_id="m1", last_contact_on=LAST, due_on=ESCALATE_ON,
                                       escalated_on=ESCALATE_ON)]
    escalated = evolve(state, events[0])
    assert fire(escalated, ESCALATE_ON, timer=Timer.contact_escalation) == []
    assert due_timers(escalated, ESCALATE_ON + dt.timedelta(days=500)) == []


def test_the_prompt_and_the_escalation_are_separate_timers():
    state = lost(site(arrived()))
    today = dt.date(2022, 1, 1)
    assert {d.timer for d in due_timers(state, today)} == {Timer.transfer_prompt, Timer.contact_escalation}
    [prompt] = fire(state, today)
    assert isinstance(prompt, TransferPrompted)
    assert [d.timer for d in due_timers(evolve(state, prompt), today)] == [Timer.contact_escalation]


def test_contact_restored_closes_the_escalation_and_a_new_loss_starts_again():
    state = lost(site(arrived(relation=Relation.transferred)))
    with pytest.raises(domain.ContactAlreadyLostError):
        lost(state)
    escalated = evolve(state, fire(state, ESCALATE_ON, timer=Timer.contact_escalation)[0])
    with pytest.raises(domain.DateOutOfOrderError):
        decide(RecordContactRestored(command_id=uuid.uuid4(), site_id="a", member_id="m1",
                                     restored_on=LAST - dt.timedelta(days=1)), Given(site=escalated))
    [restored] = decide(RecordContactRestored(command_id=uuid.uuid4(), site_id="a", member_id="m1",
                                              restored_on=dt.date(2021, 10, 1)), Given(site=escalated))
    assert restored == ContactRestored(site_id="a", member_id="m1", restored_on=dt.date(2021, 10, 1))
    back = evolve(escalated, restored)
    assert back.contact_lost == {} and back.escalated == {}
    with pytest.raises(domain.ContactNotLostError):
        decide(RecordContactRestored(command_id=uuid.uuid4(), site_id="a", member_id="m1",
                                     restored_on=dt.date(2021, 10, 2)), Given(site=back))
    again = lost(back, dt.date(2022, 1, 10))
    assert [d.due_on for d in due_timers(again, dt.date(2022, 7, 10))] == [dt.date(2022, 7, 10)]


def test_snapshots_from_before_mobility_read_as_nothing_recorded():
    state = site(arrived())
    old = state.model_dump(mode="json")
    for key in ("prompted", "contact_lost", "escalated"):
        old.pop(key)
    restored = domain.SiteState.model_validate(old)
    assert restored == state and [d.timer for d in due_timers(restored, DUE)] == [Timer.transfer_prompt]

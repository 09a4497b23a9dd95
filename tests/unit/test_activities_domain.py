"""Activities rules as given/when/then: no I/O."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest

from contracts import activities
from contracts.activities import (
    ActivityKind,
    BirthdaysCelebrated,
    CelebrateBirthdays,
    DesignateWorkPoint,
    DesignateZone,
    EstablishPost,
    FormTeam,
    PostEstablished,
    RecordActivity,
    RecordInnovation,
    RecordSafetyViolation,
    RecordTalk,
    RecordVisit,
    ReportPersonalChange,
    SafetyViolationRecorded,
    TalkHeld,
    TalkObligationCreated,
    TalkReason,
    TeamFormed,
    TeamKind,
    VisitKind,
    ZoneDesignated,
)
from contracts.base import Event
from contracts.rules import Rules
from contracts.timeline import business_day, date_field
from services.activities import domain
from services.activities.domain import Given, Present, decide, evolve, obligation_id, on_member_arrived

DAY = dt.date(2020, 7, 10)
PRESENT = {"m1": Present("张三", dt.date(2001, 7, 1)), "m2": Present("李四", dt.date(2010, 3, 5)),
           "m3": Present("王五", dt.date(1999, 7, 20))}


def cid() -> uuid.UUID:
    return uuid.uuid4()


def given(*events: Event, known: bool = True) -> Given:
    state = None
    for e in events:
        state = evolve(state, e)
    return Given(site=state, known=known, present=PRESENT)


def obligation(member_id: str = "m1", reason: TalkReason = TalkReason.new_arrival, n: int = 1) -> TalkObligationCreated:
    return TalkObligationCreated(site_id="a", obligation_id=uuid.UUID(int=n), member_id=member_id, reason=reason,
                                 created_on=DAY, due_on=DAY + dt.timedelta(days=7))


def talk(n: int = 1, on: dt.date = DAY) -> RecordTalk:
    return RecordTalk(command_id=cid(), site_id="a", obligation_id=uuid.UUID(int=n), talked_by="书记", talked_on=on)


# ---- 三必谈 --------------------------------------------------------------------------------------


def test_arrival_creates_a_new_arrival_talk_due_in_seven_days():
    cause = uuid.uuid4()
    [event] = on_member_arrived("a", "m1", DAY, cause)
    assert event == TalkObligationCreated(site_id="a", obligation_id=obligation_id(cause), member_id="m1",
                                          reason=TalkReason.new_arrival, created_on=DAY, due_on=dt.date(2020, 7, 17))


def test_talk_due_days_is_a_setting():
    [event] = on_member_arrived("a", "m1", DAY, uuid.uuid4(), Rules(talk_due_days=3))
    assert event.due_on == dt.date(2020, 7, 13)  # type: ignore[attr-defined]


def test_an_arrival_at_the_end_of_the_calendar_is_due_on_its_last_day():
    # Contracts keep new dates near today; an event from before the limits is never re-checked.
    [event] = on_member_arrived("a", "m1", dt.date(9999, 12, 30), uuid.uuid4())
    assert event.due_on == dt.date.max  # type: ignore[attr-defined]
    [exact] = on_member_arrived("a", "m1", dt.date(9999, 12, 24), uuid.uuid4())
    assert exact.due_on == dt.date.max  # type: ignore[attr-defined]


def test_the_talk_due_days_setting_is_bounded():
    with pytest.raises(ValueError):
        Rules(talk_due_days=-1)
    with pytest.raises(ValueError):
        Rules(talk_due_days=367)


def test_same_cause_same_obligation_id():
    cause = uuid.uuid4()
    assert on_member_arrived("a", "m1", DAY, cause) == on_member_arrived("a", "m1", DAY, cause)


def test_safety_violation_obliges_a_talk():
    cmd = RecordSafetyViolation(command_id=cid(), site_id="a", member_id="m2", occurred_on=DAY,
                                description="未系安全带")
    violation, created = decide(cmd, given())
    assert isinstance(violation, SafetyViolationRecorded)
    assert isinstance(created, TalkObligationCreated) and created.reason is TalkReason.safety_violation
    assert created.member_id == "m2" and created.obligation_id == obligation_id(cmd.command_id)


def test_personal_change_obliges_a_talk():
    cmd = ReportPersonalChange(command_id=cid(), site_id="a", member_id="m1", reported_on=DAY, description="家人住院")
    _, created = decide(cmd, given())
    assert isinstance(created, TalkObligationCreated) and created.reason is TalkReason.personal_change


def test_facts_about_a_member_are_not_dated_before_the_arrival():
    # A violation "in 1990" made a talk obligation overdue since 1990, counted on every view's 逾期.
    arrived = {**PRESENT, "m2": Present("李四", dt.date(2010, 3, 5), arrived_on=DAY)}
    before = DAY - dt.timedelta(days=1)
    for cmd, field in (
            (RecordSafetyViolation(command_id=cid(), site_id="a", member_id="m2", occurred_on=before,
                                   description="未系安全带"), "occurred_on"),
            (ReportPersonalChange(command_id=cid(), site_id="a", member_id="m2", reported_on=before,
                                  description="家人住院"), "reported_on")):
        with pytest.raises(domain.BeforeArrivalError) as refused:
            decide(cmd, Given(site=None, known=True, present=arrived))
        assert refused.value.field == field and "早于进场日期" in refused.value.message
        assert decide(cmd.model_copy(update={field: DAY}), Given(site=None, known=True, present=arrived))


def test_nobody_attends_or_is_met_before_arriving():
    arrived = {**PRESENT, "m2": Present("李四", dt.date(2010, 3, 5), arrived_on=DAY)}
    before = DAY - dt.timedelta(days=1)
    for cmd, field in (
            (RecordActivity(command_id=cid(), site_id="a", kind=ActivityKind.micro_lesson, title="微党课",
                            held_on=before, headcount=3, attendees=("m1", "m2")), "held_on"),
            (RecordVisit(command_id=cid(), site_id="a", kind=VisitKind.dormitory, place="2号宿舍", visitor="书记",
                         visited_on=before, members_met=("m2",)), "visited_on")):
        with pytest.raises(domain.BeforeArrivalError) as refused:
            decide(cmd, Given(site=None, known=True, present=arrived))
        assert refused.value.field == field and "李四 于 2020-07-10 进场" in refused.value.message
        assert decide(cmd.model_copy(update={field: DAY}), Given(site=None, known=True, present=arrived))


def test_violation_by_absent_member_is_refused():
    cmd = RecordSafetyViolation(command_id=cid(), site_id="a", member_id="x9", occurred_on=DAY, description="d")
    with pytest.raises(domain.MemberNotPresentError):
        decide(cmd, given())


def test_a_member_who_left_before_the_talk_has_it_closed_as_moot():
    state = given(obligation("m1", n=1), obligation("m2", n=2), obligation("m1", TalkReason.safety_violation, n=3)).site
    left = DAY + dt.timedelta(days=3)
    mooted = domain.on_member_departed(state, "a", "m1", left)
    assert [(e.obligation_id, e.member_id, e.mooted_on, e.reason) for e in mooted] == [  # type: ignore[attr-defined]
        (uuid.UUID(int=1), "m1", left, "member_departed"), (uuid.UUID(int=3), "m1", left, "member_departed")]
    done = evolve(state, TalkHeld(site_id="a", obligation_id=uuid.UUID(int=2), member_id="m2", talked_by="书记",
                                  talked_on=DAY, note=""))
    assert domain.on_member_departed(done, "a", "m2", left) == []  # held: nothing to close
    assert domain.on_member_departed(None, "a", "m1", left) == []


def test_talk_closes_the_obligation():
    [held] = decide(talk(), given(obligation()))
    assert held == TalkHeld(site_id="a", obligation_id=uuid.UUID(int=1), member_id="m1", talked_by="书记",
                            talked_on=DAY, note="")
    state = evolve(given(obligation()).site, held)
    assert state.obligations[str(uuid.UUID(int=1))].closed_on == DAY


def test_talk_for_unknown_obligation_is_refused():
    with pytest.raises(domain.ObligationNotFoundError):
        decide(talk(n=2), given(obligation()))


def test_talk_twice_is_refused():
    first = TalkHeld(site_id="a", obligation_id=uuid.UUID(int=1), member_id="m1", talked_by="x", talked_on=DAY, note="")
    with pytest.raises(domain.ObligationClosedError):
        decide(talk(), given(obligation(), first))


def test_talk_before_its_cause_is_refused():
    with pytest.raises(domain.TalkBeforeCauseError):
        decide(talk(on=DAY - dt.timedelta(days=1)), given(obligation()))


# ---- visits, site must be known ---------------------------------------------------------------


def test_visit_is_recorded_by_kind():
    cmd = RecordVisit(command_id=cid(), site_id="a", kind=VisitKind.dormitory, place="2号宿舍", visitor="书记",
                      visited_on=DAY, members_met=("m1",))
    [event] = decide(cmd, given())
    assert event.kind is VisitKind.dormitory  # type: ignore[attr-defined]


def test_unknown_site_is_refused():
    cmd = RecordVisit(command_id=cid(), site_id="a", kind=VisitKind.crew, place="p", visitor="v", visited_on=DAY)
    with pytest.raises(domain.SiteNotFoundError):
        decide(cmd, given(known=False))


def test_visit_kind_must_be_one_of_three():
    with pytest.raises(ValueError):
        RecordVisit(command_id=cid(), site_id="a", kind="canteen", place="p", visitor="v", visited_on=DAY)


# ---- political birthdays ----------------------------------------------------------------------


def celebrate(*members: str, on: dt.date = DAY) -> CelebrateBirthdays:
    return CelebrateBirthdays(command_id=cid(), site_id="a", held_on=on, members=list(members), cards_sent=2)


def test_birthdays_of_the_month_are_celebrated():
    [event] = decide(celebrate("m1", "m3"), given())
    assert event == BirthdaysCelebrated(site_id="a", held_on=DAY, members=["m1", "m3"], cards_sent=2)


def test_birthday_in_another_month_is_refused():
    with pytest.raises(domain.NotBirthdayMonthError):
        decide(celebrate("m2"), given())


def test_a_member_admitted_this_year_has_no_political_birthday_yet():
    """Before, one admitted in the month was offered as 0 年 and celebrated."""
    new = Given(site=None, known=True, present={**PRESENT, "m9": Present("新党员", dt.date(2020, 7, 1))})
    with pytest.raises(domain.NoBirthdayYetError) as refused:
        decide(celebrate("m9"), new)
    assert refused.value.field == "members" and "2021" in str(refused.value)
    assert decide(celebrate("m9", on=dt.date(2021, 7, 1)), new)


def test_birthday_celebrated_once_a_year():
    done = BirthdaysCelebrated(site_id="a", held_on=DAY, members=["m1"], cards_sent=1)
    with pytest.raises(domain.AlreadyCelebratedError):
        decide(celebrate("m1"), given(done))
    assert decide(celebrate("m1", on=dt.date(2021, 7, 1)), given(done))


# ---- zones, teams, posts, points --------------------------------------------------------------


def test_zone_needs_present_responsible_members():
    cmd = DesignateZone(command_id=cid(), site_id="a", zone_id="z1", name="1号墩", area="主桥1号墩", responsible=["x"])
    with pytest.raises(domain.MemberNotPresentError) as err:
        decide(cmd, given())
    assert err.value.field == "responsible"


def test_zone_id_is_unique():
    zone = ZoneDesignated(site_id="a", zone_id="z1", name="n", area="a", responsible=["m1"])
    cmd = DesignateZone(command_id=cid(), site_id="a", zone_id="z1", name="n", area="a", responsible=["m1"])
    with pytest.raises(domain.AlreadyExistsError):
        decide(cmd, given(zone))


def test_team_of_each_kind():
    for kind in TeamKind:
        cmd = FormTeam(command_id=cid(), site_id="a", team_id=f"t-{kind.value}", kind=kind, name="队", leader="m1",
                       members=["m1", "m2"], purpose="攻坚")
        [event] = decide(cmd, given())
        assert isinstance(event, TeamFormed) and event.kind is kind


def test_team_leader_must_be_a_member():
    with pytest.raises(ValueError, match="leader"):
        FormTeam(command_id=cid(), site_id="a", team_id="t", kind=TeamKind.assault, name="队", leader="m3",
                 members=["m1"], purpose="p")


def test_post_kind_must_be_one_of_six():
    with pytest.raises(ValueError):
        EstablishPost(command_id=cid(), site_id="a", post_id="p1", kind="canteen_watch", holder="m1", place="x")


def test_post_held_by_present_member():
    cmd = EstablishPost(command_id=cid(), site_id="a", post_id="p1", kind="safety_patrol", holder="m1", place="桥面")
    [event] = decide(cmd, given())
    assert isinstance(event, PostEstablished)
    absent = cmd.model_copy(update={"holder": "x9"})
    with pytest.raises(domain.MemberNotPresentError):
        decide(absent, given())


TODAY = dt.date(2026, 11, 26)
UNDATED = [
    DesignateZone(command_id=cid(), site_id="a", zone_id="z1", name="n", area="a", responsible=["m1"]),
    FormTeam(command_id=cid(), site_id="a", team_id="t1", kind=TeamKind.assault, name="队", leader="m1",
             members=["m1"], purpose="攻坚"),
    EstablishPost(command_id=cid(), site_id="a", post_id="p1", kind="safety_patrol", holder="m1", place="桥面"),
]


@pytest.mark.parametrize("command", UNDATED, ids=lambda c: type(c).__name__)
def test_a_zone_team_or_post_given_no_day_is_dated_the_day_it_is_recorded(command):
    """Before, it carried no day, and as of a past day took the day of whatever was recorded before it."""
    [event] = decide(command, replace(given(), today=TODAY))
    assert business_day(event) == TODAY


@pytest.mark.parametrize("command", UNDATED, ids=lambda c: type(c).__name__)
def test_a_zone_team_or_post_keeps_its_own_day_within_the_sites_life_and_the_members_stay(command):
    field = date_field(type(command))
    [event] = decide(command.model_copy(update={field: DAY}), replace(given(), today=TODAY))
    assert business_day(event) == DAY
    with pytest.raises(domain.SiteCompletedError) as err:
        decide(command, replace(given(), today=TODAY, completed_on=DAY))
    assert err.value.field == field
    arrived = {**PRESENT, "m1": Present("张三", dt.date(2001, 7, 1), arrived_on=DAY)}
    with pytest.raises(domain.BeforeArrivalError):
        decide(command.model_copy(update={field: DAY - dt.timedelta(days=1)}),
               Given(site=None, known=True, present=arrived, today=TODAY))


def test_work_point_is_unique():
    cmd = DesignateWorkPoint(command_id=cid(), site_id="a", point_id="w1", name="坑门里大桥", designated_on=DAY)
    [event] = decide(cmd, given())
    with pytest.raises(domain.AlreadyExistsError):
        decide(cmd, given(event))


# ---- lessons, services, innovations -----------------------------------------------------------


def test_activity_records_headcount_and_attendees():
    cmd = RecordActivity(command_id=cid(), site_id="a", kind=ActivityKind.night_school, title="安全生产法", held_on=DAY,
                         headcount=40, attendees=("m1", "m2"))
    [event] = decide(cmd, given())
    assert event.activity_id == cmd.command_id and event.headcount == 40  # type: ignore[attr-defined]


def night_school(on: dt.date) -> RecordActivity:
    return RecordActivity(command_id=cid(), site_id="a", kind=ActivityKind.night_school, title="安全生产法", held_on=on,
                          headcount=40)


def test_nothing_is_held_at_a_site_before_it_started_but_a_talk_it_owes():
    start = DAY + dt.timedelta(days=5)
    started = Given(site=given(obligation()).site, known=True, present=PRESENT, started_on=start)
    with pytest.raises(domain.BeforeSiteStartError) as refused:
        decide(night_school(start - dt.timedelta(days=1)), started)
    assert refused.value.field == "held_on" and refused.value.code == "BEFORE_SITE_START"
    assert decide(night_school(start), started)
    # An obligation the platform opened (an applicant's, from development files older than the site) is closed on
    # the day the talk was held.
    assert decide(talk(on=DAY), started)


def test_nothing_is_held_at_a_site_after_its_completion():
    done = Given(site=None, known=True, present=PRESENT, completed_on=DAY)
    with pytest.raises(domain.SiteCompletedError) as refused:
        decide(night_school(DAY + dt.timedelta(days=1)), done)
    assert refused.value.field == "held_on" and "已于 2020-07-10 竣工" in str(refused.value)
    with pytest.raises(domain.SiteCompletedError):
        decide(RecordSafetyViolation(command_id=cid(), site_id="a", member_id="m1", occurred_on=DAY + dt.timedelta(1),
                                     description="未戴安全帽"), done)


def test_what_happened_before_the_completion_is_recorded_late():
    done = Given(site=None, known=True, present=PRESENT, completed_on=DAY)
    [event] = decide(night_school(DAY), done)
    assert event.held_on == DAY  # type: ignore[attr-defined]


def test_social_service_names_organisation_and_service():
    with pytest.raises(ValueError, match="organisation"):
        RecordActivity(command_id=cid(), site_id="a", kind=ActivityKind.social_service, title="送服务", held_on=DAY,
                       headcount=30)


def test_headcount_covers_named_attendees():
    with pytest.raises(ValueError, match="headcount"):
        RecordActivity(command_id=cid(), site_id="a", kind=ActivityKind.micro_lesson, title="t", held_on=DAY,
                       headcount=1, attendees=("m1", "m2"))


def test_attendees_must_be_present():
    cmd = RecordActivity(command_id=cid(), site_id="a", kind=ActivityKind.safety_drill, title="t", held_on=DAY,
                         headcount=5, attendees=("x9",))
    with pytest.raises(domain.MemberNotPresentError):
        decide(cmd, given())


def test_innovation_adopted_project_wide():
    cmd = RecordInnovation(command_id=cid(), site_id="a", innovation_id="i1", title="防水板铺设", team="A1标",
                           recorded_on=DAY, adopted_project_wide=True)
    [event] = decide(cmd, given())
    assert event.adopted_project_wide  # type: ignore[attr-defined]


def test_error_codes_are_unique():
    codes = [c.code for c in domain.DomainError.__subclasses__() if c.__module__ == domain.__name__]
    assert len(codes) == len(set(codes))


def test_the_same_violation_post_zone_or_team_entered_again_is_refused_not_doubled():
    """Before, a second click recorded a second violation (and a second talk owed, for good), post, zone or team."""
    present = {m: Present(f"党员{m}", dt.date(2001, 7, 1)) for m in ("m1", "m2")}
    day, a = dt.date(2020, 7, 10), activities
    commands = [
        a.RecordSafetyViolation(command_id=uuid.uuid4(), site_id="a", member_id="m1", occurred_on=day,
                                description="未系安全带"),
        a.EstablishPost(command_id=uuid.uuid4(), site_id="a", post_id="p1", kind=a.PostKind.safety_patrol,
                        holder="m1", place="3号墩", established_on=day),
        a.DesignateZone(command_id=uuid.uuid4(), site_id="a", zone_id="z1", name="钢筋区", area="K3",
                        responsible=["m1"], designated_on=day),
        a.FormTeam(command_id=uuid.uuid4(), site_id="a", team_id="t1", kind=a.TeamKind.assault, name="突击队",
                   leader="m1", members=["m1", "m2"], purpose="架梁", formed_on=day),
    ]
    for command in commands:
        state = None
        for e in decide(command, Given(site=None, known=True, present=present)):
            state = evolve(state, e)
        # sent again with another id (a second form, a second click after the reset)
        ids = {f: f"{getattr(command, f)}-2" for f in ("post_id", "zone_id", "team_id") if hasattr(command, f)}
        again = command.model_copy(update={"command_id": uuid.uuid4(), **ids})
        with pytest.raises(domain.AlreadyExistsError) as refused:
            decide(again, Given(site=state, known=True, present=present))
        assert refused.value.field in ("description", "place", "name"), refused.value
        # ... while another one is taken
        fields = type(command).model_fields
        other = {"description": "未戴安全帽"} if "description" in fields else (
            {"place": "4号墩"} if "place" in fields else {"name": "另一个"})
        assert decide(again.model_copy(update=other), Given(site=state, known=True, present=present))

"""撤销记录 as given/when/then: a meeting, activity, appraisal, talk, points, violation, personal change, post, zone or
team entered by mistake is withdrawn."""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from contracts.activities import (
    ActivityHeld,
    ActivityKind,
    AppraiseMembers,
    AwardPoints,
    DesignateZone,
    EstablishPost,
    FormTeam,
    Grade,
    Grading,
    MeetingKind,
    PointsAwarded,
    PointsCategory,
    PostEstablished,
    PostKind,
    RecordActivity,
    RecordBranchMeeting,
    RecordKind,
    RecordRetracted,
    RecordSafetyViolation,
    RecordTalk,
    ReportPersonalChange,
    RetractRecord,
    SafetyViolationRecorded,
    TalkObligationCreated,
    TalkObligationMooted,
    TalkReason,
    TeamKind,
)
from contracts.base import Event
from contracts.timeline import Basis, Window
from services.activities import domain
from services.activities.domain import Branch, Given, Present, decide, evolve

DAY = dt.date(2020, 7, 10)
BRANCH = Branch(dt.date(2020, 4, 1), False)
PRESENT = {f"m{i}": Present(f"党员{i}", dt.date(2001, 7, 1)) for i in range(1, 7)}


def given(*events: Event) -> Given:
    state = None
    for e in events:
        state = evolve(state, e)
    return Given(site=state, known=True, present=PRESENT, branch=BRANCH)


def meeting(topic: str = "学习贯彻") -> RecordBranchMeeting:
    return RecordBranchMeeting(command_id=uuid.uuid4(), site_id="a", kind=MeetingKind.themed_day, held_on=DAY,
                               topic=topic, attendance=5)


def retract(record: RecordKind, record_id: object, reason: str = "重复提交") -> RetractRecord:
    return RetractRecord(command_id=uuid.uuid4(), site_id="a", record=record, record_id=str(record_id),
                         reason=reason)


def test_a_meeting_is_retracted_saying_what_it_was_its_day_and_why():
    held = decide(meeting(), given())
    [event] = decide(retract(RecordKind.meeting, held[0].meeting_id), given(*held))  # type: ignore[attr-defined]
    assert event == RecordRetracted(site_id="a", record=RecordKind.meeting, record_id=str(held[0].meeting_id),  # type: ignore[attr-defined]
                                    record_day=DAY, what="2020-07-10 主题党日《学习贯彻》", reason="重复提交")


def test_a_retracted_record_cannot_be_retracted_again_nor_one_that_never_was():
    held = decide(meeting(), given())
    twice = retract(RecordKind.meeting, held[0].meeting_id)  # type: ignore[attr-defined]
    state = given(*held, *decide(twice, given(*held)))
    with pytest.raises(domain.RecordNotFoundError) as refused:
        decide(twice.model_copy(update={"command_id": uuid.uuid4()}), state)
    assert (refused.value.code, refused.value.field) == ("RECORD_NOT_FOUND", "record_id")
    with pytest.raises(domain.RecordNotFoundError):
        decide(retract(RecordKind.meeting, uuid.uuid4()), given(*held))
    # The kind is part of the name: a meeting's id does not retract an activity.
    with pytest.raises(domain.RecordNotFoundError):
        decide(retract(RecordKind.activity, held[0].meeting_id), given(*held))  # type: ignore[attr-defined]


def test_a_duplicate_meeting_retracted_leaves_the_other_and_no_warning_for_it():
    first = decide(meeting(), given())
    second = decide(meeting(), given(*first))
    state = given(*first, *second)
    assert domain.advise(meeting(), state)  # the same meeting again: said back
    gone = decide(retract(RecordKind.meeting, second[0].meeting_id), state)  # type: ignore[attr-defined]
    after = given(*first, *second, *gone)
    assert after.site is not None and len(after.site.meetings) == 1
    assert domain.advise(meeting(), after)  # the first still stands
    only = given(*first, *second, *gone,
                 *decide(retract(RecordKind.meeting, first[0].meeting_id), after))  # type: ignore[attr-defined]
    assert domain.advise(meeting(), only) == []


def test_an_activity_is_retracted_by_its_id():
    held = decide(RecordActivity(command_id=uuid.uuid4(), site_id="a", kind=ActivityKind.night_school,
                                 title="安全夜校", held_on=DAY, headcount=30), given())
    assert isinstance(held[0], ActivityHeld)
    [event] = decide(retract(RecordKind.activity, held[0].activity_id, "记错工地"), given(*held))
    assert event.what == "2020-07-10 工地夜校《安全夜校》" and event.reason == "记错工地"  # type: ignore[attr-defined]


def test_an_activity_recorded_twice_is_taken_with_a_warning_until_one_is_retracted():
    """Before, the same activity sent twice doubled the count without a word."""
    night = RecordActivity(command_id=uuid.uuid4(), site_id="a", kind=ActivityKind.night_school, title="安全夜校",
                           held_on=DAY, headcount=30)
    first = decide(night, given())
    again = night.model_copy(update={"command_id": uuid.uuid4()})
    [warning] = domain.advise(again, given(*first))
    assert (warning.code, warning.field) == ("ACTIVITY_ALREADY_RECORDED", "title") and "工地夜校" in warning.message
    assert domain.advise(again.model_copy(update={"title": "第二期安全夜校"}), given(*first)) == []
    gone = decide(retract(RecordKind.activity, first[0].activity_id), given(*first))  # type: ignore[attr-defined]
    assert domain.advise(again, given(*first, *gone)) == []


def test_an_appraisal_retracted_may_be_held_again_for_its_year():
    grades = [Grading(member_id="m1", grade=Grade.excellent), *(
        Grading(member_id=f"m{i}", grade=Grade.qualified) for i in range(2, 5))]
    appraise = AppraiseMembers(command_id=uuid.uuid4(), site_id="a", year=2020, appraised_on=dt.date(2020, 12, 20),
                               grades=grades)
    held = decide(appraise, given())
    with pytest.raises(domain.AppraisalExistsError):
        decide(appraise, given(*held))
    gone = decide(retract(RecordKind.appraisal, 2020, "评定有误"), given(*held))
    assert gone[0].record_day == dt.date(2020, 12, 20)  # type: ignore[attr-defined]
    assert gone[0].what == "2020 年度民主评议（4 名党员）"  # type: ignore[attr-defined]
    assert decide(appraise, given(*held, *gone))


def test_a_retraction_is_as_of_the_records_own_day_for_the_business_view():
    """By business time the record never was, so its retraction falls on the record's day."""
    held = decide(meeting(), given())
    [event] = decide(retract(RecordKind.meeting, held[0].meeting_id), given(*held))  # type: ignore[attr-defined]
    recorded_later = dt.datetime(2020, 9, 1, 12, tzinfo=dt.UTC)
    assert Window(DAY, Basis.business).includes(recorded_later, "site-a", lambda: event)
    assert not Window(DAY, Basis.recorded).includes(recorded_later, "site-a", lambda: event)


def test_a_retraction_needs_a_reason():
    with pytest.raises(ValueError, match="reason"):
        retract(RecordKind.meeting, uuid.uuid4(), reason="")


# ---- talks: the obligation a retracted talk closed is owed again ------------------------------------------------

OWED = uuid.uuid4()


def obliged(member_id: str = "m1", reason: TalkReason = TalkReason.new_arrival) -> TalkObligationCreated:
    return TalkObligationCreated(site_id="a", obligation_id=OWED, member_id=member_id, reason=reason,
                                 created_on=dt.date(2020, 7, 1), due_on=dt.date(2020, 7, 8))


def talk() -> RecordTalk:
    return RecordTalk(command_id=uuid.uuid4(), site_id="a", obligation_id=OWED, talked_by="支部书记", talked_on=DAY)


def test_a_talk_retracted_says_whom_it_was_with_and_its_obligation_is_owed_again():
    held = decide(talk(), given(obliged()))
    [event] = decide(retract(RecordKind.talk, OWED, "谈话对象选错"), given(obliged(), *held))
    assert event == RecordRetracted(site_id="a", record=RecordKind.talk, record_id=str(OWED), record_day=DAY,
                                    what="2020-07-10 谈心谈话（新来党员必谈）", reason="谈话对象选错", member_id="m1")
    after = given(obliged(), *held, event)
    assert after.site is not None and after.site.obligations[str(OWED)].closed_on is None
    assert decide(talk(), after)  # the right talk can be recorded now
    with pytest.raises(domain.RecordNotFoundError):  # retracted: not twice
        decide(retract(RecordKind.talk, OWED), after)


def test_an_open_obligation_is_no_talk_to_retract():
    with pytest.raises(domain.RecordNotFoundError):
        decide(retract(RecordKind.talk, OWED), given(obliged()))


def test_a_talk_retracted_on_a_completed_site_leaves_its_obligation_closed_as_moot():
    """As the policy closes a completed site's open obligations: else it stayed 逾期 for ever."""
    held = decide(talk(), given(obliged()))
    done = dataclasses.replace(given(obliged(), *held), completed_on=dt.date(2020, 9, 30))
    retracted, mooted = decide(retract(RecordKind.talk, OWED), done)
    assert isinstance(retracted, RecordRetracted) and mooted == TalkObligationMooted(
        site_id="a", mooted_on=dt.date(2020, 9, 30), obligation_id=OWED, member_id="m1", reason="site_completed")
    state = evolve(evolve(done.site, retracted), mooted)
    assert state.obligations[str(OWED)].mooted and state.obligations[str(OWED)].closed_on == dt.date(2020, 9, 30)


def test_a_talk_with_a_member_who_left_is_not_retracted_but_an_applicants_is():
    held = decide(talk(), given(obliged("m9")))  # m9: not (any longer) among those present
    with pytest.raises(domain.MemberNotPresentError) as refused:
        decide(retract(RecordKind.talk, OWED), given(obliged("m9"), *held))
    assert refused.value.field == "record_id" and "已离开本工地" in refused.value.message
    applicant = obliged("p1", TalkReason.application)  # an applicant is not a member present: owed all the same
    held = decide(talk(), given(applicant))
    [event] = decide(retract(RecordKind.talk, OWED), given(applicant, *held))
    assert event.member_id == "p1"  # type: ignore[attr-defined]


# ---- points: the category's year has room for them again -------------------------------------------------------


def award(points: int, category: PointsCategory = PointsCategory.innovation) -> AwardPoints:
    return AwardPoints(command_id=uuid.uuid4(), site_id="a", member_id="m1", category=category, points=points,
                       awarded_on=DAY, reason="提出模板加固改进")


def test_points_retracted_say_how_many_and_give_the_category_room_again():
    """Innovation weighs 10 a year: 8 awarded by mistake leave room for 2, until retracted."""
    wrong = award(8)
    held = decide(wrong, given())
    assert held[0].award_id == wrong.command_id  # type: ignore[attr-defined]
    with pytest.raises(domain.PointsOverWeightError) as over:
        decide(award(5), given(*held))
    assert "党员1（m1） 2020年创新创效积分已有 8 分" in over.value.message  # by name and category (before: m1 该类)
    [event] = decide(retract(RecordKind.points, wrong.command_id, "分值记错"), given(*held))
    assert event == RecordRetracted(site_id="a", record=RecordKind.points, record_id=str(wrong.command_id),
                                    record_day=DAY, what="2020-07-10 创新创效积分 8 分", reason="分值记错",
                                    member_id="m1")
    after = given(*held, event)
    assert after.site is not None and after.site.points_awarded["2020/m1/innovation"] == 0
    assert decide(award(5), after)  # the right points fit now
    with pytest.raises(domain.RecordNotFoundError):
        decide(retract(RecordKind.points, wrong.command_id), after)


def test_points_awarded_before_awards_had_ids_count_but_are_not_retractable():
    old = PointsAwarded(site_id="a", member_id="m1", category=PointsCategory.innovation, points=8, awarded_on=DAY,
                        reason="旧记录")
    state = given(old)
    assert state.site is not None and state.site.points_awarded["2020/m1/innovation"] == 8
    assert not [k for k in state.site.records if k.startswith("points/")]


# ---- violations and personal changes: the talk they caused is withdrawn with them -------------------------------


def violation(description: str = "未戴安全帽进入作业区") -> RecordSafetyViolation:
    return RecordSafetyViolation(command_id=uuid.uuid4(), site_id="a", member_id="m1", occurred_on=DAY,
                                 description=description)


def test_a_violation_retracted_withdraws_the_talk_it_caused():
    wrong = violation()
    recorded, owed = decide(wrong, given())
    assert recorded.violation_id == wrong.command_id  # type: ignore[attr-defined]
    [event] = decide(retract(RecordKind.violation, wrong.command_id, "记错了人"), given(recorded, owed))
    assert event == RecordRetracted(site_id="a", record=RecordKind.violation, record_id=str(wrong.command_id),
                                    record_day=DAY, what="2020-07-10 施工违章：未戴安全帽进入作业区", reason="记错了人",
                                    member_id="m1", obligation_id=owed.obligation_id)  # type: ignore[attr-defined]
    after = given(recorded, owed, event)
    assert after.site is not None and after.site.obligations == {}  # no talk owed for it any more
    with pytest.raises(domain.ObligationNotFoundError):
        decide(RecordTalk(command_id=uuid.uuid4(), site_id="a", obligation_id=owed.obligation_id,  # type: ignore[attr-defined]
                          talked_by="支部书记", talked_on=DAY), after)
    assert decide(wrong.model_copy(update={"command_id": uuid.uuid4()}), after)  # the same may be entered again
    with pytest.raises(domain.RecordNotFoundError):
        decide(retract(RecordKind.violation, wrong.command_id), after)


def test_a_violation_whose_talk_was_held_is_retracted_only_after_the_talk():
    wrong = violation()
    recorded, owed = decide(wrong, given())
    held = decide(RecordTalk(command_id=uuid.uuid4(), site_id="a", obligation_id=owed.obligation_id,  # type: ignore[attr-defined]
                             talked_by="支部书记", talked_on=DAY), given(recorded, owed))
    with pytest.raises(domain.ObligationClosedError) as refused:
        decide(retract(RecordKind.violation, wrong.command_id), given(recorded, owed, *held))
    assert refused.value.field == "record_id" and "请先撤销那次谈话" in refused.value.message
    talk_gone = decide(retract(RecordKind.talk, owed.obligation_id), given(recorded, owed, *held))  # type: ignore[attr-defined]
    [event] = decide(retract(RecordKind.violation, wrong.command_id), given(recorded, owed, *held, *talk_gone))
    assert event.obligation_id == owed.obligation_id  # type: ignore[attr-defined]


def test_a_violation_whose_talk_was_closed_as_moot_is_retracted_with_it():
    wrong = violation()
    recorded, owed = decide(wrong, given())
    moot = TalkObligationMooted(site_id="a", mooted_on=DAY, obligation_id=owed.obligation_id,  # type: ignore[attr-defined]
                                member_id="m1", reason="member_departed")
    [event] = decide(retract(RecordKind.violation, wrong.command_id), given(recorded, owed, moot))
    assert event.obligation_id == owed.obligation_id  # type: ignore[attr-defined]


def test_a_personal_change_retracted_withdraws_its_talk_and_says_what_it_was():
    wrong = ReportPersonalChange(command_id=uuid.uuid4(), site_id="a", member_id="m2", reported_on=DAY,
                                 description="家中老人病重")
    recorded, owed = decide(wrong, given())
    [event] = decide(retract(RecordKind.change, wrong.command_id), given(recorded, owed))
    assert event.what == "2020-07-10 个人或家庭变故：家中老人病重" and event.member_id == "m2"  # type: ignore[attr-defined]
    assert event.obligation_id == owed.obligation_id  # type: ignore[attr-defined]
    with pytest.raises(domain.RecordNotFoundError):  # a change is not a violation
        decide(retract(RecordKind.violation, wrong.command_id), given(recorded, owed))


def test_a_violation_recorded_before_violations_had_ids_is_not_retractable():
    old = SafetyViolationRecorded(site_id="a", member_id="m1", occurred_on=DAY, description="旧记录")
    state = given(old)
    assert state.site is not None and not state.site.records
    with pytest.raises(domain.AlreadyExistsError):  # still kept against being entered twice
        decide(violation("旧记录"), state)


# ---- posts, zones and teams -------------------------------------------------------------------------------------


def test_a_post_retracted_is_gone_and_may_be_established_again():
    post = EstablishPost(command_id=uuid.uuid4(), site_id="a", post_id="p1", kind=PostKind.safety_patrol,
                         holder="m3", place="2号桥墩", established_on=DAY)
    made = decide(post, given())
    [event] = decide(retract(RecordKind.post, "p1", "上岗党员选错"), given(*made))
    assert event == RecordRetracted(site_id="a", record=RecordKind.post, record_id="p1", record_day=DAY,
                                    what="2020-07-10 安全生产巡查岗（2号桥墩）", reason="上岗党员选错", member_id="m3")
    after = given(*made, event)
    assert after.site is not None and after.site.posts == {} and after.site.entered == []
    assert decide(post, after)  # the same id and place again, now right


def test_a_zone_and_a_team_retracted_free_their_names():
    zone = DesignateZone(command_id=uuid.uuid4(), site_id="a", zone_id="z1", name="1号工区", area="K1-K2",
                         responsible=["m1"], designated_on=DAY)
    team = FormTeam(command_id=uuid.uuid4(), site_id="a", team_id="t1", kind=TeamKind.assault, name="突击队",
                    leader="m1", members=["m1", "m2"], purpose="抢工期", formed_on=DAY)
    made = [*decide(zone, given()), *decide(team, given())]
    zone_gone = decide(retract(RecordKind.zone, "z1"), given(*made))
    team_gone = decide(retract(RecordKind.team, "t1"), given(*made, *zone_gone))
    assert [e.what for e in (*zone_gone, *team_gone)] == [  # type: ignore[attr-defined]
        "2020-07-10 党员责任区「1号工区」", "2020-07-10 党员突击队「突击队」"]
    after = given(*made, *zone_gone, *team_gone)
    assert after.site is not None and after.site.zones == {} and after.site.teams == {}
    assert decide(zone, after) and decide(team, after)
    with pytest.raises(domain.RecordNotFoundError):  # a zone's id names no team
        decide(retract(RecordKind.team, "z1"), given(*made))


def test_a_post_recorded_before_its_day_was_kept_is_not_retractable():
    old = PostEstablished(site_id="a", post_id="p0", kind=PostKind.safety_patrol, holder="m3", place="旧址")
    with pytest.raises(domain.RecordNotFoundError):
        decide(retract(RecordKind.post, "p0"), given(old))

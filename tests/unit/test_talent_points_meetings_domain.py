"""三培两推, 党员积分, 民主评议, 三会一课 and the application/completion policies as given/when/then: no I/O."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from contracts.activities import (
    AppraiseMembers,
    AwardPoints,
    BackboneTrained,
    BranchMeetingHeld,
    CrewCandidate,
    CrewLeaderRecommended,
    Grade,
    Grading,
    MeetingKind,
    MembersAppraised,
    PointsAwarded,
    PointsCategory,
    PromotedToManagement,
    PromoteToManagement,
    RecommendCrewLeader,
    RecommendedForManagement,
    RecommendForManagement,
    RecordBranchMeeting,
    RecordTalk,
    TalkObligationCreated,
    TalkObligationMooted,
    TalkReason,
    TrainBackbone,
    meeting_period,
)
from contracts.base import Event
from contracts.rules import Rules
from services.activities import domain
from services.activities.domain import (
    Branch,
    Given,
    Present,
    add_months,
    decide,
    evolve,
    obligation_id,
    on_application_submitted,
    on_site_completed,
)

DAY = dt.date(2020, 7, 10)
FORMED = dt.date(2020, 4, 1)
PRESENT = {f"m{i}": Present(f"党员{i}", dt.date(2001, 7, 1)) for i in range(1, 10)}


def cid() -> uuid.UUID:
    return uuid.uuid4()


BRANCH = Branch(FORMED, False)


def given(*events: Event, branch: Branch | None = BRANCH) -> Given:
    state = None
    for e in events:
        state = evolve(state, e)
    return Given(site=state, known=True, present=PRESENT, branch=branch)


def trained(member_id: str = "m1") -> BackboneTrained:
    return BackboneTrained(site_id="a", member_id=member_id, trained_on=DAY, skill="焊接")


# ---- 三培两推 ------------------------------------------------------------------------------------


def test_a_member_present_is_trained_as_backbone_once():
    [event] = decide(TrainBackbone(command_id=cid(), site_id="a", member_id="m1", trained_on=DAY, skill="焊接"),
                     given())
    assert event == trained()
    with pytest.raises(domain.AlreadyExistsError):
        decide(TrainBackbone(command_id=cid(), site_id="a", member_id="m1", trained_on=DAY, skill="焊接"),
               given(trained()))
    with pytest.raises(domain.MemberNotPresentError):
        decide(TrainBackbone(command_id=cid(), site_id="a", member_id="x", trained_on=DAY, skill="焊接"), given())


def test_only_backbone_is_promoted_to_management():
    promote = PromoteToManagement(command_id=cid(), site_id="a", member_id="m1", promoted_on=DAY, position="施工员")
    with pytest.raises(domain.NotBackboneError) as refused:
        decide(promote, given())
    assert refused.value.code == "NOT_BACKBONE"
    [event] = decide(promote, given(trained()))
    assert isinstance(event, PromotedToManagement)
    with pytest.raises(domain.AlreadyExistsError):
        decide(promote, given(trained(), event))


def test_a_backbone_is_not_promoted_before_the_training():
    # Before, the history then showed the promotion before the training.
    early = PromoteToManagement(command_id=cid(), site_id="a", member_id="m1", promoted_on=DAY - dt.timedelta(days=1),
                                position="施工员")
    with pytest.raises(domain.StepBeforeTrainingError) as refused:
        decide(early, given(trained()))
    assert (refused.value.code, refused.value.field) == ("DATE_BEFORE_EARLIER_STEP", "promoted_on")
    assert decide(early.model_copy(update={"promoted_on": DAY}), given(trained()))


def test_a_worker_or_backbone_is_recommended_as_crew_leader():
    worker = RecommendCrewLeader(command_id=cid(), site_id="a", person_id="w9", name="农民工甲",
                                 candidate=CrewCandidate.worker, recommended_on=DAY, crew="钢筋班组")
    [event] = decide(worker, given())  # a worker need not be a member present
    assert isinstance(event, CrewLeaderRecommended)
    with pytest.raises(domain.AlreadyExistsError):
        decide(worker, given(event))
    backbone = worker.model_copy(update={"person_id": "m2", "name": "党员2", "candidate": CrewCandidate.backbone})
    with pytest.raises(domain.NotBackboneError):
        decide(backbone, given())
    assert decide(backbone, given(trained("m2")))


def test_a_crew_leader_named_by_a_members_id_carries_that_members_name():
    """Before, a present member's id was accepted as a "worker" under another name."""
    other = RecommendCrewLeader(command_id=cid(), site_id="a", person_id="m3", name="完全不同的名字",
                                candidate=CrewCandidate.worker, recommended_on=DAY, crew="钢筋班组")
    with pytest.raises(domain.NameNotTheMembersError) as refused:
        decide(other, given())
    assert refused.value.field == "name" and "党员3" in str(refused.value)
    assert decide(other.model_copy(update={"name": "党员3"}), given())


def test_a_member_is_recommended_into_management_saying_whether_backbone():
    recommend = RecommendForManagement(command_id=cid(), site_id="a", member_id="m1", recommended_on=DAY,
                                       position="项目副经理")
    [plain] = decide(recommend, given())
    [backbone] = decide(recommend, given(trained()))
    assert isinstance(plain, RecommendedForManagement) and not plain.backbone and backbone.backbone  # type: ignore[attr-defined]
    with pytest.raises(domain.AlreadyExistsError):
        decide(recommend, given(plain))


# ---- 党员积分 ------------------------------------------------------------------------------------


def award(points: int, category: PointsCategory = PointsCategory.innovation, on: dt.date = DAY) -> AwardPoints:
    return AwardPoints(command_id=cid(), site_id="a", member_id="m1", category=category, points=points,
                       awarded_on=on, reason="小改良")


def awarded(points: int, category: PointsCategory = PointsCategory.innovation, on: dt.date = DAY) -> PointsAwarded:
    return PointsAwarded(site_id="a", member_id="m1", category=category, points=points, awarded_on=on, reason="x")


def test_points_fill_a_category_up_to_its_weight_and_not_one_over():
    assert decide(award(4), given(awarded(6)))  # 6 + 4 = 10, innovation's weight
    with pytest.raises(domain.PointsOverWeightError) as refused:
        decide(award(5), given(awarded(6)))
    assert refused.value.code == "POINTS_OVER_WEIGHT" and "points_weight_innovation" in str(refused.value)


def test_the_weight_is_per_year_and_per_category_and_a_setting():
    assert decide(award(10, on=dt.date(2021, 1, 1)), given(awarded(10, on=dt.date(2020, 12, 31))))
    assert decide(award(30, PointsCategory.post_goals), given(awarded(10)))
    with pytest.raises(domain.PointsOverWeightError):
        decide(award(6), given(awarded(6)), Rules(points_weight_innovation=11))
    with pytest.raises(domain.MemberNotPresentError):
        decide(award(1).model_copy(update={"member_id": "x"}), given())


# ---- 民主评议 ------------------------------------------------------------------------------------


def appraise(excellent: int, others: int, year: int = 2020, on: dt.date = dt.date(2020, 12, 28)) -> AppraiseMembers:
    grades = [Grading(member_id=f"m{i + 1}", grade=Grade.excellent if i < excellent else Grade.qualified)
              for i in range(excellent + others)]
    return AppraiseMembers(command_id=cid(), site_id="a", year=year, appraised_on=on, grades=grades)


def test_excellent_at_exactly_one_third_is_accepted():
    [event] = decide(appraise(3, 6), given())
    assert isinstance(event, MembersAppraised) and len(event.grades) == 9


def test_no_appraisal_of_a_year_before_the_branch():
    with pytest.raises(domain.StepBeforeTrainingError) as refused:
        decide(appraise(1, 2, year=FORMED.year - 1, on=FORMED), given())
    assert refused.value.field == "year" and refused.value.code == "DATE_BEFORE_EARLIER_STEP"


def test_one_excellent_over_one_third_is_refused_naming_the_rule():
    with pytest.raises(domain.ExcellentOverCapError) as refused:
        decide(appraise(4, 5), given())
    assert refused.value.code == "APPRAISAL_EXCELLENT_OVER_CAP" and "appraisal_excellent_one_in" in str(refused.value)
    with pytest.raises(domain.ExcellentOverCapError):
        decide(appraise(1, 1), given())  # one of two is over a third


def test_one_appraisal_per_branch_per_year():
    first = decide(appraise(1, 2), given())
    with pytest.raises(domain.AppraisalExistsError):
        decide(appraise(1, 2), given(*first))
    assert decide(appraise(1, 2, year=2021, on=dt.date(2021, 12, 1)), given(*first))


def test_an_appraisal_needs_a_branch_members_present_and_its_year():
    with pytest.raises(domain.NoBranchError):
        decide(appraise(1, 2), given(branch=None))
    with pytest.raises(domain.MemberNotPresentError):
        decide(appraise(0, 1).model_copy(update={"grades": [Grading(member_id="x", grade=Grade.qualified)]}),
               given())
    assert decide(appraise(1, 2, on=dt.date(2021, 1, 15)), given())  # early next year
    with pytest.raises(domain.AppraisalYearError):
        decide(appraise(1, 2, on=dt.date(2022, 1, 1)), given())


def test_a_member_is_graded_once():
    with pytest.raises(ValueError, match="graded once"):
        AppraiseMembers(command_id=cid(), site_id="a", year=2020, appraised_on=DAY,
                        grades=[Grading(member_id="m1", grade=Grade.qualified)] * 2)


# ---- 三会一课 ------------------------------------------------------------------------------------


def meeting(kind: MeetingKind = MeetingKind.general_assembly, on: dt.date = FORMED, attendance: int = 8
            ) -> RecordBranchMeeting:
    return RecordBranchMeeting(command_id=cid(), site_id="a", kind=kind, held_on=on, topic="学习贯彻",
                               attendance=attendance, attendees=("m1",))


def test_a_members_meeting_counts_no_more_than_the_members_present():
    # 5,000 at a branch meeting of a site with 40 members present was accepted.
    with pytest.raises(domain.AttendanceOverMembersError) as refused:
        decide(meeting(attendance=len(PRESENT) + 1), given())
    assert refused.value.field == "attendance"
    assert decide(meeting(attendance=len(PRESENT)), given())
    assert decide(meeting(MeetingKind.lecture, attendance=len(PRESENT) + 20), given())  # a 党课 may have guests


def test_a_meeting_on_the_day_the_branch_was_formed_is_recorded_and_a_day_before_refused():
    command = meeting()
    [event] = decide(command, given())
    assert isinstance(event, BranchMeetingHeld) and event.meeting_id == command.command_id
    with pytest.raises(domain.MeetingBeforeBranchError):
        decide(meeting(on=FORMED - dt.timedelta(days=1)), given())


def test_a_meeting_needs_a_branch_and_a_committee_meeting_a_committee():
    with pytest.raises(domain.NoBranchError):
        decide(meeting(), given(branch=None))
    with pytest.raises(domain.NoCommitteeError) as refused:
        decide(meeting(MeetingKind.committee), given())
    assert refused.value.code == "NO_COMMITTEE"
    assert decide(meeting(MeetingKind.committee), given(branch=Branch(FORMED, True)))


def test_meeting_periods_are_months_quarters_and_years():
    assert meeting_period(dt.date(2020, 7, 10), 1) == (dt.date(2020, 7, 1), dt.date(2020, 7, 31))
    assert meeting_period(dt.date(2020, 12, 31), 3) == (dt.date(2020, 10, 1), dt.date(2020, 12, 31))
    assert meeting_period(dt.date(2020, 4, 1), 3) == (dt.date(2020, 4, 1), dt.date(2020, 6, 30))
    assert meeting_period(dt.date(2020, 3, 31), 3) == (dt.date(2020, 1, 1), dt.date(2020, 3, 31))
    assert meeting_period(dt.date(2020, 2, 29), 12) == (dt.date(2020, 1, 1), dt.date(2020, 12, 31))
    assert Rules().meeting_months("lecture") == 3 and Rules().meeting_months("themed_day") == 1


# ---- policies: applications and completed sites ----------------------------------------------------


def test_an_application_obliges_a_talk_within_one_calendar_month():
    cause = uuid.uuid4()
    [event] = on_application_submitted("a", "p1", dt.date(2020, 1, 31), cause)
    assert event == TalkObligationCreated(site_id="a", obligation_id=obligation_id(cause), member_id="p1",
                                          reason=TalkReason.application, created_on=dt.date(2020, 1, 31),
                                          due_on=dt.date(2020, 2, 29))
    assert add_months(dt.date(2020, 6, 15), 1) == dt.date(2020, 7, 15)
    assert add_months(dt.date(9999, 12, 15), 1) == dt.date.max


def test_an_application_talk_is_closed_by_a_talk_like_the_others():
    [created] = on_application_submitted("a", "p1", DAY, uuid.uuid4())
    talk = RecordTalk(command_id=cid(), site_id="a", obligation_id=created.obligation_id,  # type: ignore[attr-defined]
                      talked_by="书记", talked_on=DAY)
    assert decide(talk, given(created))
    with pytest.raises(domain.TalkBeforeCauseError):
        decide(talk.model_copy(update={"talked_on": DAY - dt.timedelta(days=1)}), given(created))


def test_completing_a_site_moots_every_open_obligation_and_no_talk_closes_one_after():
    [a] = on_application_submitted("a", "p1", DAY, uuid.uuid4())
    [b] = on_application_submitted("a", "p2", DAY, uuid.uuid4())
    state = evolve(evolve(None, a), b)
    held = decide(RecordTalk(command_id=cid(), site_id="a", obligation_id=b.obligation_id,  # type: ignore[attr-defined]
                             talked_by="书记", talked_on=DAY), Given(site=state, known=True))
    state = evolve(state, held[0])
    mooted = on_site_completed(state, "a", dt.date(2020, 9, 1))
    assert mooted == [TalkObligationMooted(site_id="a", mooted_on=dt.date(2020, 9, 1),
                                           obligation_id=a.obligation_id, member_id="p1",  # type: ignore[attr-defined]
                                           reason="site_completed")]
    state = evolve(state, mooted[0])
    assert on_site_completed(state, "a", dt.date(2020, 9, 2)) == [] and on_site_completed(None, "a", DAY) == []
    with pytest.raises(domain.ObligationClosedError, match="竣工"):
        decide(RecordTalk(command_id=cid(), site_id="a", obligation_id=a.obligation_id,  # type: ignore[attr-defined]
                          talked_by="书记", talked_on=DAY), Given(site=state, known=True))


def test_a_branch_meeting_recorded_twice_is_taken_with_a_warning():
    first = meeting(MeetingKind.themed_day)
    state = given(*decide(first, given()))
    again = first.model_copy(update={"command_id": cid()})
    assert decide(again, state)  # two groups may meet on one day: recorded
    [warning] = domain.advise(again, state)
    assert (warning.code, warning.field) == ("MEETING_ALREADY_RECORDED", "topic") and "主题党日" in warning.message
    assert domain.advise(again.model_copy(update={"topic": "另一主题"}), state) == []


def test_a_meetings_attendance_is_measured_by_the_members_present_on_its_day():
    """Before, a meeting recorded late was measured by today's roster (a member who arrived later counted)."""
    later = {**PRESENT, "m10": Present("后来者", dt.date(2001, 7, 1), arrived_on=DAY + dt.timedelta(days=30))}
    held = RecordBranchMeeting(command_id=cid(), site_id="a", kind=MeetingKind.general_assembly, held_on=DAY,
                               topic="学习", attendance=len(PRESENT) + 1, attendees=())
    with pytest.raises(domain.AttendanceOverMembersError) as refused:
        decide(held, Given(site=None, known=True, present=later, branch=BRANCH))
    assert f"只有 {len(PRESENT)} 名" in str(refused.value)
    assert decide(held.model_copy(update={"held_on": DAY + dt.timedelta(days=30)}),
                  Given(site=None, known=True, present=later, branch=BRANCH))

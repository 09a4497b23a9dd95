"""Membership rules as given/when/then on events: no I/O."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from contracts.base import Event
from contracts.city import City
from contracts.membership import (
    BranchFormed,
    CompleteSite,
    FormBranch,
    FormPartyGroup,
    Gender,
    Job,
    MemberArrived,
    MemberDeparted,
    MemberFacts,
    MemberStatus,
    PartyGroupClosed,
    PartyGroupFormed,
    RecordArrival,
    RecordDeparture,
    RegisterSite,
    Relation,
    ReportWorkforce,
    SiteCompleted,
    SiteRegistered,
    UnitKind,
    Units,
    WorkforceReported,
)
from contracts.rules import Rules
from services.membership import domain
from services.membership.domain import Given, decide, evolve

DAY = dt.date(2020, 5, 1)
UNITS = Units(owner="业主", design="设计院", construction="施工单位", supervision="监理公司")


def cmd_id() -> uuid.UUID:
    return uuid.uuid4()


def registered(site_id: str = "a", cost: int = 6000, months: int = 30) -> SiteRegistered:
    return SiteRegistered(site_id=site_id, name=f"工地{site_id}", township="shacheng", department="交通运输局",
                          cost_wan=Decimal(cost), planned_months=months, start_date=DAY, units=UNITS)


def facts(status: MemberStatus = MemberStatus.full, section: str = "一工段") -> MemberFacts:
    return MemberFacts(name="张三", gender=Gender.male, admitted_on=dt.date(2001, 7, 1), status=status,
                       unit_kind=UnitKind.construction, unit_name="施工单位", job=Job.worker, section=section,
                       home_org="某村党支部", relation=Relation.mobile)


def arrived(member_id: str, site_id: str = "a", status: MemberStatus = MemberStatus.full) -> MemberArrived:
    return MemberArrived(site_id=site_id, member_id=member_id, member=facts(status), arrived_on=DAY)


def branch(site_id: str = "a", secretary: str = "m1") -> BranchFormed:
    return BranchFormed(site_id=site_id, name="支部", secretary=secretary, instructor="指导员", liaison="联络员",
                        member_units=["施工单位"], committee=[], formed_on=DAY, full_members=3, members=3)


def given(*events: Event) -> domain.SiteState | None:
    state = None
    for e in events:
        state = evolve(state, e)
    return state


def arrival(member_id: str, site_id: str = "a", status: MemberStatus = MemberStatus.full) -> RecordArrival:
    return RecordArrival(command_id=cmd_id(), site_id=site_id, member_id=member_id, member=facts(status),
                         arrived_on=DAY)


def form_branch(secretary: str = "m1", committee: tuple[str, ...] = ()) -> FormBranch:
    return FormBranch(command_id=cmd_id(), site_id="a", name="支部", secretary=secretary, instructor="指导员",
                      liaison="联络员", member_units=["施工单位"], committee=committee, formed_on=DAY)


def form_group(members: list[str], leader: str | None = None, group_id: str = "g1") -> FormPartyGroup:
    return FormPartyGroup(command_id=cmd_id(), site_id="a", group_id=group_id, name="一工段党小组", section="一工段",
                          leader=leader or members[0], members=members, formed_on=DAY)


THREE_FULL = [arrived("m1"), arrived("m2"), arrived("m3")]


# ---- registering and reporting ------------------------------------------------------------------


# Not the default city: the rules read townships and departments from whatever city is configured.
SEASIDE = City(code="seaside", name="海滨市", townships={"shacheng": "沙城镇", "east": "东湖镇"},
               departments={"jiaotong": "交通运输局", "shuili": "水利局"})


def registration(township: str = "shacheng", department: str = "交通运输局") -> RegisterSite:
    return RegisterSite(command_id=cmd_id(), site_id="a", name="工地a", township=township, department=department,
                        cost_wan=Decimal(6000), planned_months=30, start_date=DAY, units=UNITS)


def test_register_site_records_site_registered():
    assert decide(registration(), Given(None, city=SEASIDE)) == [registered()]


def test_a_site_registered_again_with_other_facts_is_refused_naming_them():
    other = registration().model_copy(update={"planned_months": 36, "name": "工地a（二期）"})
    with pytest.raises(domain.SiteAlreadyRegisteredError) as err:
        decide(other, Given(given(registered()), city=SEASIDE))
    assert err.value.code == "SITE_ALREADY_REGISTERED" and err.value.field == "site_id"
    assert "项目名称、计划工期与登记的不同" in err.value.message


def test_a_site_registered_again_as_it_was_is_told_apart_as_already_recorded():
    # An exported project list imported again: nothing new, and the importer can say so (已导入).
    with pytest.raises(domain.SiteAlreadyRecordedError) as err:
        decide(registration(), Given(given(registered()), city=SEASIDE))
    assert err.value.code == "SITE_ALREADY_RECORDED" and "已按相同内容登记" in err.value.message


def test_a_second_site_of_the_same_name_in_a_township_is_warned_not_refused():
    [warning] = domain.advise(registration(), Given(None, city=SEASIDE, same_name=("a2", "a3")))
    assert (warning.code, warning.field) == ("SITE_NAME_TAKEN", "name") and "工地编号 a2、a3" in warning.message
    assert decide(registration(), Given(None, city=SEASIDE))  # still registered
    assert domain.advise(registration(), Given(None, city=SEASIDE)) == []


def test_a_township_of_another_city_is_refused():
    with pytest.raises(domain.UnknownTownshipError) as err:
        decide(registration(township="tongshan"), Given(None, city=SEASIDE))  # a township of the default city
    assert err.value.code == "UNKNOWN_TOWNSHIP" and err.value.field == "township"
    assert "海滨市" in err.value.message


def test_a_department_the_city_does_not_have_is_refused():
    with pytest.raises(domain.UnknownDepartmentError) as err:
        decide(registration(department="宇航局"), Given(None, city=SEASIDE))
    assert err.value.code == "UNKNOWN_DEPARTMENT" and err.value.field == "department"


def test_a_department_given_by_its_code_is_recorded_by_its_name():
    """Before, `"department": "jiaotong"` (its code, as /api/me names it) was refused UNKNOWN_DEPARTMENT."""
    assert decide(registration(department="jiaotong"), Given(None, city=SEASIDE)) == [registered()]
    with pytest.raises(domain.SiteAlreadyRecordedError):  # the same facts, said the other way
        decide(registration(department="jiaotong"), Given(given(registered()), city=SEASIDE))


def test_township_codes_must_be_slugs():
    with pytest.raises(ValueError):
        registration(township="沙城镇")


def test_report_workforce_on_registered_site():
    cmd = ReportWorkforce(command_id=cmd_id(), site_id="a", headcount=120, as_of=DAY)
    assert decide(cmd, Given(given(registered()))) == [WorkforceReported(site_id="a", headcount=120, as_of=DAY)]


def test_report_workforce_on_unknown_site_is_refused():
    cmd = ReportWorkforce(command_id=cmd_id(), site_id="a", headcount=1, as_of=DAY)
    with pytest.raises(domain.SiteNotFoundError):
        decide(cmd, Given(None))


def test_workforce_cannot_be_negative():
    with pytest.raises(ValueError):
        ReportWorkforce(command_id=cmd_id(), site_id="a", headcount=-1, as_of=DAY)


def test_workforce_reported_replaces_headcount():
    state = given(registered(), WorkforceReported(site_id="a", headcount=5, as_of=DAY),
                  WorkforceReported(site_id="a", headcount=9, as_of=DAY))
    assert state is not None and state.workforce == 9


def report(as_of: dt.date, headcount: int = 80) -> ReportWorkforce:
    return ReportWorkforce(command_id=cmd_id(), site_id="a", headcount=headcount, as_of=as_of)


def test_a_headcount_is_not_reported_for_a_day_before_the_site_started():
    with pytest.raises(domain.ReportBeforeStartError) as refused:
        decide(report(DAY - dt.timedelta(days=1)), Given(given(registered())))
    assert refused.value.field == "as_of"


def test_a_headcount_older_than_the_one_shown_is_refused_and_one_of_the_same_day_corrects_it():
    later = DAY + dt.timedelta(days=60)
    shown = given(registered(), WorkforceReported(site_id="a", headcount=71, as_of=later))
    with pytest.raises(domain.OlderThanLatestReportError) as refused:
        decide(report(DAY + dt.timedelta(days=30), 999), Given(shown))
    assert refused.value.field == "as_of" and "71" in str(refused.value)
    assert decide(report(later, 72), Given(shown)) == [WorkforceReported(site_id="a", headcount=72, as_of=later)]


def test_a_completed_site_takes_headcounts_up_to_its_completion_only():
    done = given(registered(), WorkforceReported(site_id="a", headcount=71, as_of=DAY),
                 SiteCompleted(site_id="a", completed_on=dt.date(2023, 6, 30)))
    with pytest.raises(domain.SiteCompletedError) as refused:
        decide(report(dt.date(2023, 7, 1), 500), Given(done))
    assert refused.value.field == "as_of"
    assert decide(report(dt.date(2023, 6, 30), 12), Given(done))[0].headcount == 12


# ---- arrivals and departures --------------------------------------------------------------------


def test_arrival_records_member_arrived():
    assert decide(arrival("m1"), Given(given(registered()))) == [arrived("m1")]


def test_arrival_at_unknown_site_is_refused():
    with pytest.raises(domain.SiteNotFoundError):
        decide(arrival("m1"), Given(None))


def test_arrival_of_member_already_present_with_other_facts_is_refused_naming_them():
    again = arrival("m1", status=MemberStatus.probationary).model_copy(
        update={"arrived_on": DAY + dt.timedelta(days=3)})
    with pytest.raises(domain.MemberAlreadyPresentError) as refused:
        decide(again, Given(given(registered(), arrived("m1"))))
    site = given(registered(), arrived("m1"))
    # Named as the people recording know them (before: "党员 m1 已在工地 a").
    assert str(refused.value).startswith(f"{site.members['m1'].name}(m1) 已在工地 {site.name}(a)")
    assert "党员状态、进场日期与在册的不同" in str(refused.value)


def test_an_arrival_recorded_again_as_it_was_is_told_apart_as_already_recorded():
    # An exported roster imported again: nothing new, and the importer can say so (已导入).
    with pytest.raises(domain.ArrivalAlreadyRecordedError) as refused:
        decide(arrival("m1"), Given(given(registered(), arrived("m1"))))
    assert refused.value.code == "ARRIVAL_ALREADY_RECORDED" and refused.value.field == "member_id"
    assert "内容相同" in str(refused.value)


def test_an_arrival_before_the_site_started_is_refused():
    early = arrival("m1").model_copy(update={"arrived_on": DAY - dt.timedelta(days=1)})
    with pytest.raises(domain.ArrivalBeforeStartError) as refused:
        decide(early, Given(given(registered())))
    assert refused.value.field == "arrived_on"


def test_a_member_admitted_after_arriving_is_refused():
    later = arrival("m1").model_copy(update={"member": facts().model_copy(update={"admitted_on": DAY.replace(day=2)})})
    with pytest.raises(domain.AdmittedAfterArrivalError) as refused:
        decide(later, Given(given(registered())))
    assert refused.value.field == "member.admitted_on"


def test_arrival_elsewhere_ends_the_earlier_stay():
    b = given(registered("b"), arrived("m1", "b"))
    events = decide(arrival("m1"), Given(given(registered()), previous_site=b))
    assert events == [
        MemberDeparted(site_id="b", member_id="m1", departed_on=DAY, reason="调往其他工地", moved_to_site="a"),
        arrived("m1"),
    ]


def test_moving_a_branch_secretary_or_group_leader_away_warns_without_naming_their_site():
    b = given(registered("b"), arrived("m1", "b"), arrived("m2", "b"), arrived("m3", "b"),
              branch("b", secretary="m1"),
              PartyGroupFormed(site_id="b", group_id="g1", name="一工段党小组", section="一工段", leader="m1",
                               members=["m1", "m2", "m3"], formed_on=DAY))
    [warning] = domain.advise(arrival("m1"), Given(given(registered()), previous_site=b))
    assert (warning.code, warning.field) == ("MOVES_A_POST_HOLDER", "member_id")
    assert "党支部书记、党小组组长" in warning.message and "b" not in warning.message.split("(")[0]
    assert domain.advise(arrival("m2"), Given(given(registered()), previous_site=b)) == []


@pytest.mark.parametrize("changed", [{"name": "错名字"}, {"admitted_on": dt.date(1990, 1, 1)}])
def test_an_arrival_under_the_id_of_another_member_present_elsewhere_is_refused(changed):
    """A mistyped id in an import moved and renamed somebody else's member without a word."""
    b = given(registered("b"), arrived("m1", "b"))
    wrong = arrival("m1")
    wrong = wrong.model_copy(update={"member": wrong.member.model_copy(update=changed)})
    with pytest.raises(domain.MemberIdMismatchError) as refused:
        decide(wrong, Given(given(registered()), previous_site=b))
    assert refused.value.field == "member_id" and "请核对党员编号" in str(refused.value)
    # Nothing of the other member: the sender may not read that site (any writer could walk the ids otherwise).
    there = b.members["m1"]
    leaked = [w for w in (b.name, "(b)", there.name, str(there.admitted_on)) if w in str(refused.value)]
    assert leaked == [], str(refused.value)


def test_departure_records_member_departed():
    cmd = RecordDeparture(command_id=cmd_id(), site_id="a", member_id="m1", departed_on=DAY, reason="工程结束")
    assert decide(cmd, Given(given(registered(), arrived("m1")))) == [
        MemberDeparted(site_id="a", member_id="m1", departed_on=DAY, reason="工程结束")
    ]


def test_departure_of_absent_member_is_refused():
    cmd = RecordDeparture(command_id=cmd_id(), site_id="a", member_id="m1", departed_on=DAY)
    with pytest.raises(domain.MemberNotPresentError) as err:
        decide(cmd, Given(given(registered())))
    assert err.value.code == "MEMBER_NOT_PRESENT"


def test_departed_member_is_no_longer_present():
    state = given(registered(), arrived("m1"), MemberDeparted(site_id="a", member_id="m1", departed_on=DAY))
    assert state is not None and state.members == {}


def departure(on: dt.date, member_id: str = "m1") -> RecordDeparture:
    return RecordDeparture(command_id=cmd_id(), site_id="a", member_id=member_id, departed_on=on)


def arrived_on(on: dt.date, member_id: str = "m1", site_id: str = "a") -> MemberArrived:
    return arrived(member_id, site_id).model_copy(update={"arrived_on": on})


LATER = DAY + dt.timedelta(days=30)


def test_a_departure_before_the_members_arrival_is_refused():
    with pytest.raises(domain.DepartureBeforeArrivalError) as refused:
        decide(departure(LATER - dt.timedelta(days=1)), Given(given(registered(), arrived_on(LATER))))
    assert refused.value.code == "DEPARTURE_BEFORE_ARRIVAL" and refused.value.field == "departed_on"


def test_a_departure_on_the_day_of_arrival_is_recorded():
    events = decide(departure(LATER), Given(given(registered(), arrived_on(LATER))))
    assert events == [MemberDeparted(site_id="a", member_id="m1", departed_on=LATER)]


def test_a_departure_is_checked_against_the_latest_arrival():
    back = given(registered(), arrived_on(DAY), MemberDeparted(site_id="a", member_id="m1", departed_on=DAY),
                 arrived_on(LATER))
    assert back is not None and back.arrived == {"m1": LATER}
    with pytest.raises(domain.DepartureBeforeArrivalError):
        decide(departure(LATER - dt.timedelta(days=1)), Given(back))


def test_a_departed_member_leaves_no_arrival_date_behind():
    state = given(registered(), arrived_on(LATER), MemberDeparted(site_id="a", member_id="m1", departed_on=LATER))
    assert state is not None and state.arrived == {}


def test_a_move_dated_before_the_arrival_at_the_old_site_is_refused():
    b = given(registered("b"), arrived_on(LATER, site_id="b"))
    move = arrival("m1").model_copy(update={"arrived_on": LATER - dt.timedelta(days=1)})
    with pytest.raises(domain.DepartureBeforeArrivalError) as refused:
        decide(move, Given(given(registered()), previous_site=b))
    assert refused.value.field == "arrived_on"
    assert str(LATER) not in str(refused.value) and b.name not in str(refused.value)  # the other site: not said


def test_a_move_on_the_day_of_the_arrival_at_the_old_site_is_recorded():
    b = given(registered("b"), arrived_on(LATER, site_id="b"))
    move = arrival("m1").model_copy(update={"arrived_on": LATER})
    events = decide(move, Given(given(registered()), previous_site=b))
    assert [type(e) for e in events] == [MemberDeparted, MemberArrived]
    assert events[0].departed_on == LATER


def test_a_snapshot_without_arrival_dates_still_takes_departures():
    # A snapshot written before arrival dates were kept, not yet migrated: the rule cannot be checked, so it is not.
    old = given(registered(), arrived_on(LATER)).model_dump(mode="json")
    del old["arrived"]
    events = decide(departure(DAY), Given(domain.SiteState.model_validate(old)))
    assert events == [MemberDeparted(site_id="a", member_id="m1", departed_on=DAY)]


def test_member_ids_must_be_slugs():
    with pytest.raises(ValueError):
        arrival("Has Spaces")


# ---- branches -----------------------------------------------------------------------------------


def test_branch_with_three_full_members_is_formed():
    events = decide(form_branch(), Given(given(registered(), *THREE_FULL)))
    assert len(events) == 1 and isinstance(events[0], BranchFormed)
    assert events[0].full_members == 3 and events[0].secretary == "m1"


def test_branch_needs_three_full_members():
    state = given(registered(), arrived("m1"), arrived("m2"), arrived("m3", status=MemberStatus.probationary))
    with pytest.raises(domain.TooFewFullMembersError) as err:
        decide(form_branch(), Given(state))
    assert err.value.code == "BRANCH_TOO_FEW_FULL_MEMBERS" and "branch_min_full_members" in err.value.message


def test_a_branch_counts_only_the_members_arrived_by_its_day():
    later = DAY + dt.timedelta(days=10)
    state = given(registered(), *THREE_FULL[:2], arrived("m3").model_copy(update={"arrived_on": later}))
    with pytest.raises(domain.TooFewFullMembersError) as err:
        decide(form_branch(), Given(state))
    assert err.value.field == "formed_on" and f"{DAY} 时已进场的正式党员2名" in err.value.message
    [formed] = decide(form_branch().model_copy(update={"formed_on": later}), Given(state))
    assert formed.full_members == 3 and formed.members == 3  # type: ignore[attr-defined]


def test_a_branch_secretary_or_group_member_arrived_by_its_day():
    later = DAY + dt.timedelta(days=10)
    state = given(registered(), *THREE_FULL, arrived("m4").model_copy(update={"arrived_on": later}))
    with pytest.raises(domain.BeforeArrivalError) as err:
        decide(form_branch(secretary="m4"), Given(state))
    assert (err.value.code, err.value.field) == ("BEFORE_ARRIVAL", "formed_on")
    assert "不能早于其进场日期" in err.value.message
    with pytest.raises(domain.BeforeArrivalError):
        decide(form_group(["m1", "m2", "m4"]), Given(evolve(state, branch())))  # type: ignore[arg-type]


def test_branch_minimum_is_a_setting():
    state = given(registered(), arrived("m1"), arrived("m2"))
    assert decide(form_branch(), Given(state), Rules(branch_min_full_members=2))


def test_one_branch_per_site():
    with pytest.raises(domain.BranchAlreadyFormedError):
        decide(form_branch(), Given(given(registered(), *THREE_FULL, branch())))


def test_secretary_must_be_present():
    with pytest.raises(domain.MemberNotPresentError) as err:
        decide(form_branch(secretary="m9"), Given(given(registered(), *THREE_FULL)))
    assert err.value.field == "secretary"


def test_secretary_must_be_full_member():
    state = given(registered(), *THREE_FULL, arrived("p1", status=MemberStatus.probationary))
    with pytest.raises(domain.SecretaryNotFullMemberError):
        decide(form_branch(secretary="p1"), Given(state))


def test_branch_under_seven_full_members_has_no_committee():
    with pytest.raises(domain.CommitteeNotAllowedError):
        decide(form_branch(committee=("m1", "m2", "m3")), Given(given(registered(), *THREE_FULL)))


def test_committee_of_three_to_seven_with_seven_full_members():
    seven = [arrived(f"m{i}") for i in range(1, 8)]
    events = decide(form_branch(committee=("m1", "m2", "m3")), Given(given(registered(), *seven)))
    assert isinstance(events[0], BranchFormed) and events[0].committee == ["m1", "m2", "m3"]


def test_committee_size_is_checked():
    seven = [arrived(f"m{i}") for i in range(1, 8)]
    with pytest.raises(domain.CommitteeSizeError):
        decide(form_branch(committee=("m1", "m2")), Given(given(registered(), *seven)))


def test_large_branch_gets_a_warning_not_a_refusal():
    many = [arrived(f"m{i}") for i in range(1, 53)]
    state = given(registered(), *many)
    assert decide(form_branch(), Given(state))
    warnings = domain.advise(form_branch(), Given(state))
    assert [w.code for w in warnings] == ["BRANCH_TOO_LARGE"]


def test_small_branch_gets_no_warning():
    assert domain.advise(form_branch(), Given(given(registered(), *THREE_FULL))) == []


# ---- party groups -------------------------------------------------------------------------------


def test_party_group_is_formed_inside_a_branch():
    events = decide(form_group(["m1", "m2", "m3"]), Given(given(registered(), *THREE_FULL, branch())))
    assert events == [PartyGroupFormed(site_id="a", group_id="g1", name="一工段党小组", section="一工段", leader="m1",
                                       members=["m1", "m2", "m3"], formed_on=DAY)]


def test_party_group_needs_a_branch():
    with pytest.raises(domain.NoBranchError):
        decide(form_group(["m1", "m2", "m3"]), Given(given(registered(), *THREE_FULL)))


def test_party_group_is_not_formed_before_its_branch():
    formed_later = branch().model_copy(update={"formed_on": DAY + dt.timedelta(days=10)})
    with pytest.raises(domain.DateBeforeEarlierStepError) as refused:
        decide(form_group(["m1", "m2", "m3"]), Given(given(registered(), *THREE_FULL, formed_later)))
    assert refused.value.field == "formed_on"


def test_a_second_group_of_the_same_name_or_members_warns():
    first = PartyGroupFormed(site_id="a", group_id="g1", name="一工段党小组", section="一工段", leader="m1",
                             members=["m1", "m2", "m3"], formed_on=DAY)
    state = given(registered(), *THREE_FULL, arrived("m4"), arrived("m5"), branch(), first)
    again = form_group(["m3", "m4", "m5"], group_id="g2")
    assert decide(again, Given(state))  # recorded all the same
    warned = {w.code: w for w in domain.advise(again, Given(state))}
    assert set(warned) == {"GROUP_NAME_TAKEN", "MEMBER_IN_ANOTHER_GROUP"}
    assert "张三（一工段党小组）" in warned["MEMBER_IN_ANOTHER_GROUP"].message
    with pytest.raises(domain.PartyGroupExistsError) as same:  # the very group again, under a new id
        decide(form_group(["m3", "m2", "m1"], group_id="g9"), Given(state))
    assert same.value.field == "name" and "编号 g1" in str(same.value)
    closed = given(registered(), *THREE_FULL, arrived("m4"), arrived("m5"), branch(), first,
                   PartyGroupClosed(site_id="a", group_id="g1", closed_on=DAY))
    assert domain.advise(again, Given(closed)) == []


def test_party_group_needs_three_members():
    with pytest.raises(domain.PartyGroupTooSmallError):
        decide(form_group(["m1", "m2"]), Given(given(registered(), *THREE_FULL, branch())))


def test_party_group_needs_a_full_member():
    probationers = [arrived(f"p{i}", status=MemberStatus.probationary) for i in range(3)]
    state = given(registered(), *THREE_FULL, branch(), *probationers)
    with pytest.raises(domain.PartyGroupNeedsFullMemberError):
        decide(form_group(["p0", "p1", "p2"]), Given(state))


def test_party_group_members_must_be_present():
    with pytest.raises(domain.MemberNotPresentError) as err:
        decide(form_group(["m1", "m2", "x9"]), Given(given(registered(), *THREE_FULL, branch())))
    assert err.value.field == "members"


def test_party_group_leader_must_be_in_group():
    state = given(registered(), *THREE_FULL, arrived("m4"), branch())
    with pytest.raises(domain.LeaderNotInGroupError):
        decide(form_group(["m1", "m2", "m3"], leader="m4"), Given(state))


def test_party_group_id_is_unique_per_site():
    group = PartyGroupFormed(site_id="a", group_id="g1", name="n", section="s", leader="m1",
                             members=["m1", "m2", "m3"], formed_on=DAY)
    with pytest.raises(domain.PartyGroupExistsError):
        decide(form_group(["m1", "m2", "m3"]), Given(given(registered(), *THREE_FULL, branch(), group)))


def test_party_group_members_must_not_repeat():
    with pytest.raises(ValueError, match="repeat"):
        form_group(["m1", "m1", "m2"])


# ---- every error has its own code ---------------------------------------------------------------


def test_error_codes_are_unique():
    codes = [c.code for c in domain.DomainError.__subclasses__() if c.__module__ == domain.__name__]
    assert len(codes) == len(set(codes)) and all(c.isupper() for c in codes)


# ---- completion ---------------------------------------------------------------------------------


def complete(on: dt.date = dt.date(2023, 6, 30)) -> CompleteSite:
    return CompleteSite(command_id=cmd_id(), site_id="a", completed_on=on)


def test_completing_a_site_records_site_completed():
    expected = [SiteCompleted(site_id="a", completed_on=dt.date(2023, 6, 30))]
    assert decide(complete(), Given(given(registered()))) == expected


def test_completion_of_an_unknown_site_is_refused():
    with pytest.raises(domain.SiteNotFoundError):
        decide(complete(), Given(None))


def test_completion_before_the_start_is_refused():
    with pytest.raises(domain.CompletionBeforeStartError) as refused:
        decide(complete(DAY - dt.timedelta(days=1)), Given(given(registered())))
    assert refused.value.field == "completed_on"


def test_a_site_is_completed_once():
    done = given(registered(), SiteCompleted(site_id="a", completed_on=dt.date(2023, 6, 30)))
    with pytest.raises(domain.SiteCompletedError):
        decide(complete(), Given(done))


def test_a_completed_site_takes_no_arrivals():
    done = given(registered(), SiteCompleted(site_id="a", completed_on=dt.date(2023, 6, 30)))
    assert done is not None and done.completed_on == dt.date(2023, 6, 30)
    with pytest.raises(domain.SiteCompletedError):
        decide(arrival("m1"), Given(done))


def test_a_probationary_member_admitted_more_than_two_years_before_arriving_warns():
    """A 预备党员 admitted in 2015 arriving in 2025 was accepted without a word; probation lasts two years at most."""
    def probationary(admitted: dt.date) -> RecordArrival:
        a = arrival("m1", status=MemberStatus.probationary)
        return a.model_copy(update={"member": a.member.model_copy(update={"admitted_on": admitted})})

    [warning] = domain.advise(probationary(DAY.replace(year=DAY.year - 3)), Given(given(registered())))
    assert (warning.code, warning.field) == ("PROBATION_LONG_PAST", "member.status")
    assert domain.advise(probationary(DAY.replace(year=DAY.year - 2)), Given(given(registered()))) == []
    assert domain.advise(arrival("m1"), Given(given(registered()))) == []  # a full member: no probation

"""Membership development (发展党员) and the branch lifecycle as given/when/then on events, dates at the boundaries."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from contracts.base import Event
from contracts.membership import (
    HANDED_BACK,
    ActivistDesignated,
    AdmitProbationary,
    ApplicationSubmitted,
    BranchDissolved,
    BranchFormed,
    CompleteSite,
    ConfirmFullMembership,
    DesignateActivist,
    DesignateDevelopmentTarget,
    DevelopmentTargetDesignated,
    ExtendProbation,
    FormBranch,
    FullMembershipConfirmed,
    Gender,
    Job,
    MemberArrived,
    MemberDeparted,
    MemberFacts,
    MemberStatus,
    PartyGroupClosed,
    PartyGroupFormed,
    ProbationaryAdmitted,
    ProbationExtended,
    RecordArrival,
    Relation,
    SiteCompleted,
    SiteRegistered,
    SubmitApplication,
    UnitKind,
    Units,
)
from contracts.rules import DEFAULT_RULES, Rules, branch_size_warning, months_after
from services.membership import domain
from services.membership.domain import Given, Stage, advise, decide, evolve

START = dt.date(2018, 1, 1)
APPLIED = dt.date(2018, 3, 10)
ACTIVIST = dt.date(2018, 9, 1)
TARGET = dt.date(2019, 9, 1)  # one year as activist, on the anniversary
ADMITTED = dt.date(2020, 5, 20)
BRANCH = "工地兼合党支部"
APPROVER = "施工单位党委"
UNITS = Units(owner="业主", design="设计院", construction="施工单位", supervision="监理公司")


def cid() -> uuid.UUID:
    return uuid.uuid4()


def registered(site_id: str = "a") -> SiteRegistered:
    return SiteRegistered(site_id=site_id, name=f"工地{site_id}", township="shacheng", department="交通运输局",
                          cost_wan=Decimal(9000), planned_months=30, start_date=START, units=UNITS)


def facts(status: MemberStatus = MemberStatus.full, admitted_on: dt.date = dt.date(2001, 7, 1)) -> MemberFacts:
    return MemberFacts(name="张三", gender=Gender.male, admitted_on=admitted_on, status=status,
                       unit_kind=UnitKind.construction, unit_name="施工单位", job=Job.worker, section="一工段",
                       home_org="某村党支部", relation=Relation.mobile)


def arrived(member_id: str, status: MemberStatus = MemberStatus.full, site_id: str = "a",
            admitted_on: dt.date = dt.date(2001, 7, 1)) -> MemberArrived:
    return MemberArrived(site_id=site_id, member_id=member_id, member=facts(status, admitted_on), arrived_on=START)


def branch() -> BranchFormed:
    return BranchFormed(site_id="a", name=BRANCH, secretary="m1", instructor="指导员", liaison="联络员",
                        member_units=["施工单位"], committee=[], formed_on=START, full_members=3, members=3)


def given(*events: Event) -> domain.SiteState | None:
    state = None
    for e in events:
        state = evolve(state, e)
    return state


def when(command: object, *events: Event, previous: domain.SiteState | None = None,
         rules: Rules = DEFAULT_RULES) -> list[Event]:
    return decide(command, Given(given(registered(), *events), previous_site=previous), rules)


def refused(error: type[domain.DomainError], command: object, *events: Event, field: str | None = None,
            rule: str | None = None) -> domain.DomainError:
    with pytest.raises(error) as caught:
        when(command, *events)
    if field is not None:
        assert caught.value.field == field
    if rule is not None:
        assert f"rule {rule}" in str(caught.value)
    return caught.value


def apply(on: dt.date = APPLIED, born: dt.date = dt.date(1990, 4, 2), person: str = "p1") -> SubmitApplication:
    return SubmitApplication(command_id=cid(), site_id="a", person_id=person, name="李明", gender=Gender.male,
                             birth_date=born, applied_on=on, unit_kind=UnitKind.construction, unit_name="施工单位",
                             job=Job.worker, section="二工段")


def submitted(on: dt.date = APPLIED, person: str = "p1") -> ApplicationSubmitted:
    [event] = decide(apply(on, person=person), Given(given(registered())))
    return event  # type: ignore[return-value]


def activist(on: dt.date = ACTIVIST, by: str = APPROVER) -> DesignateActivist:
    return DesignateActivist(command_id=cid(), site_id="a", person_id="p1", designated_on=on, approved_by=by)


def target(on: dt.date = TARGET, by: str = APPROVER) -> DesignateDevelopmentTarget:
    return DesignateDevelopmentTarget(command_id=cid(), site_id="a", person_id="p1", designated_on=on, approved_by=by)


def admit(on: dt.date = ADMITTED, by: str = APPROVER, person: str = "p1") -> AdmitProbationary:
    return AdmitProbationary(command_id=cid(), site_id="a", person_id=person, admitted_on=on, approved_by=by)


def extend(on: dt.date, months: int = 6, person: str = "p1") -> ExtendProbation:
    return ExtendProbation(command_id=cid(), site_id="a", person_id=person, extended_on=on, months=months,
                           approved_by=APPROVER)


def confirm(on: dt.date, person: str = "p1", by: str = APPROVER) -> ConfirmFullMembership:
    return ConfirmFullMembership(command_id=cid(), site_id="a", person_id=person, confirmed_on=on, approved_by=by)


APPLICANT = (submitted(),)
ACTIVIST_STAGE = (*APPLICANT, ActivistDesignated(site_id="a", person_id="p1", designated_on=ACTIVIST,
                                                 approved_by=APPROVER))
TARGET_STAGE = (*ACTIVIST_STAGE, DevelopmentTargetDesignated(site_id="a", person_id="p1", designated_on=TARGET,
                                                             approved_by=APPROVER))


def admitted() -> tuple[Event, ...]:
    return (*TARGET_STAGE, *when(admit(), *TARGET_STAGE))


# ---- the path and its events ---------------------------------------------------------------------------------


def test_the_whole_path_from_application_to_full_member():
    assert APPLICANT[0] == ApplicationSubmitted(
        site_id="a", person_id="p1", name="李明", applied_on=APPLIED, birth_date=dt.date(1990, 4, 2),
        gender=Gender.male, unit_kind=UnitKind.construction, unit_name="施工单位", job=Job.worker, section="二工段")
    assert when(activist(), *APPLICANT) == [ACTIVIST_STAGE[-1]]
    assert when(target(), *ACTIVIST_STAGE) == [TARGET_STAGE[-1]]
    admission, arrival = when(admit(), *TARGET_STAGE)
    assert admission == ProbationaryAdmitted(site_id="a", person_id="p1", admitted_on=ADMITTED, approved_by=APPROVER,
                                             probation_ends=dt.date(2021, 5, 20))
    # The admission makes the person a member present: political birthday and arrival on the admission day.
    assert isinstance(arrival, MemberArrived) and arrival.member_id == "p1" and arrival.arrived_on == ADMITTED
    assert arrival.member.status is MemberStatus.probationary and arrival.member.admitted_on == ADMITTED
    assert arrival.member.home_org == APPROVER and arrival.member.section == "二工段"
    state = given(registered(), *admitted())
    assert state is not None and state.members["p1"].status is MemberStatus.probationary
    assert state.development["p1"].stage is Stage.probationary
    [full] = when(confirm(dt.date(2021, 5, 20)), *admitted())
    assert full == FullMembershipConfirmed(site_id="a", person_id="p1", confirmed_on=dt.date(2021, 5, 20),
                                           approved_by=APPROVER)
    after = given(registered(), *admitted(), full)
    assert after is not None and after.members["p1"].status is MemberStatus.full  # probation ended
    assert after.development["p1"].stage is Stage.full and after.full_members() == 1


# ---- age ---------------------------------------------------------------------------------------------------


def test_an_applicant_is_18_on_the_day_of_the_application():
    born = dt.date(2002, 5, 10)
    refused(domain.ApplicantTooYoungError, apply(dt.date(2020, 5, 9), born), field="birth_date",
            rule="applicant_min_age")
    assert len(when(apply(dt.date(2020, 5, 10), born))) == 1


def test_born_on_29_february_the_18th_birthday_is_28_february():
    born = dt.date(2000, 2, 29)
    refused(domain.ApplicantTooYoungError, apply(dt.date(2018, 2, 27), born))
    assert len(when(apply(dt.date(2018, 2, 28), born))) == 1


def test_the_age_is_a_named_setting():
    with pytest.raises(domain.ApplicantTooYoungError):
        when(apply(dt.date(2020, 5, 10), dt.date(2002, 5, 10)), rules=Rules(applicant_min_age=20))


def test_one_application_per_person_and_none_from_a_member():
    refused(domain.AlreadyOnRecordError, apply(), *APPLICANT, field="person_id")
    refused(domain.AlreadyOnRecordError, apply(person="m1"), arrived("m1"), field="person_id")


# ---- order and dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [activist(), target(), admit()])
def test_no_step_without_an_application(command: object):
    refused(domain.NotOnRecordError, command, field="person_id")


def test_every_step_out_of_order_is_refused_naming_the_stage():
    error = refused(domain.StepOutOfOrderError, target(), *APPLICANT, field="person_id")
    assert "入党申请人" in str(error) and "入党积极分子" in str(error)
    refused(domain.StepOutOfOrderError, admit(), *ACTIVIST_STAGE)
    refused(domain.StepOutOfOrderError, activist(), *ACTIVIST_STAGE)
    refused(domain.StepOutOfOrderError, admit(), *admitted())


def test_an_activist_is_designated_on_or_after_the_application():
    refused(domain.StepBeforePreviousError, activist(APPLIED - dt.timedelta(days=1)), *APPLICANT,
            field="designated_on")
    assert when(activist(APPLIED), *APPLICANT)[0].designated_on == APPLIED  # type: ignore[attr-defined]


def test_an_activist_is_cultivated_one_year_before_becoming_a_target():
    error = refused(domain.ActivistPeriodTooShortError, target(dt.date(2019, 8, 31)), *ACTIVIST_STAGE,
                    field="designated_on", rule="activist_min_months")
    assert "2019-09-01" in str(error)
    assert len(when(target(dt.date(2019, 9, 1)), *ACTIVIST_STAGE)) == 1


def test_the_activist_year_is_a_named_setting():
    with pytest.raises(domain.ActivistPeriodTooShortError):
        when(target(dt.date(2019, 9, 1)), *ACTIVIST_STAGE, rules=Rules(activist_min_months=13))


def test_admission_on_or_after_the_target_designation_and_the_site_start():
    refused(domain.StepBeforePreviousError, admit(TARGET - dt.timedelta(days=1)), *TARGET_STAGE,
            field="admitted_on")
    assert len(when(admit(TARGET), *TARGET_STAGE)) == 2
    late_site = SiteRegistered(**{**registered().model_dump(), "start_date": dt.date(2020, 3, 1)})
    events = (late_site, *TARGET_STAGE)
    with pytest.raises(domain.ArrivalBeforeStartError):
        decide(admit(dt.date(2020, 2, 29)), Given(given(*events)))
    assert len(decide(admit(dt.date(2020, 3, 1)), Given(given(*events)))) == 2


def test_an_application_may_not_take_the_id_of_a_member_present_elsewhere():
    # Before, it was accepted: the admission could never be made, and the history mixed two people under one id.
    elsewhere = given(SiteRegistered(**{**registered("b").model_dump()}), arrived("p1", site_id="b"))
    with pytest.raises(domain.AlreadyOnRecordError) as refused_:
        when(apply(), previous=elsewhere)
    assert refused_.value.field == "person_id" and "另一工地" in refused_.value.message
    assert elsewhere.name not in refused_.value.message  # the sender may not read that site
    assert when(apply(person="p2"), previous=None)


def test_a_person_present_as_a_member_elsewhere_is_not_admitted():
    elsewhere = given(SiteRegistered(**{**registered("b").model_dump()}), arrived("p1", site_id="b"))
    with pytest.raises(domain.MemberAlreadyPresentError):
        when(admit(), *TARGET_STAGE, previous=elsewhere)


# ---- approval ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [activist(by=BRANCH), target(by=BRANCH), admit(by=BRANCH)])
def test_the_sites_joint_branch_may_not_approve_a_development_step(command: object):
    path = {DesignateActivist: APPLICANT, DesignateDevelopmentTarget: ACTIVIST_STAGE,
            AdmitProbationary: TARGET_STAGE}[type(command)]
    members = (arrived("m1"), arrived("m2"), arrived("m3"), branch())
    refused(domain.JointBranchMayNotDevelopError, command, *members, *path, field="approved_by")
    refused(domain.JointBranchMayNotDevelopError, command, *path)  # a joint branch, whichever site's it is
    assert when(command.model_copy(update={"approved_by": APPROVER}), *members, *path)


def test_the_joint_branch_may_not_extend_or_confirm_either():
    members = (arrived("m1"), arrived("m2"), arrived("m3"), branch())
    refused(domain.JointBranchMayNotDevelopError, confirm(dt.date(2021, 6, 1), by=BRANCH), *members, *admitted())


@pytest.mark.parametrize("by", [f" {BRANCH[:4]} {BRANCH[4:]} ", "工地兼合党支部", "某项目兼合式党支部",
                                "某工地临时党支部"])
def test_no_joint_or_temporary_organisation_approves_however_it_is_written(by):
    # Before, only the branch's exact name was refused: a space, or the generic name, got through.
    members = (arrived("m1"), arrived("m2"), arrived("m3"), branch())
    refused(domain.JointBranchMayNotDevelopError, confirm(dt.date(2021, 6, 1), by=by), *members, *admitted(),
            field="approved_by")
    assert len(when(confirm(dt.date(2021, 6, 1), by="某公司联合党支部"), *members, *admitted())) == 1


def test_approved_by_is_required_on_the_steps_after_the_application():
    with pytest.raises(ValueError, match="approved_by"):
        DesignateActivist.model_validate({"command_id": str(cid()), "site_id": "a", "person_id": "p1",
                                          "designated_on": "2018-09-01"})


# ---- probation ---------------------------------------------------------------------------------------------


def test_probation_lasts_one_year():
    refused(domain.ProbationNotOverError, confirm(dt.date(2021, 5, 19)), *admitted(), field="confirmed_on",
            rule="probation_months")
    assert len(when(confirm(dt.date(2021, 5, 20)), *admitted())) == 1


def test_probation_is_extended_once_by_at_most_a_year():
    [extended] = when(extend(dt.date(2021, 5, 20), 12), *admitted())
    assert extended == ProbationExtended(site_id="a", person_id="p1", extended_on=dt.date(2021, 5, 20), months=12,
                                         approved_by=APPROVER, probation_ends=dt.date(2022, 5, 20))
    refused(domain.ProbationExtensionTooLongError, extend(dt.date(2021, 5, 20), 13), *admitted(), field="months",
            rule="probation_extension_max_months")
    refused(domain.ProbationAlreadyExtendedError, extend(dt.date(2021, 6, 1), 1), *admitted(), extended,
            rule="probation_extensions_max")
    refused(domain.ProbationNotOverError, confirm(dt.date(2022, 5, 19)), *admitted(), extended)
    assert len(when(confirm(dt.date(2022, 5, 20)), *admitted(), extended)) == 1


def test_an_extension_is_decided_when_the_probation_ends_not_years_later():
    # The probation ends 2021-05-20; the decision may come up to three months after (probation_decision_months).
    assert len(when(extend(dt.date(2021, 8, 20)), *admitted())) == 1
    refused(domain.ExtensionTooLateError, extend(dt.date(2021, 8, 21)), *admitted(), field="extended_on",
            rule="probation_decision_months")
    refused(domain.ExtensionTooLateError, extend(dt.date(2026, 11, 20)), *admitted(), field="extended_on")


def test_an_extension_is_dated_on_or_after_the_admission():
    refused(domain.StepBeforePreviousError, extend(ADMITTED - dt.timedelta(days=1)), *admitted(),
            field="extended_on")


def test_a_probationary_member_who_arrived_counts_from_the_admission_elsewhere():
    came = arrived("m9", MemberStatus.probationary, admitted_on=dt.date(2020, 2, 29))
    refused(domain.ProbationNotOverError, confirm(dt.date(2021, 2, 27), "m9"), came)
    [done] = when(confirm(dt.date(2021, 2, 28), "m9"), came)
    assert given(registered(), came, done).members["m9"].status is MemberStatus.full  # type: ignore[union-attr]


def test_only_a_probationary_member_present_is_extended_or_confirmed():
    refused(domain.MemberNotPresentError, confirm(dt.date(2021, 6, 1)), *TARGET_STAGE, field="person_id")
    refused(domain.NotProbationaryError, confirm(dt.date(2021, 6, 1), "m1"), arrived("m1"))
    confirmed = when(confirm(dt.date(2021, 5, 20)), *admitted())
    refused(domain.NotProbationaryError, extend(dt.date(2021, 6, 1)), *admitted(), *confirmed)


def test_months_after_counts_calendar_months():
    assert months_after(dt.date(2020, 2, 29), 12) == dt.date(2021, 2, 28)
    assert months_after(dt.date(2019, 1, 31), 1) == dt.date(2019, 2, 28)
    assert months_after(dt.date(2019, 12, 15), 1) == dt.date(2020, 1, 15)


# ---- lifecycle ---------------------------------------------------------------------------------------------


def group(group_id: str, members: list[str]) -> PartyGroupFormed:
    return PartyGroupFormed(site_id="a", group_id=group_id, name="一组", section="一工段", leader=members[0],
                            members=members, formed_on=START)


def test_completion_dissolves_the_branch_closes_groups_and_hands_members_back():
    on = dt.date(2022, 6, 30)
    members = (arrived("m1"), arrived("m2"), arrived("m3"), arrived("m4", MemberStatus.probationary))
    before = (*members, branch(), group("g1", ["m1", "m2", "m3"]), group("g2", ["m2", "m3", "m4"]))
    events = when(CompleteSite(command_id=cid(), site_id="a", completed_on=on), *before)
    assert events == [
        SiteCompleted(site_id="a", completed_on=on),
        PartyGroupClosed(site_id="a", group_id="g1", closed_on=on),
        PartyGroupClosed(site_id="a", group_id="g2", closed_on=on),
        BranchDissolved(site_id="a", name=BRANCH, dissolved_on=on),
        *(MemberDeparted(site_id="a", member_id=m, departed_on=on, reason=HANDED_BACK)
          for m in ("m1", "m2", "m3", "m4")),
    ]
    state = given(registered(), *before, *events)
    assert state is not None and state.members == {} and state.groups == {}
    assert state.branch is not None and state.branch.dissolved_on == on  # kept for history
    refused(domain.SiteCompletedError, apply(), *before, *events)
    refused(domain.SiteCompletedError, FormBranch(command_id=cid(), site_id="a", name="新支部", secretary="m1",
                                                  instructor="指", liaison="联", member_units=["施工单位"],
                                                  formed_on=on), *before, *events)


def test_completion_without_branch_or_members_is_the_completion_alone():
    on = dt.date(2022, 6, 30)
    assert when(CompleteSite(command_id=cid(), site_id="a", completed_on=on)) == [
        SiteCompleted(site_id="a", completed_on=on)]


def test_completion_is_not_dated_before_a_present_members_arrival():
    late = MemberArrived(site_id="a", member_id="m1", member=facts(), arrived_on=dt.date(2022, 7, 1))
    refused(domain.DepartureBeforeArrivalError, CompleteSite(command_id=cid(), site_id="a",
                                                             completed_on=dt.date(2022, 6, 30)), late,
            field="completed_on")


# ---- branch size warnings ----------------------------------------------------------------------------------


def test_branch_size_warnings_name_their_rule():
    assert branch_size_warning(50) is None
    assert "党总支" in (branch_size_warning(51) or "") and "branch_warn_members" in (branch_size_warning(51) or "")
    assert branch_size_warning(100) is not None and "党总支" in (branch_size_warning(100) or "")
    assert "党的基层委员会" in (branch_size_warning(101) or "") and "branch_general_members" in (
        branch_size_warning(101) or "")


def test_an_arrival_that_takes_a_branch_over_50_warns_once():
    many = [arrived(f"m{i}") for i in range(1, 51)]
    state = given(registered(), *many, branch())
    come = RecordArrival(command_id=cid(), site_id="a", member_id="m51", member=facts(), arrived_on=START)
    [warning] = advise(come, Given(state))
    assert warning.code == "BRANCH_TOO_LARGE" and "51" in warning.message
    bigger = given(registered(), *many, arrived("m51"), branch())
    assert advise(come.model_copy(update={"member_id": "m52"}), Given(bigger)) == []

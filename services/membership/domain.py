"""Membership domain: pure decide/evolve over a site's stream, and the errors the rules raise."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from contracts.base import Event
from contracts.city import City
from contracts.errors import DomainError
from contracts.membership import (
    HANDED_BACK,
    ActivistDesignated,
    AdmitProbationary,
    ApplicationSubmitted,
    BranchDissolved,
    BranchFormed,
    CompleteSite,
    ConfirmFullMembership,
    ContactEscalated,
    ContactLost,
    ContactRestored,
    DesignateActivist,
    DesignateDevelopmentTarget,
    DevelopmentTargetDesignated,
    ExtendProbation,
    FireTimer,
    FormBranch,
    FormPartyGroup,
    FullMembershipConfirmed,
    Gender,
    Job,
    MemberArrived,
    MemberDeparted,
    MemberFacts,
    MemberRecord,
    MemberStatus,
    PartyGroupClosed,
    PartyGroupFormed,
    ProbationaryAdmitted,
    ProbationExtended,
    RecordArrival,
    RecordContactLost,
    RecordContactRestored,
    RecordDeparture,
    RegisterSite,
    Relation,
    RelationTransferred,
    ReportWorkforce,
    SiteCompleted,
    SiteRegistered,
    SubmitApplication,
    Timer,
    TransferPrompted,
    TransferRelation,
    UnitKind,
    UnitsRecord,
    WorkforceReported,
)
from contracts.replies import ErrorInfo
from contracts.rules import DEFAULT_RULES, Rules, branch_size_warning, months_after

# ---- errors -----------------------------------------------------------------------------------


class SiteNotFoundError(DomainError):
    code = "SITE_NOT_FOUND"


class SiteAlreadyRegisteredError(DomainError):
    code = "SITE_ALREADY_REGISTERED"


class SiteAlreadyRecordedError(DomainError):
    """A site registered again with the facts it was registered with: nothing new (an exported project list
    imported again). Told apart from SITE_ALREADY_REGISTERED, whose facts differ."""

    code = "SITE_ALREADY_RECORDED"


class UnknownTownshipError(DomainError):
    code = "UNKNOWN_TOWNSHIP"


class UnknownDepartmentError(DomainError):
    code = "UNKNOWN_DEPARTMENT"


class MemberAlreadyPresentError(DomainError):
    code = "MEMBER_ALREADY_PRESENT"


class ArrivalAlreadyRecordedError(DomainError):
    """The arrival of a member present on the site, with the same facts and day as recorded: nothing new (an
    exported roster imported again). Told apart from MEMBER_ALREADY_PRESENT, whose facts differ."""

    code = "ARRIVAL_ALREADY_RECORDED"


class MemberIdMismatchError(DomainError):
    """An arrival under the id of a member present elsewhere, with another name or 入党日期: a mistyped id would
    otherwise move (and rename) somebody else's member."""

    code = "MEMBER_ID_MISMATCH"


class MemberNotPresentError(DomainError):
    code = "MEMBER_NOT_PRESENT"


class BranchAlreadyFormedError(DomainError):
    code = "BRANCH_ALREADY_FORMED"


class TooFewFullMembersError(DomainError):
    code = "BRANCH_TOO_FEW_FULL_MEMBERS"


class SecretaryNotFullMemberError(DomainError):
    code = "SECRETARY_NOT_FULL_MEMBER"


class CommitteeNotAllowedError(DomainError):
    code = "BRANCH_COMMITTEE_NOT_ALLOWED"


class CommitteeSizeError(DomainError):
    code = "BRANCH_COMMITTEE_SIZE"


class NoBranchError(DomainError):
    code = "NO_BRANCH"


class PartyGroupExistsError(DomainError):
    code = "PARTY_GROUP_EXISTS"


class PartyGroupTooSmallError(DomainError):
    code = "PARTY_GROUP_TOO_SMALL"


class PartyGroupNeedsFullMemberError(DomainError):
    code = "PARTY_GROUP_NEEDS_FULL_MEMBER"


class LeaderNotInGroupError(DomainError):
    code = "LEADER_NOT_IN_GROUP"


class SiteCompletedError(DomainError):
    code = "SITE_COMPLETED"


class CompletionBeforeStartError(DomainError):
    code = "COMPLETION_BEFORE_START"


class ArrivalBeforeStartError(DomainError):
    code = "ARRIVAL_BEFORE_START"


class DateBeforeEarlierStepError(DomainError):
    code = "DATE_BEFORE_EARLIER_STEP"


class ReportBeforeStartError(DomainError):
    code = "REPORT_BEFORE_START"


class OlderThanLatestReportError(DomainError):
    code = "OLDER_THAN_LATEST_REPORT"


class AdmittedAfterArrivalError(DomainError):
    code = "ADMITTED_AFTER_ARRIVAL"


class DepartureBeforeArrivalError(DomainError):
    code = "DEPARTURE_BEFORE_ARRIVAL"


class BeforeArrivalError(DomainError):
    """A branch or party group formed with members who had not arrived yet on its day."""

    code = "BEFORE_ARRIVAL"


# ---- state ------------------------------------------------------------------------------------


class Branch(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    secretary: str
    instructor: str
    liaison: str
    member_units: list[str]
    committee: list[str]
    formed_on: dt.date
    dissolved_on: dt.date | None = None  # the project completed (BranchDissolved); kept for history


class Stage(StrEnum):
    """发展党员: where a person stands on the path, in order."""

    applicant = "applicant"  # 入党申请人
    activist = "activist"  # 入党积极分子
    target = "target"  # 发展对象
    probationary = "probationary"  # 预备党员
    full = "full"  # 正式党员


class Candidate(BaseModel):
    """One person's development record on the site, folded from the development events."""

    model_config = ConfigDict(frozen=True)
    name: str
    stage: Stage
    applied_on: dt.date | None = None  # None: a probationary member who arrived, admitted elsewhere
    gender: Gender | None = None
    unit_kind: UnitKind | None = None
    unit_name: str = ""
    job: Job | None = None
    section: str = ""
    activist_on: dt.date | None = None
    target_on: dt.date | None = None
    admitted_on: dt.date | None = None
    probation_ends: dt.date | None = None
    extensions: int = 0
    confirmed_on: dt.date | None = None


class Group(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    section: str
    leader: str
    members: list[str]


class SiteState(BaseModel):
    """Everything the rules need to know about one site, folded from its stream."""

    model_config = ConfigDict(frozen=True)
    site_id: str
    name: str
    township: str
    department: str
    cost_wan: Decimal
    planned_months: int
    start_date: dt.date
    units: UnitsRecord
    workforce: int = 0
    # The day of the headcount in `workforce` (None before the first report, and in snapshots written before it was
    # kept: then the next report is not compared).
    workforce_as_of: dt.date | None = None
    members: dict[str, MemberRecord] = {}
    # The arrival date of each member present: a departure is not dated before it. Snapshots written before this
    # field existed get it from membership migration 6; a member missing here is not checked.
    arrived: dict[str, dt.date] = {}
    branch: Branch | None = None
    groups: dict[str, Group] = {}
    completed_on: dt.date | None = None
    # 发展党员 per person_id (snapshots written before start empty: no development event existed then).
    development: dict[str, Candidate] = {}
    # Mobility (the "Timers" of docs/architecture.md), per member present: the arrival date of the stay whose transfer
    # prompt was recorded, the last contact of a member out of contact, and the last contact an escalation was
    # recorded for. Snapshots written before these fields start empty, as no such event existed then.
    prompted: dict[str, dt.date] = {}
    contact_lost: dict[str, dt.date] = {}
    escalated: dict[str, dt.date] = {}

    def full_members(self, by: dt.date | None = None) -> int:
        """Full members present, or of those only the ones who had arrived by `by` (an arrival date unknown, from
        before snapshots kept them, counts)."""
        return sum(1 for member_id, m in self.members.items()
                   if m.status is MemberStatus.full and (by is None or self.arrived.get(member_id, by) <= by))

    def members_by(self, day: dt.date) -> int:
        return sum(1 for member_id in self.members if self.arrived.get(member_id, day) <= day)


@dataclass(frozen=True)
class Given:
    """What a decision sees: the target site, for an arrival the site the member is at now, and the city
    (its townships and departments) when a site is registered."""

    site: SiteState | None
    previous_site: SiteState | None = None
    city: City | None = None
    same_name: tuple[str, ...] = ()  # for a registration: the township's other sites of that name


# ---- evolve -----------------------------------------------------------------------------------


def evolve(state: SiteState | None, event: Event) -> SiteState | None:
    match event:
        case SiteRegistered():
            return SiteState(**event.model_dump(include=set(SiteState.model_fields)))
        case WorkforceReported():
            return _site(state).model_copy(update={"workforce": event.headcount, "workforce_as_of": event.as_of})
        case MemberArrived():
            site = _site(state)
            return site.model_copy(update={"members": {**site.members, event.member_id: event.member},
                                           "arrived": {**site.arrived, event.member_id: event.arrived_on}})
        case MemberDeparted():
            site = _site(state)
            members = {k: v for k, v in site.members.items() if k != event.member_id}
            arrived = {k: v for k, v in site.arrived.items() if k != event.member_id}
            return _forget_mobility(site, event.member_id).model_copy(update={"members": members, "arrived": arrived})
        case BranchFormed():
            branch = Branch(**event.model_dump(include=set(Branch.model_fields)))
            return _site(state).model_copy(update={"branch": branch})
        case PartyGroupFormed():
            site = _site(state)
            group = Group(**event.model_dump(include=set(Group.model_fields)))
            return site.model_copy(update={"groups": {**site.groups, event.group_id: group}})
        case SiteCompleted():
            return _site(state).model_copy(update={"completed_on": event.completed_on})
    if isinstance(event, DEVELOPMENT_EVENTS):
        return _evolve_development(_site(state), event)
    if isinstance(event, MOBILITY_EVENTS):
        return _evolve_mobility(_site(state), event)
    raise TypeError(f"membership cannot evolve {type(event).__name__}")


def _site(state: SiteState | None) -> SiteState:
    if state is None:
        raise ValueError("event for a site that was never registered")
    return state


# ---- decide -----------------------------------------------------------------------------------


def decide(command: object, given: Given, rules: Rules = DEFAULT_RULES) -> list[Event]:
    match command:
        case RegisterSite():
            return _register_site(command, given)
        case ReportWorkforce():
            return _report_workforce(command, given)
        case RecordArrival():
            return _record_arrival(command, given)
        case RecordDeparture():
            site = _existing(given, command.site_id)
            _present(site, command.member_id, "member_id")
            _not_before_arrival(site, command.member_id, command.departed_on, "departed_on")
            return [
                MemberDeparted(
                    site_id=site.site_id,
                    member_id=command.member_id,
                    departed_on=command.departed_on,
                    reason=command.reason,
                )
            ]
        case FormBranch():
            return _form_branch(command, given, rules)
        case FormPartyGroup():
            return _form_party_group(command, given, rules)
        case CompleteSite():
            return _complete_site(command, given)
    if isinstance(command, DEVELOPMENT_COMMANDS):
        return _decide_development(command, given, rules)
    if isinstance(command, MOBILITY_COMMANDS):
        return _decide_mobility(command, given, rules)
    raise TypeError(f"membership cannot decide {type(command).__name__}")


def advise(command: object, given: Given, rules: Rules = DEFAULT_RULES) -> list[ErrorInfo]:
    """Warnings that do not refuse the command but that the branch should act on."""
    site = given.site
    if isinstance(command, RegisterSite) and given.same_name:
        return [ErrorInfo(code="SITE_NAME_TAKEN", field="name", message=(
            f"本乡镇已有同名项目「{command.name}」（工地编号 {'、'.join(given.same_name)}）："
            "若是同一项目，请勿重复登记；若是另一项目，请在名称中加以区分，否则名单和导入无法分辨"
            " (another site of the township has this name)"))]
    out = []
    if isinstance(command, RecordArrival) and (held := _posts_left_behind(given.previous_site, command.member_id)):
        # The other site is not named (the sender may not read it); its people see the post flagged on its page.
        out.append(ErrorInfo(code="MOVES_A_POST_HOLDER", field="member_id", message=(
            f"{command.member.name} 是另一工地的{'、'.join(held)}：调入本工地后，那里的职务空出，需重新选举或指定"
            " (the member holds a post at the site they leave)")))
    if isinstance(command, RecordArrival) and (warning := _long_probation(command)):
        out.append(warning)
    if isinstance(command, FormPartyGroup) and site is not None:
        out += _group_overlaps(site, command)
    if isinstance(command, FormBranch) and site is not None:
        warning = branch_size_warning(len(site.members), rules)
        return [ErrorInfo(code="BRANCH_TOO_LARGE", message=warning)] if warning else []
    # A member more in a branch (an arrival, an admission) warns when the branch crosses a threshold, not at every
    # later arrival: the site and city views list the branches over a threshold all the time.
    if isinstance(command, RecordArrival | AdmitProbationary) and site is not None and site.branch is not None:
        size = len(site.members) + 1
        warning = branch_size_warning(size, rules)
        if warning and size - 1 in (rules.branch_warn_members, rules.branch_general_members):
            out.append(ErrorInfo(code="BRANCH_TOO_LARGE", message=warning))
    return out


PROBATION_YEARS = 2  # a year's probation, extended at most once by up to a year (党章第七条)


def _long_probation(command: RecordArrival) -> ErrorInfo | None:
    """A 预备党员 admitted more than two years before arriving should have been confirmed or ended by then: most
    often the status or the day is mistyped (a member admitted in 2015 still probationary in 2025)."""
    m = command.member
    if m.status is not MemberStatus.probationary:
        return None
    try:
        latest = m.admitted_on.replace(year=m.admitted_on.year + PROBATION_YEARS)
    except ValueError:  # 29 February
        latest = m.admitted_on.replace(year=m.admitted_on.year + PROBATION_YEARS, day=28)
    if command.arrived_on <= latest:
        return None
    return ErrorInfo(code="PROBATION_LONG_PAST", field="member.status", message=(
        f"{m.name} 于 {m.admitted_on} 入党，到 {command.arrived_on} 已超过两年仍为预备党员：预备期一般一年、"
        "最多延长一年，请核对“正式/预备”和入党日期 (still probationary more than two years after admission)"))


def _group_overlaps(site: SiteState, command: FormPartyGroup) -> list[ErrorInfo]:
    """A group named as one already formed, or members already in another group: most often the same group sent
    twice under a new id (a member belongs to one group; a regrouping closes the old group, which then counts no
    more)."""
    out = []
    if same := [g.name for g in site.groups.values() if g.name == command.name]:
        out.append(ErrorInfo(code="GROUP_NAME_TAKEN", field="name", message=(
            f"本支部已有党小组「{same[0]}」：若是同一个党小组，请勿重复成立 (a group of this name exists)")))
    taken = {m: g.name for g in site.groups.values() for m in g.members}
    if elsewhere := [m for m in command.members if m in taken]:
        names = "、".join(f"{site.members[m].name if m in site.members else m}（{taken[m]}）" for m in elsewhere[:5])
        out.append(ErrorInfo(code="MEMBER_IN_ANOTHER_GROUP", field="members", message=(
            f"{names} 已在其他党小组：每名党员编入一个党小组 (members already in another group)")))
    return out


def _posts_left_behind(site: SiteState | None, member_id: str) -> list[str]:
    """The posts `member_id` holds at `site` (the site an arrival takes them from): its branch's secretary, a
    party group's leader."""
    if site is None or member_id not in site.members:
        return []
    held = []
    if site.branch is not None and site.branch.dissolved_on is None and site.branch.secretary == member_id:
        held.append("党支部书记")
    held += ["党小组组长" for g in site.groups.values() if g.leader == member_id][:1]
    return held


def _existing(given: Given, site_id: str) -> SiteState:
    if given.site is None:
        raise SiteNotFoundError(f"工地 {site_id} 未登记 (site not registered)", "site_id")
    return given.site


def _site_named(site: SiteState) -> str:
    """A site as a refusal names it to the people recording: by name, with its id."""
    return f"{site.name}({site.site_id})"


def _member(site: SiteState, member_id: str) -> str:
    record = site.members.get(member_id)
    return f"{record.name}({member_id})" if record is not None else f"党员 {member_id}"


def _present(site: SiteState, member_id: str, field: str) -> MemberRecord:
    if member_id not in site.members:
        raise MemberNotPresentError(f"党员 {member_id} 不在工地 {_site_named(site)} (member not present)", field)
    return site.members[member_id]


def _not_before_arrival(site: SiteState, member_id: str, departed_on: dt.date, field: str,
                        what: str = "离场日期") -> None:
    arrived_on = site.arrived.get(member_id)
    if arrived_on is not None and departed_on < arrived_on:
        raise DepartureBeforeArrivalError(
            f"{_member(site, member_id)} 于 {arrived_on} 进场工地 {_site_named(site)}，{what} {departed_on}"
            " 不能早于进场日期 (departure before arrival)", field)


def _arrived_by(site: SiteState, member_id: str, day: dt.date, field: str, what: str) -> None:
    arrived_on = site.arrived.get(member_id)
    if arrived_on is not None and day < arrived_on:
        raise BeforeArrivalError(
            f"{_member(site, member_id)} 于 {arrived_on} 进场工地 {_site_named(site)}，{what} {day} 不能早于其进场日期"
            " (dated before the member arrived)", field)


# What a refusal calls each recorded fact, in the words of the roster and the project list.
MEMBER_FACTS = {"name": "姓名", "gender": "性别", "admitted_on": "入党日期", "status": "党员状态",
                "unit_kind": "单位类别", "unit_name": "单位名称", "job": "岗位", "section": "工段/班组",
                "home_org": "原党组织", "relation": "组织关系", "arrived_on": "进场日期"}
SITE_FACTS = {"site_id": "工地编号", "name": "项目名称", "township": "所属乡镇", "department": "主管部门",
              "cost_wan": "总投资", "planned_months": "计划工期", "start_date": "开工日期", "units": "参建单位"}


def _differing(names: dict[str, str], recorded: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """The names of the facts `given` states otherwise than `recorded` (both as model_dump gives them)."""
    return [names.get(k, k) for k in given if recorded.get(k) != given[k]]


def _register_site(command: RegisterSite, given: Given) -> list[Event]:
    if given.city is not None and command.department in given.city.departments:
        # Its code, as /api/me and the department views name it: a site records the department by its name.
        command = command.model_copy(update={"department": given.city.departments[command.department]})
    if given.site is not None:
        facts = SiteRegistered(**command.model_dump(include=set(SiteRegistered.model_fields))).model_dump()
        differing = _differing(SITE_FACTS, given.site.model_dump(include=set(facts)), facts)
        if not differing:
            raise SiteAlreadyRecordedError(
                f"工地 {_site_named(given.site)} 已按相同内容登记，无需再登记 (already recorded)", "site_id")
        raise SiteAlreadyRegisteredError(
            f"工地 {_site_named(given.site)} 已登记，此次填写的{'、'.join(differing)}与登记的不同"
            " (site already registered)", "site_id")
    if given.city is None:
        raise TypeError("registering a site needs the city's configuration in Given")
    if command.township not in given.city.townships:
        raise UnknownTownshipError(
            f"{given.city.name}没有乡镇代码 {command.township}；可用: {'、'.join(sorted(given.city.townships))}"
            " (unknown township)", "township")
    if command.department not in given.city.departments.values():
        raise UnknownDepartmentError(
            f"{command.department} 不是{given.city.name}的项目主管部门；"
            f"可用: {'、'.join(given.city.departments.values())}"
            " (unknown department)", "department")
    fields = command.model_dump(include=set(SiteRegistered.model_fields))
    return [SiteRegistered(**fields)]


def _open(given: Given, site_id: str) -> SiteState:
    site = _existing(given, site_id)
    if site.completed_on is not None:
        raise SiteCompletedError(f"工地 {site_id} 已于 {site.completed_on} 竣工 (site completed)", "site_id")
    return site


def _complete_site(command: CompleteSite, given: Given) -> list[Event]:
    site = _open(given, command.site_id)
    if command.completed_on < site.start_date:
        raise CompletionBeforeStartError(
            f"竣工日期 {command.completed_on} 早于开工日期 {site.start_date} (completion before start)", "completed_on"
        )
    on = command.completed_on
    # 工程竣工: the branch is dissolved, its groups closed and every member present handed back to the home
    # organisation, all in this one command (a member who arrived after `on` makes the date wrong: refused).
    events: list[Event] = [SiteCompleted(site_id=site.site_id, completed_on=on)]
    events += [PartyGroupClosed(site_id=site.site_id, group_id=g, closed_on=on) for g in sorted(site.groups)]
    if site.branch is not None and site.branch.dissolved_on is None:
        events.append(BranchDissolved(site_id=site.site_id, name=site.branch.name, dissolved_on=on))
    for member_id in sorted(site.members):
        _not_before_arrival(site, member_id, on, "completed_on", "竣工日期")
        events.append(MemberDeparted(site_id=site.site_id, member_id=member_id, departed_on=on, reason=HANDED_BACK))
    return events


def _report_workforce(command: ReportWorkforce, given: Given) -> list[Event]:
    """The headcount shown is the last one reported, so a report is dated within the site's life and not before the
    one shown (before, a report dated 2010 replaced the current figure, also in every view as of a later day)."""
    site = _existing(given, command.site_id)
    if command.as_of < site.start_date:
        raise ReportBeforeStartError(
            f"上报日期 {command.as_of} 早于开工日期 {site.start_date} (report before the site started)", "as_of")
    if site.completed_on is not None and command.as_of > site.completed_on:
        raise SiteCompletedError(
            f"工地 {site.site_id} 已于 {site.completed_on} 竣工，{command.as_of} 不再上报从业人数 (site completed)",
            "as_of")
    if site.workforce_as_of is not None and command.as_of < site.workforce_as_of:
        raise OlderThanLatestReportError(
            f"已上报 {site.workforce_as_of} 的从业人数 {site.workforce} 人；更早日期 {command.as_of} 的上报会替换"
            f"较新的数字，未记录 (older than the latest report)", "as_of")
    return [WorkforceReported(site_id=command.site_id, headcount=command.headcount, as_of=command.as_of)]


def _record_arrival(command: RecordArrival, given: Given) -> list[Event]:
    site = _open(given, command.site_id)
    if command.arrived_on < site.start_date:
        raise ArrivalBeforeStartError(
            f"进场日期 {command.arrived_on} 早于开工日期 {site.start_date} (arrival before the site started)",
            "arrived_on")
    if command.member.admitted_on > command.arrived_on:
        raise AdmittedAfterArrivalError(
            f"入党日期 {command.member.admitted_on} 晚于进场日期 {command.arrived_on}：进场登记的是已入党的党员"
            " (admitted after arriving)", "member.admitted_on")
    if command.member_id in site.members:
        recorded = site.members[command.member_id].model_dump() | {"arrived_on": site.arrived.get(command.member_id)}
        stated = command.member.model_dump() | {"arrived_on": command.arrived_on}
        differing = _differing(MEMBER_FACTS, recorded, stated)
        if not differing:
            raise ArrivalAlreadyRecordedError(
                f"{_member(site, command.member_id)} 已在工地 {_site_named(site)} 登记，内容相同，无需再登记"
                " (arrival already recorded)", "member_id")
        raise MemberAlreadyPresentError(
            f"{_member(site, command.member_id)} 已在工地 {_site_named(site)}，此次填写的{'、'.join(differing)}"
            "与在册的不同；如需更正请先办理离场 (member already present)", "member_id")
    events: list[Event] = []
    previous = given.previous_site
    if previous is not None and command.member_id in previous.members:
        there, here = previous.members[command.member_id], command.member
        if (there.name, there.admitted_on) != (here.name, here.admitted_on):
            # Nothing of the member there is said (name, 入党日期, site): the sender may not read that site, and a
            # refusal naming them let any writer walk the ids and read the city's roster.
            raise MemberIdMismatchError(
                f"党员编号 {command.member_id} 已属于另一工地的另一名在场党员，与此次填写的姓名或入党日期不符："
                "请核对党员编号 (the id names another member)", "member_id")
        # Arriving here ends the stay there on the same day: that departure may not precede the arrival there. Said
        # without that site or its date: the sender may not read it.
        arrived_there = previous.arrived.get(command.member_id)
        if arrived_there is not None and command.arrived_on < arrived_there:
            raise DepartureBeforeArrivalError(
                f"进场日期 {command.arrived_on} 早于该党员在其现所在工地的进场日期：调入不能早于上一次进场"
                " (arrival before the arrival at the site the member is on)", "arrived_on")
        events.append(
            MemberDeparted(
                site_id=previous.site_id,
                member_id=command.member_id,
                departed_on=command.arrived_on,
                reason="调往其他工地",
                moved_to_site=site.site_id,
            )
        )
    events.append(
        MemberArrived(
            site_id=site.site_id,
            member_id=command.member_id,
            member=command.member,
            arrived_on=command.arrived_on,
        )
    )
    return events


def _form_branch(command: FormBranch, given: Given, rules: Rules) -> list[Event]:
    site = _open(given, command.site_id)
    if site.branch is not None:
        raise BranchAlreadyFormedError(f"工地 {site.site_id} 已成立党支部 (one branch per site)", "site_id")
    full = site.full_members(by=command.formed_on)
    if full < rules.branch_min_full_members:
        arrived = f"{command.formed_on} 时已进场的" if full < site.full_members() else "在场"
        raise TooFewFullMembersError(
            f"{arrived}正式党员{full}名，成立党支部至少需要{rules.branch_min_full_members}名"
            f" (rule branch_min_full_members)",
            "formed_on" if full < site.full_members() else "site_id",
        )
    secretary = _present(site, command.secretary, "secretary")
    _arrived_by(site, command.secretary, command.formed_on, "formed_on", "支部成立日期")
    if secretary.status is not MemberStatus.full:
        raise SecretaryNotFullMemberError("支部书记须为正式党员 (secretary must be a full member)", "secretary")
    if command.committee:
        if full < rules.branch_committee_threshold:
            raise CommitteeNotAllowedError(
                f"正式党员不足{rules.branch_committee_threshold}名的支部只设书记，不设支委会"
                f" (rule branch_committee_threshold)",
                "committee",
            )
        if not rules.branch_committee_min <= len(command.committee) <= rules.branch_committee_max:
            raise CommitteeSizeError(
                f"支委会应为{rules.branch_committee_min}至{rules.branch_committee_max}人"
                f" (rule branch_committee_min/max)",
                "committee",
            )
        for member_id in command.committee:
            _present(site, member_id, "committee")
            _arrived_by(site, member_id, command.formed_on, "formed_on", "支部成立日期")
    fields = command.model_dump(include=set(BranchFormed.model_fields))
    return [BranchFormed(**fields, full_members=full, members=site.members_by(command.formed_on))]


def _form_party_group(command: FormPartyGroup, given: Given, rules: Rules) -> list[Event]:
    site = _open(given, command.site_id)
    if site.branch is None:
        raise NoBranchError("党小组须设在已成立的党支部内 (form the branch first)", "site_id")
    if command.group_id in site.groups:
        raise PartyGroupExistsError(f"党小组 {command.group_id} 已存在", "group_id")
    for group_id, g in site.groups.items():
        # The same group under a new id: a form sent again (each sending makes its own id).
        if (g.name, g.section, sorted(g.members)) == (command.name, command.section, sorted(command.members)):
            raise PartyGroupExistsError(f"已成立内容相同的党小组「{g.name}」（编号 {group_id}），无需再成立"
                                        " (the same group exists)", "name")
    if command.formed_on < site.branch.formed_on:
        raise DateBeforeEarlierStepError(
            f"党小组成立日期 {command.formed_on} 早于党支部成立日期 {site.branch.formed_on} (group before its branch)",
            "formed_on")
    if len(command.members) < rules.party_group_min_members:
        raise PartyGroupTooSmallError(
            f"党小组至少需要{rules.party_group_min_members}名党员 (rule party_group_min_members)", "members"
        )
    facts = [_present(site, member_id, "members") for member_id in command.members]
    for member_id in command.members:
        _arrived_by(site, member_id, command.formed_on, "formed_on", "党小组成立日期")
    if sum(1 for f in facts if f.status is MemberStatus.full) < rules.party_group_min_full:
        raise PartyGroupNeedsFullMemberError(
            f"党小组至少需要{rules.party_group_min_full}名正式党员 (rule party_group_min_full)", "members"
        )
    if command.leader not in command.members:
        raise LeaderNotInGroupError("党小组组长须为本组党员 (leader must be a member of the group)", "leader")
    return [PartyGroupFormed(**command.model_dump(include=set(PartyGroupFormed.model_fields)))]


# ---- mobility: relation transfers, lost contact and the timers (docs/architecture.md, "Timers") -----------------


class RelationAlreadyTransferredError(DomainError):
    code = "RELATION_ALREADY_TRANSFERRED"


class ContactAlreadyLostError(DomainError):
    code = "CONTACT_ALREADY_LOST"


class ContactNotLostError(DomainError):
    code = "CONTACT_NOT_LOST"


class DateOutOfOrderError(DomainError):
    code = "DATE_OUT_OF_ORDER"


MOBILITY_COMMANDS = (TransferRelation, RecordContactLost, RecordContactRestored, FireTimer)
MOBILITY_EVENTS = (RelationTransferred, ContactLost, ContactRestored, TransferPrompted, ContactEscalated)


# Six months on from a day: the same day, or the month's last when it has none (31 August + 6 → 28/29 February);
# the one count of calendar months the membership rules share.
add_months = months_after


@dataclass(frozen=True)
class Due:
    """One timer of one member present that is due and not yet recorded; `since` names the stay (arrival) or the
    episode (last contact), so that it fires once for each."""

    member_id: str
    timer: Timer
    since: dt.date
    due_on: dt.date


def due_timers(site: SiteState, today: dt.date, rules: Rules = DEFAULT_RULES) -> list[Due]:
    """The timers of `site` due on `today` and not recorded: what the runner fires and what FireTimer records, from
    the same state, so a second firing finds nothing due."""
    due: list[Due] = []
    for member_id, facts in sorted(site.members.items()):
        arrived_on = site.arrived.get(member_id)
        if facts.relation is Relation.mobile and arrived_on is not None and site.prompted.get(member_id) != arrived_on:
            on = add_months(arrived_on, rules.transfer_prompt_months)
            if on <= today:
                due.append(Due(member_id, Timer.transfer_prompt, arrived_on, on))
        last = site.contact_lost.get(member_id)
        if last is not None and site.escalated.get(member_id) != last:
            on = add_months(last, rules.contact_escalation_months)
            if on <= today:
                due.append(Due(member_id, Timer.contact_escalation, last, on))
    return due


def _forget_mobility(site: SiteState, member_id: str) -> SiteState:
    """A member who leaves takes the stay's prompt and lost contact along: a later stay starts afresh."""
    return site.model_copy(update={k: {m: d for m, d in getattr(site, k).items() if m != member_id}
                                   for k in ("prompted", "contact_lost", "escalated")})


def _evolve_mobility(site: SiteState, event: Event) -> SiteState:
    match event:
        case RelationTransferred():
            facts = site.members[event.member_id].model_copy(update={"relation": Relation.transferred})
            prompted = {m: d for m, d in site.prompted.items() if m != event.member_id}
            return site.model_copy(update={"members": {**site.members, event.member_id: facts}, "prompted": prompted})
        case ContactLost():
            return site.model_copy(update={"contact_lost": {**site.contact_lost,
                                                            event.member_id: event.last_contact_on}})
        case ContactRestored():
            return site.model_copy(update={k: {m: d for m, d in getattr(site, k).items() if m != event.member_id}
                                           for k in ("contact_lost", "escalated")})
        case TransferPrompted():
            return site.model_copy(update={"prompted": {**site.prompted, event.member_id: event.arrived_on}})
        case ContactEscalated():
            return site.model_copy(update={"escalated": {**site.escalated, event.member_id: event.last_contact_on}})
    raise TypeError(f"membership cannot evolve {type(event).__name__}")


def _decide_mobility(command: object, given: Given, rules: Rules) -> list[Event]:
    match command:
        case FireTimer():
            return _fire_timer(command, given, rules)
        case TransferRelation():
            site = _existing(given, command.site_id)
            facts = _present(site, command.member_id, "member_id")
            if facts.relation is not Relation.mobile:
                raise RelationAlreadyTransferredError(
                    f"党员 {command.member_id} 的组织关系已转入 (relation already transferred)", "member_id")
            _on_or_after(site.arrived.get(command.member_id), command.transferred_on, "transferred_on", "进场日期")
            return [RelationTransferred(site_id=site.site_id, member_id=command.member_id,
                                        transferred_on=command.transferred_on)]
        case RecordContactLost():
            site = _existing(given, command.site_id)
            _present(site, command.member_id, "member_id")
            if command.member_id in site.contact_lost:
                raise ContactAlreadyLostError(
                    f"党员 {command.member_id} 已登记失联，最后联系 {site.contact_lost[command.member_id]}"
                    " (contact already lost)", "member_id")
            _on_or_after(site.arrived.get(command.member_id), command.last_contact_on, "last_contact_on", "进场日期")
            return [ContactLost(site_id=site.site_id, member_id=command.member_id,
                                last_contact_on=command.last_contact_on)]
        case RecordContactRestored():
            site = _existing(given, command.site_id)
            _present(site, command.member_id, "member_id")
            last = site.contact_lost.get(command.member_id)
            if last is None:
                raise ContactNotLostError(f"党员 {command.member_id} 未登记失联 (contact not lost)", "member_id")
            _on_or_after(last, command.restored_on, "restored_on", "最后联系日期")
            return [ContactRestored(site_id=site.site_id, member_id=command.member_id,
                                    restored_on=command.restored_on)]
    raise TypeError(f"membership cannot decide {type(command).__name__}")


def _on_or_after(earlier: dt.date | None, day: dt.date, field: str, what: str) -> None:
    if earlier is not None and day < earlier:
        raise DateOutOfOrderError(f"{field} {day} 不能早于{what} {earlier} (date out of order)", field)


def _fire_timer(command: FireTimer, given: Given, rules: Rules) -> list[Event]:
    """Idempotent by the state: a timer already recorded for the stay or episode is not due, and neither is one of
    a member who left, was transferred or came back into contact; then nothing is recorded."""
    if given.site is None:
        return []
    for due in due_timers(given.site, command.today, rules):
        if due.member_id != command.member_id or due.timer is not command.timer:
            continue
        if due.timer is Timer.transfer_prompt:
            return [TransferPrompted(site_id=given.site.site_id, member_id=due.member_id, arrived_on=due.since,
                                     due_on=due.due_on, prompted_on=command.today)]
        return [ContactEscalated(site_id=given.site.site_id, member_id=due.member_id, last_contact_on=due.since,
                                 due_on=due.due_on, escalated_on=command.today)]
    return []


# ---- membership development (发展党员) and the branch lifecycle (docs/architecture.md) -------------------------


class ApplicantTooYoungError(DomainError):
    code = "APPLICANT_TOO_YOUNG"


class AlreadyOnRecordError(DomainError):
    code = "DEVELOPMENT_ALREADY_ON_RECORD"


class NotOnRecordError(DomainError):
    code = "DEVELOPMENT_NOT_ON_RECORD"


class StepOutOfOrderError(DomainError):
    code = "DEVELOPMENT_STEP_OUT_OF_ORDER"


class StepBeforePreviousError(DomainError):
    code = "DEVELOPMENT_STEP_BEFORE_PREVIOUS"


class ActivistPeriodTooShortError(DomainError):
    code = "ACTIVIST_PERIOD_TOO_SHORT"


class JointBranchMayNotDevelopError(DomainError):
    code = "JOINT_BRANCH_MAY_NOT_DEVELOP"


class NotProbationaryError(DomainError):
    code = "NOT_PROBATIONARY"


class ProbationNotOverError(DomainError):
    code = "PROBATION_NOT_OVER"


class ProbationAlreadyExtendedError(DomainError):
    code = "PROBATION_ALREADY_EXTENDED"


class ExtensionTooLateError(DomainError):
    code = "EXTENSION_TOO_LATE"


class ProbationExtensionTooLongError(DomainError):
    code = "PROBATION_EXTENSION_TOO_LONG"


DEVELOPMENT_COMMANDS = (SubmitApplication, DesignateActivist, DesignateDevelopmentTarget, AdmitProbationary,
                        ExtendProbation, ConfirmFullMembership)
DEVELOPMENT_EVENTS = (ApplicationSubmitted, ActivistDesignated, DevelopmentTargetDesignated, ProbationaryAdmitted,
                      ProbationExtended, FullMembershipConfirmed, BranchDissolved, PartyGroupClosed)
STAGE_NAMES = {Stage.applicant: "入党申请人", Stage.activist: "入党积极分子", Stage.target: "发展对象",
               Stage.probationary: "预备党员", Stage.full: "正式党员"}


def _evolve_development(site: SiteState, event: Event) -> SiteState:
    dev = site.development
    match event:
        case ApplicationSubmitted():
            record = Candidate(stage=Stage.applicant, **event.model_dump(include=set(Candidate.model_fields)))
            return site.model_copy(update={"development": {**dev, event.person_id: record}})
        case ActivistDesignated():
            return _step(site, event.person_id, stage=Stage.activist, activist_on=event.designated_on)
        case DevelopmentTargetDesignated():
            return _step(site, event.person_id, stage=Stage.target, target_on=event.designated_on)
        case ProbationaryAdmitted():
            return _step(site, event.person_id, stage=Stage.probationary, admitted_on=event.admitted_on,
                         probation_ends=event.probation_ends)
        case ProbationExtended():
            record = _record_of(site, event.person_id)
            return _step(site, event.person_id, probation_ends=event.probation_ends, extensions=record.extensions + 1)
        case FullMembershipConfirmed():
            site = _step(site, event.person_id, stage=Stage.full, confirmed_on=event.confirmed_on)
            facts = site.members.get(event.person_id)
            if facts is None:
                return site
            full = facts.model_copy(update={"status": MemberStatus.full})
            return site.model_copy(update={"members": {**site.members, event.person_id: full}})
        case BranchDissolved():
            branch = _site_branch(site).model_copy(update={"dissolved_on": event.dissolved_on})
            return site.model_copy(update={"branch": branch})
        case PartyGroupClosed():
            return site.model_copy(update={"groups": {k: g for k, g in site.groups.items() if k != event.group_id}})
    raise TypeError(f"membership cannot evolve {type(event).__name__}")


def _site_branch(site: SiteState) -> Branch:
    if site.branch is None:
        raise ValueError("branch event for a site without a branch")
    return site.branch


def _record_of(site: SiteState, person_id: str) -> Candidate:
    """The person's development record; a probationary member who arrived from elsewhere gets one from the facts."""
    if person_id in site.development:
        return site.development[person_id]
    facts = site.members[person_id]
    return Candidate(stage=Stage.probationary, name=facts.name, admitted_on=facts.admitted_on)


def _step(site: SiteState, person_id: str, **update: object) -> SiteState:
    record = _record_of(site, person_id).model_copy(update=update)
    return site.model_copy(update={"development": {**site.development, person_id: record}})


def _decide_development(command: object, given: Given, rules: Rules) -> list[Event]:
    site = _open(given, command.site_id)  # type: ignore[attr-defined]
    match command:
        case SubmitApplication():
            return _submit_application(command, given, site, rules)
        case DesignateActivist():
            record = _at_stage(site, command.person_id, Stage.applicant)
            _approver(site, command.approved_by)
            _not_before(record.applied_on, command.designated_on, "designated_on", "递交入党申请")
            return [ActivistDesignated(**command.model_dump(include=set(ActivistDesignated.model_fields)))]
        case DesignateDevelopmentTarget():
            record = _at_stage(site, command.person_id, Stage.activist)
            _approver(site, command.approved_by)
            assert record.activist_on is not None  # set with the stage
            ready = months_after(record.activist_on, rules.activist_min_months)
            if command.designated_on < ready:
                raise ActivistPeriodTooShortError(
                    f"{record.name} 于 {record.activist_on} 确定为入党积极分子，培养满{rules.activist_min_months}个月"
                    f"（{ready}）方可确定为发展对象，{command.designated_on} 过早 (rule activist_min_months)",
                    "designated_on")
            return [DevelopmentTargetDesignated(
                **command.model_dump(include=set(DevelopmentTargetDesignated.model_fields)))]
        case AdmitProbationary():
            return _admit(command, given, site, rules)
        case ExtendProbation():
            record, ends = _probation(site, command.person_id, rules)
            _approver(site, command.approved_by)
            if record.extensions >= rules.probation_extensions_max:
                raise ProbationAlreadyExtendedError(
                    f"{record.name} 的预备期已延长{record.extensions}次，至多{rules.probation_extensions_max}次"
                    " (rule probation_extensions_max)", "person_id")
            if command.months > rules.probation_extension_max_months:
                raise ProbationExtensionTooLongError(
                    f"预备期延长{command.months}个月，至多{rules.probation_extension_max_months}个月"
                    " (rule probation_extension_max_months)", "months")
            _not_before(record.admitted_on, command.extended_on, "extended_on", "接收为预备党员")
            latest = months_after(ends, rules.probation_decision_months)
            if command.extended_on > latest:
                raise ExtensionTooLateError(
                    f"{record.name} 的预备期已于 {ends} 届满，延长预备期应在届满时决定（至迟 {latest}），"
                    f"{command.extended_on} 已过；请办理转正或按规定处理 (rule probation_decision_months)",
                    "extended_on")
            return [ProbationExtended(**command.model_dump(include=set(ProbationExtended.model_fields)),
                                      probation_ends=months_after(ends, command.months))]
        case ConfirmFullMembership():
            record, ends = _probation(site, command.person_id, rules)
            _approver(site, command.approved_by)
            if command.confirmed_on < ends:
                rule = "probation_months + 延长" if record.extensions else "probation_months"
                raise ProbationNotOverError(
                    f"{record.name} 的预备期至 {ends} 届满，{command.confirmed_on} 不能转为正式党员 (rule {rule})",
                    "confirmed_on")
            return [FullMembershipConfirmed(**command.model_dump(include=set(FullMembershipConfirmed.model_fields)))]
    raise TypeError(f"membership cannot decide {type(command).__name__}")


def _submit_application(command: SubmitApplication, given: Given, site: SiteState, rules: Rules) -> list[Event]:
    if command.person_id in site.development:
        record = site.development[command.person_id]
        raise AlreadyOnRecordError(
            f"{command.person_id} 已有发展记录（{STAGE_NAMES[record.stage]} {record.name}）(already on record)",
            "person_id")
    if command.person_id in site.members:
        raise AlreadyOnRecordError(f"{command.person_id} 已是本工地党员 (already a member)", "person_id")
    elsewhere = given.previous_site
    if elsewhere is not None and command.person_id in elsewhere.members:
        # The id would be the member's once admitted: the admission could never be made, and the history mixed two
        # people under one id. The other site is not named (the sender may not read it).
        raise AlreadyOnRecordError(f"{command.person_id} 已是另一工地在场党员的编号，申请人请用另一个编号"
                                   " (the id is a member's present elsewhere)", "person_id")
    of_age = months_after(command.birth_date, 12 * rules.applicant_min_age)
    if command.applied_on < of_age:
        raise ApplicantTooYoungError(
            f"申请人 {command.name} 于 {of_age} 年满{rules.applicant_min_age}周岁，{command.applied_on} 不能递交"
            f"入党申请 (rule applicant_min_age)", "birth_date")
    return [ApplicationSubmitted(**command.model_dump(include=set(ApplicationSubmitted.model_fields)))]


def _admit(command: AdmitProbationary, given: Given, site: SiteState, rules: Rules) -> list[Event]:
    record = _at_stage(site, command.person_id, Stage.target)
    _approver(site, command.approved_by)
    _not_before(record.target_on, command.admitted_on, "admitted_on", "确定为发展对象")
    if command.admitted_on < site.start_date:
        raise ArrivalBeforeStartError(
            f"接收日期 {command.admitted_on} 早于开工日期 {site.start_date}：接收的预备党员即在场党员"
            " (admission before the site started)", "admitted_on")
    elsewhere = given.previous_site
    if command.person_id in site.members or (elsewhere is not None and command.person_id in elsewhere.members):
        # The other site is not named: the sender may not read it.
        where = f"本工地 {_site_named(site)}" if command.person_id in site.members else "另一工地"
        raise MemberAlreadyPresentError(
            f"{command.person_id} 已是{where}的在场党员 (member already present)", "person_id")
    assert record.gender and record.unit_kind and record.job  # set by the application
    facts = MemberFacts(name=record.name, gender=record.gender, admitted_on=command.admitted_on,
                        status=MemberStatus.probationary, unit_kind=record.unit_kind, unit_name=record.unit_name,
                        job=record.job, section=record.section, home_org=command.approved_by,
                        relation=Relation.mobile)
    # The admission also makes the person a member present, as an arrival does: the views, the activities service
    # (its talk with every new member) and the presence rule see one member more, with no consumer changed.
    return [
        ProbationaryAdmitted(**command.model_dump(include=set(ProbationaryAdmitted.model_fields)),
                             probation_ends=months_after(command.admitted_on, rules.probation_months)),
        MemberArrived(site_id=site.site_id, member_id=command.person_id, member=facts,
                      arrived_on=command.admitted_on),
    ]


def _at_stage(site: SiteState, person_id: str, stage: Stage) -> Candidate:
    record = site.development.get(person_id)
    if record is None:
        raise NotOnRecordError(f"{person_id} 在工地 {site.site_id} 没有入党申请记录 (no application on record)",
                               "person_id")
    if record.stage is not stage:
        raise StepOutOfOrderError(
            f"{record.name} 现为{STAGE_NAMES[record.stage]}；这一步只能对{STAGE_NAMES[stage]}办理"
            f" (order: 入党申请→入党积极分子→发展对象→预备党员→正式党员)", "person_id")
    return record


def _probation(site: SiteState, person_id: str, rules: Rules) -> tuple[Candidate, dt.date]:
    """A probationary member present, the record and the day the probation (with any extension) ends."""
    facts = _present(site, person_id, "person_id")
    if facts.status is not MemberStatus.probationary:
        raise NotProbationaryError(f"{facts.name} 是正式党员，没有预备期 (not a probationary member)", "person_id")
    record = _record_of(site, person_id)
    assert record.admitted_on is not None
    return record, record.probation_ends or months_after(record.admitted_on, rules.probation_months)


# Words that name a joint (兼合式, members keep their relations elsewhere) or temporary party organisation, whatever the
# site: none may approve a step (临时党组织不得发展党员). A 联合党支部 of several units is a regular branch: it may.
TEMPORARY_ORGANISATIONS = ("兼合", "临时党支部", "临时党组织")


def _approver(site: SiteState, approved_by: str) -> None:
    """临时党组织不得发展党员: a site's joint branch (工地兼合党支部) is a temporary organisation of mobile members,
    so the development steps are decided by an organisation that holds relations (the unit's or township's party
    committee, the home branch), and the record names it."""
    branch = site.branch
    said = "".join(approved_by.split())  # spaces anywhere do not make it another organisation
    own = branch is not None and branch.dissolved_on is None and said == "".join(branch.name.split())
    if own or any(word in said for word in TEMPORARY_ORGANISATIONS):
        raise JointBranchMayNotDevelopError(
            f"{approved_by} 是工地兼合党支部或临时党组织，不能审批发展党员，应由党员组织关系所在的党组织审批"
            " (a joint branch may not develop members)", "approved_by")


# The date fields of development steps as the forms name them: a refusal says 确定日期, not designated_on.
DAY_NAMES = {"designated_on": "确定日期", "admitted_on": "接收日期", "extended_on": "决定日期",
             "confirmed_on": "转正日期", "applied_on": "申请日期"}


def _not_before(earlier: dt.date | None, day: dt.date, field: str, what: str) -> None:
    if earlier is not None and day < earlier:
        raise StepBeforePreviousError(f"{DAY_NAMES.get(field, field)} {day} 早于{what}的日期 {earlier}"
                                      " (step dated before the previous one)", field)

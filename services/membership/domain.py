"""Membership domain: pure decide/evolve over a site's stream, and the errors the rules raise."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from contracts.base import Event
from contracts.city import City
from contracts.errors import DomainError
from contracts.membership import (
    BranchFormed,
    CompleteSite,
    FormBranch,
    FormPartyGroup,
    MemberArrived,
    MemberDeparted,
    MemberFacts,
    MemberStatus,
    PartyGroupFormed,
    RecordArrival,
    RecordDeparture,
    RegisterSite,
    ReportWorkforce,
    SiteCompleted,
    SiteRegistered,
    Units,
    WorkforceReported,
)
from contracts.replies import ErrorInfo
from contracts.rules import DEFAULT_RULES, Rules

# ---- errors -----------------------------------------------------------------------------------


class SiteNotFoundError(DomainError):
    code = "SITE_NOT_FOUND"


class SiteAlreadyRegisteredError(DomainError):
    code = "SITE_ALREADY_REGISTERED"


class UnknownTownshipError(DomainError):
    code = "UNKNOWN_TOWNSHIP"


class UnknownDepartmentError(DomainError):
    code = "UNKNOWN_DEPARTMENT"


class MemberAlreadyPresentError(DomainError):
    code = "MEMBER_ALREADY_PRESENT"


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


class AdmittedAfterArrivalError(DomainError):
    code = "ADMITTED_AFTER_ARRIVAL"


class DepartureBeforeArrivalError(DomainError):
    code = "DEPARTURE_BEFORE_ARRIVAL"


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
    units: Units
    workforce: int = 0
    members: dict[str, MemberFacts] = {}
    # The arrival date of each member present: a departure is not dated before it. Snapshots written before this
    # field existed get it from membership migration 6; a member missing here is not checked.
    arrived: dict[str, dt.date] = {}
    branch: Branch | None = None
    groups: dict[str, Group] = {}
    completed_on: dt.date | None = None

    def full_members(self) -> int:
        return sum(1 for m in self.members.values() if m.status is MemberStatus.full)


@dataclass(frozen=True)
class Given:
    """What a decision sees: the target site, for an arrival the site the member is at now, and the city
    (its townships and departments) when a site is registered."""

    site: SiteState | None
    previous_site: SiteState | None = None
    city: City | None = None


# ---- evolve -----------------------------------------------------------------------------------


def evolve(state: SiteState | None, event: Event) -> SiteState | None:
    match event:
        case SiteRegistered():
            return SiteState(**event.model_dump(include=set(SiteState.model_fields)))
        case WorkforceReported():
            return _site(state).model_copy(update={"workforce": event.headcount})
        case MemberArrived():
            site = _site(state)
            return site.model_copy(update={"members": {**site.members, event.member_id: event.member},
                                           "arrived": {**site.arrived, event.member_id: event.arrived_on}})
        case MemberDeparted():
            site = _site(state)
            members = {k: v for k, v in site.members.items() if k != event.member_id}
            arrived = {k: v for k, v in site.arrived.items() if k != event.member_id}
            return site.model_copy(update={"members": members, "arrived": arrived})
        case BranchFormed():
            branch = Branch(**event.model_dump(include=set(Branch.model_fields)))
            return _site(state).model_copy(update={"branch": branch})
        case PartyGroupFormed():
            site = _site(state)
            group = Group(**event.model_dump(include=set(Group.model_fields)))
            return site.model_copy(update={"groups": {**site.groups, event.group_id: group}})
        case SiteCompleted():
            return _site(state).model_copy(update={"completed_on": event.completed_on})
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
            _existing(given, command.site_id)
            return [WorkforceReported(site_id=command.site_id, headcount=command.headcount, as_of=command.as_of)]
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
    raise TypeError(f"membership cannot decide {type(command).__name__}")


def advise(command: object, given: Given, rules: Rules = DEFAULT_RULES) -> list[ErrorInfo]:
    """Warnings that do not refuse the command but that the branch should act on."""
    if isinstance(command, FormBranch) and given.site is not None:
        size = len(given.site.members)
        if size > rules.branch_warn_members:
            kind = "党的基层委员会" if size > rules.branch_general_members else "党总支"
            return [
                ErrorInfo(
                    code="BRANCH_TOO_LARGE",
                    message=f"支部党员{size}名，超过{rules.branch_warn_members}名，应考虑成立{kind}"
                    f" (rule branch_warn_members)",
                )
            ]
    return []


def _existing(given: Given, site_id: str) -> SiteState:
    if given.site is None:
        raise SiteNotFoundError(f"工地 {site_id} 未登记 (site not registered)", "site_id")
    return given.site


def _present(site: SiteState, member_id: str, field: str) -> MemberFacts:
    if member_id not in site.members:
        raise MemberNotPresentError(f"党员 {member_id} 不在工地 {site.site_id} (member not present)", field)
    return site.members[member_id]


def _not_before_arrival(site: SiteState, member_id: str, departed_on: dt.date, field: str,
                        what: str = "离场日期") -> None:
    arrived_on = site.arrived.get(member_id)
    if arrived_on is not None and departed_on < arrived_on:
        raise DepartureBeforeArrivalError(
            f"党员 {member_id} 于 {arrived_on} 进场工地 {site.site_id}，{what} {departed_on} 不能早于进场日期"
            " (departure before arrival)", field)


def _register_site(command: RegisterSite, given: Given) -> list[Event]:
    if given.site is not None:
        raise SiteAlreadyRegisteredError(f"工地 {command.site_id} 已登记 (site already registered)", "site_id")
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
    return [SiteCompleted(site_id=site.site_id, completed_on=command.completed_on)]


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
        raise MemberAlreadyPresentError(
            f"党员 {command.member_id} 已在工地 {site.site_id} (member already present)", "member_id"
        )
    events: list[Event] = []
    previous = given.previous_site
    if previous is not None and command.member_id in previous.members:
        # Arriving here ends the stay there on the same day: that departure may not precede the arrival there.
        _not_before_arrival(previous, command.member_id, command.arrived_on, "arrived_on",
                            f"调往工地 {site.site_id} 的进场日期")
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
    site = _existing(given, command.site_id)
    if site.branch is not None:
        raise BranchAlreadyFormedError(f"工地 {site.site_id} 已成立党支部 (one branch per site)", "site_id")
    full = site.full_members()
    if full < rules.branch_min_full_members:
        raise TooFewFullMembersError(
            f"在场正式党员{full}名，成立党支部至少需要{rules.branch_min_full_members}名"
            f" (rule branch_min_full_members)",
            "site_id",
        )
    secretary = _present(site, command.secretary, "secretary")
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
    fields = command.model_dump(include=set(BranchFormed.model_fields))
    return [BranchFormed(**fields, full_members=full, members=len(site.members))]


def _form_party_group(command: FormPartyGroup, given: Given, rules: Rules) -> list[Event]:
    site = _existing(given, command.site_id)
    if site.branch is None:
        raise NoBranchError("党小组须设在已成立的党支部内 (form the branch first)", "site_id")
    if command.group_id in site.groups:
        raise PartyGroupExistsError(f"党小组 {command.group_id} 已存在", "group_id")
    if len(command.members) < rules.party_group_min_members:
        raise PartyGroupTooSmallError(
            f"党小组至少需要{rules.party_group_min_members}名党员 (rule party_group_min_members)", "members"
        )
    facts = [_present(site, member_id, "members") for member_id in command.members]
    if sum(1 for f in facts if f.status is MemberStatus.full) < rules.party_group_min_full:
        raise PartyGroupNeedsFullMemberError(
            f"党小组至少需要{rules.party_group_min_full}名正式党员 (rule party_group_min_full)", "members"
        )
    if command.leader not in command.members:
        raise LeaderNotInGroupError("党小组组长须为本组党员 (leader must be a member of the group)", "leader")
    return [PartyGroupFormed(**command.model_dump(include=set(PartyGroupFormed.model_fields)))]

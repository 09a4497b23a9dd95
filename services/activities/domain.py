"""Activities domain: pure decide/evolve over a site's activity stream, the arrival policy, and the errors."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from contracts.activities import (
    ActivityHeld,
    BirthdaysCelebrated,
    CelebrateBirthdays,
    DesignateWorkPoint,
    DesignateZone,
    EstablishPost,
    FormTeam,
    InnovationRecorded,
    PersonalChangeReported,
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
    VisitRecorded,
    WorkPointDesignated,
    ZoneDesignated,
)
from contracts.base import Command, Event
from contracts.errors import DomainError
from contracts.rules import DEFAULT_RULES, Rules

# A fixed namespace: the obligation created for a cause always gets the same id.
OBLIGATIONS = uuid.UUID("0b1e9a7c-3d52-4f0e-9c61-5a8f2e7d4b13")


def obligation_id(cause: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(OBLIGATIONS, str(cause))


def talk_due(cause_on: dt.date, rules: Rules) -> dt.date:
    """The day a talk is due. Contracts keep new dates within a week of today, but events are never re-checked:
    an arrival recorded before the limits (9999-12-30, say) must still give an obligation, not an OverflowError
    that dead-letters it, so the due day stops at the last day a date can hold."""
    if cause_on > dt.date.max - dt.timedelta(days=rules.talk_due_days):
        return dt.date.max
    return cause_on + dt.timedelta(days=rules.talk_due_days)


# ---- errors -----------------------------------------------------------------------------------


class SiteNotFoundError(DomainError):
    code = "SITE_NOT_FOUND"


class MemberNotPresentError(DomainError):
    code = "MEMBER_NOT_PRESENT"


class ObligationNotFoundError(DomainError):
    code = "OBLIGATION_NOT_FOUND"


class ObligationClosedError(DomainError):
    code = "OBLIGATION_ALREADY_CLOSED"


class TalkBeforeCauseError(DomainError):
    code = "TALK_BEFORE_CAUSE"


class NotBirthdayMonthError(DomainError):
    code = "BIRTHDAY_NOT_THIS_MONTH"


class AlreadyCelebratedError(DomainError):
    code = "BIRTHDAY_ALREADY_CELEBRATED"


class AlreadyExistsError(DomainError):
    code = "ALREADY_EXISTS"


# ---- state ------------------------------------------------------------------------------------


class Obligation(BaseModel):
    model_config = ConfigDict(frozen=True)
    member_id: str
    reason: TalkReason
    created_on: dt.date
    due_on: dt.date
    closed_on: dt.date | None = None


class ActivitySite(BaseModel):
    """What the activity rules need of one site, folded from its activity stream."""

    model_config = ConfigDict(frozen=True)
    site_id: str
    zones: dict[str, list[str]] = {}
    teams: dict[str, str] = {}
    posts: dict[str, str] = {}
    points: list[str] = []
    innovations: list[str] = []
    obligations: dict[str, Obligation] = {}
    celebrated: dict[str, list[str]] = {}  # year → members whose political birthday was celebrated


@dataclass(frozen=True)
class Present:
    """A member present on the site, as the membership events say."""

    name: str
    admitted_on: dt.date


@dataclass(frozen=True)
class Given:
    site: ActivitySite | None
    known: bool
    present: dict[str, Present] = field(default_factory=dict)


# ---- evolve -----------------------------------------------------------------------------------


def evolve(state: ActivitySite | None, event: Event) -> ActivitySite:
    s = state or ActivitySite(site_id=event.site_id)  # type: ignore[attr-defined]
    match event:
        case TalkObligationCreated():
            o = Obligation(member_id=event.member_id, reason=event.reason, created_on=event.created_on,
                           due_on=event.due_on)
            return s.model_copy(update={"obligations": {**s.obligations, str(event.obligation_id): o}})
        case TalkHeld():
            key = str(event.obligation_id)
            closed = s.obligations[key].model_copy(update={"closed_on": event.talked_on})
            return s.model_copy(update={"obligations": {**s.obligations, key: closed}})
        case BirthdaysCelebrated():
            year = str(event.held_on.year)
            done = [*s.celebrated.get(year, []), *event.members]
            return s.model_copy(update={"celebrated": {**s.celebrated, year: done}})
        case ZoneDesignated():
            return s.model_copy(update={"zones": {**s.zones, event.zone_id: event.responsible}})
        case TeamFormed():
            return s.model_copy(update={"teams": {**s.teams, event.team_id: event.kind.value}})
        case PostEstablished():
            return s.model_copy(update={"posts": {**s.posts, event.post_id: event.holder}})
        case WorkPointDesignated():
            return s.model_copy(update={"points": [*s.points, event.point_id]})
        case InnovationRecorded():
            return s.model_copy(update={"innovations": [*s.innovations, event.innovation_id]})
        case VisitRecorded() | SafetyViolationRecorded() | PersonalChangeReported() | ActivityHeld():
            return s
    raise TypeError(f"activities cannot evolve {type(event).__name__}")


# ---- decide -----------------------------------------------------------------------------------


def decide(command: Command, given: Given, rules: Rules = DEFAULT_RULES) -> list[Event]:
    if not given.known:
        raise SiteNotFoundError(f"工地 {command.site_id} 未登记 (site not registered)", "site_id")  # type: ignore[attr-defined]
    site = given.site or ActivitySite(site_id=command.site_id)  # type: ignore[attr-defined]
    match command:
        case RecordVisit():
            _present(given, command.members_met, "members_met")
            return [VisitRecorded(**command.model_dump(include=set(VisitRecorded.model_fields)))]
        case RecordSafetyViolation():
            _present(given, [command.member_id], "member_id")
            return [
                SafetyViolationRecorded(**command.model_dump(include=set(SafetyViolationRecorded.model_fields))),
                _obligation(command, command.member_id, TalkReason.safety_violation, command.occurred_on, rules),
            ]
        case ReportPersonalChange():
            _present(given, [command.member_id], "member_id")
            return [
                PersonalChangeReported(**command.model_dump(include=set(PersonalChangeReported.model_fields))),
                _obligation(command, command.member_id, TalkReason.personal_change, command.reported_on, rules),
            ]
        case RecordTalk():
            return [_talk(command, site)]
        case CelebrateBirthdays():
            return [_birthdays(command, site, given)]
        case DesignateZone():
            _new(command.zone_id, site.zones, "责任区", "zone_id")
            _present(given, command.responsible, "responsible")
            return [ZoneDesignated(**command.model_dump(include=set(ZoneDesignated.model_fields)))]
        case FormTeam():
            _new(command.team_id, site.teams, "党员队伍", "team_id")
            _present(given, command.members, "members")
            return [TeamFormed(**command.model_dump(include=set(TeamFormed.model_fields)))]
        case EstablishPost():
            _new(command.post_id, site.posts, "示范岗", "post_id")
            _present(given, [command.holder], "holder")
            return [PostEstablished(**command.model_dump(include=set(PostEstablished.model_fields)))]
        case DesignateWorkPoint():
            _new(command.point_id, site.points, "示范工点", "point_id")
            return [WorkPointDesignated(**command.model_dump(include=set(WorkPointDesignated.model_fields)))]
        case RecordActivity():
            _present(given, command.attendees, "attendees")
            fields = command.model_dump(include=set(ActivityHeld.model_fields))
            return [ActivityHeld(**fields, activity_id=command.command_id)]
        case RecordInnovation():
            _new(command.innovation_id, site.innovations, "创新成果", "innovation_id")
            return [InnovationRecorded(**command.model_dump(include=set(InnovationRecorded.model_fields)))]
    raise TypeError(f"activities cannot decide {type(command).__name__}")


def on_member_arrived(site_id: str, member_id: str, arrived_on: dt.date, cause: uuid.UUID,
                      rules: Rules = DEFAULT_RULES) -> list[Event]:
    """Policy: every arrival obliges a talk with the new member (新来的党员必谈)."""
    return [
        TalkObligationCreated(
            site_id=site_id, obligation_id=obligation_id(cause), member_id=member_id, reason=TalkReason.new_arrival,
            created_on=arrived_on, due_on=talk_due(arrived_on, rules),
        )
    ]


def _obligation(command: Command, member_id: str, reason: TalkReason, on: dt.date, rules: Rules) -> Event:
    return TalkObligationCreated(
        site_id=command.site_id, obligation_id=obligation_id(command.command_id),  # type: ignore[attr-defined]
        member_id=member_id, reason=reason, created_on=on, due_on=talk_due(on, rules),
    )


def _present(given: Given, members: list[str], field: str) -> None:
    for member_id in members:
        if member_id not in given.present:
            raise MemberNotPresentError(f"党员 {member_id} 不在本工地 (member not present on the site)", field)


def _new(ident: str, existing: object, what: str, field: str) -> None:
    if ident in existing:  # type: ignore[operator]
        raise AlreadyExistsError(f"{what} {ident} 已存在 (already recorded)", field)


def _talk(command: RecordTalk, site: ActivitySite) -> Event:
    o = site.obligations.get(str(command.obligation_id))
    if o is None:
        raise ObligationNotFoundError(f"谈话任务 {command.obligation_id} 不存在", "obligation_id")
    if o.closed_on is not None:
        raise ObligationClosedError(f"谈话任务已于 {o.closed_on} 完成", "obligation_id")
    if command.talked_on < o.created_on:
        raise TalkBeforeCauseError(f"谈话日期早于事由日期 {o.created_on}", "talked_on")
    return TalkHeld(site_id=command.site_id, obligation_id=command.obligation_id, member_id=o.member_id,
                    talked_by=command.talked_by, talked_on=command.talked_on, method=command.method,
                    note=command.note)


def _birthdays(command: CelebrateBirthdays, site: ActivitySite, given: Given) -> Event:
    _present(given, command.members, "members")
    done = set(site.celebrated.get(str(command.held_on.year), []))
    for member_id in command.members:
        if given.present[member_id].admitted_on.month != command.held_on.month:
            raise NotBirthdayMonthError(
                f"党员 {member_id} 的政治生日在 {given.present[member_id].admitted_on.month} 月，不在本月", "members"
            )
        if member_id in done:
            raise AlreadyCelebratedError(f"党员 {member_id} 今年已过政治生日", "members")
    return BirthdaysCelebrated(**command.model_dump(include=set(BirthdaysCelebrated.model_fields)))

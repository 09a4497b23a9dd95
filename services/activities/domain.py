"""Activities domain: pure decide/evolve over a site's activity stream, the membership policies, and the errors."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from contracts.activities import (
    LABELS,
    ActivityHeld,
    AppraiseMembers,
    AwardPoints,
    BackboneTrained,
    BirthdaysCelebrated,
    BranchMeetingHeld,
    CelebrateBirthdays,
    CrewCandidate,
    CrewLeaderRecommended,
    DesignateWorkPoint,
    DesignateZone,
    EstablishPost,
    FormTeam,
    Grade,
    InnovationRecorded,
    MeetingKind,
    MembersAppraised,
    PersonalChangeReported,
    PointsAwarded,
    PostEstablished,
    PromotedToManagement,
    PromoteToManagement,
    RecommendCrewLeader,
    RecommendedForManagement,
    RecommendForManagement,
    RecordActivity,
    RecordBranchMeeting,
    RecordInnovation,
    RecordKind,
    RecordRetracted,
    RecordSafetyViolation,
    RecordTalk,
    RecordVisit,
    ReportPersonalChange,
    RetractRecord,
    SafetyViolationRecorded,
    TalkHeld,
    TalkObligationCreated,
    TalkObligationMooted,
    TalkReason,
    TeamFormed,
    TrainBackbone,
    VisitRecorded,
    WorkPointDesignated,
    ZoneDesignated,
)
from contracts.base import Command, Event
from contracts.errors import DomainError
from contracts.replies import ErrorInfo
from contracts.rules import DEFAULT_RULES, Rules

# The site's life is one rule of every service recording on sites: its errors are this domain's too.
from contracts.timeline import BeforeSiteStartError, SiteCompletedError, date_field, within_site_life  # noqa: F401

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


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later, or the month's last day when it has no such day (31 January
    → 28/29 February); the calendar's end stops it, as in `talk_due`."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    if year > dt.date.max.year:
        return dt.date.max
    month += 1
    last = 31 if month == 12 else (dt.date(year, month + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


# ---- errors -----------------------------------------------------------------------------------


class SiteNotFoundError(DomainError):
    code = "SITE_NOT_FOUND"


class MemberNotPresentError(DomainError):
    code = "MEMBER_NOT_PRESENT"


class StepBeforeTrainingError(DomainError):
    """A step dated before the one it follows: a backbone promoted or recommended before the day it was trained, an
    appraisal of a year before the branch existed."""

    code = "DATE_BEFORE_EARLIER_STEP"


class AttendanceOverMembersError(DomainError):
    code = "ATTENDANCE_OVER_MEMBERS"


class BeforeArrivalError(DomainError):
    """A fact about a member dated before the member's arrival on the site: a violation in 1990 made a talk
    obligation overdue since 1990, counted on every view's 逾期."""

    code = "BEFORE_ARRIVAL"


class ObligationNotFoundError(DomainError):
    code = "OBLIGATION_NOT_FOUND"


class ObligationClosedError(DomainError):
    code = "OBLIGATION_ALREADY_CLOSED"


class TalkBeforeCauseError(DomainError):
    code = "TALK_BEFORE_CAUSE"


class NotBirthdayMonthError(DomainError):
    code = "BIRTHDAY_NOT_THIS_MONTH"


class NoBirthdayYetError(DomainError):
    code = "NO_BIRTHDAY_YET"


class AlreadyCelebratedError(DomainError):
    code = "BIRTHDAY_ALREADY_CELEBRATED"


class AlreadyExistsError(DomainError):
    code = "ALREADY_EXISTS"


class NameNotTheMembersError(DomainError):
    code = "NAME_NOT_THE_MEMBERS"


class NotBackboneError(DomainError):
    code = "NOT_BACKBONE"


class PointsOverWeightError(DomainError):
    code = "POINTS_OVER_WEIGHT"


class NoBranchError(DomainError):
    code = "NO_BRANCH"


class AppraisalExistsError(DomainError):
    code = "APPRAISAL_ALREADY_HELD"


class AppraisalYearError(DomainError):
    code = "APPRAISAL_YEAR_MISMATCH"


class ExcellentOverCapError(DomainError):
    code = "APPRAISAL_EXCELLENT_OVER_CAP"


class RecordNotFoundError(DomainError):
    code = "RECORD_NOT_FOUND"


class MeetingBeforeBranchError(DomainError):
    code = "MEETING_BEFORE_BRANCH"


class NoCommitteeError(DomainError):
    code = "NO_COMMITTEE"


# ---- state ------------------------------------------------------------------------------------


class Obligation(BaseModel):
    model_config = ConfigDict(frozen=True)
    member_id: str
    reason: TalkReason
    created_on: dt.date
    due_on: dt.date
    closed_on: dt.date | None = None
    mooted: bool = False  # closed because the site was completed, not by a talk


class Retractable(BaseModel):
    """A record that can still be retracted: its day and how people read it."""

    model_config = ConfigDict(frozen=True)
    day: dt.date
    what: str
    meeting: str | None = None  # a meeting's kind/day/topic (`meetings`)
    member: str | None = None  # whom a talk was with, whom points were awarded to
    points: int = 0  # points awarded, given back to their category's year (`points_key`) when retracted
    points_key: str | None = None
    members: list[str] = []  # the members a zone, team, appraisal, meeting or activity names
    entry: str | None = None  # what `ActivitySite.entered` holds of it: free again when retracted
    obligation: str | None = None  # the talk obligation a violation or personal change caused: withdrawn with it


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
    backbone: list[str] = []  # 三培两推: trained as technical backbone here
    trained_on: dict[str, dt.date] = {}  # … and when (states folded before this kept none: not checked)
    promoted: list[str] = []  # … promoted to management
    crew_leaders: list[str] = []  # persons recommended as crew leaders
    recommended: list[str] = []  # members recommended into project management
    points_awarded: dict[str, int] = {}  # "year/member/category" → points so far
    appraised: list[int] = []  # years the branch held its 民主评议
    meetings: list[str] = []  # each branch meeting as kind/day/topic (states folded before this kept none)
    records: dict[str, Retractable] = {}  # "<record kind>/<id>" → the record, while not retracted
    # What was recorded, by what makes two entries the same one sent twice (`_same`): a violation or a personal
    # change of one member on one day in the same words, a post of one kind, holder and place, a zone or team of
    # one name. `advise` says such a second entry back.
    entered: list[str] = []


@dataclass(frozen=True)
class Present:
    """A member present on the site, as the membership events say."""

    name: str
    admitted_on: dt.date
    arrived_on: dt.date | None = None  # None: learnt before the directory kept it (not checked)


@dataclass(frozen=True)
class Branch:
    """The site's party branch, as membership's BranchFormed says."""

    formed_on: dt.date
    has_committee: bool


@dataclass(frozen=True)
class Given:
    site: ActivitySite | None
    known: bool
    present: dict[str, Present] = field(default_factory=dict)
    branch: Branch | None = None
    completed_on: dt.date | None = None  # the site's completion, as membership's events said
    started_on: dt.date | None = None  # its start; None for sites learnt before it was kept (not checked)
    today: dt.date | None = None  # the city's day the command is decided on: the day of a fact given without one


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
            held = Retractable(day=event.talked_on, what=f"{event.talked_on} 谈心谈话（{LABELS[closed.reason.value]}）",
                               member=event.member_id)
            return s.model_copy(update={"obligations": {**s.obligations, key: closed},
                                        "records": {**s.records, _record_key(RecordKind.talk, key): held}})
        case BirthdaysCelebrated():
            year = str(event.held_on.year)
            done = [*s.celebrated.get(year, []), *event.members]
            return s.model_copy(update={"celebrated": {**s.celebrated, year: done}})
        case ZoneDesignated():
            return _entered(s.model_copy(update={"zones": {**s.zones, event.zone_id: event.responsible}}), event,
                            RecordKind.zone, event.zone_id, event.designated_on,
                            f"{event.designated_on} 党员责任区「{event.name}」", members=event.responsible)
        case TeamFormed():
            return _entered(s.model_copy(update={"teams": {**s.teams, event.team_id: event.kind.value}}), event,
                            RecordKind.team, event.team_id, event.formed_on,
                            f"{event.formed_on} {LABELS[event.kind.value]}「{event.name}」", members=event.members)
        case PostEstablished():
            return _entered(s.model_copy(update={"posts": {**s.posts, event.post_id: event.holder}}), event,
                            RecordKind.post, event.post_id, event.established_on,
                            f"{event.established_on} {LABELS[event.kind.value]}（{event.place}）", event.holder)
        case WorkPointDesignated():
            return s.model_copy(update={"points": [*s.points, event.point_id]})
        case InnovationRecorded():
            return s.model_copy(update={"innovations": [*s.innovations, event.innovation_id]})
        case TalkObligationMooted():
            key = str(event.obligation_id)
            closed = s.obligations[key].model_copy(update={"closed_on": event.mooted_on, "mooted": True})
            return s.model_copy(update={"obligations": {**s.obligations, key: closed}})
        case BackboneTrained():
            return s.model_copy(update={"backbone": [*s.backbone, event.member_id],
                                        "trained_on": {**s.trained_on, event.member_id: event.trained_on}})
        case PromotedToManagement():
            return s.model_copy(update={"promoted": [*s.promoted, event.member_id]})
        case CrewLeaderRecommended():
            return s.model_copy(update={"crew_leaders": [*s.crew_leaders, event.person_id]})
        case RecommendedForManagement():
            return s.model_copy(update={"recommended": [*s.recommended, event.member_id]})
        case PointsAwarded():
            key = _points_key(event.awarded_on.year, event.member_id, event.category.value)
            so_far = s.points_awarded.get(key, 0) + event.points
            update: dict[str, object] = {"points_awarded": {**s.points_awarded, key: so_far}}
            if event.award_id is not None:  # points awarded before awards had ids are not retractable
                held = Retractable(day=event.awarded_on, what=f"{event.awarded_on} {LABELS[event.category.value]}"
                                   f"积分 {event.points} 分", member=event.member_id, points=event.points,
                                   points_key=key)
                update["records"] = {**s.records, _record_key(RecordKind.points, event.award_id): held}
            return s.model_copy(update=update)
        case MembersAppraised():
            held = Retractable(day=event.appraised_on, what=f"{event.year} 年度民主评议（{len(event.grades)} 名党员）",
                               members=[g.member_id for g in event.grades])
            return s.model_copy(update={"appraised": [*s.appraised, event.year],
                                        "records": {**s.records, _record_key(RecordKind.appraisal, event.year): held}})
        case BranchMeetingHeld():
            held = Retractable(day=event.held_on, what=f"{event.held_on} {LABELS[event.kind.value]}《{event.topic}》",
                               meeting=_meeting_key(event), members=event.attendees)
            key = _record_key(RecordKind.meeting, event.meeting_id)
            return s.model_copy(update={"meetings": [*s.meetings, _meeting_key(event)],
                                        "records": {**s.records, key: held}})
        case ActivityHeld():
            held = Retractable(day=event.held_on, what=_activity_what(event), members=event.attendees)
            key = _record_key(RecordKind.activity, event.activity_id)
            return s.model_copy(update={"records": {**s.records, key: held}})
        case RecordRetracted():
            return _retracted(s, event)
        case SafetyViolationRecorded():
            return _entered(s, event, RecordKind.violation, event.violation_id, event.occurred_on,
                            f"{event.occurred_on} 施工违章：{event.description}", event.member_id)
        case PersonalChangeReported():
            return _entered(s, event, RecordKind.change, event.change_id, event.reported_on,
                            f"{event.reported_on} 个人或家庭变故：{event.description}", event.member_id)
        case VisitRecorded():
            return s
    raise TypeError(f"activities cannot evolve {type(event).__name__}")


def _entered(s: ActivitySite, event: Entered, kind: RecordKind, ident: object, day: dt.date | None, what: str,
             member: str | None = None, members: list[str] | None = None) -> ActivitySite:
    """An entry kept against its being sent again, and retractable when it has an id and a day (those recorded
    before their ids or days were kept are not)."""
    entry = _same(event)
    update: dict[str, object] = {"entered": [*s.entered, entry]}
    if ident is not None and day is not None:
        obligation = str(obligation_id(ident)) if kind in (RecordKind.violation, RecordKind.change) else None
        held = Retractable(day=day, what=what, member=member, members=members or [], entry=entry,
                           obligation=obligation)
        update["records"] = {**s.records, _record_key(kind, ident): held}
    return s.model_copy(update=update)


def _retracted(s: ActivitySite, event: RecordRetracted) -> ActivitySite:
    """The record is gone from the rules' view too: a retracted appraisal's year may be appraised again, and a
    retracted meeting no longer makes the same one look recorded twice; a retracted post, zone or team may be entered
    again, and a retracted violation or personal change owes no talk."""
    records = dict(s.records)
    held = records.pop(_record_key(event.record, event.record_id), None)
    update: dict[str, object] = {"records": records}
    if held is not None and held.entry in s.entered:
        entered = list(s.entered)
        entered.remove(held.entry)
        update["entered"] = entered
    if held is not None and held.obligation is not None:
        update["obligations"] = {k: o for k, o in s.obligations.items() if k != held.obligation}
    own = {RecordKind.post: "posts", RecordKind.zone: "zones", RecordKind.team: "teams"}.get(event.record)
    if own is not None:
        update[own] = {k: v for k, v in getattr(s, own).items() if k != event.record_id}
    if event.record is RecordKind.appraisal:
        update["appraised"] = [y for y in s.appraised if str(y) != event.record_id]
    if event.record is RecordKind.talk and event.record_id in s.obligations:  # owed again, as before the talk
        reopened = s.obligations[event.record_id].model_copy(update={"closed_on": None})
        update["obligations"] = {**s.obligations, event.record_id: reopened}
    if held is not None and held.points_key is not None:  # the category's year has room for them again
        left = s.points_awarded.get(held.points_key, 0) - held.points
        update["points_awarded"] = {**s.points_awarded, held.points_key: left}
    if held is not None and held.meeting in s.meetings:
        meetings = list(s.meetings)
        meetings.remove(held.meeting)  # one of them: the same meeting may have been recorded twice
        update["meetings"] = meetings
    return s.model_copy(update=update)


def _withdrawing(retracted: RecordRetracted, owed: Obligation | None, key: str) -> RecordRetracted:
    """A violation or personal change retracted withdraws the talk obligation it caused, unless that talk was held:
    the talk happened, and is retracted on its own first if it was entered by mistake too."""
    if owed is None:  # withdrawn before, or never made (a state folded before obligations were kept)
        return retracted
    if owed.closed_on is not None and not owed.mooted:
        raise ObligationClosedError(
            f"这条记录产生的谈话已于 {owed.closed_on} 谈过：如谈话也是记错的，请先撤销那次谈话，再撤销这条记录"
            " (its talk was held: retract the talk first)", "record_id")
    return retracted.model_copy(update={"obligation_id": uuid.UUID(key)})


def _record_key(kind: RecordKind, ident: object) -> str:
    """How `ActivitySite.records` names a record: `<kind>/<id>`, as `RetractRecord` names it."""
    return f"{kind.value}/{ident}"


Entered = (SafetyViolationRecorded | RecordSafetyViolation | PersonalChangeReported | ReportPersonalChange
           | PostEstablished | EstablishPost | ZoneDesignated | DesignateZone | TeamFormed | FormTeam)


def _same(x: Entered) -> str:
    """What makes an entry the same one entered again (`ActivitySite.entered`), for the event and its command."""
    match x:
        case SafetyViolationRecorded() | RecordSafetyViolation():
            return f"violation/{x.member_id}/{x.occurred_on}/{x.description}"
        case PersonalChangeReported() | ReportPersonalChange():
            return f"change/{x.member_id}/{x.reported_on}/{x.description}"
        case PostEstablished() | EstablishPost():
            return f"post/{x.kind.value}/{x.holder}/{x.place}"
        case ZoneDesignated() | DesignateZone():
            return f"zone/{x.name}"
        case TeamFormed() | FormTeam():
            return f"team/{x.name}"
    raise TypeError(f"no entry: {type(x).__name__}")


# An entry sent again (a second click, a form filled twice): the field it is refused on and what is said. Refused,
# not warned as a meeting is (two groups may meet on one day on one topic): nothing of these could be retracted,
# and a violation entered twice owed a second talk for good.
AGAIN: dict[type, tuple[str, str]] = {
    RecordSafetyViolation: ("description", "已记录过该党员这一天同样的施工违章；若确是另一次，请在违章情况中写明区别"),
    ReportPersonalChange: ("description", "已记录过该党员这一天同样的个人或家庭变故；若确是另一件，请写明区别"),
    EstablishPost: ("place", "该党员已在这一地点上岗同类示范岗"),
    DesignateZone: ("name", "本工地已有同名的党员责任区"),
    FormTeam: ("name", "本工地已有同名的党员队伍"),
}


def _not_again(command: Entered, site: ActivitySite) -> None:
    if _same(command) in site.entered:
        field, said = AGAIN[type(command)]
        raise AlreadyExistsError(f"{said} (the same entry was recorded before)", field)


def _activity_what(activity: ActivityHeld | RecordActivity) -> str:
    return f"{activity.held_on} {LABELS[activity.kind.value]}《{activity.title}》"


def _meeting_key(meeting: BranchMeetingHeld | RecordBranchMeeting) -> str:
    return f"{meeting.kind.value}/{meeting.held_on.isoformat()}/{meeting.topic}"


# ---- advise: recorded, with a warning the sender should look at -----------------------------------------------


def advise(command: Command, given: Given) -> list[ErrorInfo]:
    """A branch meeting of the kind, day and topic of one recorded already: sent twice (two browsers, a retry with
    another key)? Two party groups may meet on one day, so it is recorded, and said back. Likewise an activity of
    the kind, day and title of one recorded already (two night-school classes may share a title)."""
    if isinstance(command, RecordActivity) and given.site is not None \
            and _activity_what(command) in {r.what for k, r in given.site.records.items()
                                              if k.startswith(_record_key(RecordKind.activity, ""))}:
        return [ErrorInfo(code="ACTIVITY_ALREADY_RECORDED", field="title", message=(
            f"{command.held_on} 已记录过同名的{LABELS[command.kind.value]}：若是重复提交，"
            "请在“撤销记录”中撤销多出的一条；若是另一场，请在名称中注明"
            " (an activity of this kind, day and title was recorded)"))]
    if isinstance(command, RecordBranchMeeting) and given.site is not None \
            and _meeting_key(command) in given.site.meetings:
        return [ErrorInfo(code="MEETING_ALREADY_RECORDED", field="topic", message=(
            f"{command.held_on} 已记录过主题相同的{LABELS[command.kind.value]}：若是重复提交，"
            "请在“撤销记录”中撤销多出的一条；若是另一次会议（如另一党小组），请在主题中注明"
            " (a meeting of this kind, day and topic was recorded)"))]
    return []


# ---- decide -----------------------------------------------------------------------------------


def decide(command: Command, given: Given, rules: Rules = DEFAULT_RULES) -> list[Event]:
    events = _decide(command, given, rules)
    # A talk closes an obligation the platform opened, on whatever day it was due: an applicant's talk may come before
    # the site (the development files come with the person).
    within_site_life(command, events, None if isinstance(command, RecordTalk) else given.started_on,
                     given.completed_on)
    return events


def _decide(command: Command, given: Given, rules: Rules) -> list[Event]:
    if not given.known:
        raise SiteNotFoundError(f"工地 {command.site_id} 未登记 (site not registered)", "site_id")  # type: ignore[attr-defined]
    site = given.site or ActivitySite(site_id=command.site_id)  # type: ignore[attr-defined]
    match command:
        case RecordVisit():
            _present(given, command.members_met, "members_met", command)
            return [VisitRecorded(**command.model_dump(include=set(VisitRecorded.model_fields)))]
        case RecordSafetyViolation():
            _present(given, [command.member_id], "member_id", command)
            _not_again(command, site)
            return [
                SafetyViolationRecorded(**command.model_dump(include=set(SafetyViolationRecorded.model_fields)),
                                        violation_id=command.command_id),
                _obligation(command, command.member_id, TalkReason.safety_violation, command.occurred_on, rules),
            ]
        case ReportPersonalChange():
            _present(given, [command.member_id], "member_id", command)
            _not_again(command, site)
            return [
                PersonalChangeReported(**command.model_dump(include=set(PersonalChangeReported.model_fields)),
                                       change_id=command.command_id),
                _obligation(command, command.member_id, TalkReason.personal_change, command.reported_on, rules),
            ]
        case RecordTalk():
            return [_talk(command, site)]
        case CelebrateBirthdays():
            return [_birthdays(command, site, given)]
        case DesignateZone():
            _new(command.zone_id, site.zones, "责任区", "zone_id")
            _not_again(command, site)
            command = _dated(command, given)
            _present(given, command.responsible, "responsible", command)
            return [ZoneDesignated(**command.model_dump(include=set(ZoneDesignated.model_fields)))]
        case FormTeam():
            _new(command.team_id, site.teams, "党员队伍", "team_id")
            _not_again(command, site)
            command = _dated(command, given)
            _present(given, command.members, "members", command)
            return [TeamFormed(**command.model_dump(include=set(TeamFormed.model_fields)))]
        case EstablishPost():
            _new(command.post_id, site.posts, "示范岗", "post_id")
            _not_again(command, site)
            command = _dated(command, given)
            _present(given, [command.holder], "holder", command)
            return [PostEstablished(**command.model_dump(include=set(PostEstablished.model_fields)))]
        case DesignateWorkPoint():
            _new(command.point_id, site.points, "示范工点", "point_id")
            return [WorkPointDesignated(**command.model_dump(include=set(WorkPointDesignated.model_fields)))]
        case RecordActivity():
            _present(given, command.attendees, "attendees", command)
            fields = command.model_dump(include=set(ActivityHeld.model_fields))
            return [ActivityHeld(**fields, activity_id=command.command_id)]
        case RecordInnovation():
            _new(command.innovation_id, site.innovations, "创新成果", "innovation_id")
            return [InnovationRecorded(**command.model_dump(include=set(InnovationRecorded.model_fields)))]
        case TrainBackbone():
            _present(given, [command.member_id], "member_id", command)
            _new(command.member_id, site.backbone, "党员骨干", "member_id")
            return [BackboneTrained(**command.model_dump(include=set(BackboneTrained.model_fields)))]
        case PromoteToManagement():
            _present(given, [command.member_id], "member_id", command)
            _backbone(command.member_id, site, "member_id", command.promoted_on, "promoted_on")
            _new(command.member_id, site.promoted, "培养成管理人员的骨干", "member_id")
            return [PromotedToManagement(**command.model_dump(include=set(PromotedToManagement.model_fields)))]
        case RecommendCrewLeader():
            # A worker need not be a member (推荐优秀农民工): only backbone is checked against this site's record.
            if command.candidate is CrewCandidate.backbone:
                _backbone(command.person_id, site, "person_id", command.recommended_on, "recommended_on")
            member = given.present.get(command.person_id)
            if member is not None and member.name != command.name:  # an id of the site's own register, another name
                raise NameNotTheMembersError(
                    f"编号 {command.person_id} 是本工地在场党员{member.name}，与所填姓名{command.name}不符"
                    " (the id is a member's of another name)", "name")
            _new(command.person_id, site.crew_leaders, "推荐的班组长", "person_id")
            return [CrewLeaderRecommended(**command.model_dump(include=set(CrewLeaderRecommended.model_fields)))]
        case RecommendForManagement():
            _present(given, [command.member_id], "member_id", command)
            _new(command.member_id, site.recommended, "推荐进入管理层的党员", "member_id")
            fields = command.model_dump(include=set(RecommendedForManagement.model_fields))
            return [RecommendedForManagement(**fields, backbone=command.member_id in site.backbone)]
        case AwardPoints():
            return [_points(command, site, given, rules)]
        case AppraiseMembers():
            return [_appraisal(command, site, given, rules)]
        case RecordBranchMeeting():
            return [_meeting(command, given)]
        case RetractRecord():
            return _retraction(command, site, given)
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


def on_application_submitted(site_id: str, person_id: str, applied_on: dt.date, cause: uuid.UUID,
                             rules: Rules = DEFAULT_RULES) -> list[Event]:
    """Policy: the branch talks with every applicant within a month of the application (入党申请人谈话)."""
    return [
        TalkObligationCreated(
            site_id=site_id, obligation_id=obligation_id(cause), member_id=person_id, reason=TalkReason.application,
            created_on=applied_on, due_on=add_months(applied_on, rules.application_talk_months),
        )
    ]


def on_site_completed(state: ActivitySite | None, site_id: str, completed_on: dt.date) -> list[Event]:
    """Policy: a completed site's open talk obligations are closed as moot; nobody is left to hold them."""
    if state is None:
        return []
    return [
        TalkObligationMooted(site_id=site_id, mooted_on=completed_on, obligation_id=uuid.UUID(key),
                             member_id=o.member_id, reason="site_completed")
        for key, o in sorted(state.obligations.items()) if o.closed_on is None
    ]


def on_member_departed(state: ActivitySite | None, site_id: str, member_id: str, departed_on: dt.date
                       ) -> list[Event]:
    """Policy: a member who left before being talked with is no longer this site's to talk with; the obligation is
    closed as moot (else it stayed 逾期 for ever, counted on every view)."""
    if state is None:
        return []
    return [
        TalkObligationMooted(site_id=site_id, mooted_on=departed_on, obligation_id=uuid.UUID(key),
                             member_id=o.member_id, reason="member_departed")
        for key, o in sorted(state.obligations.items()) if o.closed_on is None and o.member_id == member_id
    ]


def _obligation(command: Command, member_id: str, reason: TalkReason, on: dt.date, rules: Rules) -> Event:
    return TalkObligationCreated(
        site_id=command.site_id, obligation_id=obligation_id(command.command_id),  # type: ignore[attr-defined]
        member_id=member_id, reason=reason, created_on=on, due_on=talk_due(on, rules),
    )


C = TypeVar("C", bound=Command)


def _dated(command: C, given: Given) -> C:
    """A zone, team or post given without its day is dated the day it is recorded: before, it had no day, and as
    of a past day it took the day of whatever fact was recorded before it on the site (a talk entered late put a
    zone designated today into a closed year's report)."""
    field = date_field(type(command))
    if field is None or getattr(command, field) is not None or given.today is None:
        return command
    return command.model_copy(update={field: given.today})


def _present(given: Given, members: list[str], field: str, command: Command) -> None:
    """Every member named is present on the site, and was there on the command's day: a lesson dated before its
    attendees arrived, or a violation "in 1990", is no fact of this site (`BEFORE_ARRIVAL`)."""
    day_field = date_field(type(command))
    day = getattr(command, day_field) if day_field else None
    for member_id in members:
        member = given.present.get(member_id)
        if member is None:
            raise MemberNotPresentError(f"党员 {member_id} 不在本工地 (member not present on the site)", field)
        if day is not None and member.arrived_on is not None and day < member.arrived_on:
            raise BeforeArrivalError(f"{member.name} 于 {member.arrived_on} 进场，{day} 早于进场日期："
                                     "只记录在本工地期间的事 (dated before the member arrived)", day_field)


def _new(ident: str, existing: object, what: str, field: str) -> None:
    if ident in existing:  # type: ignore[operator]
        raise AlreadyExistsError(f"{what} {ident} 已存在 (already recorded)", field)


def _talk(command: RecordTalk, site: ActivitySite) -> Event:
    o = site.obligations.get(str(command.obligation_id))
    if o is None:
        raise ObligationNotFoundError(f"谈话任务 {command.obligation_id} 不存在", "obligation_id")
    if o.closed_on is not None:
        done = "因工地竣工而关闭" if o.mooted else "完成"
        raise ObligationClosedError(f"谈话任务已于 {o.closed_on} {done}", "obligation_id")
    if command.talked_on < o.created_on:
        raise TalkBeforeCauseError(f"谈话日期早于事由日期 {o.created_on}", "talked_on")
    return TalkHeld(site_id=command.site_id, obligation_id=command.obligation_id, member_id=o.member_id,
                    talked_by=command.talked_by, talked_on=command.talked_on, method=command.method,
                    note=command.note)


def _birthdays(command: CelebrateBirthdays, site: ActivitySite, given: Given) -> Event:
    _present(given, command.members, "members", command)
    done = set(site.celebrated.get(str(command.held_on.year), []))
    for member_id in command.members:
        member = given.present[member_id]
        who = f"{member.name}（{member_id}）"
        if member.admitted_on.month != command.held_on.month:
            raise NotBirthdayMonthError(
                f"{who} 的政治生日在 {member.admitted_on.month} 月，不在 {command.held_on.month} 月", "members")
        if member.admitted_on.year >= command.held_on.year:
            raise NoBirthdayYetError(
                f"{who} 于 {member.admitted_on} 入党，第一个政治生日在 {member.admitted_on.year + 1} 年"
                " (admitted this year: no anniversary yet)", "members")
        if member_id in done:
            raise AlreadyCelebratedError(f"{who} {command.held_on.year}年已过政治生日", "members")
    return BirthdaysCelebrated(**command.model_dump(include=set(BirthdaysCelebrated.model_fields)))


def _points_key(year: int, member_id: str, category: str) -> str:
    return f"{year}/{member_id}/{category}"


def _backbone(member_id: str, site: ActivitySite, field: str, on: dt.date, on_field: str) -> None:
    if member_id not in site.backbone:
        raise NotBackboneError(f"{member_id} 未在本工地培养为党员骨干 (not trained as backbone here)", field)
    trained = site.trained_on.get(member_id)
    if trained is not None and on < trained:
        raise StepBeforeTrainingError(f"{member_id} 于 {trained} 培养为党员骨干，{on} 早于此"
                                      " (step before the training)", on_field)


def _points(command: AwardPoints, site: ActivitySite, given: Given, rules: Rules) -> Event:
    _present(given, [command.member_id], "member_id", command)
    category = command.category.value
    weight = rules.points_weight(category)
    so_far = site.points_awarded.get(_points_key(command.awarded_on.year, command.member_id, category), 0)
    if so_far + command.points > weight:
        who = f"{given.present[command.member_id].name}（{command.member_id}）"
        raise PointsOverWeightError(
            f"{who} {command.awarded_on.year}年{LABELS[category]}积分已有 {so_far} 分，再加 {command.points} 分"
            f"超过该类权重 {weight} 分 [points_weight_{category}]", "points")
    return PointsAwarded(**command.model_dump(include=set(PointsAwarded.model_fields)), award_id=command.command_id)


def _appraisal(command: AppraiseMembers, site: ActivitySite, given: Given, rules: Rules) -> Event:
    if given.branch is None:
        raise NoBranchError(f"工地 {command.site_id} 尚未成立党支部，不能民主评议", "site_id")
    if command.year < given.branch.formed_on.year:
        raise StepBeforeTrainingError(
            f"党支部 {given.branch.formed_on} 成立，不能评议更早的 {command.year} 年度 (a year before the branch)",
            "year")
    if command.year in site.appraised:
        raise AppraisalExistsError(f"党支部 {command.year} 年度民主评议已开展 (one appraisal per branch per year)",
                                   "year")
    if command.appraised_on.year not in (command.year, command.year + 1):
        raise AppraisalYearError(f"评议日期 {command.appraised_on} 不在 {command.year} 年度或次年", "appraised_on")
    _present(given, [g.member_id for g in command.grades], "grades", command)
    excellent = sum(1 for g in command.grades if g.grade is Grade.excellent)
    if excellent * rules.appraisal_excellent_one_in > len(command.grades):
        raise ExcellentOverCapError(
            f"优秀 {excellent} 名超过参评党员 {len(command.grades)} 名的 1/{rules.appraisal_excellent_one_in}"
            f" [appraisal_excellent_one_in]", "grades")
    return MembersAppraised(site_id=command.site_id, appraised_on=command.appraised_on, year=command.year,
                            grades=list(command.grades))


# Meetings only members attend (a 党课 or 主题党日 may have activists and guests): more than the members present is
# not a plausible count (5,000 at a branch of 33 was accepted).
MEMBERS_ONLY = frozenset({MeetingKind.general_assembly, MeetingKind.committee, MeetingKind.group,
                          MeetingKind.life_meeting})


def _meeting(command: RecordBranchMeeting, given: Given) -> Event:
    if given.branch is None:
        raise NoBranchError(f"工地 {command.site_id} 尚未成立党支部 (no branch)", "site_id")
    if command.held_on < given.branch.formed_on:
        raise MeetingBeforeBranchError(f"会议日期早于党支部成立日期 {given.branch.formed_on}", "held_on")
    if command.kind is MeetingKind.committee and not given.branch.has_committee:
        raise NoCommitteeError("党支部未设支委会，只设书记 (branch_committee_threshold)", "kind")
    _present(given, command.attendees, "attendees", command)
    # The members present on the meeting's day: a meeting recorded late is not measured by today's roster.
    then = sum(1 for p in given.present.values() if p.arrived_on is None or p.arrived_on <= command.held_on)
    if command.kind in MEMBERS_ONLY and command.attendance > then:
        raise AttendanceOverMembersError(
            f"到会 {command.attendance} 人，{command.held_on} 本工地在场党员只有 {then} 名："
            "党员大会、支委会、党小组会、组织生活会只有党员参加 (attendance over the members present)", "attendance")
    fields = command.model_dump(include=set(BranchMeetingHeld.model_fields))
    return BranchMeetingHeld(**fields, meeting_id=command.command_id)


def _retraction(command: RetractRecord, site: ActivitySite, given: Given) -> list[Event]:
    held = site.records.get(_record_key(command.record, command.record_id))
    if held is None:
        raise RecordNotFoundError(
            f"工地 {command.site_id} 没有编号为 {command.record_id} 的{LABELS[command.record.value]}记录，"
            "或已撤销 (no such record on this site, or retracted already)", "record_id")
    retracted = RecordRetracted(site_id=command.site_id, record=command.record, record_id=command.record_id,
                                record_day=held.day, what=held.what, reason=command.reason, member_id=held.member,
                                members=held.members or None)
    if held.obligation is not None:
        return [_withdrawing(retracted, site.obligations.get(held.obligation), held.obligation)]
    if command.record is not RecordKind.talk:
        return [retracted]
    # A talk retracted owes its talk again: to a member still here, or closed as moot on the site's completion
    # (as the policy closes open ones). A member who left is refused: the day they left, which the obligation
    # would be closed on, is membership's, not known here.
    owed = site.obligations[command.record_id]
    if given.completed_on is not None:
        return [retracted, TalkObligationMooted(site_id=command.site_id, mooted_on=given.completed_on,
                                                obligation_id=uuid.UUID(command.record_id), member_id=owed.member_id,
                                                reason="site_completed")]
    if owed.reason is not TalkReason.application and owed.member_id not in given.present:
        raise MemberNotPresentError(
            f"党员 {owed.member_id} 已离开本工地：撤销这次谈话，谈话任务就再也无人可谈，不能撤销；"
            "如确系记错，请告知市工委 (the member has left: the talk owed again could not be held)", "record_id")
    return [retracted]

"""The two clocks of an as-of view: when a fact happened (its business day) and when the platform recorded it.

`as_of` asks a view as it stood at a moment, in one of two senses:

- **business** (按业务日期, "what was true then"): every fact whose business day is on or before the day, whenever it
  was recorded. A member who arrived on 2020-12-20 but was entered in January counts at 2020-12-31.
- **recorded** (按记录时间, "what the platform showed then"): every event recorded up to the moment, whatever day it
  speaks of. The same late entry does not count at 2020-12-31.

An event's business day is its own date field: the first `datetime.date` field of its model (`arrived_on`,
`talked_on`, `start_date`, …), or the one it names in `BUSINESS_DAY` (a transfer prompt's `due_on`: it is true from
the day it falls due, whenever the timer fired it). A fact with no date of its own (a zone designated or a team
formed by a release before they kept their day) belongs to the story of its stream at the point it was recorded:
it takes the business day of the event before it in its stream, and the first event of a stream without one takes
the day it was recorded.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import types
import typing
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from contracts.errors import DomainError, rule_broken
from contracts.rules import LIMITS

# The city's clock: China Standard Time has had no daylight saving since 1991, so a fixed offset is exact and
# needs no time-zone database on the machine.
CITY_TZ = dt.timezone(dt.timedelta(hours=8), "CST")


class Basis(StrEnum):
    business = "business"  # 按业务日期：当时的实际情况（含事后补录的事实）
    recorded = "recorded"  # 按记录时间：平台当时显示的情况


BASIS_TITLES = {Basis.business: "按业务日期（当时的实际情况，含事后补录）",
                Basis.recorded: "按记录时间（平台当时显示的情况）"}


def _day_or_moment(value: Any) -> Any:
    """`2020-12-31` is a day (the whole of it), not its first instant, which a datetime would read it as. A number
    is no moment here: pydantic would read `20201231` as seconds since 1970 (a day in August 1970)."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\s*[-+]?[\d.]+\s*", value)):
        raise ValueError("应为日期 YYYY-MM-DD 或时刻 YYYY-MM-DDTHH:MM，不是数字"
                         " (a day YYYY-MM-DD or a moment YYYY-MM-DDTHH:MM, not a number)")
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"没有 {value.strip()} 这一天，应为日期 YYYY-MM-DD (no such day)") from None
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value.strip())
        except ValueError:  # neither: say both forms (the union's first member would ask for a moment only)
            raise ValueError("应为日期 YYYY-MM-DD 或时刻 YYYY-MM-DDTHH:MM（北京时间）"
                             " (a day YYYY-MM-DD or a moment YYYY-MM-DDTHH:MM)") from None
    return value


def city_today() -> dt.date:
    """The city's day now. Not the host's: a server kept on UTC is a day behind the city from 16:00 to midnight, and
    a meeting recorded on the city's day was not counted as held until then."""
    return dt.datetime.now(CITY_TZ).date()


def latest_as_of() -> dt.date:
    """The last day a view may be asked as of: as far ahead as a fact may be recorded (contracts.rules.LIMITS, as
    every command's days), or the end of this year, whichever is later: the year so far is a question too (the
    yearly report of the current year asks as of its 31 December)."""
    today = city_today()  # as as_of is read in the city's time
    return max(today + dt.timedelta(days=LIMITS.future_days), dt.date(today.year, 12, 31))


def _plausible(value: dt.datetime | dt.date) -> dt.datetime | dt.date:
    """A moment the record can speak of: from the earliest plausible day to `latest_as_of`. Before, every view is
    empty; far after, a view's periods (a meeting's year after the day) lie beyond the calendar."""
    latest = latest_as_of()
    try:
        day = cutoff(value)[0]
    except OverflowError:  # a moment at the calendar's very edge, with an offset that takes it beyond
        day = None
    if day is None or not LIMITS.earliest_day <= day <= latest:
        raise ValueError(f"查询时点应在 {LIMITS.earliest_day} 至 {latest} 之间"
                         f" (as_of must lie between {LIMITS.earliest_day} and {latest})")
    return value


class AsOf(BaseModel):
    """Optional parameters of a view query: the moment and the sense. Without `as_of` the view is the live one."""

    model_config = ConfigDict(extra="forbid")
    # A day means the end of that day in the city's time; a moment without an offset is read in the city's time.
    as_of: Annotated[dt.datetime | dt.date, BeforeValidator(_day_or_moment), AfterValidator(_plausible)] | None = None
    as_of_basis: Basis = Basis.business

    @model_validator(mode="after")
    def _basis_of_a_moment(self) -> AsOf:
        # Before, `?as_of_basis=recorded` alone gave the live view without a word, as if it had been heeded.
        if self.as_of is None and "as_of_basis" in self.model_fields_set:
            raise rule_broken("as_of_basis", "as_of_basis 须与 as_of 一起给出：不给 as_of 时视图是实时的",
                              "as_of_basis needs as_of")
        return self


@functools.cache
def date_field(model: type[BaseModel]) -> str | None:
    """The field of an event model holding its business day, or None when the fact carries no date: the one the
    model names in `BUSINESS_DAY` (a fact about an earlier day, such as a prompt that falls due), else its first."""
    named = getattr(model, "BUSINESS_DAY", None)
    if named is not None:
        return named
    for name, info in model.model_fields.items():
        if _is_day(info.annotation):
            return name
    return None


def _is_day(annotation: Any) -> bool:
    """`date`, an annotated `date` (a command's `Day`), or either of them or None."""
    if annotation is dt.date:
        return True
    if typing.get_origin(annotation) is Annotated:
        return _is_day(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and _is_day(args[0])
    return False


def business_day(event: BaseModel) -> dt.date | None:
    """The day the fact happened, by its own date field; None when it has none."""
    field = date_field(type(event))
    return None if field is None else getattr(event, field)


class SiteCompletedError(DomainError):
    """A fact dated after the site's completion (竣工): nobody is left there to hold a meeting, be talked to or
    settle with. What happened before it, recorded late, is taken."""

    code = "SITE_COMPLETED"


class BeforeSiteStartError(DomainError):
    """A fact dated before the site started: there was no site yet to hold it."""

    code = "BEFORE_SITE_START"


def within_site_life(command: BaseModel, events: list[BaseModel], started_on: dt.date | None,
                     completed_on: dt.date | None) -> None:
    """Raises when an event `command` decided is dated before the site's start or after its completion (either left
    None: not known, as for sites learnt before the service kept it). The refusal names the command's date field."""
    site_id = getattr(command, "site_id", "")
    field = date_field(type(command)) or "site_id"
    for event in events:
        day = business_day(event)
        if day is None:
            continue
        if completed_on is not None and day > completed_on:
            raise SiteCompletedError(f"工地 {site_id} 已于 {completed_on} 竣工，不能登记 {day} 的记录"
                                     " (dated after the site's completion)", field)
        if started_on is not None and day < started_on:
            raise BeforeSiteStartError(f"工地 {site_id} 于 {started_on} 开工，不能登记更早的 {day} 的记录"
                                       " (dated before the site started)", field)


def cutoff(as_of: dt.datetime | dt.date) -> tuple[dt.date, dt.datetime]:
    """The last business day and the last recorded instant an as-of covers, both inclusive.

    A day covers the whole of it in the city's time; a moment covers everything up to and including it."""
    if isinstance(as_of, dt.datetime):
        moment = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=CITY_TZ)
        return moment.astimezone(CITY_TZ).date(), moment
    end = dt.datetime.combine(as_of, dt.time.max, CITY_TZ)
    return as_of, end


def describe(as_of: dt.datetime | dt.date, basis: Basis) -> dict[str, Any]:
    """How a reply names the moment it shows, for people and programs."""
    day, moment = cutoff(as_of)
    shown = f"{day.year}年{day.month}月{day.day}日"
    if isinstance(as_of, dt.datetime):
        local = moment.astimezone(CITY_TZ)  # to the second when one was asked for: 12:47:40 is not 12:47
        shown += local.strftime(" %H:%M:%S" if local.second or local.microsecond else " %H:%M")
    return {"as_of": as_of.isoformat(), "basis": basis.value, "day": day.isoformat(),
            "until": moment.isoformat(), "title": f"截至{shown}，{BASIS_TITLES[basis]}"}


class Window:
    """Which events an as-of view applies, asked in stream order; it remembers each stream's last business day for
    the facts that carry none."""

    def __init__(self, as_of: dt.datetime | dt.date, basis: Basis):
        self.basis = basis
        self.day, self.until = cutoff(as_of)
        self._stream_day: dict[str, dt.date] = {}

    def includes(self, recorded_at: dt.datetime, stream_id: str, event: Callable[[], BaseModel]) -> bool:
        """`event` parses the fact (only the business basis needs its content)."""
        if self.basis is Basis.recorded:
            return recorded_at <= self.until
        day = business_day(event()) or self._stream_day.get(stream_id) or recorded_at.astimezone(CITY_TZ).date()
        self._stream_day[stream_id] = day
        return day <= self.day

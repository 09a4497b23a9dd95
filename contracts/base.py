"""Base models for commands and events: strict, frozen, JSON-friendly."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from decimal import Decimal
from typing import Annotated, ClassVar
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from contracts.errors import rule_broken
from contracts.rules import LIMITS
from contracts.timeline import city_today
from contracts.upcasting import UPCASTERS, Upcasters

# Characters no one types into a record: C0/C1 controls (NUL included), the bidirectional marks (U+061C, U+200E,
# U+200F), overrides and isolates that make a text display differently from what it says, and the zero-width and
# invisible ones (U+00AD, U+180E, U+200B–U+200D, U+2060–U+2064) that make two names look alike ("张" and
# "张\u200b"), with the fillers and selectors that show nothing either (U+034F, U+115F, U+1160, U+3164, U+FFA0,
# U+FE00–U+FE0F, U+E0000–U+E007F tags, U+E0100–U+E01EF), line and paragraph separators (U+2028, U+2029),
# interlinear annotation (U+FFF9–U+FFFB) and private use, which no font shows alike (U+E000–U+F8FF, planes 15–16).
# (Lone surrogates never get this far: pydantic refuses them in any str.) Events keep plain `str`, so a name recorded
# before a character joined this list still replays.
_INVISIBLE = ("\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064"
              "\u2066-\u2069\u3164\ue000-\uf8ff\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e007f"
              "\U000e0100-\U000e01ef\U000f0000-\U0010ffff")
_UNSEEN = re.compile(f"[\u0000-\u001f\u007f-\u009f{_INVISIBLE}]")
_SELECTORS = "\ufe00-\ufe0f"
_UNSEEN_IN_NOTES = re.compile(  # notes may keep line breaks and tabs, and an emoji's variation selector (❤️)
    f"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f{_INVISIBLE.replace(_SELECTORS, '')}]")
# An ID-card number (18 characters) or a mobile number (11 digits) inside a name is personal data in the wrong
# place: it would be shown on every view and big screen. Spaces and dashes between the digits do not hide one
# (张三 138 0013 8000).
_LONG_NUMBER = re.compile(r"\d{11,}|\d{17}[\dXx]")
_NUMBER_SEPARATORS = re.compile(r"[\s\-‐-―－·.．]")


# Web markup: a tag's start (`<b>`, `</`, `<script`, `<!--`). No name or note of this record needs one (titles take
# 《》), while `<` before a digit or a space does occur (钢筋直径<10mm). Checked on commands only: events keep what
# they hold, so one recorded before this rule still replays.
_MARKUP = re.compile(r"<[A-Za-z/!?]")


def markup_in(value: object, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The path of the first text in `value` (a model, list or text) holding web markup, or None."""
    if isinstance(value, str):
        return path if _MARKUP.search(value) else None
    if isinstance(value, BaseModel):
        items: list[tuple[str | int, object]] = [(k, getattr(value, k)) for k in type(value).model_fields]
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        if (found := markup_in(item, (*path, key))) is not None:
            return found
    return None


UNSEEN_MESSAGE = "含有不可见的控制字符、零宽字符或方向字符 (contains invisible, control or direction characters)"


def _name(value: str) -> str:
    if _UNSEEN.search(value):
        raise ValueError(UNSEEN_MESSAGE)
    if _LONG_NUMBER.search(_NUMBER_SEPARATORS.sub("", value)):
        raise ValueError("名称中不得含身份证号或手机号 (contains an ID-card or phone number)")
    if value and all(unicodedata.category(c).startswith("M") or c.isspace() for c in value):
        raise ValueError("名称只有附加符号，没有文字 (only combining marks)")
    if _STACKED_MARKS.search(value):  # "Z" and eleven accents drew over the lines around it in every list
        raise ValueError("名称中有叠加的附加符号 (combining marks stacked on one character)")
    return value


# More than three combining marks on one character: no writing of names needs them (Vietnamese takes two).
_STACKED_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{4,}")


def _note(value: str) -> str:
    if _UNSEEN_IN_NOTES.search(value):
        raise ValueError(UNSEEN_MESSAGE)
    return value


def _between(value: dt.date, ahead: dt.timedelta, surely: dt.date) -> dt.date:
    """`value` from the earliest day to `ahead` of today. The latest day allowed only grows, so a day not after
    `surely` (the latest when this module was loaded) needs no clock: asking it for every date of every event read
    back was a tenth of reading an event."""
    if LIMITS.earliest_day <= value <= surely:
        return value
    latest = city_today() + ahead
    if not LIMITS.earliest_day <= value <= latest:
        raise ValueError(f"日期不合理：应在 {LIMITS.earliest_day} 至 {latest} 之间 "
                         f"(must lie between {LIMITS.earliest_day} and {latest})")
    return value


_DAY_AHEAD = dt.timedelta(days=LIMITS.future_days)
_PLAN_AHEAD = dt.timedelta(days=366 * LIMITS.plan_years)  # days, not years: replace(year=…) fails on 29 February
_LOADED = city_today()


def _day(value: dt.date) -> dt.date:
    return _between(value, _DAY_AHEAD, _LOADED + _DAY_AHEAD)


def _done_day(value: dt.date) -> dt.date:
    """A day something already happened (a talk held, a violation seen, points earned): not after the city's today.
    Before, these took the week ahead every fact may (a meeting planned this week), and a talk dated next week was
    counted as held."""
    if LIMITS.earliest_day <= value <= _LOADED:
        return value
    today = city_today()
    if value > today:
        raise ValueError(f"日期不合理：{value} 还没有到，已发生的事只能记到今天（{today}）为止"
                         f" (a day after today, {today})")
    return _between(value, dt.timedelta(0), _LOADED)


def _plan_day(value: dt.date) -> dt.date:
    return _between(value, _PLAN_AHEAD, _LOADED + _PLAN_AHEAD)


def _distinct(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("有重复的名称或编号 (repeats a name or id)")
    return values


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: object) -> object:
    """A day is written YYYY-MM-DD. Left to pydantic, "1614556800" was read as a Unix time (2021-03-01) and "0" as
    1970-01-01 (a spreadsheet's empty cell), and recorded."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and not _ISO_DAY.fullmatch(value)) or not isinstance(
            value, (str, dt.date)):
        raise ValueError(f"日期应写成 YYYY-MM-DD，如 2020-07-01（收到 {str(value)[:30]!r}）"
                         " (a date is YYYY-MM-DD text)")
    if isinstance(value, str):  # made a date here: strict validation takes no text after a validator
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"没有这一天：{value} (no such day)") from None
    return value


Day = Annotated[dt.date, BeforeValidator(_iso_day), AfterValidator(_day)]  # a day something happened
DoneDay = Annotated[dt.date, BeforeValidator(_iso_day), AfterValidator(_done_day)]  # ... and could not be ahead
PlanDay = Annotated[dt.date, BeforeValidator(_iso_day), AfterValidator(_plan_day)]  # a day something is planned for
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_name)]
Note = Annotated[str, Field(max_length=500), AfterValidator(_note)]
ShortNote = Annotated[str, Field(max_length=200), AfterValidator(_note)]  # a reason given in a line or two


class Command(BaseModel):
    """A request to change the record; `command_id` makes retries safe."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Whether it brings a new site into the record (only townships and the city may): RegisterSite.
    opens_site: ClassVar[bool] = False
    command_id: UUID
    correlation_id: UUID | None = None

    @model_validator(mode="after")
    def _no_markup(self) -> Command:
        # Before, a member named `<img src=x onerror=…>` was recorded: shown escaped, but as tags in every roster.
        if (path := markup_in(self)) is not None:
            raise rule_broken(".".join(str(p) for p in path), "不得含网页标记（如 <b>、<script>）",
                              "contains web markup")
        return self

    def fingerprint(self, sender: str) -> str:
        """Who asked what, without the id: the same id sent with another command, body or sender is told apart
        from a retry (and nobody learns another identity's reply by guessing its id)."""
        body = self.model_dump_json(exclude={"command_id"})
        return hashlib.sha256(f"{sender}\n{type(self).__name__}\n{body}".encode()).hexdigest()[:32]


class Event(BaseModel):
    """A fact that happened; the class name is the event type.

    `schema_version` is the shape this code writes; a change of shape raises it and registers an upcaster from
    the version before (`contracts.upcasting`), so events stored in the older shape are read in the new one."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: ClassVar[int] = 1

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


Positive = Annotated[int, Field(gt=0, le=LIMITS.max_count)]
NonNegative = Annotated[int, Field(ge=0, le=LIMITS.max_count)]
Months = Annotated[int, Field(gt=0, le=LIMITS.max_months)]
CostWan = Annotated[Decimal, Field(gt=0, le=LIMITS.max_cost_wan, max_digits=14, decimal_places=2)]
Yuan = Annotated[Decimal, Field(ge=0, le=LIMITS.max_yuan, max_digits=14, decimal_places=2)]
People = Annotated[list[Name], Field(min_length=1, max_length=LIMITS.max_people), AfterValidator(_distinct)]
# Members named by id in one fact (attendees, a team): each once, and no more than a site could hold.
Ids = Annotated[list[Slug], Field(min_length=1, max_length=500), AfterValidator(_distinct)]
SomeIds = Annotated[tuple[Slug, ...], Field(max_length=500), AfterValidator(_distinct)]


def parse(events: dict[str, type[Event]], event_type: str, schema_version: int, payload: dict | str,
          upcasters: Upcasters = UPCASTERS) -> Event:
    """Turn a stored or published payload (decoded, or its JSON text) back into its model in the current shape: the
    upcasters registered for the type bring a payload of an older schema version up to the class's
    `schema_version`, step by step, before it is validated. The payload given is not changed (stored events are
    never rewritten); a version newer than the class, or a missing step, is a `SchemaVersionError`."""
    cls = events[event_type]
    if isinstance(payload, str):
        if schema_version == cls.schema_version:
            # From the text at once (no dict made only to be read), by the model's validator itself: the
            # `model_validate_json` wrapper around it cost a quarter of the validation (measured).
            return cls.__pydantic_validator__.validate_json(payload)
        payload = orjson.loads(payload)
    return cls.model_validate(upcasters.upcast(event_type, schema_version, cls.schema_version, payload))

"""The queries as wire contract: each views query's name, parameters and title, and every service's status."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from contracts.activities import RecordKind
from contracts.base import Slug
from contracts.subjects import query_subject
from contracts.timeline import AsOf

SERVICE = "views"


class NoParams(BaseModel):
    """A query that takes nothing; any field sent is a VALIDATION_FAILED."""

    model_config = ConfigDict(extra="forbid")


class CityQuery(AsOf):
    """The city view, live or as of a moment (contracts.timeline)."""


class SiteQuery(AsOf):
    site_id: Slug


class TownshipQuery(AsOf):
    township: Slug


class DepartmentQuery(AsOf):
    department: Slug  # its code in the city file (contracts.city.City.departments); the sites store its name


class BirthdayQuery(SiteQuery):
    month: Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] | None = None  # YYYY-MM


class RecordsQuery(BaseModel):
    """A site's records that may be retracted (撤销), latest first: of one kind (up to RECORDS_OF_A_KIND), or of every
    kind (up to RECORDS_LATEST, as the site view lists them)."""

    model_config = ConfigDict(extra="forbid")
    site_id: Slug
    record: RecordKind | None = None


RECORDS_LATEST = 100
RECORDS_OF_A_KIND = 1000


@dataclass(frozen=True)
class Query:
    """One query of the views service: request `params` as JSON on `subject`, get `{"ok": ..., "data"|"error"}`."""

    name: str
    params: type[BaseModel]
    title: str
    # Whose data it shows, for the rights check: "city" (anyone), "township", "department" or "site".
    reads: str = "city"
    # The platform's own tools may ask it too: a request from inside the PLATFORM account carries no identity
    # (only `setup` may publish there). Only for figures that name nobody.
    platform: bool = False

    @property
    def subject(self) -> str:
        return query_subject(SERVICE, self.name)

    @property
    def key(self) -> str | None:
        """The required parameter naming what is viewed (`site_id`, `township`, `department`), or None for city-wide
        queries."""
        required = [name for name, field in self.params.model_fields.items() if field.is_required()]
        if len(required) > 1:
            raise TypeError(f"query {self.name} has more than one required parameter: {required}")
        return required[0] if required else None


QUERIES: dict[str, Query] = {
    q.name: q
    for q in (
        Query("city", CityQuery, "全市视图"),
        Query("site", SiteQuery, "工地视图", reads="site"),
        Query("township", TownshipQuery, "乡镇视图", reads="township"),
        Query("department", DepartmentQuery, "主管部门视图", reads="department"),
        Query("birthdays", BirthdayQuery, "政治生日", reads="site"),
        Query("talks", SiteQuery, "待谈话", reads="site"),
        Query("records", RecordsQuery, "可撤销的记录", reads="site"),
        Query("status", NoParams, "视图进度", platform=True),
    )
}


# ---- status: every service answers `qry.<service>.status` ----------------------------------------------------

STATUS = "status"


def status_subject(service: str) -> str:
    """Where a service answers its status: the views (registry query `status`) and every writing service (kit)."""
    return query_subject(service, STATUS)


# Platform-only requests: `ops.>` is not exported to the USERS account, and only `setup` may publish on it.
OPS_PREFIX = "ops"


def retry_subject(service: str) -> str:
    """Where a service re-applies its consumers' dead letters when the platform's operator asks."""
    return f"{OPS_PREFIX}.{service}.deadletters.retry"


def timers_subject(service: str) -> str:
    """Where a writing service with timers runs a timer pass now when the platform's operator asks (the demo's
    seeder, once the facts that make timers due are recorded)."""
    return f"{OPS_PREFIX}.{service}.timers.run"


class DeadLetter(BaseModel):
    """An event a consumer passed without applying it, described by ids, type and error code: never its payload."""

    stream_seq: int
    event_type: str | None  # None: the message was not an event
    event_id: str | None
    stream_id: str | None
    site_id: str | None
    code: str  # the error's type, and SQLSTATE for a database error (gongdi.bus.consumer.error_code)
    error: str  # type and place (gongdi.bus.consumer.describe)
    recorded_at: datetime
    retries: int = 0
    last_retry_at: datetime | None = None


class ConsumerStatus(BaseModel):
    """One ordered consumer: what it applied of its stream, and what it passed as dead letters."""

    service: str  # the service running it
    consumer: str  # its durable name
    stream: str
    applied: int  # its checkpoint: the last stream sequence applied or passed
    published: int  # the stream's last sequence when asked
    dead_letters: int
    letters: list[DeadLetter]  # in stream order, the first LETTERS_LISTED of them


LETTERS_LISTED = 100


# The services as people read them (status sheets, /health), beside their internal names.
SERVICE_NAMES = {"views": "视图服务", "membership": "党员管理服务", "activities": "党建活动服务", "liaison": "联建服务"}


class ServiceStatus(BaseModel):
    """A service's answer to `status`: a writing service's events recorded and published, and its consumers."""

    service: str
    stream: str | None = None  # the writing service's own stream (None for the views)
    recorded: int | None = None  # events in its store
    published: int | None = None  # its stream's last sequence
    consumers: list[ConsumerStatus] = []


class RetryResult(BaseModel):
    """What became of one dead letter when it was retried."""

    service: str
    consumer: str
    stream: str
    stream_seq: int
    event_type: str | None
    site_id: str | None
    # applied: its handler committed and the letter is gone; failed: the handler failed again, kept;
    # refused: it cannot be applied (not an event, or it does not continue its stream), kept;
    # gone: another retry took it meanwhile.
    outcome: Literal["applied", "failed", "refused", "gone"]
    code: str | None = None

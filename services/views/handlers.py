"""Views query handlers and the live-change publisher."""
from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import asyncpg
import orjson
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from contracts.base import Slug
from contracts.envelope import Envelope
from contracts.geo import CITY
from contracts.replies import ErrorInfo, QueryReply
from contracts.subjects import live_subject
from services.views import activity_queries, liaison_queries, queries


class SiteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: Slug


class TownshipQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    township: Slug


class BirthdayQuery(SiteQuery):
    month: Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] | None = None  # YYYY-MM


def _error(code: str, message: str, field: str | None = None) -> bytes:
    return QueryReply(ok=False, error=ErrorInfo(code=code, message=message, field=field)).model_dump_json().encode()


def _invalid(exc: ValidationError) -> bytes:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return _error("VALIDATION_FAILED", f"{field}: {first['msg']}", field)


Q = TypeVar("Q", bound=BaseModel)


def takes(model: type[Q]) -> Callable:
    """A query handler receives its parsed query; bad input is answered with the typed error."""

    def wrap(handler: Callable[[Any, Q], Awaitable[bytes]]) -> Callable[[Any, bytes], Awaitable[bytes]]:
        async def parsed(self: Any, raw: bytes) -> bytes:
            try:
                query = model.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                return _invalid(exc)
            return await handler(self, query)

        return parsed

    return wrap


class ViewQueries:
    def __init__(self, pool: asyncpg.Pool, schema: str, js: JetStreamContext, streams: list[str],
                 today: Callable[[], dt.date] = dt.date.today):
        self.pool = pool
        self.schema = schema
        self.js = js
        self.streams = streams
        self.today = today

    async def status(self, _raw: bytes) -> bytes:
        """How far the views are behind each stream they read: applied sequence against the stream's last."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT stream, stream_seq FROM {self.schema}.consumer_checkpoint")
        applied = {r["stream"]: r["stream_seq"] for r in rows}
        streams = []
        for name in self.streams:
            last = (await self.js.stream_info(name)).state.last_seq
            streams.append({"stream": name, "last_seq": last, "applied": applied.get(name, 0),
                            "behind": last - applied.get(name, 0)})
        return orjson.dumps({"ok": True, "data": {"streams": streams}})

    async def city(self, _raw: bytes) -> bytes:
        async with self.pool.acquire() as conn:
            data = await queries.city(conn, self.schema)
            data["activities"] = await activity_queries.summary(conn, self.schema, None, self.today())
            data["liaison"] = await liaison_queries.summary(conn, self.schema, "city", None, self.today())
        return orjson.dumps({"ok": True, "data": data})

    @takes(TownshipQuery)
    async def township(self, query: TownshipQuery) -> bytes:
        async with self.pool.acquire() as conn:
            city = await queries.city(conn, self.schema)
            row = next((t for t in city["townships"] if t["township"] == query.township), None)
            if row is None:
                return _error("TOWNSHIP_NOT_FOUND", f"乡镇 {query.township} 没有登记的工地", "township")
            row["liaison"] = await liaison_queries.summary(conn, self.schema, "township", query.township,
                                                           self.today())
        return orjson.dumps({"ok": True, "data": row})

    @takes(SiteQuery)
    async def site(self, query: SiteQuery) -> bytes:
        async with self.pool.acquire() as conn:
            data = await queries.site(conn, self.schema, query.site_id)
            if data is None:
                return _error("SITE_NOT_FOUND", f"工地 {query.site_id} 不在视图中 (no such site)", "site_id")
            data["activities"] = await activity_queries.summary(conn, self.schema, query.site_id, self.today())
            data["departed_holders"] = await activity_queries.departed_holders(conn, self.schema, query.site_id)
            data["liaison"] = await liaison_queries.summary(conn, self.schema, "site", query.site_id, self.today())
        return orjson.dumps({"ok": True, "data": data})

    @takes(BirthdayQuery)
    async def birthdays(self, query: BirthdayQuery) -> bytes:
        today = self.today()
        year, month = (int(x) for x in query.month.split("-")) if query.month else (today.year, today.month)
        async with self.pool.acquire() as conn:
            rows = await activity_queries.birthdays(conn, self.schema, query.site_id, year, month)
            waiting = await activity_queries.not_celebrated(conn, self.schema, query.site_id, year)
        return orjson.dumps({"ok": True, "data": {"site_id": query.site_id, "month": f"{year}-{month:02d}",
                                                   "members": rows, "not_celebrated_this_year": waiting}})

    @takes(SiteQuery)
    async def talks(self, query: SiteQuery) -> bytes:
        async with self.pool.acquire() as conn:
            rows = await activity_queries.open_talks(conn, self.schema, query.site_id, self.today())
        return orjson.dumps({"ok": True, "data": {"site_id": query.site_id, "open": rows}})


class LivePublisher:
    """After each commit, tells dashboards which sites changed (live.site.<id>) and that the city did."""

    def __init__(self, nc: NATS):
        self.nc = nc

    async def changed(self, events: list[Envelope]) -> None:
        """One message per site changed, carrying the last position applied from the writing service's log."""
        sites: dict[tuple[str, str], int] = {}
        for e in events:
            if e.site_id:
                key = (e.site_id, e.service)
                sites[key] = max(sites.get(key, 0), e.position)
        for (site_id, service), position in sites.items():
            body = {"site_id": site_id, "service": service, "position": position}
            await self.nc.publish(live_subject("site", site_id), orjson.dumps(body))
        last = events[-1]
        await self.nc.publish(
            live_subject("city", CITY),
            orjson.dumps({"events": len(events), "sites": sorted({s for s, _ in sites}),
                          "last_event": str(last.event_id)}),
        )

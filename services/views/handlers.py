"""Views query handlers, each bound to its entry in contracts.queries, and the live-change publisher."""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from pydantic import ValidationError

from contracts.city import City
from contracts.envelope import Envelope
from contracts.errors import validation_error
from contracts.identity import Identity, Role
from contracts.queries import (
    QUERIES,
    RECORDS_LATEST,
    RECORDS_OF_A_KIND,
    SERVICE,
    BirthdayQuery,
    CityQuery,
    DepartmentQuery,
    NoParams,
    Query,
    RecordsQuery,
    ServiceStatus,
    SiteQuery,
    TownshipQuery,
)
from contracts.replies import ErrorInfo, QueryReply
from contracts.subjects import live_subject
from contracts.timeline import Window, city_today, cutoff, describe
from gongdi.bus.asof import SCRATCH, Keep, OneConnection, Past
from gongdi.bus.deadletters import consumer_status
from gongdi.service.process import Request
from services.views import activities, development, liaison, membership, mobility


def _error(code: str, message: str, field: str | None = None) -> bytes:
    return QueryReply(ok=False, error=ErrorInfo(code=code, message=message, field=field)).model_dump_json().encode()


def _invalid(exc: ValidationError) -> bytes:
    return QueryReply(ok=False, error=validation_error(exc)).model_dump_json().encode()


async def snapshot(conn: asyncpg.Connection, schema: str) -> dict[str, Any]:
    """What a reply read: `seq`, the sum of the views' consumer checkpoints (each only grows as events are
    applied, and moves in the transaction of their effects), and `at`, the time of the reading transaction.
    Read in the transaction of the figures it marks, a page can drop any reply with a smaller `seq` than one it
    has shown. (A stream repair, `gongdi repair-stream`, renumbers checkpoints: after one, seq may start lower.)"""
    row = await conn.fetchrow(
        f"SELECT coalesce(sum(stream_seq), 0)::bigint AS seq, now() AS at FROM {schema}.consumer_checkpoint")
    return {"seq": row["seq"], "at": row["at"].isoformat()}


Reply = Callable[[Any, Request], Awaitable[bytes]]


def query(q: Query) -> Callable[[Callable[[Any, Any], Awaitable[bytes]]], Reply]:
    """Implements registry query `q`: the method receives its parsed parameters once the sender's rights are
    checked; bad input gets the typed error, a denied read `FORBIDDEN`."""

    def wrap(handler: Callable[[Any, Any], Awaitable[bytes]]) -> Reply:
        @functools.wraps(handler)
        async def parsed(self: ViewQueries, request: Request) -> bytes:
            # No identity: a request from inside PLATFORM (only `setup` may publish there), or none the server
            # asserted. Only a query open to the platform's own tools answers it.
            if request.sender is None and not q.platform:
                return _error("FORBIDDEN", "请求没有经平台认证的身份 (no identity asserted by the server)"
                              " [NO_IDENTITY]", "NO_IDENTITY")
            try:
                params = q.params.model_validate_json(request.body or b"{}")
            except ValidationError as exc:
                return _invalid(exc)
            if request.sender is not None and not await self.may_read(request.sender, q, params):
                return _error("FORBIDDEN", f"{request.sender.name} 无权查看这一{q.title} [NOT_YOURS]", "NOT_YOURS")
            if getattr(params, "as_of", None) is not None:
                return await self.as_of(handler, params)
            return await handler(self, params)

        parsed.implements = q  # type: ignore[attr-defined]
        return parsed

    return wrap


def implementations(cls: type) -> dict[str, Reply]:
    """Query name → the method of `cls` implementing it; raises unless every registered query has exactly one."""
    found: dict[str, list[str]] = {}
    methods: dict[str, Reply] = {}
    for attr, value in vars(cls).items():
        q = getattr(value, "implements", None)
        if isinstance(q, Query):
            found.setdefault(q.name, []).append(attr)
            methods[q.name] = value
            if QUERIES.get(q.name) is not q:
                raise TypeError(f"{cls.__name__}.{attr} implements {q.name!r}, which is not the registered query")
    problems = [f"no implementation of query {name!r}" for name in QUERIES if name not in found]
    problems += [f"query {name!r} is implemented twice ({', '.join(attrs)})"
                 for name, attrs in found.items() if len(attrs) > 1]
    if problems:
        raise TypeError(f"{cls.__name__}: " + "; ".join(problems))
    return methods


class ViewQueries:
    """The registry's queries over one views schema; `implementations(ViewQueries)` maps each name to its method."""

    def __init__(self, pool: asyncpg.Pool | OneConnection, schema: str, js: JetStreamContext, streams: list[str],
                 city: City, today: Callable[[], dt.date] = city_today, past: Past | None = None):
        self.pool = pool
        self.schema = schema
        self.js = js
        self.streams = streams
        self.city_config = city  # not `city`: that is the query of that name
        self.today = today
        self.past = past

    async def as_of(self, handler: Callable[[Any, Any], Awaitable[bytes]], params: Any) -> bytes:
        """The query over the log replayed up to the moment asked, in the sense asked (contracts.timeline); its
        reply says which moment, which sense, and how many events of the log it shows."""
        if self.past is None:
            return _error("AS_OF_UNAVAILABLE", "此处不能按时点查询 (no log to replay here)", "as_of")
        day = cutoff(params.as_of)[0]

        def keep() -> Keep:
            window = Window(params.as_of, params.as_of_basis)  # a window remembers what it saw: one per replay
            return lambda env, projection: window.includes(
                env.recorded_at, env.stream_id,
                lambda: projection.contract.parse_event(env.type, env.schema_version, env.payload))

        async with self.past.tables((params.as_of.isoformat(), params.as_of_basis.value), keep) as (conn, applied,
                                                                                                   read):
            then = ViewQueries(OneConnection(conn), SCRATCH, self.js, self.streams, self.city_config,
                               today=lambda: day)
            reply = orjson.loads(await handler(then, params))
        if reply.get("ok"):
            reply["data"]["as_of"] = {**describe(params.as_of, params.as_of_basis), "events": applied, "read": read}
            reply["data"].pop("snapshot", None)  # a past view is not a step of the live one
        elif (reply.get("error") or {}).get("code") == "SITE_NOT_FOUND":  # not yet then, perhaps: say when
            shown, site = describe(params.as_of, params.as_of_basis)["title"], getattr(params, "site_id", "")
            reply["error"]["message"] = (f"{shown}：工地 {site} 还不在视图中（尚未登记或尚未记录），或编号有误"
                                         " (no such site at that moment)")
        return orjson.dumps(reply)

    @asynccontextmanager
    async def consistent(self) -> AsyncIterator[asyncpg.Connection]:
        """One read-only REPEATABLE READ transaction: every statement of a reply sees the same committed state,
        the one its `snapshot` marks."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield conn

    async def may_read(self, sender: Identity, q: Query, params: Any) -> bool:
        if q.reads == "township":
            return sender.may_read_township(params.township)
        if q.reads == "department":
            return sender.may_read_department(params.department)
        if q.reads == "site":
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(f"SELECT township, department FROM {self.schema}.site WHERE site_id = $1",
                                          params.site_id)
            if row is None:  # nothing to show; the query itself says so, to those who may read more than one site
                # A secretary was told "not in the view" for a made-up id and "no right" for another's real site:
                # which ids exist, project by project. Their own site only, existing or not yet.
                if sender.role is Role.SITE:
                    return params.site_id == sender.site
                return sender.role is not Role.DASHBOARD
            department = self.city_config.department_code(row["department"])
            return sender.may_read_site(row["township"], department, params.site_id)
        return True

    @query(QUERIES["status"])
    async def status(self, _: NoParams) -> bytes:
        """Where each consumer of the views stands: applied sequence against its stream's last, and the dead
        letters it passed (event type, site, error code; never a payload value)."""
        consumers = [await consumer_status(self.pool, self.js, self.schema, SERVICE, SERVICE, name)
                     for name in self.streams]
        return orjson.dumps({"ok": True, "data": ServiceStatus(service=SERVICE, consumers=consumers)
                             .model_dump(mode="json")})

    @query(QUERIES["city"])
    async def city(self, _: CityQuery) -> bytes:
        today = self.today()
        async with self.consistent() as conn:
            data = await membership.city(conn, self.schema, self.city_config, today=today)
            data["development"] = await development.figures(
                conn, self.schema, membership.scope_filter(self.schema, "city"), None, today)
            data["activities"] = await activities.summary(conn, self.schema, "city", None, today)
            data["liaison"] = await liaison.summary(conn, self.schema, "city", None, today)
            figures = await mobility.summary(conn, self.schema, "city", None)
            data["mobility"] = {k: figures[k] for k in ("transfer_prompts_open", "escalated", "contact_lost")}
            data["snapshot"] = await snapshot(conn, self.schema)
        return orjson.dumps({"ok": True, "data": data})

    @query(QUERIES["township"])
    async def township(self, params: TownshipQuery) -> bytes:
        today, code = self.today(), params.township
        async with self.consistent() as conn:
            figures = await membership.area(conn, self.schema, "township", code, self.city_config, today=today)
            if figures is None and code not in self.city_config.townships:
                return _error("TOWNSHIP_NOT_FOUND",
                              f"乡镇 {code} 不在本市的配置中，也没有登记的工地 (no such township)", "township")
            # A township of the city without a site yet (or, as of a day, before its first) is a view of zeros.
            data = {"township": code, "name": self.city_config.township_name(code),
                    **(figures or membership.no_sites()),
                    "activities": await activities.summary(conn, self.schema, "township", code, today),
                    "liaison": await liaison.summary(conn, self.schema, "township", code, today),
                    "mobility": await mobility.summary(conn, self.schema, "township", code),
                    "development": await development.figures(
                conn, self.schema, membership.scope_filter(self.schema, "township"), code, today),
                    "snapshot": await snapshot(conn, self.schema)}
        return orjson.dumps({"ok": True, "data": data})

    @query(QUERIES["department"])
    async def department(self, params: DepartmentQuery) -> bytes:
        """A competent department's sites: the township's figures over the sites it supervises. The city file
        maps its code to its name, which is what the sites record."""
        today, code = self.today(), params.department
        name = self.city_config.departments.get(code)
        if name is None:
            return _error("DEPARTMENT_NOT_FOUND", f"主管部门 {code} 不在本市的配置中 (no such department)",
                          "department")
        async with self.consistent() as conn:
            figures = await membership.area(conn, self.schema, "department", name, self.city_config, today=today)
            data = {"department": code, "name": name,
                    **(figures or membership.no_sites()),
                    "activities": await activities.summary(conn, self.schema, "department", name, today),
                    "liaison": await liaison.summary(conn, self.schema, "department", name, today),
                    "mobility": await mobility.summary(conn, self.schema, "department", name),
                    "development": await development.figures(
                conn, self.schema, membership.scope_filter(self.schema, "department"), name, today),
                    "snapshot": await snapshot(conn, self.schema)}
        return orjson.dumps({"ok": True, "data": data})

    @query(QUERIES["site"])
    async def site(self, params: SiteQuery) -> bytes:
        today = self.today()
        async with self.consistent() as conn:
            data = await membership.site(conn, self.schema, params.site_id, self.city_config, today=today)
            if data is None:
                return _no_site(params.site_id)
            data["activities"] = await activities.summary(conn, self.schema, "site", params.site_id, today)
            data["departed_holders"] = await activities.departed_holders(conn, self.schema, params.site_id)
            data["points_ranking"] = await activities.points_ranking(conn, self.schema, params.site_id, today)
            data["meetings_due"] = await activities.branch_meetings_due(conn, self.schema, "site", params.site_id,
                                                                        today)
            data["records"] = await activities.records(conn, self.schema, params.site_id)
            data["liaison"] = await liaison.summary(conn, self.schema, "site", params.site_id, today)
            data["liaison"] |= await liaison.site_detail(conn, self.schema, params.site_id, today)
            data["mobility"] = await mobility.site_todo(conn, self.schema, params.site_id)
            data["development"] = await development.figures(
                conn, self.schema, membership.scope_filter(self.schema, "site"), params.site_id, today)
            data["development_candidates"] = await development.candidates(conn, self.schema, params.site_id)
            data["snapshot"] = await snapshot(conn, self.schema)
        return orjson.dumps({"ok": True, "data": data})

    @query(QUERIES["birthdays"])
    async def birthdays(self, params: BirthdayQuery) -> bytes:
        today = self.today()
        year, month = (int(x) for x in params.month.split("-")) if params.month else (today.year, today.month)
        async with self.pool.acquire() as conn:
            if (name := await self._site_name(conn, params.site_id)) is None:
                return _no_site(params.site_id)
            rows = await activities.birthdays(conn, self.schema, params.site_id, year, month)
            waiting = await activities.not_celebrated(conn, self.schema, params.site_id, year)
        return orjson.dumps({"ok": True, "data": {"site_id": params.site_id, "site_name": name,
                                                   "month": f"{year}-{month:02d}", "members": rows,
                                                   "not_celebrated_this_year": waiting}})

    @query(QUERIES["talks"])
    async def talks(self, params: SiteQuery) -> bytes:
        async with self.pool.acquire() as conn:
            if (name := await self._site_name(conn, params.site_id)) is None:
                return _no_site(params.site_id)
            rows = await activities.open_talks(conn, self.schema, params.site_id, self.today())
        return orjson.dumps({"ok": True, "data": {"site_id": params.site_id, "site_name": name, "open": rows}})

    @query(QUERIES["records"])
    async def records(self, params: RecordsQuery) -> bytes:
        limit = RECORDS_OF_A_KIND if params.record else RECORDS_LATEST
        async with self.pool.acquire() as conn:
            if (name := await self._site_name(conn, params.site_id)) is None:
                return _no_site(params.site_id)
            rows = await activities.records(conn, self.schema, params.site_id, limit + 1, params.record)
        # one more than shown asked for, to say whether the list was cut
        return orjson.dumps({"ok": True, "data": {"site_id": params.site_id, "site_name": name,
                                                   "records": rows[:limit], "more": len(rows) > limit}})

    async def _site_name(self, conn: asyncpg.Connection, site_id: str) -> str | None:
        """The project's name, so a list of one site's people says which site it is (None: not registered, and the
        list refused as SITE_NOT_FOUND like the site view)."""
        return await conn.fetchval(f"SELECT name FROM {self.schema}.site WHERE site_id = $1", site_id)


def _no_site(site_id: str) -> bytes:
    """A site no event registered: a mistyped id, not a site with nothing in it."""
    return _error("SITE_NOT_FOUND", f"工地 {site_id} 不在视图中，请检查编号 (no such site)", "site_id")


class LivePublisher:
    """After each commit, tells dashboards which sites changed (live.site.<id>) and that the city did."""

    def __init__(self, nc: NATS, city: City):
        self.nc = nc
        self.city = city

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
            live_subject("city", self.city.code),
            orjson.dumps({"events": len(events), "sites": sorted({s for s, _ in sites}),
                          "last_event": str(last.event_id)}),
        )

"""What a service declares, and the one composition that turns a declaration into its processes.

A writing service's `app.py` is a `WritingService(...)`: its commands, repository, decide/advise, migrations and
the policies it runs over other services' events. From that the kit builds the FastStream app (`serve`), the
relay (`relay`) and the idempotent `setup`. A reading service (the views) is a `ReadingService(...)`: its
projections, queries and migrations, giving `serve`, `setup`, `rebuild` and `swap` (gongdi.bus.shadow).
`python -m services.<name> …` calls `main`.

Every service also gets, from the kit, what the platform's operator needs of its consumers: a writing service
answers `qry.<name>.status` (events recorded and published, and each policy consumer's position and dead
letters; the views answer the registry's `status`), and every service re-applies its consumers' dead letters on
the platform-only `ops.<name>.deadletters.retry`. A writing service also answers `qry.<name>.history`: the events
of its log touching a site, member, case or branch, or following given events (contracts.history); one with timers
runs a timer pass on the platform-only `ops.<name>.timers.run`.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import structlog
from faststream import FastStream
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from pydantic import ValidationError

from contracts.base import Command, Event
from contracts.city import City
from contracts.envelope import Envelope
from contracts.history import HistoryQuery, history_subject, may_ask_history
from contracts.identity import Identity, Role
from contracts.queries import (
    ConsumerStatus,
    NoParams,
    Query,
    RetryResult,
    ServiceStatus,
    retry_subject,
    status_subject,
    timers_subject,
)
from contracts.replies import ErrorInfo
from contracts.subjects import command_subscription, stream_name
from gongdi.bus import deadletters
from gongdi.bus.asof import Past
from gongdi.bus.consumer import Handler, OrderedConsumer
from gongdi.bus.heads import HEADS_STREAM, HeadPublisher, ensure_heads_stream
from gongdi.bus.projection import Projection
from gongdi.bus.relay import Relay, fill_from_start
from gongdi.bus.replay import Progress, rebuild
from gongdi.bus.shadow import (
    BATCH,
    REFUSED_EXIT,
    LettersRefused,
    Outcome,
    ShadowRebuild,
    check_version,
    shadow_of,
    stored_version,
)
from gongdi.bus.shadow import Feed as Source
from gongdi.bus.streams import ensure_durable, ensure_event_stream, require_stream, said
from gongdi.service.logging import configure
from gongdi.service.pipeline import CommandPipeline, Repository, no_advice, site_key
from gongdi.service.process import (
    SERVERS_GONE,
    Background,
    Request,
    connect_nats,
    create_pool,
    invalid,
    migrate_schema,
    origin_of,
    refusal,
    reply_handler,
    role_password,
    run_until_signalled,
    set_up,
)
from gongdi.service.process import broker as make_broker
from gongdi.service.settings import Settings
from gongdi.service.timers import TimerRunner, Timers, clock
from gongdi.store.heads import HeadKey
from gongdi.store.history import read_history
from gongdi.store.migrations import Migration
from gongdi.store.postgres import PostgresEventStore


@dataclass(frozen=True)
class Policy:
    """Events of another service applied in this service's transactions (an ordered, exactly-once consumer)."""

    source: str  # the service whose stream it reads; the durable consumer is named after the reading service
    handler: Callable[[asyncpg.Pool], Handler]


# Who may read a writing service's status: it names no one (counts, event types, site ids, error codes), but it is
# the platform's state, not a township's: the city, the auditor, the dashboard and the platform's own tools.
STATUS_READERS = frozenset({Role.CITY, Role.AUDITOR, Role.DASHBOARD, Role.PLATFORM})


def may_read_status(sender: Identity | None) -> bool:
    """None is a request from inside the PLATFORM account, where only `setup` may publish on `qry.>`."""
    return sender is None or sender.role in STATUS_READERS


@dataclass(frozen=True)
class Feed:
    """One ordered consumer of a service, as its status and its retry see it."""

    source: str  # the service whose stream it reads
    handler: Handler
    after_commit: Callable[[list[Envelope]], Awaitable[None]] | None = None

    @property
    def stream(self) -> str:
        return stream_name(self.source)


class Consumers:
    """A service's consumers, for the operator: where each stands, and the retry of their dead letters."""

    def __init__(self, service: str, pool: asyncpg.Pool, js: JetStreamContext, feeds: Sequence[Feed],
                 log: structlog.BoundLogger):
        self.service = service  # also the schema and the durable name of each of its consumers
        self.pool = pool
        self.js = js
        self.feeds = list(feeds)
        self.log = log

    async def status(self) -> list[ConsumerStatus]:
        return [await deadletters.consumer_status(self.pool, self.js, self.service, self.service, self.service,
                                                  feed.stream) for feed in self.feeds]

    async def retry(self) -> list[RetryResult]:
        results: list[RetryResult] = []
        for feed in self.feeds:
            results += await deadletters.retry(self.pool, self.service, self.service, self.service, feed.stream,
                                               feed.handler, feed.after_commit, self.log)
        return results


def _params_refused(request: Request) -> bytes | None:
    try:
        NoParams.model_validate_json(request.body or b"{}")
    except ValidationError as exc:
        return invalid(exc)
    return None


def _operator_only(request: Request, doing: str) -> bytes | None:
    """The refusal of an `ops.` request not from the platform's operator, or with parameters (they take none)."""
    if request.sender is not None:  # `ops.>` is not exported: a person's request cannot even arrive here
        return refusal("FORBIDDEN", f"{request.sender.name} 不能{doing} (platform only) [PLATFORM_ONLY]",
                       "PLATFORM_ONLY")
    return _params_refused(request)


def serve_retry(broker: Any, service: str, bound: list[Consumers]) -> None:
    """`ops.<service>.deadletters.retry`: the platform's operator re-applies the service's dead letters. One at a
    time in a process; the database locks order it with the consumers and with other processes."""

    async def retry(request: Request) -> bytes:
        if (refused := _operator_only(request, "重新处理死信")) is not None:
            return refused
        results = await bound[0].retry()
        return orjson.dumps({"ok": True, "data": {"service": service,
                                                  "results": [r.model_dump(mode="json") for r in results]}})

    reply_handler(broker, retry_subject(service), service, 1, retry)


def serve_timer_pass(broker: Any, service: str, runners: list[TimerRunner]) -> None:
    """`ops.<service>.timers.run`: a timer pass now, the same as the one at start, for the platform's operator (the
    demo's seeder asks once its facts are recorded, instead of their prompts waiting for the next interval). What
    is due fires once whoever asks and however often: the firings' ids and the rules, as with two replicas."""

    async def run(request: Request) -> bytes:
        if (refused := _operator_only(request, "触发定时任务")) is not None:
            return refused
        if not runners:  # timers off (timer_interval 0): nothing fires, and the caller is told so
            return orjson.dumps({"ok": True, "data": {"service": service, "timers": False, "recorded": 0}})
        recorded = await runners[0].fire()
        return orjson.dumps({"ok": True, "data": {"service": service, "timers": True, "recorded": recorded}})

    reply_handler(broker, timers_subject(service), service, 1, run)


@dataclass(frozen=True)
class WritingService:
    name: str  # also its schema, its stream's service token and its queue group
    commands: dict[str, type[Command]]
    repository: Callable[[asyncpg.Pool, City], Repository]
    decide: Callable[[Command, Any], list[Event]]
    migrations: Sequence[Migration]
    routines: Sequence[Callable[[str], str]] = ()
    advise: Callable[[Command, Any], list[ErrorInfo]] = no_advice
    policies: Sequence[Policy] = field(default_factory=tuple)
    key: Callable[[Command], str] = site_key
    timers: Timers | None = None  # commands it gives itself when due (gongdi.service.timers)

    def pipeline(self, repository: Repository, log: structlog.BoundLogger | None = None,
                 city: City | None = None) -> CommandPipeline:
        return CommandPipeline(self.commands, repository, self.decide, self.advise, self.key, log,
                               townships=city.townships if city else None)

    def app(self, settings: Settings) -> FastStream:
        log = configure(settings.log_format, settings.log_level, self.name)
        broker = make_broker(settings)
        bound: list[CommandPipeline] = []  # filled in the lifespan, before the broker starts
        consumers: list[Consumers] = []  # likewise
        for command in self.commands:
            reply_handler(broker, command_subscription(self.name, command), self.name, settings.workers,
                          lambda request, command=command: bound[0].handle(command, request))
        reply_handler(broker, status_subject(self.name), self.name, 4, lambda request: self.status(request, consumers))
        reply_handler(broker, history_subject(self.name), self.name, 4,
                      lambda request: self.history(request, consumers))
        serve_retry(broker, self.name, consumers)
        runners: list[TimerRunner] = []  # likewise, when the service has timers and they are on
        if self.timers is not None:
            serve_timer_pass(broker, self.name, runners)

        @asynccontextmanager
        async def lifespan() -> AsyncIterator[None]:
            pool = await create_pool(settings)
            # Every writer has a bus connection of its own: its policies consume on it, and its status reads the
            # streams' last sequences.
            nc = await connect_nats(settings, f"{self.name}-policy" if self.policies else f"{self.name}-status")
            tasks = []
            try:
                feeds = []
                for policy in self.policies:
                    await require_stream(nc.jetstream(), policy.source)
                    handler = policy.handler(pool)
                    consumer = OrderedConsumer(nc, pool, self.name, policy.source, self.name, handler,
                                               settings.consumer_batch, settings.consumer_max_deliver, log=log)
                    feeds.append(Feed(policy.source, handler))
                    # A dead policy must take the process down with it, so that the supervisor restarts it.
                    tasks.append(Background(consumer.run, lambda: os.kill(os.getpid(), signal.SIGTERM)))
                consumers.append(Consumers(self.name, pool, nc.jetstream(), feeds, log))
                if settings.head_key:  # the signed log heads (gongdi.bus.heads); the last one on shutdown
                    heads = HeadPublisher(pool, nc.jetstream(), self.name, HeadKey(settings.head_key),
                                          settings.head_interval, log)
                    tasks.append(Background(heads.run, lambda: None))
                city = settings.city()
                bound.append(self.pipeline(self.repository(pool, city), log, city))
                if self.timers is not None and settings.timer_interval > 0:
                    # A failing pass takes the process down like a dead policy: the restart's pass fires again.
                    runner = TimerRunner(self.timers, pool, bound[0], clock(settings), settings.timer_interval, log)
                    runners.append(runner)
                    if settings.timers_on_commands:
                        bound[0].listen(runner.touched)
                    tasks.append(Background(runner.run, lambda: os.kill(os.getpid(), signal.SIGTERM)))
                log.info(f"{self.name} ready", commands=list(self.commands))
                yield
            finally:
                for task in tasks:
                    await task.close()
                await nc.close()
                await pool.close()

        return FastStream(broker, lifespan=lifespan, logger=None)

    async def status(self, request: Request, bound: list[Consumers]) -> bytes:
        """`qry.<name>.status`: events recorded and published, then each policy consumer (applied position, dead
        letters). The consumers are read before the count, and the count before the stream: compared, an earlier
        reading can only make the platform look further behind, never caught up too soon."""
        if not may_read_status(request.sender):
            who = request.sender.name if request.sender else ""
            return refusal("FORBIDDEN", f"{who} 无权查看 {self.name} 的状态 [NOT_YOURS]", "NOT_YOURS")
        refused = _params_refused(request)
        if refused is not None:
            return refused
        ops = bound[0]
        consumers = await ops.status()
        recorded = await ops.pool.fetchval(f"SELECT count(*) FROM {self.name}.events")
        published = (await ops.js.stream_info(stream_name(self.name))).state.last_seq
        data = ServiceStatus(service=self.name, stream=stream_name(self.name), recorded=recorded,
                             published=published, consumers=consumers)
        return orjson.dumps({"ok": True, "data": data.model_dump(mode="json")})

    async def history(self, request: Request, bound: list[Consumers]) -> bytes:
        """`qry.<name>.history`: the events of this service's log a history asks for (contracts.history), those on
        sites the sender may read. A site's or branch's history on a site the sender may not read is refused; a
        member's or case's lists what it may read and counts the rest as `withheld`."""
        sender = request.sender
        if sender is None:  # histories name people: never for the platform's anonymous tools
            return refusal("FORBIDDEN", "请求没有经平台认证的身份 (no identity asserted by the server) [NO_IDENTITY]",
                           "NO_IDENTITY")
        if not may_ask_history(sender):
            return refusal("FORBIDDEN", f"{sender.name} 无权查看历史记录：历史记录含人员姓名 [NOT_YOURS]", "NOT_YOURS")
        try:
            params = HistoryQuery.model_validate_json(request.body or b"{}")
        except ValidationError as exc:
            return invalid(exc)
        if params.kind in ("site", "branch") and sender.role is Role.SITE and params.id != sender.site:
            return refusal("FORBIDDEN", f"{sender.name} 只能查看本工地 {sender.site} 的历史 [NOT_YOURS]", "NOT_YOURS")
        found = await read_history(bound[0].pool, self.name, params, sender)
        if params.kind in ("site", "branch") and found.withheld:
            return refusal("FORBIDDEN", f"工地 {params.id} 不属于 {sender.name} 的辖区，无权查看其历史 [NOT_YOURS]",
                           "NOT_YOURS")
        data = {"service": self.name, "kind": params.kind, "id": params.id,
                "events": [{"service": self.name, **e} for e in found.events], "withheld": found.withheld,
                "truncated": found.truncated}
        return orjson.dumps({"ok": True, "data": data}, default=str)

    async def setup(self, settings: Settings, password: str | None = None) -> list[str]:
        """Idempotent: migrations (and the login role, `password` its password), the service's stream, and its
        consumers of other services' events."""
        lines = [await migrate_schema(settings, self.name, self.migrations, self.routines, password)]
        nc = await connect_nats(settings, f"{self.name}-setup")
        try:
            js = nc.jetstream()
            made = await ensure_event_stream(js, self.name, settings.stream_replicas)
            heads = await ensure_heads_stream(js, settings.stream_replicas)
            lines.append(f"签名日志头流 {HEADS_STREAM}：{said(heads)}")
            if made == "created":  # first setup, an upgrade from release 0.1 (streams in another account), a repair
                await fill_from_start(settings.database_url, self.name)
            lines.append(f"{self.name} 的事件流：{said(made)}")
            for policy in self.policies:
                await require_stream(js, policy.source)
                durable = await ensure_durable(js, policy.source, self.name, settings.consumer_ack_wait)
                lines.append(f"{self.name} 对 {stream_name(policy.source)} 的消费者：{said(durable)}")
        finally:
            await nc.close()
        return lines

    async def relay(self, settings: Settings, stop: asyncio.Event) -> None:
        """The relay process: this service's committed events → its JetStream stream."""
        log = configure(settings.log_format, settings.log_level, f"{self.name}-relay")
        try:
            pool = await create_pool(settings, 3)
            nc = await connect_nats(settings, f"{self.name}-relay")
            try:
                js = nc.jetstream()
                await require_stream(js, self.name)
                await Relay(PostgresEventStore(pool, self.name), js, self.name, settings.relay_batch, log=log).run(stop)
            finally:
                with contextlib.suppress(*SERVERS_GONE):  # closing what a server that went away already closed
                    await nc.drain()
                await pool.close()
        except SERVERS_GONE as exc:
            # Its listening connection is gone with the server: the relay ends, in one line rather than a library's
            # traceback per restart, and the supervisor starts it again. Nothing is lost: it resumes from the stream.
            log.error("relay stopped: a server went away; started again by the supervisor",
                      error=type(exc).__name__, where=origin_of(exc))
            raise SystemExit(1) from None

    def main(self, argv: list[str]) -> None:
        """`python -m services.<name> [serve|relay|setup]`."""
        run_command(self.name, argv, {
            "serve": lambda settings, _args: asyncio.run(self.app(settings).run()),
            "relay": lambda settings, _args: run_until_signalled(lambda stop: self.relay(settings, stop)),
            "setup": lambda settings, _args: set_up(self.name, settings,
                                                    lambda: self.setup(settings, role_password())),
        })


def run_command(service: str, argv: list[str], actions: dict[str, Callable[[Settings, list[str]], None]]) -> None:
    """A service process's command line: the first argument picks the action (default `serve`)."""
    what, rest = (argv[0], argv[1:]) if argv else ("serve", [])
    if what not in actions:
        sys.exit(f"usage: python -m services.{service} [{'|'.join(actions)}], not {what!r}")
    actions[what](Settings.from_env(), rest)


@dataclass(frozen=True)
class ReadingService:
    """Read models fed by other services' streams, and the queries over them."""

    name: str  # also its schema, its durable consumers' name and its queue group
    projections: Callable[[str], Sequence[Projection]]  # schema → one projection per source stream
    queries: dict[str, Query]
    handlers: Callable[[asyncpg.Pool, str, JetStreamContext, list[str], City], Any]  # with @query methods
    implementations: Callable[[type], dict[str, Callable[[Any, Request], Awaitable[bytes]]]]
    migrations: Sequence[Migration]
    after_commit: Callable[[NATS, City], Callable[[list[Envelope]], Awaitable[None]]] | None = None
    query_workers: int = 8
    # The projections' code version, recorded on the schema: a schema built by another version is rebuilt in its
    # shadow and swapped in (gongdi.bus.shadow), started by `setup`'s report, while the old one keeps answering.
    version: str = "1"

    def feeds(self, schema: str) -> list[tuple[str, Projection]]:
        return [(p.contract.SERVICE, p) for p in self.projections(schema)]

    def app(self, settings: Settings) -> FastStream:
        log = configure(settings.log_format, settings.log_level, self.name)
        broker = make_broker(settings)
        bound: list[Any] = []  # filled in the lifespan, before the broker starts
        implemented = self.implementations(self.handlers)  # type: ignore[arg-type]
        missing = sorted(set(self.queries) - set(implemented))
        if missing:
            raise TypeError(f"{self.name}: queries without an implementation: {missing}")
        for name, q in self.queries.items():
            reply_handler(broker, q.subject, self.name, self.query_workers,
                          lambda request, h=implemented[name]: h(bound[0], request))
        consumers: list[Consumers] = []  # filled in the lifespan
        serve_retry(broker, self.name, consumers)

        @asynccontextmanager
        async def lifespan() -> AsyncIterator[None]:
            city = settings.city()
            pool = await create_pool(settings)
            nc = await connect_nats(settings, f"{self.name}-consumer")
            after = self.after_commit(nc, city) if self.after_commit else None
            tasks = []
            # As-of answers replay the log on a connection of their own, into its temporary tables.
            past = Past(connect=lambda: asyncpg.connect(settings.database_url), migrations=self.migrations,
                        feeds=self.feeds, js=nc.jetstream())
            try:
                feeds = self.feeds(self.name)
                for service, projection in feeds:
                    await require_stream(nc.jetstream(), service)
                    consumer = OrderedConsumer(nc, pool, self.name, service, self.name, projection,
                                               settings.consumer_batch, settings.consumer_max_deliver, after, log)
                    # A dead consumer must take the process down with it, so that the supervisor restarts it.
                    tasks.append(Background(consumer.run, lambda: os.kill(os.getpid(), signal.SIGTERM)))
                # A retried letter is shown like any applied event: the live subjects say so after its commit.
                consumers.append(Consumers(self.name, pool, nc.jetstream(),
                                           [Feed(service, projection, after) for service, projection in feeds], log))
                bound.append(self.handlers(pool, self.name, nc.jetstream(), [stream_name(s) for s, _ in feeds], city,
                                           past=past))
                log.info(f"{self.name} ready")
                yield
            finally:
                for task in tasks:
                    await task.close()
                await past.close()
                await nc.close()
                await pool.close()

        return FastStream(broker, lifespan=lifespan, logger=None)

    async def setup(self, settings: Settings, password: str | None = None) -> list[str]:
        """Idempotent: migrations (and the login role, `password` its password), and one durable consumer per
        source stream; a line `需要重建视图：…` (REBUILD_NEEDED) when the schema was built by another code version."""
        lines = [await migrate_schema(settings, self.name, self.migrations, password=password)]
        conn = await asyncpg.connect(settings.database_url)
        try:
            stale = await check_version(conn, self.name, self.version)
        finally:
            await conn.close()
        nc = await connect_nats(settings, f"{self.name}-setup")
        try:
            js = nc.jetstream()
            for service, _ in self.feeds(self.name):
                await require_stream(js, service)
                durable = await ensure_durable(js, service, self.name, settings.consumer_ack_wait)
                lines.append(f"{self.name} 对 {stream_name(service)} 的消费者：{said(durable)}")
        finally:
            await nc.close()
        return lines + ([stale] if stale else [])

    async def stale(self, settings: Settings) -> bool:
        """Whether the live schema was built by another code version than this one."""
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await stored_version(conn, self.name) != self.version
        finally:
            await conn.close()

    async def rebuild_swap(self, settings: Settings, fresh: bool = False, progress: Progress | None = None,
                           swap: bool = True, batch: int = BATCH, accept_letters: bool = False) -> Outcome:
        """Rebuild the live schema in its shadow from the writers' logs (resuming a killed rebuild unless `fresh`)
        and swap it in while queries and the live consumer go on; as the owner (gongdi.bus.shadow). Not swapped
        when it would drop events the live views show (`LettersRefused`) unless `accept_letters`."""
        pool = await create_pool(settings, 4)
        nc = await connect_nats(settings, f"{self.name}-rebuild")
        try:
            sources = [Source(service, p) for service, p in self.feeds(shadow_of(self.name))]
            return await ShadowRebuild(pool, self.name, self.name, self.version, self.migrations, sources,
                                       nc.jetstream(), batch, progress, dsn=settings.database_url,
                                       accept_letters=accept_letters).run(fresh, swap)
        finally:
            await nc.close()
            await pool.close()

    async def rebuild(self, settings: Settings, target: str, progress: Progress | None = None) -> int:
        """Replay every source stream into schema `target` (dropped first); returns the events applied."""
        pool = await create_pool(settings, 2)
        nc = await connect_nats(settings, f"{self.name}-rebuild")
        try:
            return await rebuild(nc.jetstream(), pool, target, self.name, self.migrations, self.feeds(target),
                                 progress)
        finally:
            await nc.close()
            await pool.close()

    def main(self, argv: list[str]) -> None:
        """`python -m services.<name> [serve|setup|rebuild SCHEMA|swap [--fresh] [--if-stale] [--batch N]]`."""

        def rebuild_into(settings: Settings, args: list[str]) -> None:
            target = args[0] if args else f"{self.name}_rebuild"
            n = asyncio.run(self.rebuild(settings, target, lambda done, total: print(
                f"\r重建 {done}/{total}", end="", flush=True)))
            print(f"\n{n} events replayed into schema {target}")

        def rebuild_and_swap(settings: Settings, args: list[str]) -> None:
            from gongdi.ops.rebuilding import rebuild_bar, result_line

            if "--if-stale" in args and not asyncio.run(self.stale(settings)):
                print(f"{self.name}: 代码版本 {self.version}，无需重建 (up to date)")
                return
            bar = rebuild_bar() if sys.stderr.isatty() else None
            batch = int(args[args.index("--batch") + 1]) if "--batch" in args else BATCH
            try:
                outcome = asyncio.run(self.rebuild_swap(settings, "--fresh" in args, bar, batch=batch))
            except LettersRefused as exc:
                print(exc, flush=True)  # the old views go on answering; the operator decides (`gongdi rebuild`)
                sys.exit(REFUSED_EXIT)
            print(result_line(self.name, outcome), flush=True)

        run_command(self.name, argv, {
            "serve": lambda settings, _args: asyncio.run(self.app(settings).run()),
            "setup": lambda settings, _args: set_up(self.name, settings,
                                                    lambda: self.setup(settings, role_password())),
            "rebuild": rebuild_into,
            "swap": rebuild_and_swap,
        })

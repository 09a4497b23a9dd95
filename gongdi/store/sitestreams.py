"""Command handling for a service whose aggregate is one stream per site, with its folded state kept beside it."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError

from contracts.base import Command, Event
from contracts.errors import DomainError
from contracts.replies import CommandReply, ErrorInfo, RecordedRef
from gongdi.service.locks import KeyedLocks
from gongdi.store.postgres import (
    ConcurrencyError,
    DuplicateCommandError,
    EventStore,
    Meta,
    Pending,
    StoredRow,
    StreamHead,
)

MAX_ATTEMPTS = 20
S = TypeVar("S", bound=BaseModel)


def error_reply(code: str, message: str, field: str | None = None, command_id: Any = None) -> bytes:
    reply = CommandReply(ok=False, command_id=command_id, error=ErrorInfo(code=code, message=message, field=field))
    return reply.model_dump_json().encode()


def validation_reply(exc: ValidationError) -> bytes:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return error_reply("VALIDATION_FAILED", f"{field or 'body'}: {first['msg']}", field)


def conflict_reply(command: Command) -> bytes:
    return error_reply("CONCURRENCY_CONFLICT", "并发冲突，请重试 (too many concurrent writers)", None,
                       command.command_id)


def accepted_reply(command: Command, rows: list[StoredRow], warnings: list[ErrorInfo] | None = None) -> bytes:
    return CommandReply(
        ok=True, command_id=command.command_id, warnings=warnings or [],
        events=[RecordedRef(event_id=r.event_id, type=r.event_type, stream_id=r.stream_id, version=r.version,
                            position=r.position) for r in rows],
    ).model_dump_json().encode()


def stream_of(site_id: str) -> str:
    return f"site-{site_id}"


class Snapshots(Generic[S]):
    """`<schema>.site_state`: each site stream's folded state, version and last hash, written with the events."""

    def __init__(self, schema: str, model: type[S]):
        self.schema = schema
        self.model = model

    def table_sql(self) -> str:
        return f"""
        CREATE TABLE IF NOT EXISTS {self.schema}.site_state (
            site_id text PRIMARY KEY,
            version int NOT NULL,
            hash text NOT NULL,
            state jsonb NOT NULL
        );"""

    async def load(self, conn: asyncpg.Connection, site_id: str) -> tuple[S | None, StreamHead]:
        row = await conn.fetchrow(
            f"SELECT version, hash, state::text AS state FROM {self.schema}.site_state WHERE site_id = $1", site_id
        )
        if row is None:
            return None, StreamHead()
        return self.model.model_validate_json(row["state"]), StreamHead(row["version"], row["hash"])

    async def save(self, conn: asyncpg.Connection, site_id: str, state: S, head: StreamHead) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.site_state (site_id, version, hash, state) VALUES ($1, $2, $3, $4::jsonb)"
            " ON CONFLICT (site_id) DO UPDATE SET version = $2, hash = $3, state = $4::jsonb",
            site_id, head.version, head.hash, state.model_dump_json(),
        )


class SiteStream(Generic[S]):
    """Append to one site's stream and keep its snapshot current, in the caller's transaction."""

    def __init__(self, store: EventStore, snapshots: Snapshots[S], evolve: Callable[[S | None, Event], S]):
        self.store = store
        self.snapshots = snapshots
        self.evolve = evolve

    async def append(self, conn: asyncpg.Connection, site_id: str, township: str, state: S | None,
                     head: StreamHead, events: list[Event], meta: Meta) -> list[StoredRow]:
        pending = [Pending(e, stream_of(site_id), township, site_id) for e in events]
        rows, heads = await self.store.append(conn, pending, {stream_of(site_id): head}, meta)
        for e in events:
            state = self.evolve(state, e)
        assert state is not None
        await self.snapshots.save(conn, site_id, state, heads[stream_of(site_id)])
        return rows

    async def append_retrying(self, conn: asyncpg.Connection, site_id: str, township: str,
                              decide: Callable[[S | None], list[Event]], meta: Meta) -> list[StoredRow]:
        """For policies inside a consumer's transaction: a race lost to a command is retried in a savepoint."""
        for _ in range(MAX_ATTEMPTS):
            try:
                async with conn.transaction():
                    state, head = await self.snapshots.load(conn, site_id)
                    return await self.append(conn, site_id, township, state, head, decide(state), meta)
            except ConcurrencyError:
                await asyncio.sleep(random.uniform(0, 0.005))
        raise ConcurrencyError(f"could not append to {stream_of(site_id)}")


# The rule context a service needs besides its own snapshot: (given, township or None if the site is unknown).
ContextLoader = Callable[[asyncpg.Connection, str, Any], Awaitable[tuple[Any, str | None]]]


class SiteCommands(Generic[S]):
    """parse → load → decide → append → reply, once per command id, for commands that name a `site_id`."""

    def __init__(self, pool: asyncpg.Pool, stream: SiteStream[S], commands: dict[str, type[Command]],
                 context: ContextLoader, decide: Callable[[Command, Any], list[Event]],
                 log: structlog.BoundLogger):
        self.pool = pool
        self.stream = stream
        self.commands = commands
        self.context = context
        self.decide = decide
        self.log = log
        self.locks = KeyedLocks()

    async def handle(self, name: str, raw: bytes) -> bytes:
        try:
            command = self.commands[name].model_validate_json(raw)
        except ValidationError as exc:
            return validation_reply(exc)
        # Optimistic concurrency is the guarantee across processes; the lock only spares this one the retries.
        async with self.locks.hold(command.site_id):  # type: ignore[attr-defined]
            for attempt in range(MAX_ATTEMPTS):
                try:
                    return await self._attempt(command)
                except DomainError as exc:
                    return error_reply(exc.code, exc.message, exc.field, command.command_id)
                except (ConcurrencyError, DuplicateCommandError):
                    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        self.log.warning("command gave up after conflicts", command_id=str(command.command_id), command=name)
        return conflict_reply(command)

    async def _attempt(self, command: Command) -> bytes:
        store = self.stream.store
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await store.find_command(command.command_id, conn)
            if stored is not None:
                return stored.model_dump_json().encode()
            site_id: str = command.site_id  # type: ignore[attr-defined]
            state, head = await self.stream.snapshots.load(conn, site_id)
            given, township = await self.context(conn, site_id, state)
            events = self.decide(command, given)
            meta = Meta(actor=command.actor, command_id=command.command_id, correlation_id=command.correlation_id)
            rows = await self.stream.append(conn, site_id, township or "", state, head, events, meta)
            await store.save_command(conn, command.command_id, [])
        return accepted_reply(command, rows)

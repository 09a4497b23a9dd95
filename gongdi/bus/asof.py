"""Read models as of a moment: the log replayed up to it into throwaway tables of one database connection.

The tables are the reading service's own (its migrations, run in the connection's `pg_temp` schema), so every query
of the live views answers over them unchanged; they vanish with the connection. The events come from each source
stream through a short-lived consumer of the service's own, read once from the start: the live views' durable
consumers and checkpoints are not touched. Only the events the window keeps are applied, in stream order, without
the continuity check of the live consumer: an as-of view leaves out later facts on purpose.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.envelope import Envelope
from contracts.subjects import stream_name, stream_subjects
from gongdi.bus.projection import Projection
from gongdi.store.migrations import Migration

SCRATCH = "pg_temp"  # the connection's own schema: no rights to create one are needed, and nothing outlives it
FETCH = 1000
Keep = Callable[[Envelope, Projection], bool]  # the projection parses the event for a rule on its content


def scratch_sql(sql: str) -> str:
    """A migration's statements for the temporary schema, which exists once a temporary table does and whose name
    is reserved (`CREATE SCHEMA pg_temp` is refused)."""
    return re.sub(rf"CREATE SCHEMA IF NOT EXISTS {SCRATCH}\s*;", "", sql)


async def create_scratch(conn: asyncpg.Connection, migrations: Sequence[Migration]) -> None:
    """The reading service's tables, empty, in the connection's temporary schema."""
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS as_of_scratch (created_at timestamptz DEFAULT now())")
    for m in migrations:
        await conn.execute(scratch_sql(m.sql(SCRATCH)))


async def read_stream(js: JetStreamContext, service: str) -> AsyncIterator[list[Msg]]:
    """Every message of a writing service's stream up to its last sequence when asked, in batches, in order."""
    stream = stream_name(service)
    last = (await js.stream_info(stream)).state.last_seq
    if last == 0:
        return
    sub = await js.pull_subscribe(
        stream_subjects(service)[0], stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0,
                              mem_storage=True),
    )
    try:
        seq = 0
        while seq < last:
            msgs = [m for m in await sub.fetch(FETCH, timeout=5) if m.metadata.sequence.stream <= last]
            if msgs:
                yield msgs
            seq = msgs[-1].metadata.sequence.stream if msgs else last
    finally:
        await sub.unsubscribe()


async def replay_until(conn: asyncpg.Connection, js: JetStreamContext, feeds: Sequence[tuple[str, Projection]],
                       keep: Keep) -> tuple[int, int]:
    """Apply to the scratch tables the events of every feed that `keep` selects; (events applied, events read)."""
    applied = read = 0
    for service, handler in feeds:
        async for msgs in read_stream(js, service):
            async with conn.transaction():
                for msg in msgs:
                    event = Envelope.from_json(msg.data)
                    read += 1
                    if keep(event, handler):
                        await handler.apply(conn, event)
                        applied += 1
    return applied, read


class OneConnection:
    """A pool's `acquire` over one connection, so that the live views' queries run unchanged on the scratch tables."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self.conn


@dataclass
class Scratch:
    """Filled scratch tables: the window they hold, the log they were read from, and their connection."""

    key: tuple[str, str]
    marks: tuple[int, ...]
    conn: asyncpg.Connection
    applied: int
    read: int


class Past:
    """A reading service's answers as of a moment. Each fills scratch tables on a connection of its own (closed
    when replaced, which drops the tables and any prepared statement naming them) by its migrations and its
    projections over the scratch schema. The last one is kept while the log has not grown, so a report asking
    many views as of the same day replays the log once. One at a time: a replay is heavy, and a connection runs one
    statement at a time anyway."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], migrations: Sequence[Migration],
                 feeds: Callable[[str], Sequence[tuple[str, Projection]]], js: JetStreamContext):
        self.connect = connect
        self.migrations = migrations
        self.feeds = feeds
        self.js = js
        self.lock = asyncio.Lock()
        self.kept: Scratch | None = None

    async def marks(self) -> tuple[int, ...]:
        """Each source stream's last sequence: the log as it stands."""
        return tuple([(await self.js.stream_info(stream_name(service))).state.last_seq
                      for service, _ in self.feeds(SCRATCH)])

    @asynccontextmanager
    async def tables(self, key: tuple[str, str], keep: Callable[[], Keep]
                     ) -> AsyncIterator[tuple[asyncpg.Connection, int, int]]:
        """Scratch tables holding window `key` (as_of, basis), made with a fresh `keep()` unless the kept ones
        are of the same window over the same log: (connection, events applied, events read)."""
        async with self.lock:
            marks = await self.marks()
            kept = self.kept
            if kept is None or kept.key != key or kept.marks != marks or kept.conn.is_closed():
                await self.close()
                conn = await self.connect()
                try:
                    await create_scratch(conn, self.migrations)
                    applied, read = await replay_until(conn, self.js, self.feeds(SCRATCH), keep())
                except BaseException:
                    await conn.close()
                    raise
                # Marks read before the replay: if the log grew meanwhile, the next ask rebuilds, never the reverse.
                kept = self.kept = Scratch(key, marks, conn, applied, read)
            yield kept.conn, kept.applied, kept.read

    async def close(self) -> None:
        if self.kept is not None:
            conn, self.kept = self.kept.conn, None
            await conn.close()

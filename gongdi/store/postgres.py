"""Postgres event store: one-statement append with optimistic concurrency, hash chain, gap-safe reads."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.base import Event
from contracts.envelope import Envelope, chain_hash
from contracts.replies import CommandReply, ErrorInfo, RecordedRef


class ConcurrencyError(Exception):
    """Another writer appended to the stream first; reload and decide again."""


class DuplicateCommandError(Exception):
    """The command id was already recorded by a concurrent attempt."""


@dataclass(frozen=True)
class StreamHead:
    version: int = 0
    hash: str | None = None


@dataclass(frozen=True)
class Pending:
    """An event decided but not yet stored, with the stream it goes to."""

    event: Event
    stream_id: str
    township: str
    site_id: str | None


@dataclass(frozen=True)
class Meta:
    actor: str
    command_id: UUID | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    occurred_at: datetime | None = None


def conflict(exc: asyncpg.UniqueViolationError) -> Exception:
    """A unique violation means someone else got there first: which one tells what to do next."""
    if exc.constraint_name == "commands_pkey":
        return DuplicateCommandError(str(exc))
    return ConcurrencyError(str(exc))


def warnings_json(warnings: list[ErrorInfo]) -> str:
    return orjson.dumps([w.model_dump() for w in warnings]).decode()


@dataclass(frozen=True, order=True)
class Checkpoint:
    """A place in the log's gap-safe order: (writing transaction id, position)."""

    tx_id: int = 0
    position: int = 0


_COLUMNS = (
    "position, tx_id::text::bigint AS tx_id, event_id, event_type, schema_version, stream_id, version,"
    " township, site_id, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at,"
    " payload::text AS payload, prev_hash, hash"
)


@dataclass(frozen=True)
class Batch:
    """Events numbered and hashed against their stream heads, as columns ready for one INSERT … unnest."""

    rows: list[tuple]
    heads: dict[str, StreamHead]
    meta: Meta
    occurred_at: datetime

    def columns(self) -> list[list[Any]]:
        return [list(col) for col in zip(*self.rows, strict=True)] if self.rows else [[] for _ in range(10)]

    def args(self) -> list[Any]:
        """Parameters $1..$15 of the insert statement (see EventStore._insert)."""
        cols, m = self.columns(), self.meta
        return [*cols[:7], m.actor, m.command_id, m.correlation_id, m.causation_id, self.occurred_at, *cols[7:]]

    def stored(self, returned: Sequence[asyncpg.Record]) -> list[StoredRow]:
        m = self.meta
        return [
            StoredRow(
                position=r["position"], tx_id=r["tx_id"], event_id=row[0], event_type=row[1],
                schema_version=row[2], stream_id=row[3], version=row[4], township=row[5], site_id=row[6],
                actor=m.actor, command_id=m.command_id, correlation_id=m.correlation_id,
                causation_id=m.causation_id, occurred_at=self.occurred_at, recorded_at=r["recorded_at"],
                payload=row[7], prev_hash=row[8], hash=row[9],
            )
            for r, row in zip(returned, self.rows, strict=True)
        ]


def insert_sql(schema: str) -> str:
    """One statement for any number of events; identity positions follow the given order."""
    return f"""
        INSERT INTO {schema}.events (event_id, event_type, schema_version, stream_id, version, township,
            site_id, actor, command_id, correlation_id, causation_id, occurred_at, payload, prev_hash, hash)
        SELECT e, t, sv, st, v, tw, si, $8, $9, $10, $11, $12, p::jsonb, ph, h
        FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::int[], $6::text[], $7::text[],
                    $13::text[], $14::text[], $15::text[])
             WITH ORDINALITY AS u(e, t, sv, st, v, tw, si, p, ph, h, n)
        ORDER BY n
        RETURNING event_id, position, tx_id::text::bigint AS tx_id, recorded_at"""


def schema_sql(schema: str) -> str:
    return f"""
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {schema}.events (
        position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
        event_id uuid NOT NULL UNIQUE,
        event_type text NOT NULL,
        schema_version int NOT NULL,
        stream_id text NOT NULL,
        version int NOT NULL CHECK (version > 0),
        township text NOT NULL,
        site_id text,
        actor text NOT NULL,
        command_id uuid,
        correlation_id uuid,
        causation_id uuid,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        payload jsonb NOT NULL,
        prev_hash text,
        hash text NOT NULL,
        CONSTRAINT events_stream_version UNIQUE (stream_id, version)
    );
    CREATE INDEX IF NOT EXISTS events_tx_position ON {schema}.events (tx_id, position);
    CREATE OR REPLACE FUNCTION {schema}.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{schema}_events', ''); RETURN NULL; END $$;
    CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON {schema}.events
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_events();
    CREATE INDEX IF NOT EXISTS events_command ON {schema}.events (command_id);
    -- One row per accepted command: the guard against doing it twice. Its reply is rebuilt from the events.
    CREATE TABLE IF NOT EXISTS {schema}.commands (
        command_id uuid PRIMARY KEY,
        warnings jsonb NOT NULL DEFAULT '[]',
        recorded_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS {schema}.relay_checkpoint (
        id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        tx_id bigint NOT NULL,
        position bigint NOT NULL,
        stream_seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """


@dataclass(frozen=True)
class StoredRow:
    """A raw event row; `payload` stays JSON text so the relay can forward it without re-encoding."""

    position: int
    tx_id: int
    event_id: UUID
    event_type: str
    schema_version: int
    stream_id: str
    version: int
    township: str
    site_id: str | None
    actor: str
    command_id: UUID | None
    correlation_id: UUID | None
    causation_id: UUID | None
    occurred_at: datetime
    recorded_at: datetime
    payload: str
    prev_hash: str | None
    hash: str

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.tx_id, self.position)

    def envelope_json(self, service: str) -> bytes:
        return orjson.dumps(
            {
                "event_id": str(self.event_id),
                "type": self.event_type,
                "schema_version": self.schema_version,
                "stream_id": self.stream_id,
                "version": self.version,
                "position": self.position,
                "tx_id": self.tx_id,
                "service": service,
                "township": self.township,
                "site_id": self.site_id,
                "actor": self.actor,
                "command_id": _str(self.command_id),
                "correlation_id": _str(self.correlation_id),
                "causation_id": _str(self.causation_id),
                "occurred_at": self.occurred_at,
                "recorded_at": self.recorded_at,
                "payload": orjson.Fragment(self.payload),
                "prev_hash": self.prev_hash,
                "hash": self.hash,
            }
        )

    def envelope(self, service: str) -> Envelope:
        return Envelope.from_json(self.envelope_json(service))


def _str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


class EventStore:
    """The events, commands and relay checkpoint tables of one service's schema."""

    def __init__(self, pool: asyncpg.Pool, schema: str):
        self.pool = pool
        self.schema = schema
        s = schema
        self._insert = insert_sql(s)
        self._read_all = f"""
            SELECT {_COLUMNS} FROM {s}.events
            WHERE (tx_id, position) > ($1::text::xid8, $2)
              AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY tx_id, position LIMIT $3"""

    def prepare(self, pending: Sequence[Pending], heads: dict[str, StreamHead], meta: Meta) -> Batch:
        """Number, hash and encode the events; nothing is written yet."""
        occurred_at = meta.occurred_at or datetime.now(UTC)
        heads = dict(heads)
        rows: list[tuple] = []
        for p in pending:
            head = heads.get(p.stream_id, StreamHead())
            event_id = uuid.uuid4()
            payload = p.event.model_dump(mode="json")
            version = head.version + 1
            digest = chain_hash(
                head.hash,
                event_id=event_id,
                event_type=p.event.type_name(),
                schema_version=p.event.schema_version,
                stream_id=p.stream_id,
                version=version,
                occurred_at=occurred_at,
                actor=meta.actor,
                payload=payload,
            )
            rows.append((event_id, p.event.type_name(), p.event.schema_version, p.stream_id, version, p.township,
                         p.site_id, orjson.dumps(payload).decode(), head.hash, digest))
            heads[p.stream_id] = StreamHead(version, digest)
        return Batch(rows, heads, meta, occurred_at)

    async def append(
        self, conn: asyncpg.Connection, pending: Sequence[Pending], heads: dict[str, StreamHead], meta: Meta
    ) -> tuple[list[StoredRow], dict[str, StreamHead]]:
        """Insert all events in one statement; a stale head raises ConcurrencyError."""
        batch = self.prepare(pending, heads, meta)
        try:
            returned = await conn.fetch(self._insert, *batch.args())
        except asyncpg.UniqueViolationError as exc:
            raise conflict(exc) from exc
        return batch.stored(returned), batch.heads

    async def load(self, stream_id: str, conn: asyncpg.Connection | None = None) -> list[StoredRow]:
        sql = f"SELECT {_COLUMNS} FROM {self.schema}.events WHERE stream_id = $1 ORDER BY version"
        if conn is not None:
            return [StoredRow(**r) for r in await conn.fetch(sql, stream_id)]
        async with self.pool.acquire() as c:
            return [StoredRow(**r) for r in await c.fetch(sql, stream_id)]

    async def read_all(self, after: Checkpoint, limit: int = 1000) -> list[StoredRow]:
        """Committed events after `after`, never passing a transaction that may still commit."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(self._read_all, str(after.tx_id), after.position, limit)
        return [StoredRow(**r) for r in rows]

    async def find_command(self, command_id: UUID, conn: asyncpg.Connection | None = None) -> CommandReply | None:
        """The reply an accepted command got, rebuilt from what it wrote; None if it was never accepted."""
        sql = (
            f"SELECT c.warnings::text AS warnings, e.event_id, e.event_type, e.stream_id, e.version, e.position"
            f" FROM {self.schema}.commands c LEFT JOIN {self.schema}.events e ON e.command_id = c.command_id"
            f" WHERE c.command_id = $1 ORDER BY e.position"
        )
        if conn is not None:
            rows = await conn.fetch(sql, command_id)
        else:
            async with self.pool.acquire() as c:
                rows = await c.fetch(sql, command_id)
        if not rows:
            return None
        return CommandReply(
            ok=True, command_id=command_id, duplicate=True, warnings=orjson.loads(rows[0]["warnings"]),
            events=[
                RecordedRef(event_id=r["event_id"], type=r["event_type"], stream_id=r["stream_id"],
                            version=r["version"], position=r["position"])
                for r in rows if r["event_id"] is not None
            ],
        )

    async def save_command(self, conn: asyncpg.Connection, command_id: UUID, warnings: list[ErrorInfo]) -> None:
        try:
            await conn.execute(
                f"INSERT INTO {self.schema}.commands (command_id, warnings) VALUES ($1, $2::jsonb)",
                command_id, warnings_json(warnings),
            )
        except asyncpg.UniqueViolationError as exc:
            raise conflict(exc) from exc

    async def verify(self) -> list[str]:
        """Recompute every hash chain; returns a description of each broken link."""
        problems: list[str] = []
        prev: dict[str, tuple[int, str]] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            sql = f"SELECT {_COLUMNS} FROM {self.schema}.events ORDER BY stream_id, version"
            async for r in conn.cursor(sql, prefetch=2000):
                row = StoredRow(**r)
                last_version, last_hash = prev.get(row.stream_id, (0, None))
                if row.version != last_version + 1:
                    problems.append(f"{row.stream_id}: version {row.version} follows {last_version}")
                if row.prev_hash != last_hash:
                    problems.append(f"{row.stream_id} v{row.version}: prev_hash does not match")
                expected = chain_hash(
                    row.prev_hash, event_id=row.event_id, event_type=row.event_type,
                    schema_version=row.schema_version, stream_id=row.stream_id, version=row.version,
                    occurred_at=row.occurred_at, actor=row.actor, payload=orjson.loads(row.payload),
                )
                if expected != row.hash:
                    problems.append(f"{row.stream_id} v{row.version}: content does not match its hash")
                prev[row.stream_id] = (row.version, row.hash)
        return problems

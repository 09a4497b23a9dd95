"""Postgres event store: one-statement append with optimistic concurrency, hash chain, gap-safe reads."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.envelope import STORED, WRITTEN
from contracts.replies import CommandReply, ErrorInfo, RecordedRef
from gongdi.store.base import (
    Checkpoint,
    ConcurrencyError,
    DuplicateCommandError,
    Later,
    Meta,
    Pending,
    Prepared,
    StaleTransactionError,
    StoredRow,
    StoredState,
    StreamHead,
    check_chains,
    command_digests,
    duplicate_reply,
    prepare,
    recorded,
)
from gongdi.store.migrations import Migration

SELECT_LIST = ", ".join(f.select for f in STORED)


def events_table_sql(schema: str) -> str:
    """The tables every writing service's schema has, as release 0.1 created them (all `IF NOT EXISTS`)."""
    columns = ",\n        ".join(f"{f.column} {f.stored.sql_type} {f.stored.constraints}".rstrip() for f in STORED
                                  if f.name not in LATER_COLUMNS)
    return f"""
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {schema}.events (
        {columns},
        CONSTRAINT events_stream_version UNIQUE (stream_id, version)
    );
    CREATE INDEX IF NOT EXISTS events_tx_position ON {schema}.events (tx_id, position);
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
    -- Each stream's folded state with the head it was folded up to, written with the events.
    CREATE TABLE IF NOT EXISTS {schema}.site_state (
        site_id text PRIMARY KEY,
        version int NOT NULL,
        hash text NOT NULL,
        state jsonb NOT NULL
    );
    """


EVENT_STORE_MIGRATIONS = (Migration(1, "events, commands, relay checkpoint, stream snapshots", events_table_sql),)


# Envelope columns a later migration adds (release 0.1's tables stay as they were: migration 1 never changes).
LATER_COLUMNS = {"hash_scheme", "command_digest"}


def tamper_evidence(number: int) -> Migration:
    """Every writing service's migration `number` (docs/architecture.md, Tamper evidence): rows keep the hash scheme
    they were written under (1 for those before), and a command row the transaction that wrote it, so that a
    signed head can say which commands it covers (NULL before: covered by every head)."""
    scheme = next(f.stored for f in STORED if f.name == "hash_scheme")
    return Migration(number, "hash scheme per event; commands keep their transaction id", lambda s: f"""
        ALTER TABLE {s}.events ADD COLUMN IF NOT EXISTS hash_scheme {scheme.sql_type} {scheme.constraints};
        ALTER TABLE {s}.events ADD COLUMN IF NOT EXISTS command_digest text;
        ALTER TABLE {s}.commands ADD COLUMN IF NOT EXISTS tx_id xid8;
        ALTER TABLE {s}.commands ALTER COLUMN tx_id SET DEFAULT pg_current_xact_id();""")


def trailing_states(number: int) -> Migration:
    """Every writing service's migration `number`: a stream's stored state may trail its head (`StoredState`);
    the states stored before were current."""
    return Migration(number, "a site's stored state may trail its head: the version it was folded up to",
                     lambda s: f"""
        ALTER TABLE {s}.site_state ADD COLUMN IF NOT EXISTS state_version int;
        UPDATE {s}.site_state SET state_version = version WHERE state_version IS NULL;
        ALTER TABLE {s}.site_state ALTER COLUMN state_version SET NOT NULL;""")


def refold_states(number: int, why: str) -> Migration:
    """A writing service's migration `number`: every stored state is folded again from its stream's start at its
    next load, because the state gained something (`why`) its stored form cannot fill in. The state kept is the
    empty one as of version 0; the events on it are all still in the log."""
    return Migration(number, f"stored states folded again from the start: {why}", lambda s: f"""
        UPDATE {s}.site_state SET state = jsonb_build_object('site_id', site_id), state_version = 0;""")


def command_fingerprints(number: int) -> Migration:
    """Every writing service's migration `number`: a command id sent again with another command, body or sender
    must be refused, not answered with the first reply, so commands remember what was asked (NULL before)."""
    return Migration(number, "commands remember a fingerprint of what was asked",
                     lambda s: f"ALTER TABLE {s}.commands ADD COLUMN IF NOT EXISTS fingerprint text;")


ORDER_SQLSTATE = "GD410"  # keep_commit_order: the append needs a new transaction


def routines_sql(schema: str) -> str:
    """Re-created by every `setup`: the relay's wake-up, and the guard that keeps the record append-only."""
    return f"""
    CREATE OR REPLACE FUNCTION {schema}.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{schema}_events', ''); RETURN NULL; END $$;
    CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON {schema}.events
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_events();
    -- Events and accepted command ids are never changed or removed, by the services or by a slip at a psql
    -- prompt; the refusal names the table. (Per-service roles without these rights come with tenancy.)
    CREATE OR REPLACE FUNCTION {schema}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'GD403';
        END $$;
    CREATE OR REPLACE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON {schema}.events
        FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change();
    CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON {schema}.events
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();
    CREATE OR REPLACE TRIGGER commands_append_only BEFORE UPDATE OR DELETE ON {schema}.commands
        FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change();
    CREATE OR REPLACE TRIGGER commands_no_truncate BEFORE TRUNCATE ON {schema}.commands
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();
    -- Relays publish in (transaction id, position) order, and a transaction id is taken at a transaction's first
    -- write, not at its commit. A long transaction (a policy applying a batch) that took its id before a command
    -- committed version n of a stream must not append version n + 1: the stream would be published out of order.
    CREATE OR REPLACE FUNCTION {schema}.keep_commit_order() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.version > 1 AND EXISTS (
                SELECT 1 FROM {schema}.events
                WHERE stream_id = NEW.stream_id AND version = NEW.version - 1 AND tx_id > NEW.tx_id) THEN
                RAISE EXCEPTION 'stream % version %: its predecessor was written by a later transaction',
                    NEW.stream_id, NEW.version USING ERRCODE = '{ORDER_SQLSTATE}';
            END IF;
            RETURN NEW;
        END $$;
    CREATE OR REPLACE TRIGGER events_commit_order BEFORE INSERT ON {schema}.events
        FOR EACH ROW EXECUTE FUNCTION {schema}.keep_commit_order();
    """


def insert_sql(schema: str, param: str = "$1") -> str:
    """One statement for all of a command's events, passed as one JSON array (see `rows_json`).

    Identity positions follow the array's order; it returns each event's id and position.
    """
    columns = ", ".join(f.column for f in WRITTEN)
    types = ", ".join(f"{f.column} {f.stored.sql_type}" for f in WRITTEN)
    return f"""
        INSERT INTO {schema}.events ({columns})
        SELECT {columns}
        FROM ROWS FROM (jsonb_to_recordset({param}::jsonb) AS ({types})) WITH ORDINALITY AS r({columns}, n)
        ORDER BY n
        RETURNING event_id, position"""


def rows_json(prepared: Prepared) -> str:
    """The events of `prepared` as the one parameter `insert_sql` takes."""
    return orjson.dumps([{f.column: row[f.name] for f in WRITTEN} for row in prepared.rows]).decode()


def refs(prepared: Prepared, returned: Sequence[asyncpg.Record]) -> list[RecordedRef]:
    positions = {r["event_id"]: r["position"] for r in returned}
    return recorded(prepared.rows, [positions[row["event_id"]] for row in prepared.rows])


@contextmanager
def conflicts() -> Iterator[None]:
    """A unique violation means someone else got there first: which one tells what to do next."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "commands_pkey":
            raise DuplicateCommandError(str(exc)) from exc
        raise ConcurrencyError(str(exc)) from exc
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        raise ConcurrencyError(str(exc)) from exc  # the database rolled one side back: that side tries again
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == ORDER_SQLSTATE:
            raise StaleTransactionError(str(exc)) from exc
        raise


def warnings_json(warnings: list[ErrorInfo]) -> str:
    return orjson.dumps([w.model_dump() for w in warnings]).decode()


class PostgresEventStore:
    """The events, commands, snapshots and relay checkpoint of one service's schema. A transaction is a connection."""

    def __init__(self, pool: asyncpg.Pool, schema: str):
        self.pool = pool
        self.schema = schema
        s = schema
        self._insert = insert_sql(s)
        # Ordered by the columns, qualified: a bare `tx_id` in ORDER BY names the select list's text-to-bigint
        # output, which no index has, and the whole log would be sorted on every read.
        self._read_all = f"""
            SELECT {SELECT_LIST} FROM {s}.events e
            WHERE (e.tx_id, e.position) > ($1::text::xid8, $2)
              AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY e.tx_id, e.position LIMIT $3"""
        self._after = f"""
            SELECT version, prev_hash, hash, event_type, schema_version, payload::text FROM {s}.events
            WHERE stream_id = $1 AND version > $2 AND version <= $3 ORDER BY version"""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def append(self, tx: asyncpg.Connection, pending: Sequence[Pending], heads: dict[str, StreamHead],
                     meta: Meta) -> tuple[list[RecordedRef], dict[str, StreamHead]]:
        """Insert all events in one statement; a stale head raises ConcurrencyError."""
        prepared = prepare(pending, heads, meta)
        with conflicts():
            returned = await tx.fetch(self._insert, rows_json(prepared))
        return refs(prepared, returned), prepared.heads

    async def head(self, tx: asyncpg.Connection, stream_id: str) -> StreamHead:
        row = await tx.fetchrow(
            f"SELECT version, hash FROM {self.schema}.events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1",
            stream_id,
        )
        return StreamHead(row["version"], row["hash"]) if row else StreamHead()

    async def load(self, stream_id: str) -> list[Any]:
        sql = f"SELECT {SELECT_LIST} FROM {self.schema}.events WHERE stream_id = $1 ORDER BY version"
        async with self.pool.acquire() as conn:
            return [StoredRow(**r) for r in await conn.fetch(sql, stream_id)]

    async def read_all(self, after: Checkpoint, limit: int = 1000) -> list[Any]:
        """Committed events after `after`, never passing a transaction that may still commit."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(self._read_all, str(after.tx_id), after.position, limit)
        return [StoredRow(**r) for r in rows]

    async def find_command(self, command_id: UUID, tx: asyncpg.Connection | None = None) -> CommandReply | None:
        """The reply an accepted command got, rebuilt from what it wrote; None if it was never accepted."""
        sql = (
            f"SELECT c.warnings::text AS warnings, e.event_id, e.event_type, e.stream_id, e.version, e.position"
            f" FROM {self.schema}.commands c LEFT JOIN {self.schema}.events e ON e.command_id = c.command_id"
            f" WHERE c.command_id = $1 ORDER BY e.position"
        )
        if tx is not None:
            rows = await tx.fetch(sql, command_id)
        else:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(sql, command_id)
        if not rows:
            return None
        return duplicate_reply(command_id, orjson.loads(rows[0]["warnings"]), [
            RecordedRef(event_id=r["event_id"], type=r["event_type"], stream_id=r["stream_id"], version=r["version"],
                        position=r["position"])
            for r in rows if r["event_id"] is not None
        ])

    async def save_command(self, tx: asyncpg.Connection, command_id: UUID, warnings: list[ErrorInfo],
                           fingerprint: str | None = None) -> None:
        with conflicts():
            await tx.execute(f"INSERT INTO {self.schema}.commands (command_id, warnings, fingerprint)"
                             " VALUES ($1, $2::jsonb, $3)", command_id, warnings_json(warnings), fingerprint)

    async def command_fingerprint(self, command_id: UUID, tx: asyncpg.Connection | None = None) -> str | None:
        """What the command first accepted under this id asked (None for commands from before fingerprints)."""
        sql = f"SELECT fingerprint FROM {self.schema}.commands WHERE command_id = $1"
        if tx is not None:
            return await tx.fetchval(sql, command_id)
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, command_id)

    async def snapshot(self, tx: asyncpg.Connection, key: str, newer_than: int = -1) -> StoredState:
        row = await tx.fetchrow(
            f"SELECT version, hash, state_version, CASE WHEN state_version > $2 THEN state::text END AS state"
            f" FROM {self.schema}.site_state WHERE site_id = $1", key, newer_than)
        return StoredState() if row is None else StoredState(
            StreamHead(row["version"], row["hash"]), row["state_version"], row["state"])

    async def save_snapshot(self, tx: asyncpg.Connection, key: str, head: StreamHead, state: str | None) -> None:
        if state is None:
            await tx.execute(f"UPDATE {self.schema}.site_state SET version = $2, hash = $3 WHERE site_id = $1",
                             key, head.version, head.hash)
            return
        await tx.execute(
            f"INSERT INTO {self.schema}.site_state (site_id, version, hash, state, state_version)"
            " VALUES ($1, $2, $3, $4::jsonb, $2)"
            " ON CONFLICT (site_id) DO UPDATE SET version = $2, hash = $3, state = $4::jsonb, state_version = $2",
            key, head.version, head.hash, state,
        )

    async def events_after(self, tx: asyncpg.Connection, stream_id: str, after: int, upto: int) -> list[Later]:
        rows = await tx.fetch(self._after, stream_id, after, upto)
        return [Later(*r) for r in rows]

    async def verify(self) -> list[str]:
        """Recompute every hash chain, with each command's row bound in; a description of each broken link.
        (`gongdi verify` does more: gongdi.ops.audit.)"""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await read_events(conn, self.schema)
            commands = await read_commands(conn, self.schema)
        digests = command_digests({c.command_id: (c.fingerprint, c.warnings) for c in commands}, rows)
        return check_chains(rows, digests)


@dataclass(frozen=True)
class CommandRow:
    command_id: UUID
    fingerprint: str | None
    warnings: Any  # decoded
    tx_id: int  # 0 for rows written before commands kept it


async def read_events(conn: asyncpg.Connection, schema: str) -> list[Any]:
    """Every event, ordered by (stream, version)."""
    sql = f"SELECT {SELECT_LIST} FROM {schema}.events ORDER BY stream_id, version"
    return [StoredRow(**r) async for r in conn.cursor(sql, prefetch=5000)]


async def read_commands(conn: asyncpg.Connection, schema: str) -> list[CommandRow]:
    sql = (f"SELECT command_id, fingerprint, warnings::text AS warnings,"
           f" coalesce(tx_id, '0'::xid8)::text::bigint AS tx_id FROM {schema}.commands")
    return [CommandRow(r["command_id"], r["fingerprint"], orjson.loads(r["warnings"]), r["tx_id"])
            async for r in conn.cursor(sql, prefetch=5000)]

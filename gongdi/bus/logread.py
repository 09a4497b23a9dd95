"""A writer's log read as the relay publishes it: gap-safe keyset batches, each row decoded as its event."""
from __future__ import annotations

from typing import Any

import asyncpg

from contracts.envelope import EnvelopeRow
from gongdi.store.base import Checkpoint
from gongdi.store.postgres import SELECT_LIST


def read_sql(service: str, bounded: bool = False) -> str:
    """The relay's gap-safe read (`PostgresEventStore.read_all`: after a `(tx_id, position)` cursor, never past a
    transaction that may still commit), ordered by the columns themselves: `ORDER BY tx_id` there names the select
    list's `tx_id::text::bigint`, which no index has, so each read sorts the whole log (seen in EXPLAIN: a parallel
    seq scan per batch, quadratic over a million events); qualified, the `(tx_id, position)` index serves it."""
    return f"""SELECT {SELECT_LIST} FROM {service}.events AS e
        WHERE (e.tx_id, e.position) > ($1::text::xid8, $2)
          AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot()){_UNTIL if bounded else ""}
        ORDER BY e.tx_id, e.position LIMIT $3"""


_UNTIL = " AND (e.tx_id, e.position) <= ($4::text::xid8, $5)"


async def read_log(pool: asyncpg.Pool | asyncpg.Connection, service: str, after: Checkpoint, limit: int,
                   until: Checkpoint | None = None) -> list[asyncpg.Record]:
    """The next `limit` events of `service`'s log after `after` (and not after `until`), as the database's records
    (a `StoredRow` is made only for a dead letter's body: 3 µs an event saved)."""
    if until is None:
        return await pool.fetch(read_sql(service), str(after.tx_id), after.position, limit)
    return await pool.fetch(read_sql(service, True), str(after.tx_id), after.position, limit, str(until.tx_id),
                            until.position)


async def log_end(conn: asyncpg.Pool | asyncpg.Connection, service: str) -> Checkpoint | None:
    """The place of the last event of `service`'s log that a gap-safe read returns now (None: none)."""
    row = await conn.fetchrow(
        f"""SELECT e.tx_id::text::bigint AS tx_id, e.position FROM {service}.events AS e
            WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY e.tx_id DESC, e.position DESC LIMIT 1""")
    return None if row is None else Checkpoint(row["tx_id"], row["position"])


def decode(row: Any, service: str) -> EnvelopeRow:
    """A stored row as the event the relay publishes for it, for a replay: an `EnvelopeRow` (the columns' types
    are the envelope's: asyncpg gives UUIDs, aware datetimes, ints), its payload validated by the projection's
    contract from the stored text (`contracts.base.parse`, after upcasting), as for a message from the stream."""
    return _new(EnvelopeRow, (*row.values(), service))  # the select list is STORED, in its order


_new = tuple.__new__  # as `EnvelopeRow._make` does, without its call and length check

"""Repair of a writing service's stream: republished from PostgreSQL, its consumers re-pointed by what they applied.

A stream that was deleted, purged, had a message deleted, or was written by someone else can no longer be
continued: the relay and the consumers say so and wait (they never guess). PostgreSQL holds every event, so the
repair makes the stream anew: the relay republishes every event in commit order, numbered 1, 2, …, and each
consumer's checkpoint is set to the new number of the last event of the longest run, in commit order, that it
had applied. Which events a consumer applied is known from its stream heads (the version of each event stream it
reached), not from the old numbering, which is exactly what cannot be trusted any more.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import orjson
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.subjects import stream_name
from gongdi.store.base import Checkpoint
from gongdi.store.postgres import PostgresEventStore


@dataclass(frozen=True)
class ConsumerPlan:
    durable: str  # also the schema that holds its checkpoint and heads
    old: int  # its checkpoint in the broken stream's numbering
    new: int  # its checkpoint in the republished stream's numbering


@dataclass
class Applied:
    """What a consumer applied of one source stream: its heads, and (for a consumer from before heads were kept)
    the checkpoint below which a stream without a head counts as applied."""

    heads: dict[str, int]
    heads_from: int

    def covers(self, stream_id: str, version: int, seq: int) -> bool:
        head = self.heads.get(stream_id)
        if head is None:
            return self.heads_from > 0 and seq <= self.heads_from
        return version <= head


async def applied_by(conn: asyncpg.Connection, durable: str, stream: str) -> tuple[int, Applied] | None:
    """A consumer's checkpoint and heads on `stream`; None when that schema keeps no checkpoint for it."""
    row = await conn.fetchrow(
        f"SELECT stream_seq, heads_from FROM {durable}.consumer_checkpoint WHERE consumer = $1 AND stream = $2",
        durable, stream)
    if row is None:
        return None
    heads = await conn.fetch(
        f"SELECT stream_id, version FROM {durable}.stream_head WHERE consumer = $1 AND stream = $2", durable, stream)
    return row["stream_seq"], Applied({h["stream_id"]: h["version"] for h in heads}, row["heads_from"])


async def plan(store: PostgresEventStore, durables: list[str], batch: int = 5000) -> list[ConsumerPlan]:
    """Each consumer's checkpoint in the republished numbering: how many events, in commit order, it had applied
    without a break."""
    stream = stream_name(store.schema)
    async with store.pool.acquire() as conn:
        consumers = {d: found for d in durables if (found := await applied_by(conn, d, stream)) is not None}
    reached = {d: 0 for d in consumers}
    open_ = set(consumers)
    seq = 0
    after = Checkpoint()
    while open_:
        rows = await store.read_all(after, batch)
        if not rows:
            break
        for row in rows:
            seq += 1
            for durable in list(open_):
                if consumers[durable][1].covers(row.stream_id, row.version, seq):
                    reached[durable] = seq
                else:
                    open_.discard(durable)
        after = rows[-1].checkpoint
    return [ConsumerPlan(d, consumers[d][0], reached[d]) for d in consumers]


async def consumers_of(conn: asyncpg.Connection, schemas: list[str]) -> list[str]:
    """The schemas among `schemas` that run consumers (they have a checkpoint table)."""
    return [s for s in schemas if await conn.fetchval("SELECT to_regclass($1)", f"{s}.consumer_checkpoint")]


async def repair_stream(js: JetStreamContext, store: PostgresEventStore, schemas: list[str],
                        say: Callable[[str], None] = print) -> list[ConsumerPlan]:
    """Delete the service's stream and re-point its consumers (and the relay, to the beginning). The stream and
    the durable consumers are then made again by `setup`, and the relay republishes every event into it.

    In this order: the plan before anything changes; the stream gone before the checkpoints move, so that no
    consumer reads it with a checkpoint of the other numbering; the relay's record and every checkpoint in one
    transaction."""
    service = store.schema
    stream = stream_name(service)
    async with store.pool.acquire() as conn:
        durables = await consumers_of(conn, [s for s in schemas if s != service])
    plans = await plan(store, durables)
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(stream)
    say(f"流 {stream} 已删除 (stream deleted); 中继将从 PostgreSQL 按提交顺序重新发布全部事件")
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute(f"DELETE FROM {service}.relay_checkpoint")
        for p in plans:
            await conn.execute(
                f"UPDATE {p.durable}.consumer_checkpoint SET stream_seq = $3, updated_at = now()"
                " WHERE consumer = $1 AND stream = $2", p.durable, stream, p.new)
            say(f"  消费者 {p.durable}: 检查点 {p.old} → {p.new}")
            for seq in await drop_foreign_letters(conn, p.durable, service):
                say(f"  消费者 {p.durable}: 死信 {seq} 不是本服务的事件 (written by someone else), 已随旧流删除")
    return plans


async def drop_foreign_letters(conn: asyncpg.Connection, durable: str, service: str) -> list[int]:
    """Dead letters of the old stream that are no event of the service (a foreign or garbled message): they go
    with the stream they were written into, since no retry could ever apply them. Real events stay retryable."""
    stream = stream_name(service)
    rows = await conn.fetch(
        f"SELECT stream_seq, body FROM {durable}.dead_letters WHERE consumer = $1 AND stream = $2", durable, stream)
    foreign = []
    for row in rows:
        event_id = _event_id(row["body"])
        known = event_id is not None and await conn.fetchval(
            f"SELECT 1 FROM {service}.events WHERE event_id = $1", event_id)
        if not known:
            foreign.append(row["stream_seq"])
    if foreign:
        await conn.execute(
            f"DELETE FROM {durable}.dead_letters WHERE consumer = $1 AND stream = $2"
            " AND stream_seq = ANY($3::bigint[])", durable, stream, foreign)
    return foreign


def _event_id(body: bytes) -> UUID | None:
    try:
        data = orjson.loads(body)
        return UUID(str(data["event_id"]))
    except (ValueError, KeyError, TypeError):  # not JSON, not an object, no id, not a UUID
        return None

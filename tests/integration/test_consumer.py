"""The ordered consumer against real JetStream and Postgres: redelivery has no effect, poison is dead-lettered."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import nats
import orjson

from contracts.envelope import Envelope
from gongdi.bus.consumer import OrderedConsumer, checkpoint_sql, stream_heads_sql
from gongdi.bus.relay import Relay
from gongdi.bus.replay import rebuild
from gongdi.bus.streams import ensure_durable
from gongdi.service.settings import Settings
from gongdi.store.migrations import Migration
from gongdi.store.postgres import PostgresEventStore
from tests.appending import SERVICE, append_one


class Recorder:
    """Writes each event's number into a table; refuses the number it was told is poison."""

    def __init__(self, poison: int | None = None):
        self.poison = poison

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        if event.payload["n"] == self.poison:
            raise ValueError("poison")
        await conn.execute("INSERT INTO t.applied (event_id, n) VALUES ($1, $2)", event.event_id, event.payload["n"])


async def publish(pool: asyncpg.Pool, settings: Settings, count: int) -> None:
    store = PostgresEventStore(pool, SERVICE)
    for n in range(count):
        await append_one(store, "s-1", n)
    nc = await nats.connect(settings.nats_servers)
    stop = asyncio.Event()
    relay = Relay(store, nc.jetstream(), SERVICE)
    task = asyncio.create_task(relay.run(stop))
    while relay.published < count:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    await nc.close()


async def run_consumer(settings: Settings, pool: asyncpg.Pool, handler: Recorder, until, seconds: float = 20):
    nc = await nats.connect(settings.nats_servers)
    consumer = OrderedConsumer(nc, pool, "t", SERVICE, "t-consumer", handler, batch=4, max_deliver=2)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    deadline = time.monotonic() + seconds
    try:
        while not await until() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await nc.close()


async def durable(settings: Settings) -> None:
    nc = await nats.connect(settings.nats_servers)
    await ensure_durable(nc.jetstream(), SERVICE, "t-consumer", ack_wait=1.0)
    await nc.close()


async def prepare(pool: asyncpg.Pool, settings: Settings) -> None:
    await pool.execute(checkpoint_sql("t") + stream_heads_sql("t")
                       + "CREATE TABLE t.applied (event_id uuid PRIMARY KEY, n int NOT NULL);")
    await durable(settings)


async def test_redelivery_after_checkpoint_has_no_effect(pool: asyncpg.Pool, ready_settings: Settings):
    await prepare(pool, ready_settings)
    await publish(pool, ready_settings, 10)

    async def all_applied() -> bool:
        return await pool.fetchval("SELECT count(*) FROM t.applied") == 10

    await run_consumer(ready_settings, pool, Recorder(), all_applied)
    # Pretend every ack was lost: replay the whole stream to the same consumer.
    nc = await nats.connect(ready_settings.nats_servers)
    await nc.jetstream().delete_consumer("EVT_MEMBERSHIP", "t-consumer")
    await nc.close()
    await durable(ready_settings)

    async def drained() -> bool:
        nc2 = await nats.connect(ready_settings.nats_servers)
        info = await nc2.jetstream().consumer_info("EVT_MEMBERSHIP", "t-consumer")
        await nc2.close()
        return info.num_pending == 0 and info.num_ack_pending == 0

    await run_consumer(ready_settings, pool, Recorder(), drained)
    assert await pool.fetchval("SELECT count(*) FROM t.applied") == 10
    assert await pool.fetchval("SELECT stream_seq FROM t.consumer_checkpoint") == 10
    last = (await PostgresEventStore(pool, SERVICE).load("s-1"))[-1]
    assert tuple(await pool.fetchrow("SELECT version, hash FROM t.stream_head")) == (10, last.hash)


async def test_poison_event_is_dead_lettered_and_the_rest_applied(pool: asyncpg.Pool, ready_settings: Settings):
    await prepare(pool, ready_settings)
    await publish(pool, ready_settings, 8)
    nc = await nats.connect(ready_settings.nats_servers)
    dlq = await nc.subscribe("dlq.t-consumer")

    async def rest_applied() -> bool:
        return await pool.fetchval("SELECT count(*) FROM t.applied") == 7

    await run_consumer(ready_settings, pool, Recorder(poison=3), rest_applied)
    letter = orjson.loads((await dlq.next_msg(timeout=5)).data)
    await nc.close()
    # The error's type and place, never its text (texts quote the input: names, ID numbers).
    assert letter["stream_seq"] == 4 and letter["error"].startswith("ValueError at test_consumer.py:")
    assert "poison" not in letter["error"]
    assert sorted(r["n"] for r in await pool.fetch("SELECT n FROM t.applied")) == [0, 1, 2, 4, 5, 6, 7]
    assert await pool.fetchval("SELECT count(*) FROM t.dead_letters") == 1
    # The poison event continued its stream: passing it moved the stream's head, so the events after it followed.
    assert await pool.fetchval("SELECT version FROM t.stream_head WHERE stream_id = 's-1'") == 8


class Poisoned:
    """A projection into `schema` that cannot store event number `poison`."""

    def __init__(self, schema: str, poison: int):
        self.schema, self.poison = schema, poison

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        if event.payload["n"] == self.poison:
            raise ValueError("value out of range for 张三")
        await conn.execute(f"INSERT INTO {self.schema}.applied (event_id, n) VALUES ($1, $2)", event.event_id,
                           event.payload["n"])


async def test_a_rebuild_dead_letters_what_it_cannot_store_and_goes_on(pool: asyncpg.Pool, ready_settings: Settings):
    await publish(pool, ready_settings, 6)
    tables = Migration(1, "checkpoint, heads, dead letters, the projection", lambda s: checkpoint_sql(s)
                       + stream_heads_sql(s) + f"CREATE TABLE {s}.applied (event_id uuid PRIMARY KEY, n int NOT NULL);")
    nc = await nats.connect(ready_settings.nats_servers)
    try:
        replayed = await rebuild(nc.jetstream(), pool, "t_rebuilt", "t-consumer", [tables],
                                 [(SERVICE, Poisoned("t_rebuilt", 2))])
    finally:
        await nc.close()
    assert replayed == 5
    assert sorted(r["n"] for r in await pool.fetch("SELECT n FROM t_rebuilt.applied")) == [0, 1, 3, 4, 5]
    letter = await pool.fetchrow("SELECT stream_seq, error FROM t_rebuilt.dead_letters")
    assert letter["stream_seq"] == 3 and letter["error"].startswith("ValueError at test_consumer.py:")
    assert "张三" not in letter["error"]
    assert await pool.fetchval("SELECT stream_seq FROM t_rebuilt.consumer_checkpoint") == 6

"""Postgres store and relay against real Postgres and JetStream: tampering, ordering on the bus, resuming.

What every event store must do is in tests/contract, run against this store and the in-memory one."""
from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable

import asyncpg
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.envelope import Envelope
from contracts.subjects import stream_name
from gongdi.bus.relay import Relay
from gongdi.service.settings import Settings
from gongdi.store.postgres import PostgresEventStore
from tests.appending import SERVICE, append_one
from tests.integration.waiting import eventually

Store = PostgresEventStore


@pytest.fixture
async def store(pool: asyncpg.Pool) -> PostgresEventStore:
    return PostgresEventStore(pool, SERVICE)


async def test_events_and_command_ids_cannot_be_changed_or_removed(store: Store, pool: asyncpg.Pool):
    await append_one(store, "s-1", 1)
    async with store.transaction() as tx:
        await store.save_command(tx, uuid.uuid4(), [])
    for sql in ("""UPDATE membership.events SET payload = '{"n": 99}'""", "DELETE FROM membership.events",
                "TRUNCATE membership.events CASCADE", "UPDATE membership.commands SET warnings = '[]'",
                "DELETE FROM membership.commands", "TRUNCATE membership.commands"):
        with pytest.raises(asyncpg.PostgresError, match="append-only") as refused:
            await pool.execute(sql)
        assert refused.value.sqlstate == "GD403", sql
    assert [r.payload for r in await store.load("s-1")] == ['{"n": 1}']
    assert await pool.fetchval("SELECT count(*) FROM membership.commands") == 1


async def test_tampering_is_detected(store: Store, pool: asyncpg.Pool):
    for n in range(3):
        await append_one(store, "s-1", n)
    async with pool.acquire() as conn, conn.transaction():
        # What only a superuser can do: switch the guard triggers off for the session, then edit.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("""UPDATE membership.events SET payload = '{"n": 99}' WHERE version = 2""")
    problems = await store.verify()
    assert problems == ["s-1 v2: content does not match its hash"]


async def read_stream(settings: Settings) -> list[Envelope]:
    nc = await nats.connect(settings.nats_servers)
    try:
        js = nc.jetstream()
        total = (await js.stream_info(stream_name(SERVICE))).state.messages
        sub = await js.pull_subscribe(
            "evt.>", stream=stream_name(SERVICE),
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
        )
        out: list[Envelope] = []
        while len(out) < total:
            out += [Envelope.from_json(m.data) for m in await sub.fetch(500, timeout=5)]
        return out
    finally:
        await nc.close()


async def test_eight_writers_reach_the_bus_complete_unique_and_in_order(store: Store, ready_settings: Settings):
    nc = await nats.connect(ready_settings.nats_servers)
    stop = asyncio.Event()
    relay = Relay(store, nc.jetstream(), SERVICE, batch=50)
    task = asyncio.create_task(relay.run(stop))
    try:
        async def writer(w: int) -> None:
            # Half the writers share two hot streams, half write their own.
            for n in range(60):
                stream_id = f"hot-{n % 2}" if w < 4 else f"own-{w}"
                await append_one(store, stream_id, n, hold=random.uniform(0, 0.005))

        await asyncio.gather(*(writer(w) for w in range(8)))
        await eventually(lambda: relay.published >= 480)
    finally:
        stop.set()
        await task
        await nc.close()
    events = await read_stream(ready_settings)
    assert len(events) == 480
    assert len({e.event_id for e in events}) == 480
    streams: dict[str, list[int]] = {}
    for e in events:
        streams.setdefault(e.stream_id, []).append(e.version)
    assert all(v == list(range(1, len(v) + 1)) for v in streams.values())
    assert sum(len(v) for k, v in streams.items() if k.startswith("hot")) == 240


async def run_until(store: Store, nc: nats.NATS, done: Callable[[Relay], bool]) -> Relay:
    """Run a relay until `done(relay)` holds (progress, not time), then stop it."""
    stop = asyncio.Event()
    relay = Relay(store, nc.jetstream(), SERVICE, batch=7)
    task = asyncio.create_task(relay.run(stop))
    try:
        assert await eventually(lambda: done(relay) or task.done()), "relay made no progress"
        assert not task.done(), task
    finally:
        stop.set()
        await task
    return relay


async def test_relay_resumes_from_the_stream_tail_without_duplicates(store: Store, ready_settings: Settings):
    for n in range(30):
        await append_one(store, f"s-{n % 4}", n)
    nc = await nats.connect(ready_settings.nats_servers)
    try:
        for life in range(2):  # a second relay life must find nothing left to publish
            relay = await run_until(store, nc, lambda r, life=life: r.published == 30 or (life and r.passes > 0))
            assert relay.published == (30 if life == 0 else 0)
        # Lose the checkpoint entirely: the stream's tail is still the truth.
        await store.pool.execute("DELETE FROM membership.relay_checkpoint")
        await append_one(store, "s-9", 1)
        relay = await run_until(store, nc, lambda r: r.published >= 1 and r.passes > 1)
        assert relay.published == 1
    finally:
        await nc.close()
    events = await read_stream(ready_settings)
    assert len(events) == 31 and len({e.event_id for e in events}) == 31

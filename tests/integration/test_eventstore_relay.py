"""Event store and relay against real Postgres and JetStream: concurrency, gap safety, ordering, tampering."""
from __future__ import annotations

import asyncio
import contextlib
import random
import time

import asyncpg
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.envelope import Envelope
from contracts.subjects import stream_name
from gongdi.bus.relay import Relay
from gongdi.service.settings import Settings
from gongdi.store.postgres import Checkpoint, ConcurrencyError, EventStore, Meta, Pending
from tests.integration.appending import SERVICE, Happened, append_one


@pytest.fixture
async def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool, SERVICE)


async def test_append_and_load_round_trip(store: EventStore):
    await append_one(store, "s-1", 1)
    await append_one(store, "s-1", 2)
    rows = await store.load("s-1")
    assert [r.version for r in rows] == [1, 2]
    assert rows[1].prev_hash == rows[0].hash
    assert [r.envelope(SERVICE).payload for r in rows] == [{"n": 1}, {"n": 2}]
    assert await store.verify() == []


async def test_stale_head_is_a_concurrency_error(store: EventStore):
    await append_one(store, "s-1", 1)
    async with store.pool.acquire() as conn:
        with pytest.raises(ConcurrencyError):
            async with conn.transaction():
                await store.append(conn, [Pending(Happened(n=9), "s-1", "bailin", None)], {}, Meta("test"))
    assert len(await store.load("s-1")) == 1


async def test_tampering_is_detected(store: EventStore, pool: asyncpg.Pool):
    for n in range(3):
        await append_one(store, "s-1", n)
    await pool.execute("""UPDATE membership.events SET payload = '{"n": 99}' WHERE version = 2""")
    problems = await store.verify()
    assert problems == ["s-1 v2: content does not match its hash"]


async def test_reader_never_skips_a_slower_transaction(store: EventStore):
    """Writers hold their transactions open for random times; a polling reader must still see every event once."""
    seen: list[tuple[str, int]] = []
    done = asyncio.Event()

    async def reader() -> None:
        checkpoint = Checkpoint()
        while True:
            finished = done.is_set()
            rows = await store.read_all(checkpoint, 100)
            for r in rows:
                seen.append((r.stream_id, r.version))
                checkpoint = r.checkpoint
            if finished and not rows:
                return
            await asyncio.sleep(0.001)

    async def writer(w: int) -> None:
        for n in range(25):
            await append_one(store, f"s-{(w + n) % 3}", n, hold=random.uniform(0, 0.02))

    task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(8)))
    done.set()
    await task
    assert len(seen) == 200 and len(set(seen)) == 200
    for s in ("s-0", "s-1", "s-2"):
        versions = [v for sid, v in seen if sid == s]
        assert versions == list(range(1, len(versions) + 1))


async def read_stream(settings: Settings) -> list[Envelope]:
    nc = await nats.connect(settings.nats_url)
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


async def test_eight_writers_reach_the_bus_complete_unique_and_in_order(store: EventStore, ready_settings: Settings):
    nc = await nats.connect(ready_settings.nats_url)
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
        deadline = time.monotonic() + 20
        while relay.published < 480 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
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


async def test_relay_resumes_from_the_stream_tail_without_duplicates(store: EventStore, ready_settings: Settings):
    for n in range(30):
        await append_one(store, f"s-{n % 4}", n)
    nc = await nats.connect(ready_settings.nats_url)
    try:
        for _ in range(2):  # a second relay life must find nothing left to publish
            stop = asyncio.Event()
            relay = Relay(store, nc.jetstream(), SERVICE, batch=7)
            task = asyncio.create_task(relay.run(stop))
            await asyncio.sleep(1.0)
            stop.set()
            await task
        # Lose the checkpoint entirely: the stream's tail is still the truth.
        await store.pool.execute("DELETE FROM membership.relay_checkpoint")
        await append_one(store, "s-9", 1)
        stop = asyncio.Event()
        relay = Relay(store, nc.jetstream(), SERVICE)
        task = asyncio.create_task(relay.run(stop))
        await asyncio.sleep(1.0)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert relay.published == 1
    finally:
        await nc.close()
    events = await read_stream(ready_settings)
    assert len(events) == 31 and len({e.event_id for e in events}) == 31

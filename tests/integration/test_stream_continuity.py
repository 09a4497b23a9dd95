"""Forged events on the stream, against real JetStream and Postgres: refused, dead-lettered, the rest goes on.

The attacker here got around the bus permissions and publishes straight onto the membership stream. The relay
would stop at such a foreign tail (`RelayOutOfSyncError`), so the tests publish the genuine events themselves,
exactly as the relay does (the stored row's published form, its event id as `Nats-Msg-Id`).
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import nats
import orjson
import structlog
from nats.aio.client import Client as NATS

from contracts.envelope import Envelope
from contracts.subjects import event_subject
from gongdi.bus.consumer import OrderedConsumer, checkpoint_sql, stream_heads_sql
from gongdi.bus.continuity import own_hash
from gongdi.bus.replay import rebuild
from gongdi.bus.streams import ensure_durable
from gongdi.service.settings import Settings
from gongdi.store.migrations import Migration, migrate
from gongdi.store.postgres import PostgresEventStore
from tests.appending import SERVICE, append_one
from tests.integration.waiting import eventually

DURABLE = "t-consumer"


class Recorder:
    """The projection under attack: writes each applied event's number into a table."""

    def __init__(self, schema: str = "t"):
        self.schema = schema

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        await conn.execute(f"INSERT INTO {self.schema}.applied (event_id, n) VALUES ($1, $2)", event.event_id,
                           event.payload["n"])


MIGRATIONS = [
    Migration(1, "checkpoint, dead letters and the recorder's table",
              lambda s: checkpoint_sql(s) + f"CREATE TABLE {s}.applied (event_id uuid PRIMARY KEY, n int NOT NULL);"),
    Migration(2, "stream heads", stream_heads_sql),
]


class Published:
    """Publishes onto the membership stream and says at which stream sequence each message landed."""

    def __init__(self, nc: NATS):
        self.js = nc.jetstream()

    async def genuine(self, store: PostgresEventStore, stream_id: str, n: int) -> Envelope:
        """Append an event as a writer does, then publish its stored row as the relay does."""
        await append_one(store, stream_id, n)
        row = (await store.load(stream_id))[-1]
        await self._publish(row.township, row.type, row.envelope_json(SERVICE), str(row.event_id))
        return row.envelope(SERVICE)

    async def again(self, event: Envelope) -> int:
        """A genuine event once more, under a new message id so that JetStream's duplicate window lets it in."""
        return await self._publish(event.township, event.type, event.to_json(), str(uuid.uuid4()))

    async def forged(self, event: Envelope) -> int:
        return await self._publish(event.township, event.type, event.to_json(), str(event.event_id))

    async def _publish(self, township: str, event_type: str, body: bytes, msg_id: str) -> int:
        ack = await self.js.publish(event_subject(township, SERVICE, event_type), body,
                                    headers={"Nats-Msg-Id": msg_id})
        return ack.seq


def forge(template: Envelope, rehash: bool = True, **changes: Any) -> Envelope:
    """A new event made from a genuine one; its hash recomputed, as anyone can (the hash has no secret)."""
    event = template.model_copy(update={"event_id": uuid.uuid4(), **changes})
    return event.model_copy(update={"hash": own_hash(event)}) if rehash else event


async def prepare(pool: asyncpg.Pool, settings: Settings, old_checkpoint: int | None = None) -> None:
    """Schema `t` as the migrations leave it; with `old_checkpoint`, as an earlier release's consumer left it."""
    async with pool.acquire() as conn:
        await migrate(conn, "t", MIGRATIONS[:1])
        if old_checkpoint is not None:
            await conn.execute("INSERT INTO t.consumer_checkpoint (consumer, stream, stream_seq)"
                               " VALUES ($1, 'EVT_MEMBERSHIP', $2)", DURABLE, old_checkpoint)
        await migrate(conn, "t", MIGRATIONS)
    nc = await nats.connect(settings.nats_servers)
    try:
        await ensure_durable(nc.jetstream(), SERVICE, DURABLE, ack_wait=1.0)
    finally:
        await nc.close()


async def consume(settings: Settings, pool: asyncpg.Pool, until_seq: int) -> list[dict[str, Any]]:
    """Run the consumer until its checkpoint reaches `until_seq`; the log entries it wrote."""
    logs = structlog.testing.LogCapture()
    nc = await nats.connect(settings.nats_servers)
    consumer = OrderedConsumer(nc, pool, "t", SERVICE, DURABLE, Recorder(), batch=4, max_deliver=2,
                               log=structlog.wrap_logger(None, processors=[logs]))
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        reached = await eventually(lambda: checkpoint_at(pool, until_seq))
        assert reached, f"the consumer's checkpoint did not reach {until_seq}"
    finally:
        stop.set()
        await task
        await nc.close()
    return logs.entries


async def checkpoint_at(pool: asyncpg.Pool, seq: int) -> bool:
    return await pool.fetchval("SELECT stream_seq FROM t.consumer_checkpoint") == seq


async def heads(pool: asyncpg.Pool, schema: str = "t") -> dict[str, tuple[int, str]]:
    return {r["stream_id"]: (r["version"], r["hash"]) for r in await pool.fetch(f"SELECT * FROM {schema}.stream_head")}


async def applied(pool: asyncpg.Pool, schema: str = "t") -> list[int]:
    return sorted(r["n"] for r in await pool.fetch(f"SELECT n FROM {schema}.applied"))


async def dead_letters(pool: asyncpg.Pool, schema: str = "t") -> list[int]:
    return sorted(r["stream_seq"] for r in await pool.fetch(f"SELECT stream_seq FROM {schema}.dead_letters"))


async def test_forged_events_are_refused_dead_lettered_and_the_stream_goes_on(pool: asyncpg.Pool,
                                                                              ready_settings: Settings):
    await prepare(pool, ready_settings)
    store = PostgresEventStore(pool, SERVICE)
    nc = await nats.connect(ready_settings.nats_servers)
    dlq = await nc.subscribe("dlq.t-consumer")
    pub = Published(nc)
    s1 = [await pub.genuine(store, "s-1", n) for n in range(3)]         # seq 1..3: s-1 v1..v3
    s2 = [await pub.genuine(store, "s-2", 10)]                           # seq 4: s-2 v1
    head = s1[-1]
    nothing = "0" * 64
    bad_content = forge(head, version=4, prev_hash=head.hash, payload={"n": 102})
    refused = {
        await pub.forged(forge(head, version=4, prev_hash=nothing, payload={"n": 100})): "wrong prev_hash",
        await pub.forged(forge(head, version=5, prev_hash=head.hash, payload={"n": 101})): "skipped version",
        await pub.forged(bad_content.model_copy(update={"payload": {"n": 103}})): "hash not of its content",
        await pub.again(s1[1]): "an older event again",
    }
    duplicate = await pub.again(head)                                     # the head again: a duplicate
    refused[await pub.forged(forge(s2[0], stream_id="s-9", version=3, prev_hash=nothing,
                                   payload={"n": 104}))] = "a new stream begun in its middle"
    assert sorted(refused) == [5, 6, 7, 8, 10] and duplicate == 9
    # The pipeline is unharmed: genuine events of the attacked stream and of others apply after the forgeries.
    later = [await pub.genuine(store, "s-1", 3), await pub.genuine(store, "s-2", 11),
             await pub.genuine(store, "s-3", 20)]                        # seq 11..13

    logs = await consume(ready_settings, pool, until_seq=13)

    assert await applied(pool) == [0, 1, 2, 3, 10, 11, 20]
    assert await heads(pool) == {"s-1": (4, later[0].hash), "s-2": (2, later[1].hash), "s-3": (1, later[2].hash)}
    letters = {r["stream_seq"]: r for r in await pool.fetch("SELECT * FROM t.dead_letters")}
    assert sorted(letters) == sorted(refused)
    assert all("does not continue its stream" in r["error"] for r in letters.values())
    assert Envelope.from_json(letters[5]["body"]).payload == {"n": 100}
    dead = sorted([orjson.loads((await dlq.next_msg(timeout=5)).data)["stream_seq"] for _ in refused])
    assert dead == sorted(refused)
    # A rebuild from the stream refuses the same events and ends where the live consumer is.
    replayed = await rebuild(nc.jetstream(), pool, "t_rebuilt", DURABLE, MIGRATIONS, [(SERVICE, Recorder("t_rebuilt"))])
    await nc.close()
    assert replayed == 7 and await applied(pool, "t_rebuilt") == await applied(pool)
    assert await heads(pool, "t_rebuilt") == await heads(pool)
    assert await dead_letters(pool, "t_rebuilt") == sorted(refused)

    errors = {e["stream_seq"]: e for e in logs if e["log_level"] == "error"}
    assert sorted(errors) == sorted(refused), refused
    assert all(e["event"] == "event refused: it does not continue its stream" and e["stream"] == "EVT_MEMBERSHIP"
               for e in errors.values())
    assert (errors[5]["stream_id"], errors[5]["expected"], errors[5]["got"]) == (
        "s-1", f"version 4 after {head.hash}", f"version 4 after {nothing}")
    assert (errors[6]["expected"], errors[6]["got"]) == (f"version 4 after {head.hash}", f"version 5 after {head.hash}")
    assert errors[7]["got"] == f"hash {bad_content.hash}"
    assert (errors[8]["expected"], errors[8]["got"]) == (f"version 4 after {head.hash}",
                                                         f"version 2 after {s1[0].hash}")
    assert (errors[10]["stream_id"], errors[10]["expected"]) == ("s-9", "version 1 after nothing")
    skipped = [e for e in logs if e["log_level"] == "warning" and e["stream_seq"] == duplicate]
    assert [e["event"] for e in skipped] == ["event already applied at the head of its stream; skipped"]


async def test_a_consumer_from_before_heads_takes_the_next_event_of_an_old_stream_as_its_start(
        pool: asyncpg.Pool, ready_settings: Settings):
    # An earlier release's consumer applied s-1 v1..v3 (seq 1..3) and kept no heads; then the migration came.
    await prepare(pool, ready_settings, old_checkpoint=3)
    assert await pool.fetchval("SELECT heads_from FROM t.consumer_checkpoint") == 3
    store = PostgresEventStore(pool, SERVICE)
    nc = await nats.connect(ready_settings.nats_servers)
    pub = Published(nc)
    for n in range(3):
        await pub.genuine(store, "s-1", n)
    fourth = await pub.genuine(store, "s-1", 3)                           # seq 4: s-1 v4, no head yet: the start
    new = await pub.genuine(store, "s-2", 10)                             # seq 5: a stream begun since
    skipped = await pub.forged(forge(fourth, version=6, prev_hash=fourth.hash, payload={"n": 100}))
    fifth = await pub.genuine(store, "s-1", 4)                            # seq 7: s-1 v5 follows v4
    await nc.close()
    assert skipped == 6

    await consume(ready_settings, pool, until_seq=7)

    assert await applied(pool) == [3, 4, 10]
    assert await heads(pool) == {"s-1": (5, fifth.hash), "s-2": (1, new.hash)}
    assert await dead_letters(pool) == [6]

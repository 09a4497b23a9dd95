"""Views composition root: the ordered consumer, the query subscribers, setup and rebuild."""
from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
from faststream import FastStream
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.activities import SERVICE as ACTIVITIES
from contracts.envelope import Envelope
from contracts.liaison import SERVICE as LIAISON
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.subjects import query_subject, stream_name, stream_subjects
from gongdi.bus.consumer import Handler, OrderedConsumer, checkpoint_sql
from gongdi.bus.streams import ensure_durable, require_stream
from gongdi.service.logging import configure
from gongdi.service.process import Background, apply_sql, connect_nats, create_pool, reply_handler
from gongdi.service.process import broker as make_broker
from gongdi.service.settings import Settings
from services.views.activity_projections import ActivityProjection
from services.views.handlers import LivePublisher, ViewQueries
from services.views.liaison_projections import LiaisonProjection
from services.views.projections import SiteProjection, tables_sql

SERVICE = "views"
SCHEMA = "views"
DURABLE = "views"
QUERIES = ("city", "site", "township", "birthdays", "talks", "status")


def projections(schema: str) -> list[tuple[str, Handler]]:
    """Which stream feeds which projection; projections of different streams touch different tables."""
    return [(MEMBERSHIP, SiteProjection(schema)), (ACTIVITIES, ActivityProjection(schema)),
            (LIAISON, LiaisonProjection(schema))]


def build_app(settings: Settings) -> FastStream:
    log = configure(settings.log_format, settings.log_level, SERVICE)
    broker = make_broker(settings)
    bound: list[ViewQueries] = []

    for name in QUERIES:
        reply_handler(broker, query_subject(SERVICE, name), SERVICE, 8,
                      lambda body, name=name: getattr(bound[0], name)(body))

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        pool = await create_pool(settings)
        nc = await connect_nats(settings, "views-consumer")
        live = LivePublisher(nc)
        tasks = []
        for service, projection in projections(SCHEMA):
            await require_stream(nc.jetstream(), service)
            consumer = OrderedConsumer(nc, pool, SCHEMA, service, DURABLE, projection, settings.consumer_batch,
                                       settings.consumer_max_deliver, live.changed, log)
            # A dead consumer must take the process down with it, so that the supervisor restarts it.
            tasks.append(Background(consumer.run, lambda: os.kill(os.getpid(), signal.SIGTERM)))
        bound.append(ViewQueries(pool, SCHEMA, nc.jetstream(), [stream_name(s) for s, _ in projections(SCHEMA)]))
        log.info("views ready")
        try:
            yield
        finally:
            for task in tasks:
                await task.close()
            await nc.close()
            await pool.close()

    return FastStream(broker, lifespan=lifespan, logger=None)


async def setup(settings: Settings) -> list[str]:
    """Idempotent: read-model tables, checkpoint tables and the durable consumer."""
    await apply_sql(settings, tables_sql(SCHEMA), checkpoint_sql(SCHEMA))
    nc = await connect_nats(settings, "views-setup")
    try:
        js = nc.jetstream()
        lines = [f"schema {SCHEMA}: ready"]
        for service, _ in projections(SCHEMA):
            await require_stream(js, service)
            durable = await ensure_durable(js, service, DURABLE, settings.consumer_ack_wait)
            lines.append(f"consumer {DURABLE} on {stream_name(service)}: {durable}")
    finally:
        await nc.close()
    return lines


async def rebuild(settings: Settings, target: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Replay every stream into schema `target` (dropped first), in batched transactions."""
    pool = await create_pool(settings, 2)
    nc = await connect_nats(settings, "views-rebuild")
    applied = 0
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
            await conn.execute(tables_sql(target))
            await conn.execute(checkpoint_sql(target))
        for service, projection in projections(target):
            applied += await _replay(nc.jetstream(), pool, target, service, projection, progress)
    finally:
        await nc.close()
        await pool.close()
    return applied


async def _replay(js, pool: asyncpg.Pool, target: str, service: str, projection, progress) -> int:
    stream = stream_name(service)
    last = (await js.stream_info(stream)).state.last_seq
    if last == 0:
        return 0
    sub = await js.pull_subscribe(
        stream_subjects(service)[0], stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=60.0),
    )
    seq = applied = 0
    while seq < last:
        msgs = await sub.fetch(1000, timeout=5)
        async with pool.acquire() as conn, conn.transaction():
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last:
                    break
                await projection.apply(conn, Envelope.from_json(msg.data))
                applied += 1
            await conn.execute(
                f"INSERT INTO {target}.consumer_checkpoint (consumer, stream, stream_seq) VALUES ($1, $2, $3)"
                " ON CONFLICT (consumer, stream) DO UPDATE SET stream_seq = $3",
                DURABLE, stream, min(seq, last),
            )
        if progress:
            progress(min(seq, last), last)
    await sub.unsubscribe()
    return applied


async def _main_rebuild(settings: Settings, target: str) -> None:
    n = await rebuild(settings, target, lambda done, total: print(f"\r重建 {done}/{total}", end="", flush=True))
    print(f"\n{n} events replayed into schema {target}")


def run_rebuild(settings: Settings, target: str) -> None:
    asyncio.run(_main_rebuild(settings, target))

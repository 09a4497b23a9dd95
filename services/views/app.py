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

from contracts.envelope import Envelope
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.subjects import query_subject, stream_name, stream_subjects
from gongdi.consumer import OrderedConsumer, checkpoint_sql
from gongdi.jetstream import ensure_durable, require_stream
from gongdi.logging import configure
from gongdi.service import Background, apply_sql, connect_nats, create_pool, reply_handler
from gongdi.service import broker as make_broker
from gongdi.settings import Settings
from services.views.handlers import LivePublisher, ViewQueries
from services.views.projections import SiteProjection, tables_sql

SERVICE = "views"
SCHEMA = "views"
DURABLE = "views"


def build_app(settings: Settings) -> FastStream:
    log = configure(settings.log_format, settings.log_level, SERVICE)
    broker = make_broker(settings)
    bound: list[ViewQueries] = []

    reply_handler(broker, query_subject(SERVICE, "city"), SERVICE, 8, lambda body: bound[0].city(body))
    reply_handler(broker, query_subject(SERVICE, "site"), SERVICE, 8, lambda body: bound[0].site(body))

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        pool = await create_pool(settings)
        nc = await connect_nats(settings, "views-consumer")
        await require_stream(nc.jetstream(), MEMBERSHIP)
        consumer = OrderedConsumer(
            nc, pool, SCHEMA, MEMBERSHIP, DURABLE, SiteProjection(SCHEMA), settings.consumer_batch,
            settings.consumer_max_deliver, LivePublisher(nc).changed, log,
        )
        bound.append(ViewQueries(pool, SCHEMA))
        # A dead consumer must take the process down with it, so that the supervisor restarts it.
        task = Background(consumer.run, lambda: os.kill(os.getpid(), signal.SIGTERM))
        log.info("views ready")
        try:
            yield
        finally:
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
        await require_stream(js, MEMBERSHIP)
        durable = await ensure_durable(js, MEMBERSHIP, DURABLE, settings.consumer_ack_wait)
    finally:
        await nc.close()
    return [f"schema {SCHEMA}: ready", f"consumer {DURABLE} on {stream_name(MEMBERSHIP)}: {durable}"]


async def rebuild(settings: Settings, target: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Replay the whole membership stream into schema `target` (dropped first), in batched transactions."""
    pool = await create_pool(settings, 2)
    nc = await connect_nats(settings, "views-rebuild")
    applied = 0
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream_name(MEMBERSHIP))).state.last_seq
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
            await conn.execute(tables_sql(target))
            await conn.execute(checkpoint_sql(target))
        if last == 0:
            return 0
        projection = SiteProjection(target)
        sub = await js.pull_subscribe(
            stream_subjects(MEMBERSHIP)[0], stream=stream_name(MEMBERSHIP),
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                                  inactive_threshold=60.0),
        )
        seq = 0
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
                    DURABLE, stream_name(MEMBERSHIP), min(seq, last),
                )
            if progress:
                progress(min(seq, last), last)
        await sub.unsubscribe()
    finally:
        await nc.close()
        await pool.close()
    return applied


async def city_counts(pool: asyncpg.Pool, schema: str) -> dict:
    from services.views.queries import city

    async with pool.acquire() as conn:
        return await city(conn, schema)


async def _main_rebuild(settings: Settings, target: str) -> None:
    n = await rebuild(settings, target, lambda done, total: print(f"\r重建 {done}/{total}", end="", flush=True))
    print(f"\n{n} events replayed into schema {target}")


def run_rebuild(settings: Settings, target: str) -> None:
    asyncio.run(_main_rebuild(settings, target))

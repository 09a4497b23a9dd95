"""Activities composition root: commands, the membership-event policy consumer, setup."""
from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from contracts.activities import COMMANDS, SERVICE
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.rules import DEFAULT_RULES
from contracts.subjects import command_subject, stream_name
from gongdi.consumer import OrderedConsumer, checkpoint_sql
from gongdi.eventstore import EventStore, schema_sql
from gongdi.jetstream import ensure_durable, ensure_event_stream, require_stream
from gongdi.logging import configure
from gongdi.service import Background, apply_sql, connect_nats, create_pool, reply_handler
from gongdi.service import broker as make_broker
from gongdi.settings import Settings
from gongdi.sitestream import SiteCommands, SiteStream, Snapshots
from services.activities.domain import ActivitySite, evolve
from services.activities.handlers import MembershipPolicy, activity_commands
from services.activities.repository import SCHEMA, TABLES_SQL

DURABLE = "activities"
SNAPSHOTS = Snapshots(SCHEMA, ActivitySite)


def build_app(settings: Settings) -> FastStream:
    log = configure(settings.log_format, settings.log_level, SERVICE)
    broker = make_broker(settings)
    bound: list[SiteCommands[ActivitySite]] = []  # filled in the lifespan, before the broker starts
    for name in COMMANDS:
        reply_handler(broker, command_subject(SERVICE, name), SERVICE, settings.workers,
                      lambda body, name=name: bound[0].handle(name, body))

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        pool = await create_pool(settings)
        stream = SiteStream(EventStore(pool, SCHEMA), SNAPSHOTS, evolve)
        nc = await connect_nats(settings, "activities-policy")
        await require_stream(nc.jetstream(), MEMBERSHIP)
        policy = OrderedConsumer(nc, pool, SCHEMA, MEMBERSHIP, DURABLE, MembershipPolicy(stream, DEFAULT_RULES),
                                 settings.consumer_batch, settings.consumer_max_deliver, log=log)
        bound.append(activity_commands(pool, stream, DEFAULT_RULES, log))
        task = Background(policy.run, lambda: os.kill(os.getpid(), signal.SIGTERM))
        log.info("activities ready", commands=list(COMMANDS))
        try:
            yield
        finally:
            await task.close()
            await nc.close()
            await pool.close()

    return FastStream(broker, lifespan=lifespan, logger=None)


async def setup(settings: Settings) -> list[str]:
    """Idempotent: schema, tables, the activities stream, and the consumer of membership events."""
    await apply_sql(settings, schema_sql(SCHEMA), SNAPSHOTS.table_sql(), TABLES_SQL, checkpoint_sql(SCHEMA))
    nc = await connect_nats(settings, "activities-setup")
    try:
        js = nc.jetstream()
        stream = await ensure_event_stream(js, SERVICE, settings.stream_replicas)
        await require_stream(js, MEMBERSHIP)
        durable = await ensure_durable(js, MEMBERSHIP, DURABLE, settings.consumer_ack_wait)
    finally:
        await nc.close()
    return [f"schema {SCHEMA}: ready", f"stream of {SERVICE}: {stream}",
            f"consumer {DURABLE} on {stream_name(MEMBERSHIP)}: {durable}"]

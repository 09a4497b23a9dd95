"""Membership composition root: settings, pool, broker, store and handlers are wired here and nowhere else."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from contracts.membership import COMMANDS, SERVICE
from contracts.rules import DEFAULT_RULES
from contracts.subjects import command_subject
from gongdi.bus.streams import ensure_event_stream
from gongdi.service.logging import configure
from gongdi.service.process import apply_sql, connect_nats, create_pool, reply_handler
from gongdi.service.process import broker as make_broker
from gongdi.service.settings import Settings
from gongdi.store.postgres import EventStore, schema_sql
from services.membership.handlers import MembershipHandlers
from services.membership.repository import SCHEMA, TABLES_SQL


def build_app(settings: Settings) -> FastStream:
    log = configure(settings.log_format, settings.log_level, SERVICE)
    broker = make_broker(settings)
    bound: list[MembershipHandlers] = []  # filled in the lifespan, before the broker starts
    for name in COMMANDS:
        reply_handler(broker, command_subject(SERVICE, name), SERVICE, settings.workers,
                      lambda body, name=name: bound[0].handle(name, body))

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        pool = await create_pool(settings)
        bound.append(MembershipHandlers(pool, EventStore(pool, SCHEMA), DEFAULT_RULES, log))
        log.info("membership ready", commands=list(COMMANDS))
        try:
            yield
        finally:
            await pool.close()

    return FastStream(broker, lifespan=lifespan, logger=None)


async def setup(settings: Settings) -> list[str]:
    """Idempotent: schema, tables and the event stream."""
    await apply_sql(settings, schema_sql(SCHEMA), TABLES_SQL)
    nc = await connect_nats(settings, "membership-setup")
    try:
        stream = await ensure_event_stream(nc.jetstream(), SERVICE, settings.stream_replicas)
    finally:
        await nc.close()
    return [f"schema {SCHEMA}: ready", f"stream of {SERVICE}: {stream}"]

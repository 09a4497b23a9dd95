"""The composition every per-site writing service shares: command endpoints, a policy over membership events."""
from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from faststream import FastStream

from contracts.base import Command, Event
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.subjects import command_subject, stream_name
from gongdi.bus.consumer import Handler, OrderedConsumer, checkpoint_sql
from gongdi.bus.streams import ensure_durable, ensure_event_stream, require_stream
from gongdi.service.logging import configure
from gongdi.service.process import Background, apply_sql, connect_nats, create_pool, reply_handler
from gongdi.service.process import broker as make_broker
from gongdi.service.settings import Settings
from gongdi.store.postgres import EventStore, schema_sql
from gongdi.store.sitestreams import SiteCommands, SiteStream, Snapshots


@dataclass(frozen=True)
class SiteService:
    """What a service declares; `app` and `setup` do the rest."""

    name: str  # also its schema, its stream's service token and its durable consumer of membership events
    commands: dict[str, type[Command]]
    snapshots: Snapshots
    evolve: Callable[[Any, Event], Any]
    tables_sql: str
    make_commands: Callable[[asyncpg.Pool, SiteStream, structlog.BoundLogger], SiteCommands]
    make_policy: Callable[[SiteStream], Handler]

    def app(self, settings: Settings) -> FastStream:
        log = configure(settings.log_format, settings.log_level, self.name)
        broker = make_broker(settings)
        bound: list[SiteCommands] = []  # filled in the lifespan, before the broker starts
        for command in self.commands:
            reply_handler(broker, command_subject(self.name, command), self.name, settings.workers,
                          lambda body, command=command: bound[0].handle(command, body))

        @asynccontextmanager
        async def lifespan() -> AsyncIterator[None]:
            pool = await create_pool(settings)
            stream = SiteStream(EventStore(pool, self.name), self.snapshots, self.evolve)
            nc = await connect_nats(settings, f"{self.name}-policy")
            await require_stream(nc.jetstream(), MEMBERSHIP)
            policy = OrderedConsumer(nc, pool, self.name, MEMBERSHIP, self.name, self.make_policy(stream),
                                     settings.consumer_batch, settings.consumer_max_deliver, log=log)
            bound.append(self.make_commands(pool, stream, log))
            # A dead policy must take the process down with it, so that the supervisor restarts it.
            task = Background(policy.run, lambda: os.kill(os.getpid(), signal.SIGTERM))
            log.info(f"{self.name} ready", commands=list(self.commands))
            try:
                yield
            finally:
                await task.close()
                await nc.close()
                await pool.close()

        return FastStream(broker, lifespan=lifespan, logger=None)

    async def setup(self, settings: Settings) -> list[str]:
        """Idempotent: schema, tables, the service's stream, and its consumer of membership events."""
        schema = self.name
        await apply_sql(settings, schema_sql(schema), self.snapshots.table_sql(), self.tables_sql,
                        checkpoint_sql(schema))
        nc = await connect_nats(settings, f"{self.name}-setup")
        try:
            js = nc.jetstream()
            stream = await ensure_event_stream(js, self.name, settings.stream_replicas)
            await require_stream(js, MEMBERSHIP)
            durable = await ensure_durable(js, MEMBERSHIP, self.name, settings.consumer_ack_wait)
        finally:
            await nc.close()
        return [f"schema {schema}: ready", f"stream of {self.name}: {stream}",
                f"consumer {self.name} on {stream_name(MEMBERSHIP)}: {durable}"]

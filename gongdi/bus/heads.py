"""The signed heads on the bus: the HEADS stream (no deletes, no purges), each writer's publisher, and the readers
that `gongdi verify` compares PostgreSQL with (the latest head, and the JetStream copy of the events)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import nats.errors
import orjson
import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from contracts.subjects import stream_name, stream_subjects
from gongdi.store.heads import HeadKey, read_head

HEADS_STREAM = "HEADS"
FETCH = 1000


def head_subject(service: str) -> str:
    return f"heads.{service}"


def heads_stream_config(replicas: int = 1) -> StreamConfig:
    # Deletes and purges denied: once published, a head stays, whatever is done to the database. (An operator of
    # the NATS account can still delete the whole stream: hence the export file an auditor keeps.)
    return StreamConfig(name=HEADS_STREAM, subjects=["heads.>"], storage=StorageType.FILE,
                        retention=RetentionPolicy.LIMITS, num_replicas=replicas, deny_delete=True, deny_purge=True,
                        allow_direct=True)


async def ensure_heads_stream(js: JetStreamContext, replicas: int = 1) -> str:
    try:
        info = await js.stream_info(HEADS_STREAM)
    except NotFoundError:
        await js.add_stream(heads_stream_config(replicas))
        return "created"
    if not (info.config.deny_delete and info.config.deny_purge):
        return "已有，但允许删除或清除（签名日志头可被删改），未改动"
    return "exists"


class HeadPublisher:
    """Signs and publishes the service's log head every `interval` seconds and once more when stopped."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, service: str, key: HeadKey, interval: float,
                 log: structlog.BoundLogger | None = None):
        self.pool, self.js, self.service, self.key, self.interval = pool, js, service, key, interval
        self.log = log or structlog.get_logger()
        self.published = 0
        self.previous: dict[str, Any] | None = None  # the last head this process signed

    async def publish(self) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            head = await read_head(conn, self.service)
        before = self.previous
        if before is not None and any(getattr(head, k) < before.get(k, 0) for k in ("events", "position", "commands")):
            # Signed all the same: the heads must say what the database holds; `gongdi verify` names the drop.
            self.log.error("log head went backwards: events or commands were removed from the database",
                           events=head.events, before=before.get("events"), commands=head.commands,
                           commands_before=before.get("commands"))
        signed = self.key.sign(head)
        await self.js.publish(head_subject(self.service), orjson.dumps(signed), stream=HEADS_STREAM)
        self.published += 1
        self.previous = signed
        return signed

    async def _publish_logged(self) -> None:
        try:
            await self.publish()
        except (nats.errors.Error, asyncpg.PostgresError, OSError, TimeoutError) as exc:
            # A missed head is not a lost event: the next one covers everything this one would have.
            self.log.warning("log head not published", error=f"{type(exc).__name__}: {exc}")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._publish_logged()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        await self._publish_logged()  # on shutdown: the last head covers everything written until now


async def latest_head(js: JetStreamContext, service: str) -> dict[str, Any] | None:
    try:
        msg = await js.get_last_msg(HEADS_STREAM, head_subject(service))
    except NotFoundError:
        return None
    return orjson.loads(msg.data)


async def each_head(js: JetStreamContext, service: str) -> AsyncIterator[dict[str, Any]]:
    """Every head the service had published when asked, oldest first, decoded (a head a minute: read in batches,
    not kept)."""
    subject = head_subject(service)
    try:
        state = (await js.stream_info(HEADS_STREAM, subjects_filter=subject)).state
    except NotFoundError:
        return
    count = (state.subjects or {}).get(subject, 0)
    if not count:
        return
    sub = await js.pull_subscribe(
        subject, stream=HEADS_STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0,
                              mem_storage=True))
    try:
        read = 0
        while read < count:
            for m in await sub.fetch(min(FETCH, count - read), timeout=5):
                if m.metadata.sequence.stream > state.last_seq:
                    return
                read += 1
                yield orjson.loads(m.data)
    finally:
        await sub.unsubscribe()


async def event_copy(js: JetStreamContext, service: str) -> list[dict[str, Any]] | None:
    """Every event in the service's stream up to its last sequence when asked, decoded; None without a stream."""
    stream = stream_name(service)
    try:
        state = (await js.stream_info(stream)).state
    except NotFoundError:
        return None
    out: list[dict[str, Any]] = []
    last = state.last_seq
    if state.messages == 0:  # never written, or purged (its sequence numbers go on)
        return out
    sub = await js.pull_subscribe(
        stream_subjects(service)[0], stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0,
                              mem_storage=True))
    try:
        seq = 0
        while seq < last:
            try:
                fetched = await sub.fetch(FETCH, timeout=5)
            except TimeoutError:
                break  # the messages up to `last` were deleted since
            msgs = [m for m in fetched if m.metadata.sequence.stream <= last]
            out += [orjson.loads(m.data) for m in msgs]
            seq = msgs[-1].metadata.sequence.stream if msgs else last
    finally:
        await sub.unsubscribe()
    return out

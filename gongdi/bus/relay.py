"""Relay: committed events → JetStream, in gap-safe order, pipelined, each publish conditional on the last."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from uuid import UUID

import structlog
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from contracts.subjects import event_subject, stream_name
from gongdi.store.base import Checkpoint
from gongdi.store.postgres import PostgresEventStore


class RelayOutOfSyncError(RuntimeError):
    """The stream holds an event this database does not: they belong to different installations."""


@dataclass
class Position:
    checkpoint: Checkpoint
    stream_seq: int


class Relay:
    """The only publisher of its service's stream.

    Every publish carries `Nats-Expected-Last-Sequence`, so a lost or failed publish makes all later ones in
    flight fail too: the stream can never receive a stream's events out of order. After any failure the relay
    re-reads the stream's tail to learn exactly what landed and goes on from there.
    """

    def __init__(
        self,
        store: PostgresEventStore,
        js: JetStreamContext,
        service: str,
        batch: int = 500,
        idle_wait: float = 0.2,
        log: structlog.BoundLogger | None = None,
    ):
        self.store = store
        self.js = js
        self.service = service
        self.stream = stream_name(service)
        self.batch = batch
        self.idle_wait = idle_wait
        self.log = log or structlog.get_logger()
        self.published = 0
        self.passes = 0  # reads of the log completed, found something or not: progress a test can wait on
        self._wake = asyncio.Event()

    async def resync(self) -> Position:
        info = await self.js.stream_info(self.stream)
        last_seq = info.state.last_seq
        if last_seq == 0:
            return Position(Checkpoint(), 0)
        msg = await self.js.get_msg(self.stream, seq=last_seq, direct=True)
        event_id = (msg.headers or {}).get("Nats-Msg-Id")
        async with self.store.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT tx_id::text::bigint AS tx_id, position FROM {self.store.schema}.events"
                " WHERE event_id = $1",
                UUID(event_id) if event_id else None,
            )
        if row is None:
            raise RelayOutOfSyncError(
                f"stream {self.stream} ends with event {event_id}, unknown to schema {self.store.schema}"
            )
        return Position(Checkpoint(row["tx_id"], row["position"]), last_seq)

    async def save(self, pos: Position) -> None:
        async with self.store.pool.acquire() as conn:
            await conn.execute(
                f"INSERT INTO {self.store.schema}.relay_checkpoint (id, tx_id, position, stream_seq)"
                " VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET tx_id = $1, position = $2,"
                " stream_seq = $3, updated_at = now()",
                pos.checkpoint.tx_id, pos.checkpoint.position, pos.stream_seq,
            )

    async def pump(self, pos: Position) -> int:
        """Publish one batch after `pos`; advances `pos` only past what the stream acknowledged."""
        rows = await self.store.read_all(pos.checkpoint, self.batch)
        if not rows:
            self.passes += 1
            return 0
        futures = []
        for i, row in enumerate(rows):
            headers = {"Nats-Msg-Id": str(row.event_id), "Nats-Expected-Last-Sequence": str(pos.stream_seq + i)}
            subject = event_subject(row.township, self.service, row.type)
            futures.append(await self.js.publish_async(subject, row.envelope_json(self.service), headers=headers))
        acks = await asyncio.gather(*futures)
        pos.stream_seq = acks[-1].seq
        pos.checkpoint = rows[-1].checkpoint
        self.published += len(rows)
        self.passes += 1
        return len(rows)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        channel = f"{self.store.schema}_events"
        listener = await self.store.pool.acquire()
        try:
            await listener.add_listener(channel, self._on_notify)
            pos = await self.resync()
            await self.save(pos)
            self.log.info("relay resumed", stream=self.stream, stream_seq=pos.stream_seq)
            while not stop.is_set():
                try:
                    n = await self.pump(pos)
                except (APIError, NotFoundError, TimeoutError) as exc:
                    self.log.warning("relay publish failed; resyncing from stream tail", error=str(exc))
                    await asyncio.sleep(0.5)
                    pos = await self.resync()
                    continue
                if n:
                    await self.save(pos)
                if n < self.batch:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_wait)
        finally:
            await listener.remove_listener(channel, self._on_notify)
            await self.store.pool.release(listener)

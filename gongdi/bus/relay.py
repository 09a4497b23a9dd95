"""Relay: committed events → JetStream, in gap-safe order, pipelined, each publish conditional on the last."""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.subjects import event_subject, stream_name
from gongdi.store.base import Checkpoint
from gongdi.store.postgres import PostgresEventStore

REPAIR = "gongdi repair-stream {service}"  # documented in the README: republish the stream from PostgreSQL


class StreamUnusableError(RuntimeError):
    """The stream cannot be continued from what this database holds: it was deleted, purged past the relay's
    record, or written by someone else. The relay says so and waits; it never guesses."""


class RelayOutOfSyncError(StreamUnusableError):
    """The stream holds an event this database does not: they belong to different installations."""


class EventTooLargeError(RuntimeError):
    """An event larger than the bus accepts (only a row written before the size limit could be)."""


@dataclass
class Position:
    checkpoint: Checkpoint
    stream_seq: int


ACK_TIMEOUT = 10.0  # a publish unacknowledged this long is taken as lost: the server went away holding it
REPORT_EVERY = 30.0  # how often a relay that cannot go on repeats why, until someone repairs it
LOOK_EVERY = 5.0  # how often an idle relay checks that its stream still ends where it left it


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
        """Where the stream stands, from the stream itself: its last message names the last event it holds."""
        try:
            info = await self.js.stream_info(self.stream)
        except NotFoundError as exc:
            raise StreamUnusableError(f"stream {self.stream} does not exist (deleted?)") from exc
        last_seq = info.state.last_seq
        saved = await self.saved()
        if saved is not None and last_seq < saved.stream_seq:
            raise StreamUnusableError(
                f"stream {self.stream} ends at {last_seq} but the relay had published up to {saved.stream_seq}:"
                " deleted and made again, or restored from an older copy")
        if last_seq == 0:
            return Position(Checkpoint(), 0)
        try:
            msg = await self.js.get_msg(self.stream, seq=last_seq, direct=True)
        except NotFoundError as exc:
            # Purged, or its last message deleted: the relay's own record of where it stood still holds if it
            # names that very sequence.
            if saved is not None and saved.stream_seq == last_seq:
                return saved
            raise StreamUnusableError(
                f"stream {self.stream}: its last message {last_seq} is gone (purged or deleted) and the relay's"
                f" record stands at {saved.stream_seq if saved else 'nothing'}") from exc
        event_id = (msg.headers or {}).get("Nats-Msg-Id")
        async with self.store.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT tx_id::text::bigint AS tx_id, position FROM {self.store.schema}.events"
                " WHERE event_id = $1",
                _uuid(event_id),
            )
        if row is None:
            raise RelayOutOfSyncError(
                f"stream {self.stream} ends with message {last_seq} ({event_id or 'no id'}), not an event of schema"
                f" {self.store.schema}: the database is older than the stream (restored from a copy taken while the"
                f" platform ran, or events deleted), or the stream was written by another installation; run"
                f" `gongdi verify`, then `{REPAIR.format(service=self.service)}`"
            )
        return Position(Checkpoint(row["tx_id"], row["position"]), last_seq)

    async def saved(self) -> Position | None:
        async with self.store.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT tx_id, position, stream_seq FROM {self.store.schema}.relay_checkpoint WHERE id = 1")
        return Position(Checkpoint(row["tx_id"], row["position"]), row["stream_seq"]) if row else None

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
        limit = self.js._nc.max_payload  # what the server we are connected to accepts
        futures = []
        try:
            for i, row in enumerate(rows):
                data = row.envelope_json(self.service)
                if len(data) > limit:
                    raise EventTooLargeError(
                        f"event {row.event_id} ({row.type}, {len(data)} bytes) is larger than the bus accepts"
                        f" ({limit} bytes): raise max_payload in the NATS configuration above {len(data)}")
                headers = {"Nats-Msg-Id": str(row.event_id), "Nats-Expected-Last-Sequence": str(pos.stream_seq + i)}
                subject = event_subject(row.township, self.service, row.type)
                futures.append(await self.js.publish_async(subject, data, headers=headers))
            # Bounded: a server that dies holding the publishes never answers them, and the relay must notice.
            acks = await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT)
        finally:
            for future in futures:
                future.cancel()  # no-op for the answered; frees the client's slots held by the lost ones
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
        pos: Position | None = None
        failures = 0
        reported = 0.0  # when the relay may next repeat why it cannot go on
        look_again = 0.0  # when an idle relay next checks that the stream still ends where it left it
        try:
            await listener.add_listener(channel, self._on_notify)
            while not stop.is_set():
                try:
                    if pos is None:
                        pos = await self.resync()
                        await self.save(pos)
                        self.log.info("relay resumed", stream=self.stream, stream_seq=pos.stream_seq)
                    n = await self.pump(pos)
                    if n == 0 and time.monotonic() >= look_again:
                        # Idle: nothing would tell it that the stream was deleted, purged or made anew.
                        look_again = time.monotonic() + LOOK_EVERY
                        if (await self.js.stream_info(self.stream)).state.last_seq != pos.stream_seq:
                            pos = None
                            continue
                except (StreamUnusableError, EventTooLargeError) as exc:
                    # Nothing a retry can mend: say what and how to repair, and again every REPORT_EVERY seconds;
                    # look often, so that the relay goes on as soon as the repair is done.
                    if time.monotonic() >= reported:
                        self.log.error("relay cannot go on", stream=self.stream, problem=str(exc),
                                       repair=REPAIR.format(service=self.service))
                        reported = time.monotonic() + REPORT_EVERY
                    pos = None
                    await self._pause(stop, 1.0)
                    continue
                except (nats.errors.Error, TimeoutError) as exc:
                    # The bus went away or refused a publish: what landed is read back from the stream's tail.
                    failures += 1
                    self.log.warning("relay publish failed; resyncing from the stream tail",
                                     error=type(exc).__name__, attempts=failures)
                    pos = None
                    await self._pause(stop, min(0.5 * failures, 5.0))
                    continue
                failures = 0
                reported = 0.0
                if n:
                    await self.save(pos)
                if n < self.batch:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_wait)
        finally:
            # A database that went away took the connection with it (asyncpg detaches it from the pool): removing
            # the listener would raise InterfaceError in place of the error that ended the relay, which its restart
            # is about and which goes on up. Releasing a detached connection does nothing.
            with contextlib.suppress(asyncpg.InterfaceError):
                await listener.remove_listener(channel, self._on_notify)
            await self.store.pool.release(listener)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def fill_from_start(database_url: str, schema: str) -> None:
    """A stream made anew is filled from the first event: the relay's record of where it stood in an earlier stream
    no longer holds. Consumers keep their checkpoints: the relay numbers the events in the same commit order."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DELETE FROM {schema}.relay_checkpoint")
    finally:
        await conn.close()


def _uuid(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None  # a foreign message's id: matches no event

"""Durable, ordered, exactly-once-in-effect consumer: effect and checkpoint in one transaction, ack after."""
from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError

from contracts.envelope import Envelope, EnvelopeRow
from contracts.subjects import dead_letter_subject, stream_name
from gongdi.bus.continuity import StreamContinuityError, Verdict, check
from gongdi.store.base import StaleTransactionError, StreamHead

GAP_CHECK_EVERY = 5.0  # a gap is normally a message on its way: look at the stream only now and then
GAP_REPORT_EVERY = 30.0


class Handler(Protocol):
    """What a consumer applies each event with: an `Envelope` from the stream, or in a rebuild (gongdi.bus.shadow)
    the stored row as an `EnvelopeRow` (the same fields; the payload decoded when asked for)."""

    async def apply(self, conn: asyncpg.Connection, event: Envelope | EnvelopeRow) -> None: ...


def describe(exc: BaseException) -> str:
    """What went wrong, for logs, the dead-letter table and its subject: the error's type and where it was raised,
    never its text, which quotes the input (a member's name, an ID number). A continuity refusal is all ids."""
    if isinstance(exc, StreamContinuityError):
        return f"StreamContinuityError: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{error_code(exc)}{where}"


def error_code(exc: BaseException) -> str:
    """The short code of an error: its type, and for a database error its SQLSTATE (a trigger's `RAISE` is
    `RaiseError[P0001]`); no text and no place. `describe` starts with it, so a dead letter's code is read back
    from its `error` (`code_of`), rows written before included."""
    state = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    return f"{type(exc).__name__}[{state}]" if state else type(exc).__name__


def code_of(error: str) -> str:
    """The code at the start of a `describe` text: `RaiseError[P0001] at x.py:3` → `RaiseError[P0001]`."""
    return error.split(" at ", 1)[0].split(":", 1)[0].strip()


def checkpoint_sql(schema: str) -> str:
    return f"""
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {schema}.consumer_checkpoint (
        consumer text NOT NULL,
        stream text NOT NULL,
        stream_seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, stream)
    );
    CREATE TABLE IF NOT EXISTS {schema}.dead_letters (
        consumer text NOT NULL,
        stream text NOT NULL,
        stream_seq bigint NOT NULL,
        error text NOT NULL,
        body bytea NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, stream, stream_seq)
    );
    """


def stream_heads_sql(schema: str) -> str:
    """A later migration of every schema that runs consumers: the head of each event stream a consumer applied.

    `heads_from` is the checkpoint each consumer had when heads began to be kept (0 for a consumer started
    since): the streams it applied before that have no head, and their next event is taken as their start.
    """
    return f"""
    CREATE TABLE IF NOT EXISTS {schema}.stream_head (
        consumer text NOT NULL,
        stream text NOT NULL,
        stream_id text NOT NULL,
        version int NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (consumer, stream, stream_id)
    );
    ALTER TABLE {schema}.consumer_checkpoint ADD COLUMN IF NOT EXISTS heads_from bigint NOT NULL DEFAULT 0;
    UPDATE {schema}.consumer_checkpoint SET heads_from = stream_seq;
    """


async def read_heads(conn: asyncpg.Connection, schema: str, consumer: str, stream: str, stream_ids: set[str]
                     ) -> dict[str, StreamHead]:
    """The applied heads of the given event streams, in one query."""
    if not stream_ids:
        return {}
    rows = await conn.fetch(
        f"SELECT stream_id, version, hash FROM {schema}.stream_head"
        " WHERE consumer = $1 AND stream = $2 AND stream_id = ANY($3::text[])",
        consumer, stream, list(stream_ids),
    )
    return {r["stream_id"]: StreamHead(r["version"], r["hash"]) for r in rows}


def heads_upsert_sql(schema: str, first: int) -> str:
    """The insert of a consumer's moved stream heads: consumer $1, stream $2, and the heads as three arrays
    (`head_columns`) from parameter `first` on."""
    return f"""INSERT INTO {schema}.stream_head (consumer, stream, stream_id, version, hash)
            SELECT $1, $2, h.stream_id, h.version, h.hash
            FROM unnest(${first}::text[], ${first + 1}::int[], ${first + 2}::text[]) AS h (stream_id, version, hash)
            ON CONFLICT (consumer, stream, stream_id) DO UPDATE SET version = EXCLUDED.version, hash = EXCLUDED.hash"""


def head_columns(heads: dict[str, StreamHead]) -> tuple[list[str], list[int], list[str | None]]:
    return list(heads), [h.version for h in heads.values()], [h.hash for h in heads.values()]


async def save_position(conn: asyncpg.Connection, schema: str, consumer: str, stream: str, seq: int,
                        heads: dict[str, StreamHead]) -> None:
    """The checkpoint and the heads that moved with it, in one statement."""
    await conn.execute(
        f"""WITH heads AS ({heads_upsert_sql(schema, 4)})
        INSERT INTO {schema}.consumer_checkpoint (consumer, stream, stream_seq) VALUES ($1, $2, $3)
        ON CONFLICT (consumer, stream) DO UPDATE SET stream_seq = $3, updated_at = now()""",
        consumer, stream, seq, *head_columns(heads))


def parse(msg: Msg) -> Envelope | Exception:
    """The event, or why it is not one: a failure handled like any other (retried, then dead-lettered)."""
    try:
        return Envelope.from_json(msg.data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        return exc


@dataclass(frozen=True)
class Failure:
    """A message not applied: why, and the event when it did continue its stream (its handler failed)."""

    msg: Msg
    error: Exception
    event: Envelope | None = None


class OrderedConsumer:
    """Applies a service's stream in stream order, each message exactly once in effect.

    The checkpoint (last applied stream sequence) lives beside the read models and moves in the same
    transaction as the effect, so a redelivery after a crash is recognised and acknowledged without effect.
    A message that arrives ahead of a gap is held back (nak with delay) until the gap is filled.

    The head (version, hash) of every event stream it applied moves in that transaction too, and an event that
    does not continue its stream from that head (`continuity.check`) is refused: not applied, logged as an
    error and dead-lettered at once, since the same heads give the same verdict on every redelivery.
    """

    def __init__(
        self,
        nc: NATS,
        pool: asyncpg.Pool,
        schema: str,
        service: str,
        durable: str,
        handler: Handler,
        batch: int = 256,
        max_deliver: int = 5,
        after_commit: Callable[[list[Envelope]], Awaitable[None]] | None = None,
        log: structlog.BoundLogger | None = None,
    ):
        self.nc = nc
        self.js = nc.jetstream()
        self.pool = pool
        self.schema = schema
        self.service = service
        self.stream = stream_name(service)
        self.durable = durable
        self.handler = handler
        self.batch = batch
        self.max_deliver = max_deliver
        self.after_commit = after_commit
        self.log = log or structlog.get_logger()
        self.applied = 0
        # Failures per stream sequence, counted here: JetStream's delivery count also counts the naks of
        # messages held back behind a gap, which says nothing about whether the message itself is poison.
        self._failures: dict[int, int] = {}
        self._gap_checked = 0.0  # when a gap may next be looked into
        self._gap_reported = 0.0  # when a gap that cannot fill may next be reported

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                # Wait for one message, then take whatever else is already there. A single fetch of a whole batch
                # would hold the first message until the batch filled or the fetch timed out: measured as ~0.5 s
                # added to "visible in the view" under a trickle of commands.
                first = asyncio.ensure_future(sub.fetch(1, timeout=1.0))
                await asyncio.wait((first, stopping), return_when=asyncio.FIRST_COMPLETED)
                if not first.done():
                    # Stopping while idle: the wait is given up rather than run out (a second per shutdown). A
                    # message it would still have brought is not acknowledged, so it comes again to the next run.
                    first.cancel()
                    await asyncio.gather(first, return_exceptions=True)
                    return
                try:
                    msgs = first.result()
                except (NatsTimeoutError, TimeoutError):
                    await self._check_gap()  # nothing comes: maybe what comes next is gone
                    continue
                if self.batch > 1:
                    with contextlib.suppress(NatsTimeoutError, TimeoutError):
                        msgs += await sub.fetch(self.batch - 1, timeout=0.05)
                await self.handle_batch(msgs)
        finally:
            stopping.cancel()

    async def _check_gap(self) -> None:
        """Behind the stream with nothing to apply: normally a message on its way. If the stream no longer holds the
        messages after the checkpoint (purged, deleted), they never come: say so and how to repair, every
        GAP_REPORT_EVERY seconds at most, looking at the stream every GAP_CHECK_EVERY seconds at most."""
        now = time.monotonic()
        if now < self._gap_checked:
            return
        self._gap_checked = now + GAP_CHECK_EVERY
        last = await self.pool.fetchval(
            f"SELECT stream_seq FROM {self.schema}.consumer_checkpoint WHERE consumer = $1 AND stream = $2",
            self.durable, self.stream) or 0
        state = (await self.js.stream_info(self.stream)).state
        if state.last_seq > last and state.first_seq > last + 1 and now >= self._gap_reported:
            self._gap_reported = now + GAP_REPORT_EVERY
            self.log.error("consumer cannot go on: the messages it needs are gone from the stream", stream=self.stream,
                           consumer=self.durable, applied=last, stream_starts_at=state.first_seq,
                           repair=f"gongdi repair-stream {self.service}")

    async def _position(self, conn: asyncpg.Connection) -> tuple[int, int]:
        """(checkpoint, heads_from), the checkpoint row locked until the transaction ends."""
        row = await conn.fetchrow(
            f"SELECT stream_seq, heads_from FROM {self.schema}.consumer_checkpoint"
            " WHERE consumer = $1 AND stream = $2 FOR UPDATE",
            self.durable, self.stream,
        )
        return (row["stream_seq"], row["heads_from"]) if row else (0, 0)

    async def handle_batch(self, msgs: list[Msg]) -> None:
        msgs = sorted(msgs, key=lambda m: m.metadata.sequence.stream)
        try:
            outcome = await self._apply(msgs, isolate=False)
        except Exception:
            # The batch rolled back as a whole; redo it one savepoint per event to isolate the failing one.
            outcome = await self._apply(msgs, isolate=True)
        applied, done, later, failed = outcome
        if failed is not None:  # after the batch committed, outside the retry above: it is handled exactly once
            await self._failed(failed)
        for msg in done:
            await msg.ack()
        for msg in later:
            await msg.nak(delay=0.2)
        if later and not applied and failed is None:
            await self._check_gap()
        self.applied += len(applied)
        if applied and self.after_commit is not None:
            await self.after_commit(applied)

    async def _apply(
        self, msgs: list[Msg], isolate: bool
    ) -> tuple[list[Envelope], list[Msg], list[Msg], Failure | None]:
        """Apply the contiguous run after the checkpoint in one transaction.

        Without `isolate` any failure aborts the whole batch (the fast path: no savepoint round trips). With it,
        each event gets a savepoint, so the events before a failing one still commit. A message that is not an
        event, or an event refused for its stream's continuity, is never applied, so it needs neither: the events
        before it commit, the ones after it wait.
        """
        applied: list[Envelope] = []
        done: list[Msg] = []
        later: list[Msg] = []
        failed: Failure | None = None
        events = [parse(msg) for msg in msgs]
        async with self.pool.acquire() as conn, conn.transaction():
            # Two statements, not one: the heads must be read after the checkpoint lock is granted, so that
            # they include what the transaction we waited for committed.
            last, heads_from = await self._position(conn)
            start = last
            heads = await read_heads(conn, self.schema, self.durable, self.stream, {
                e.stream_id for m, e in zip(msgs, events, strict=True)
                if isinstance(e, Envelope) and m.metadata.sequence.stream > last})
            moved: dict[str, StreamHead] = {}
            for msg, event in zip(msgs, events, strict=True):
                seq = msg.metadata.sequence.stream
                if seq <= last:
                    done.append(msg)  # already applied: a redelivery
                    continue
                if seq > last + 1 or failed is not None:
                    later.append(msg)  # a gap before it, or a failure earlier in the batch
                    continue
                if isinstance(event, Exception):
                    failed = Failure(msg, event)  # not an event: retried with backoff, then dead-lettered
                    continue
                # A consumer that applied events before it kept heads (a state folder of an earlier release:
                # its checkpoint was past the start when the heads table came, so heads_from > 0) cannot know
                # where those streams stood. Refusing their next event would stop every old site for good, so
                # it takes the first event it sees of a stream without a head as that stream's start; the hash
                # must still recompute and every later event must follow it. A consumer that kept heads from
                # its first event (heads_from = 0) requires version 1 of every new stream.
                verdict = check(heads.get(event.stream_id, StreamHead()), event, adopt=heads_from > 0)
                if verdict.verdict is Verdict.REFUSE:
                    failed = Failure(msg, verdict.error(event))
                    continue
                if verdict.verdict is Verdict.DUPLICATE:
                    self.log.warning("event already applied at the head of its stream; skipped",
                                     stream=self.stream, stream_id=event.stream_id, version=event.version,
                                     stream_seq=seq, event_id=str(event.event_id))
                    done.append(msg)
                    last = seq
                    continue
                if not isolate:
                    await self.handler.apply(conn, event)
                else:
                    try:
                        async with conn.transaction():  # savepoint: a failing event leaves no trace
                            await self.handler.apply(conn, event)
                    except Exception as exc:
                        failed = Failure(msg, exc, event)  # reported, retried with backoff, then dead-lettered
                        continue
                applied.append(event)
                done.append(msg)
                last = seq
                heads[event.stream_id] = moved[event.stream_id] = StreamHead(event.version, event.hash)
            if last != start:
                await save_position(conn, self.schema, self.durable, self.stream, last, moved)
        return applied, done, later, failed

    async def _failed(self, failure: Failure) -> None:
        """Retry a failing event, and dead-letter it after `max_deliver` failures; a refused one at once."""
        msg, exc = failure.msg, failure.error
        seq = msg.metadata.sequence.stream
        if isinstance(exc, StreamContinuityError):
            self.log.error("event refused: it does not continue its stream", stream=self.stream,
                           stream_id=exc.stream_id, version=exc.version, stream_seq=seq, expected=exc.expected,
                           got=exc.got)
        elif isinstance(exc, StaleTransactionError):
            # Not the event's fault: its append raced a command and needs a newer transaction, which the next
            # delivery has. Never counted towards dead-lettering.
            self.log.info("event retried in a new transaction", stream_seq=seq)
            await msg.nak(delay=0.05)
            return
        else:
            delivered = self._failures[seq] = self._failures.get(seq, 0) + 1
            if delivered < self.max_deliver:
                self.log.warning("event failed; will retry", stream_seq=seq, attempts=delivered, error=describe(exc))
                await msg.nak(delay=min(0.5 * 2**delivered, 10.0))
                return
            del self._failures[seq]
            self.log.error("event dead-lettered", stream_seq=seq, attempts=delivered, error=describe(exc))
        # Poison: record it, move the checkpoint past it, and tell whoever watches the dead-letter subject. An event
        # that continued its stream but failed in the handler is passed like any poison, so its stream's head moves
        # past it too: otherwise every later event of that stream would be refused as a gap.
        passed = failure.event
        moved = {} if passed is None else {passed.stream_id: StreamHead(passed.version, passed.hash)}
        async with self.pool.acquire() as conn, conn.transaction():
            # The checkpoint row first, then the letter: the order a retry takes them (gongdi.bus.deadletters),
            # so that the two never wait for each other.
            last, _ = await self._position(conn)
            # Already at or past it: another instance of this consumer applied or passed it meanwhile. A letter
            # recorded now would be retried later and applied a second time.
            if last < seq:
                await conn.execute(
                    f"INSERT INTO {self.schema}.dead_letters (consumer, stream, stream_seq, error, body)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    self.durable, self.stream, seq, describe(exc), msg.data,
                )
            if last == seq - 1:
                await save_position(conn, self.schema, self.durable, self.stream, seq, moved)
        await self.nc.publish(
            dead_letter_subject(self.durable),
            orjson.dumps({"stream": self.stream, "stream_seq": seq, "error": describe(exc), "code": error_code(exc)}),
            headers={"Nats-Msg-Id": f"{self.stream}:{seq}"},
        )
        await msg.term()

"""Replaying whole streams into a fresh schema: the rebuild of a reading service's read models from the log."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg
import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.envelope import Envelope
from contracts.subjects import stream_name, stream_subjects
from gongdi.bus.consumer import Handler, describe, save_position
from gongdi.bus.continuity import Verdict, check
from gongdi.store.base import StreamHead
from gongdi.store.migrations import Migration, migrate

Progress = Callable[[int, int], None]


async def rebuild(js: JetStreamContext, pool: asyncpg.Pool, target: str, durable: str,
                  migrations: Sequence[Migration], feeds: Sequence[tuple[str, Handler]],
                  progress: Progress | None = None) -> int:
    """Drop `target`, create it by the same migrations, replay every feed's stream into it; events applied."""
    async with pool.acquire() as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
        await migrate(conn, target, migrations)
    applied = 0
    for service, handler in feeds:
        applied += await _replay(js, pool, target, durable, service, handler, progress)
    return applied


async def _replay(js: JetStreamContext, pool: asyncpg.Pool, target: str, durable: str, service: str,
                  handler: Handler, progress: Progress | None) -> int:
    stream = stream_name(service)
    last = (await js.stream_info(stream)).state.last_seq
    if last == 0:
        return 0
    sub = await js.pull_subscribe(
        stream_subjects(service)[0], stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=60.0),
    )
    # The schema is new, so every stream must start at version 1; the heads stay here for the whole replay and
    # go to the schema with each transaction's checkpoint, as the live consumer keeps them.
    heads: dict[str, StreamHead] = {}
    seq = applied = 0
    while seq < last:
        msgs = [m for m in await sub.fetch(1000, timeout=5) if m.metadata.sequence.stream <= last]
        try:
            batch = await _batch(pool, target, durable, stream, handler, msgs, dict(heads), isolate=False)
        except Exception:
            # One event the views cannot store must not end the rebuild: redo the batch one savepoint per event,
            # dead-letter what fails (as the live consumer would) and go on.
            batch = await _batch(pool, target, durable, stream, handler, msgs, dict(heads), isolate=True)
        heads, n = batch
        applied += n
        seq = msgs[-1].metadata.sequence.stream if msgs else last
        if progress:
            progress(min(seq, last), last)
    await sub.unsubscribe()
    return applied


async def _batch(pool: asyncpg.Pool, target: str, durable: str, stream: str, handler: Handler, msgs: list,
                 heads: dict[str, StreamHead], isolate: bool) -> tuple[dict[str, StreamHead], int]:
    """Apply `msgs` in one transaction; the heads after it and the events applied."""
    log = structlog.get_logger()
    moved: dict[str, StreamHead] = {}
    applied = 0
    async with pool.acquire() as conn, conn.transaction():

        async def dead_letter(seq: int, error: str, body: bytes) -> None:
            await conn.execute(
                f"INSERT INTO {target}.dead_letters (consumer, stream, stream_seq, error, body)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", durable, stream, seq, error, body)

        for msg in msgs:
            seq = msg.metadata.sequence.stream
            event = Envelope.from_json(msg.data)
            verdict = check(heads.get(event.stream_id, StreamHead()), event)
            if verdict.verdict is Verdict.REFUSE:
                # The live consumer refused it as well: dead-lettered there, dead-lettered here, never applied.
                error = verdict.error(event)
                log.error("event refused: it does not continue its stream", stream=stream,
                          stream_id=event.stream_id, version=event.version, stream_seq=seq,
                          expected=error.expected, got=error.got)
                await dead_letter(seq, describe(error), msg.data)
                continue
            if verdict.verdict is Verdict.DUPLICATE:
                log.warning("event already applied at the head of its stream; skipped", stream=stream,
                            stream_id=event.stream_id, version=event.version, stream_seq=seq)
                continue
            if not isolate:
                await handler.apply(conn, event)
                applied += 1
            else:
                try:
                    async with conn.transaction():  # savepoint: a failing event leaves no trace
                        await handler.apply(conn, event)
                    applied += 1
                except Exception as exc:
                    log.error("event dead-lettered in the rebuild", stream=stream, stream_seq=seq,
                              error=describe(exc))
                    await dead_letter(seq, describe(exc), msg.data)
            # Applied or passed as a dead letter, the stream's head moves past it, as in the live consumer.
            heads[event.stream_id] = moved[event.stream_id] = StreamHead(event.version, event.hash)
        if msgs:
            # The rebuilt schema knows how far it got, like the live one, so it could be swapped in and go on.
            await save_position(conn, target, durable, stream, msgs[-1].metadata.sequence.stream, moved)
    return heads, applied

"""Replaying whole streams into a fresh schema: the rebuild of a reading service's read models from the log."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg
import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.envelope import Envelope
from contracts.subjects import stream_name, stream_subjects
from gongdi.bus.consumer import Handler, save_position
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
    log = structlog.get_logger()
    # The schema is new, so every stream must start at version 1; the heads stay here for the whole replay and
    # go to the schema with each transaction's checkpoint, as the live consumer keeps them.
    heads: dict[str, StreamHead] = {}
    seq = applied = 0
    while seq < last:
        msgs = await sub.fetch(1000, timeout=5)
        moved: dict[str, StreamHead] = {}
        async with pool.acquire() as conn, conn.transaction():
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last:
                    break
                event = Envelope.from_json(msg.data)
                verdict = check(heads.get(event.stream_id, StreamHead()), event)
                if verdict.verdict is Verdict.REFUSE:
                    # The live consumer refused it as well: dead-lettered there, dead-lettered here, never applied.
                    error = verdict.error(event)
                    log.error("event refused: it does not continue its stream", stream=stream,
                              stream_id=event.stream_id, version=event.version, stream_seq=seq,
                              expected=error.expected, got=error.got)
                    await conn.execute(
                        f"INSERT INTO {target}.dead_letters (consumer, stream, stream_seq, error, body)"
                        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        durable, stream, seq, repr(error), msg.data,
                    )
                    continue
                if verdict.verdict is Verdict.DUPLICATE:
                    log.warning("event already applied at the head of its stream; skipped", stream=stream,
                                stream_id=event.stream_id, version=event.version, stream_seq=seq)
                    continue
                await handler.apply(conn, event)
                applied += 1
                heads[event.stream_id] = moved[event.stream_id] = StreamHead(event.version, event.hash)
            # The rebuilt schema knows how far it got, like the live one, so it could be swapped in and go on.
            await save_position(conn, target, durable, stream, min(seq, last), moved)
        if progress:
            progress(min(seq, last), last)
    await sub.unsubscribe()
    return applied

"""Replaying whole streams into a fresh schema: the rebuild of a reading service's read models from the log."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.envelope import Envelope
from contracts.subjects import stream_name, stream_subjects
from gongdi.bus.consumer import Handler
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
    seq = applied = 0
    while seq < last:
        msgs = await sub.fetch(1000, timeout=5)
        async with pool.acquire() as conn, conn.transaction():
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last:
                    break
                await handler.apply(conn, Envelope.from_json(msg.data))
                applied += 1
            # The rebuilt schema knows how far it got, like the live one, so it could be swapped in and go on.
            await conn.execute(
                f"INSERT INTO {target}.consumer_checkpoint (consumer, stream, stream_seq) VALUES ($1, $2, $3)"
                " ON CONFLICT (consumer, stream) DO UPDATE SET stream_seq = $3",
                durable, stream, min(seq, last),
            )
        if progress:
            progress(min(seq, last), last)
    await sub.unsubscribe()
    return applied

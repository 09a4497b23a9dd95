"""Appending test events straight to the store, retrying on conflicts like a real writer."""
from __future__ import annotations

import asyncio
import random

import asyncpg

from contracts.base import Event
from gongdi.store.postgres import ConcurrencyError, EventStore, Meta, Pending, StreamHead

SERVICE = "membership"  # the schema and stream that `setup` created


class Happened(Event):
    n: int


async def head(conn: asyncpg.Connection, stream_id: str) -> StreamHead:
    row = await conn.fetchrow(
        "SELECT version, hash FROM membership.events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1", stream_id
    )
    return StreamHead(row["version"], row["hash"]) if row else StreamHead()


async def append_one(store: EventStore, stream_id: str, n: int, hold: float = 0.0) -> None:
    """Append with optimistic concurrency; `hold` keeps the transaction open after the insert."""
    while True:
        try:
            async with store.pool.acquire() as conn, conn.transaction():
                heads = {stream_id: await head(conn, stream_id)}
                await store.append(conn, [Pending(Happened(n=n), stream_id, "bailin", None)], heads, Meta("test"))
                if hold:
                    await asyncio.sleep(hold)
            return
        except ConcurrencyError:
            await asyncio.sleep(random.uniform(0, 0.003))

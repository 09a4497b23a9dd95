"""Appending test events straight to an event store, retrying on conflicts like a real writer."""
from __future__ import annotations

import asyncio
import random

from contracts.base import Event
from gongdi.store.base import ConcurrencyError, EventStore, Meta, Pending

SERVICE = "membership"  # the schema and stream that `setup` created


class Happened(Event):
    n: int


async def append_one(store: EventStore, stream_id: str, n: int, hold: float = 0.0) -> None:
    """Append with optimistic concurrency; `hold` keeps the transaction open after the insert."""
    while True:
        try:
            async with store.transaction() as tx:
                heads = {stream_id: await store.head(tx, stream_id)}
                await store.append(tx, [Pending(Happened(n=n), stream_id, "bailin", None)], heads, Meta("test"))
                if hold:
                    await asyncio.sleep(hold)
            return
        except ConcurrencyError:
            await asyncio.sleep(random.uniform(0, 0.003))

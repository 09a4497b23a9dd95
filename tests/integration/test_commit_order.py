"""A stream is published in version order even when a long transaction (a policy's batch) races a command."""
from __future__ import annotations

import asyncpg
import pytest

from gongdi.store.base import Meta, Pending, StaleTransactionError
from gongdi.store.postgres import PostgresEventStore
from tests.appending import SERVICE, Happened


def one(stream_id: str, n: int) -> list[Pending]:
    return [Pending(Happened(n=n), stream_id, "bailin", None)]


async def test_an_earlier_transaction_cannot_extend_a_stream_a_later_one_extended(pool: asyncpg.Pool):
    store = PostgresEventStore(pool, SERVICE)
    async with store.transaction() as tx:
        await store.append(tx, one("site-x", 1), {"site-x": await store.head(tx, "site-x")}, Meta("t"))
    async with pool.acquire() as early:
        outer = early.transaction()
        await outer.start()
        # The long transaction writes first (its id is taken now), like a policy's batch on another site ...
        await store.append(early, one("site-y", 1), {"site-y": await store.head(early, "site-y")}, Meta("policy"))
        # ... then a command commits version 2 of site-x with a later transaction id ...
        async with store.transaction() as later:
            await store.append(later, one("site-x", 2), {"site-x": await store.head(later, "site-x")}, Meta("cmd"))
        # ... so version 3 from the long transaction would come before version 2 in the log's order.
        head = await store.head(early, "site-x")
        assert head.version == 2
        with pytest.raises(StaleTransactionError):
            async with early.transaction():  # a savepoint, as the policy's retry uses: same transaction id
                await store.append(early, one("site-x", 3), {"site-x": head}, Meta("policy"))
        await outer.rollback()
    async with store.transaction() as fresh:  # a new transaction is after the command: it may append
        await store.append(fresh, one("site-x", 3), {"site-x": await store.head(fresh, "site-x")}, Meta("policy"))
    rows = await pool.fetch(f"SELECT version, tx_id::text::bigint AS tx FROM {SERVICE}.events"
                            " WHERE stream_id = 'site-x' ORDER BY tx_id, position")
    assert [r["version"] for r in rows] == [1, 2, 3]

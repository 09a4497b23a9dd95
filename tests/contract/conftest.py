"""Every event-store contract test runs against each implementation: Postgres (real server) and in memory."""
from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from gongdi.store.base import EventStore
from gongdi.store.memory import MemoryEventStore
from gongdi.store.migrations import migrate
from gongdi.store.postgres import (
    EVENT_STORE_MIGRATIONS,
    PostgresEventStore,
    command_fingerprints,
    routines_sql,
    tamper_evidence,
    trailing_states,
)
from tests.conftest import Servers

SCHEMA = "contract"


@pytest.fixture(params=["postgres", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
        return
    servers: Servers = request.getfixturevalue("servers")
    pool = await asyncpg.create_pool(await servers.new_database("store"), min_size=1, max_size=12)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate(conn, SCHEMA, (*EVENT_STORE_MIGRATIONS, command_fingerprints(2), tamper_evidence(3),
                                            trailing_states(4)),
                      (routines_sql,))
    yield PostgresEventStore(pool, SCHEMA)
    await pool.close()

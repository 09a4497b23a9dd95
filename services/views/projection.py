"""The dispatch every projection shares: an event goes to the one method registered for its type."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from contracts.base import Event
from contracts.envelope import Envelope


class Projection:
    parse: Callable[[str, int, dict], Event]
    methods: dict[str, Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]]

    async def apply(self, conn: asyncpg.Connection, env: Envelope) -> None:
        method = self.methods.get(env.type)
        if method is not None:  # other event types are not shown by this projection
            await method(conn, env, self.parse(env.type, env.schema_version, env.payload))

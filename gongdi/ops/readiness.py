"""Readiness and progress of a running platform: do the services answer, have the views caught up."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import nats.errors

from contracts import activities, liaison, membership
from contracts.subjects import stream_name
from gongdi.ops.client import GongdiClient, with_client
from gongdi.ops.supervisor import WRITERS
from gongdi.service.settings import Settings


async def services_ready(client: GongdiClient) -> bool:
    """Every service answers: views a query, each writer a command (an empty one, refused without writing)."""
    try:
        if not (await client.query("views", "city"))["ok"]:
            return False
        for contract in (membership, activities, liaison):
            probe = await client.send_raw(contract.SERVICE, next(iter(contract.COMMANDS)), b"{}")
            if (probe.get("error") or {}).get("code") != "VALIDATION_FAILED":
                return False
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        return False  # not up yet
    return True


def wait_ready(settings: Settings, timeout: float = 60.0) -> None:
    async def probe() -> None:
        deadline = time.monotonic() + timeout
        client = await GongdiClient.connect(settings, timeout=2)
        try:
            while not await services_ready(client):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"services did not answer within {timeout:.0f}s; see the logs folder")
                await asyncio.sleep(0.2)
        finally:
            await client.close()

    asyncio.run(probe())


async def stream_status(settings: Settings, client: GongdiClient) -> list[dict[str, Any]]:
    """Per writing service: events recorded in Postgres, published on its stream, applied by the views."""
    streams = (await client.query("views", "status"))["data"]["streams"]
    # The schema comes from the platform's own list, never from the reply: a name from the bus is not SQL.
    schemas = {stream_name(w): w for w in WRITERS}
    streams = [row for row in streams if row.get("stream") in schemas]
    conn = await asyncpg.connect(settings.database_url)
    try:
        for row in streams:
            row["recorded"] = await conn.fetchval(f"SELECT count(*) FROM {schemas[row['stream']]}.events")
    finally:
        await conn.close()
    return streams


async def caught_up(settings: Settings, client: GongdiClient) -> bool:
    """Every recorded event is on its stream and applied by the views (streams hold each event once), and none
    was passed as a dead letter."""
    return all(r["recorded"] == r["last_seq"] == r["applied"] and not r["dead_letters"]
               for r in await stream_status(settings, client))


async def settled(settings: Settings, client: GongdiClient) -> bool:
    """Nothing is on its way: every recorded event is published and passed by the views, applied or not."""
    return all(r["recorded"] == r["last_seq"] == r["applied"] for r in await stream_status(settings, client))


def wait_caught_up(settings: Settings, timeout: float = 60.0) -> dict[str, Any]:
    async def probe(client: GongdiClient) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not await settled(settings, client) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return (await client.query("views", "city"))["data"]

    return asyncio.run(with_client(settings, probe))


"""Arrivals into one big site: the rate by block of members present, against the same arrivals spread over small
sites, same platform, same run. A site's cost per command should not grow with its size."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from contracts.membership import SERVICE
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import settled
from gongdi.service.settings import Settings


async def _arrivals(client: GongdiClient, commands: list[Any], width: int) -> float:
    gate = asyncio.Semaphore(width)
    failed: list[Any] = []

    async def one(command: Any) -> None:
        async with gate:
            reply = await client.send(SERVICE, command)
        if not reply.get("ok"):
            failed.append(reply)

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in commands))
    seconds = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{len(failed)} arrivals refused, the first: {failed[0]}")
    return len(commands) / seconds


async def _settle(client: GongdiClient, timeout: float = 900.0) -> float:
    """Seconds until every consumer (views, the other services' policies) has passed every recorded event."""
    started = time.perf_counter()
    while not await settled(None, client):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the platform did not settle within {timeout:.0f}s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def bench(admin: Settings, n: int, block: int, width: int, say: Callable[[str], None] = print
                ) -> dict[str, Any]:
    client = await GongdiClient.connect(admin)
    try:
        small = [f"small-{i}" for i in range(100)]
        for s in ("big", *small):
            assert (await client.send(SERVICE, f.register(s)))["ok"]
        await _settle(client)
        baseline = await _arrivals(client, [f.arrive(small[i % 100], f"s{i}") for i in range(block)], width)
        behind = await _settle(client)
        say(f"  {block:,} arrivals over 100 small sites: {baseline:,.0f}/s, every consumer done {behind:.1f} s later")
        blocks: list[tuple[int, float]] = []
        for start in range(0, n, block):
            rate = await _arrivals(client, [f.arrive("big", f"b{i}") for i in range(start, start + block)], width)
            behind = await _settle(client)
            blocks.append((start + block, rate))
            say(f"  big site, members {start:>6,}–{start + block:<6,}: {rate:>7,.0f}/s ({rate / baseline:.2f} ×),"
                f" every consumer done {behind:.1f} s later")
        return {"baseline": baseline, "blocks": blocks, "block": block, "width": width}
    finally:
        await client.close()


def report(r: dict[str, Any]) -> None:
    last_size, last = r["blocks"][-1]
    print(f"  arrivals into one site of {last_size - r['block']:,}–{last_size:,} members: {last:,.0f}/s, "
          f"{last / r['baseline']:.2f} × the same arrivals over 100 small sites ({r['baseline']:,.0f}/s),"
          f" {r['width']} in flight")

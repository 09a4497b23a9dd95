"""Seeds the demo city through ordinary commands, service by service, waiting while the others catch up."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from contracts.activities import SERVICE as ACTIVITIES
from contracts.base import Command
from contracts.liaison import SERVICE as LIAISON
from contracts.membership import SERVICE
from gongdi.demo.activities import activity_plan, close_talks
from gongdi.demo.city import CATCHING_UP, MEMBERS, PILOTS, plan, roster
from gongdi.demo.liaison import liaison_phases
from gongdi.ops.client import GongdiClient


async def seed(client: GongdiClient, progress: Callable[[int, int], None] | None = None,
               concurrency: int = 32) -> dict[str, int]:
    membership_phases = plan()
    activity_phase = activity_plan(roster())
    liaison = liaison_phases()
    total = sum(len(p) for p in membership_phases) + len(activity_phase) + sum(len(p) for p in liaison)
    done = 0
    counts = {"recorded": 0, "already": 0}
    gate = asyncio.Semaphore(concurrency)

    async def one(service: str, command: Command) -> None:
        nonlocal done
        for _ in range(100):
            async with gate:
                reply = await client.send(service, command)
            # Activities and liaison learn sites, members and branches from membership events a moment later.
            if reply["ok"] or reply["error"]["code"] not in CATCHING_UP:
                break
            await asyncio.sleep(0.2)
        if not reply["ok"]:
            raise RuntimeError(f"demo command {type(command).__name__} refused: {reply['error']}")
        counts["already" if reply.get("duplicate") else "recorded"] += 1
        done += 1
        if progress:
            progress(done, total)

    for phase in membership_phases:
        await asyncio.gather(*(one(SERVICE, c) for c in phase))
    # Activities learns sites and members from membership events; every arrival's talk is the sign it has.
    await _until_talks(client, MEMBERS)
    await asyncio.gather(*(one(ACTIVITIES, c) for c in activity_phase))
    talks = await close_talks(client, [p[0] for p in PILOTS])
    total += len(talks)
    await asyncio.gather(*(one(ACTIVITIES, c) for c in talks))
    for phase in liaison:
        await asyncio.gather(*(one(LIAISON, c) for c in phase))
    return counts


async def _until_talks(client: GongdiClient, at_least: int, timeout: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        talks = (await client.query("views", "city"))["data"]["activities"]["talks"]
        if talks["open"] + talks["done"] >= at_least:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"activities did not create the arrival talks in {timeout:.0f}s: {talks}")
        await asyncio.sleep(0.2)

"""Seeds the demo city through ordinary commands, service by service, waiting while the others catch up.

Each site's commands are sent by its township's identity, as its township's operator would; the reader (the
city committee) watches the views."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from contracts.activities import SERVICE as ACTIVITIES
from contracts.base import Command
from contracts.identity import Identity, Role
from contracts.liaison import SERVICE as LIAISON
from contracts.membership import SERVICE, SubmitApplication
from contracts.queries import timers_subject
from gongdi.demo.activities import activity_plan, close_talks, talent_followups
from gongdi.demo.city import CATCHING_UP, MEMBERS, PILOTS, development_plan, plan, roster, sites
from gongdi.demo.liaison import liaison_phases
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings


def demo_site_townships() -> dict[str, str]:
    return {site[0]: site[2] for site in sites()}


async def seed(writers: Mapping[str, GongdiClient], reader: GongdiClient,
               progress: Callable[[int, int], None] | None = None, concurrency: int = 32) -> dict[str, int]:
    """`writers`: a client per township code (connected as that township's identity)."""
    township_of = demo_site_townships()
    membership_phases = plan() + development_plan()  # the admissions make 28 of the 251 members present
    activity_phase = activity_plan(roster())
    liaison = liaison_phases()
    total = sum(len(p) for p in membership_phases) + len(activity_phase) + sum(len(p) for p in liaison)
    done = 0
    counts = {"recorded": 0, "already": 0, "differs": 0}
    gate = asyncio.Semaphore(concurrency)
    # A folder seeded before, perhaps by an older release whose demo told some facts otherwise: what this plan
    # cannot add to it is counted and left as it is, never a reason to stop the platform from starting.
    earlier = (await reader.query("views", "city"))["data"]["projects"] > 0

    async def one(service: str, command: Command) -> None:
        nonlocal done
        for _ in range(100):
            async with gate:
                reply = await writers[township_of[command.site_id]].send(service, command)  # type: ignore[attr-defined]
            # Activities and liaison learn sites, members and branches from membership events a moment later.
            if reply["ok"] or reply["error"]["code"] not in CATCHING_UP:
                break
            await asyncio.sleep(0.2)
        if not reply["ok"] and not earlier:
            raise RuntimeError(f"demo command {type(command).__name__} refused: {reply['error']}")
        counts["differs" if not reply["ok"] else "already" if reply.get("duplicate") else "recorded"] += 1
        done += 1
        if progress:
            progress(done, total)

    for phase in membership_phases:
        await asyncio.gather(*(one(SERVICE, c) for c in phase))
    # Activities learns sites and members from membership events; every arrival's and every application's talk is
    # the sign it has (the applications' talks are closed below with the arrivals').
    applications = sum(isinstance(c, SubmitApplication) for phase in membership_phases for c in phase)
    await _until_talks(reader, MEMBERS + (0 if earlier else applications))
    await asyncio.gather(*(one(ACTIVITIES, c) for c in activity_phase))
    followups = talent_followups(roster())  # promotions and recommendations need the backbone trained first
    total += len(followups)
    await asyncio.gather(*(one(ACTIVITIES, c) for c in followups))
    talks = await close_talks(reader, [p[0] for p in PILOTS])
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


async def seed_as_townships(settings: Settings, password: Callable[[str], str],
                            progress: Callable[[int, int], None] | None = None) -> dict[str, int | None]:
    """Seed with each township's own identity writing its sites, and the city committee reading; then a timer
    pass (`prompted`: the events it recorded, None with the timers off)."""
    clients: list[GongdiClient] = []

    async def connect(name: str) -> GongdiClient:
        clients.append(await GongdiClient.connect(settings.as_user(name, password(name))))
        return clients[-1]

    try:
        writers = {t: await connect(Identity(Role.TOWNSHIP, township=t).name)
                   for t in sorted(set(demo_site_townships().values()))}
        counts = await seed(writers, await connect(Identity(Role.CITY).name), progress)
    finally:
        for client in clients:
            await client.close()
    return {**counts, "prompted": await timer_pass(settings)}


async def timer_pass(settings: Settings, timeout: float = 120.0) -> int | None:
    """Ask membership for a timer pass now, as the platform's operator (`settings`' user, `setup`): the demo's
    members arrived in 2020, so their prompts are due, and the pass at the service's start ran before they were
    recorded; without this they would wait for the next one (GONGDI_TIMER_INTERVAL, an hour). The prompts are the
    service's own commands, not the seeder's: seeding again stays idempotent. None: the timers are off."""
    client = await GongdiClient.connect(settings, timeout=timeout)
    try:
        reply = await client.request(timers_subject(SERVICE), b"{}")
    finally:
        await client.close()
    if not reply["ok"]:
        raise RuntimeError(f"membership refused the timer pass: {reply['error']}")
    return reply["data"]["recorded"] if reply["data"]["timers"] else None

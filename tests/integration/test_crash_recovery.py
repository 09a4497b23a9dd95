"""SIGKILL the relay and the views consumer while 10,000 commands flow: the views must end exact."""
from __future__ import annotations

import asyncio
import random

import asyncpg
import nats
import pytest

from contracts.membership import SERVICE
from contracts.subjects import stream_name
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import caught_up, stream_status
from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from services.views import membership
from services.views.app import rebuild
from tests.integration.chaos import KillOnProgress, views_answer
from tests.integration.waiting import eventually

SITES, FIRST_ARRIVALS, MOVES, DEPARTURES, WORKFORCE = 200, 6000, 3000, 200, 600
KILL_AT_REPLY = [800, 2300, 3800, 5300, 6800, 8300]


def plan() -> tuple[list, list, list, int]:
    rng = random.Random(7)
    sites = [f"c{i:03d}" for i in range(SITES)]
    home = {f"m{n:05d}": sites[n % SITES] for n in range(FIRST_ARRIVALS)}
    headcount: dict[str, int] = {}
    second = []
    for i in range(WORKFORCE):
        site = sites[i % SITES]
        headcount[site] = rng.randint(10, 300)
        second.append(f.workforce(site, headcount[site]))
    second += [f.arrive(site, m) for m, site in home.items()]
    members = list(home)
    third = [f.arrive(sites[(SITES - 1) - int(m[1:]) % SITES], m) for m in members[:MOVES]]
    third += [f.depart(home[m], m) for m in members[MOVES:MOVES + DEPARTURES]]
    rng.shuffle(third)
    return [f.register(s, cost=6000 + i, months=12 + i % 30) for i, s in enumerate(sites)], second, third, sum(
        headcount.values())


async def send_all(client: GongdiClient, commands: list, width: int = 48, chaos: KillOnProgress | None = None) -> None:
    gate = asyncio.Semaphore(width)

    async def one(cmd) -> None:
        async with gate:
            for _ in range(30):  # a timed-out request is retried with the same command id
                try:
                    reply = await client.send(SERVICE, cmd)
                    break
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
            assert reply["ok"], reply
        if chaos:
            await chaos.progress()  # may kill and restart a process; the other senders keep going

    await asyncio.gather(*(one(c) for c in commands))


@pytest.mark.slow
async def test_kill_relay_and_views_mid_run(platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool,
                                            ready_settings: Settings):
    registrations, second, third, workers = plan()
    assert len(registrations) + len(second) + len(third) == 10_000
    await send_all(client, registrations)
    # Relay and views killed in turn, at set replies of the 9,800 sent under chaos: each lands mid-load.
    chaos = KillOnProgress(platform, ["membership-relay", "views"], at=KILL_AT_REPLY,
                           ready={"views": views_answer(client)})
    await send_all(client, second, chaos=chaos)
    await send_all(client, third, chaos=chaos)
    assert len(chaos.kills) == len(KILL_AT_REPLY), chaos.kills
    assert [k.victim for k in chaos.kills] == ["membership-relay", "views"] * (len(KILL_AT_REPLY) // 2), chaos.kills

    async def settled() -> bool:
        platform.check()  # the supervisor's restart back-off can outlast the load: keep it turning
        try:  # every recorded event published once and applied: the moment to compare, whatever the figures
            return await caught_up(ready_settings, client)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return False  # the views process is still starting

    assert await eventually(settled, timeout=120), await stream_status(ready_settings, client)
    async with pool.acquire() as conn:
        city = await membership.city(conn, "views", ready_settings.city())
    expected = {"projects": SITES, "workers": workers, "members": FIRST_ARRIVALS - DEPARTURES}
    assert {k: city[k] for k in expected} == expected

    events = await pool.fetchval("SELECT count(*) FROM membership.events")
    assert events == SITES + WORKFORCE + FIRST_ARRIVALS + 2 * MOVES + DEPARTURES
    nc = await nats.connect(ready_settings.nats_servers)
    try:
        info = await nc.jetstream().stream_info(stream_name(SERVICE))
        assert info.state.messages == events  # nothing lost, nothing published twice
    finally:
        await nc.close()

    # Every arrival (first or move) obliged exactly one talk, though the views were killed throughout.
    talks = FIRST_ARRIVALS + MOVES

    async def talks_projected() -> bool:
        platform.check()
        return await pool.fetchval("SELECT count(*) FROM views.talk_obligation") >= talks

    # ... and every departure (a move's included) closed the talk still owed there as moot, exactly once.
    moots = MOVES + DEPARTURES

    async def moots_projected() -> bool:
        platform.check()
        return await pool.fetchval("SELECT count(*) FROM views.talk_obligation WHERE mooted") >= moots

    assert await eventually(talks_projected, timeout=120), "talk obligations did not reach the views"
    assert await eventually(moots_projected, timeout=120), "the departures' moots did not reach the views"
    assert await pool.fetchval("SELECT count(*) FROM activities.events") == talks + moots
    assert await pool.fetchval("SELECT count(*) FROM views.talk_obligation") == talks
    assert await pool.fetchval("SELECT count(*) FROM views.talk_obligation WHERE mooted") == moots

    assert await rebuild(ready_settings, "views_rebuild") == events + talks + moots
    async with pool.acquire() as conn:
        assert await membership.city(conn, "views_rebuild", ready_settings.city()) == city
        for table, key, cols in (
            ("site", "site_id", "site_id, workforce, branch::text, qualifies"),
            ("site_member", "site_id, member_id", "*"),
            ("talk_obligation", "obligation_id", "*"),
        ):
            live = await conn.fetch(f"SELECT {cols} FROM views.{table} ORDER BY {key}")
            rebuilt = await conn.fetch(f"SELECT {cols} FROM views_rebuild.{table} ORDER BY {key}")
            assert [tuple(r) for r in live] == [tuple(r) for r in rebuilt]

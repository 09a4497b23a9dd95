"""The runtime heals itself: kill -9 of nats-server, PostgreSQL and every platform process under load, on progress."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import nats.errors
import pytest

from contracts.base import Command
from contracts.membership import SERVICE
from gongdi.demo import samples as f
from gongdi.ops.accounts import inbox_prefix
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import caught_up, services_ready, stream_status
from gongdi.ops.runtime import free_port
from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from services.views import membership
from services.views.app import rebuild
from tests.conftest import Running, running_servers
from tests.integration.chaos import KillOnProgress, Probe, views_answer
from tests.integration.running import GONGDI, _env
from tests.integration.waiting import eventually

SITES, ARRIVALS = 60, 2400
# Every platform process and both servers, each killed once while commands flow, at set counts of `ok` replies.
VICTIMS = ["nats-server", "membership", "postgres", "membership-relay", "activities", "activities-relay", "views",
           "liaison", "liaison-relay"]
KILL_AT = [150, 400, 650, 900, 1150, 1400, 1650, 1900, 2150]


async def talks_seen(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM views.talk_obligation")
    finally:
        await conn.close()


class Platform:
    def __init__(self, run: Running, settings: Settings, sup: Supervisor, said: list[str]):
        self.run, self.settings, self.sup, self.said = run, settings, sup, said

    @property
    def admin(self) -> Settings:
        return self.run.servers.as_identity(self.settings, "city")


@pytest.fixture
def healing(tmp_path: Path) -> Iterator[Platform]:
    """Servers of its own (the test kills them) and every platform process, all watched as `gongdi up` does."""
    with running_servers(tmp_path / "servers") as run:
        settings = run.servers.settings(asyncio.run(run.servers.new_database("heal")), consumer_ack_wait=3.0)
        said: list[str] = []
        sup = Supervisor(settings, tmp_path / "logs", say=said.append, passwords=run.servers.credentials.nats,
                         database_passwords=run.servers.credentials.postgres, servers=[run.nats, run.postgres])
        sup.setup()
        sup.start()
        try:
            yield Platform(run, settings, sup, said)
        finally:
            sup.stop()


async def resilient_client(settings: Settings) -> GongdiClient:
    """A client that outlives outages: it reconnects for as long as it takes, as a long-running caller would."""
    nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                            inbox_prefix=inbox_prefix(settings.nats_user))
    return GongdiClient(nc, timeout=5.0, user=settings.nats_user)


async def send_until_ok(client: GongdiClient, command: Command) -> dict:
    """The same command, same id, until it is acknowledged: unanswered while a server is down, or refused as
    UNAVAILABLE while the database restarts (INTERNAL for a failure in flight the store does not name as one). The
    pauses are retry intervals, not waits for an outcome."""
    body = command.model_dump_json().encode()
    for _ in range(600):
        try:
            reply = await client.send_raw(SERVICE, type(command).__name__, body)
        except (nats.errors.Error, TimeoutError):
            await asyncio.sleep(0.1)
            continue
        if reply["ok"]:
            return reply
        assert reply["error"]["code"] in ("UNAVAILABLE", "INTERNAL"), reply
        await asyncio.sleep(0.1)
    raise AssertionError(f"{command} never acknowledged")


async def send_all(client: GongdiClient, commands: list[Command], chaos: KillOnProgress | None = None) -> None:
    gate = asyncio.Semaphore(32)

    async def one(command: Command) -> None:
        async with gate:
            await send_until_ok(client, command)
        if chaos:
            await chaos.progress()

    await asyncio.gather(*(one(c) for c in commands))


def answers(client: GongdiClient) -> Probe:
    async def probe() -> bool:
        try:
            return await services_ready(client)
        except nats.errors.Error:
            return False

    return probe


@pytest.mark.slow
async def test_kill_9_of_servers_and_every_process_heals(healing: Platform):
    sup = healing.sup
    client = await resilient_client(healing.admin)
    try:
        assert await eventually(answers(client), timeout=60), "services did not start"
        sites = [f"h{i:03d}" for i in range(SITES)]
        rng = random.Random(11)
        headcount = {s: rng.randint(10, 300) for s in sites}
        await send_all(client, [f.register(s, cost=6000 + i) for i, s in enumerate(sites)])
        work = [f.workforce(s, n) for s, n in headcount.items()]
        work += [f.arrive(sites[n % SITES], f"m{n:05d}") for n in range(ARRIVALS)]
        rng.shuffle(work)
        ready = {name: answers(client) for name in ("membership", "activities", "liaison")}
        chaos = KillOnProgress(sup, VICTIMS, at=KILL_AT, ready={**ready, "views": views_answer(client)})
        await send_all(client, work, chaos=chaos)
        assert [k.victim for k in chaos.kills] == VICTIMS, chaos.kills
        assert {"nats-server 已重启", "postgres 已重启"} <= set(healing.said), healing.said

        # Settled: every recorded event published and applied by every consumer, none dead-lettered, and the talk
        # obligations the arrivals caused have travelled on through the activities stream into the views.
        async def settled() -> bool:
            sup.check()  # a process may still be in its restart back-off
            try:
                return (await caught_up(healing.settings, client)
                        and await talks_seen(healing.settings) == ARRIVALS
                        and await caught_up(healing.settings, client))
            except (nats.errors.Error, OSError, asyncpg.PostgresError):
                return False

        assert await eventually(settled, timeout=120), await stream_status(healing.settings, client)
    finally:
        await client.nc.close()
    # A relay whose database went away ends with that error, not with one from tidying up the lost connection.
    relays = "".join(p.read_text(errors="replace") for p in sup.logdir.glob("*relay*.log"))
    assert "InterfaceError" not in relays, relays[-3000:]

    pool = await asyncpg.create_pool(healing.settings.database_url, min_size=1, max_size=2)
    try:
        # Every acknowledged command exactly once: recorded once, published once, applied once.
        events = await pool.fetchval("SELECT count(*) FROM membership.events")
        assert events == 2 * SITES + ARRIVALS
        async with pool.acquire() as conn:
            city = await membership.city(conn, "views", healing.settings.city())
        expected = {"projects": SITES, "workers": sum(headcount.values()), "members": ARRIVALS}
        assert {k: city[k] for k in expected} == expected
        assert await pool.fetchval("SELECT count(*) FROM activities.events") == ARRIVALS  # one talk each
        assert await pool.fetchval("SELECT count(*) FROM views.talk_obligation") == ARRIVALS
        # A replay of the streams gives the very views the killed processes built.
        assert await rebuild(healing.settings, "views_rebuild") == events + ARRIVALS + await pool.fetchval(
            "SELECT count(*) FROM liaison.events")
        async with pool.acquire() as conn:
            assert await membership.city(conn, "views_rebuild", healing.settings.city()) == city
            for table, key in (("site", "site_id"), ("site_member", "site_id, member_id"),
                               ("talk_obligation", "obligation_id")):
                live = await conn.fetch(f"SELECT * FROM views.{table} ORDER BY {key}")
                rebuilt = await conn.fetch(f"SELECT * FROM views_rebuild.{table} ORDER BY {key}")
                assert [tuple(r) for r in live] == [tuple(r) for r in rebuilt], table
    finally:
        await pool.close()


@pytest.mark.slow
async def test_send_while_nats_is_down_lands_once_when_it_returns(healing: Platform, tmp_path: Path):
    """`gongdi send` during an outage says the platform is unavailable and retries with the same command id; once
    NATS is back the command is recorded exactly once."""
    sup = healing.sup
    client = await resilient_client(healing.admin)
    try:
        assert await eventually(answers(client), timeout=60), "services did not start"
        assert (await send_until_ok(client, f.register("out001")))["ok"]
    finally:
        await client.nc.close()
    home = tmp_path / "home"
    home.mkdir()
    (home / "runtime.json").write_text(
        f'{{"nats_url": "{healing.settings.nats_url}", "database_url": "{healing.settings.database_url}"}}')
    os.symlink(healing.run.servers.credentials.path, home / "credentials.json")
    nats_server = healing.run.nats
    os.kill(nats_server.proc.pid, signal.SIGKILL)
    nats_server.proc.wait(10)
    send = await asyncio.create_subprocess_exec(
        *GONGDI, "--home", str(home), "--as", "township.bailin", "send", "--wait", "300", "membership",
        "RecordArrival", f.arrive("out001", "m90001").model_dump_json(), env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert send.stderr is not None
    # The outage lasts until the sender has said twice that it is retrying: progress, not a clock.
    for _ in range(2):
        line = (await asyncio.wait_for(send.stderr.readline(), 60)).decode()
        assert "平台暂不可用" in line and "同一命令编号" in line, line
    sup.check()  # now the supervisor notices and restarts nats-server
    assert nats_server.running()
    out, _ = await asyncio.wait_for(send.communicate(), 120)
    assert send.returncode == 0, out
    assert b'"ok": true' in out
    pool = await asyncpg.create_pool(healing.settings.database_url, min_size=1, max_size=1)
    try:
        assert await pool.fetchval(
            "SELECT count(*) FROM membership.events WHERE event_type = 'MemberArrived'") == 1
    finally:
        await pool.close()


def test_a_relay_whose_servers_are_gone_ends_in_one_line_for_the_supervisor_to_restart():
    """Before, each restart of a relay while PostgreSQL was down wrote a library's traceback to its log."""
    env = {**_env(), "DATABASE_URL": f"postgresql://nobody:x@127.0.0.1:{free_port()}/gongdi",
           "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "services.membership", "relay"], env=env, capture_output=True,
                          text=True, timeout=60)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "relay stopped: a server went away" in said and "ConnectionRefusedError" in said, said
    assert "Traceback" not in said

"""A stream deleted or purged under the platform: relay and consumers say so; `gongdi repair-stream` mends it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import asyncpg
import nats
import nats.errors

from contracts.membership import SERVICE
from contracts.subjects import stream_name
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import caught_up, dead_letter_count, short_logs, stream_status
from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from services.views import membership
from services.views.app import rebuild
from tests.conftest import Servers
from tests.integration.running import GONGDI, _env
from tests.integration.waiting import eventually

STREAM = stream_name(SERVICE)


def home_for(tmp_path: Path, settings: Settings, servers: Servers) -> Path:
    """A state folder that points the `gongdi` command at the test's servers, as `gongdi up` would have left it."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "runtime.json").write_text(json.dumps({"nats_url": settings.nats_url,
                                                   "database_url": settings.database_url}))
    if not (home / "credentials.json").exists():
        os.symlink(servers.credentials.path, home / "credentials.json")
    return home


async def send(client: GongdiClient, commands: list) -> None:
    for command in commands:
        reply = await client.send(SERVICE, command)
        assert reply["ok"], reply


async def settle(platform: Supervisor, settings: Settings, client: GongdiClient) -> None:
    async def done() -> bool:
        platform.check()  # a process that stopped on the broken stream comes back
        try:
            return await caught_up(settings, client)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return False

    assert await eventually(done, timeout=90), await stream_status(settings, client)


def logged(platform: Supervisor, name: str, text: str) -> bool:
    log = next(c.log for c in platform.children if c.name == name)
    return text in log.read_text(errors="replace")


async def assert_views_exact(pool: asyncpg.Pool, settings: Settings, sites: int, members: int) -> None:
    events = await pool.fetchval("SELECT count(*) FROM membership.events")
    nc = await nats.connect(settings.nats_servers)
    try:
        assert (await nc.jetstream().stream_info(STREAM)).state.messages == events  # each event once, none lost
    finally:
        await nc.close()
    async with pool.acquire() as conn:
        city = await membership.city(conn, "views", settings.city())
        assert (city["projects"], city["members"]) == (sites, members)
        await rebuild(settings, "views_rebuild")
        assert await membership.city(conn, "views_rebuild", settings.city()) == city
    assert await pool.fetchval("SELECT count(*) FROM views.talk_obligation") == members


def repair(home: Path) -> str:
    out = subprocess.run([*GONGDI, "--home", str(home), "repair-stream", SERVICE], capture_output=True, text=True,
                         env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_deleted_stream_is_reported_and_repaired(platform: Supervisor, client: GongdiClient,
                                                       pool: asyncpg.Pool, ready_settings: Settings,
                                                       servers: Servers, tmp_path: Path):
    await send(client, [f.register("r1"), *(f.arrive("r1", f"m{i:03d}") for i in range(30))])
    await settle(platform, ready_settings, client)
    nc = await nats.connect(ready_settings.nats_servers)
    try:
        await nc.jetstream().delete_stream(STREAM)
    finally:
        await nc.close()
    await send(client, [f.arrive("r1", f"m{i:03d}") for i in range(30, 40)])  # recorded; the bus cannot take them
    assert await eventually(lambda: logged(platform, "membership-relay", "relay cannot go on"), timeout=30)
    assert logged(platform, "membership-relay", "gongdi repair-stream membership")

    said = repair(home_for(tmp_path, ready_settings, servers))
    assert "检查点" in said
    await settle(platform, ready_settings, client)
    await assert_views_exact(pool, ready_settings, sites=1, members=40)


async def test_stream_purged_behind_a_consumer_is_reported_and_repaired(
        platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings, servers: Servers,
        tmp_path: Path):
    await send(client, [f.register("r2"), *(f.arrive("r2", f"m{i:03d}") for i in range(20))])
    await settle(platform, ready_settings, client)
    views = next(c for c in platform.children if c.name == "views")
    os.kill(views.proc.pid, signal.SIGKILL)  # the views fall behind while the stream loses its messages
    views.proc.wait(10)
    await send(client, [f.arrive("r2", f"m{i:03d}") for i in range(20, 30)])
    nc = await nats.connect(ready_settings.nats_servers)
    try:
        js = nc.jetstream()
        recorded = await pool.fetchval("SELECT count(*) FROM membership.events")

        async def published() -> bool:
            return (await js.stream_info(STREAM)).state.last_seq == recorded

        assert await eventually(published, timeout=30)
        await js.purge_stream(STREAM)
    finally:
        await nc.close()
    assert await eventually(lambda: logged(platform, "views", "gongdi repair-stream membership") or
                            platform.check(), timeout=60), "the views did not report the missing messages"

    repair(home_for(tmp_path, ready_settings, servers))
    await settle(platform, ready_settings, client)
    await assert_views_exact(pool, ready_settings, sites=1, members=30)


async def test_foreign_message_in_the_stream_is_reported_and_repaired(
        platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings, servers: Servers,
        tmp_path: Path):
    await send(client, [f.register("r3"), *(f.arrive("r3", f"m{i:03d}") for i in range(10))])
    await settle(platform, ready_settings, client)
    nc = await nats.connect(ready_settings.nats_servers)
    try:  # someone with the rights writes into the stream: the consumers refuse it, the relay's next publish fails
        await nc.jetstream().publish("evt.bailin.membership.MemberArrived", b'{"member_id": "m999"}')
    finally:
        await nc.close()

    async def dead_lettered() -> bool:
        return dead_letter_count(await stream_status(ready_settings, client)) == 3  # views, activities, liaison

    assert await eventually(dead_lettered, timeout=90), await stream_status(ready_settings, client)
    await send(client, [f.arrive("r3", f"m{i:03d}") for i in range(10, 15)])
    assert await eventually(lambda: logged(platform, "membership-relay", "relay cannot go on"), timeout=30)

    said = repair(home_for(tmp_path, ready_settings, servers))
    assert "不是本服务的事件" in said  # the foreign message's dead letters went with the old stream
    await settle(platform, ready_settings, client)
    await assert_views_exact(pool, ready_settings, sites=1, members=15)


async def short_logs_of(client: GongdiClient) -> list[str]:
    return [s["service"] for s in short_logs(await stream_status(None, client))]


async def test_a_repair_that_would_destroy_the_evidence_of_a_deleted_event_asks_for_force(
        platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings, servers: Servers,
        tmp_path: Path):
    """An event deleted from PostgreSQL is still in the stream: repairing (republishing from PostgreSQL) would wipe
    the only copy, so `repair-stream` refuses and names it; `--force` repairs."""
    await send(client, [f.register("r4"), *(f.arrive("r4", f"m{i:03d}") for i in range(6))])
    await settle(platform, ready_settings, client)
    gone = await pool.fetchrow("SELECT position, stream_id, version FROM membership.events"
                               " WHERE event_type = 'MemberArrived' ORDER BY position LIMIT 1 OFFSET 2")
    async with pool.acquire() as conn:
        await conn.execute("SET session_replication_role = replica")  # past the append-only triggers
        await conn.execute("DELETE FROM membership.events WHERE position = $1", gone["position"])
        await conn.execute("SET session_replication_role = origin")
    home = home_for(tmp_path, ready_settings, servers)
    # The operator's status says the log is shorter than its stream and what to run, not "落后 -1"
    assert await eventually(lambda: short_logs_of(client)), "the status does not see the short log"
    status = subprocess.run([*GONGDI, "--home", str(home), "view", "status"], capture_output=True, text=True,
                            env=_env(), timeout=60)
    assert "!! 已发布的事件比 membership 数据库中记录的多 1 条" in status.stdout and "gongdi verify" in status.stdout, \
        status.stdout + status.stderr
    assert "落后 -" not in status.stdout and "已处理的比记录的多 1" in status.stdout, status.stdout

    def repair_stream(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([*GONGDI, "--home", str(home), "repair-stream", SERVICE, *flags], capture_output=True,
                              text=True, env=_env(), timeout=120)

    refused = repair_stream()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert (f"1 条事件在 PostgreSQL 中已没有或不同，第一条：membership 事件 position {gone['position']} (stream"
            f" {gone['stream_id']} version {gone['version']}) 党员进场 MemberArrived: 在 JetStream 副本中，"
            "PostgreSQL 中已没有 [MISSING_IN_DATABASE]") in refused.stderr, refused.stderr
    nc = await nats.connect(ready_settings.nats_servers)
    try:
        assert (await nc.jetstream().stream_info(STREAM)).state.messages == 7  # the copy untouched
    finally:
        await nc.close()
    forced = repair_stream("--force")
    assert forced.returncode == 0 and "已修复" in forced.stdout, forced.stderr

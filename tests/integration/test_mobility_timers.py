"""Mobility timers on the real processes: a prompt fires once across restarts, shows as a to-do, a transfer closes it.

The membership service's clock runs OFFSET days ahead (GONGDI_CLOCK_OFFSET_DAYS): members arrive on real dates
(commands are checked against the host's day) and come due by the service's clock. Each pass is the one at start,
so the test restarts the service to fire timers and follows the log's "timer pass" lines: progress, never sleeps.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest

from contracts.membership import SERVICE, RecordArrival, RecordContactLost, Relation, TransferRelation
from contracts.queries import timers_subject
from contracts.timeline import city_today
from gongdi.demo import samples as f
from gongdi.demo.seeder import timer_pass
from gongdi.ops.client import GongdiClient
from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.chaos import revive
from tests.integration.conftest import _fresh
from tests.integration.running import GONGDI, _env
from tests.integration.waiting import eventually

OFFSET = 170  # days the service's clock runs ahead
TODAY = city_today()
EARLY = TODAY - dt.timedelta(days=30)  # six months on is ~153 days from today: due by the service's clock
LATE = TODAY  # six months on is ~182 days from today: not due yet


@pytest.fixture
def settings(servers: Servers, request: pytest.FixtureRequest) -> Settings:
    # The shared servers' settings turn timers off (tests/conftest.py); here they run, with a pass only at start and
    # (unless a test's parameter says not) on the sites commands touch.
    return asyncio.run(_fresh(servers)).model_copy(update={
        "clock_offset_days": OFFSET, "timer_interval": 3600.0,
        "timers_on_commands": getattr(request, "param", True)})


def passes(log: Path) -> int:
    return log.read_text(errors="replace").count("timer pass") if log.exists() else 0


async def restart_membership(sup: Supervisor, log: Path) -> None:
    """SIGKILL the membership service, let the supervisor bring it back, and wait for its start-up pass."""
    before = passes(log)
    child = next(c for c in sup.children if c.name == "membership")
    os.kill(child.proc.pid, signal.SIGKILL)
    child.proc.wait(timeout=10)
    await revive(sup, "membership")
    assert await eventually(lambda: passes(log) > before, 30), log.read_text(errors="replace")[-3000:]


def arrival(member_id: str, on: dt.date, relation: Relation = Relation.mobile) -> RecordArrival:
    cmd = f.arrive("mob", member_id)
    return cmd.model_copy(update={"arrived_on": on, "member": cmd.member.model_copy(update={"relation": relation})})


async def prompts(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT event_type, payload->>'member_id' AS m FROM membership.events"
                            " WHERE event_type IN ('TransferPrompted', 'ContactEscalated') ORDER BY position")
    return [(r["event_type"], r["m"]) for r in rows]


def cli(tmp_path: Path, servers: Servers, settings: Settings) -> dict[str, str]:
    """What `gongdi view` prints for the site, its township and the city, as the city work committee."""
    home = tmp_path / "home"
    if not home.exists():
        home.mkdir()
        (home / "runtime.json").write_text(
            f'{{"nats_url": "{settings.nats_url}", "database_url": "{settings.database_url}"}}')
        os.symlink(servers.credentials.path, home / "credentials.json")
    views = {"site": ("site", "mob"), "township": ("township", "bailin"), "city": ("city",)}
    out = {}
    for name, args in views.items():
        done = subprocess.run([*GONGDI, "--home", str(home), "view", *args], capture_output=True, text=True,
                              env=_env(), timeout=30)
        assert done.returncode == 0, done.stderr
        out[name] = done.stdout
    return out


async def test_prompt_fires_once_across_restarts_and_a_transfer_closes_it(
        platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool, tmp_path: Path, servers: Servers,
        ready_settings: Settings):
    log = tmp_path / "logs" / "membership.log"
    assert await eventually(lambda: passes(log) >= 1)  # the pass at start, over an empty record
    for cmd in (f.register("mob"), arrival("due1", EARLY), arrival("notyet", LATE),
                arrival("lost1", EARLY, Relation.transferred),
                RecordContactLost(command_id=uuid.uuid4(), site_id="mob", member_id="lost1", last_contact_on=EARLY)):
        reply = await client.send(SERVICE, cmd)
        assert reply["ok"], reply
    # What a command made due on its site fires at once, not at the next pass an hour later: an arrival recorded
    # late, whose prompt fell due long ago, is prompted now (before, views as of a past day lacked it for an hour).
    fired = [("TransferPrompted", "due1"), ("ContactEscalated", "lost1")]
    assert await eventually(lambda: _prompted(pool, fired)), log.read_text(errors="replace")[-3000:]
    assert "timers fired on command" in log.read_text(errors="replace")

    await restart_membership(platform, log)  # its start-up pass: nothing is due twice
    assert sorted(await prompts(pool)) == sorted(fired)
    actor = await pool.fetchval("SELECT actor FROM membership.events WHERE event_type = 'TransferPrompted'")
    assert actor == "timer:流动党员"

    await restart_membership(platform, log)  # and again: nothing is due twice
    assert sorted(await prompts(pool)) == sorted(fired)

    async def site_todo() -> dict:
        reply = await client.query("views", "site", {"site_id": "mob"})
        return reply["data"]["mobility"] if reply["ok"] else {}

    assert await eventually(lambda: _has(site_todo, "transfer_prompts", "escalated"))
    todo = await site_todo()
    [prompt] = todo["transfer_prompts"]
    assert (prompt["member_id"], prompt["name"], prompt["arrived_on"]) == ("due1", "李四", EARLY.isoformat())
    assert prompt["prompted_on"] == (TODAY + dt.timedelta(days=OFFSET)).isoformat()
    assert [x["member_id"] for x in todo["escalated"]] == ["lost1"] and todo["contact_lost"] == []
    township = (await client.query("views", "township", {"township": "bailin"}))["data"]["mobility"]
    assert (township["transfer_prompts_open"], township["escalated"]) == (1, 1)
    assert township["sites"] == [{"site_id": "mob", "name": "工地mob", "transfer_prompts_open": 1, "escalated": 1}]
    assert "李四" not in str(township)  # the township's list names sites, not members
    city = (await client.query("views", "city"))["data"]["mobility"]
    assert (city["transfer_prompts_open"], city["escalated"]) == (1, 1)
    printed = cli(tmp_path, servers, ready_settings)
    assert "  !! 应转接组织关系: 李四（" in printed["site"] and "  !! 失联党员上报: 李四（" in printed["site"]
    assert "  流动党员     应转接组织关系 1，失联党员上报 1（失联登记 1）" in printed["township"]
    assert "    · 工地mob [mob]：应转接组织关系 1，失联党员上报 1" in printed["township"]
    assert "  流动党员     应转接组织关系 1，失联党员上报 1" in printed["city"]

    reply = await client.send(SERVICE, TransferRelation(command_id=uuid.uuid4(), site_id="mob", member_id="due1",
                                                        transferred_on=TODAY))
    assert reply["ok"], reply

    async def closed() -> bool:
        data = (await client.query("views", "site", {"site_id": "mob"}))["data"]
        return data["mobility"]["transfer_prompts"] == [] and data["by_relation"] == {"mobile": 1, "transferred": 2}

    assert await eventually(closed)
    city = (await client.query("views", "city"))["data"]["mobility"]
    assert (city["transfer_prompts_open"], city["escalated"]) == (0, 1)
    await restart_membership(platform, log)  # a transferred member is not prompted again
    assert sorted(await prompts(pool)) == sorted(fired)


async def _prompted(pool: asyncpg.Pool, fired: list[tuple[str, str]]) -> bool:
    return sorted(await prompts(pool)) == sorted(fired)


async def _has(todo, *keys: str) -> bool:
    data = await todo()
    return bool(data) and all(data[k] for k in keys)


@pytest.mark.parametrize("settings", [False], indirect=True, ids=["not-on-commands"])
async def test_the_operator_asks_for_a_pass_and_what_is_due_fires_without_waiting_or_a_restart(
        platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool, tmp_path: Path, servers: Servers,
        ready_settings: Settings):
    """`gongdi up --seed` records the demo after the start-up pass: the seeder then asks for a pass on the
    platform-only `ops.membership.timers.run` (gongdi.demo.seeder.timer_pass), so the prompts come now, not an
    interval (an hour) later. Asked again, nothing is due twice; a person cannot ask at all. (Timers fire on
    commands too; turned off here, so that the arrival's prompt waits for the operator's pass.)"""
    log = tmp_path / "logs" / "membership.log"
    assert await eventually(lambda: passes(log) >= 1)  # the pass at start, over an empty record
    for cmd in (f.register("mob"), arrival("due1", EARLY), arrival("notyet", LATE)):
        reply = await client.send(SERVICE, cmd)
        assert reply["ok"], reply
    child = next(c for c in platform.children if c.name == "membership")
    pid = child.proc.pid

    assert await timer_pass(ready_settings) == 1  # as the operator (`setup`), as the seeder does when done
    assert await prompts(pool) == [("TransferPrompted", "due1")]
    assert await timer_pass(ready_settings) == 0 and await prompts(pool) == [("TransferPrompted", "due1")]
    assert child.proc.pid == pid and child.proc.poll() is None  # no restart was needed
    denied = await client.request(timers_subject(SERVICE), b"{}")  # the city work committee: ops.> is not its
    assert denied["ok"] is False and denied["error"]["code"] == "FORBIDDEN"

    async def city_todo() -> bool:
        reply = await client.query("views", "city")
        return reply["ok"] and reply["data"]["mobility"]["transfer_prompts_open"] == 1

    assert await eventually(city_todo)

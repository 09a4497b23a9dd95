"""A dead letter is visible and recoverable: every service's status lists it per consumer (event type, site, error
code), the platform is not "caught up" while it exists, `gongdi deadletters` lists it, and once its cause is gone
`gongdi deadletters retry` applies it through the consumer's own handler, exactly once."""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from contracts.activities import SERVICE as ACTIVITIES
from contracts.envelope import Envelope
from contracts.membership import SERVICE
from contracts.queries import retry_subject, status_subject
from contracts.subjects import event_subject, stream_name
from gongdi.demo import samples as f
from gongdi.ops.client import NATS_PERMISSION, GongdiClient
from gongdi.ops.readiness import caught_up, settled, stream_status
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.running import GONGDI, _env, gongdi
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")

MEMBERSHIP_STREAM = stream_name(SERVICE)
POISON = "RaiseError[P0001]"  # what a trigger's RAISE EXCEPTION is, as a dead letter's code


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest's, with consumers that dead-letter at the second failure instead of the fifth (seconds
    of backoff less, the same path)."""
    return settings.model_copy(update={"consumer_max_deliver": 2})


@pytest.fixture
def home(tmp_path: Path, servers: Servers, ready_settings: Settings) -> Path:
    """A state folder pointing the `gongdi` command at the test's servers, as `gongdi up` leaves one."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(servers.credentials.path, home / "credentials.json")
    (home / "runtime.json").write_text(json.dumps({"nats_url": ready_settings.nats_url,
                                                   "database_url": ready_settings.database_url}))
    (home / "credentials.json").chmod(0o600)
    return home


async def letters(client: GongdiClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(service, stream, letter) of every dead letter, as the services' status says."""
    status = await stream_status(None, client)
    return [(c["service"], c["stream"], letter) for c in status["consumers"] for letter in c["letters"]]


async def poison(pool: asyncpg.Pool, table: str, column: str, value: str) -> None:
    """A trigger that makes every insert of `value` into `table` fail: a cause an operator can remove."""
    schema = table.split(".")[0]
    await pool.execute(f"""
        CREATE FUNCTION {schema}.test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.{column} = '{value}' THEN RAISE EXCEPTION 'poisoned by the test'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_poison BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {schema}.test_poison();""")


async def cure(pool: asyncpg.Pool, table: str) -> None:
    schema = table.split(".")[0]
    await pool.execute(f"DROP TRIGGER test_poison ON {table}; DROP FUNCTION {schema}.test_poison();")


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    return gongdi(home, *args)


def start_gongdi(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*GONGDI, "--home", str(home), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env())


async def test_a_refused_event_shows_in_status_and_blocks_caught_up(client: GongdiClient, ready_settings: Settings):
    assert (await client.send(SERVICE, f.register("dl")))["ok"]
    assert await eventually(lambda: caught_up(ready_settings, client))
    nc = await nats.connect(ready_settings.nats_servers)  # the operator's user: it may publish anything
    try:
        js = nc.jetstream()
        real = Envelope.from_json((await js.get_msg(MEMBERSHIP_STREAM, seq=1)).data)
        forged = real.model_copy(update={"event_id": uuid.uuid4(), "version": 7})  # continues nothing
        await js.publish(event_subject("bailin", SERVICE, "SiteRegistered"), forged.to_json(),
                         headers={"Nats-Msg-Id": str(forged.event_id)})
    finally:
        await nc.close()

    # Every consumer of the membership stream sees it, views and both policies, and each refuses it.
    found = await eventually(lambda: _when_count(letters(client), 3))
    assert sorted(service for service, _, _ in found) == ["activities", "liaison", "views"]
    for _, stream, letter in found:
        assert stream == MEMBERSHIP_STREAM and letter["stream_seq"] == 2
        assert (letter["event_type"], letter["site_id"], letter["code"]) == ("SiteRegistered", "dl",
                                                                             "StreamContinuityError")
    assert not await caught_up(ready_settings, client)
    status = await stream_status(None, client)
    # The forgery is on the stream but in no store: published is one more than recorded.
    membership = status["streams"][0]
    assert (membership["stream"], membership["recorded"], membership["published"]) == (MEMBERSHIP_STREAM, 1, 2)
    counts = {(c["service"], c["stream"]): c["dead_letters"] for c in status["consumers"]}
    assert counts == {("views", stream_name(s)): int(s == SERVICE) for s in ("membership", "activities", "liaison")
                      } | {("activities", MEMBERSHIP_STREAM): 1, ("liaison", MEMBERSHIP_STREAM): 1}


async def _when_count(check: Any, n: int) -> Any:
    found = await check
    return found if len(found) == n else None


async def test_a_views_dead_letter_is_listed_and_retried_once_its_cause_is_gone(
        client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings, home: Path):
    await poison(pool, "views.site", "site_id", "poison")
    assert (await client.send(SERVICE, f.register("poison")))["ok"]
    assert (await client.send(SERVICE, f.register("fine")))["ok"]

    [(service, stream, letter)] = await eventually(lambda: letters(client))
    assert (service, stream) == ("views", MEMBERSHIP_STREAM)
    assert (letter["stream_seq"], letter["event_type"], letter["site_id"], letter["code"]) == (
        1, "SiteRegistered", "poison", POISON)
    assert await eventually(lambda: settled(ready_settings, client))  # the event after it was applied
    assert not await caught_up(ready_settings, client)
    assert (await client.query("views", "site", {"site_id": "poison"}))["error"]["code"] == "SITE_NOT_FOUND"

    shown = run(home, "view", "status")
    assert shown.returncode == 0, shown.stderr
    assert "SiteRegistered" in shown.stdout and POISON in shown.stdout and "死信 1" in shown.stdout
    listed = run(home, "deadletters")
    assert listed.returncode == 0, listed.stderr
    [row] = [line.split() for line in listed.stdout.splitlines() if "SiteRegistered" in line]
    assert row[:7] == ["views", "views", MEMBERSHIP_STREAM, "1", "SiteRegistered", "poison", POISON]
    assert "poisoned by the test" not in listed.stdout + shown.stdout  # the error's text is never shown

    # While the cause is there, a retry fails again, says why, and keeps the letter.
    again = run(home, "deadletters", "retry")
    assert again.returncode == 1 and "仍失败" in again.stdout and POISON in again.stdout, again.stdout
    [(_, _, kept)] = await letters(client)
    assert kept["retries"] == 1

    await cure(pool, "views.site")
    done = run(home, "deadletters", "retry", "--service", "views")
    assert done.returncode == 0 and "已重新处理" in done.stdout and "重新处理 1/1" in done.stdout, done.stdout
    site = await client.query("views", "site", {"site_id": "poison"})
    assert site["ok"] and site["data"]["site_id"] == "poison"
    assert await letters(client) == []
    assert await caught_up(ready_settings, client)
    assert "死信 0" in run(home, "view", "status").stdout and "死信 1" not in run(home, "view", "status").stdout

    twice = run(home, "deadletters", "retry")
    assert twice.returncode == 0 and "没有死信需要重新处理" in twice.stdout, twice.stdout
    retried = await pool.fetch("SELECT consumer, stream, stream_seq, event_type, site_id, retries"
                               " FROM views.retried_letters")
    assert [tuple(r) for r in retried] == [("views", MEMBERSHIP_STREAM, 1, "SiteRegistered", "poison", 1)]
    assert await pool.fetchval("SELECT count(*) FROM views.site WHERE site_id = 'poison'") == 1
    assert "没有死信" in run(home, "deadletters").stdout


async def test_a_policy_dead_letter_is_retried_and_its_effect_reaches_the_views(
        client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings, home: Path):
    await poison(pool, "activities.presence", "member_id", "m-poison")
    assert (await client.send(SERVICE, f.register("pol")))["ok"]
    assert (await client.send(SERVICE, f.arrive("pol", "m-poison")))["ok"]

    [(service, stream, letter)] = await eventually(lambda: letters(client))
    assert (service, stream) == (ACTIVITIES, MEMBERSHIP_STREAM)
    assert (letter["stream_seq"], letter["event_type"], letter["site_id"], letter["code"]) == (
        2, "MemberArrived", "pol", POISON)
    assert await eventually(lambda: settled(ready_settings, client))
    assert not await caught_up(ready_settings, client)
    talks = await client.query("views", "talks", {"site_id": "pol"})
    assert talks["ok"] and talks["data"]["open"] == []  # the talk policy did not run

    listed = run(home, "deadletters")
    [row] = [line.split() for line in listed.stdout.splitlines() if "MemberArrived" in line]
    assert row[:7] == [ACTIVITIES, ACTIVITIES, MEMBERSHIP_STREAM, "2", "MemberArrived", "pol", POISON]
    shown = run(home, "view", "status").stdout
    assert "#2 MemberArrived 工地 pol 错误 RaiseError[P0001]" in shown, shown

    await cure(pool, "activities.presence")
    # Two operators at once: the letter is applied by one of them, and the other applies nothing.
    both = [start_gongdi(home, "deadletters", "retry", "--service", ACTIVITIES) for _ in range(2)]
    outs = [proc.communicate(timeout=60)[0] for proc in both]
    assert [proc.returncode for proc in both] == [0, 0], outs
    assert sum(out.count("已重新处理") for out in outs) == 1, outs

    async def talk() -> list[dict[str, Any]]:
        return ((await client.query("views", "talks", {"site_id": "pol"}))["data"] or {}).get("open", [])

    [obligation] = await eventually(talk)  # appended by the policy, relayed, projected
    assert obligation["member_id"] == "m-poison"
    assert await eventually(lambda: caught_up(ready_settings, client))
    assert run(home, "deadletters", "retry").stdout.strip() == "没有死信需要重新处理 (nothing to retry)"
    assert await pool.fetchval("SELECT count(*) FROM activities.events WHERE event_type = 'TalkObligationCreated'"
                               ) == 1
    assert await pool.fetchval("SELECT member_id FROM activities.presence") == "m-poison"


async def test_who_may_ask_for_status_and_retry(client: GongdiClient, admin_settings: Settings, servers: Servers):
    dashboard = await GongdiClient.connect(servers.as_identity(admin_settings, "dashboard"))
    township = await GongdiClient.connect(servers.as_identity(admin_settings, "township.diantou"))
    try:
        for service in ("membership", "activities", "liaison", "views"):
            assert (await client.request(status_subject(service), b"{}"))["ok"], service
            assert (await dashboard.request(status_subject(service), b"{}"))["ok"], service
            # A person never reaches the operator's retry: `ops.>` is the PLATFORM account's alone.
            refused = await client.request(retry_subject(service), b"{}")
            assert refused["error"]["field"] == NATS_PERMISSION, service
        for service in ("membership", "activities", "liaison"):  # the platform's state, not a township's
            refused = await township.request(status_subject(service), b"{}")
            assert (refused["error"]["code"], refused["error"]["field"]) == ("FORBIDDEN", "NOT_YOURS"), service
        assert (await township.request(status_subject("views"), b"{}"))["ok"]
        bad = await client.request(status_subject("membership"), b'{"all": true}')
        assert bad["error"]["code"] == "VALIDATION_FAILED"
    finally:
        await dashboard.close()
        await township.close()

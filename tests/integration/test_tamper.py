"""Tamper evidence, against real PostgreSQL and NATS: every edit an attacker with the database's superuser can make
is reported by `verify`, naming the record; an untouched log verifies.

One platform writes a small log and stops (its last signed heads are published on shutdown); each case then
tampers with its own copy of that database (CREATE DATABASE … TEMPLATE) and verifies it against the same JetStream
copy and heads. The attacker switches the append-only triggers off with `session_replication_role = replica`.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import orjson
import pytest
from nats.js.errors import APIError

from contracts.envelope import chain_hash
from gongdi.bus.heads import HEADS_STREAM, latest_head
from gongdi.demo import samples as f
from gongdi.ops.audit import Report, verify_all
from gongdi.ops.client import GongdiClient
from gongdi.ops.supervisor import WRITERS, Supervisor
from gongdi.service.settings import Settings
from gongdi.store.base import StoredRow
from gongdi.store.heads import HeadKey
from gongdi.store.postgres import SELECT_LIST
from tests.conftest import Servers, unique
from tests.integration.conftest import _fresh, _wait_ready
from tests.integration.waiting import eventually

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class Base:
    servers: Servers
    settings: Settings
    database: str  # the untouched log's database, the template of every case's copy


async def _write_log(settings: Settings, admin: Settings) -> None:
    client = await GongdiClient.connect(admin)
    try:
        for site in ("tamper-a", "tamper-b"):
            assert (await client.send("membership", f.register(site)))["ok"]
            assert (await client.send("membership", f.workforce(site, 120)))["ok"]
            for n in range(4):
                assert (await client.send("membership", f.arrive(site, f"{site}-m{n}")))["ok"]
        dispute = {"site_id": "tamper-a", "case_id": "w-1", "kind": "wages", "reported_on": "2020-09-01",
                   "parties": ["劳务班组"], "amount_yuan": "5000", "description": "欠薪"}

        async def reported() -> bool:  # liaison learns the site from membership's events first
            reply = await client.send_dict("liaison", "ReportDispute", {"command_id": str(uuid.uuid4()), **dispute})
            return reply["ok"]

        assert await eventually(reported)
    finally:
        await client.close()


async def _caught_up(settings: Settings) -> None:
    """Every event relayed, then (after the stop) a head covering every event of every writer."""
    conn = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_servers)
    try:
        js = nc.jetstream()
        arrivals = await conn.fetchval("SELECT count(*) FROM membership.events WHERE event_type = 'MemberArrived'")

        async def talks_due() -> bool:  # the activities policy: one talk obligation per arrival
            return await conn.fetchval("SELECT count(*) FROM activities.events") >= arrivals

        assert await eventually(talks_due)
        for w in WRITERS:
            count = await conn.fetchval(f"SELECT count(*) FROM {w}.events")

            async def relayed(w: str = w, count: int = count) -> bool:
                return (await js.stream_info(f"EVT_{w.upper()}")).state.last_seq == count

            assert await eventually(relayed), w
    finally:
        await nc.close()
        await conn.close()


async def _heads_cover(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_servers)
    try:
        for w in WRITERS:
            count = await conn.fetchval(f"SELECT count(*) FROM {w}.events")

            async def covered(w: str = w, count: int = count) -> bool:
                head = await latest_head(nc.jetstream(), w)
                return head is not None and head["events"] == count

            assert await eventually(covered), w
    finally:
        await nc.close()
        await conn.close()


@pytest.fixture(scope="module")
def base(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Base:
    settings = asyncio.run(_fresh(servers))
    logs = tmp_path_factory.mktemp("tamper") / "logs"
    Supervisor(settings, logs, passwords=servers.credentials.nats,
               database_passwords=servers.credentials.postgres).setup()
    sup = Supervisor(settings, logs, say=lambda *_: None, passwords=servers.credentials.nats,
                     database_passwords=servers.credentials.postgres)
    admin = servers.as_identity(settings, "city")
    sup.start()
    try:
        asyncio.run(_wait_ready(admin))
        asyncio.run(_write_log(settings, admin))
        asyncio.run(_caught_up(settings))
    finally:
        sup.stop()  # each writer signs and publishes its last head on the way out
    asyncio.run(_heads_cover(settings))
    return Base(servers, settings, settings.database_url.rsplit("/", 1)[1])


@pytest.fixture
async def copy(base: Base) -> AsyncIterator[str]:
    """A copy of the untouched log's database, for one case to tamper with."""
    name = unique("tamper")
    admin = await asyncpg.connect(base.servers.database_url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base.database}"')
    finally:
        await admin.close()
    yield base.servers.database_url(name)


async def verify(base: Base, url: str, kept: Path | None = None) -> list[Report]:
    nc = await nats.connect(base.settings.nats_servers)
    try:
        return await verify_all(url, nc.jetstream(), WRITERS, HeadKey(base.servers.credentials.head_key).public_hex,
                                kept)
    finally:
        await nc.close()


async def tamper(url: str, work: Callable[[asyncpg.Connection], Awaitable[object]]) -> object:
    """As the database's superuser, with the append-only triggers switched off."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")
        return await work(conn)
    finally:
        await conn.close()


async def rows(url: str, sql_where: str = "true", schema: str = "membership") -> list[StoredRow]:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch(f"SELECT {SELECT_LIST} FROM {schema}.events WHERE {sql_where} ORDER BY position")
        return [StoredRow(**r) for r in found]
    finally:
        await conn.close()


def first_problem(reports: list[Report], service: str = "membership") -> str:
    problems = [p for r in reports for p in r.problems]
    assert problems, "verify found nothing"
    mine = next(r for r in reports if r.service == service).problems
    assert mine, f"nothing reported for {service}: {[str(p) for p in problems]}"
    return str(mine[0])


def named(row: StoredRow, service: str = "membership") -> str:
    return f"{service} 事件 position {row.position} (stream {row.stream_id} version {row.version})"


async def test_an_untouched_log_verifies_and_its_heads_cannot_be_removed(base: Base, copy: str, tmp_path: Path):
    reports = await verify(base, copy)
    assert [str(p) for r in reports for p in r.problems] == []
    assert all(r.head is not None and r.head["events"] == r.events == r.published > 0 for r in reports), [
        (r.service, r.events, r.published, r.head and r.head["events"]) for r in reports]
    nc = await nats.connect(base.settings.nats_servers)
    try:
        js = nc.jetstream()
        with pytest.raises(APIError):
            await js.purge_stream(HEADS_STREAM)
        with pytest.raises(APIError):
            await js.delete_msg(HEADS_STREAM, 1)
        # An auditor's kept file: exported once, it checks a later database without the bus.
        kept = tmp_path / "heads.jsonl"
        await verify_all(copy, js, WRITERS, HeadKey(base.servers.credentials.head_key).public_hex, export=kept)
    finally:
        await nc.close()
    assert len(kept.read_text().splitlines()) == len(WRITERS)
    last = (await rows(copy))[-3:]
    await tamper(copy, lambda c: c.execute("DELETE FROM membership.events WHERE position = ANY($1)",
                                           [r.position for r in last]))
    offline = await verify_all(copy, None, WRITERS, HeadKey(base.servers.credentials.head_key).public_hex, kept)
    assert "[COMMAND_WITHOUT_EVENTS]" in first_problem(offline)  # whole commands went: their rows stayed
    assert any(p.code == "HEAD_EVENTS" and "保存的文件" in p.text for r in offline for p in r.problems)


async def test_an_edited_payload_is_named(base: Base, copy: str):
    target = (await rows(copy, "event_type = 'MemberArrived'"))[2]
    await tamper(copy, lambda c: c.execute(
        "UPDATE membership.events SET payload = jsonb_set(payload, '{arrived_on}', '\"2019-01-01\"')"
        " WHERE position = $1", target.position))
    assert first_problem(await verify(base, copy)) == f"{named(target)}: 哈希不符，内容在写入后被改动 [HASH_MISMATCH]"


async def test_an_edited_township_is_named(base: Base, copy: str):
    target = (await rows(copy, "event_type = 'MemberArrived'"))[1]
    await tamper(copy, lambda c: c.execute("UPDATE membership.events SET township = 'diantou' WHERE position = $1",
                                           target.position))
    assert first_problem(await verify(base, copy)) == f"{named(target)}: 哈希不符，内容在写入后被改动 [HASH_MISMATCH]"


async def test_a_deleted_event_is_named(base: Base, copy: str):
    stream = (await rows(copy))[0].stream_id
    target = (await rows(copy, f"stream_id = '{stream}' AND version = 3"))[0]
    await tamper(copy, lambda c: c.execute("DELETE FROM membership.events WHERE position = $1", target.position))
    problem = first_problem(await verify(base, copy))
    assert problem.startswith(named(target)) and problem.endswith("[MISSING_IN_DATABASE]"), problem


async def test_the_last_three_events_of_a_stream_deleted_are_named(base: Base, copy: str):
    stream = (await rows(copy))[0].stream_id
    last = (await rows(copy, f"stream_id = '{stream}'"))[-3:]
    await tamper(copy, lambda c: c.execute("DELETE FROM membership.events WHERE position = ANY($1)",
                                           [r.position for r in last]))
    reports = await verify(base, copy)
    problem = first_problem(reports)
    assert problem.startswith(named(last[0])) and problem.endswith("[MISSING_IN_DATABASE]"), problem
    assert any(p.code == "HEAD_EVENTS" for r in reports for p in r.problems)


async def test_a_deleted_stream_is_named(base: Base, copy: str):
    stream = (await rows(copy))[-1].stream_id
    gone = await rows(copy, f"stream_id = '{stream}'")
    await tamper(copy, lambda c: c.execute("DELETE FROM membership.events WHERE stream_id = $1", stream))
    problem = first_problem(await verify(base, copy))
    assert problem.startswith(named(gone[0])) and problem.endswith("[MISSING_IN_DATABASE]"), problem


async def test_a_stream_rewritten_with_recomputed_hashes_is_named(base: Base, copy: str):
    stream = (await rows(copy))[0].stream_id
    chain = await rows(copy, f"stream_id = '{stream}'")

    async def rewrite(conn: asyncpg.Connection) -> None:
        prev = chain[0].hash
        for row in chain[1:]:
            values = row.hash_values()
            if row.version == 2:
                values["payload"] = {**values["payload"], "headcount": 9999}
            values["prev_hash"] = prev
            prev = chain_hash(values)
            await conn.execute("UPDATE membership.events SET payload = $1::jsonb, prev_hash = $2, hash = $3"
                               " WHERE position = $4", orjson.dumps(values["payload"]).decode(), values["prev_hash"],
                               prev, row.position)

    await tamper(copy, rewrite)
    reports = await verify(base, copy)
    assert not [p for r in reports for p in r.problems if p.code in ("HASH_MISMATCH", "PREV_MISMATCH")]  # recomputed
    problem = first_problem(reports)
    assert problem.startswith(named(chain[1])) and problem.endswith("[COPY_MISMATCH]"), problem
    assert "payload" in problem and "hash" in problem
    assert any(p.code == "HEAD_STREAMS" for r in reports for p in r.problems)


async def test_an_inserted_commands_row_is_named(base: Base, copy: str):
    made_up = uuid.uuid4()
    await tamper(copy, lambda c: c.execute(
        "INSERT INTO liaison.commands (command_id, warnings, fingerprint) VALUES ($1, '[]', 'x')", made_up))
    problem = first_problem(await verify(base, copy), "liaison")
    assert problem == (f"liaison 命令 {made_up}: commands 表中有此命令，但没有它的任何事件"
                       " [COMMAND_WITHOUT_EVENTS]")


async def test_a_deleted_commands_row_is_named(base: Base, copy: str):
    target = (await rows(copy, "event_type = 'MemberArrived'"))[3]
    await tamper(copy, lambda c: c.execute("DELETE FROM membership.commands WHERE command_id = $1",
                                           target.command_id))
    reports = await verify(base, copy)
    assert first_problem(reports) == (f"{named(target)}: 它的命令 {target.command_id} 在 commands 表中不存在"
                                      " [COMMAND_MISSING]")
    assert any(p.code == "HEAD_COMMANDS" for r in reports for p in r.problems)


async def test_two_reordered_events_are_named(base: Base, copy: str):
    a, b = (await rows(copy, "event_type = 'MemberArrived'"))[:2]

    async def swap(conn: asyncpg.Connection) -> None:
        await conn.execute("ALTER TABLE membership.events ALTER COLUMN position SET GENERATED BY DEFAULT")
        for position, to in ((a.position, -1), (b.position, a.position), (-1, b.position)):
            await conn.execute("UPDATE membership.events SET position = $2 WHERE position = $1", position, to)

    await tamper(copy, swap)
    problem = first_problem(await verify(base, copy))
    assert problem.startswith(f"membership 事件 position {a.position} (stream {b.stream_id} version {b.version})")
    assert problem.endswith("与 JetStream 副本不符 (position) [COPY_MISMATCH]"), problem

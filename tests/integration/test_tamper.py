"""Tamper evidence, against real PostgreSQL and NATS: every edit an attacker with the database's superuser can make
is reported by `verify`, naming the record; an untouched log verifies (the common ground: `tampering`)."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import orjson
import pytest
from nats.js.errors import APIError

from contracts.envelope import chain_hash
from gongdi.bus.heads import HEADS_STREAM
from gongdi.ops.audit import summary, verify_all
from gongdi.ops.supervisor import WRITERS
from gongdi.store.heads import HeadKey
from tests.conftest import Servers
from tests.integration.tampering import Base, copy_of, first_problem, make_base, named, rows, tamper, verify

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def base(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Base:
    return make_base(servers, tmp_path_factory)


@pytest.fixture
async def copy(base: Base) -> AsyncIterator[str]:
    """A copy of the untouched log's database, for one case to tamper with."""
    yield await copy_of(base)


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
    # What verify prints says the kept heads were checked (before, it printed what it prints without them)
    assert all("，留存的日志头 " in summary(r) and r.kept is not None for r in offline), [summary(r) for r in offline]


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
    [head] = [p for r in reports for p in r.problems if p.code == "HEAD_EVENTS"]
    assert "缺少 3 条签名时已有的事件" in head.text, head.text


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

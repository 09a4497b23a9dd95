"""Tamper cases' common ground: one platform writes a small log and stops (its last signed heads are published on
shutdown); each case tampers with its own copy of that database (CREATE DATABASE … TEMPLATE) and verifies it against
the same JetStream copy and heads. The attacker switches the append-only triggers off with
`session_replication_role = replica`."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import pytest

from contracts.history import EVENT_LABELS
from gongdi.bus.heads import latest_head
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


def make_base(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Base:
    """A platform that wrote a small log and stopped: its database is the template of every case's copy."""
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


async def copy_of(base: Base) -> str:
    """A copy of the untouched log's database, for one case to tamper with."""
    name = unique("tamper")
    admin = await asyncpg.connect(base.servers.database_url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base.database}"')
    finally:
        await admin.close()
    return base.servers.database_url(name)




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
    """A record as verify names it: where, then what (党员进场 MemberArrived)."""
    return (f"{service} 事件 position {row.position} (stream {row.stream_id} version {row.version})"
            f" {EVENT_LABELS[row.type]} {row.type}")

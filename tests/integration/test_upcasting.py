"""Schema evolution through the real processes: a talk stored as TalkHeld v1 by an older release and one recorded
as v2 by today's command both reach the live views and a rebuild in the v2 shape; the v1 row keeps its hash."""
from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import orjson
import pytest

from contracts.activities import SERVICE as ACTIVITIES
from contracts.activities import RecordTalk, TalkMethod, parse_event
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.timeline import city_today
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings
from gongdi.store.base import Meta, Pending
from gongdi.store.postgres import PostgresEventStore
from gongdi.store.sitestreams import stream_of
from services.activities.domain import ActivitySite, evolve
from services.views import activities
from services.views.app import rebuild
from tests.integration.waiting import eventually
from tests.releases import Release01

DAY = dt.date(2020, 7, 1)
SITE = "up1"


async def open_talks(client: GongdiClient) -> dict[str, str]:
    """member → obligation id of the site's open talks."""
    reply = await client.query("views", "talks", {"site_id": SITE})
    return {t["member_id"]: t["obligation_id"] for t in (reply["data"] or {}).get("open", [])}  # none: not there yet


async def append_as_release_01(pool: asyncpg.Pool, obligation: str) -> None:
    """What an older activities service did for RecordTalk: append TalkHeld v1 and fold it into the snapshot."""
    store = PostgresEventStore(pool, ACTIVITIES)
    async with store.transaction() as tx:
        stored = await store.snapshot(tx, SITE)
        assert stored.state_version == stored.head.version  # a small site's state is stored with every event
        site, head = ActivitySite.model_validate_json(stored.state), stored.head
        township = await tx.fetchval(f"SELECT township FROM {ACTIVITIES}.events WHERE site_id = $1 LIMIT 1", SITE)
        old = Release01.TalkHeld(site_id=SITE, obligation_id=uuid.UUID(obligation), member_id="a1",
                                 talked_by="支部书记", talked_on=DAY, note="谈心谈话")
        command = uuid.uuid4()  # and its commands row, bound into the event's hash as every command's is
        _, heads = await store.append(tx, [Pending(old, stream_of(SITE), township, SITE)], {stream_of(SITE): head},
                                      Meta(actor=f"site.{township}.{SITE}", command_id=command, fingerprint="v1"))
        await store.save_command(tx, command, [], "v1")
        folded = evolve(site, parse_event("TalkHeld", 1, old.model_dump(mode="json")))
        await store.save_snapshot(tx, SITE, heads[stream_of(SITE)], folded.model_dump_json())


async def methods(pool: asyncpg.Pool, schema: str) -> dict[str, str | None]:
    rows = await pool.fetch(f"SELECT member_id, method FROM {schema}.talk_obligation WHERE site_id = $1", SITE)
    return {r["member_id"]: r["method"] for r in rows}


@pytest.mark.usefixtures("platform")
async def test_a_v1_talk_and_a_v2_talk_show_in_the_new_shape(client: GongdiClient, pool: asyncpg.Pool,
                                                             ready_settings: Settings):
    assert (await client.send(MEMBERSHIP, f.register(SITE)))["ok"]
    for m in ("a1", "a2", "a3"):
        assert (await client.send(MEMBERSHIP, f.arrive(SITE, m)))["ok"]

    async def created() -> bool:
        return len(await open_talks(client)) == 3

    assert await eventually(created), "the activities policy did not create the arrival talks"
    talks = await open_talks(client)

    await append_as_release_01(pool, talks["a1"])
    phoned = RecordTalk(command_id=uuid.uuid4(), site_id=SITE, obligation_id=uuid.UUID(talks["a2"]),
                        talked_by="支部书记", talked_on=DAY, method=TalkMethod.phone, note="电话回访")
    reply = await client.send(ACTIVITIES, phoned)
    assert reply["ok"], reply
    # The writer folded the v1 talk too: that obligation is closed for today's commands as well.
    again = RecordTalk(command_id=uuid.uuid4(), site_id=SITE, obligation_id=uuid.UUID(talks["a1"]),
                       talked_by="支部书记", talked_on=DAY)
    assert (await client.send(ACTIVITIES, again))["error"]["code"] == "OBLIGATION_ALREADY_CLOSED"

    rows = {r["member_id"]: r for r in await pool.fetch(
        f"SELECT payload->>'member_id' AS member_id, schema_version, payload::text AS payload"
        f" FROM {ACTIVITIES}.events WHERE event_type = 'TalkHeld'")}
    assert {m: r["schema_version"] for m, r in rows.items()} == {"a1": 1, "a2": 2}
    assert "method" not in orjson.loads(rows["a1"]["payload"])
    assert orjson.loads(rows["a2"]["payload"])["method"] == "phone"

    # The live views: both talks done, each with its method; the v1 one as held in person.
    async def shown() -> bool:
        site = (await client.query("views", "site", {"site_id": SITE}))["data"]["activities"]
        return site["talks"]["done"] == 2 and site["talks_by_method"] == {"in_person": 1, "phone": 1}

    assert await eventually(shown), (await client.query("views", "site", {"site_id": SITE}))["data"]["activities"]
    assert await methods(pool, "views") == {"a1": "in_person", "a2": "phone", "a3": None}
    city = (await client.query("views", "city"))["data"]["activities"]
    assert city["talks_by_method"] == {"in_person": 1, "phone": 1}

    # A rebuild replays the stored v1 event through the same upcaster and gets the same views.
    await rebuild(ready_settings, "views_rebuild")
    assert await methods(pool, "views_rebuild") == await methods(pool, "views")
    today = city_today()
    async with pool.acquire() as conn:
        live = await activities.summary(conn, "views", "site", SITE, today)
        rebuilt = await activities.summary(conn, "views_rebuild", "site", SITE, today)
    assert rebuilt == live and live["talks_by_method"] == {"in_person": 1, "phone": 1}

    # Nothing was rewritten: the v1 row is as stored, and every hash chain still verifies.
    after = await pool.fetchval(f"SELECT payload::text FROM {ACTIVITIES}.events WHERE event_type = 'TalkHeld'"
                                " AND schema_version = 1")
    assert after == rows["a1"]["payload"]
    assert await PostgresEventStore(pool, ACTIVITIES).verify() == []
    dead = await pool.fetchval("SELECT count(*) FROM views.dead_letters")
    assert dead == 0

"""Command → event in Postgres → message on JetStream → row in the view, through the real processes."""
from __future__ import annotations

import asyncio

import asyncpg
import nats
import orjson
import pytest

from contracts.envelope import Envelope
from contracts.membership import SERVICE
from contracts.subjects import stream_name
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")


async def site_view(client: GongdiClient, site_id: str) -> dict:
    return await client.query("views", "site", {"site_id": site_id})


async def test_command_reaches_store_bus_and_view(client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings):
    reply = await client.send(SERVICE, f.register("alpha"))
    assert reply["ok"], reply
    event_id = reply["events"][0]["event_id"]

    row = await pool.fetchrow("SELECT event_type, stream_id, version, hash FROM membership.events")
    assert (row["event_type"], row["stream_id"], row["version"]) == ("SiteRegistered", "site-alpha", 1)

    nc = await nats.connect(ready_settings.nats_servers)
    try:
        js = nc.jetstream()

        async def on_bus():
            return (await js.stream_info(stream_name(SERVICE))).state.messages == 1

        assert await eventually(on_bus)
        msg = await js.get_msg(stream_name(SERVICE), seq=1)
        assert msg.subject == "evt.bailin.membership.SiteRegistered"
        assert msg.headers["Nats-Msg-Id"] == event_id
        env = Envelope.from_json(msg.data)
        assert env.hash == row["hash"] and env.payload["name"] == "工地alpha"
    finally:
        await nc.close()

    async def in_view():
        return (await site_view(client, "alpha"))["ok"]

    assert await eventually(in_view)
    data = (await site_view(client, "alpha"))["data"]
    assert data["qualifies"] and data["gap"] and data["members_present"] == 0


async def test_retried_command_writes_once(client: GongdiClient, pool: asyncpg.Pool):
    cmd = f.register("beta")
    first, *again = await asyncio.gather(*(client.send(SERVICE, cmd) for _ in range(6)))
    replies = [first, *again]
    assert all(r["ok"] for r in replies)
    assert sum(1 for r in replies if not r["duplicate"]) == 1
    assert len({r["events"][0]["event_id"] for r in replies}) == 1
    assert await pool.fetchval("SELECT count(*) FROM membership.events") == 1
    later = await client.send(SERVICE, cmd)
    assert later["duplicate"] and later["events"] == first["events"]


async def test_invalid_command_is_refused_and_writes_nothing(client: GongdiClient, pool: asyncpg.Pool):
    reply = await client.send_dict(SERVICE, "RegisterSite", {"site_id": "Bad Id", "name": "x"})
    assert not reply["ok"] and reply["error"]["code"] == "VALIDATION_FAILED" and reply["error"]["field"] == "site_id"
    broken = await client.send_raw(SERVICE, "RecordArrival", b"{not json")
    assert broken["error"]["code"] == "VALIDATION_FAILED"
    assert await pool.fetchval("SELECT count(*) FROM membership.events") == 0


async def test_broken_rule_is_refused_and_writes_nothing(client: GongdiClient, pool: asyncpg.Pool):
    assert (await client.send(SERVICE, f.register("gamma")))["ok"]
    for m in ("m1", "m2"):
        assert (await client.send(SERVICE, f.arrive("gamma", m)))["ok"]
    before = await pool.fetchval("SELECT count(*) FROM membership.events")
    reply = await client.send(SERVICE, f.form_branch("gamma", "m1"))
    assert reply["error"]["code"] == "BRANCH_TOO_FEW_FULL_MEMBERS"
    assert await pool.fetchval("SELECT count(*) FROM membership.events") == before
    assert await pool.fetchval("SELECT count(*) FROM membership.commands") == before


async def test_arrival_elsewhere_moves_the_member(client: GongdiClient, pool: asyncpg.Pool):
    for s in ("east", "west"):
        assert (await client.send(SERVICE, f.register(s)))["ok"]
    assert (await client.send(SERVICE, f.arrive("east", "m7")))["ok"]
    moved = await client.send(SERVICE, f.arrive("west", "m7"))
    assert [e["type"] for e in moved["events"]] == ["MemberDeparted", "MemberArrived"]
    assert [e["stream_id"] for e in moved["events"]] == ["site-east", "site-west"]

    async def settled():
        east, west = (await site_view(client, "east"))["data"], (await site_view(client, "west"))["data"]
        return east and west and east["members_present"] == 0 and west["members_present"] == 1  # both projected

    assert await eventually(settled)
    city = (await client.query("views", "city"))["data"]
    assert city["members"] == 1
    # The departure names the site the member went to, by name as well (exports and the page show it).
    [left] = (await site_view(client, "east"))["data"]["recent_departures"]
    assert (left["moved_to_site"], left["moved_to_name"]) == ("west", "工地west")


async def test_members_swapping_sites_at_once_all_move(client: GongdiClient, pool: asyncpg.Pool):
    # Two moves in opposite directions write the same two streams in opposite orders: they must queue, not fail.
    for s in ("north", "south"):
        assert (await client.send(SERVICE, f.register(s)))["ok"]
    pairs = 40
    for i in range(pairs):
        assert (await client.send(SERVICE, f.arrive("north", f"n{i}")))["ok"]
        assert (await client.send(SERVICE, f.arrive("south", f"s{i}")))["ok"]
    for _ in range(3):  # back and forth: every round is 2 × 40 moves racing over the same pair of streams
        replies = await asyncio.gather(*(client.send(SERVICE, f.arrive(to, f"{who}{i}"))
                                         for i in range(pairs) for who, to in (("n", "south"), ("s", "north"))))
        assert [r for r in replies if not r["ok"]] == []
        replies = await asyncio.gather(*(client.send(SERVICE, f.arrive(to, f"{who}{i}"))
                                         for i in range(pairs) for who, to in (("n", "north"), ("s", "south"))))
        assert [r for r in replies if not r["ok"]] == []
    present = await pool.fetch(f"SELECT site_id, count(*) AS n FROM {SERVICE}.member_presence GROUP BY site_id")
    assert {r["site_id"]: r["n"] for r in present} == {"north": pairs, "south": pairs}


async def test_a_second_site_of_the_same_name_in_the_township_is_registered_with_a_warning(client: GongdiClient):
    assert not (await client.send(SERVICE, f.register("twin-a")))["warnings"]
    twin = await client.send(SERVICE, f.register("twin-b").model_copy(update={"name": f.register("twin-a").name}))
    assert twin["ok"] and [(w["code"], w["field"]) for w in twin["warnings"]] == [("SITE_NAME_TAKEN", "name")], twin
    assert "工地编号 twin-a" in twin["warnings"][0]["message"]
    other = await client.send(SERVICE, f.register("twin-c", township="diantou").model_copy(
        update={"name": f.register("twin-a").name}))
    assert other["ok"] and not other["warnings"]  # another township's project may share the name


async def test_taking_another_sites_branch_secretary_is_recorded_with_a_warning(client: GongdiClient):
    assert (await client.send(SERVICE, f.register("post-a")))["ok"]
    assert (await client.send(SERVICE, f.register("post-b")))["ok"]
    for m in ("ps1", "ps2", "ps3"):
        assert (await client.send(SERVICE, f.arrive("post-b", m)))["ok"]
    assert (await client.send(SERVICE, f.form_branch("post-b", "ps1")))["ok"]
    moved = await client.send(SERVICE, f.arrive("post-a", "ps1"))
    assert moved["ok"] and [w["code"] for w in moved["warnings"]] == ["MOVES_A_POST_HOLDER"], moved
    assert "党支部书记" in moved["warnings"][0]["message"] and "post-b" not in moved["warnings"][0]["message"]


async def test_branch_covers_a_gap_and_live_change_is_published(client: GongdiClient, ready_settings: Settings,
                                                                servers: Servers):
    assert (await client.send(SERVICE, f.register("delta")))["ok"]
    for m in ("d1", "d2", "d3"):
        assert (await client.send(SERVICE, f.arrive("delta", m)))["ok"]

    async def flagged():
        city = (await client.query("views", "city"))["data"]
        return [g["site_id"] for g in city["should_form_branch"]] == ["delta"]

    assert await eventually(flagged)
    nc = await nats.connect(servers.as_identity(ready_settings, "gateway").nats_servers)  # who hears notices
    live = await nc.subscribe("live.site.delta")
    try:
        formed = await client.send(SERVICE, f.form_branch("delta", "d1"))
        position = formed["events"][0]["position"]
        while True:  # other services' changes to the site (e.g. arrival talks) come on the same subject
            change = orjson.loads((await live.next_msg(timeout=30)).data)
            assert change["site_id"] == "delta"
            if change["service"] == SERVICE and change["position"] >= position:
                break
    finally:
        await nc.close()
    city = (await client.query("views", "city"))["data"]
    assert city["branches"] == 1 and city["gaps"] == [] and city["coverage"]["covered"] == 1


async def test_unknown_site_query_gets_typed_error(client: GongdiClient):
    reply = await site_view(client, "nowhere")
    assert reply["error"]["code"] == "SITE_NOT_FOUND" and reply["error"]["field"] == "site_id"


async def test_a_completed_site_leaves_the_gaps_and_takes_no_arrivals(client: GongdiClient, pool: asyncpg.Pool):
    assert (await client.send(SERVICE, f.register("done", cost=9000, months=30)))["ok"]  # qualifies: a gap
    assert (await client.send(SERVICE, f.arrive("done", "m1")))["ok"]

    async def gap() -> bool:
        city = (await client.query("views", "city"))["data"]
        return [g["site_id"] for g in city["gaps"]] == ["done"]

    assert await eventually(gap)
    too_early = await client.send_dict(SERVICE, "CompleteSite", {"site_id": "done", "completed_on": "2019-01-01"})
    assert too_early["error"]["code"] == "COMPLETION_BEFORE_START" and too_early["error"]["field"] == "completed_on"
    done = await client.send_dict(SERVICE, "CompleteSite", {"site_id": "done", "completed_on": "2022-12-31"})
    assert [e["type"] for e in done["events"]] == ["SiteCompleted", "MemberDeparted"]  # m1 handed back
    late = await client.send(SERVICE, f.arrive("done", "m2"))
    assert late["error"]["code"] == "SITE_COMPLETED"

    async def completed() -> dict | None:
        city = (await client.query("views", "city"))["data"]
        site = (await site_view(client, "done"))["data"]
        return city if city["completed"] == 1 and site["completed_on"] == "2022-12-31" else None

    city = await eventually(completed)
    assert city["gaps"] == [] and city["coverage"]["qualifying"] == 0 and city["projects"] == 1
    assert await pool.fetchval("SELECT count(*) FROM membership.events WHERE event_type = 'SiteCompleted'") == 1

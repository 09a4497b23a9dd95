"""Activities through the real processes: talks driven by membership events, exactly once; rules; views."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import uuid

import asyncpg
import nats
import pytest

from contracts.activities import SERVICE as ACTIVITIES
from contracts.activities import (
    ActivityKind,
    DesignateZone,
    EstablishPost,
    PostKind,
    RecordActivity,
    RecordSafetyViolation,
    RecordTalk,
)
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.subjects import stream_name
from gongdi.bus.streams import ensure_durable
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from tests.integration.chaos import KillOnProgress, revive
from tests.integration.waiting import eventually

DAY = dt.date(2020, 7, 1)


async def site_with_members(client: GongdiClient, site_id: str, members: list[str]) -> None:
    assert (await client.send(MEMBERSHIP, f.register(site_id)))["ok"]
    for m in members:
        assert (await client.send(MEMBERSHIP, f.arrive(site_id, m)))["ok"]

    async def talks_created() -> bool:
        # the talks and the members reach the views through two consumers apart: wait for both
        talks = await client.query("views", "talks", {"site_id": site_id})
        site = await client.query("views", "site", {"site_id": site_id})
        return (talks["ok"] and len(talks["data"]["open"]) == len(members) and site["ok"]
                and site["data"]["members_present"] == len(members))

    assert await eventually(talks_created), "the activities policy did not create the arrival talks"


async def obligations(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM activities.events WHERE event_type = 'TalkObligationCreated'")


@pytest.mark.usefixtures("platform")
async def test_talks_flow_from_arrival_to_done(client: GongdiClient):
    await site_with_members(client, "t1", ["a1", "a2"])
    open_ = (await client.query("views", "talks", {"site_id": "t1"}))["data"]["open"]
    assert {t["member_id"] for t in open_} == {"a1", "a2"}
    assert all(t["reason"] == "new_arrival" and t["overdue"] for t in open_)  # arrived 2020, due after 7 days

    violation = RecordSafetyViolation(command_id=uuid.uuid4(), site_id="t1", member_id="a2", occurred_on=DAY,
                                      description="高空作业未系安全带")
    assert (await client.send(ACTIVITIES, violation))["ok"]
    target = next(t for t in open_ if t["member_id"] == "a1")
    done = RecordTalk(command_id=uuid.uuid4(), site_id="t1", obligation_id=uuid.UUID(target["obligation_id"]),
                      talked_by="支部书记", talked_on=DAY, note="了解家庭情况")
    assert (await client.send(ACTIVITIES, done))["ok"]
    again = await client.send(ACTIVITIES, done.model_copy(update={"command_id": uuid.uuid4()}))
    assert again["error"]["code"] == "OBLIGATION_ALREADY_CLOSED"

    async def settled():
        talks = (await client.query("views", "site", {"site_id": "t1"}))["data"]["activities"]["talks"]
        return talks == {"open": 2, "overdue": 2, "done": 1, "mooted": 0}

    assert await eventually(settled)


@pytest.mark.usefixtures("platform")
async def test_rules_need_members_present_and_departures_are_flagged(client: GongdiClient):
    await site_with_members(client, "t2", ["b1", "b2", "b3"])
    absent = EstablishPost(command_id=uuid.uuid4(), site_id="t2", post_id="p1", kind=PostKind.safety_patrol,
                           holder="nobody", place="桥面")
    reply = await client.send(ACTIVITIES, absent)
    assert reply["error"]["code"] == "MEMBER_NOT_PRESENT" and reply["error"]["field"] == "holder"
    bad_kind = await client.send_dict(ACTIVITIES, "EstablishPost", {"site_id": "t2", "post_id": "p1",
                                                                   "kind": "canteen", "holder": "b1", "place": "x"})
    assert bad_kind["error"]["code"] == "VALIDATION_FAILED" and bad_kind["error"]["field"] == "kind"
    unknown_site = await client.send(ACTIVITIES, absent.model_copy(update={"site_id": "nowhere"}))
    assert unknown_site["error"]["code"] == "SITE_NOT_FOUND"
    # The arrival date travels with presence: a violation dated before it would be an obligation overdue for ever.
    early = await client.send(ACTIVITIES, RecordSafetyViolation(
        command_id=uuid.uuid4(), site_id="t2", member_id="b2", occurred_on=f.DAY - dt.timedelta(days=1),
        description="未系安全带"))
    assert (early["error"]["code"], early["error"]["field"]) == ("BEFORE_ARRIVAL", "occurred_on"), early

    assert (await client.send(ACTIVITIES, absent.model_copy(update={"holder": "b1"})))["ok"]
    zone = DesignateZone(command_id=uuid.uuid4(), site_id="t2", zone_id="z1", name="1号墩", area="主桥",
                         responsible=["b1", "b2"])
    assert (await client.send(ACTIVITIES, zone))["ok"]
    assert (await client.send_dict(ACTIVITIES, "FormTeam", {
        "site_id": "t2", "team_id": "k1", "kind": "assault", "name": "党员突击队", "leader": "b1",
        "members": ["b1", "b2"], "purpose": "抢工期"}))["ok"]
    assert (await client.send(MEMBERSHIP, f.depart("t2", "b1")))["ok"]

    async def flagged():
        site = (await client.query("views", "site", {"site_id": "t2"}))["data"]
        # with the name the member left under: the page and the export say who is to be replaced
        return sorted((h["what"], h["member_id"], h["name"]) for h in site["departed_holders"]) == [
            ("post", "b1", "李四"), ("team", "b1", "李四"), ("zone", "b1", "李四")]

    assert await eventually(flagged)

    async def refused_after_departure():
        late = await client.send(ACTIVITIES, zone.model_copy(update={"command_id": uuid.uuid4(), "zone_id": "z2",
                                                                      "name": "2号墩"}))
        return (late.get("error") or {}).get("code") == "MEMBER_NOT_PRESENT"

    assert await eventually(refused_after_departure)


@pytest.mark.usefixtures("platform")
async def test_lessons_and_birthdays_reach_the_views(client: GongdiClient):
    await site_with_members(client, "t3", ["c1", "c2"])
    lesson = RecordActivity(command_id=uuid.uuid4(), site_id="t3", kind=ActivityKind.night_school,
                            title="安全生产法进工地", held_on=DAY, headcount=45, attendees=("c1",))
    assert (await client.send(ACTIVITIES, lesson))["ok"]
    month = f.arrive("t3", "x").member.admitted_on  # factories admit every member on the same day
    birthdays = await client.query("views", "birthdays", {"site_id": "t3", "month": f"2020-{month.month:02d}"})
    assert [m["member_id"] for m in birthdays["data"]["members"]] == ["c1", "c2"]
    assert [m["member_id"] for m in birthdays["data"]["not_celebrated_this_year"]] == ["c1", "c2"]
    party = await client.send_dict(ACTIVITIES, "CelebrateBirthdays", {
        "site_id": "t3", "held_on": f"2020-{month.month:02d}-15", "members": ["c1", "c2"], "cards_sent": 2})
    assert party["ok"], party

    async def seen():
        b = await client.query("views", "birthdays", {"site_id": "t3", "month": f"2020-{month.month:02d}"})
        city = (await client.query("views", "city"))["data"]["activities"]
        return (all(m["celebrated_on"] for m in b["data"]["members"]) and not b["data"]["not_celebrated_this_year"]
                and city["lessons"]["night_school"] == {"sessions": 1, "attendance": 45})

    assert await eventually(seen)
    bad = await client.query("views", "birthdays", {"site_id": "t3", "month": "2020-13"})
    assert bad["error"]["code"] == "VALIDATION_FAILED" and bad["error"]["field"] == "month"


async def test_replayed_arrivals_create_no_second_obligation(platform: Supervisor, client: GongdiClient,
                                                             pool: asyncpg.Pool, ready_settings: Settings):
    await site_with_members(client, "t4", [f"d{i}" for i in range(10)])
    assert await obligations(pool) == 10
    # Every membership event delivered to the policy again: stop it, recreate its consumer from the start.
    child = next(c for c in platform.children if c.name == "activities")
    os.kill(child.proc.pid, signal.SIGKILL)
    child.proc.wait()
    nc = await nats.connect(ready_settings.nats_servers)
    js = nc.jetstream()
    await js.delete_consumer(stream_name(MEMBERSHIP), "activities")
    await ensure_durable(js, MEMBERSHIP, "activities", ack_wait=3.0)
    await revive(platform, "activities")

    async def drained():
        info = await js.consumer_info(stream_name(MEMBERSHIP), "activities")
        return info.num_pending == 0 and info.num_ack_pending == 0

    assert await eventually(drained)
    await nc.close()
    assert await obligations(pool) == 10


@pytest.mark.slow
async def test_killing_the_policy_mid_run_loses_and_doubles_nothing(platform: Supervisor, client: GongdiClient,
                                                                    pool: asyncpg.Pool, ready_settings: Settings):
    sites, members = 20, 1500
    for s in range(sites):
        assert (await client.send(MEMBERSHIP, f.register(f"k{s}")))["ok"]
    gate = asyncio.Semaphore(32)
    # The policy is killed as its obligations reach each count: every kill lands on a policy that has been working
    # since its last restart, with hundreds of arrivals still to apply.
    chaos = KillOnProgress(platform, ["activities"], at=[250, 650, 1050])

    async def one(n: int) -> None:
        async with gate:
            assert (await client.send(MEMBERSHIP, f.arrive(f"k{n % sites}", f"e{n}")))["ok"]

    watching = asyncio.create_task(chaos.watch(lambda: obligations(pool)))
    try:
        await asyncio.gather(*(one(n) for n in range(members)))
        await watching
    finally:
        watching.cancel()
    assert len(chaos.kills) == len(chaos.at), chaos.kills
    assert all(k.seen < members for k in chaos.kills), chaos.kills  # each kill landed mid-run

    async def all_created():
        platform.check()  # restarts keep backing off after the chaos: keep the supervisor turning
        return await obligations(pool) >= members

    assert await eventually(all_created, timeout=120), f"{await obligations(pool)} of {members} obligations"
    nc = await nats.connect(ready_settings.nats_servers)
    try:
        js = nc.jetstream()

        async def drained():  # every membership event applied and acknowledged: no redelivery is still to come
            platform.check()
            info = await js.consumer_info(stream_name(MEMBERSHIP), "activities")
            return info.num_pending == 0 and info.num_ack_pending == 0

        assert await eventually(drained, timeout=60)
    finally:
        await nc.close()
    assert await obligations(pool) == members
    per_cause = await pool.fetchval(
        "SELECT count(DISTINCT causation_id) FROM activities.events WHERE event_type = 'TalkObligationCreated'")
    assert per_cause == members


@pytest.mark.usefixtures("platform")
async def test_a_departed_branch_secretary_and_group_leader_are_flagged_by_name(client: GongdiClient):
    await site_with_members(client, "t5", ["s1", "s2", "s3"])
    assert (await client.send(MEMBERSHIP, f.form_branch("t5", "s1")))["ok"]
    assert (await client.send_dict(MEMBERSHIP, "FormPartyGroup", {
        "site_id": "t5", "group_id": "g1", "name": "一工段党小组", "section": "一工段", "leader": "s1",
        "members": ["s1", "s2", "s3"], "formed_on": f.DAY.isoformat()}))["ok"]
    assert (await client.send(MEMBERSHIP, f.depart("t5", "s1")))["ok"]

    async def flagged() -> dict | None:
        site = (await client.query("views", "site", {"site_id": "t5"}))["data"]
        return site if site["members_present"] == 2 and site["departed_holders"] else None

    site = await eventually(flagged)
    # the page says who is to be replaced, by the name the member left under, not a blank or an id
    assert sorted((h["what"], h["id"], h["member_id"], h["name"]) for h in site["departed_holders"]) == [
        ("group", "g1", "s1", "李四"), ("secretary", "t5", "s1", "李四")]
    assert site["branch"]["secretary_departed"] and site["branch"]["secretary_name"] == "李四"
    [group] = site["groups"]
    assert group["leader_name"] == "李四" and group["departed"] == ["s1"] and None not in group["member_names"]


@pytest.mark.usefixtures("platform")
async def test_a_member_who_leaves_before_the_talk_is_no_longer_owed_one(client: GongdiClient):
    await site_with_members(client, "t6", ["q1", "q2"])
    assert (await client.send(MEMBERSHIP, f.depart("t6", "q1")))["ok"]

    async def closed() -> dict | None:
        talks = (await client.query("views", "site", {"site_id": "t6"}))["data"]["activities"]["talks"]
        return talks if talks["mooted"] == 1 else None

    assert (await eventually(closed))["open"] == 1
    owed = (await client.query("views", "talks", {"site_id": "t6"}))["data"]["open"]
    assert [(t["member_id"], t["name"]) for t in owed] == [("q2", "李四")]  # by name, as the record page offers it

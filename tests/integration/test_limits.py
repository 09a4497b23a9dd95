"""Facts at every limit reach the views through the real processes, and totals of many of them do not overflow."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import nats
import orjson
import pytest
from nats.js import JetStreamContext

from contracts.activities import SERVICE as ACTIVITIES
from contracts.activities import ActivityKind, CelebrateBirthdays, RecordActivity
from contracts.base import Command
from contracts.envelope import WRITTEN, Envelope
from contracts.liaison import SERVICE as LIAISON
from contracts.liaison import (
    DisputeKind,
    HoldJointMeeting,
    Party,
    RecordVillageSupport,
    ReportDispute,
    ResolveMediation,
    StartMediation,
    SupportKind,
)
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.membership import RecordArrival, RegisterSite, ReportWorkforce
from contracts.rules import LIMITS
from contracts.subjects import stream_name
from contracts.timeline import city_today
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings
from gongdi.store.base import WIDEST_TIME, published_size
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")

INT4_MAX = 2**31 - 1
TODAY = city_today()
LATEST_DAY = TODAY + dt.timedelta(days=LIMITS.future_days)  # the service checks later, never earlier, than this
LATEST_PLAN = TODAY + dt.timedelta(days=366 * LIMITS.plan_years)
YUAN = LIMITS.max_yuan.quantize(Decimal("0.01"))
QUANTITY = LIMITS.max_quantity.quantize(Decimal("0.01"))


def cid() -> uuid.UUID:
    return uuid.uuid4()


async def accepted(client: GongdiClient, service: str, command: Command) -> dict:
    reply = await client.send(service, command)
    assert reply["ok"], reply
    return reply


WRITERS = (MEMBERSHIP, ACTIVITIES, LIAISON)


async def applied_everywhere(pool: asyncpg.Pool, js: JetStreamContext) -> bool:
    """Every event recorded is on its stream and the views' consumer has passed it (applied or dead-lettered)."""
    passed = {r["stream"]: r["stream_seq"]
              for r in await pool.fetch("SELECT stream, stream_seq FROM views.consumer_checkpoint")}
    for service in WRITERS:
        recorded = await pool.fetchval(f"SELECT count(*) FROM {service}.events")
        published = (await js.stream_info(stream_name(service))).state.last_seq
        if not recorded == published == passed.get(stream_name(service), 0):
            return False
    return True


async def dead_letters(pool: asyncpg.Pool) -> dict[str, int]:
    """Events the views or a policy could not apply; each would be a fact missing from what people see."""
    schemas = ("views", ACTIVITIES, LIAISON)
    return {s: await pool.fetchval(f"SELECT count(*) FROM {s}.dead_letters") for s in schemas}


@pytest.fixture
async def js(ready_settings: Settings) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(ready_settings.nats_servers)
    yield nc.jetstream()
    await nc.close()


async def learnt(pool: asyncpg.Pool, sites: int, members: int = 0) -> bool:
    """Activities and liaison know the sites and members (from the membership events) and take commands on them."""
    known = [pool.fetchval(f"SELECT count(*) = $1 FROM {s}.known_site", sites) for s in (ACTIVITIES, LIAISON)]
    present = pool.fetchval(f"SELECT count(*) = $1 FROM {ACTIVITIES}.presence", members)
    return all(await asyncio.gather(*known, present))


def register(site_id: str, start: dt.date) -> RegisterSite:
    return f.register(site_id).model_copy(update={
        "cost_wan": LIMITS.max_cost_wan, "planned_months": LIMITS.max_months, "start_date": start})


async def test_the_largest_allowed_values_are_applied_by_the_views(client: GongdiClient, pool: asyncpg.Pool,
                                                                   js: JetStreamContext):
    await accepted(client, MEMBERSHIP, register("limit-old", LIMITS.earliest_day))
    await accepted(client, MEMBERSHIP, register("limit-new", LATEST_PLAN))
    await accepted(client, MEMBERSHIP, ReportWorkforce(command_id=cid(), site_id="limit-old",
                                                       headcount=LIMITS.max_count, as_of=LATEST_DAY))
    member = f.arrive("limit-old", "m1")
    await accepted(client, MEMBERSHIP, RecordArrival(
        command_id=cid(), site_id="limit-old", member_id="m1", arrived_on=LATEST_DAY,
        member=member.member.model_copy(update={"admitted_on": LIMITS.earliest_day})))
    july = dt.date(TODAY.year - 1, LIMITS.earliest_day.month, 1)  # a political birthday month, before m1 arrived
    await accepted(client, MEMBERSHIP, RecordArrival(  # ... so celebrated with m2, there by then
        command_id=cid(), site_id="limit-old", member_id="m2", arrived_on=july,
        member=member.member.model_copy(update={"admitted_on": july.replace(year=2000)})))
    assert await eventually(lambda: learnt(pool, 2, members=2))

    await accepted(client, ACTIVITIES, RecordActivity(
        command_id=cid(), site_id="limit-old", kind=ActivityKind.night_school, title="工地夜校", held_on=LATEST_DAY,
        headcount=LIMITS.max_count, attendees=("m1",)))
    await accepted(client, ACTIVITIES, CelebrateBirthdays(command_id=cid(), site_id="limit-old", held_on=july,
                                                          members=["m2"], cards_sent=LIMITS.max_count))
    await accepted(client, LIAISON, ReportDispute(
        command_id=cid(), site_id="limit-old", case_id="w-1", kind=DisputeKind.wages, reported_on=LATEST_DAY,
        parties=[f"劳务班组{i}" for i in range(LIMITS.max_people)], amount_yuan=YUAN, description="欠薪"))
    await accepted(client, LIAISON, StartMediation(command_id=cid(), site_id="limit-old", case_id="w-1",
                                                   mediator="调解员", started_on=LATEST_DAY))
    await accepted(client, LIAISON, ResolveMediation(command_id=cid(), site_id="limit-old", case_id="w-1",
                                                     resolved_on=LATEST_DAY, outcome="结清",
                                                     amount_settled_yuan=YUAN))
    for kind in (SupportKind.road_hardening, SupportKind.donation, SupportKind.transport):
        await accepted(client, LIAISON, RecordVillageSupport(command_id=cid(), site_id="limit-old", village="马洋村",
                                                             kind=kind, given_on=LATEST_DAY, quantity=QUANTITY))
    ids = [f"{i:03d}" + "a" * 60 for i in range(LIMITS.max_items)]  # the longest ids
    meeting = await accepted(client, LIAISON, HoldJointMeeting(
        command_id=cid(), site_id="limit-old", meeting_id="m" * 63, held_on=LATEST_DAY, parties=list(Party),
        items=[{"item_id": i, "kind": "technical_bottleneck", "description": "𠀀" * 100,
                "responsible": "supervision", "due_on": LATEST_DAY} for i in ids],
        resolves=ids))

    assert await eventually(lambda: applied_everywhere(pool, js))
    assert await dead_letters(pool) == {"views": 0, ACTIVITIES: 0, LIAISON: 0}
    site = (await client.query("views", "site", {"site_id": "limit-old"}))["data"]
    assert (site["cost_wan"], site["planned_months"], site["workforce"]) == ("10000000", 240, LIMITS.max_count)
    assert site["start_date"] == LIMITS.earliest_day.isoformat() and site["members_present"] == 2
    assert site["activities"]["lessons"]["night_school"] == {"sessions": 1, "attendance": LIMITS.max_count}
    liaison = site["liaison"]
    assert liaison["disputes"]["wages"]["resolved"] == 1
    assert liaison["support"]["donation"]["total"] == 1_000_000 and liaison["meeting_items"]["resolved"] == 100
    new = (await client.query("views", "site", {"site_id": "limit-new"}))["data"]
    assert new["start_date"] == LATEST_PLAN.isoformat()
    [talk] = [t for t in (await client.query("views", "talks", {"site_id": "limit-old"}))["data"]["open"]
              if t["member_id"] == "m1"]
    assert talk["due_on"] == (LATEST_DAY + dt.timedelta(days=7)).isoformat()
    assert await pool.fetchval("SELECT cards_sent FROM views.birthday_party") == LIMITS.max_count
    amounts = await pool.fetchrow("SELECT amount_yuan, amount_settled_yuan FROM views.dispute")
    assert tuple(amounts) == (YUAN, YUAN)

    # The measure the pipeline refuses by (max_event_bytes) is the relay's message: exactly, but for the values
    # only the commit chooses (position, transaction id, recorded_at), which it takes at their widest.
    msg = await js.get_last_msg(stream_name(LIAISON), "evt.bailin.liaison.JointMeetingHeld")
    env = Envelope.from_json(msg.data)
    assert str(env.event_id) == meeting["events"][0]["event_id"]
    measured = published_size({f.name: getattr(env, f.name) for f in WRITTEN}, LIAISON)
    widest = len(orjson.dumps(2**63 - 1)) * 2 + len(orjson.dumps(WIDEST_TIME))
    chosen = len(orjson.dumps(env.position)) + len(orjson.dumps(env.tx_id)) + len(orjson.dumps(env.recorded_at))
    assert measured - len(msg.data) == widest - chosen
    assert len(msg.data) < LIMITS.max_event_bytes // 3


async def test_totals_of_many_largest_values_do_not_overflow(client: GongdiClient, pool: asyncpg.Pool,
                                                             js: JetStreamContext):
    """Enough activities of the largest headcount, and donations of the largest amount, that a city total is
    beyond a 32-bit integer; spread over sites and townships so that they are recorded in parallel."""
    many = INT4_MAX // LIMITS.max_count + 1  # 2,148
    # Commands on one site wait for each other (one lock per site in each service): 16 sites keep 32 in flight.
    sites = [(f"big-{n}", ("bailin", "diantou")[n % 2]) for n in range(16)]
    for site_id, township in sites:
        await accepted(client, MEMBERSHIP, f.register(site_id, township=township))
    await accepted(client, MEMBERSHIP, ReportWorkforce(command_id=cid(), site_id="big-1", headcount=LIMITS.max_count,
                                                       as_of=LATEST_DAY))
    assert await eventually(lambda: learnt(pool, len(sites)))

    slots = asyncio.Semaphore(32)

    async def record(n: int) -> None:
        site_id = sites[n % len(sites)][0]
        async with slots:
            await asyncio.gather(
                accepted(client, ACTIVITIES, RecordActivity(
                    command_id=cid(), site_id=site_id, kind=ActivityKind.night_school, title="工地夜校",
                    held_on=LATEST_DAY, headcount=LIMITS.max_count)),
                accepted(client, LIAISON, RecordVillageSupport(
                    command_id=cid(), site_id=site_id, village="马洋村", kind=SupportKind.donation,
                    given_on=LATEST_DAY, quantity=QUANTITY)))

    await asyncio.gather(*(record(n) for n in range(many)))
    total = many * LIMITS.max_count
    assert total > INT4_MAX

    assert await eventually(lambda: applied_everywhere(pool, js), timeout=60)
    assert await dead_letters(pool) == {"views": 0, ACTIVITIES: 0, LIAISON: 0}
    city = await client.query("views", "city")
    assert city["ok"], city  # a total beyond int4 once made the query fail (`sum(headcount)::int`)
    city = city["data"]
    assert city["activities"]["lessons"]["night_school"] == {"sessions": many, "attendance": total}
    assert city["liaison"]["support"]["donation"]["total"] == total
    assert city["workers"] == LIMITS.max_count
    township = (await client.query("views", "township", {"township": "bailin"}))["data"]  # the even sites
    assert township["liaison"]["support"]["donation"]["total"] == total // 2

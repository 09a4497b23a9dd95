"""Views as of a moment, on the real servers: the demo city by its facts' business days at several dates, checked
against figures computed here straight from the stored events; a fact recorded late, seen in one sense and not the
other; rights and typed refusals. (Over HTTP: tests/integration/test_gateway_api.py.)"""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import asyncpg
import orjson
import pytest

from contracts.membership import SERVICE
from gongdi.demo import samples
from gongdi.demo.city import WORKERS
from gongdi.demo.seeder import seed_as_townships
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.conftest import shared_platform
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")
# One seeded demo for the module (seeding is ~10 s): the tests run in this order and only the late fact adds to it.
settings, ready_settings, admin_settings, platform = shared_platform()
DATES = [dt.date(2020, 2, 29), dt.date(2020, 3, 1), dt.date(2020, 4, 10), dt.date(2020, 6, 30), dt.date(2020, 12, 31)]


@pytest.fixture(scope="module")
def seeded(ready_settings: Settings, servers: Servers) -> None:
    asyncio.run(seed_as_townships(ready_settings, servers.credentials.password))


@pytest.fixture
def demo(seeded: None, client: GongdiClient) -> GongdiClient:
    return client


async def events(pool: asyncpg.Pool, schema: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT event_type, stream_id, version, payload::text AS payload FROM {schema}.events"
                            " ORDER BY position")
    return [{"type": r["event_type"], "stream": r["stream_id"], **orjson.loads(r["payload"])} for r in rows]


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def expected(membership: list[dict[str, Any]], activities: list[dict[str, Any]], on: dt.date) -> dict[str, int]:
    """The city's headline figures on day `on`, from the events' own dates, computed without the views' code."""
    of = lambda kind, log=membership: [e for e in log if e["type"] == kind]  # noqa: E731
    sites = {e["site_id"] for e in of("SiteRegistered") if day(e["start_date"]) <= on}
    present = {(e["site_id"], e["member_id"]) for e in of("MemberArrived") if day(e["arrived_on"]) <= on}
    present -= {(e["site_id"], e["member_id"]) for e in of("MemberDeparted") if day(e["departed_on"]) <= on}
    workforce: dict[str, int] = {}
    for e in of("WorkforceReported"):
        if day(e["as_of"]) <= on:
            workforce[e["site_id"]] = e["headcount"]
    # The city is its sites: an applicant's talk owed or held before the site began is no site's yet.
    held = {e["obligation_id"] for e in of("TalkHeld", activities) if day(e["talked_on"]) <= on
            and e["site_id"] in sites}
    created = {e["obligation_id"] for e in of("TalkObligationCreated", activities) if day(e["created_on"]) <= on
               and e["site_id"] in sites}
    mooted = {e["obligation_id"] for e in of("TalkObligationMooted", activities) if day(e["mooted_on"]) <= on}
    return {"projects": len(sites), "members": len(present), "workers": sum(workforce.values()),
            "branches": len({e["site_id"] for e in of("BranchFormed") if day(e["formed_on"]) <= on}),
            "talks_done": len(held), "talks_open": len(created - held - mooted)}


def figures(city: dict[str, Any]) -> dict[str, int]:
    talks = city["activities"]["talks"]
    return {"projects": city["projects"], "members": city["members"], "workers": city["workers"],
            "branches": city["branches"], "talks_done": talks["done"], "talks_open": talks["open"]}


async def as_of(client: GongdiClient, when: str, basis: str = "business", name: str = "city",
                **params: str) -> dict[str, Any]:
    reply = await client.query("views", name, {"as_of": when, "as_of_basis": basis, **params})
    assert reply["ok"], reply
    return reply["data"]


def late_arrival(site_id: str, member_id: str, on: dt.date) -> Any:
    return samples.arrive(site_id, member_id).model_copy(update={"arrived_on": on})


async def site_view(client: GongdiClient, site_id: str, check: Any = lambda d: True) -> dict[str, Any]:
    """The live site view once `check(data)` holds (the projection is eventually consistent)."""

    async def ready() -> dict[str, Any] | None:
        reply = await client.query("views", "site", {"site_id": site_id})
        return reply["data"] if reply["ok"] and check(reply["data"]) else None

    data = await eventually(ready, timeout=30)
    assert data
    return data


async def test_business_days_give_the_figures_the_events_give(demo: GongdiClient, pool: asyncpg.Pool) -> None:
    membership, activities = await events(pool, "membership"), await events(pool, "activities")
    seen = []
    for on in DATES:
        city = await as_of(demo, on.isoformat())
        assert figures(city) == expected(membership, activities, on), on
        assert city["as_of"]["basis"] == "business" and city["as_of"]["day"] == on.isoformat()
        assert "snapshot" not in city  # a past view is not a step of the live one
        seen.append(figures(city))
    # the dates do tell different stories (the demo as seeded: this test runs before the late fact's)
    assert seen[0]["projects"] == 0 and seen[-1]["members"] == 251
    # Each site reports its workforce when it starts: mid-year shows the workers beside the members present.
    assert [s["workers"] for s in seen] == [0, WORKERS, WORKERS, WORKERS, WORKERS]
    assert len({tuple(s.values()) for s in seen}) >= 4
    # The live view of a log whose facts all lie in 2020 is the view as of the year's end.
    live = (await demo.query("views", "city", {}))["data"]
    assert figures(live) == seen[-1]


async def test_a_township_before_its_first_site_is_a_view_of_zeros(demo: GongdiClient) -> None:
    """Before, a township asked as of a day before its first site was TOWNSHIP_NOT_FOUND: an error page."""
    reply = await demo.query("views", "township", {"township": "shacheng", "as_of": "2019-12-31"})
    assert reply["ok"], reply
    assert (reply["data"]["projects"], reply["data"]["members"], reply["data"]["sites"]) == (0, 0, [])
    # ... and so is the city: before, its applications dated before their sites began counted (入党申请 13 of no
    # project), with a talk owed for each, while every township said 0.
    city = await as_of(demo, "2019-12-31")
    assert city["projects"] == 0 and city["development"]["applied"] == 0 and city["activities"]["talks"]["open"] == 0
    assert reply["data"]["name"] == "沙埕镇"
    unknown = await demo.query("views", "township", {"township": "nosuch"})
    assert unknown["error"]["code"] in ("TOWNSHIP_NOT_FOUND", "FORBIDDEN"), unknown


async def test_a_fact_recorded_late_is_true_then_but_was_not_shown_then(demo: GongdiClient,
                                                                        pool: asyncpg.Pool) -> None:
    before = await site_view(demo, "shachengwan")
    april, june = [await as_of(demo, day, "business", "site", site_id="shachengwan")
                   for day in ("2020-04-30", "2020-06-30")]
    shown_then = await pool.fetchval("SELECT clock_timestamp()")
    late = late_arrival("shachengwan", "late-1", dt.date(2020, 5, 1))
    assert (await demo.send(SERVICE, late))["ok"]
    count = before["members_present"]
    await site_view(demo, "shachengwan", lambda d: d["members_present"] == count + 1)

    # True then: counted from its own day on, though recorded years later.
    true_then = await as_of(demo, "2020-06-30", "business", "site", site_id="shachengwan")
    assert true_then["members_present"] == june["members_present"] + 1
    assert (await as_of(demo, "2020-04-30", "business", "site", site_id="shachengwan"))["members_present"] == \
        april["members_present"]
    platform_then = await as_of(demo, shown_then.isoformat(), "recorded", "site", site_id="shachengwan")
    assert platform_then["members_present"] == count
    assert platform_then["as_of"]["basis"] == "recorded" and platform_then["as_of"]["read"] > \
        platform_then["as_of"]["events"]
    # Recorded basis by day: the platform showed nothing in 2020, everything today.
    assert (await as_of(demo, "2020-12-31", "recorded"))["projects"] == 0
    now = dt.datetime.now(dt.UTC).isoformat()
    assert (await as_of(demo, now, "recorded", "site", site_id="shachengwan"))["members_present"] == count + 1


async def test_as_of_keeps_the_rights_and_refuses_a_bad_moment(demo: GongdiClient, servers: Servers,
                                                               ready_settings: Settings) -> None:
    other = await GongdiClient.connect(ready_settings.as_user("township.bailin",
                                                              servers.credentials.password("township.bailin")))
    try:
        refused = await other.query("views", "township", {"township": "shacheng", "as_of": "2020-06-30"})
        assert refused["error"]["code"] == "FORBIDDEN"
        bad = await other.query("views", "township", {"township": "bailin", "as_of": "2020-02-30"})
        assert bad["error"]["code"] == "VALIDATION_FAILED" and bad["error"]["field"].startswith("as_of")
        basis = await other.query("views", "township", {"township": "bailin", "as_of": "2020-06-30",
                                                        "as_of_basis": "someday"})
        assert basis["error"]["field"] == "as_of_basis"
        alone = await other.query("views", "township", {"township": "bailin", "as_of_basis": "recorded"})
        assert alone["error"]["field"] == "as_of_basis" and "须与 as_of 一起给出" in alone["error"]["message"], alone
        # Beyond the calendar a view's periods can reach, or before any party record: refused, not a crash.
        for name, params in (("city", {}), ("township", {"township": "bailin"}), ("site", {"site_id": "shachengwan"})):
            for when in ("9999-12-31", "9999-12-31T23:59", "1900-01-01"):
                far = await demo.query("views", name, {**params, "as_of": when})
                assert far["error"]["code"] == "VALIDATION_FAILED" and far["error"]["field"] == "as_of", far
                assert "查询时点应在 1921-07-01 至" in far["error"]["message"]
    finally:
        await other.close()

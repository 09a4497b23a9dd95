"""Liaison through the real processes: disputes to the views, petitions, forward-only cases, crash-safe views."""
from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from decimal import Decimal

import asyncpg
import pytest

from contracts.liaison import SERVICE as LIAISON
from contracts.liaison import (
    AgreementItem,
    AssessCompliance,
    DisputeKind,
    EscalateToPetition,
    RecordVillageSupport,
    ReportDispute,
    ResolveMediation,
    SignCoBuildingAgreement,
    SignComplianceLetter,
    StartMediation,
    SupportKind,
    Target,
    TargetResult,
)
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.timeline import city_today
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import caught_up
from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from services.views import liaison
from services.views.app import rebuild
from tests.integration.chaos import KillOnProgress, views_answer
from tests.integration.waiting import eventually

DAY = dt.date(2020, 8, 1)


def report(site_id: str, case_id: str, kind: DisputeKind = DisputeKind.wages) -> ReportDispute:
    return ReportDispute(command_id=uuid.uuid4(), site_id=site_id, case_id=case_id, kind=kind, reported_on=DAY,
                         parties=["劳务班组", "农民工"], amount_yuan=Decimal(8600), description="工资结算争议")


def start(site_id: str, case_id: str) -> StartMediation:
    return StartMediation(command_id=uuid.uuid4(), site_id=site_id, case_id=case_id, mediator="纠纷调解站",
                          started_on=DAY)


def resolve(site_id: str, case_id: str) -> ResolveMediation:
    return ResolveMediation(command_id=uuid.uuid4(), site_id=site_id, case_id=case_id, resolved_on=DAY,
                            outcome="当场结清", amount_settled_yuan=Decimal(8600))


def escalate(site_id: str, case_id: str) -> EscalateToPetition:
    return EscalateToPetition(command_id=uuid.uuid4(), site_id=site_id, case_id=case_id, escalated_on=DAY,
                              reason="对补偿不满")


async def known_site(client: GongdiClient, site_id: str) -> None:
    """Liaison learns sites from membership events: wait until it answers about this one."""
    async def knows() -> bool:
        reply = await client.send_dict(LIAISON, "StartMediation", {
            "site_id": site_id, "case_id": "probe", "mediator": "x", "started_on": "2020-01-01"})
        return reply["error"]["code"] == "CASE_NOT_FOUND"

    assert await eventually(knows), f"liaison never learnt site {site_id}"


async def city_liaison(client: GongdiClient) -> dict:
    return (await client.query("views", "city"))["data"]["liaison"]


@pytest.mark.usefixtures("platform")
async def test_wage_dispute_resolved_and_a_petition_show_in_the_views(client: GongdiClient, pool: asyncpg.Pool):
    assert (await client.send(MEMBERSHIP, f.register("l1")))["ok"]
    await known_site(client, "l1")
    for command in (report("l1", "w1"), start("l1", "w1"), resolve("l1", "w1"),
                    report("l1", "g1", DisputeKind.land_acquisition), escalate("l1", "g1")):
        reply = await client.send(LIAISON, command)
        assert reply["ok"] and not reply["warnings"], reply
    # A settlement above the amount in dispute is recorded, and said back (a digit too many?)
    for command in (report("l1", "w2"), start("l1", "w2")):
        assert (await client.send(LIAISON, command))["ok"]
    over = await client.send(LIAISON, resolve("l1", "w2").model_copy(update={"amount_settled_yuan": Decimal(86000)}))
    assert over["ok"] and [w["code"] for w in over["warnings"]] == ["SETTLED_OVER_CLAIM"], over

    async def shown():
        site = (await client.query("views", "site", {"site_id": "l1"}))["data"]["liaison"]
        return (site["disputes"]["wages"]["resolved"] == 2 and site["petitions"] == 1
                and site["wage_petitions"] == 0)

    assert await eventually(shown)
    city = await city_liaison(client)
    assert city["disputes"]["land_acquisition"]["petitioned"] == 1 and city["wage_petitions"] == 0
    township = (await client.query("views", "township", {"township": "bailin"}))["data"]["liaison"]
    assert township["petitions"] == 1

    before = await pool.fetchval("SELECT count(*) FROM liaison.events")
    illegal = await client.send(LIAISON, start("l1", "w1"))  # a resolved case cannot be mediated again
    assert illegal["error"]["code"] == "ILLEGAL_TRANSITION" and illegal["error"]["field"] == "case_id"
    assert await pool.fetchval("SELECT count(*) FROM liaison.events") == before


@pytest.mark.usefixtures("platform")
async def test_the_double_targets_are_counted_for_the_year_they_were_assessed_in(client: GongdiClient):
    """Before, the views kept only each target's latest result, so a 2021 report repeated 2020's assessments."""
    assert (await client.send(MEMBERSHIP, f.register("l3")))["ok"]
    await known_site(client, "l3")
    targets = {t: "按期达成" for t in Target}
    sign = SignComplianceLetter(command_id=uuid.uuid4(), site_id="l3", letter_id="2020", signed_on=DAY,
                                signatories=["项目业主单位", "工地兼合党支部"], targets=targets)
    first = AssessCompliance(command_id=uuid.uuid4(), site_id="l3", letter_id="2020", assessed_on=dt.date(2020, 12, 1),
                             results=[TargetResult(target=t, met=t is not Target.progress, note="") for t in Target])
    again = AssessCompliance(command_id=uuid.uuid4(), site_id="l3", letter_id="2020", assessed_on=dt.date(2021, 6, 1),
                             results=[TargetResult(target=Target.quality, met=True, note="")])
    for command in (sign, first, again):
        reply = await client.send(LIAISON, command)
        assert reply["ok"], reply

    async def as_of(day: str) -> dict:
        reply = await client.query("views", "site", {"site_id": "l3", "as_of": day, "as_of_basis": "business"})
        return reply["data"]["liaison"]["compliance"]

    async def applied() -> bool:
        return (await as_of("2021-12-31"))["quality"]["met_this_year"] == 1

    assert await eventually(applied)
    in_2021, in_2020 = await as_of("2021-12-31"), await as_of("2020-12-31")
    assert in_2021["quality"] == {"met": 1, "not_met": 0, "unassessed": 0, "met_this_year": 1, "not_met_this_year": 0}
    assert in_2021["progress"] == {"met": 0, "not_met": 1, "unassessed": 0, "met_this_year": 0,
                                   "not_met_this_year": 0}  # its 2020 result stands, but is not 2021's
    assert in_2020["progress"]["not_met_this_year"] == 1 and in_2020["safety"]["met_this_year"] == 1


@pytest.mark.usefixtures("platform")
async def test_co_building_needs_the_site_branch(client: GongdiClient):
    assert (await client.send(MEMBERSHIP, f.register("l2")))["ok"]
    await known_site(client, "l2")
    sign = SignCoBuildingAgreement(command_id=uuid.uuid4(), site_id="l2", agreement_id="tangyuan", village="棠园村",
                                   signed_on=DAY, items=[AgreementItem(item_id="c1", title="主题党日")])
    assert (await client.send(LIAISON, sign))["error"]["code"] == "NO_BRANCH"
    for m in ("s1", "s2", "s3"):
        assert (await client.send(MEMBERSHIP, f.arrive("l2", m)))["ok"]
    assert (await client.send(MEMBERSHIP, f.form_branch("l2", "s1")))["ok"]

    async def signed():
        reply = await client.send(LIAISON, sign.model_copy(update={"command_id": uuid.uuid4()}))
        return reply["ok"]

    assert await eventually(signed)

    async def progress():
        site = (await client.query("views", "site", {"site_id": "l2"}))["data"]["liaison"]
        return site["cobuilding"]["items"] == 1 and site["cobuilding"]["completed"] == 0

    assert await eventually(progress)
    [agreement] = (await client.query("views", "city"))["data"]["liaison"]["cobuilding"]["by_agreement"]
    assert (agreement["site_id"], agreement["site_name"], agreement["village"]) == ("l2", "工地l2", "棠园村")


@pytest.mark.slow
async def test_views_exact_when_killed_during_5000_liaison_commands(
        platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings):
    sites = [f"v{i:02d}" for i in range(50)]
    for s in sites:
        assert (await client.send(MEMBERSHIP, f.register(s)))["ok"]
    await known_site(client, sites[-1])
    rng = random.Random(11)
    cases = [(sites[i % 50], f"c{i}") for i in range(1000)]
    support = [RecordVillageSupport(command_id=uuid.uuid4(), site_id=sites[i % 50], village=f"村{i % 7}",
                                    kind=list(SupportKind)[i % 6], given_on=DAY, quantity=Decimal(rng.randint(1, 500)))
               for i in range(2200)]
    phases = [
        [report(s, c) for s, c in cases] + support[:1100],
        [start(s, c) for s, c in cases] + support[1100:],
        [resolve(s, c) for s, c in cases[:600]] + [escalate(s, c) for s, c in cases[600:800]],
    ]
    assert sum(len(p) for p in phases) == 5000
    gate = asyncio.Semaphore(32)
    # The views are killed at set replies, once they answer again after the previous kill; the last threshold leaves
    # 1,700 commands to go, so every kill lands mid-load.
    chaos = KillOnProgress(platform, ["views"], at=[500, 1800, 3300], ready={"views": views_answer(client)})

    async def one(command) -> None:
        async with gate:
            reply = await client.send(LIAISON, command)
        assert reply["ok"], reply
        await chaos.progress()  # may kill and restart the views; the other senders keep going

    for phase in phases:
        await asyncio.gather(*(one(c) for c in phase))
    assert len(chaos.kills) == len(chaos.at), chaos.kills

    async def settled() -> bool:
        platform.check()
        try:
            return await caught_up(ready_settings, client)
        except Exception:  # the views process may still be starting
            return False

    assert await eventually(settled, timeout=120)
    today = city_today()
    async with pool.acquire() as conn:
        live = await liaison.summary(conn, "views", "city", None, today)
    wages = live["disputes"]["wages"]
    assert (wages["resolved"], wages["petitioned"], wages["mediating"], wages["reported"]) == (600, 200, 200, 0)
    expected = {k.value: 0 for k in SupportKind}
    for c in support:
        expected[c.kind.value] += int(c.quantity)
    assert {k: v["total"] for k, v in live["support"].items()} == expected

    await rebuild(ready_settings, "views_rebuild")
    async with pool.acquire() as conn:
        assert await liaison.summary(conn, "views_rebuild", "city", None, today) == live

"""Membership development and the branch lifecycle through the real processes: a person's path from application to
full member in the site and city views, and a completed site that hands its members back and leaves coverage."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import pytest

from contracts.membership import (
    HANDED_BACK,
    AdmitProbationary,
    ConfirmFullMembership,
    DesignateActivist,
    DesignateDevelopmentTarget,
    FormPartyGroup,
    Gender,
    Job,
    SubmitApplication,
    UnitKind,
)
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")

APPROVER = "白琳镇党委"


def cid() -> uuid.UUID:
    return uuid.uuid4()


async def ok(client: GongdiClient, *commands: Any) -> list[dict[str, Any]]:
    replies = []
    for command in commands:
        reply = await client.send("membership", command)
        assert reply["ok"], reply
        replies.append(reply)
    return replies


async def shown(client: GongdiClient, name: str, check: Any, **params: str) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        reply = await client.query("views", name, params)
        return reply["data"] if reply["ok"] and check(reply["data"]) else None

    data = await eventually(ready, timeout=30)
    assert data, await client.query("views", name, params)
    return data


def application(person_id: str, name: str, on: dt.date) -> SubmitApplication:
    return SubmitApplication(command_id=cid(), site_id="dev", person_id=person_id, name=name, gender=Gender.male,
                             birth_date=dt.date(1995, 3, 1), applied_on=on, unit_kind=UnitKind.construction,
                             unit_name="施工单位", job=Job.worker, section="一工段")


async def test_a_path_from_application_to_full_member_shows_in_the_site_and_city_views(client: GongdiClient):
    await ok(client, f.register("dev").model_copy(update={"start_date": dt.date(2018, 1, 1)}),
             *(f.arrive("dev", f"m{i}") for i in range(1, 4)), f.form_branch("dev", "m1"))
    await ok(client, application("p1", "王小明", dt.date(2018, 3, 1)), application("p2", "陈大力", dt.date(2020, 4, 1)))
    too_early = await client.send("membership", DesignateDevelopmentTarget(
        command_id=cid(), site_id="dev", person_id="p1", designated_on=dt.date(2019, 3, 1), approved_by=APPROVER))
    assert too_early["error"]["code"] == "DEVELOPMENT_STEP_OUT_OF_ORDER"
    refused = await client.send("membership", DesignateActivist(
        command_id=cid(), site_id="dev", person_id="p1", designated_on=dt.date(2018, 6, 1),
        approved_by="dev兼合党支部"))  # the site's own branch (samples.form_branch names it so)
    assert refused["error"]["code"] == "JOINT_BRANCH_MAY_NOT_DEVELOP" and refused["error"]["field"] == "approved_by"
    await ok(client, DesignateActivist(command_id=cid(), site_id="dev", person_id="p1",
                                       designated_on=dt.date(2018, 6, 1), approved_by=APPROVER))
    day_short = await client.send("membership", DesignateDevelopmentTarget(
        command_id=cid(), site_id="dev", person_id="p1", designated_on=dt.date(2019, 5, 31), approved_by=APPROVER))
    assert day_short["error"]["code"] == "ACTIVIST_PERIOD_TOO_SHORT"
    await ok(client, DesignateDevelopmentTarget(command_id=cid(), site_id="dev", person_id="p1",
                                                designated_on=dt.date(2019, 6, 1), approved_by=APPROVER),
             DesignateActivist(command_id=cid(), site_id="dev", person_id="p2", designated_on=dt.date(2020, 5, 1),
                               approved_by=APPROVER))
    [admitted] = await ok(client, AdmitProbationary(command_id=cid(), site_id="dev", person_id="p1",
                                                    admitted_on=dt.date(2020, 6, 1), approved_by=APPROVER))
    assert [e["type"] for e in admitted["events"]] == ["ProbationaryAdmitted", "MemberArrived"]

    site = await shown(client, "site", lambda d: d["members_present"] == 4, site_id="dev")
    assert [m["status"] for m in site["members"] if m["member_id"] == "p1"] == ["probationary"]
    candidates = site["development_candidates"]
    assert [x["name"] for x in candidates["probationary"]] == ["王小明"]
    assert [x["name"] for x in candidates["activist"]] == ["陈大力"]
    assert candidates["probationary"][0]["approvals"]["probationary"] == APPROVER
    assert "birth_date" not in candidates["activist"][0]
    city = await shown(client, "city", lambda d: d["development"]["developed"] == 1)
    assert {k: city["development"][k] for k in ("applied", "activists", "targets", "probationary")} == {
        "applied": 1, "activists": 1, "targets": 0, "probationary": 1}
    township = (await client.query("views", "township", {"township": "bailin"}))["data"]
    assert township["development"]["developed"] == 1

    early = await client.send("membership", ConfirmFullMembership(
        command_id=cid(), site_id="dev", person_id="p1", confirmed_on=dt.date(2021, 5, 31), approved_by=APPROVER))
    assert early["error"]["code"] == "PROBATION_NOT_OVER" and "probation_months" in early["error"]["message"]
    await ok(client, ConfirmFullMembership(command_id=cid(), site_id="dev", person_id="p1",
                                           confirmed_on=dt.date(2021, 6, 1), approved_by=APPROVER))
    city = await shown(client, "city", lambda d: d["development"]["full_confirmed"] == 1)
    assert city["full_members"] == 4 and city["development"]["probationary"] == 0
    assert city["development"]["developed"] == 1  # still developed on a site, now a full member
    site = await shown(client, "site", lambda d: d["full_members"] == 4, site_id="dev")
    assert [x["name"] for x in site["development_candidates"]["full"]] == ["王小明"]
    assert site["development_candidates"]["full"][0]["departed"] is False
    # One who leaves stays on the path the site kept, said to have left (before, listed as if still here).
    await ok(client, f.depart("dev", "p1").model_copy(update={"departed_on": dt.date(2021, 7, 1),
                                                              "reason": "调往宁德其他项目"}))
    site = await shown(client, "site", lambda d: d["development_candidates"]["full"][0]["departed"], site_id="dev")
    assert [x["departed"] for x in site["development_candidates"]["activist"]] == [False]  # not a member: never
    # ... and the site says why they left (before: the history only)
    assert site["recent_departures"][0]["reason"] == "调往宁德其他项目"


async def test_a_completed_site_hands_its_members_back_and_leaves_coverage(client: GongdiClient, pool: asyncpg.Pool):
    members = [f.arrive("done", f"m{i}") for i in range(1, 5)]
    group = FormPartyGroup(command_id=cid(), site_id="done", group_id="g1", name="一组党小组", section="一工段",
                           leader="m1", members=["m1", "m2", "m3"], formed_on=f.DAY)
    await ok(client, f.register("done"), *members, f.form_branch("done", "m1"), group)
    await shown(client, "city", lambda d: d["coverage"]["covered"] == 1 and d["members"] == 4)
    done = await client.send_dict("membership", "CompleteSite", {"site_id": "done", "completed_on": "2022-12-31"})
    assert [e["type"] for e in done["events"]] == ["SiteCompleted", "PartyGroupClosed", "BranchDissolved",
                                                   *["MemberDeparted"] * 4]

    city = await shown(client, "city", lambda d: d["completed"] == 1 and d["members"] == 0)
    assert city["coverage"]["qualifying"] == 0 and city["coverage"]["covered"] == 0 and city["branches"] == 0
    assert city["projects"] == 1 and city["gaps"] == []  # still one of the projects, in history
    site = await shown(client, "site", lambda d: d["members_present"] == 0, site_id="done")
    assert site["branch"]["dissolved_on"] == "2022-12-31" and site["branch_warning"] is None
    assert site["groups"][0]["closed_on"] == "2022-12-31"
    assert {d["member_id"] for d in site["recent_departures"]} == {"m1", "m2", "m3", "m4"}
    reasons = await pool.fetch("SELECT payload->>'reason' AS reason FROM membership.events"
                               " WHERE event_type = 'MemberDeparted'")
    assert {r["reason"] for r in reasons} == {HANDED_BACK}
    assert await pool.fetchval("SELECT count(*) FROM membership.member_presence") == 0  # free to arrive elsewhere
    await ok(client, f.register("next"), f.arrive("next", "m1"))

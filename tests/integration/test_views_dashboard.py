"""What the dashboard reads, through the real processes: a township's sites, a department's view and who may read
it, the city by month, the snapshot marker of every reply, and names in the site view."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.membership import SERVICE, CompleteSite, FormPartyGroup, RecordArrival, RegisterSite
from contracts.timeline import city_today
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")


def site(site_id: str, township: str = "bailin", department: str = "交通运输局", name: str | None = None,
         start: dt.date = f.DAY, cost: int = 9000) -> RegisterSite:
    return f.register(site_id, cost=cost, township=township).model_copy(
        update={"department": department, "name": name or f"工地{site_id}", "start_date": start})


def arrival(site_id: str, member_id: str, name: str = "李四", on: dt.date = f.DAY) -> RecordArrival:
    command = f.arrive(site_id, member_id)
    return command.model_copy(update={"member": command.member.model_copy(update={"name": name}), "arrived_on": on})


async def sent(client: GongdiClient, *commands: Any) -> None:
    for command in commands:
        reply = await client.send(SERVICE, command)
        assert reply["ok"], reply


async def view(client: GongdiClient, name: str, **params: str) -> dict[str, Any]:
    return await client.query("views", name, params)


async def shown(client: GongdiClient, name: str, check: Any, **params: str) -> dict[str, Any]:
    """The view's data once `check(data)` holds (the projection is eventually consistent)."""

    async def ready() -> dict[str, Any] | None:
        reply = await view(client, name, **params)
        return reply["data"] if reply["ok"] and check(reply["data"]) else None

    data = await eventually(ready, timeout=30)
    assert data, (await view(client, name, **params))
    return data


@pytest.fixture
async def connect(admin_settings: Settings, servers: Servers) -> AsyncIterator[Any]:
    opened: list[GongdiClient] = []

    async def as_identity(who: str) -> GongdiClient:
        c = await GongdiClient.connect(servers.as_identity(admin_settings, who), timeout=15)
        opened.append(c)
        return c

    yield as_identity
    for c in opened:
        await c.close()


SITE_KEYS = {"site_id", "name", "township", "township_name", "department", "workforce", "members_present",
             "full_members", "branch", "qualifies", "gap", "should_form_branch", "completed_on", "building",
             "branch_warning"}


async def test_a_township_lists_its_sites_by_name(client: GongdiClient):
    await sent(client,
               site("aa", name="B工地"), site("zz", name="A工地", department="水利局"),
               site("done", name="C工地"), site("small", name="D工地", cost=100),
               site("elsewhere", township="diantou"),
               f.workforce("zz", 120), f.workforce("aa", 80),
               *(f.arrive("aa", m) for m in ("a1", "a2", "a3")), f.arrive("zz", "z1"),
               CompleteSite(command_id=uuid.uuid4(), site_id="done", completed_on=dt.date(2022, 12, 31)))
    data = await shown(client, "township", lambda d: d["members"] == 4 and any(s["completed_on"] for s in d["sites"]),
                       township="bailin")
    assert {k: data[k] for k in ("township", "name", "projects", "workers", "members", "branches")} == {
        "township": "bailin", "name": "白琳镇", "projects": 4, "workers": 200, "members": 4, "branches": 0}
    sites = data["sites"]
    assert [s["site_id"] for s in sites] == ["zz", "aa", "done", "small"]  # by name: A, B, C, D工地
    assert all(set(s) == SITE_KEYS for s in sites)
    assert sites[0] == {"site_id": "zz", "name": "A工地", "township": "bailin", "township_name": "白琳镇",
                        "department": "水利局", "workforce": 120, "members_present": 1, "full_members": 1,
                        "branch": None, "qualifies": True, "gap": True, "should_form_branch": False,
                        "completed_on": None, "building": True, "branch_warning": None}
    assert (sites[1]["members_present"], sites[1]["gap"], sites[1]["should_form_branch"]) == (3, True, True)
    assert (sites[2]["gap"], sites[2]["completed_on"]) == (False, "2022-12-31")
    assert (sites[3]["qualifies"], sites[3]["gap"]) == (False, False)
    # 覆盖 as the city counts it: zz and aa qualify and are building; done is completed, small too small
    assert data["coverage"] == {"qualifying": 2, "covered": 0, "rule": "造价≥5000万元且工期≥24个月"}
    city = (await view(client, "city"))["data"]
    assert city["coverage"]["rule"] == data["coverage"]["rule"]
    assert set(data["activities"]) == set(city["activities"]) and set(data["liaison"]) == set(city["liaison"])

    await sent(client, f.form_branch("aa", "a1"))
    data = await shown(client, "township", lambda d: d["branches"] == 1, township="bailin")
    aa = data["sites"][1]
    assert (aa["branch"], aa["gap"], aa["should_form_branch"]) == ("aa兼合党支部", False, False)
    assert (data["coverage"]["covered"], data["coverage"]["qualifying"]) == (1, 2)
    # every arrival obliges a talk (the activities policy): the township's summary counts its own sites only
    await sent(client, f.arrive("elsewhere", "e1"))
    await shown(client, "township", lambda d: d["activities"]["talks"]["open"] == 4, township="bailin")
    diantou = await shown(client, "township", lambda d: d["members"] == 1 and d["activities"]["talks"]["open"] == 1,
                          township="diantou")
    assert [s["site_id"] for s in diantou["sites"]] == ["elsewhere"]


async def test_a_project_not_started_yet_is_no_gap_until_it_starts(client: GongdiClient):
    """Before, a qualifying project registered for next year was a 空白点 at once."""
    later = city_today() + dt.timedelta(days=1)
    await sent(client, site("plan", township="guanyang", name="规划工程", start=later))
    data = await shown(client, "township", lambda d: d["projects"] == 1, township="guanyang")
    [plan] = data["sites"]
    assert (plan["qualifies"], plan["building"], plan["gap"]) == (True, False, False)
    assert data["coverage"]["qualifying"] == 0
    assert "plan" not in {g["site_id"] for g in (await view(client, "city"))["data"]["gaps"]}
    assert (await view(client, "site", site_id="plan"))["data"]["gap"] is False
    # As of the day it starts, it is one (a view may be asked up to the end of this year).
    if later.year == city_today().year:
        starting = await view(client, "township", township="guanyang", as_of=later.isoformat())
        assert starting["ok"], starting
        assert starting["data"]["sites"][0]["gap"] is True and starting["data"]["coverage"]["qualifying"] == 1


async def test_a_department_sees_its_sites_and_only_its_own(client: GongdiClient, connect: Any, tmp_path: Path,
                                                            admin_settings: Settings):
    await sent(client, site("d1"), site("d2", township="diantou"), site("d3", department="水利局"),
               f.workforce("d1", 50), f.workforce("d2", 70), f.workforce("d3", 9),
               f.arrive("d1", "m1"), f.arrive("d2", "m2"), f.arrive("d3", "m3"))
    jiaotong = await shown(client, "department", lambda d: d["members"] == 2 and d["activities"]["talks"]["open"] == 2,
                           department="jiaotong")
    assert {k: jiaotong[k] for k in ("department", "name", "projects", "workers", "members", "branches")} == {
        "department": "jiaotong", "name": "交通运输局", "projects": 2, "workers": 120, "members": 2, "branches": 0}
    assert [(s["site_id"], s["township"], s["department"]) for s in jiaotong["sites"]] == [
        ("d1", "bailin", "交通运输局"), ("d2", "diantou", "交通运输局")]
    assert jiaotong["liaison"]["meetings"] == 0 and "snapshot" in jiaotong
    shuili = await shown(client, "department", lambda d: d["members"] == 1 and d["activities"]["talks"]["open"] == 1,
                         department="shuili")
    assert (shuili["projects"], shuili["workers"], [s["site_id"] for s in shuili["sites"]]) == (1, 9, ["d3"])

    # the liaison figures are the department's sites' too (liaison learns the site from membership's events)
    dispute = {"site_id": "d3", "case_id": "w1", "kind": "wages", "reported_on": "2020-06-02",
               "parties": ["劳务班组"], "amount_yuan": "8000", "description": "欠薪"}

    async def reported() -> bool:
        return (await client.send_dict("liaison", "ReportDispute", dispute))["ok"]

    assert await eventually(reported, timeout=30)
    shuili = await shown(client, "department", lambda d: d["liaison"]["disputes"]["wages"]["reported"] == 1,
                         department="shuili")
    assert (await view(client, "department", department="jiaotong"))["data"]["liaison"]["disputes"]["wages"][
        "reported"] == 0

    none_yet = (await view(client, "department", department="jiaoyu"))["data"]  # in the city file, no site yet
    assert (none_yet["projects"], none_yet["sites"], none_yet["name"]) == (0, [], "教育局")
    unknown = await view(client, "department", department="nowhere")
    assert unknown["error"]["code"] == "DEPARTMENT_NOT_FOUND" and unknown["error"]["field"] == "department"
    bad = await view(client, "department", department="Not A Code")
    assert bad["error"]["code"] == "VALIDATION_FAILED" and bad["error"]["field"] == "department"

    own = await connect("department.jiaotong")
    assert (await view(own, "department", department="jiaotong"))["data"]["projects"] == 2
    for who, target in (("department.jiaotong", "shuili"), ("township.bailin", "jiaotong"),
                        ("township.bailin", "shuili")):
        refused = await view(await connect(who), "department", department=target)
        assert refused["error"]["code"] == "FORBIDDEN" and refused["error"]["field"] == "NOT_YOURS", (who, target)
    assert (await view(await connect("auditor"), "department", department="shuili"))["ok"]

    # the CLI prints it, as `gongdi view department <code>`
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env.update(admin_settings.env())
    printed = subprocess.run([sys.executable, "-m", "gongdi", "--home", str(tmp_path / "home"), "view",
                              "department", "jiaotong"], capture_output=True, text=True, env=env, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert "交通运输局 [jiaotong] 主管工地 2" in printed.stdout and "工地d2 [d2] 点头镇" in printed.stdout
    township = subprocess.run([sys.executable, "-m", "gongdi", "--home", str(tmp_path / "home"), "view",
                               "township", "bailin"], capture_output=True, text=True, env=env, timeout=60)
    assert township.returncode == 0 and "工地d3 [d3] 水利局" in township.stdout, township.stderr


async def test_the_city_by_month(client: GongdiClient):
    assert (await view(client, "city"))["data"]["by_month"] == []
    day = dt.date
    await sent(client, site("s1", start=day(2020, 6, 1)), site("s2", start=day(2020, 8, 15)),
               site("s3", start=day(2020, 11, 3)),
               arrival("s1", "m1", on=day(2020, 6, 1)), arrival("s1", "m2", on=day(2020, 7, 10)),
               arrival("s2", "m3", on=day(2020, 8, 20)))
    departure = f.depart("s1", "m1").model_copy(update={"departed_on": day(2020, 7, 5)})
    await sent(client, departure, arrival("s2", "m2", on=day(2020, 9, 1)))  # m2 moves: s1's departure too
    # the move is two events, a departure then an arrival: wait for both, since a read may fall between them
    city = await shown(client, "city", lambda d: sum(m["departures"] for m in d["by_month"]) == 2
                       and sum(m["arrivals"] for m in d["by_month"]) == 4)
    assert city["members"] == 2
    assert city["by_month"] == [
        {"month": "2020-06", "arrivals": 1, "departures": 0, "sites_started": 1},
        {"month": "2020-07", "arrivals": 1, "departures": 1, "sites_started": 0},
        {"month": "2020-08", "arrivals": 1, "departures": 0, "sites_started": 1},
        {"month": "2020-09", "arrivals": 1, "departures": 1, "sites_started": 0},
        {"month": "2020-10", "arrivals": 0, "departures": 0, "sites_started": 0},
        {"month": "2020-11", "arrivals": 0, "departures": 0, "sites_started": 1},
    ]


async def test_every_view_is_marked_with_its_snapshot_which_only_grows(client: GongdiClient, pool: asyncpg.Pool):
    await sent(client, site("snap"), f.arrive("snap", "m1"))
    first = await shown(client, "city", lambda d: d["members"] == 1)
    marker = first["snapshot"]
    assert set(marker) == {"seq", "at"} and marker["seq"] > 0
    assert dt.datetime.fromisoformat(marker["at"]).tzinfo is not None
    applied = await pool.fetchval("SELECT sum(stream_seq) FROM views.consumer_checkpoint")
    assert marker["seq"] <= applied  # what was read then; the policy's talks may have been applied since
    for name, params in (("township", {"township": "bailin"}), ("department", {"department": "jiaotong"}),
                         ("site", {"site_id": "snap"})):
        data = (await view(client, name, **params))["data"]
        assert data["snapshot"]["seq"] >= marker["seq"], name

    await sent(client, f.arrive("snap", "m2"))
    later = await shown(client, "city", lambda d: d["members"] == 2)
    assert later["snapshot"]["seq"] > marker["seq"]
    assert dt.datetime.fromisoformat(later["snapshot"]["at"]) >= dt.datetime.fromisoformat(marker["at"])


async def test_the_site_view_names_the_secretary_and_the_group(client: GongdiClient):
    names = {"m1": "张一", "m2": "王二", "m3": "刘三", "m4": "赵四"}
    await sent(client, site("named"), *(arrival("named", m, n) for m, n in names.items()),
               f.form_branch("named", "m1"),
               FormPartyGroup(command_id=uuid.uuid4(), site_id="named", group_id="g1", name="一组", section="一工段",
                              leader="m2", members=["m3", "m2", "m4"], formed_on=f.DAY),
               f.depart("named", "m4"))
    data = await shown(client, "site", lambda d: d["groups"] and d["members_present"] == 3, site_id="named")
    assert data["branch"]["secretary"] == "m1" and data["branch"]["secretary_name"] == "张一"
    [group] = data["groups"]
    assert group["members"] == ["m3", "m2", "m4"]
    # m4 has left: named as they left, and marked
    assert (group["leader_name"], group["member_names"]) == ("王二", ["刘三", "王二", "赵四"])
    assert group["departed"] == ["m4"]

    await sent(client, f.depart("named", "m1"))
    data = await shown(client, "site", lambda d: d["members_present"] == 2, site_id="named")
    # the secretary who left: named as they left and flagged, the post to be filled again
    assert data["branch"]["secretary_name"] == "张一" and data["branch"]["secretary_departed"]

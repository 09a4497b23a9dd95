"""History through the real processes and the gateway: a member's arrival → talk obligation → talk linked across
services, a site's events with actor and command, a case's steps, a branch; who may read which history."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.history import SUBJECTS, History, history_subject
from gongdi.ops.client import GongdiClient
from gongdi.ops.history import format_history, history
from tests.conftest import Servers
from tests.integration.gateway import ARRIVED, LATER, Gateway, arrival, eventually, post, running_gateway, site

TOWNSHIP = "township.bailin"
MEMBERS = ["h1-m1", "h1-m2", "h1-m3"]


@pytest.fixture(scope="module")
def gw(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(servers, tmp_path_factory.mktemp("history")) as gateway:
        yield gateway


def ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.fixture(scope="module")
def story(gw: Gateway) -> dict[str, str]:
    """Site h1 of 白琳镇, recorded by the township: three members, a talk held, a safety violation, a branch, a
    dispute mediated to the end; then h1-m3 moves to h2 in 点头镇 (recorded by the city)."""
    with gw.client(TOWNSHIP) as township, gw.client("city") as city:
        ok(post(township, "membership", "RegisterSite", site("h1", "bailin")))
        for m in MEMBERS:
            ok(post(township, "membership", "RecordArrival", arrival("h1", m, name=f"党员{m[-1]}")))

        def open_talks() -> list[dict[str, Any]]:
            talks = township.get("/api/views/talks", params={"site_id": "h1"})
            return talks.json()["data"]["open"] if talks.status_code == 200 else []

        assert eventually(lambda: len(open_talks()) == len(MEMBERS)), "the arrivals' talk obligations"
        obligation = next(t["obligation_id"] for t in open_talks() if t["member_id"] == "h1-m1")
        talk = ok(post(city, "activities", "RecordTalk", {"site_id": "h1", "obligation_id": obligation,
                                                          "talked_by": "支部书记", "talked_on": LATER}))
        ok(post(township, "activities", "RecordSafetyViolation", {
            "site_id": "h1", "member_id": "h1-m2", "occurred_on": LATER, "description": "未系安全带"},
            catching_up=10))
        ok(post(township, "membership", "FormBranch", {
            "site_id": "h1", "name": "h1联合党支部", "secretary": "h1-m1", "instructor": "指导员", "liaison": "联络员",
            "member_units": ["施工单位"], "formed_on": LATER}))
        ok(post(township, "activities", "AppraiseMembers", {
            "site_id": "h1", "year": 2020, "appraised_on": LATER,
            "grades": [{"member_id": "h1-m2", "grade": "qualified"}]}, catching_up=10))
        case = {"site_id": "h1", "case_id": "h1-k1"}
        ok(post(township, "liaison", "ReportDispute", {**case, "kind": "wages", "reported_on": LATER,
                                                       "amount_yuan": "8600", "parties": ["班组", "农民工"],
                                                       "description": "工资结算"}, catching_up=10))
        ok(post(township, "liaison", "StartMediation", {**case, "mediator": "调解站", "started_on": LATER}))
        ok(post(township, "liaison", "ResolveMediation", {**case, "resolved_on": LATER, "outcome": "结清"}))
        ok(post(city, "membership", "RegisterSite", site("h2", "diantou")))
        ok(post(city, "membership", "RecordArrival", arrival("h2", "h1-m3", name="党员3", arrived_on=LATER)))
        with gw.client("auditor") as auditor:  # the moved member's new talk obligation, made by the policy on h2
            assert eventually(lambda: len(ok(auditor.get("/api/history/member/h1-m3"))["data"]["events"]) == 6)
        return {"obligation": obligation, "talk_command": talk["command_id"]}


def by_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def test_a_members_history_links_arrival_obligation_and_talk(gw: Gateway, story: dict[str, str]):
    with gw.client("auditor") as auditor:
        data = ok(auditor.get("/api/history/member/h1-m1"))["data"]
    History.model_validate(data)
    events = data["events"]
    assert [e["type"] for e in events] == ["MemberArrived", "TalkObligationCreated", "TalkHeld", "BranchFormed"]
    arrived, obliged, talked, branch = events
    assert (arrived["service"], arrived["actor"], arrived["cause"]) == ("membership", TOWNSHIP, None)
    assert obliged["causation_id"] == obliged["cause"] == arrived["event_id"]
    assert obliged["actor"] == "policy:新来党员必谈" and obliged["command_id"] is None
    assert obliged["payload"]["obligation_id"] == talked["payload"]["obligation_id"] == story["obligation"]
    assert talked["cause"] == obliged["event_id"] and talked["command_id"] == story["talk_command"]
    assert talked["actor"] == "city" and branch["payload"]["secretary"] == "h1-m1"
    times = [dt.datetime.fromisoformat(e["recorded_at"]) for e in events]
    assert times == sorted(times)
    assert all(dt.datetime.fromisoformat(e["occurred_at"]) <= t for e, t in zip(events, times, strict=True))
    printed = format_history(data)
    assert "党员 党员1(h1-m1) 的历史记录：4 条" in printed and "→ 2020-07-01 产生谈话任务 党员1(h1-m1)" in printed
    # who acted by name: the township by the city file's name, the city by its role (before: login ids)
    assert "        → 2020-07-10 谈话完成" in printed
    assert "乡镇 白琳镇 · 命令" in printed and " · 市工委 · 命令" in printed
    assert data["actor_names"] == {TOWNSHIP: "白琳镇"}
    # the site by its name, from the views (a member's history has no site registration to name it)
    assert data["site_names"] == {"h1": "工地h1"} and "[工地 工地h1(h1)]" in printed


def test_a_history_newest_first_turns_the_order_round_keeping_effects_beneath_their_causes(gw: Gateway,
                                                                                           story: dict[str, str]):
    """A secretary checking what they just recorded finds it on top (before: at the bottom of hundreds of lines)."""
    with gw.client("auditor") as auditor:
        oldest = ok(auditor.get("/api/history/site/h1"))["data"]["reading"]
        newest = ok(auditor.get("/api/history/site/h1?order=newest"))["data"]["reading"]

    def groups(reading: dict[str, Any]) -> list[list[str]]:
        out: list[list[str]] = []
        for line in reading["lines"]:
            if line["depth"] == 0:
                out.append([])
            out[-1].append(line["event_id"])
        return out

    assert len(groups(oldest)) > 3 and groups(newest) == groups(oldest)[::-1]
    assert newest["order"] == "newest" and newest["notes"][-1].startswith("按记录时间排列，最新的在前")


def test_a_violations_obligation_is_caused_by_the_violation(gw: Gateway, story: dict[str, str]):
    with gw.client("city") as city:
        events = ok(city.get("/api/history/member/h1-m2"))["data"]["events"]
    [violation] = by_type(events, "SafetyViolationRecorded")
    obligations = by_type(events, "TalkObligationCreated")
    assert [o["payload"]["reason"] for o in obligations] == ["new_arrival", "safety_violation"]
    assert obligations[1]["cause"] == violation["event_id"]
    assert obligations[1]["command_id"] == violation["command_id"] is not None


def test_a_sites_history_lists_every_service_with_actor_and_command(gw: Gateway, story: dict[str, str]):
    with gw.client(TOWNSHIP) as township:
        data = ok(township.get("/api/history/site/h1"))["data"]
    events = data["events"]
    assert {e["site_id"] for e in events} == {"h1"} and data["withheld"] == 0
    assert events[0]["type"] == "SiteRegistered" and events[0]["actor"] == TOWNSHIP
    assert {e["service"] for e in events} == {"membership", "activities", "liaison"}
    assert len(by_type(events, "MemberArrived")) == 3 and len(by_type(events, "TalkObligationCreated")) == 4
    assert by_type(events, "MemberDeparted")[0]["payload"]["moved_to_site"] == "h2"
    assert by_type(events, "MemberDeparted")[0]["actor"] == "city"
    assert all(e["command_id"] for e in events if not e["actor"].startswith("policy:"))
    assert len({e["event_id"] for e in events}) == len(events)


def test_a_cases_history_is_its_steps_and_a_branchs_its_forming(gw: Gateway, story: dict[str, str]):
    with gw.client("auditor") as auditor:
        case = ok(auditor.get("/api/history/case/h1-k1"))["data"]["events"]
        branch = ok(auditor.get("/api/history/branch/h1"))["data"]["events"]
    assert [e["type"] for e in case] == ["DisputeReported", "MediationStarted", "MediationResolved"]
    assert all(e["service"] == "liaison" and e["actor"] == TOWNSHIP for e in case)
    assert len({e["command_id"] for e in case}) == 3
    assert [e["type"] for e in branch] == ["BranchFormed", "MembersAppraised"]


def test_a_members_history_has_the_appraisal_that_graded_them(gw: Gateway, story: dict[str, str]):
    """民主评议 grades members in a list of entries: before, a member's history left it out."""
    with gw.client("auditor") as auditor:
        graded = ok(auditor.get("/api/history/member/h1-m2"))["data"]["events"]
        other = ok(auditor.get("/api/history/member/h1-m1"))["data"]["events"]
    [appraisal] = by_type(graded, "MembersAppraised")
    assert appraisal["payload"]["grades"] == [{"member_id": "h1-m2", "grade": "qualified"}]
    assert by_type(other, "MembersAppraised") == []


def test_a_persons_history_has_the_development_path(gw: Gateway, story: dict[str, str]):
    """发展党员 events name the person `person_id`: before, a person's history left the whole path out."""
    with gw.client(TOWNSHIP) as township, gw.client("auditor") as auditor:
        ok(post(township, "membership", "RegisterSite", site("h3", "bailin")))
        ok(post(township, "membership", "SubmitApplication", {
            "site_id": "h3", "person_id": "h3-p1", "name": "王小明", "gender": "male", "birth_date": "1990-01-01",
            "applied_on": LATER, "unit_kind": "construction", "unit_name": "施工单位", "job": "worker",
            "section": "一工段"}))

        def path() -> list[str]:
            return [e["type"] for e in ok(auditor.get("/api/history/member/h3-p1"))["data"]["events"]]

        assert eventually(lambda: "TalkObligationCreated" in path())  # the applicant's talk, from the policy
        history = ok(auditor.get("/api/history/member/h3-p1"))["data"]
    assert history["events"][0]["type"] == "ApplicationSubmitted"
    assert "王小明(h3-p1)" in format_history(history)


def test_who_may_read_which_history(gw: Gateway, story: dict[str, str]):
    def refused(user: str, path: str) -> dict[str, Any]:
        with gw.client(user) as c:
            reply = c.get(path)
        assert reply.status_code == 403, (user, path, reply.text)
        return reply.json()["error"]

    assert refused("township.diantou", "/api/history/site/h1")["code"] == "FORBIDDEN"
    # A member whose records are all elsewhere is answered as one nobody recorded: asking tells no id exists.
    with gw.client("township.diantou") as diantou:
        elsewhere, made_up = diantou.get("/api/history/member/h1-m1"), diantou.get("/api/history/member/h1-m999")
    assert elsewhere.status_code == made_up.status_code == 404
    assert elsewhere.json()["error"] == {**made_up.json()["error"],
                                         "message": made_up.json()["error"]["message"].replace("h1-m999", "h1-m1")}
    assert elsewhere.json()["error"]["code"] == "MEMBER_NOT_FOUND" and "辖区" in elsewhere.json()["error"]["message"]
    assert refused("dashboard", "/api/history/site/h1")["code"] == "FORBIDDEN"  # NATS refuses it first
    assert refused("department.jiaotong", "/api/history/site/h1")["field"] == "NOT_YOURS"
    # A member who moved on: each township sees its own part of the story.
    with gw.client(TOWNSHIP) as bailin, gw.client("township.diantou") as diantou:
        own = ok(bailin.get("/api/history/member/h1-m3"))["data"]
        there = ok(diantou.get("/api/history/member/h1-m3"))["data"]
        bad = bailin.get("/api/history/township/bailin")
        bad_id = bailin.get("/api/history/site/Not A Slug")
    # ... the talk owed on h1 closed as moot when the member left it
    assert [e["type"] for e in own["events"]] == ["MemberArrived", "TalkObligationCreated", "MemberDeparted",
                                                  "TalkObligationMooted"]
    assert own["withheld"] == 2 and "另有 2 条记录在您无权查看的工地上" in format_history(own)
    assert [(e["type"], e["site_id"]) for e in there["events"]] == [("MemberArrived", "h2"),
                                                                    ("TalkObligationCreated", "h2")]
    assert there["withheld"] == 4
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_FAILED"
    assert bad_id.status_code == 422 and bad_id.json()["error"]["field"] == "ident"


def test_a_site_secretary_reads_its_own_site_only_and_anonymous_tools_none(gw: Gateway, servers: Servers,
                                                                          story: dict[str, str]):
    secretary = servers.add_secretary("h1", "bailin")

    async def ask() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        deadline = time.monotonic() + 10
        while True:  # the bus re-reads its accounts on SIGHUP: the new identity may take a moment to be known
            try:
                client = await GongdiClient.connect(servers.as_identity(gw.settings, secretary))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        platform = await GongdiClient.connect(gw.settings)  # `setup`: no identity in the request
        try:
            own = await history(client, "site", "h1")
            other = await history(client, "site", "h2")
            member = await history(client, "member", "h1-m3")
            anonymous = await platform.request(history_subject("membership"), b'{"kind": "site", "id": "h1"}')
            return own, other, member, anonymous
        finally:
            await client.close()
            await platform.close()

    own, other, member, anonymous = asyncio.run(ask())
    assert own["ok"] and len(own["data"]["events"]) > 10, own
    assert other["error"]["code"] == "FORBIDDEN" and other["error"]["field"] == "NOT_YOURS"
    assert member["ok"] and {e["site_id"] for e in member["data"]["events"]} == {"h1"}
    assert anonymous["error"]["field"] == "NO_IDENTITY"


def test_arrived_day_is_the_business_time(gw: Gateway, story: dict[str, str]):
    with gw.client("city") as city:
        [arrived] = by_type(ok(city.get("/api/history/member/h1-m2"))["data"]["events"], "MemberArrived")
    assert arrived["payload"]["arrived_on"] == ARRIVED


def test_an_id_no_service_knows_is_not_found_not_an_empty_history(gw: Gateway, story: dict[str, str]):
    with gw.client("city") as city:
        for kind, ident, code in (("site", "nosuch", "SITE_NOT_FOUND"), ("member", "nobody", "MEMBER_NOT_FOUND"),
                                  ("case", "no-case", "CASE_NOT_FOUND"), ("branch", "h2", "BRANCH_NOT_FOUND")):
            reply = city.get(f"/api/history/{kind}/{ident}")
            assert reply.status_code == 404, (kind, reply.text)
            refusal = reply.json()["error"]
            assert (refusal["code"], refusal["field"]) == (code, "id")
            assert f"没有{SUBJECTS[kind]} {ident} 的任何记录" in refusal["message"]
        assert ok(city.get("/api/history/branch/h1"))["data"]["events"]  # a branch formed is found

    async def by_the_cli_function() -> dict[str, Any]:  # what `gongdi history` prints, exiting 1, on a refusal
        client = await GongdiClient.connect(gw.servers.as_identity(gw.settings, TOWNSHIP))
        try:
            return await history(client, "member", "nobody")
        finally:
            await client.close()

    reply = asyncio.run(by_the_cli_function())
    assert not reply["ok"] and reply["error"]["code"] == "MEMBER_NOT_FOUND"


def test_a_record_changed_after_it_was_written_is_marked_in_the_history(gw: Gateway, story: dict[str, str]):
    """Before, a payload edited in the database read in the history as if it had been recorded so."""
    with gw.client("city") as city:
        ok(post(city, "membership", "RegisterSite", site("h9", "bailin")))
        ok(post(city, "membership", "RecordArrival", arrival("h9", "h9-m1", name="原名")))

    async def edit() -> None:
        conn = await asyncpg.connect(gw.settings.database_url)
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL session_replication_role = replica")  # past the append-only triggers
                await conn.execute("UPDATE membership.events SET payload = jsonb_set(payload, '{member,name}',"
                                   " '\"假名\"') WHERE stream_id = 'site-h9' AND event_type = 'MemberArrived'")
        finally:
            await conn.close()

    asyncio.run(edit())
    with gw.client("auditor") as auditor:
        data = ok(auditor.get("/api/history/site/h9"))["data"]
    changed = [e["type"] for e in data["events"] if not e["intact"]]
    assert changed == ["MemberArrived"] and len(data["events"]) >= 2, data["events"]
    printed = format_history(data)
    assert "!! 其中 1 条记录写入后被改动过" in printed and "gongdi verify" in printed, printed
    arrival_line = next(i for i, line in enumerate(printed.splitlines()) if "假名" in line)
    assert "!! 此条记录写入后被改动过" in printed.splitlines()[arrival_line + 1], printed


def test_a_history_by_day_puts_a_late_recorded_arrival_where_it_happened(gw: Gateway):
    """An auditor asks in which order things happened: an arrival entered late comes before those entered
    earlier but dated after it; recorded order stays the default."""
    with gw.client(TOWNSHIP) as township, gw.client("auditor") as auditor:
        ok(post(township, "membership", "RegisterSite", site("h5", "bailin")))
        ok(post(township, "membership", "RecordArrival", arrival("h5", "h5-m1", arrived_on=LATER)))
        ok(post(township, "membership", "RecordArrival", arrival("h5", "h5-m2", arrived_on=ARRIVED)))

        def arrivals(**params: str) -> list[str]:
            reading = ok(auditor.get("/api/history/site/h5", params=params))["data"]["reading"]
            return [line["what"] for line in reading["lines"] if line["type"] == "MemberArrived"]

        by_day, by_record, default = arrivals(order="day"), arrivals(order="recorded"), arrivals()
        wrong = auditor.get("/api/history/site/h5", params={"order": "alphabetical"})
    assert [w[:10] for w in by_day] == [ARRIVED, LATER] and "(h5-m2)" in by_day[0]
    assert by_record == default == list(reversed(by_day))
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "order"


def test_a_branchs_history_has_its_officers_coming_and_going(gw: Gateway):
    """Before, `history branch` left out the secretary's departure, and named members by id only."""
    with gw.client(TOWNSHIP) as township, gw.client("auditor") as auditor:
        ok(post(township, "membership", "RegisterSite", site("h6", "bailin")))
        for m in (f"h6-m{i}" for i in range(1, 8)):  # seven full members: a branch with a committee
            ok(post(township, "membership", "RecordArrival", arrival("h6", m, name=f"党员{m[-1]}")))
        ok(post(township, "membership", "FormBranch", {
            "site_id": "h6", "name": "h6联合党支部", "secretary": "h6-m1", "committee": ["h6-m1", "h6-m2", "h6-m3"],
            "instructor": "指导员", "liaison": "联络员", "member_units": ["施工单位"], "formed_on": LATER}))
        ok(post(township, "membership", "RecordDeparture", {"site_id": "h6", "member_id": "h6-m1",
                                                            "departed_on": LATER, "reason": "调往其他项目"}))
        ok(post(township, "membership", "RecordDeparture", {"site_id": "h6", "member_id": "h6-m5",
                                                            "departed_on": LATER, "reason": "工程结束"}))

        def mooted() -> dict | None:  # the activities policy moots the obligation once it has read the departure
            data = ok(auditor.get("/api/history/branch/h6"))["data"]
            return data if any(e["type"] == "TalkObligationMooted" for e in data["events"]) else None

        data = eventually(mooted, timeout=30) or ok(auditor.get("/api/history/branch/h6"))["data"]
    kinds = [(e["type"], e["payload"].get("member_id")) for e in data["events"]]
    # h6-m5 holds no office; the secretary's open talk obligation, mooted by the departure, follows it as its result
    assert kinds == [("BranchFormed", None), ("MemberDeparted", "h6-m1"), ("TalkObligationMooted", "h6-m1")], kinds
    lines = {line["type"]: line for line in data["reading"]["lines"]}
    # Members by name, from their arrivals, which the branch's history does not list
    assert data["member_names"] == {"h6-m1": "党员1"}
    assert "党员1(h6-m1)" in lines["MemberDeparted"]["what"] and "调往其他项目" in lines["MemberDeparted"]["what"]
    assert "书记 党员1(h6-m1)" in lines["BranchFormed"]["what"], lines["BranchFormed"]
    assert lines["BranchFormed"]["where"] == ""  # the branch is the site's: its lines do not repeat it

"""Who may do what, against the real nats-server, services and PostgreSQL: every role × every command and query
subject, and the attacks the tenancy issue found (anonymous, forged actor, events, answers, streams)."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import nats
import nats.errors
import orjson
import pytest
from nats.js.errors import Error as JetStreamError

from contracts import activities, liaison, membership
from contracts.activities import (
    CrewCandidate,
    PromoteToManagement,
    RecommendCrewLeader,
    RecommendForManagement,
    RecordKind,
    RecordTalk,
    RetractRecord,
)
from contracts.base import Command
from contracts.liaison import EscalateToPetition
from contracts.membership import (
    CompleteSite,
    ConfirmFullMembership,
    ExtendProbation,
    RecordContactLost,
    RecordContactRestored,
    TransferRelation,
)
from contracts.queries import QUERIES
from contracts.subjects import command_subject, event_subject, stream_name
from gongdi.bus.heads import HEADS_STREAM
from gongdi.demo import samples as f
from gongdi.demo.activities import activity_plan
from gongdi.demo.city import development_plan, plan, roster
from gongdi.demo.liaison import liaison_phases
from gongdi.ops.client import NATS_PERMISSION, GongdiClient
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.waiting import eventually

OWN, OTHER = "own-site", "other-site"  # in diantou (交通运输局) and bailin (水利局)
SECRETARY = f"site.diantou.{OWN}"
PEOPLE = ["city", "township.diantou", "township.bailin", SECRETARY, "department.jiaotong", "auditor", "dashboard"]
SERVICES = {c.SERVICE: c for c in (membership, activities, liaison)}


def one_of_each() -> dict[str, Command]:
    """A well-formed command of every type, aimed at OWN: the demo city's, and hand-made for what it lacks."""
    found: dict[str, Command] = {}
    demo = [*(c for p in plan() + development_plan() for c in p), *activity_plan(roster()),
            *(c for p in liaison_phases() for c in p)]
    for command in [*demo, f.depart(OWN, "m1"),
                    CompleteSite(command_id=uuid.uuid4(), site_id=OWN, completed_on=dt.date(2021, 1, 1)),
                    TransferRelation(command_id=uuid.uuid4(), site_id=OWN, member_id="m1",
                                     transferred_on=dt.date(2021, 1, 1)),
                    RecordContactLost(command_id=uuid.uuid4(), site_id=OWN, member_id="m1",
                                      last_contact_on=dt.date(2021, 1, 1)),
                    RecordContactRestored(command_id=uuid.uuid4(), site_id=OWN, member_id="m1",
                                          restored_on=dt.date(2021, 1, 1)),
                    RecordTalk(command_id=uuid.uuid4(), site_id=OWN, obligation_id=uuid.uuid4(), talked_by="书记",
                               talked_on=dt.date(2020, 6, 2)),
                    RetractRecord(command_id=uuid.uuid4(), site_id=OWN, record=RecordKind.meeting,
                                  record_id=str(uuid.uuid4()), reason="重复提交"),
                    EscalateToPetition(command_id=uuid.uuid4(), site_id=OWN, case_id="c1",
                                       escalated_on=dt.date(2020, 6, 2), reason="调解不成"),
                    ExtendProbation(command_id=uuid.uuid4(), site_id=OWN, person_id="m1",
                                    extended_on=dt.date(2021, 1, 1), months=6, approved_by="点头镇党委"),
                    ConfirmFullMembership(command_id=uuid.uuid4(), site_id=OWN, person_id="m1",
                                          confirmed_on=dt.date(2021, 1, 1), approved_by="点头镇党委"),
                    PromoteToManagement(command_id=uuid.uuid4(), site_id=OWN, member_id="m1",
                                        promoted_on=dt.date(2020, 6, 2), position="施工员"),
                    RecommendCrewLeader(command_id=uuid.uuid4(), site_id=OWN, person_id="w1", name="张大勇",
                                        candidate=CrewCandidate.worker, recommended_on=dt.date(2020, 6, 2),
                                        crew="钢筋班组"),
                    RecommendForManagement(command_id=uuid.uuid4(), site_id=OWN, member_id="m1",
                                           recommended_on=dt.date(2020, 6, 2), position="安全员")]:
        found.setdefault(type(command).__name__, command)
    return found


def aimed_at_own(command: Command, who: str) -> Command:
    update: dict[str, Any] = {"command_id": uuid.uuid4(), "site_id": OWN}
    if type(command).__name__ == "RegisterSite":  # a new site in diantou, one per sender
        update.update(site_id=f"new-{who.replace('.', '-')}", township="diantou")
    return command.model_copy(update=update)


def service_of(name: str) -> str:
    return next(s for s, c in SERVICES.items() if name in c.COMMANDS)


def expected_write(who: str, name: str) -> str | None:
    """None: the platform lets it through to the rules; else the FORBIDDEN rule (field) that stops it."""
    if who in ("city", "township.diantou"):
        return None
    if who == SECRETARY:
        return "OTHER_SITE" if name == "RegisterSite" else None
    if who == "township.bailin":
        return "OTHER_TOWNSHIP"  # on its own subject; the service sees OWN is diantou's
    return NATS_PERMISSION  # read-only roles may publish on no command subject at all


@pytest.fixture
def people(admin_settings: Settings, servers: Servers) -> Iterator[dict[str, Settings]]:
    servers.add_secretary(OWN, "diantou")
    yield {who: servers.as_identity(admin_settings, who) for who in PEOPLE}


@pytest.fixture
async def clients(people: dict[str, Settings], platform: Any) -> AsyncIterator[dict[str, GongdiClient]]:
    out: dict[str, GongdiClient] = {}

    async def connected(who: str) -> bool:
        try:  # a new secretary's user exists once the server has re-read its accounts
            out[who] = await GongdiClient.connect(people[who], timeout=15)
        except (nats.errors.Error, OSError):
            return False
        return True

    try:
        for who in PEOPLE:
            assert await eventually(lambda who=who: connected(who)), f"{who} cannot connect"
        await _two_sites(out)
        yield out
    finally:
        for c in out.values():
            await c.close()


async def _two_sites(c: dict[str, GongdiClient]) -> None:
    assert (await c["township.diantou"].send(membership.SERVICE, f.register(OWN, township="diantou")))["ok"]
    other = f.register(OTHER, township="bailin").model_copy(update={"department": "水利局"})
    assert (await c["township.bailin"].send(membership.SERVICE, other))["ok"]

    async def everyone_knows() -> bool:
        # activities and liaison learn sites from membership's events; then a foreign write is FORBIDDEN,
        # not "unknown site", and the views show both sites.
        for service, command in (("activities", "RecordActivity"), ("liaison", "ReportDispute")):
            probe = aimed_at_own(one_of_each()[command], "probe")
            reply = await c["township.bailin"].send_raw(service, command, probe.model_dump_json().encode())
            if reply["error"]["field"] != "OTHER_TOWNSHIP":
                return False
        site = await c["city"].query("views", "site", {"site_id": OTHER})
        return site["ok"]

    assert await eventually(everyone_knows, timeout=30)


async def test_every_role_on_every_command_subject(clients: dict[str, GongdiClient]):
    commands = one_of_each()
    assert set(commands) == {n for c in SERVICES.values() for n in c.COMMANDS}
    got: dict[tuple[str, str], str | None] = {}
    want: dict[tuple[str, str], str | None] = {}
    for who in PEOPLE:
        for name, command in commands.items():
            body = aimed_at_own(command, who).model_dump_json().encode()
            reply = await clients[who].send_raw(service_of(name), name, body)
            error = reply.get("error") or {}
            got[who, name] = error.get("field") if error.get("code") == "FORBIDDEN" else None
            want[who, name] = expected_write(who, name)
    assert {k: v for k, v in got.items() if v != want[k]} == {}


async def test_nobody_publishes_on_another_scope(clients: dict[str, GongdiClient]):
    for who in ("township.bailin", SECRETARY, "township.diantou"):
        for scope in ("city", "bailin" if who != "township.bailin" else "diantou"):
            reply = await clients[who].send_raw("membership", "RecordDeparture", f.depart(OWN, "m1")
                                                .model_dump_json().encode(), scope=scope)
            assert reply["error"]["field"] == NATS_PERMISSION, (who, scope)


def expected_read(who: str, query: str, target: str | None) -> str | None:
    """None when the read is allowed; else what stops it."""
    if who in ("city", "auditor"):
        return None
    if who == "dashboard":
        return None if query in ("city", "township", "department", "status") else NATS_PERMISSION
    if query in ("city", "status"):
        return None
    if query == "department":  # OWN is supervised by 交通运输局 (jiaotong), OTHER by 水利局 (shuili)
        return None if who == f"department.{target}" else "NOT_YOURS"
    if query == "township":
        home = {"township.diantou": "diantou", SECRETARY: "diantou", "township.bailin": "bailin"}
        return None if who == "department.jiaotong" or home[who] == target else "NOT_YOURS"
    # site, birthdays, talks: OWN is diantou's and supervised by 交通运输局; OTHER is bailin's (水利局)
    allowed = {"township.diantou": OWN, SECRETARY: OWN, "department.jiaotong": OWN, "township.bailin": OTHER}
    return None if allowed[who] == target else "NOT_YOURS"


async def test_every_role_on_every_query(clients: dict[str, GongdiClient]):
    got: dict[tuple[str, str, str | None], str | None] = {}
    want: dict[tuple[str, str, str | None], str | None] = {}
    for who in PEOPLE:
        for q in QUERIES.values():
            targets: list[str | None] = {"site_id": [OWN, OTHER], "township": ["diantou", "bailin"],
                                         "department": ["jiaotong", "shuili"]}.get(q.key or "", [None])
            for target in targets:
                reply = await clients[who].query("views", q.name, {q.key: target} if q.key else {})
                error = reply.get("error") or {}
                assert reply["ok"] or error.get("code") == "FORBIDDEN", (who, q.name, target, reply)
                got[who, q.name, target] = None if reply["ok"] else error["field"]
                want[who, q.name, target] = expected_read(who, q.name, target)
    assert {k: v for k, v in got.items() if v != want[k]} == {}


async def test_a_secretary_cannot_tell_a_made_up_site_from_anothers_real_one(clients: dict[str, GongdiClient]):
    """Before, a made-up id was "not in the view" and another's site "no right": which ids exist could be probed."""
    for target in (OTHER, "made-up-site"):
        reply = await clients[SECRETARY].query("views", "site", {"site_id": target})
        assert (reply["error"]["code"], reply["error"]["field"]) == ("FORBIDDEN", "NOT_YOURS"), (target, reply)
    # A township may wait for a site it has just registered: an unknown id is said to be unknown.
    unknown = await clients["township.diantou"].query("views", "site", {"site_id": "made-up-site"})
    assert unknown["error"]["code"] == "SITE_NOT_FOUND"


async def test_no_anonymous_or_wrong_password_connection(admin_settings: Settings):
    with pytest.raises(nats.errors.Error):
        await nats.connect(admin_settings.nats_url, max_reconnect_attempts=0, allow_reconnect=False,
                           connect_timeout=2)
    with pytest.raises(nats.errors.Error):
        wrong = admin_settings.as_user("city", "not-the-password")
        await nats.connect(wrong.nats_servers, max_reconnect_attempts=0, allow_reconnect=False, connect_timeout=2)


async def test_a_forged_actor_or_request_info_changes_nothing(clients: dict[str, GongdiClient], pool):
    body = orjson.loads(f.depart(OWN, "m1").model_dump_json())
    forged_actor = await clients["township.diantou"].send_raw(
        "membership", "RecordDeparture", orjson.dumps({**body, "actor": "policy:新来党员必谈"}))
    assert forged_actor["error"]["code"] == "VALIDATION_FAILED" and forged_actor["error"]["field"] == "actor"
    # bailin claims to be the city committee in the header the server sets: the server's own value wins.
    claim = orjson.dumps({"acc": "USERS", "user": "city"}).decode()
    reply = await clients["township.bailin"].request(
        command_subject("bailin", "membership", "RecordDeparture"), orjson.dumps(body),
        headers={"Nats-Request-Info": claim})
    assert reply["error"]["code"] == "FORBIDDEN" and reply["error"]["field"] == "OTHER_TOWNSHIP"
    actors = {r["actor"] for r in await pool.fetch("SELECT actor FROM membership.events")}
    assert actors == {"township.diantou", "township.bailin"}


async def test_people_cannot_publish_events_answer_commands_or_touch_streams(
        clients: dict[str, GongdiClient], ready_settings: Settings, people: dict[str, Settings]):
    operator = await nats.connect(ready_settings.nats_servers)
    js = operator.jetstream()
    before = (await js.stream_info(stream_name("membership"))).state.last_seq
    denied: list[str] = []

    async def on_error(exc: Exception) -> None:
        denied.append(str(exc).lower())

    # A raw connection as the city committee, the most trusted person: still not the platform.
    raw = await nats.connect(people["city"].nats_servers, error_cb=on_error)
    answered: list[bytes] = []

    async def impostor(msg) -> None:
        answered.append(msg.data)
        await msg.respond(b'{"ok": true}')

    try:
        await raw.publish(event_subject("diantou", "membership", "MemberArrived"), b'{"member_id": "ghost"}')
        await raw.subscribe("cmd.>", cb=impostor)
        await raw.flush()
        reply = await clients["township.diantou"].send(membership.SERVICE, f.workforce(OWN, 10))
        assert reply["ok"] and reply["events"], "the real service answered"
        assert answered == []
        people_js = raw.jetstream(timeout=2)
        for attempt in (people_js.delete_stream(stream_name("membership")),
                        people_js.add_stream(name="MINE", subjects=["mine.>"]),
                        people_js.add_consumer(stream_name("membership"), durable_name="replay"),
                        people_js.stream_info(stream_name("membership"))):
            with pytest.raises((nats.errors.Error, JetStreamError, asyncio.TimeoutError)):
                await attempt
        await eventually(lambda: any("publish" in d for d in denied) and any("subscription" in d for d in denied))
    finally:
        await raw.close()
    info = await js.stream_info(stream_name("membership"))
    assert info.state.last_seq == before + 1  # the workforce report, not the forged arrival
    assert [s.config.name async for s in _names(js)] == sorted([*(stream_name(s) for s in SERVICES), HEADS_STREAM])
    await operator.close()
    # the dashboard hears no change notices either (the gateway's alone: test_nobody_hears_or_forges_change_notices)
    dash_errors: list[str] = []

    async def dash_error(exc: Exception) -> None:
        dash_errors.append(str(exc).lower())

    dash = await nats.connect(people["dashboard"].nats_servers, error_cb=dash_error)
    try:
        await dash.subscribe("live.site.>")
        await dash.flush()
        assert await eventually(lambda: any("subscription" in d for d in dash_errors))
    finally:
        await dash.close()


async def _names(js) -> AsyncIterator[Any]:
    for info in sorted(await js.streams_info(), key=lambda i: i.config.name):
        yield info


async def test_after_refused_forgeries_legitimate_commands_still_flow(clients: dict[str, GongdiClient]):
    forged = await clients["township.bailin"].send(membership.SERVICE, f.workforce(OWN, 99))
    assert forged["error"]["code"] == "FORBIDDEN"
    assert (await clients["township.diantou"].send(membership.SERVICE, f.register("later", township="diantou")))["ok"]
    assert (await clients["township.diantou"].send(membership.SERVICE, f.workforce("later", 120)))["ok"]

    async def shown() -> bool:
        site = await clients["township.diantou"].query("views", "site", {"site_id": "later"})
        return site["ok"] and site["data"]["workforce"] == 120

    assert await eventually(shown)


async def test_the_dashboard_sees_figures_never_names(clients: dict[str, GongdiClient]):
    arrival = f.arrive(OWN, "m-dash")  # a member named 李四
    assert (await clients["township.diantou"].send(membership.SERVICE, arrival))["ok"]

    async def counted() -> bool:
        site = await clients["city"].query("views", "site", {"site_id": OWN})
        return site["ok"] and "李四" in orjson.dumps(site).decode()

    assert await eventually(counted)
    dashboard = clients["dashboard"]
    for name, body in (("city", {}), ("township", {"township": "diantou"}), ("department", {"department": "jiaotong"}),
                       ("status", {})):
        reply = await dashboard.query("views", name, body)
        text = orjson.dumps(reply).decode()
        assert reply["ok"] and "李四" not in text and "m-dash" not in text
    township = await dashboard.query("views", "township", {"township": "diantou"})
    assert township["data"]["members"] >= 1  # the member counts, unnamed


async def test_nobody_reads_another_identitys_replies(clients: dict[str, GongdiClient], people: dict[str, Settings]):
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    overheard: list[bytes] = []

    async def listen(msg) -> None:
        overheard.append(msg.data)

    spy = await nats.connect(people["township.bailin"].nats_servers, error_cb=on_error)
    try:
        for inbox in ("_INBOX.>", "_INBOX.city.>"):
            await spy.subscribe(inbox, cb=listen)
        await spy.flush()
        site = await clients["city"].query("views", "site", {"site_id": OWN})
        assert site["ok"]
        assert await eventually(lambda: sum("subscription" in e for e in errors) == 2)
        assert overheard == []
    finally:
        await spy.close()


async def test_nobody_hears_or_forges_change_notices(clients: dict[str, GongdiClient], people: dict[str, Settings],
                                                     ready_settings: Settings, servers: Servers):
    """A service's answer goes to whatever reply subject the requester names, in the requester's account: were the
    views' change notices heard there, any writer could send one (a view it may read, to every dashboard) by naming
    `live.city.<code>` as its reply subject. People hear no notices at all; the gateway hears the platform's."""
    errors: dict[str, list[str]] = {}
    listeners = []
    for who in PEOPLE:
        errors[who] = []

        async def on_error(exc: Exception, who: str = who) -> None:
            errors[who].append(str(exc).lower())

        nc = await nats.connect(people[who].nats_servers, error_cb=on_error)
        await nc.subscribe("live.>")
        await nc.flush()
        listeners.append(nc)
    heard: list[bytes] = []

    async def on_notice(msg) -> None:
        heard.append(msg.data)

    gateway = await nats.connect(servers.as_identity(ready_settings, "gateway").nats_servers)
    answered: list[str] = []

    async def probe(msg) -> None:  # any service the writer may ask; it answers on the reply subject it was given
        await msg.respond(b'{"forged": true}')
        await operator.flush()  # the answer is routed before the probe counts it
        answered.append(msg.reply)

    operator = await nats.connect(ready_settings.nats_servers)
    try:
        for who in PEOPLE:
            assert await eventually(lambda who=who: any("subscription" in e for e in errors[who])), who
        await gateway.subscribe("live.>", cb=on_notice)
        await gateway.flush()
        await operator.subscribe("qry.injectprobe.answer", cb=probe)
        await operator.flush()
        writer = clients["township.diantou"].nc
        await writer.publish("qry.injectprobe.answer", b"{}", reply="live.city.fuding")
        await writer.flush()
        assert await eventually(lambda: answered)
        await gateway.flush()
        assert heard == [], "an answer reached the gateway's notices"
        # ... which still hears the real ones
        assert (await clients["township.diantou"].send(membership.SERVICE, f.workforce(OWN, 11)))["ok"]
        assert await eventually(lambda: any(b'"own-site"' in h for h in heard))
        assert all(b"forged" not in h for h in heard)
    finally:
        for nc in (*listeners, gateway, operator):
            await nc.close()


async def test_a_move_across_townships_carries_who_recorded_it(clients: dict[str, GongdiClient], pool):
    assert (await clients["township.diantou"].send(membership.SERVICE, f.arrive(OWN, "m-move")))["ok"]
    moved = await clients["township.bailin"].send(membership.SERVICE, f.arrive(OTHER, "m-move"))
    assert [e["type"] for e in moved["events"]] == ["MemberDeparted", "MemberArrived"]
    rows = await pool.fetch("SELECT site_id, event_type, actor FROM membership.events"
                            " WHERE event_type = 'MemberDeparted'")
    assert [tuple(r) for r in rows] == [(OWN, "MemberDeparted", "township.bailin")]

    async def seen_by_diantou() -> list | None:
        site = (await clients["township.diantou"].query("views", "site", {"site_id": OWN}))["data"]
        return site["recent_departures"] or None

    departures = await eventually(seen_by_diantou)
    assert departures == [{"member_id": "m-move", "name": "李四", "departed_on": "2020-06-01",
                           "moved_to_site": OTHER, "moved_to_name": f"工地{OTHER}",
                           "recorded_by": "township.bailin", "reason": "调往其他工地"}]

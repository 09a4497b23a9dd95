"""The HTTP gateway against the real platform: logins, every command and query, error shapes, idempotency, rights
per role, metrics and documents, and the live stream. One platform for the module; each test its own sites."""
from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from contracts import activities, liaison, membership
from contracts.queries import QUERIES
from contracts.subjects import command_subscription
from gongdi.ops.client import GongdiClient
from gongdi.service.process import MAX_REQUEST_BYTES
from services.gateway.sessions import PER_PERSON
from services.gateway.throttle import FREE_TRIES
from tests.conftest import Servers
from tests.integration.gateway import (
    ARRIVED,
    Gateway,
    arrival,
    eventually,
    every_command,
    post,
    running_gateway,
    site,
    sse_events,
)

CONTRACTS = (membership, activities, liaison)
COMMANDS = [(c.SERVICE, name) for c in CONTRACTS for name in c.COMMANDS]
CJK = re.compile("[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def gw(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(servers, tmp_path_factory.mktemp("gateway")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def city(gw: Gateway) -> Iterator[httpx.Client]:
    with gw.client("city") as c:
        yield c


def error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert body["ok"] is False, body
    return body["error"]


def registered(client: httpx.Client, site_id: str, township: str = "bailin") -> None:
    reply = post(client, "membership", "RegisterSite", site(site_id, township))
    assert reply.status_code == 200, reply.text


def members_present(client: httpx.Client, site_id: str) -> int | None:
    reply = client.get("/api/views/site", params={"site_id": site_id})
    return reply.json()["data"]["members_present"] if reply.status_code == 200 else None


def caught_up(gw: Gateway) -> bool:
    """Every recorded event applied by every consumer, and no dead letter: what /health reports."""
    health = httpx.get(f"{gw.url}/health", timeout=5).json()
    return health["ok"] and health["lag"] == 0 and health["dead_letters"] == 0


# ---- logins ------------------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused(gw: Gateway):
    reply = gw.login("city", "not-the-password")
    assert reply.status_code == 401
    assert error(reply)["code"] == "LOGIN_FAILED"
    assert "set-cookie" not in reply.headers and "x-session-token" not in reply.headers
    log = gw.supervisor.logdir / "gateway.log"

    def logged() -> bool:  # the gateway's own record, with the caller's address (before, only nats.log had it)
        return any("login refused" in line and "user=city" in line and "address=127.0.0.1" in line
                   for line in log.read_text().splitlines())

    assert eventually(logged, timeout=10), log.read_text()[-2000:]
    assert "not-the-password" not in log.read_text()


def test_a_run_of_wrong_passwords_makes_that_login_wait_without_trying_the_right_one(gw: Gateway):
    for _ in range(FREE_TRIES):
        assert gw.login("township.diantou", "a-guess").status_code == 401
    reply = gw.login("township.diantou")  # the right password, while the wait lasts: not even tried
    assert reply.status_code == 429 and error(reply)["code"] == "LOGIN_THROTTLED"
    assert "秒后再试" in error(reply)["message"] and 0 < int(reply.headers["Retry-After"]) <= 30
    assert "x-session-token" not in reply.headers
    # Only that name from that address waits: somebody else logs in from the same machine.
    assert gw.login("township.bailin").status_code == 200


@pytest.mark.parametrize("user", ["views", "setup", "membership", "relay.membership"])
def test_a_platform_user_cannot_log_in_even_with_its_password(gw: Gateway, user: str):
    reply = gw.login(user, gw.password(user))
    assert reply.status_code == 401
    assert error(reply)["code"] == "LOGIN_FAILED"


def test_without_a_session_the_api_asks_to_log_in_and_pages_redirect(gw: Gateway):
    with gw.client() as anonymous:
        reply = anonymous.get("/api/views/city")
        assert reply.status_code == 401
        assert error(reply)["code"] == "LOGIN_REQUIRED"
        refused = anonymous.post("/api/commands/membership/RegisterSite", json=site("anon"))
        assert refused.status_code == 401 and error(refused)["code"] == "LOGIN_REQUIRED"
        wrong = anonymous.get("/api/views/city", headers={"Authorization": "Bearer made-up-token"})
        assert wrong.status_code == 401 and error(wrong)["code"] == "LOGIN_REQUIRED"
        page = anonymous.get("/city", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/city"


def test_login_gives_a_cookie_and_a_bearer_token_and_logout_ends_the_session(gw: Gateway):
    reply = gw.login("auditor")
    assert reply.status_code == 200, reply.text
    me = reply.json()["data"]
    assert (me["user"], me["role"], me["may_write"], me["city"]["code"]) == ("auditor", "auditor", False, "fuding")
    cookie = reply.headers["set-cookie"]
    assert "gongdi_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = reply.headers["X-Session-Token"]
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gw.url, timeout=15) as by_cookie:
        by_cookie.cookies.set("gongdi_session", token)
        assert by_cookie.get("/api/me").json()["data"]["user"] == "auditor"
        assert by_cookie.get("/api/views/city").status_code == 200
    with httpx.Client(base_url=gw.url, timeout=15, headers=bearer) as by_token:
        assert by_token.get("/api/me").json()["data"]["user"] == "auditor"
        assert by_token.get("/api/views/city").status_code == 200
        out = by_token.post("/api/logout")
        assert out.status_code == 200 and out.json() == {"ok": True}
        after = by_token.get("/api/views/city")
        assert after.status_code == 401 and error(after)["code"] == "LOGIN_REQUIRED"


def test_logging_in_many_times_ends_only_the_same_persons_oldest_sessions(gw: Gateway):
    """A person's logins past PER_PERSON close that person's least used session, never anybody else's (before, 500
    logins by one township logged the city's wall screen out)."""
    def me(token: str) -> httpx.Response:
        return httpx.get(f"{gw.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=15)

    screen = gw.login("dashboard").headers["X-Session-Token"]
    tokens = [gw.login("auditor").headers["X-Session-Token"] for _ in range(PER_PERSON)]
    assert me(tokens[1]).status_code == 200  # used: the first is now the auditor's least used
    tokens.append(gw.login("auditor").headers["X-Session-Token"])
    assert me(tokens[0]).status_code == 401 and error(me(tokens[0]))["code"] == "LOGIN_REQUIRED"
    assert all(me(t).status_code == 200 for t in tokens[1:])
    assert me(screen).json()["data"]["user"] == "dashboard"
    for token in [screen, *tokens[1:]]:
        httpx.post(f"{gw.url}/api/logout", headers={"Authorization": f"Bearer {token}"}, timeout=15)


def test_a_history_refuses_parameters_it_would_ignore(city: httpx.Client):
    """A history is always the whole of it: before, `?as_of=2020-12-31` answered 200 with everything."""
    reply = city.get("/api/history/member/m0001", params={"as_of": "2020-12-31"})
    assert reply.status_code == 422 and (error(reply)["code"], error(reply)["field"]) == ("VALIDATION_FAILED", "as_of")


# ---- every command and every query -----------------------------------------------------------------------


def test_every_command_of_every_service_is_accepted_over_http(gw: Gateway, city: httpx.Client):
    s = "gw-all"

    def open_talk() -> str:
        def first() -> str | None:
            talks = (city.get("/api/views/talks", params={"site_id": s}).json()["data"] or {}).get("open", [])
            return talks[0]["obligation_id"] if talks else None

        found = eventually(first)
        assert found, "the activities policy created no talk obligation"
        return found

    accepted: dict[tuple[str, str], dict[str, Any]] = {}
    for service, name, body in every_command(s, open_talk):
        reply = post(city, service, name, body(), catching_up=20.0)
        assert reply.status_code == 200, (service, name, reply.text)
        answer = reply.json()
        assert answer["ok"] and answer["events"] and not answer["duplicate"], (service, name, answer)
        accepted[(service, name)] = answer
    assert set(accepted) == set(COMMANDS)
    # Every accepted command shows in the status of its service.
    for contract in CONTRACTS:
        status = city.get(f"/api/status/{contract.SERVICE}")
        assert status.status_code == 200 and status.json()["data"]["recorded"] >= 1


@pytest.mark.parametrize(("service", "name"), COMMANDS, ids=[f"{s}.{n}" for s, n in COMMANDS])
def test_every_command_refuses_an_invalid_body_with_the_field(city: httpx.Client, service: str, name: str):
    empty = city.post(f"/api/commands/{service}/{name}", json={})
    assert empty.status_code == 422, empty.text
    assert error(empty)["code"] == "VALIDATION_FAILED"
    assert error(empty)["field"] == "site_id"  # the first required field of every command
    bad = city.post(f"/api/commands/{service}/{name}", json={"site_id": "Not A Site!"})
    assert bad.status_code == 422 and error(bad)["code"] == "VALIDATION_FAILED" and error(bad)["field"] == "site_id"
    not_an_object = city.post(f"/api/commands/{service}/{name}", content=b"[1, 2]",
                              headers={"Content-Type": "application/json"})
    assert not_an_object.status_code == 422 and error(not_an_object)["code"] == "VALIDATION_FAILED"


async def test_a_refused_body_is_explained_in_chinese_as_on_the_bus(gw: Gateway, city: httpx.Client):
    """Input that does not parse gets one reply everywhere (contracts.errors.validation_error): the same code,
    field and Chinese explanation over HTTP as over NATS."""
    bus = await GongdiClient.connect(gw.servers.as_identity(gw.settings, "city"))
    try:
        for body in ({}, {"site_id": "Not A Site!"}, arrival("x", "m", name="")):
            over_bus = (await bus.send_dict("membership", "RecordArrival", body))["error"]
            over_http = error(city.post("/api/commands/membership/RecordArrival", json=body))
            assert over_http["field"] == over_bus["field"], (body, over_http, over_bus)
            assert CJK.search(over_http["message"]), f"not explained in Chinese: {over_http['message']!r}"
            assert over_http == over_bus
    finally:
        await bus.close()


MALFORMED = {
    "not-utf8": b"\xff\xfe\x80",
    "not-utf8-inside": b'{"site_id": "\xff"}',
    "cut-short": b'{"site_id": ',
    "deep-nesting": b"[" * 100_000,
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_body_that_is_no_json_is_refused_typed(city: httpx.Client, body: bytes):
    for path in ("/api/commands/membership/RecordArrival", "/api/login"):
        reply = city.post(path, content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 422, (path, reply.status_code, reply.text)
        assert error(reply)["code"] == "VALIDATION_FAILED"
        assert error(reply)["field"] is None or not error(reply)["field"].isdigit(), (
            f"{path}: a position in the text is no field: {error(reply)}")


def test_a_valid_body_after_a_byte_order_mark_is_answered_not_a_server_error(city: httpx.Client):
    registered(city, "gw-bom")
    body = b"\xef\xbb\xbf" + orjson.dumps(arrival("gw-bom", "gw-bom-m1"))
    reply = city.post("/api/commands/membership/RecordArrival", content=body,
                      headers={"Content-Type": "application/json"})
    assert reply.status_code in (200, 422), (reply.status_code, reply.text)
    assert reply.json()["ok"] is (reply.status_code == 200)


def test_a_body_the_service_would_read_otherwise_is_refused_and_records_nothing(city: httpx.Client):
    """Before, a UTF-16 body crashed the gateway (a plain-text 500 and a reset connection), and of a key given twice
    the last one won: `"headcount": -5, "headcount": 71` was recorded as 71."""
    registered(city, "gw-odd")
    path = "/api/commands/membership/ReportWorkforce"
    report = orjson.dumps({"site_id": "gw-odd", "headcount": 71, "as_of": ARRIVED}).decode()
    bodies = {
        "utf-16": (report.encode("utf-16"), None),
        "a key twice": (report.replace('"headcount":71', '"headcount":-5,"headcount":71').encode(), "headcount"),
    }
    for case, (body, field) in bodies.items():
        reply = city.post(path, content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 422, (case, reply.status_code, reply.text)
        assert (error(reply)["code"], error(reply)["field"]) == ("VALIDATION_FAILED", field), case
        assert CJK.search(error(reply)["message"]), case
    # The connection is still answering, and nothing was recorded.
    assert eventually(lambda: members_present(city, "gw-odd") is not None, timeout=10)
    assert city.get("/api/views/site", params={"site_id": "gw-odd"}).json()["data"]["workforce"] in (0, None)


def test_a_wrong_method_is_refused_typed(city: httpx.Client):
    reply = city.get("/api/commands/membership/RecordArrival")
    assert reply.status_code == 405
    assert error(reply)["code"]


def query_params(name: str, site_id: str) -> dict[str, str]:
    key = QUERIES[name].key
    values = {"site_id": site_id, "township": "bailin", "department": "jiaotong"}
    return {key: values[key]} if key else {}


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_query_answers(city: httpx.Client, name: str):
    registered(city, f"gw-q-{name}")
    assert post(city, "membership", "RecordArrival", arrival(f"gw-q-{name}", f"gw-q-{name}-m1")).status_code == 200
    params = query_params(name, f"gw-q-{name}")

    def answered() -> httpx.Response | None:
        reply = city.get(f"/api/views/{name}", params=params)
        assert reply.status_code < 500, reply.text
        return reply if reply.status_code == 200 else None

    reply = eventually(answered)  # the site reaches the views a moment after its command
    assert reply is not None, f"/api/views/{name} {params} never answered 200"
    assert reply.json()["ok"] is True and reply.json()["data"] is not None
    if QUERIES[name].key:
        missing = city.get(f"/api/views/{name}")
        assert missing.status_code == 422
        assert error(missing)["code"] == "VALIDATION_FAILED" and error(missing)["field"] == QUERIES[name].key
    unknown = city.get(f"/api/views/{name}", params={**params, "unexpected": "1"})
    assert unknown.status_code in (200, 422), unknown.text


def test_a_view_as_of_a_day_over_http(city: httpx.Client):
    registered(city, "asof-http")
    assert post(city, "membership", "RecordArrival", arrival("asof-http", "asof-m1")).status_code == 200
    assert eventually(lambda: members_present(city, "asof-http") == 1)

    def then(day: str, basis: str = "business") -> dict[str, Any]:
        reply = city.get("/api/views/site", params={"site_id": "asof-http", "as_of": day, "as_of_basis": basis})
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]

    assert then("2020-06-30")["members_present"] == 0  # the day before the arrival's own date
    on_the_day = then(ARRIVED)
    assert on_the_day["members_present"] == 1 and on_the_day["as_of"]["title"].startswith("截至2020年7月1日")
    shown_then = city.get("/api/views/site",
                          params={"site_id": "asof-http", "as_of": ARRIVED, "as_of_basis": "recorded"})
    assert shown_then.status_code == 404 and error(shown_then)["code"] == "SITE_NOT_FOUND"  # recorded years later
    assert error(shown_then)["message"].startswith("截至2020年7月1日，按记录时间")  # said of then, not of now
    assert "还不在视图中" in error(shown_then)["message"]
    bad = city.get("/api/views/city", params={"as_of": "yesterday"})
    assert bad.status_code == 422 and error(bad)["field"].startswith("as_of")
    # A sense without a moment: before, the live view answered as if it had been heeded
    alone = city.get("/api/views/city", params={"as_of_basis": "recorded"})
    assert alone.status_code == 422 and error(alone)["field"] == "as_of_basis", alone.text
    assert city.get("/api/views/city").status_code == 200
    for path, params in (("/api/views/city", {}), ("/api/views/site", {"site_id": "asof-http"}),
                         ("/api/views/township", {"township": "bailin"}), ("/api/export/city", {})):
        for when in ("9999-12-31", "9999-12-31T23:59", "1900-01-01"):
            far = city.get(path, params={**params, "as_of": when})
            assert far.status_code == 422, (path, when, far.text)
            assert error(far)["field"] == "as_of" and "查询时点应在 1921-07-01 至" in error(far)["message"]


def test_an_unknown_path_under_the_api_is_a_typed_404(city: httpx.Client):
    for reply in (city.get("/api/views/nothing"), city.post("/api/commands/membership/Nothing", json={}),
                  city.post("/api/commands/nothing/RecordArrival", json={}), city.get("/api/nothing")):
        assert reply.status_code == 404, reply.text
        assert error(reply)["code"] == "NOT_FOUND"


# ---- error shapes ------------------------------------------------------------------------------------------


def test_an_unknown_site_and_a_broken_rule_get_the_domain_code_and_field(city: httpx.Client):
    unknown = post(city, "membership", "RecordArrival", arrival("gw-nowhere", "gw-nowhere-m1"))
    assert unknown.status_code == 404
    assert (error(unknown)["code"], error(unknown)["field"]) == ("SITE_NOT_FOUND", "site_id")
    for name in ("site", "talks", "birthdays"):  # before, the lists answered 200 with nothing for any id
        view = city.get(f"/api/views/{name}", params={"site_id": "gw-nowhere"})
        assert view.status_code == 404 and error(view)["code"] == "SITE_NOT_FOUND", (name, view.text)
    assert city.get("/api/export/talks", params={"site_id": "gw-nowhere"}).status_code == 404

    registered(city, "gw-rules")
    absent = post(city, "membership", "RecordDeparture",
                  {"site_id": "gw-rules", "member_id": "nobody", "departed_on": "2020-08-01"})
    assert absent.status_code == 409
    assert (error(absent)["code"], error(absent)["field"]) == ("MEMBER_NOT_PRESENT", "member_id")
    early = post(city, "membership", "RecordArrival",
                 arrival("gw-rules", "gw-rules-m1", arrived_on="2019-01-01"))
    assert early.status_code == 409
    assert (error(early)["code"], error(early)["field"]) == ("ARRIVAL_BEFORE_START", "arrived_on")
    assert CJK.search(error(early)["message"])
    twice = post(city, "membership", "RegisterSite", site("gw-rules"))
    assert twice.status_code == 409 and error(twice)["field"] == "site_id"


def too_large(reply: httpx.Response) -> None:
    assert reply.status_code == 413, reply.text
    assert error(reply)["code"] == "REQUEST_TOO_LARGE" and CJK.search(error(reply)["message"])


def test_a_request_over_the_size_limit_is_413_or_422_never_5xx(city: httpx.Client):
    body = arrival("gw-big", "gw-big-m1") | {"padding": "x" * 300_000}
    too_large(city.post("/api/commands/membership/RecordArrival", json=body))
    # Just under the bus's limit: read and parsed, refused for what it says.
    body = arrival("gw-big", "gw-big-m1") | {"padding": "x" * (MAX_REQUEST_BYTES - 1000)}
    reply = city.post("/api/commands/membership/RecordArrival", json=body)
    assert reply.status_code == 422 and error(reply)["field"] == "padding"


def raw_exchange(gw: Gateway, head: bytes, parts: Iterator[bytes]) -> bytes:
    """Sends `head`, then `parts` while the server reads, and returns the response's head and body as received; a
    server still waiting for the rest of the body answers nothing, and the read times out."""
    url = httpx.URL(gw.url)
    with socket.create_connection((url.host, url.port), timeout=15) as conn:
        conn.sendall(head)
        for part in parts:
            conn.sendall(part)

        def more() -> bytes:
            chunk = conn.recv(65536)
            assert chunk, "the server closed the connection without an answer"
            return chunk

        received = b""
        while b"\r\n\r\n" not in received:
            received += more()
        head, _, body = received.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += more()
        return head + b"\r\n\r\n" + body


def test_a_large_body_is_refused_before_it_is_read_even_without_a_login(gw: Gateway):
    login = {"user": "city", "password": "x" * (MAX_REQUEST_BYTES + 1)}
    with gw.client() as anonymous:
        too_large(anonymous.post("/api/login", json=login))
        too_large(anonymous.post("/api/commands/liaison/ReportDispute", content=b"{" + b" " * MAX_REQUEST_BYTES))

    # A length of 60 MB announced and not one byte of it sent: refused at once, nothing waited for.
    head = (b"POST /api/commands/liaison/ReportDispute HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Content-Length: 60000000\r\n\r\n")
    reply = raw_exchange(gw, head, iter(()))
    assert reply.startswith(b"HTTP/1.1 413 ") and b'"REQUEST_TOO_LARGE"' in reply, reply[:300]

    # Chunked, with no length: refused once what arrived passes the limit, the body's end never sent.
    head = (b"POST /api/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * 65536
    parts = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_REQUEST_BYTES // len(chunk) + 1))
    reply = raw_exchange(gw, head, parts)
    assert reply.startswith(b"HTTP/1.1 413 ") and b'"REQUEST_TOO_LARGE"' in reply, reply[:300]

    def endless() -> Iterator[bytes]:
        yield b'{"user": "city", "password": "'
        for _ in range(200):  # 13 MB, were it all read
            yield b"x" * 65536

    with gw.client("city") as same:  # as a client library streams it; the session still answers afterwards
        too_large(same.post("/api/commands/liaison/ReportDispute", content=endless()))
        assert same.get("/api/me").status_code == 200


# ---- idempotency ------------------------------------------------------------------------------------------------


def test_the_same_post_twice_with_an_idempotency_key_records_once(gw: Gateway, city: httpx.Client):
    registered(city, "gw-idem")
    key = str(uuid.uuid4())
    first = post(city, "membership", "RecordArrival", arrival("gw-idem", "gw-idem-m1"), key=key)
    again = post(city, "membership", "RecordArrival", arrival("gw-idem", "gw-idem-m1"), key=key)
    assert first.status_code == again.status_code == 200
    one, two = first.json(), again.json()
    assert one["command_id"] == two["command_id"] == key  # a UUID key is the command id itself
    assert (one["duplicate"], two["duplicate"]) == (False, True)
    assert [e["event_id"] for e in one["events"]] == [e["event_id"] for e in two["events"]]

    assert eventually(lambda: members_present(city, "gw-idem") == 1)
    assert eventually(lambda: caught_up(gw)), "the views did not catch up"
    assert members_present(city, "gw-idem") == 1  # one arrival, however often it was posted

    reused = post(city, "membership", "RecordArrival", arrival("gw-idem", "gw-idem-m2"), key=key)
    assert reused.status_code == 409
    assert (error(reused)["code"], error(reused)["field"]) == ("COMMAND_ID_REUSED", "command_id")


def test_a_key_that_says_two_things_is_refused_and_records_nothing(city: httpx.Client):
    """Before, of two Idempotency-Key headers the first was taken (a retry sending the second recorded the fact
    again), and a body's command_id other than the key was overridden without a word."""
    registered(city, "gw-idem4")
    path = "/api/commands/membership/RecordArrival"
    body = arrival("gw-idem4", "gw-idem4-m1")
    two = city.post(path, json=body, headers=[("Idempotency-Key", "dup-a"), ("Idempotency-Key", "dup-b")])
    assert two.status_code == 422 and error(two)["field"] == "Idempotency-Key", two.text
    key = str(uuid.uuid4())
    differs = city.post(path, json={**body, "command_id": str(uuid.uuid4())}, headers={"Idempotency-Key": key})
    assert differs.status_code == 422 and error(differs)["field"] == "command_id", differs.text
    same = city.post(path, json={**body, "command_id": key}, headers={"Idempotency-Key": key})
    assert same.status_code == 200 and same.json()["command_id"] == key, same.text
    assert eventually(lambda: members_present(city, "gw-idem4") == 1)


def test_a_key_that_is_no_uuid_works_and_is_per_identity(city: httpx.Client, gw: Gateway):
    registered(city, "gw-idem2")
    key = "order-42/retry"
    first = post(city, "membership", "RecordArrival", arrival("gw-idem2", "gw-idem2-m1"), key=key)
    again = post(city, "membership", "RecordArrival", arrival("gw-idem2", "gw-idem2-m1"), key=key)
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["command_id"] == first.json()["command_id"]
    uuid.UUID(first.json()["command_id"])
    other = post(city, "membership", "RecordArrival", arrival("gw-idem2", "gw-idem2-m2"), key="order-43/retry")
    assert other.status_code == 200 and other.json()["duplicate"] is False
    # Another person's identical key is another command: keys of two people never collide.
    with gw.client("township.bailin") as township:
        theirs = post(township, "membership", "RecordArrival", arrival("gw-idem2", "gw-idem2-m3"), key=key)
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["duplicate"] is False and theirs.json()["command_id"] != first.json()["command_id"]


def test_nobody_can_spend_another_persons_key_in_advance(city: httpx.Client, gw: Gateway):
    """A key that is no UUID was uuid5 of a published namespace, the login and the key: another login could work
    out the id, record something under it first, and leave the owner's retries COMMAND_ID_REUSED."""
    registered(city, "gw-idem3")
    guessed = str(uuid.uuid5(uuid.UUID("5b0f6f1e-3c2a-4f8e-9d1e-6a7c1b2e9f40"), "township.bailin\nworkforce-06"))
    first = post(city, "membership", "ReportWorkforce", {"site_id": "gw-idem3", "headcount": 10,
                                                          "as_of": "2020-09-01"}, key=guessed)
    assert first.status_code == 200, first.text
    with gw.client("township.bailin") as township:
        own = post(township, "membership", "ReportWorkforce", {"site_id": "gw-idem3", "headcount": 12,
                                                                "as_of": "2020-09-02"}, key="workforce-06")
    assert own.status_code == 200, own.text
    assert own.json()["duplicate"] is False and own.json()["command_id"] != guessed


def test_a_page_of_another_site_cannot_post_with_the_session_cookie(gw: Gateway, city: httpx.Client):
    """Browsers send the session cookie (SameSite=Strict) with a form another port of the same host posts here."""
    registered(city, "gw-csrf")
    cookie = {"gongdi_session": gw.token("city")}
    body = arrival("gw-csrf", "gw-csrf-m1")
    with httpx.Client(base_url=gw.url, cookies=cookie, timeout=15) as browser:
        foreign = browser.post("/api/commands/membership/RecordArrival", json=body,
                               headers={"Origin": "http://127.0.0.1:1"})
        assert foreign.status_code == 403 and error(foreign)["code"] == "CROSS_ORIGIN", foreign.text
        upload = browser.post("/api/import/members", headers={"Origin": "http://evil.example"},
                              files={"file": ("m.csv", b"x", "text/csv")})
        assert upload.status_code == 403 and error(upload)["code"] == "CROSS_ORIGIN"
        own = browser.post("/api/commands/membership/RecordArrival", json=body, headers={"Origin": gw.url})
        assert own.status_code == 200, own.text  # the dashboard's own pages
    assert eventually(lambda: members_present(city, "gw-csrf") == 1)  # the one from the platform's own page


# ---- rights per role ----------------------------------------------------------------------------------------------


def test_a_township_records_on_its_own_sites_only(gw: Gateway, city: httpx.Client):
    registered(city, "gw-bailin", "bailin")
    with gw.client("township.shacheng") as other, gw.client("township.bailin") as own:
        refused = post(other, "membership", "RecordArrival", arrival("gw-bailin", "gw-bailin-m1"))
        assert refused.status_code == 403
        assert (error(refused)["code"], error(refused)["field"]) == ("FORBIDDEN", "OTHER_TOWNSHIP")
        assert post(own, "membership", "RecordArrival", arrival("gw-bailin", "gw-bailin-m1")).status_code == 200
        elsewhere = post(other, "membership", "RegisterSite", site("gw-wrong-township", "bailin"))
        assert elsewhere.status_code == 403 and error(elsewhere)["code"] == "FORBIDDEN"


@pytest.mark.parametrize("user", ["auditor", "dashboard", "department.jiaotong"])
def test_reading_roles_cannot_write(gw: Gateway, city: httpx.Client, user: str):
    s = f"gw-ro-{user.replace('.', '-')}"
    registered(city, s)
    with gw.client(user) as reader:
        assert reader.get("/api/me").json()["data"]["may_write"] is False
        reply = post(reader, "membership", "RecordArrival", arrival(s, f"{s}-m1"))
    assert reply.status_code == 403, reply.text
    assert (error(reply)["code"], error(reply)["field"]) == ("FORBIDDEN", "READ_ONLY_ROLE")
    assert "只能查看，不能记录" in error(reply)["message"]  # before: the bus's subject and "permissions violation"


def test_the_dashboard_sees_figures_but_no_site(gw: Gateway, city: httpx.Client):
    registered(city, "gw-dash")
    assert post(city, "membership", "RecordArrival", arrival("gw-dash", "gw-dash-m1", name="王五")).status_code == 200
    with gw.client("dashboard") as dashboard:
        assert dashboard.get("/api/views/city").status_code == 200
        for view in ("site", "talks", "birthdays"):
            reply = dashboard.get(f"/api/views/{view}", params={"site_id": "gw-dash"})
            assert reply.status_code == 403, (view, reply.text)
            assert error(reply)["code"] == "FORBIDDEN"
        assert "王五" not in dashboard.get("/api/views/city").text


def test_a_department_reads_its_own_department_view_only(gw: Gateway, city: httpx.Client):
    if "department" not in QUERIES:
        pytest.skip("the department query is not in contracts.queries.QUERIES yet")
    registered(city, "gw-dept")  # supervised by 交通运输局 (jiaotong)
    with gw.client("department.jiaotong") as department:
        def sees_the_site() -> bool:
            reply = department.get("/api/views/department", params={"department": "jiaotong"})
            assert reply.status_code == 200, reply.text
            return "gw-dept" in {s["site_id"] for s in reply.json()["data"]["sites"]}

        assert eventually(sees_the_site)
        other = department.get("/api/views/department", params={"department": "zhujian"})
        assert other.status_code == 403 and error(other)["code"] == "FORBIDDEN"
        assert department.get("/api/views/site", params={"site_id": "gw-dept"}).status_code == 200


def test_a_site_secretary_records_on_its_own_site_only(gw: Gateway, city: httpx.Client, servers: Servers):
    registered(city, "gw-sec", "bailin")
    registered(city, "gw-sec-other", "bailin")
    secretary = servers.add_secretary("gw-sec", "bailin")
    assert secretary == "site.bailin.gw-sec"
    # The bus re-reads its accounts on SIGHUP: the new identity may take a moment to be known.
    assert eventually(lambda: gw.login(secretary).status_code == 200, timeout=10)
    with gw.client(secretary) as own:
        me = own.get("/api/me").json()["data"]
        assert (me["role"], me["site"], me["township"], me["may_write"]) == ("site", "gw-sec", "bailin", True)
        assert post(own, "membership", "RecordArrival", arrival("gw-sec", "gw-sec-m1")).status_code == 200
        refused = post(own, "membership", "RecordArrival", arrival("gw-sec-other", "gw-sec-other-m1"))
        assert refused.status_code == 403
        assert (error(refused)["code"], error(refused)["field"]) == ("FORBIDDEN", "OTHER_SITE")
        assert eventually(lambda: members_present(own, "gw-sec") == 1)
        assert own.get("/api/views/site", params={"site_id": "gw-sec-other"}).status_code == 403


# ---- operations: health, metrics, documents -----------------------------------------------------------------


def metric(text: str, sample: str, **labels: str) -> float:
    """The value of `sample` with exactly these labels (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(sample):
            continue
        m = re.fullmatch(rf"{re.escape(sample)}(?:\{{(.*)\}})? (\S+)", line)
        if m and dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or "")) == labels:
            return float(m.group(2))
    return 0.0


def test_metrics_count_requests_by_outcome_and_show_lag_and_dead_letters(gw: Gateway, city: httpx.Client):
    registered(city, "gw-metrics")
    before = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert post(city, "membership", "RecordArrival", arrival("gw-metrics", "gw-metrics-m1")).status_code == 200
    key, again = str(uuid.uuid4()), arrival("gw-metrics", "gw-metrics-m2")
    assert post(city, "membership", "RecordArrival", again, key=key).status_code == 200
    assert post(city, "membership", "RecordArrival", again, key=key).json()["duplicate"]
    assert post(city, "membership", "RecordArrival", arrival("gw-nowhere", "gw-nowhere-m1")).status_code == 404
    reply = httpx.get(f"{gw.url}/metrics", timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    after = reply.text
    name = "gongdi_gateway_requests_total"
    for outcome, n in (("ok", 2), ("duplicate", 1), ("SITE_NOT_FOUND", 1)):
        labels = {"kind": "command", "name": "membership.RecordArrival", "outcome": outcome}
        assert metric(after, name, **labels) - metric(before, name, **labels) == n, outcome
    consumers = re.findall(r'^gongdi_consumer_lag\{service="(\w+)",consumer="(\w+)",stream="(\w+)"\} \d+$',
                           after, re.M)
    assert {("views", "EVT_MEMBERSHIP"), ("activities", "EVT_MEMBERSHIP"), ("liaison", "EVT_MEMBERSHIP")} <= {
        (service, stream) for service, _, stream in consumers}
    letters = re.findall(r'^gongdi_dead_letters\{[^}]*\} (\d+)$', after, re.M)
    assert len(letters) == len(consumers) and set(letters) == {"0"}
    assert metric(after, "gongdi_platform_up") == 1


def test_metrics_count_the_gateways_own_refusals_and_failed_logins(gw: Gateway, city: httpx.Client):
    """Before, a refusal by the gateway itself (no login, a body too large or unreadable, a wrong password) was in no
    count: a run of failed logins showed nowhere."""
    before = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert gw.login("city", "wrong").status_code == 401
    assert httpx.get(f"{gw.url}/api/views/city", timeout=10).status_code == 401
    assert city.post("/api/commands/membership/RecordArrival", content=b"{not json",
                     headers={"content-type": "application/json"}).status_code == 422
    assert city.post("/api/commands/membership/RecordArrival", content=b"x" * (MAX_REQUEST_BYTES + 1),
                     headers={"content-type": "application/json"}).status_code == 413
    after = httpx.get(f"{gw.url}/metrics", timeout=10).text
    name = "gongdi_gateway_requests_total"
    for labels in ({"kind": "login", "name": "login", "outcome": "LOGIN_FAILED"},
                   {"kind": "gateway", "name": "/api/views/city", "outcome": "LOGIN_REQUIRED"},
                   {"kind": "gateway", "name": "/api/commands/membership/RecordArrival",
                    "outcome": "VALIDATION_FAILED"},
                   {"kind": "gateway", "name": "body", "outcome": "REQUEST_TOO_LARGE"}):
        assert metric(after, name, **labels) - metric(before, name, **labels) == 1, labels


def test_health_says_the_platform_answers(gw: Gateway):
    reply = httpx.get(f"{gw.url}/health", timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["ok"] is True and body["bus"] is True and body["dead_letters"] == 0


def test_the_openapi_document_has_every_command_and_query(gw: Gateway):
    document = httpx.get(f"{gw.url}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for service, name in COMMANDS:
        assert "post" in paths[f"/api/commands/{service}/{name}"], (service, name)
    for name in QUERIES:
        operation = paths[f"/api/views/{name}"]["get"]
        if QUERIES[name].key:
            assert QUERIES[name].key in {p["name"] for p in operation["parameters"]}
    for path in ("/api/login", "/api/logout", "/api/me", "/api/live", "/health", "/metrics"):
        assert path in paths


def test_the_asyncapi_document_lists_every_command_and_query_subject(gw: Gateway):
    document = httpx.get(f"{gw.url}/asyncapi.json", timeout=10).json()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    for service, name in COMMANDS:
        assert command_subscription(service, name) in addresses, (service, name)
    for q in QUERIES.values():
        assert q.subject in addresses


def page_urls(html: str) -> list[str]:
    """Every script and stylesheet (and icon) a page loads."""
    return re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["\']?([^"\'\s>]+)', html, re.I)


PAGES = ["/docs", "/asyncapi", "/login", "/city", "/site/gw-page", "/site/gw-page/record", "/township/bailin",
         "/department/jiaotong", "/history/site/gw-page", "/register"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads_only_this_machines_files(gw: Gateway, city: httpx.Client, page: str):
    """No CDN on a government intranet: every script and stylesheet is a local file that is served, and no script
    is inline (the pages' Content-Security-Policy would block it)."""
    reply = city.get(page)
    assert reply.status_code == 200, (page, reply.status_code)
    assert reply.headers["content-type"].startswith("text/html")
    html = reply.text
    urls = page_urls(html)
    foreign = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert not foreign, f"{page} loads {foreign}"
    assert all(u.startswith(("/vendor/", "/static/")) for u in urls), urls
    if page == "/docs":
        assert any(u.startswith("/vendor/swagger-ui-dist/") and u.endswith(".js") for u in urls), urls
    served = {u: city.get(u).status_code for u in urls}
    assert all(status == 200 for status in served.values()), f"{page}: {served}"
    inline = re.findall(r"<script\b(?![^>]*\bsrc=)[^>]*>\s*\S", html, re.I)
    assert not inline, f"{page} has inline scripts, which its CSP refuses: {inline}"
    csp = reply.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp, csp


def test_a_missing_asset_is_404(gw: Gateway):
    # The last: a vendored package that may not be installed (a folder missing) is still a plain 404.
    for path in ("/static/no-such-file.js", "/vendor/echarts/no-such-file.js",
                 "/vendor/@asyncapi/react-component/no-such-file.js"):
        assert httpx.get(f"{gw.url}{path}", timeout=10).status_code == 404, path


# ---- live --------------------------------------------------------------------------------------------------------


async def next_snapshot(events: Any, timeout: float) -> Any:
    while True:
        event = await asyncio.wait_for(anext(events), timeout)
        assert event.event != "failure", event.data
        if event.event == "snapshot":
            return event


async def test_the_live_city_view_pushes_a_new_snapshot_after_a_change(gw: Gateway, city: httpx.Client):
    registered(city, "gw-live")
    # A quiet platform first: no change of an earlier test may still be on its way into the views.
    assert eventually(lambda: members_present(city, "gw-live") == 0 and caught_up(gw))
    async with gw.async_client("city") as client, client.stream("GET", "/api/live", params={"view": "city"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
        started = time.monotonic()
        first = await next_snapshot(events, 30.0)
        print(f"first snapshot after {time.monotonic() - started:.3f}s")
        assert first.id == str(first.data["seq"]) and first.data["view"] == "city"
        members, last_seq = first.data["data"]["members"], first.data["seq"]
        async with gw.async_client("city") as writer:
            sent = time.monotonic()
            reply = await writer.post("/api/commands/membership/RecordArrival",
                                      json=arrival("gw-live", "gw-live-m1"))
            assert reply.status_code == 200, reply.text
        deadline = sent + 30.0
        while True:
            snap = await next_snapshot(events, max(0.1, deadline - time.monotonic()))
            assert snap.data["seq"] > last_seq, "a later snapshot has a higher seq"
            last_seq = snap.data["seq"]
            if snap.data["data"]["members"] == members + 1:
                print(f"new arrival pushed {time.monotonic() - sent:.3f}s after the command's reply")
                break
    # Reconnecting with the last id seen begins with a fresh snapshot, as EventSource relies on.
    async with gw.async_client("city") as client, client.stream(
            "GET", "/api/live", params={"view": "city"}, headers={"Last-Event-ID": str(last_seq)}) as again:
        fresh = await next_snapshot(sse_events(again), 30.0)
        assert fresh.data["seq"] >= last_seq and fresh.data["data"]["members"] == members + 1


async def test_a_live_site_view_the_session_may_not_read_fails_typed(gw: Gateway, city: httpx.Client):
    registered(city, "gw-live-other", "bailin")
    assert eventually(lambda: members_present(city, "gw-live-other") == 0)  # the views know the site
    async with gw.async_client("township.shacheng") as client, client.stream(
            "GET", "/api/live", params={"view": "site", "key": "gw-live-other"}) as r:
        await r.aread()
    # An HTTP status, which ends an EventSource for good: a refusal inside the stream was followed by the browser's
    # reconnect every second, for ever.
    assert r.status_code == 403 and error(r)["code"] == "FORBIDDEN", r.text
    # The view's own parameter name is taken as the key too.
    async with gw.async_client("city") as client, client.stream(
            "GET", "/api/live", params={"view": "site", "site_id": "gw-live-other"}) as r:
        assert r.status_code == 200
        snapshot = await next_snapshot(sse_events(r), 30.0)
    assert snapshot.data["key"] == "gw-live-other"


@pytest.mark.parametrize("params", [{"view": "site"}, {"view": "site", "key": "two words"}],
                         ids=["no-key", "bad-key"])
async def test_a_live_site_view_without_a_valid_key_is_refused_typed(gw: Gateway, params: dict[str, str]):
    """Either a 422 at once, or a stream whose first event is a typed failure: never an empty stream that the
    browser's EventSource would reconnect to for ever."""
    async with gw.async_client("city") as client, client.stream("GET", "/api/live", params=params) as r:
        if r.status_code != 200:
            await r.aread()
            assert r.status_code == 422 and error(r)["code"] == "VALIDATION_FAILED"
            return
        event = await asyncio.wait_for(anext(sse_events(r), None), 10.0)
    assert event is not None, "the stream ended without an event"
    assert event.event == "failure" and event.data["code"] == "VALIDATION_FAILED", event


@pytest.mark.parametrize("last_id", [b"\xb2", b"1" * 5000], ids=["superscript-two", "5000-digits"])
async def test_a_malformed_last_event_id_still_gets_a_snapshot(gw: Gateway, last_id: bytes):
    async with gw.async_client("city") as client, client.stream(
            "GET", "/api/live", params={"view": "city"}, headers={"Last-Event-ID": last_id}) as r:
        assert r.status_code == 200, r.status_code
        snapshot = await next_snapshot(sse_events(r), 30.0)
    assert snapshot.data["view"] == "city"


# ---- the yearly report ----------------------------------------------------------------------------------------------


def test_the_yearly_report_is_made_over_http_for_the_city_and_refused_to_a_township(gw: Gateway, city: httpx.Client):
    """Before, only `gongdi report` on the command line made it."""
    registered(city, "gw-report")
    assert eventually(lambda: members_present(city, "gw-report") is not None)
    page = city.get("/api/report/2020", timeout=120)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html") and page.headers["content-disposition"].startswith(
        "inline")
    assert "数据截至 2020年12月31日（按业务日期）" in page.text
    assert "工地gw-report（白琳镇）" in page.text  # a qualifying site without a branch: one of the 空白点
    pdf = city.get("/api/report/2020", params={"format": "pdf"}, timeout=120)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    with gw.client("township.bailin") as township:
        refused = township.get("/api/report/2020")
    assert refused.status_code == 403 and error(refused)["field"] == "NOT_YOURS"
    assert "只有市工委、审计、大屏可以" in error(refused)["message"]
    later = city.get("/api/report/2099")
    assert later.status_code == 422 and error(later)["field"] == "year"
    # The same years as the CLI's (before: 2000 and on over HTTP, 1921 and on by the CLI)
    assert "年度应在 1922 至" in error(later)["message"]
    early = city.get("/api/report/1921")
    assert early.status_code == 422 and "年度应在 1922 至" in error(early)["message"]

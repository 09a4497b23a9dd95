"""The HTTP gateway in tests: one platform (every service and the gateway) per module, logins, the SSE parser,
and valid command bodies for every command, sent over HTTP as a person would."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.conftest import _fresh, _wait_ready

# Codes a command may get while activities and liaison still learn the site, its members and its branch from
# the membership events (eventually consistent by design): the same command id is sent again until accepted.
CATCHING_UP = {"SITE_NOT_FOUND", "NO_BRANCH", "MEMBER_NOT_PRESENT"}
START, ARRIVED, LATER = "2020-06-01", "2020-07-01", "2020-07-10"


@dataclass
class Gateway:
    """A running platform and its gateway at `url`."""

    url: str
    servers: Servers
    settings: Settings
    supervisor: Supervisor
    tokens: dict[str, str] = field(default_factory=dict)

    def password(self, user: str) -> str:
        return self.servers.credentials.password(user)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until /health answers 200: the gateway listens and every service answers its status."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                reply = httpx.get(f"{self.url}/health", timeout=5)
                if reply.status_code == 200:
                    return
                last = reply.text
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"the gateway was not healthy within {timeout}s: {last!r}")

    def login(self, user: str, password: str | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/api/login", json={"user": user, "password": password or self.password(user)},
                          timeout=15)

    def token(self, user: str) -> str:
        """A session of `user` (one per user and module), from the X-Session-Token header of its login."""
        if user not in self.tokens:
            reply = self.login(user)
            assert reply.status_code == 200, reply.text
            self.tokens[user] = reply.headers["X-Session-Token"]
        return self.tokens[user]

    def client(self, user: str | None = None, timeout: float = 15.0) -> httpx.Client:
        """A client logged in as `user` (Authorization: Bearer), or anonymous."""
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def async_client(self, user: str, timeout: float = 15.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.token(user)}"},
                                 timeout=timeout)


@contextlib.contextmanager
def running_gateway(servers: Servers, root: Path, **more: object) -> Iterator[Gateway]:
    """A fresh database and empty JetStream, schemas set up, every service and the gateway as its own process
    (exactly what the `platform` fixture starts), for a whole module; stopped at the end. `more`: settings."""
    ready = asyncio.run(_fresh(servers)).model_copy(update=more)
    supervisor = Supervisor(ready, root / "logs", say=lambda *_: None, passwords=servers.credentials.nats,
                            database_passwords=servers.credentials.postgres)
    supervisor.setup()
    supervisor.start()
    try:
        asyncio.run(_wait_ready(servers.as_identity(ready, "city")))
        gateway = Gateway(f"http://127.0.0.1:{ready.http_port}", servers, ready, supervisor)
        gateway.wait_healthy()
        yield gateway
    finally:
        supervisor.stop()


def post(client: httpx.Client, service: str, name: str, body: dict[str, Any], key: str | None = None,
         catching_up: float = 0.0) -> httpx.Response:
    """POST a command; with `catching_up` seconds, send it again (same Idempotency-Key, so it is the same command)
    while the service answers that it has not learnt the site, member or branch yet."""
    headers = {"Idempotency-Key": key} if key else {}
    if catching_up and not key:
        headers["Idempotency-Key"] = key = f"retry-{time.monotonic_ns()}"
    deadline = time.monotonic() + catching_up
    while True:
        reply = client.post(f"/api/commands/{service}/{name}", json=body, headers=headers)
        try:
            code = (reply.json().get("error") or {}).get("code")
        except ValueError:  # not JSON at all: the caller's assertion shows it
            return reply
        if code not in CATCHING_UP or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def eventually(check: Callable[[], Any], timeout: float = 20.0, pause: float = 0.05) -> Any:
    """`check()` until it is truthy or the deadline passes; its last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(pause)


# ---- Server-Sent Events -------------------------------------------------------------------------------


@dataclass
class SSE:
    event: str
    id: str | None
    data: Any


async def sse_events(response: httpx.Response) -> AsyncIterator[SSE]:
    """The events of a text/event-stream response as they arrive (comments and `retry:` lines skipped)."""
    event, ident, data = "message", None, []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield SSE(event, ident, orjson.loads("\n".join(data)))
            event, ident, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "id":
                ident = value
            elif name == "data":
                data.append(value)


# ---- valid commands ------------------------------------------------------------------------------------------


def site(site_id: str, township: str = "bailin", department: str = "交通运输局") -> dict[str, Any]:
    return {"site_id": site_id, "name": f"工地{site_id}", "township": township, "department": department,
            "cost_wan": "9000", "planned_months": 30, "start_date": START,
            "units": {"owner": "业主", "design": "设计院", "construction": "施工单位", "supervision": "监理公司"}}


def arrival(site_id: str, member_id: str, name: str = "李四", arrived_on: str = ARRIVED) -> dict[str, Any]:
    return {"site_id": site_id, "member_id": member_id, "arrived_on": arrived_on,
            "member": {"name": name, "gender": "male", "admitted_on": "2005-07-01", "status": "full",
                       "unit_kind": "construction", "unit_name": "施工单位", "job": "worker", "section": "一工段",
                       "home_org": "某村党支部", "relation": "mobile"}}


Step = tuple[str, str, Callable[[], dict[str, Any]]]


def every_command(s: str, talks: Callable[[], str]) -> list[Step]:
    """One accepted command of every command of every service on site `s` (and `s-done`), in an order whose
    rules hold: six members and a branch first. `talks()` gives the id of an open talk obligation of `s`."""
    members = [f"{s}-m{i}" for i in range(1, 7)]
    dispute = {"site_id": s, "kind": "wages", "reported_on": LATER, "parties": ["劳务班组", "农民工"],
               "amount_yuan": "8600", "description": "工资结算争议"}
    letter = {"site_id": s, "letter_id": "l1", "signed_on": LATER, "signatories": ["业主代表", "施工单位代表"],
              "targets": {"quality": "优良", "safety": "零事故", "progress": "按期", "civilised_site": "市级文明工地"}}
    return [
        ("membership", "RegisterSite", lambda: site(s)),
        ("membership", "ReportWorkforce", lambda: {"site_id": s, "headcount": 120, "as_of": ARRIVED}),
        *(("membership", "RecordArrival", lambda m=m: arrival(s, m)) for m in [*members, f"{s}-d1"]),
        ("membership", "RecordDeparture", lambda: {"site_id": s, "member_id": f"{s}-d1", "departed_on": LATER,
                                                   "reason": "分项工程结束"}),
        ("membership", "FormBranch", lambda: {"site_id": s, "name": "工地兼合党支部", "secretary": members[0],
                                              "instructor": "指导员", "liaison": "联络员",
                                              "member_units": ["施工单位", "监理公司"], "formed_on": LATER}),
        ("membership", "FormPartyGroup", lambda: {"site_id": s, "group_id": "g1", "name": "第一党小组",
                                                  "section": "一工段", "leader": members[0],
                                                  "members": members[:3], "formed_on": LATER}),
        ("membership", "RegisterSite", lambda: site(f"{s}-done")),
        ("membership", "CompleteSite", lambda: {"site_id": f"{s}-done", "completed_on": "2021-01-01"}),
        ("membership", "RecordArrival", lambda: arrival(s, f"{s}-mo")),
        ("membership", "RecordContactLost", lambda: {"site_id": s, "member_id": f"{s}-mo", "last_contact_on": LATER}),
        ("membership", "RecordContactRestored", lambda: {"site_id": s, "member_id": f"{s}-mo", "restored_on": LATER}),
        ("membership", "TransferRelation", lambda: {"site_id": s, "member_id": f"{s}-mo", "transferred_on": LATER}),
        # membership development: a path from application to admission, a probationary arrival confirmed
        ("membership", "SubmitApplication", lambda: {
            "site_id": s, "person_id": f"{s}-p1", "name": "王小明", "gender": "male", "birth_date": "1990-01-01",
            "applied_on": "2018-01-01", "unit_kind": "construction", "unit_name": "施工单位", "job": "worker",
            "section": "一工段"}),
        ("membership", "DesignateActivist", lambda: {"site_id": s, "person_id": f"{s}-p1",
                                                     "designated_on": "2019-01-02", "approved_by": "白琳镇党委"}),
        ("membership", "DesignateDevelopmentTarget", lambda: {"site_id": s, "person_id": f"{s}-p1",
                                                              "designated_on": START, "approved_by": "白琳镇党委"}),
        ("membership", "AdmitProbationary", lambda: {"site_id": s, "person_id": f"{s}-p1", "admitted_on": LATER,
                                                     "approved_by": "白琳镇党委"}),
        ("membership", "ExtendProbation", lambda: {"site_id": s, "person_id": f"{s}-p1", "extended_on": LATER,
                                                   "months": 6, "approved_by": "白琳镇党委"}),
        ("membership", "RecordArrival", lambda: {**arrival(s, f"{s}-pr"), "member": {
            **arrival(s, f"{s}-pr")["member"], "status": "probationary"}}),
        ("membership", "ConfirmFullMembership", lambda: {"site_id": s, "person_id": f"{s}-pr",
                                                         "confirmed_on": LATER, "approved_by": "白琳镇党委"}),
        ("activities", "RecordVisit", lambda: {"site_id": s, "kind": "dormitory", "place": "工人宿舍",
                                               "visitor": "党建指导员", "visited_on": LATER,
                                               "members_met": members[:2], "note": "了解生活情况"}),
        ("activities", "RecordSafetyViolation", lambda: {"site_id": s, "member_id": members[3], "occurred_on": LATER,
                                                         "description": "未系安全带"}),
        ("activities", "ReportPersonalChange", lambda: {"site_id": s, "member_id": members[4],
                                                        "reported_on": LATER, "description": "家中老人病重"}),
        ("activities", "RecordTalk", lambda: {"site_id": s, "obligation_id": talks(), "talked_by": "支部书记",
                                              "talked_on": "2020-07-12", "note": "已谈话"}),
        ("activities", "CelebrateBirthdays", lambda: {"site_id": s, "held_on": LATER, "members": [members[5]],
                                                      "cards_sent": 1}),
        ("activities", "DesignateZone", lambda: {"site_id": s, "zone_id": "z1", "name": "党员责任区", "area": "一工段",
                                                 "responsible": members[:2]}),
        ("activities", "FormTeam", lambda: {"site_id": s, "team_id": "t1", "kind": "assault", "name": "党员突击队",
                                            "leader": members[0], "members": members[:3], "purpose": "抢工期"}),
        ("activities", "EstablishPost", lambda: {"site_id": s, "post_id": "p1", "kind": "safety_patrol",
                                                 "holder": members[1], "place": "一工段"}),
        ("activities", "DesignateWorkPoint", lambda: {"site_id": s, "point_id": "w1", "name": "示范工点",
                                                      "designated_on": LATER}),
        ("activities", "RecordActivity", lambda: {"site_id": s, "kind": "social_service", "title": "送医下工地",
                                                  "held_on": LATER, "headcount": 30, "attendees": members[:2],
                                                  "organisation": "红十字会", "service": "义诊"}),
        ("activities", "RecordInnovation", lambda: {"site_id": s, "innovation_id": "i1", "title": "钢筋绑扎小革新",
                                                    "team": "钢筋班组", "recorded_on": LATER,
                                                    "adopted_project_wide": True}),
        ("activities", "TrainBackbone", lambda: {"site_id": s, "member_id": members[2], "trained_on": LATER,
                                                 "skill": "钢筋工"}),
        ("activities", "PromoteToManagement", lambda: {"site_id": s, "member_id": members[2], "promoted_on": LATER,
                                                       "position": "施工员"}),
        ("activities", "RecommendCrewLeader", lambda: {"site_id": s, "person_id": f"{s}-w1", "name": "张大勇",
                                                       "candidate": "worker", "recommended_on": LATER,
                                                       "crew": "钢筋班组"}),
        ("activities", "RecommendForManagement", lambda: {"site_id": s, "member_id": members[1],
                                                          "recommended_on": LATER, "position": "安全员"}),
        ("activities", "AwardPoints", lambda: {"site_id": s, "member_id": members[0], "category": "post_goals",
                                               "points": 5, "awarded_on": LATER, "reason": "完成岗位目标"}),
        ("activities", "AppraiseMembers", lambda: {"site_id": s, "year": 2020, "appraised_on": "2020-12-20",
                                                   "grades": [{"member_id": members[0], "grade": "excellent"},
                                                              {"member_id": members[1], "grade": "qualified"},
                                                              {"member_id": members[2], "grade": "qualified"}]}),
        ("activities", "RetractRecord", lambda: {"site_id": s, "record": "appraisal", "record_id": "2020",
                                                 "reason": "评定有误"}),
        ("activities", "RecordBranchMeeting", lambda: {"site_id": s, "kind": "themed_day", "held_on": LATER,
                                                       "topic": "安全生产主题党日", "attendance": 6,
                                                       "attendees": members[:3]}),
        ("liaison", "HoldJointMeeting", lambda: {
            "site_id": s, "meeting_id": "q1", "held_on": LATER, "parties": ["owner", "township", "construction"],
            "items": [{"item_id": "q1-1", "kind": "dispute", "description": "工资结算", "responsible": "construction",
                       "due_on": "2020-08-01"}], "resolves": []}),
        ("liaison", "SignComplianceLetter", lambda: letter),
        ("liaison", "AssessCompliance", lambda: {"site_id": s, "letter_id": "l1", "assessed_on": "2020-12-31",
                                                 "results": [{"target": "quality", "met": True, "note": ""}]}),
        ("liaison", "SignCoBuildingAgreement", lambda: {"site_id": s, "agreement_id": "a1", "village": "棠园村",
                                                        "signed_on": LATER,
                                                        "items": [{"item_id": "c1", "title": "主题党日"}]}),
        ("liaison", "CompleteCoBuildingItem", lambda: {"site_id": s, "agreement_id": "a1", "item_id": "c1",
                                                       "completed_on": "2020-09-01", "note": "已完成"}),
        ("liaison", "ReportDispute", lambda: {**dispute, "case_id": "k1"}),
        ("liaison", "StartMediation", lambda: {"site_id": s, "case_id": "k1", "mediator": "纠纷调解站",
                                               "started_on": "2020-07-11"}),
        ("liaison", "ResolveMediation", lambda: {"site_id": s, "case_id": "k1", "resolved_on": "2020-07-12",
                                                 "outcome": "当场结清", "amount_settled_yuan": "8600"}),
        ("liaison", "ReportDispute", lambda: {**dispute, "case_id": "k2"}),
        ("liaison", "EscalateToPetition", lambda: {"site_id": s, "case_id": "k2", "escalated_on": "2020-07-12",
                                                   "reason": "对补偿不满"}),
        ("liaison", "RecordVillageSupport", lambda: {"site_id": s, "village": "马洋村", "kind": "road_hardening",
                                                     "given_on": LATER, "quantity": "1200.5", "note": ""}),
    ]

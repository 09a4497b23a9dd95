"""Fuzz of every command subject: typed replies, no restarts, nothing written by a refusal, no dead letters."""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

import asyncpg
import nats.errors
import orjson
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from contracts import activities, liaison, membership
from contracts.subjects import stream_name
from contracts.timeline import city_today
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import settled
from gongdi.ops.supervisor import WRITERS, Supervisor
from gongdi.service.settings import Settings
from services.activities.domain import obligation_id
from tests.conftest import Servers
from tests.integration.conftest import _fresh, _wait_ready
from tests.integration.waiting import eventually

EXAMPLES = 20  # generated per command subject (28 subjects), besides the explicit probes
REPLY_TIMEOUT = 15.0  # seconds: a request unanswered this long is a failure, never retried
CONTRACTS = (membership, activities, liaison)
MODELS = {(c.SERVICE, name): model for c in CONTRACTS for name, model in c.COMMANDS.items()}
CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")

# ---- valid commands: one template per subject, fresh ids from the example's number ---------------

CORE = "fuzz-core"  # the site every site-scoped template writes on (registered, six members, a branch)
MEMBERS = [f"core-{i}" for i in range(1, 7)]
START, ARRIVED, LATER = "2020-06-01", "2020-07-01", "2020-07-10"
NAMESPACE = uuid.UUID("6f0b1c2e-5d0a-4e4b-9a57-0f1e2d3c4b5a")
Step = tuple[str, str, dict[str, Any]]  # (service, command, body without command_id)
Template = tuple[dict[str, Any], list[Step]]  # the command's body and the commands it needs first


def command_id(*parts: object) -> str:
    """Deterministic and unique within a run (each run has its own database)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))


def site(site_id: str) -> dict[str, Any]:
    return {"site_id": site_id, "name": f"工地{site_id}", "township": "bailin", "department": "交通运输局",
            "cost_wan": "9000", "planned_months": 30, "start_date": START,
            "units": {"owner": "业主", "design": "设计院", "construction": "施工单位", "supervision": "监理公司"}}


def arrival(site_id: str, member_id: str) -> dict[str, Any]:
    return {"site_id": site_id, "member_id": member_id, "arrived_on": ARRIVED,
            "member": {"name": "李四", "gender": "male", "admitted_on": "2005-07-01", "status": "full",
                       "unit_kind": "construction", "unit_name": "施工单位", "job": "worker", "section": "一工段",
                       "home_org": "某村党支部", "relation": "mobile"}}


def application(person_id: str, applied_on: str) -> dict[str, Any]:
    return {"site_id": CORE, "person_id": person_id, "name": "王小明", "gender": "male", "birth_date": "1990-01-01",
            "applied_on": applied_on, "unit_kind": "construction", "unit_name": "施工单位", "job": "worker",
            "section": "一工段"}


def step(person_id: str, field: str, day: str) -> dict[str, Any]:
    return {"site_id": CORE, "person_id": person_id, field: day, "approved_by": "白琳镇党委"}


def path(person_id: str, steps: int) -> list[Step]:
    """The first `steps` steps of a development path, dated so that the next one may be LATER."""
    return [("membership", "SubmitApplication", application(person_id, "2018-01-01")),
            ("membership", "DesignateActivist", step(person_id, "designated_on", "2019-01-02")),
            ("membership", "DesignateDevelopmentTarget", step(person_id, "designated_on", START))][:steps]


def probationary(member_id: str) -> dict[str, Any]:
    """A probationary member admitted a year before LATER: the probation ends then (confirmed, or extended, that day;
    an extension years after the end is refused)."""
    body = arrival(CORE, member_id)
    return {**body, "member": {**body["member"], "status": "probationary", "admitted_on": "2019-07-10"}}


def dispute(case_id: str) -> dict[str, Any]:
    return {"site_id": CORE, "case_id": case_id, "kind": "wages", "reported_on": LATER,
            "parties": ["劳务班组", "农民工"], "amount_yuan": "8600", "description": "工资结算争议"}


def agreement(agreement_id: str) -> dict[str, Any]:
    return {"site_id": CORE, "agreement_id": agreement_id, "village": "棠园村", "signed_on": LATER,
            "items": [{"item_id": "c1", "title": "主题党日"}, {"item_id": "c2", "title": "硬化村道"}]}


def letter(letter_id: str) -> dict[str, Any]:
    return {"site_id": CORE, "letter_id": letter_id, "signed_on": LATER, "signatories": ["业主代表", "施工单位代表"],
            "targets": {"quality": "优良", "safety": "零事故", "progress": "按期", "civilised_site": "市级文明工地"}}


def violation(member_id: str, n: int = 0) -> dict[str, Any]:
    # words of its own for every example: the same violation entered again is refused (ALREADY_EXISTS)
    return {"site_id": CORE, "member_id": member_id, "occurred_on": LATER, "description": f"未系安全带（第{n}次）"}


def talk(n: int) -> Template:
    cause = uuid.UUID(command_id(n, 0))  # the prerequisite violation's id: its obligation follows from it
    return ({"site_id": CORE, "obligation_id": str(obligation_id(cause)), "talked_by": "支部书记",
             "talked_on": "2020-07-12", "note": "已谈话\n情绪稳定"},
            [("activities", "RecordSafetyViolation", violation(MEMBERS[5], n))])


TEMPLATES: dict[str, Callable[[int], Template]] = {
    # membership
    "RegisterSite": lambda n: (site(f"s{n}-fz"), []),
    "ReportWorkforce": lambda n: ({"site_id": CORE, "headcount": 120, "as_of": ARRIVED}, []),
    "RecordArrival": lambda n: (arrival(CORE, f"a{n}-fz"), []),
    "RecordDeparture": lambda n: (
        {"site_id": CORE, "member_id": f"d{n}-fz", "departed_on": LATER, "reason": "分项工程结束"},
        [("membership", "RecordArrival", arrival(CORE, f"d{n}-fz"))]),
    "FormBranch": lambda n: (
        {"site_id": f"b{n}-fz", "name": "工地兼合党支部", "secretary": f"b{n}-fz-1", "instructor": "指导员",
         "liaison": "联络员", "member_units": ["施工单位", "监理公司"], "committee": [], "formed_on": LATER},
        [("membership", "RegisterSite", site(f"b{n}-fz")),
         *(("membership", "RecordArrival", arrival(f"b{n}-fz", f"b{n}-fz-{i}")) for i in (1, 2, 3))]),
    "FormPartyGroup": lambda n: (
        {"site_id": CORE, "group_id": f"g{n}-fz", "name": f"第{n}党小组", "section": "一工段", "leader": MEMBERS[0],
         "members": MEMBERS[:3], "formed_on": LATER}, []),
    "CompleteSite": lambda n: ({"site_id": f"c{n}-fz", "completed_on": "2021-01-01"},
                               [("membership", "RegisterSite", site(f"c{n}-fz"))]),
    # membership development (a person of its own for each example, the steps before it first)
    "SubmitApplication": lambda n: (application(f"ap{n}-fz", LATER), []),
    "DesignateActivist": lambda n: (step(f"ac{n}-fz", "designated_on", LATER),
                                    [("membership", "SubmitApplication", application(f"ac{n}-fz", LATER))]),
    "DesignateDevelopmentTarget": lambda n: (step(f"dt{n}-fz", "designated_on", LATER), path(f"dt{n}-fz", 2)),
    "AdmitProbationary": lambda n: (step(f"ad{n}-fz", "admitted_on", LATER), path(f"ad{n}-fz", 3)),
    "ExtendProbation": lambda n: (
        {**step(f"ex{n}-fz", "extended_on", LATER), "months": 6},
        [("membership", "RecordArrival", probationary(f"ex{n}-fz"))]),
    "ConfirmFullMembership": lambda n: (step(f"cf{n}-fz", "confirmed_on", LATER),
                                        [("membership", "RecordArrival", probationary(f"cf{n}-fz"))]),
    # mobility (a member of its own for each example)
    "TransferRelation": lambda n: ({"site_id": CORE, "member_id": f"tr{n}-fz", "transferred_on": LATER},
                                   [("membership", "RecordArrival", arrival(CORE, f"tr{n}-fz"))]),
    "RecordContactLost": lambda n: ({"site_id": CORE, "member_id": f"cl{n}-fz", "last_contact_on": LATER},
                                    [("membership", "RecordArrival", arrival(CORE, f"cl{n}-fz"))]),
    "RecordContactRestored": lambda n: (
        {"site_id": CORE, "member_id": f"cr{n}-fz", "restored_on": LATER},
        [("membership", "RecordArrival", arrival(CORE, f"cr{n}-fz")),
         ("membership", "RecordContactLost", {"site_id": CORE, "member_id": f"cr{n}-fz", "last_contact_on": LATER})]),
    # activities
    "RecordVisit": lambda n: (
        {"site_id": CORE, "kind": "dormitory", "place": "工人宿舍", "visitor": "党建指导员", "visited_on": LATER,
         "members_met": MEMBERS[:2], "note": "了解生活情况\t一切正常"}, []),
    "RecordSafetyViolation": lambda n: (violation(MEMBERS[3], n), []),
    "ReportPersonalChange": lambda n: (
        {"site_id": CORE, "member_id": MEMBERS[4], "reported_on": LATER, "description": f"家中老人病重（{n}）"}, []),
    "RecordTalk": talk,
    # A political birthday once a year per member: a member of its own (admitted in July) for every example.
    "CelebrateBirthdays": lambda n: (
        {"site_id": CORE, "held_on": "2020-07-10", "members": [f"y{n}-fz"], "cards_sent": 1},
        [("membership", "RecordArrival", arrival(CORE, f"y{n}-fz"))]),
    "DesignateZone": lambda n: (
        {"site_id": CORE, "zone_id": f"z{n}-fz", "name": f"党员责任区{n}", "area": "一工段",
         "responsible": MEMBERS[:2]}, []),
    "FormTeam": lambda n: (
        {"site_id": CORE, "team_id": f"t{n}-fz", "kind": "assault", "name": f"党员突击队{n}", "leader": MEMBERS[0],
         "members": MEMBERS[:3], "purpose": "抢工期"}, []),
    "EstablishPost": lambda n: (
        {"site_id": CORE, "post_id": f"p{n}-fz", "kind": "safety_patrol", "holder": MEMBERS[1],
         "place": f"一工段{n}号点"}, []),
    "DesignateWorkPoint": lambda n: (
        {"site_id": CORE, "point_id": f"w{n}-fz", "name": "示范工点", "designated_on": LATER}, []),
    "RecordActivity": lambda n: (
        {"site_id": CORE, "kind": "social_service", "title": "送医下工地", "held_on": LATER, "headcount": 30,
         "attendees": MEMBERS[:2], "organisation": "红十字会", "service": "义诊"}, []),
    "RecordInnovation": lambda n: (
        {"site_id": CORE, "innovation_id": f"i{n}-fz", "title": "钢筋绑扎小革新", "team": "钢筋班组",
         "recorded_on": LATER, "adopted_project_wide": True}, []),
    # 三培两推, points, appraisal, meetings (a member or a branch of its own where a rule counts per person or year)
    "TrainBackbone": lambda n: ({"site_id": CORE, "member_id": f"bb{n}-fz", "trained_on": LATER, "skill": "钢筋工"},
                                [("membership", "RecordArrival", arrival(CORE, f"bb{n}-fz"))]),
    "PromoteToManagement": lambda n: (
        {"site_id": CORE, "member_id": f"pm{n}-fz", "promoted_on": LATER, "position": "施工员"},
        [("membership", "RecordArrival", arrival(CORE, f"pm{n}-fz")),
         ("activities", "TrainBackbone", {"site_id": CORE, "member_id": f"pm{n}-fz", "trained_on": LATER,
                                          "skill": "钢筋工"})]),
    "RecommendCrewLeader": lambda n: (
        {"site_id": CORE, "person_id": f"cw{n}-fz", "name": "张大勇", "candidate": "worker", "recommended_on": LATER,
         "crew": "钢筋班组"}, []),
    "RecommendForManagement": lambda n: (
        {"site_id": CORE, "member_id": f"rm{n}-fz", "recommended_on": LATER, "position": "安全员"},
        [("membership", "RecordArrival", arrival(CORE, f"rm{n}-fz"))]),
    "AwardPoints": lambda n: (
        {"site_id": CORE, "member_id": f"pt{n}-fz", "category": "post_goals", "points": 5, "awarded_on": LATER,
         "reason": "完成岗位目标"},
        [("membership", "RecordArrival", arrival(CORE, f"pt{n}-fz"))]),
    "AppraiseMembers": lambda n: (
        {"site_id": f"b{n}-ap", "year": 2020, "appraised_on": "2020-12-20",
         "grades": [{"member_id": f"b{n}-ap-1", "grade": "excellent"},
                    {"member_id": f"b{n}-ap-2", "grade": "qualified"},
                    {"member_id": f"b{n}-ap-3", "grade": "qualified"}]},
        [("membership", "RegisterSite", site(f"b{n}-ap")),
         *(("membership", "RecordArrival", arrival(f"b{n}-ap", f"b{n}-ap-{i}")) for i in (1, 2, 3)),
         ("membership", "FormBranch",
          {"site_id": f"b{n}-ap", "name": "工地兼合党支部", "secretary": f"b{n}-ap-1", "instructor": "指导员",
           "liaison": "联络员", "member_units": ["施工单位", "监理公司"], "committee": [], "formed_on": LATER})]),
    "RecordBranchMeeting": lambda n: (
        {"site_id": CORE, "kind": "themed_day", "held_on": LATER, "topic": "安全生产主题党日", "attendance": 6,
         "attendees": MEMBERS[:3]}, []),
    # 撤销记录: the meeting recorded as its first step (a meeting's id is the command id that recorded it)
    "RetractRecord": lambda n: (
        {"site_id": CORE, "record": "meeting", "record_id": str(command_id(n, 0)), "reason": "重复提交"},
        [("activities", "RecordBranchMeeting", {"site_id": CORE, "kind": "lecture", "held_on": LATER,
                                                "topic": f"党课{n}", "attendance": 3})]),
    # liaison
    "HoldJointMeeting": lambda n: (
        {"site_id": CORE, "meeting_id": f"q{n}-fz", "held_on": LATER,
         "parties": ["owner", "township", "construction"],
         "items": [{"item_id": f"q{n}-fz-1", "kind": "dispute", "description": "工资结算",
                    "responsible": "construction", "due_on": "2020-08-01"},
                   {"item_id": f"q{n}-fz-2", "kind": "risk", "description": "汛期边坡", "responsible": "owner",
                    "due_on": "2020-07-10"}],
         "resolves": [f"q{n}-fz-2"]}, []),  # an item raised and settled in the same meeting
    "SignComplianceLetter": lambda n: (letter(f"l{n}-fz"), []),
    "AssessCompliance": lambda n: (
        {"site_id": CORE, "letter_id": f"l{n}-fz", "assessed_on": "2020-12-31",
         "results": [{"target": "quality", "met": True, "note": ""},
                     {"target": "safety", "met": False, "note": "一起轻伤"}]},
        [("liaison", "SignComplianceLetter", letter(f"l{n}-fz"))]),
    "SignCoBuildingAgreement": lambda n: (agreement(f"ag{n}-fz"), []),
    "CompleteCoBuildingItem": lambda n: (
        {"site_id": CORE, "agreement_id": f"ag{n}-fz", "item_id": "c1", "completed_on": "2020-09-01", "note": "已完成"},
        [("liaison", "SignCoBuildingAgreement", agreement(f"ag{n}-fz"))]),
    "ReportDispute": lambda n: (dispute(f"k{n}-fz"), []),
    "StartMediation": lambda n: (
        {"site_id": CORE, "case_id": f"k{n}-fz", "mediator": "纠纷调解站", "started_on": "2020-07-11"},
        [("liaison", "ReportDispute", dispute(f"k{n}-fz"))]),
    "ResolveMediation": lambda n: (
        {"site_id": CORE, "case_id": f"k{n}-fz", "resolved_on": "2020-07-12", "outcome": "当场结清",
         "amount_settled_yuan": "8600"},
        [("liaison", "ReportDispute", dispute(f"k{n}-fz")),
         ("liaison", "StartMediation", {"site_id": CORE, "case_id": f"k{n}-fz", "mediator": "纠纷调解站",
                                        "started_on": "2020-07-11"})]),
    "EscalateToPetition": lambda n: (
        {"site_id": CORE, "case_id": f"k{n}-fz", "escalated_on": "2020-07-12", "reason": "对补偿不满"},
        [("liaison", "ReportDispute", dispute(f"k{n}-fz"))]),
    "RecordVillageSupport": lambda n: (
        {"site_id": CORE, "village": "马洋村", "kind": "road_hardening", "given_on": LATER, "quantity": "1200.5",
         "note": ""}, []),
}
assert set(TEMPLATES) == {name for _, name in MODELS}, "every command subject has a valid template"

# ---- hostile values ------------------------------------------------------------------------------


def nested(depth: int, leaf: Any, wrap: Callable[[Any], Any]) -> Any:
    return reduce(lambda inner, _: wrap(inner), range(depth), leaf)


SOON = (city_today() + dt.timedelta(days=8)).isoformat()  # always a day too far ahead, whatever the date
HOSTILE_VALUES: list[Any] = [
    # wrong types and numbers out of every range
    None, True, False, 0, -1, 1.5, -(2**63), 2**63, 2**64, 10**30, -(10**30), 1e308, -1e308, 5e-324,
    float("nan"), float("inf"), float("-inf"), [], {}, [None], [""], [{}], {"a": 1}, [1, 2, 3],
    # strings no record holds
    "", " ", "\t", "\x00", "a\x00b", "\x07\x1b[2J", "\x7f", "\x85", "\u202e工地", "\u2066x\u2069", "\u061c",
    "\u200f", "\u2028", "\ufeff", "\ud800", "a\udc00b", "\U0010ffff", "\uffff",
    "NaN", "-NaN", "Infinity", "-0", "1e308", "1e-400", "1E+6", "0.001", "99999999999999999999.99", "1_000",
    "0001-01-01", "9999-12-31", "2020-02-30", "2020-13-01", "1921-06-30", "2020-06-01T12:00:00+08:00",
    "20200601", SOON, "00000000-0000-0000-0000-000000000000", "not-a-uuid", "13800138000",
    "350982199001011234", "张三35098219900101123X", "１２３４５６７８９０１", "'; DROP TABLE membership.events; --",
    "<script>alert(1)</script>", "${jndi:ldap://x}", "%s%n%x", "../../etc/passwd", "A", "-a", "a" * 64,
    "x" * 501, "名" * 101, "x" * 300_000,  # the last is over the request limit
    # plausible extremes: accepted where the rules allow, and then carried through to the views
    1_000_000, 240, "10000000", "100000000", "0.01", "1921-07-01", "a", "名" * 100, "说明\n" * 100,
    [f"单位{i}" for i in range(50)], [f"单位{i}" for i in range(51)], [f"m{i}" for i in range(501)],
    ["x"] * 600, ["a", "a"],
    # deep nesting
    nested(300, 1, lambda inner: [inner]), nested(300, 1, lambda inner: {"a": inner}),
]
HOSTILE_CHARS = st.one_of(
    st.sampled_from(["\x00", "\x01", "\x1f", "\x7f", "\x9f", "\u202a", "\u202e", "\u2066", "\u2069", "\u200e",
                     "\ufeff", "\u061c", "\u2028", "\n", "\r", "\t", "\\", '"', "\U0001f600"]),
    st.characters(categories=["Cc", "Cf", "Cs", "Co", "Zl", "Zp"]),
)
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.integers(),
    st.floats(),
    st.text(HOSTILE_CHARS, max_size=12),
    st.dates().map(dt.date.isoformat),
)
RAW_BODIES = [
    b"", b" ", b"\x00", b"\xff\xfe\xfd", b"\xc0\x80", b"\xed\xa0\x80", b"\x80abc", b"{", b"}", b"null", b"true",
    b"0", b"-1", b"1e999", b"NaN", b'"text"', b"[]", b"[{}]", b"{}", b'{"command_id": null}', b'{"a":1}{"b":2}',
    b"\xef\xbb\xbf{}", b"{'single': 'quotes'}", b'{"command_id": "\\ud800"}', b'{"x": "\\u0000"}',
    b"[" * 100_000, b'{"a":' * 50_000, b" " * 300_000,
]

# ---- inputs from the command's JSON schema -----------------------------------------------------------

TEXT_CHARS = st.one_of(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), st.characters(codec="utf-8"))


def loose(schema: dict[str, Any], defs: dict[str, Any], sites: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Mostly what the schema describes, one value in ten hostile."""
    return st.integers(0, 9).flatmap(lambda i: HOSTILE if i == 0 else from_schema(schema, defs, sites))


def from_schema(schema: dict[str, Any], defs: dict[str, Any], sites: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """A strategy for JSON values from a pydantic JSON schema: objects, strings (formats and patterns), integers,
    numbers, arrays, enums, $refs into $defs, anyOf (nullable included). A `site_id` is one of `sites` half the
    time, so that generated commands get past SITE_NOT_FOUND."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return st.one_of([from_schema(s, defs) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties")
        if props:
            required = set(schema.get("required", ()))
            fields = {k: st.one_of(st.sampled_from(sites), loose(v, defs)) if k == "site_id" and sites
                      else loose(v, defs) for k, v in props.items()}
            return st.fixed_dictionaries({k: v for k, v in fields.items() if k in required},
                                         optional={k: v for k, v in fields.items() if k not in required})
        keys = from_schema(schema["propertyNames"], defs) if "propertyNames" in schema else st.text(TEXT_CHARS)
        values = schema.get("additionalProperties")
        return st.dictionaries(keys, loose(values, defs) if isinstance(values, dict) else HOSTILE, max_size=5)
    if kind == "array":
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", low + 4), low + 4)
        return st.lists(loose(schema.get("items", {}), defs), min_size=low, max_size=high)
    if kind == "string":
        if schema.get("format") == "uuid":
            return st.uuids().map(str)
        if schema.get("format") == "date":
            return st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)).map(dt.date.isoformat)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        low = schema.get("minLength", 0)
        return st.text(TEXT_CHARS, min_size=low, max_size=max(low, min(schema.get("maxLength", 40), 40)))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        ints = st.integers(None if low is None else int(low), None if high is None else int(high))
        if kind == "integer":
            return ints
        return st.one_of(ints, st.floats(low, high, allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return HOSTILE


# ---- one example: what to send --------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every place in a template body, containers included (not the root)."""
    out: list[Path_] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        out.append((*prefix, key))
        out += paths(inner, (*prefix, key))
    return out


def at(body: Any, path: Path_) -> Any:
    return reduce(lambda inner, key: inner[key], path, body)


@dataclass(frozen=True)
class Mutation:
    op: str  # replace | insert | delete | extra | wrap (value: a name in WRAPS)
    path: Path_ = ()
    value: Any = None
    where: float = 0.0  # insert: where in the string, as a fraction of its length

    def __repr__(self) -> str:
        return f"Mutation({self.op}, {self.path}, {short(self.value)}, {self.where})"

    def apply(self, body: Any) -> Any:
        if self.op == "wrap":
            return WRAPS[self.value](body)
        try:
            parent, key = at(body, self.path[:-1]), self.path[-1] if self.path else None
            if self.path:
                parent[key]  # still there after an earlier mutation (a delete, a replace)?
        except (KeyError, IndexError, TypeError):
            return body
        if self.op == "replace":
            parent[key] = self.value
        elif self.op == "insert" and isinstance(parent[key], str):
            text = parent[key]
            cut = int(len(text) * self.where)
            parent[key] = text[:cut] + self.value + text[cut:]
        elif self.op == "delete":
            del parent[key]
        elif self.op == "extra":
            target = at(body, self.path)
            if isinstance(target, dict):
                target[self.value[0]] = self.value[1]
        return body


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:100]}…({len(text)} chars)"


@dataclass(frozen=True)
class Plan:
    kind: str  # valid | mutate | encoding | schema | raw
    mutations: tuple[Mutation, ...] = ()
    body: Any = None  # schema: the generated body; raw: the bytes
    encoding: str = "utf8"
    order: int = 0  # a seed for the order of the top-level keys (0: the template's)
    indent: int | None = None

    def __repr__(self) -> str:
        return (f"Plan({self.kind}, {self.mutations}, {short(self.body)}, {self.encoding}, order={self.order},"
                f" indent={self.indent})")

    def encode(self, value: Any) -> bytes:
        if self.order and isinstance(value, dict):
            keys = list(value)
            random.Random(self.order).shuffle(keys)
            value = {k: value[k] for k in keys}
        return encode(value, self.encoding, self.indent)


def encode(value: Any, encoding: str, indent: int | None = None) -> bytes:
    """JSON as a hostile client may write it: NaN and Infinity literals, lone surrogates escaped or raw."""
    text = json.dumps(value, ensure_ascii=encoding == "ascii", allow_nan=True, indent=indent)
    if encoding == "utf16":
        return text.encode("utf-16", "surrogatepass")
    data = text.encode("utf-8", "surrogatepass")
    if encoding == "bom":
        return b"\xef\xbb\xbf" + data
    if encoding == "truncated":
        return data[: len(data) // 2]
    if encoding == "trailing":
        return data + b" }garbage"
    if encoding == "duplicate-key" and data.startswith(b"{"):
        return b'{"command_id": 1, ' + data[1:]
    return data


WRAPS: dict[str, Callable[[Any], Any]] = {  # the whole body turned into something else
    "array": lambda body: [body], "envelope": lambda body: {"command": body},
    "string": lambda body: json.dumps(body, ensure_ascii=False),
    "deep": lambda body: nested(250, body, lambda inner: [inner]), "keys": lambda body: list(body),
}


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight says."""
    picks = [i for i, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(picks).flatmap(lambda i: choices[i][1])


DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AMOUNT = re.compile(r"^\d+(\.\d+)?$")
SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAME_CHARS = st.one_of(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), st.sampled_from("abXY09 -·()（）'&"))
NAMES = st.one_of(st.text(NAME_CHARS, min_size=1, max_size=100),
                  st.sampled_from(["名" * 100, "  前后空格  ", "第1工段", "O'Brien & Co. <b>", "a"]))


def plausible(value: Any, ids: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Another value of the same kind as a template's: the rules may accept it, and then the views apply it. An id
    may become one of `ids`."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.integers(0, 1_000_000), st.sampled_from([0, 1, 999_999, 1_000_000, 240]))
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        pool = [*value, *(i for i in ids if i not in value)]
        return st.lists(st.one_of(st.sampled_from(pool), plausible(value[0], ids)), min_size=1, max_size=50,
                        unique=True)
    if not isinstance(value, str):
        return st.just(value)
    if DATE.match(value):
        return st.one_of(st.dates(dt.date(1921, 7, 1), dt.date(2024, 12, 31)).map(dt.date.isoformat),
                         st.sampled_from(["1921-07-01", START, ARRIVED, "2024-02-29"]))
    if UUID_TEXT.match(value):
        return st.uuids().map(str)
    if AMOUNT.match(value):
        return st.one_of(st.decimals(Decimal("0.01"), Decimal(100_000_000), places=2).map(str),
                         st.sampled_from(["0.01", "10000000", "100000000", "1E+3", "1000.00", "007"]))
    if re.match(SLUG, value):
        return st.one_of(st.from_regex(SLUG, fullmatch=True), st.sampled_from([value, *ids]))
    return NAMES


def texts(shape: dict[str, Any]) -> list[Path_]:
    """Where a template holds free text (names, notes), not ids, dates, amounts or codes."""
    return [p for p in paths(shape) if isinstance(value := at(shape, p), str)
            and not (DATE.match(value) or UUID_TEXT.match(value) or AMOUNT.match(value) or re.match(SLUG, value))]


def mutations(shape: dict[str, Any], ids: tuple[str, ...]) -> st.SearchStrategy[Mutation]:
    places = paths(shape)
    strings = [p for p in places if isinstance(at(shape, p), str)]
    free = texts(shape)
    hostile_text = st.one_of(HOSTILE_CHARS, st.text(HOSTILE_CHARS, min_size=1, max_size=4))
    keys = [p for p in places if not isinstance(p[-1], int)]
    dicts = [(), *(p for p in places if isinstance(at(shape, p), dict))]
    extra_keys = st.one_of(st.sampled_from(["actor", "site_id ", "\x00", "\ud800", "__proto__", "x" * 1000]),
                           st.text(max_size=8))
    return weighted(
        (3, st.sampled_from([p for p in places if p != ("command_id",)]).flatmap(
            lambda p: st.builds(Mutation, st.just("replace"), st.just(p), plausible(at(shape, p), ids)))),
        (3, st.builds(Mutation, st.just("replace"), st.sampled_from(places), HOSTILE)),
        # Names and notes are where unseen characters hide: most insertions go there.
        (3, st.builds(Mutation, st.just("insert"), st.sampled_from(free or strings), hostile_text, st.floats(0, 1))),
        (1, st.builds(Mutation, st.just("insert"), st.sampled_from(strings), hostile_text, st.floats(0, 1))),
        (1, st.builds(Mutation, st.just("delete"), st.sampled_from(keys))),
        (1, st.builds(Mutation, st.just("extra"), st.sampled_from(dicts), st.tuples(extra_keys, HOSTILE))),
        (1, st.builds(Mutation, st.just("wrap"), value=st.sampled_from(sorted(WRAPS)))),
    )


def probes(name: str) -> list[Plan]:
    """Explicit examples: the template as it is, and a NUL and a direction override in each of its free texts."""
    shape = TEMPLATES[name](0)[0]
    return [Plan("valid"), *(Plan("mutate", (Mutation("insert", p, "\x00\u202e", 0.5),)) for p in texts(shape))]


def plans(service: str, name: str) -> st.SearchStrategy[Plan]:
    """Valid commands, valid ones with one or two things changed, bodies from the schema, and raw bytes.

    Activities and liaison commands may name the core site and its members anywhere (they reach the rules that
    way); membership commands never do, since they could move a core member away or complete the core site."""
    schema = MODELS[service, name].model_json_schema()
    ids = () if service == "membership" else (CORE, *MEMBERS)
    shape = {"command_id": command_id(0), **TEMPLATES[name](0)[0]}
    encodings = st.sampled_from(["utf8", "ascii", "utf16", "bom", "truncated", "trailing", "duplicate-key"])
    return weighted(
        # Key order and layout vary a valid command without making it invalid (and keep it from repeating).
        (2, st.builds(Plan, st.just("valid"), encoding=st.sampled_from(["utf8", "ascii"]),
                      order=st.integers(0, 2**16), indent=st.sampled_from([None, 0, 2]))),
        (6, st.builds(Plan, st.just("mutate"), st.lists(mutations(shape, ids), min_size=1, max_size=2).map(
            lambda ms: tuple(sorted(ms, key=lambda m: m.op == "wrap"))),  # a wrap comes last
            encoding=st.sampled_from(["utf8", "ascii"]), order=st.integers(0, 2**16))),
        (1, st.builds(Plan, st.just("encoding"), encoding=encodings)),  # a valid body, badly encoded
        (2, st.builds(Plan, st.just("schema"), body=from_schema(schema, schema.get("$defs", {}), ids[:1]),
                      encoding=encodings)),
        (1, st.builds(Plan, st.just("raw"), body=st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=64)))),
    )


# ---- the running platform --------------------------------------------------------------------------

COUNTS = "SELECT " + ", ".join(f"(SELECT count(*) FROM {w}.events)" for w in WRITERS)
READERS = {"views": WRITERS, "activities": ["membership"], "liaison": ["membership"]}  # consumer → its sources
QUIET = "SELECT " + ", ".join(
    [f"(SELECT count(*) FROM {w}.events) AS {w}" for w in WRITERS]
    + [f"(SELECT coalesce(max(stream_seq), 0) FROM {r}.consumer_checkpoint WHERE consumer = '{r}'"
       f" AND stream = '{stream_name(s)}') AS {r}_{s}" for r, sources in READERS.items() for s in sources])


@dataclass
class Rig:
    settings: Settings
    client: GongdiClient
    pool: asyncpg.Pool
    supervisor: Supervisor
    pids: dict[str, int]
    n: int = 0
    accepted: dict[str, int] = field(default_factory=dict)

    async def counts(self) -> dict[str, int]:
        row = await self.pool.fetchrow(COUNTS)
        return dict(zip(WRITERS, row, strict=True))

    async def quiet(self) -> dict[str, int] | None:
        """The event counts when every event recorded so far has been passed by the views and by the policies
        that read its stream (one round trip), else None."""
        row = await self.pool.fetchrow(QUIET)
        counts = {w: row[w] for w in WRITERS}
        return counts if all(row[f"{r}_{s}"] == counts[s] for r, sources in READERS.items() for s in sources) else None

    async def settle(self) -> dict[str, int]:
        counts = await eventually(self.quiet, timeout=20)
        assert counts, "the views or the policies did not catch up"
        return counts

    async def send(self, service: str, name: str, body: bytes, what: str) -> dict[str, Any]:
        try:
            reply = await self.client.send_raw(service, name, body)
        except (nats.errors.TimeoutError, TimeoutError):
            pytest.fail(f"{service}.{name}: no reply within {REPLY_TIMEOUT}s to {what}")
        except nats.errors.NoRespondersError:
            pytest.fail(f"{service}.{name}: no responder (a process died?) for {what}")
        problem = untyped(reply)
        assert problem is None, f"{service}.{name}: {problem} for {what}: {short(reply)}"
        return reply

    async def step(self, service: str, name: str, body: dict[str, Any], cid: str) -> None:
        """A prerequisite of a template: it must be accepted."""
        reply = await self.send(service, name, orjson.dumps({"command_id": cid, **body}), f"prerequisite {body}")
        assert reply["ok"], f"prerequisite {service}.{name} refused: {reply['error']}"

    async def example(self, service: str, name: str, plan: Plan) -> None:
        self.n += 1
        n = self.n
        body, steps = TEMPLATES[name](n)
        body = {"command_id": command_id(n), **body}
        if plan.kind in ("valid", "mutate", "encoding"):
            for i, (step_service, step_name, step_body) in enumerate(steps):
                if i and steps[i - 1][0] != step_service:
                    await self.settle()  # another service learns of the step before from its events
                await self.step(step_service, step_name, step_body, command_id(n, i))
        if plan.kind == "raw":
            raw = plan.body
        elif plan.kind == "schema":
            raw = plan.encode(plan.body)
        else:
            raw = plan.encode(reduce(lambda b, m: m.apply(b), plan.mutations, copy.deepcopy(body)))
        what = f"{plan!r} sent as {short(raw)}"
        before = await self.settle()  # nothing on its way: the counts move only by this command
        reply = await self.send(service, name, raw, what)
        after = await self.counts()
        if plan.kind == "valid":
            assert reply["ok"], f"{service}.{name}: a valid command was refused: {reply['error']} ({what})"
        if not reply["ok"]:
            assert reply["error"]["code"] != "INTERNAL", f"{service}.{name}: crashed on {what}: {reply}"
            assert after == before, f"{service}.{name}: refusal {reply['error']['code']} wrote events: {what}"
            return
        written = 0 if reply.get("duplicate") else len(reply["events"])
        assert after[service] - before[service] == written, f"{service}.{name}: {written} events announced"
        self.accepted[name] = self.accepted.get(name, 0) + 1

    async def check_health(self) -> None:
        """No process restarted, the views settled with no dead letter in any consumer's schema."""
        for child in self.supervisor.children:
            assert child.proc is not None and child.proc.poll() is None, f"{child.name} exited"
            assert child.proc.pid == self.pids[child.name] and child.restarts == 0, f"{child.name} restarted"
        await self.settle()
        assert await eventually(lambda: settled(self.settings, self.client))
        for schema in READERS:
            dead = await self.pool.fetch(f"SELECT stream, stream_seq, error FROM {schema}.dead_letters")
            assert not dead, f"dead letters in {schema}: {[dict(r) for r in dead]}"


def untyped(reply: Any) -> str | None:
    """Why a reply is not one of the two typed shapes, or None."""
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        return "no {ok: bool} object"
    if reply["ok"]:
        return None if isinstance(reply.get("events"), list) else "accepted without an events list"
    error = reply.get("error")
    if not isinstance(error, dict):
        return "refused without an error object"
    if not isinstance(error.get("code"), str) or not CODE.match(error["code"]):
        return f"error code {error.get('code')!r} is not an upper-case code"
    if not isinstance(error.get("message"), str) or not error["message"]:
        return "error without a message"
    return None


async def open_rig(settings_: Settings, admin: Settings, supervisor: Supervisor) -> Rig:
    client = await GongdiClient.connect(admin, timeout=REPLY_TIMEOUT)
    pool = await asyncpg.create_pool(settings_.database_url, min_size=1, max_size=4)
    assert pool is not None
    pids = {c.name: c.proc.pid for c in supervisor.children if c.proc is not None}
    rig = Rig(settings_, client, pool, supervisor, pids)
    # The core site: six full members and a branch, learnt by activities and liaison before any example.
    await rig.step("membership", "RegisterSite", site(CORE), command_id("core"))
    for i, member in enumerate(MEMBERS):
        await rig.step("membership", "RecordArrival", arrival(CORE, member), command_id("core", i))
    await rig.step("membership", "FormBranch", TEMPLATES["FormBranch"](0)[0] | {"site_id": CORE,
                                                                                "secretary": MEMBERS[0]},
                   command_id("core", "branch"))
    await rig.settle()
    return rig


@pytest.fixture(scope="module")
def rig(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rig, asyncio.Runner]]:
    """One platform for the whole module, driven from a loop this fixture owns (hypothesis calls are sync)."""
    ready = asyncio.run(_fresh(servers))
    logs: Path = tmp_path_factory.mktemp("fuzz") / "logs"
    supervisor = Supervisor(ready, logs, say=lambda *_: None, passwords=servers.credentials.nats,
                            database_passwords=servers.credentials.postgres)
    supervisor.setup()
    supervisor.start()
    try:
        admin = servers.as_identity(ready, "city")
        asyncio.run(_wait_ready(admin))
        with asyncio.Runner() as runner:
            it = runner.run(open_rig(ready, admin, supervisor))
            try:
                yield it, runner
            finally:
                runner.run(it.client.close())
                runner.run(it.pool.close())
    finally:
        supervisor.stop()


@pytest.mark.parametrize(("service", "name"), list(MODELS), ids=[f"{s}.{n}" for s, n in MODELS])
def test_every_request_is_answered_typed_and_a_refusal_writes_nothing(rig: tuple[Rig, asyncio.Runner],
                                                                       service: str, name: str):
    platform, runner = rig

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
              phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(plan=plans(service, name))
    def fuzz(plan: Plan) -> None:
        runner.run(platform.example(service, name, plan))

    for plan in probes(name):  # at least one accepted command per subject, whatever is drawn
        fuzz = example(plan=plan)(fuzz)
    fuzz()
    runner.run(platform.check_health())
    assert platform.accepted.get(name, 0) > 0, f"{service}.{name}: no example was accepted"

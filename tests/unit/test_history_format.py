"""History without servers: the query contract, the SQL it becomes, the kit's refusals before any database access,
how causes are linked, and how a fixed history prints in Chinese."""
from __future__ import annotations

import uuid

import orjson
import pytest
from pydantic import ValidationError

from contracts import activities, liaison, membership
from contracts.history import (
    EVENT_LABELS,
    MAX_IDS,
    History,
    HistoryQuery,
    history_subject,
    may_ask_history,
    may_read_event,
)
from contracts.identity import Identity, Role
from gongdi.ops.accounts import platform_users
from gongdi.ops.history import (
    Names,
    actor_label,
    format_history,
    happened,
    link,
    named_members,
    reading,
    summary,
)
from gongdi.service.process import Request
from gongdi.store.history import matching, readable
from services.liaison.app import LIAISON


def test_every_event_type_has_a_chinese_name():
    types = {*membership.EVENTS, *activities.EVENTS, *liaison.EVENTS}
    assert types <= EVENT_LABELS.keys()
    assert all(EVENT_LABELS[t] and not EVENT_LABELS[t].isascii() for t in types)


def test_a_query_names_a_subject_or_follows_event_ids():
    assert HistoryQuery.model_validate({"kind": "member", "id": "m-1"}).id == "m-1"
    assert len(HistoryQuery.model_validate({"kind": "caused_by", "ids": [str(uuid.uuid4())]}).ids) == 1
    for bad in ({"kind": "site"}, {"kind": "site", "id": "Not A Slug"}, {"kind": "township", "id": "bailin"},
                {"kind": "caused_by", "id": "x"}, {"kind": "closing", "ids": []}, {"kind": "case", "id": "k",
                                                                                   "extra": 1},
                {"kind": "caused_by", "ids": [str(uuid.uuid4()) for _ in range(MAX_IDS + 1)]},
                {"kind": "naming", "members": []}, {"kind": "naming", "id": "m1", "members": ["m1"]},
                {"kind": "naming", "members": ["Not A Slug"]}, {"kind": "member", "id": "m1", "members": ["m2"]},
                {"kind": "caused_by", "ids": [str(uuid.uuid4())], "members": ["m1"]},
                {"kind": "naming", "members": [f"m{i}" for i in range(MAX_IDS + 1)]}):
        with pytest.raises(ValidationError):
            HistoryQuery.model_validate(bad)
    assert HistoryQuery.model_validate({"kind": "naming", "members": ["m1", "m2"]}).members == ["m1", "m2"]
    assert history_subject("liaison") == "qry.liaison.history"


def test_the_writers_answer_on_their_history_subject():
    users = {u.name: u for u in platform_users(["membership", "activities", "liaison"])}
    for w in ("membership", "activities", "liaison"):
        assert history_subject(w) in users[w].subscribe


def test_who_may_read_a_history():
    township = Identity(Role.TOWNSHIP, township="bailin")
    secretary = Identity(Role.SITE, township="bailin", site="h1")
    for who in (Identity(Role.CITY), Identity(Role.AUDITOR), township, secretary):
        assert may_ask_history(who)
    for who in (Identity(Role.DASHBOARD), Identity(Role.DEPARTMENT, department="jiaotong")):
        assert not may_ask_history(who) and not may_read_event(who, "bailin", "h1")
    assert may_read_event(township, "bailin", "h2") and not may_read_event(township, "diantou", "h2")
    assert may_read_event(secretary, "bailin", "h1") and not may_read_event(secretary, "bailin", "h2")


def test_the_sql_of_each_kind():
    branch = matching("activities", HistoryQuery(kind="branch", id="h1"))
    assert branch.text() == "stream_id = $1 AND event_type = ANY($2::text[])" and branch.args[0] == "site-h1"
    # In membership's log the branch's officers leaving too (the secretary and committee it was formed with).
    site = matching("membership", HistoryQuery(kind="branch", id="h1"))
    assert site.text() == (
        "stream_id = $1 AND (event_type = ANY($2::text[]) OR (event_type = ANY($6::text[]) AND payload->>'member_id'"
        " IN (SELECT o FROM membership.events b, LATERAL (SELECT b.payload->>$3 UNION SELECT"
        " jsonb_array_elements_text(b.payload->$4)) AS x(o) WHERE b.stream_id = $1 AND b.event_type = $5)))")
    assert site.args == ["site-h1", ["BranchDissolved", "BranchFormed", "PartyGroupClosed", "PartyGroupFormed"],
                         "secretary", "committee", "BranchFormed", ["MemberDeparted"]]
    member = matching("activities", HistoryQuery(kind="member", id="m1"))
    assert '{"member_id":"m1"}' in member.args and '{"attendees":["m1"]}' in member.args
    assert member.text().count("payload @>") == len(member.args)
    closing = matching("activities", HistoryQuery(kind="closing", ids=[uuid.UUID(int=1)]))
    # An obligation is closed by a talk, or as moot when its site completes.
    assert closing.args == [[str(uuid.UUID(int=1))], "TalkHeld", "obligation_id", "TalkObligationMooted",
                            "obligation_id"]
    naming = matching("membership", HistoryQuery(kind="naming", members=["m1", "m2"]))
    # Names come from arrivals and applications, by the field that names the person in each.
    assert naming.text() == ("((event_type = $2 AND payload->>$3 = ANY($1::text[]))"
                             " OR (event_type = $4 AND payload->>$5 = ANY($1::text[])))")
    assert naming.args == [["m1", "m2"], "MemberArrived", "member_id", "ApplicationSubmitted", "person_id"]
    assert readable(closing, Identity(Role.SITE, township="bailin", site="h1")) == (
        "(township = $6 AND site_id IS NOT DISTINCT FROM $7)")
    assert closing.args[5:] == ["bailin", "h1"] and readable(closing, Identity(Role.AUDITOR)) == "true"


@pytest.mark.parametrize(("sender", "body", "field"), [
    (None, b'{"kind": "site", "id": "h1"}', "NO_IDENTITY"),
    (Identity(Role.DASHBOARD), b'{"kind": "site", "id": "h1"}', "NOT_YOURS"),
    (Identity(Role.DEPARTMENT, department="jiaotong"), b'{"kind": "site", "id": "h1"}', "NOT_YOURS"),
    (Identity(Role.SITE, township="bailin", site="h1"), b'{"kind": "branch", "id": "h2"}', "NOT_YOURS"),
    (Identity(Role.CITY), b'{"kind": "site"}', None),
    (Identity(Role.CITY), b'not json', None),
])
async def test_the_kit_refuses_before_reading_the_log(sender: Identity | None, body: bytes, field: str | None):
    reply = orjson.loads(await LIAISON.history(Request(body, history_subject("liaison"), sender), []))
    assert reply["ok"] is False
    assert reply["error"]["code"] == ("FORBIDDEN" if field else "VALIDATION_FAILED")
    if field:
        assert reply["error"]["field"] == field


def event(n: int, kind: str, service: str, **more: object) -> dict:
    base = {"service": service, "position": n, "event_id": str(uuid.UUID(int=n)), "type": kind,
            "stream_id": "site-h1", "version": n, "site_id": "h1", "township": "bailin", "actor": "township.bailin",
            "command_id": str(uuid.UUID(int=100 + n)), "correlation_id": None, "causation_id": None,
            "occurred_at": f"2026-03-01T02:00:0{n}Z", "recorded_at": f"2026-03-01T02:00:0{n}.5Z", "payload": {},
            "followed": False}
    return {**base, **more}


OBLIGATION = str(uuid.UUID(int=77))
FIXED = [
    event(1, "MemberArrived", "membership", payload={
        "site_id": "h1", "member_id": "m1", "arrived_on": "2020-07-01", "member": {"name": "李四"}}),
    event(2, "TalkObligationCreated", "activities", actor="policy:新来党员必谈", command_id=None,
          causation_id=str(uuid.UUID(int=1)), payload={
              "due_on": "2020-07-08", "reason": "new_arrival", "member_id": "m1", "created_on": "2020-07-01",
              "obligation_id": OBLIGATION}),
    event(3, "SafetyViolationRecorded", "activities", payload={"member_id": "m1", "occurred_on": "2020-07-09"}),
    event(4, "TalkObligationCreated", "activities", command_id=str(uuid.UUID(int=103)), payload={
        "due_on": "2020-07-16", "reason": "safety_violation", "member_id": "m1", "created_on": "2020-07-09",
        "obligation_id": str(uuid.UUID(int=78))}),
    event(5, "TalkHeld", "activities", actor="site.bailin.h1", payload={
        "member_id": "m1", "talked_by": "支部书记", "talked_on": "2020-07-10", "obligation_id": OBLIGATION}),
    event(6, "DisputeReported", "liaison", actor="city", followed=True, payload={
        "case_id": "k1", "kind": "wages", "reported_on": "2020-07-11"}),
]


def test_causes_are_linked_by_causation_by_what_is_closed_and_by_the_command():
    events = [dict(e) for e in FIXED]
    link(events)
    ids = [e["event_id"] for e in events]
    assert [e["cause"] for e in events] == [None, ids[0], None, ids[2], ids[1], None]
    History.model_validate({"kind": "member", "id": "m1", "events": events})


def test_a_fixed_history_prints_as_a_chain_in_beijing_time():
    events = [dict(e) for e in FIXED]
    link(events)
    printed = format_history({"kind": "member", "id": "m1", "events": events, "withheld": 2, "truncated": False})
    c = "命令 00000000"  # the first 8 characters of each fixed command id
    assert printed.splitlines() == [
        "党员 李四(m1) 的历史记录：6 条（含因果关联的其他事件）",
        "  2020-07-01 党员进场 李四(m1)  [工地 h1]",
        f"    操作并记录 2026-03-01 10:00:01 · 乡镇 township.bailin · {c} · 党员管理服务",
        "      → 2020-07-01 产生谈话任务 李四(m1)，新来党员必谈，应于 2020-07-08 前  [工地 h1]",
        "          操作并记录 2026-03-01 10:00:02 · 平台规则 新来党员必谈 · 党建活动服务",
        "          → 2020-07-10 谈话完成 李四(m1)，谈话人 支部书记  [工地 h1]",
        f"              操作并记录 2026-03-01 10:00:05 · 工地书记 site.bailin.h1 · {c} · 党建活动服务",
        "  2020-07-09 施工违章 李四(m1)  [工地 h1]",
        f"    操作并记录 2026-03-01 10:00:03 · 乡镇 township.bailin · {c} · 党建活动服务",
        "      → 2020-07-09 产生谈话任务 李四(m1)，施工违章必谈，应于 2020-07-16 前  [工地 h1]",
        f"          操作并记录 2026-03-01 10:00:04 · 乡镇 township.bailin · {c} · 党建活动服务",
        "  2020-07-11 受理纠纷 案件 k1，薪资  [工地 h1]",
        f"    操作并记录 2026-03-01 10:00:06 · 市工委 · {c} · 联建服务",
        "  另有 2 条记录在您无权查看的工地上，未列出",
        "  (按记录时间排列；时间为北京时间；→ 表示由上一条引起)",
    ]


def test_an_empty_history_and_actors_of_every_kind():
    assert "（没有记录）" in format_history({"kind": "site", "id": "x", "events": []})
    assert actor_label("auditor") == "审计"  # one login each: the role names it
    assert actor_label("township.bailin") == "乡镇 township.bailin"  # no city file to name it by
    assert actor_label("policy:新来党员必谈") == "平台规则 新来党员必谈"
    assert actor_label("timer:流动党员") == "平台定时提醒 流动党员"
    assert actor_label("someone-from-0.1") == "someone-from-0.1"


def test_a_sites_history_names_its_site_and_members_and_says_the_figures():
    """Names from the history's own events (the registration, the arrivals), the amounts and grades a fact records,
    and a transfer prompt on the day it falls due (before: ids only, no figures, the prompt on the arrival's day)."""
    events = [
        event(1, "SiteRegistered", "membership", payload={
            "site_id": "h1", "name": "沙埕湾大桥", "start_date": "2020-06-01"}),
        event(2, "MemberArrived", "membership", payload={
            "site_id": "h1", "member_id": "m1", "arrived_on": "2020-07-01", "member": {"name": "李四"}}),
        event(3, "WorkforceReported", "membership", payload={"site_id": "h1", "headcount": 120, "as_of": "2020-07-02"}),
        event(4, "PointsAwarded", "activities", payload={
            "site_id": "h1", "member_id": "m1", "category": "post_goals", "points": 5, "awarded_on": "2020-07-03",
            "reason": "按期完成"}),
        event(5, "MembersAppraised", "activities", payload={
            "site_id": "h1", "appraised_on": "2020-12-20", "year": 2020,
            "grades": [{"member_id": "m1", "grade": "qualified"}]}),
        event(6, "DisputeReported", "liaison", payload={
            "site_id": "h1", "case_id": "k1", "kind": "wages", "reported_on": "2020-07-11", "amount_yuan": "8600"}),
        event(7, "TransferPrompted", "membership", actor="policy:组织关系转接", command_id=None, payload={
            "site_id": "h1", "member_id": "m1", "arrived_on": "2020-07-01", "due_on": "2021-01-01",
            "prompted_on": "2026-11-25"}),
        event(8, "MemberDeparted", "membership", payload={
            "site_id": "h1", "member_id": "m1", "departed_on": "2021-02-01", "moved_to_site": "h2"}),
    ]
    link(events)
    lines = format_history({"kind": "site", "id": "h1", "events": events}).splitlines()
    assert lines[0] == "工地 沙埕湾大桥(h1) 的历史记录：8 条"
    assert lines[1:17:2] == [
        "  2020-06-01 工地登记 沙埕湾大桥",
        "  2020-07-01 党员进场 李四(m1)",
        "  2020-07-02 报告从业人数 从业人员 120 人",
        "  2020-07-03 党员积分 李四(m1)，按期完成，岗位目标，5 分",
        "  2020-12-20 民主评议 2020 年度，李四(m1) 合格",
        "  2020-07-11 受理纠纷 案件 k1，薪资，金额 8600 元",
        "  2021-01-01 提醒转接组织关系 李四(m1)，应于 2021-01-01 前",
        "  2021-02-01 党员离场 李四(m1)，转至 h2",
    ], lines


def test_why_a_talk_obligation_was_closed_is_said_in_chinese():
    for reason, said in (("site_completed", "因工地竣工"), ("member_departed", "因党员离场")):
        line = summary({"type": "TalkObligationMooted", "payload": {
            "site_id": "a", "member_id": "m1", "obligation_id": str(uuid.UUID(int=1)), "mooted_on": "2020-07-01",
            "reason": reason}})
        assert said in line and reason not in line, line


def test_a_members_history_gives_their_own_grade_of_an_appraisal_not_everyones():
    appraisal = {"type": "MembersAppraised", "payload": {"site_id": "a", "year": 2020, "grades": [
        {"member_id": "m1", "grade": "excellent"}, {"member_id": "m2", "grade": "qualified"},
        {"member_id": "m3", "grade": "qualified"}]}}
    own = summary(appraisal, member="m2")
    assert "m2" in own and "m1" not in own and "m3" not in own and "共评议 3 人" in own, own
    assert all(m in summary(appraisal) for m in ("m1", "m2", "m3"))  # a site's history lists every grade


def test_a_branchs_officers_and_grades_are_named_from_names_found_elsewhere():
    """Before, a branch's appraisal read 党员 m0001 优秀，… and its forming named no secretary."""
    formed = event(1, "BranchFormed", "membership", payload={
        "site_id": "h1", "name": "h1联合党支部", "secretary": "m1", "committee": ["m1", "m2"],
        "formed_on": "2020-07-01"})
    group = event(2, "PartyGroupFormed", "membership", payload={
        "site_id": "h1", "name": "一组", "leader": "m2", "members": ["m2", "m3"], "formed_on": "2020-07-02"})
    post = event(3, "PostEstablished", "activities", payload={"site_id": "h1", "name": "安全岗", "holder": "m3"})
    graded = event(4, "MembersAppraised", "activities", payload={"site_id": "h1", "year": 2020, "grades": [
        {"member_id": "m1", "grade": "excellent"}, {"member_id": "m4", "grade": "qualified"}]})
    events = [formed, group, post, graded]
    # Only the members a line names one by one are asked for: a group's or committee's list is only counted.
    assert named_members(events) == ["m1", "m2", "m3", "m4"]
    names = Names(members={"m1": "李立新", "m2": "张少华", "m3": "刘志强"})
    assert "书记 李立新(m1)" in summary(formed, names)
    assert "组长 张少华(m2)" in summary(group, names) and "2名党员" in summary(group, names)
    # a few members by name where every name is known (before, a birthday party said only 2名党员)
    assert summary(group, names).endswith("2名党员：张少华(m2)、刘志强(m3)")
    assert summary(group, Names(members={"m2": "张少华"})).endswith("，2名党员")
    settled = event(5, "MediationResolved", "liaison", payload={"case_id": "k1", "outcome": "双方和解",
                                                               "amount_settled_yuan": "15000"})
    assert "兑付 15000 元" in summary(settled)  # an auditor sees what was paid (before: the outcome only)
    # what a violation was, where a post stands: two violations of one member are told apart, and found by words
    seen = event(6, "SafetyViolationRecorded", "activities", payload={"member_id": "m2", "occurred_on": "2020-07-09",
                                                                       "description": "未系安全带"})
    assert summary(seen, names) == "张少华(m2)，未系安全带"
    post = event(7, "PostEstablished", "activities", payload={"kind": "safety_patrol", "holder": "m3",
                                                               "place": "主桥3号墩"})
    assert "地点 主桥3号墩" in summary(post, names)
    assert "上岗党员 刘志强(m3)" in summary(post, names)
    # a name the reader may not read stays an id
    assert summary(graded, names) == "2020 年度，李立新(m1) 优秀，党员 m4 合格"
    data = History.model_validate({"kind": "branch", "id": "h1", "events": events,
                                   "member_names": {"m1": "李立新", "m2": "张少华", "m3": "刘志强"}}
                                  ).model_dump(mode="json")
    lines = reading(data)["lines"]
    assert "书记 李立新(m1)" in lines[0]["what"] and "李立新(m1) 优秀" in lines[3]["what"]
    assert all(line["where"] == "" for line in lines)  # a branch's events are all on its site


def test_a_case_id_two_sites_each_have_is_told_apart_by_site():
    """Before, `history case case-1` listed two sites' cases as one story without a word."""
    one = event(1, "DisputeReported", "liaison", payload={"case_id": "case-1", "kind": "wages",
                                                           "reported_on": "2020-07-11"})
    other = {**event(2, "DisputeReported", "liaison", payload={"case_id": "case-1", "kind": "neighbours",
                                                                "reported_on": "2020-08-01"}), "site_id": "h2"}
    events = [dict(one), dict(other)]
    link(events)
    names = {"h1": "一号工程", "h2": "二号工程"}
    read = reading({"kind": "case", "id": "case-1", "events": events, "site_names": names})
    assert read["warnings"] == [
        "编号 case-1 在 2 个工地上各有一起案件（一号工程(h1)、二号工程(h2)），下面每条都标出所在工地"]
    assert [line["where"] for line in read["lines"]] == ["工地 一号工程(h1)", "工地 二号工程(h2)"]
    single = reading({"kind": "case", "id": "case-1", "events": [dict(one)]})
    assert single["warnings"] == []


def test_a_history_by_day_lists_a_late_recorded_fact_where_it_happened():
    """An arrival of June recorded after the July facts comes first by day; an undated fact takes the day of the
    fact recorded before it; what a fact caused stays beneath it."""
    late = event(7, "MemberArrived", "membership", payload={
        "site_id": "h1", "member_id": "m1", "arrived_on": "2020-06-20", "member": {"name": "李四"}})
    undated = event(8, "ZoneDesignated", "activities", payload={"zone_id": "z1"})
    events = [dict(e) for e in (*FIXED[:5], late, undated)]
    link(events)
    by_record = reading({"kind": "member", "id": "m1", "events": events})
    by_day = reading({"kind": "member", "id": "m1", "events": events}, "day")
    def roots(read: dict) -> list[int]:
        return [uuid.UUID(line["event_id"]).int for line in read["lines"] if not line["depth"]]

    assert roots(by_record) == [1, 3, 7, 8]
    assert roots(by_day) == [7, 8, 1, 3]
    assert happened(events)[str(uuid.UUID(int=8))] == "2020-06-20"
    chain = [(line["depth"], line["type"]) for line in by_day["lines"]][2:5]
    assert chain == [(0, "MemberArrived"), (1, "TalkObligationCreated"), (2, "TalkHeld")]
    assert by_day["notes"][-1].startswith("按发生日期排列") and by_day["order"] == "day"
    with pytest.raises(ValueError, match="order"):
        reading({"kind": "member", "id": "m1", "events": events}, "alphabetical")


def test_a_line_links_the_histories_of_whom_it_names_besides_its_own_subject():
    """Before, only a line about one member (member_id) linked to their history: a post's holder, a zone's members
    and a branch's secretary were named without a way to their own histories."""
    events = [
        event(1, "MemberArrived", "membership", payload={
            "site_id": "h1", "member_id": "m1", "arrived_on": "2020-07-01", "member": {"name": "李四"}}),
        event(2, "ZoneDesignated", "activities", payload={
            "site_id": "h1", "zone_id": "z1", "name": "一号工区", "area": "K1", "responsible": ["m1", "m2"]}),
        event(3, "PostEstablished", "activities", payload={
            "site_id": "h1", "post_id": "p1", "kind": "safety_patrol", "holder": "m2", "place": "桥墩"}),
    ]
    link(events)
    site = {line["type"]: line for line in reading({"kind": "site", "id": "h1", "events": events})["lines"]}
    assert site["MemberArrived"]["member"] == "m1" and site["MemberArrived"]["people"] == []
    assert site["ZoneDesignated"]["people"] == [{"id": "m1", "name": "李四"}, {"id": "m2", "name": "m2"}]
    assert site["PostEstablished"]["people"] == [{"id": "m2", "name": "m2"}]
    own = {line["type"]: line for line in reading({"kind": "member", "id": "m1", "events": events})["lines"]}
    assert own["ZoneDesignated"]["people"] == [{"id": "m2", "name": "m2"}]  # not the reader's own subject again


def test_a_retraction_marks_the_record_before_it_not_one_recorded_again_under_its_id():
    """Before, every record of the kind and id was marked （已撤销）: a zone set up again under the id of a retracted
    one, a year appraised again, read as withdrawn. A retracted violation's talk obligation is marked too."""
    zone = {"site_id": "h1", "zone_id": "z1", "name": "一号工区", "area": "K1", "responsible": ["m1"],
            "designated_on": "2020-07-08"}
    violation, obligation = str(uuid.UUID(int=50)), str(uuid.UUID(int=51))
    events = [
        event(1, "ZoneDesignated", "activities", payload=zone),
        event(2, "RecordRetracted", "activities", payload={
            "site_id": "h1", "record": "zone", "record_id": "z1", "record_day": "2020-07-08",
            "what": "2020-07-08 党员责任区「一号工区」", "reason": "记错", "members": ["m1"]}),
        event(3, "ZoneDesignated", "activities", payload=zone),
        event(4, "SafetyViolationRecorded", "activities", payload={
            "site_id": "h1", "member_id": "m1", "occurred_on": "2020-07-09", "description": "未戴安全帽",
            "violation_id": violation}),
        event(5, "TalkObligationCreated", "activities", command_id=str(uuid.UUID(int=104)), payload={
            "site_id": "h1", "obligation_id": obligation, "member_id": "m1", "reason": "safety_violation",
            "created_on": "2020-07-09", "due_on": "2020-07-16"}),
        event(6, "RecordRetracted", "activities", payload={
            "site_id": "h1", "record": "violation", "record_id": violation, "record_day": "2020-07-09",
            "what": "2020-07-09 施工违章：未戴安全帽", "reason": "记错了人", "member_id": "m1",
            "obligation_id": obligation}),
    ]
    link(events)
    lines = reading({"kind": "site", "id": "h1", "events": events}, order="recorded")["lines"]
    marked = [line["what"].endswith("（已撤销）") for line in lines]
    assert marked == [True, False, False, True, True, False], [line["what"] for line in lines]
    assert lines[1]["what"] == "2020-07-08 撤销记录 党员责任区「一号工区」，原因：记错，1名党员"
    assert lines[5]["what"] == ("2020-07-09 撤销记录 党员 m1，施工违章：未戴安全帽，原因：记错了人，"
                                "未谈的谈话任务一并撤销")

"""Input that does not parse gets one reply everywhere: VALIDATION_FAILED, the field, and what is wrong with it in
Chinese (pydantic's words in parentheses), never the value that was sent."""
from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from contracts import activities, liaison, membership
from contracts.base import Name, Slug
from contracts.errors import choice_labels, validation_error
from contracts.history import HistoryQuery
from contracts.identity import Identity, Role
from contracts.liaison import COMMANDS
from contracts.queries import BirthdayQuery, SiteQuery
from contracts.replies import ErrorInfo
from contracts.subjects import command_subject
from gongdi.demo import samples
from gongdi.service.pipeline import CommandPipeline
from gongdi.service.process import Request
from services.views.handlers import ViewQueries

SLUG_WORDS = "格式不对：只能用小写字母、数字、- 和 _，以字母或数字开头，最多 63 个字符"
SECRET = "zq-secret-9"  # sent in every bad value below: it must never come back in a message


class Kind(enum.Enum):  # codes no contract names: a choice without labels is told by its codes
    first = "first"
    second = "second"


def _no_seven(value: int) -> int:
    if value == 7:
        raise ValueError("seven is not allowed (不许用 7)")
    return value


def _english_only(value: int) -> int:
    if value == 8:
        raise ValueError("eight is not allowed")
    return value


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Slug = "x"
    name: Name = "名字"
    short: Annotated[str, Field(max_length=5)] = ""
    count: Annotated[int, Field(ge=1, le=10)] = 1
    day: dt.date = dt.date(2020, 1, 1)
    kind: Kind = Kind.first
    mode: Literal["a", "b"] = "a"
    id: uuid.UUID = uuid.UUID(int=0)
    amount: Annotated[Decimal, Field(max_digits=4, decimal_places=1)] = Decimal(0)
    ids: Annotated[list[str], Field(min_length=1, max_length=2)] = ["a"]
    seven: Annotated[int, AfterValidator(_no_seven)] = 0
    eight: Annotated[int, AfterValidator(_english_only)] = 0
    inner: list[Inner] = []


def info(body: Any, strict: bool = False, raw: bytes | None = None) -> ErrorInfo:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate_json(raw if raw is not None else orjson.dumps(body), strict=strict)
    return validation_error(caught.value)


@pytest.mark.parametrize(("body", "field", "chinese", "strict"), [
    ({"unknown": SECRET}, "unknown", "不认识的字段", False),
    ({"name": ""}, "name", "不能为空", False),
    ({"short": SECRET}, "short", "太长（最多 5 个字符）", False),
    ({"count": SECRET}, "count", "应为整数", False),
    ({"count": "3"}, "count", "应为整数", True),
    ({"count": 0}, "count", "应不小于 1", False),
    ({"count": 11}, "count", "应不大于 10", False),
    ({"day": SECRET}, "day", "应为日期，格式 YYYY-MM-DD", False),
    ({"day": "2020-13-01"}, "day", "应为日期，格式 YYYY-MM-DD", True),
    ({"day": 1590969600}, "day", "应为日期，格式 YYYY-MM-DD", True),
    ({"kind": SECRET}, "kind", "应为以下之一: first, second", False),
    ({"mode": SECRET}, "mode", "应为以下之一: a, b", False),
    ({"slug": SECRET.upper()}, "slug", SLUG_WORDS, False),
    ({"id": SECRET}, "id", "应为 UUID", False),
    ({"amount": "123.45"}, "amount", "位数太多（最多 4 位）", False),
    ({"ids": []}, "ids", "不能为空（至少 1 项）", False),
    ({"ids": ["a", "b", SECRET]}, "ids", "太多（最多 2 项）", False),
    ({"inner": [{"count": 1}, {}]}, "inner.1.count", "必填", False),
    ({"inner": [{"count": SECRET}]}, "inner.0.count", "应为整数", False),
    ({"count": True}, "count", "应为整数", True),
])
def test_each_kind_of_problem_is_named_in_chinese_with_pydantics_words_after_it(
        body: dict[str, Any], field: str, chinese: str, strict: bool):
    got = info(body, strict)
    assert got.code == "VALIDATION_FAILED" and got.field == field
    assert got.message.startswith(f"{field}: {chinese} (") and got.message.endswith(")"), got.message
    assert SECRET not in got.message and SECRET.upper() not in got.message


def test_the_english_detail_follows_in_parentheses():
    assert info({"count": 11}).message == "count: 应不大于 10 (Input should be less than or equal to 10)"
    assert info({"extra": 1}).message == "extra: 不认识的字段 (Extra inputs are not permitted)"


def test_no_character_of_the_input_comes_back():
    # pydantic names the character of a UUID it could not read ("found `z` at 0"): that is the input.
    got = info({"id": "zzzz"})
    assert "`z`" not in got.message and got.message.startswith("id: 应为 UUID (")
    name = info({"name": "张三13800138000"})  # a phone number in a name: refused, and not repeated back
    assert name.field == "name" and "13800138000" not in name.message


def test_our_validators_keep_their_own_words():
    assert info({"seven": 7}).message == "seven: seven is not allowed (不许用 7)"
    assert info({"eight": 8}).message == "eight: 不合要求 (eight is not allowed)"
    assert info({"name": "名\u200f字"}).message == (
        "name: 含有不可见的控制字符、零宽字符或方向字符 (contains invisible, control or direction characters)")


def test_input_that_is_not_json_or_not_an_object():
    broken = info(None, raw=b"{not json")
    assert broken.field is None and broken.message.startswith("请求: 不是有效的 JSON (Invalid JSON")
    listed = info(None, raw=b"[1]")
    assert listed.field is None and listed.message.startswith("请求: 应为 JSON 对象 (")


def test_a_missing_field_and_the_count_of_other_problems():
    with pytest.raises(ValidationError) as caught:
        SiteQuery.model_validate_json(b"{}")
    missing = ErrorInfo(code="VALIDATION_FAILED", message="site_id: 必填 (Field required)", field="site_id")
    assert validation_error(caught.value) == missing
    several = info({"count": 0, "day": "x", "kind": "y"})
    assert several.field == "count" and several.message.endswith("；另有 2 处不合要求（day、kind）")


def test_an_unknown_error_type_gets_the_generic_words():
    error = ValidationError.from_exception_data("Odd", [{"type": "is_instance_of", "loc": ("number",),
                                                         "input": SECRET, "ctx": {"class": "Decimal"}}])
    got = validation_error(error)
    assert got.field == "number" and got.message.startswith("number: 不合要求 (") and SECRET not in got.message


# ---- the same reply from the command pipeline and the views ----------------------------------------------


async def test_the_pipeline_and_the_views_reply_with_it():
    pipeline = CommandPipeline(COMMANDS, repository=None, decide=lambda *_: [])  # type: ignore[arg-type]
    body = orjson.dumps({"command_id": str(uuid.uuid4()), "site_id": "east", "case_id": "c", "kind": SECRET,
                         "reported_on": "2020-06-01", "parties": ["劳务班组"], "description": "欠薪"})
    request = Request(body, command_subject("city", "liaison", "ReportDispute"), Identity(Role.CITY))
    reply = orjson.loads(await pipeline.handle("ReportDispute", request))
    assert reply["error"]["code"] == "VALIDATION_FAILED" and reply["error"]["field"] == "kind"
    assert reply["error"]["message"].startswith("kind: 应为以下之一: ") and SECRET not in reply["error"]["message"]

    views = ViewQueries(pool=None, schema="views", js=None, streams=[], city=None)  # type: ignore[arg-type]
    answer = orjson.loads(await views.site(Request(b'{"site_id": 5}', "qry.views.site", Identity(Role.CITY))))
    assert answer["error"] == {"code": "VALIDATION_FAILED", "field": "site_id",
                               "message": "site_id: 应为文字 (Input should be a valid string)"}


# ---- whole-model rules: the field they are about, Chinese first -------------------------------------------------

DAY = "2020-06-01"


def _refused(command: type[BaseModel], body: dict[str, Any]) -> ErrorInfo:
    with pytest.raises(ValidationError) as caught:
        command.model_validate({"command_id": str(uuid.uuid4()), "site_id": "east", **body})
    return validation_error(caught.value)


@pytest.mark.parametrize(("command", "body", "field", "chinese"), [
    (liaison.ReportDispute, {"case_id": "c", "kind": "wages", "reported_on": DAY, "parties": ["劳务班组"],
                             "description": "欠薪"}, "amount_yuan", "薪资纠纷须填写争议金额（大于 0）"),
    (liaison.ReportDispute, {"case_id": "c", "kind": "wages", "reported_on": DAY, "parties": ["劳务班组"],
                             "amount_yuan": "0", "description": "欠薪"}, "amount_yuan",
     "薪资纠纷须填写争议金额（大于 0）"),
    (liaison.HoldJointMeeting, {"meeting_id": "m", "held_on": DAY, "parties": ["owner", "owner"]}, "parties",
     "参会单位有重复"),
    (liaison.HoldJointMeeting, {"meeting_id": "m", "held_on": DAY, "parties": ["owner", "village"], "items": [
        {"item_id": "a", "kind": "risk", "description": "边坡", "responsible": "owner", "due_on": DAY},
        {"item_id": "b", "kind": "risk", "description": "便道", "responsible": "owner", "due_on": "2020-05-01"}]},
     "items.1.due_on", "事项的完成期限不能早于会议日期"),
    (liaison.SignComplianceLetter, {"letter_id": "l", "signed_on": DAY, "signatories": ["甲", "乙"],
                                    "targets": {"quality": "优良", "safety": "零事故", "progress": "按期"}},
     "targets", "缺少目标：文明工地"),
    (liaison.AssessCompliance, {"letter_id": "l", "assessed_on": DAY, "results": [
        {"target": "safety", "met": True}, {"target": "safety", "met": False}]}, "results", "考核目标有重复"),
    (liaison.SignCoBuildingAgreement, {"agreement_id": "a", "village": "东村", "signed_on": DAY, "items": [
        {"item_id": "x", "title": "修路"}, {"item_id": "x", "title": "修桥"}]}, "items", "共建事项编号有重复"),
    (liaison.RecordVillageSupport, {"village": "东村", "kind": "transport", "given_on": DAY, "quantity": "1.5"},
     "quantity", "免费运输按整车次计，不能有小数"),
    (activities.RecordActivity, {"kind": "night_school", "title": "夜校", "held_on": DAY, "headcount": 0,
                                 "attendees": ["m1", "m2"]}, "headcount", "参加人数不能少于所选参加党员人数（2 名）"),
    (activities.RecordActivity, {"kind": "social_service", "title": "义诊", "held_on": DAY, "headcount": 3,
                                 "service": "义诊"}, "organisation", "社会组织送服务须填写社会组织和服务内容"),
    (activities.RecordActivity, {"kind": "social_service", "title": "义诊", "held_on": DAY, "headcount": 3,
                                 "organisation": "红十字会"}, "service", "社会组织送服务须填写社会组织和服务内容"),
    (activities.FormTeam, {"team_id": "t", "kind": "assault", "name": "突击队", "leader": "m9", "members": ["m1"],
                           "purpose": "抢工期"}, "leader", "队伍负责人须为队伍成员之一"),
    (activities.AppraiseMembers, {"year": 2020, "appraised_on": DAY, "grades": [
        {"member_id": "m1", "grade": "excellent"}, {"member_id": "m1", "grade": "qualified"}]}, "grades",
     "同一名党员只能评定一次"),
    (activities.RecordBranchMeeting, {"kind": "themed_day", "held_on": DAY, "topic": "主题党日", "attendance": 1,
                                      "attendees": ["m1", "m2"]}, "attendance",
     "到会人数不能少于所选到会党员人数（2 名）"),
])
def test_a_rule_over_several_fields_names_the_field_and_says_it_in_chinese_first(
        command: type[BaseModel], body: dict[str, Any], field: str, chinese: str):
    got = _refused(command, body)
    assert (got.code, got.field) == ("VALIDATION_FAILED", field), got
    assert got.message.startswith(f"{field}: {chinese} (") and got.message.endswith(")"), got.message
    assert "不合要求" not in got.message


def test_a_choice_is_told_by_its_chinese_labels_where_the_contracts_have_them():
    got = _refused(liaison.ReportDispute, {"case_id": "c", "kind": SECRET, "reported_on": DAY, "parties": ["甲"],
                                           "description": "欠薪"})
    assert got.field == "kind" and got.message.startswith(
        "kind: 应为以下之一: 薪资（wages）、征地拆迁（land_acquisition）、阻工（work_obstruction）、"
        "邻里（neighbours）、其他（other） ("), got.message
    assert SECRET not in got.message
    # Every choice of these contracts has its labels (a new one without would be told by its codes only).
    labelled = choice_labels()
    for module in (liaison, activities, membership):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, enum.StrEnum) and value.__module__ == module.__name__:
                assert frozenset(m.value for m in value) in labelled, value


def test_no_regular_expression_and_no_english_first_reaches_the_reader():
    slug = info({"slug": "Not A Slug"}).message
    assert "pattern" not in slug and "^" not in slug and "{" not in slug, slug
    with pytest.raises(ValidationError) as caught:
        BirthdayQuery.model_validate({"site_id": "east", "month": "2020-13"})
    assert validation_error(caught.value).message.startswith("month: 应为月份，格式 YYYY-MM (")
    late = _refused(liaison.StartMediation, {"case_id": "c", "mediator": "调解员", "started_on": "2999-01-01"})
    assert late.field == "started_on" and re.match(
        r"started_on: 日期不合理：应在 1921-07-01 至 \d{4}-\d\d-\d\d 之间 \(must lie between ", late.message), late
    phone = info({"name": "张三13800138000"}).message
    assert phone == "name: 名称中不得含身份证号或手机号 (contains an ID-card or phone number)"
    repeated = _refused(liaison.ReportDispute, {"case_id": "c", "kind": "other", "reported_on": DAY,
                                                "parties": ["甲", "甲"], "description": "邻里"})
    assert repeated.message == "parties: 有重复的名称或编号 (repeats a name or id)"


async def test_the_pipeline_names_the_field_of_a_wage_dispute_without_its_amount():
    pipeline = CommandPipeline(COMMANDS, repository=None, decide=lambda *_: [])  # type: ignore[arg-type]
    body = orjson.dumps({"command_id": str(uuid.uuid4()), "site_id": "east", "case_id": "c", "kind": "wages",
                         "reported_on": DAY, "parties": ["劳务班组"], "description": "欠薪"})
    request = Request(body, command_subject("city", "liaison", "ReportDispute"), Identity(Role.CITY))
    reply = orjson.loads(await pipeline.handle("ReportDispute", request))
    assert reply["error"] == {"code": "VALIDATION_FAILED", "field": "amount_yuan", "message": (
        "amount_yuan: 薪资纠纷须填写争议金额（大于 0） (a wage dispute states the amount in dispute, more than 0)")}


def test_a_member_s_choices_are_told_by_their_chinese_names():
    body = orjson.loads(samples.arrive("s", "m1").model_dump_json())
    body["member"]["gender"] = SECRET
    got = _refused(membership.RecordArrival, body)
    assert got.field == "member.gender"
    assert got.message.startswith("member.gender: 应为以下之一: 男（male）、女（female） ("), got.message


def test_a_history_query_names_what_it_lacks():
    def refused(body: dict[str, Any]) -> ErrorInfo:
        with pytest.raises(ValidationError) as caught:
            HistoryQuery.model_validate(body)
        return validation_error(caught.value)

    got = refused({"kind": "member"})
    assert got.field == "id"
    assert got.message.startswith("id: 查党员的历史须给出一个编号 id，不给 ids 或 members ("), got.message
    got = refused({"kind": "caused_by", "id": "x"})
    assert got.field == "ids" and got.message.startswith("ids: 按事件追溯须给出事件编号 ids"), got.message
    got = refused({"kind": "naming", "ids": [str(uuid.UUID(int=1))]})
    assert got.field == "members" and got.message.startswith("members: 按党员查姓名须给出党员编号 members"), got.message


def test_web_markup_in_any_text_of_a_command_is_refused_naming_the_field():
    """Before, `<img src=x onerror=alert(1)>` was recorded as a member's name: escaped on every page, but shown as
    tags in every roster and list."""
    body = orjson.loads(samples.arrive("s", "m1").model_dump_json())
    for text in ("<img src=x onerror=alert(1)>", "<b>张</b>三", "张三</script>", "<!-- x -->"):
        body["member"]["name"] = text
        got = _refused(membership.RecordArrival, body)
        assert got.field == "member.name" and "不得含网页标记" in got.message, got
    body["member"]["name"] = "张三"
    body["member"]["unit_name"] = "<script>施工单位"
    assert _refused(membership.RecordArrival, body).field == "member.unit_name"
    body["member"]["unit_name"] = "施工单位"
    assert membership.RecordArrival.model_validate({**body, "member": {**body["member"], "section": "钢筋<10mm 班组"}})
    # Events keep what they hold: one recorded before the rule still reads
    event = orjson.loads(samples.arrive("s", "m1").model_dump_json())
    facts = {k: v for k, v in event["member"].items() if k in membership.MemberRecord.model_fields}
    assert membership.MemberArrived.model_validate({"site_id": "s", "member_id": "m1", "arrived_on": "2020-07-01",
                                                    "member": {**facts, "name": "<b>张</b>"}})


def test_each_field_at_fault_is_said_in_its_own_words():
    """Before, a reply said the first field's problem and only named the others (另有 2 处不合要求): a form could
    mark them, not say what was wrong."""
    body = {"command_id": str(uuid.uuid4()), "site_id": "x", "name": "某工程", "township": "bailin",
            "department": "交通运输局", "cost_wan": 0, "planned_months": 300, "start_date": "2035-01-01",
            "units": {"owner": "甲", "design": "乙", "construction": "丙", "supervision": "丁"}}
    got = _refused(membership.RegisterSite, body)
    assert got.field == "cost_wan" and "另有 2 处不合要求（planned_months、start_date）" in got.message
    assert got.problems is not None
    said = {p.field: p.message for p in got.problems}
    assert list(said) == ["cost_wan", "planned_months", "start_date"]
    assert said["planned_months"].startswith("应不大于 240") and said["start_date"].startswith("日期不合理")
    one = _refused(membership.RegisterSite, {**body, "planned_months": 30, "start_date": "2020-01-01"})
    assert one.problems is None and "problems" not in one.model_dump_json()  # one field: the reply as before

"""Input that does not parse gets one reply everywhere: VALIDATION_FAILED, the field, and what is wrong with it in
Chinese (pydantic's words in parentheses), never the value that was sent."""
from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from contracts.base import Name, Slug
from contracts.errors import validation_error
from contracts.identity import Identity, Role
from contracts.liaison import COMMANDS
from contracts.queries import SiteQuery
from contracts.replies import ErrorInfo
from contracts.subjects import command_subject
from gongdi.service.pipeline import CommandPipeline
from gongdi.service.process import Request
from services.views.handlers import ViewQueries

SECRET = "zq-secret-9"  # sent in every bad value below: it must never come back in a message


class Kind(enum.Enum):
    full = "full"
    probationary = "probationary"


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
    kind: Kind = Kind.full
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
    ({"kind": SECRET}, "kind", "应为以下之一: full, probationary", False),
    ({"mode": SECRET}, "mode", "应为以下之一: a, b", False),
    ({"slug": SECRET.upper()}, "slug", "格式不对", False),
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
    assert info({"name": "名\u200f字"}).message == "name: contains control or direction characters (不可见控制字符)"


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
    assert several.field == "count" and several.message.endswith("；另有 2 处不合要求")


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

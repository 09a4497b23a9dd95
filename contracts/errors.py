"""The base of every domain error: a machine code, a human message, and the field at fault; and the one reply to
input that does not parse (`validation_error`), shared by the command pipeline, the kit and the views."""
from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from contracts.replies import ErrorInfo, FieldProblem


class DomainError(Exception):
    code = "RULE_BROKEN"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, field=self.field)


# ---- input that does not parse ------------------------------------------------------------------------------

VALIDATION_FAILED = "VALIDATION_FAILED"
DATE = "应为日期，格式 YYYY-MM-DD"
DATETIME = "应为时间，格式 YYYY-MM-DDTHH:MM:SS+08:00"
NUMBER = "应为数字"
OBJECT = "应为 JSON 对象"

Explain = Callable[[dict[str, Any]], str]


# A whole-model rule broken (a model_validator's refusal): its words, and the field it is about in `ctx`.
RULE_BROKEN = "rule_broken"


def rule_broken(field: str, chinese: str, english: str) -> PydanticCustomError:
    """What a model validator raises when the values together break a rule: the reply names `field` (a dotted path
    under the model, `items.2.due_on`) and says `chinese`, the English after it in parentheses. A plain ValueError
    there names no field, and its words would stand behind a generic 不合要求."""
    return PydanticCustomError(RULE_BROKEN, "{chinese} ({english})",
                               {"field": field, "chinese": chinese, "english": english})


def choice_labels() -> dict[frozenset[str], Mapping[str, str]]:
    """The Chinese labels the contracts give their choices (a module's `LABELS`), by the set of codes of each choice
    (a StrEnum of that module): a refused choice is told in words the sender knows. Read from the contract modules
    loaded, not imported: they import this module, and a choice refused is one of a loaded module's models."""
    out: dict[frozenset[str], Mapping[str, str]] = {}
    for name, module in sorted(dict(sys.modules).items()):  # a copy: another thread may be importing
        labels = getattr(module, "LABELS", None) if name.startswith("contracts.") else None
        if not isinstance(labels, Mapping):
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, StrEnum) and value.__module__ == name:
                codes = frozenset(member.value for member in value)
                if codes <= labels.keys():
                    out[codes] = labels
    return out


def _one_of(ctx: dict[str, Any]) -> str:
    # pydantic writes the choices as "'full' or 'probationary'": the values a sender may use, never the input.
    choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    if not choices:
        return "应为以下之一: " + str(ctx.get("expected", ""))
    labels = choice_labels().get(frozenset(choices))
    if labels:
        return "应为以下之一: " + "、".join(f"{labels[c]}（{c}）" for c in choices)
    return "应为以下之一: " + ", ".join(choices)


# The contracts' patterns in words (Slug; a month): a regular expression means nothing to whoever typed the value.
PATTERNS: dict[str, str] = {
    r"^[a-z0-9][a-z0-9_-]{0,62}$": "格式不对：只能用小写字母、数字、- 和 _，以字母或数字开头，最多 63 个字符",
    r"^\d{4}-(0[1-9]|1[0-2])$": "应为月份，格式 YYYY-MM",
}


def _pattern(ctx: dict[str, Any]) -> str:
    return PATTERNS.get(str(ctx.get("pattern", "")), "格式不对")


def _short(ctx: dict[str, Any]) -> str:
    n = ctx.get("min_length", 1)
    return "不能为空" if n == 1 else f"太短（至少 {n} 个字符）"


def _few(ctx: dict[str, Any]) -> str:
    n = ctx.get("min_length", 1)
    return "不能为空（至少 1 项）" if n == 1 else f"太少（至少 {n} 项）"


# pydantic's error type → what is wrong with the field, in Chinese. The English message follows in parentheses.
EXPLAINED: dict[str, str | Explain] = {
    "missing": "必填",
    "extra_forbidden": "不认识的字段",
    "json_invalid": "不是有效的 JSON",
    "json_type": "应为 JSON 文本",
    "recursion_loop": "嵌套太深",
    "model_type": OBJECT,
    "model_attributes_type": OBJECT,
    "dataclass_type": OBJECT,
    "dict_type": OBJECT,
    "list_type": "应为列表",
    "tuple_type": "应为列表",
    "set_type": "应为列表",
    "frozen_set_type": "应为列表",
    "string_type": "应为文字",
    "string_unicode": "应为有效的 Unicode 文字",
    "string_too_short": _short,
    "string_too_long": lambda ctx: f"太长（最多 {ctx.get('max_length', '?')} 个字符）",
    "string_pattern_mismatch": _pattern,
    "too_short": _few,
    "too_long": lambda ctx: f"太多（最多 {ctx.get('max_length', '?')} 项）",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "int_parsing_size": "数值太大",
    "float_type": NUMBER,
    "float_parsing": NUMBER,
    "decimal_type": NUMBER,
    "decimal_parsing": NUMBER,
    "finite_number": "应为有限的数",
    "decimal_max_digits": lambda ctx: f"位数太多（最多 {ctx.get('max_digits', '?')} 位）",
    "decimal_max_places": lambda ctx: f"小数位太多（最多 {ctx.get('decimal_places', '?')} 位）",
    "decimal_whole_digits": lambda ctx: f"整数部分位数太多（最多 {ctx.get('whole_digits', '?')} 位）",
    "greater_than": lambda ctx: f"应大于 {ctx.get('gt', '?')}",
    "greater_than_equal": lambda ctx: f"应不小于 {ctx.get('ge', '?')}",
    "less_than": lambda ctx: f"应小于 {ctx.get('lt', '?')}",
    "less_than_equal": lambda ctx: f"应不大于 {ctx.get('le', '?')}",
    "multiple_of": lambda ctx: f"应为 {ctx.get('multiple_of', '?')} 的倍数",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "date_type": DATE,
    "date_parsing": DATE,
    "date_from_datetime_parsing": DATE,
    "date_from_datetime_inexact": DATE,
    "date_past": "应为过去的日期",
    "date_future": "应为将来的日期",
    "datetime_type": DATETIME,
    "datetime_parsing": DATETIME,
    "datetime_from_date_parsing": DATETIME,
    "datetime_object_invalid": DATETIME,
    "timezone_naive": "不应带时区",
    "timezone_aware": "应带时区",
    "enum": _one_of,
    "literal_error": _one_of,
    "uuid_type": "应为 UUID",
    "uuid_parsing": "应为 UUID",
    "uuid_version": "应为 UUID",
    "none_required": "应为空 (null)",
    "union_tag_invalid": "类型标记不对",
    "union_tag_not_found": "缺少类型标记",
}
GENERIC = "不合要求"
_CJK = re.compile("[\u3400-\u9fff\uff00-\uffef]")


def _english(error: dict[str, Any]) -> str:
    """pydantic's message without any part of the input: a character it found (uuid), the tag it was sent."""
    kind, msg = error["type"], str(error.get("msg", ""))
    if kind == "union_tag_invalid":
        return "the tag does not match any of the expected tags: " + str((error.get("ctx") or {}).get("expected_tags"))
    if kind == "string_pattern_mismatch":
        return "String should have the expected form"  # not the pattern: a regular expression is no help to a reader
    return re.sub(r"found `[^`]*`", "found a character not allowed", msg)


def _problem(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == RULE_BROKEN:
        return str(error.get("msg", ""))  # already Chinese first, the English after it
    if kind in ("value_error", "assertion_error"):
        # Our own validators' words (an AfterValidator; a model_validator raises rule_broken): they name the rule,
        # never the input.
        text = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return text if _CJK.search(text) else f"{GENERIC} ({text})"
    explain = EXPLAINED.get(kind, GENERIC)
    chinese = explain if isinstance(explain, str) else explain(error.get("ctx") or {})
    return f"{chinese} ({_english(error)})"


_LAYERS = ("body", "query", "header", "path")


# How pydantic names the member of a union that failed, inside a location: a type, not a field of the contract.
_UNION_MEMBERS = {"datetime", "date", "str", "int", "float", "bool", "decimal", "none"}


def _location(error: dict[str, Any]) -> tuple[Any, ...]:
    """The error's location without the layer's part and without pydantic's names of union members (`as_of`, not
    `as_of.datetime`); a rule broken adds the field it names under the model."""
    loc = tuple(p for i, p in enumerate(error.get("loc", ())) if p not in _LAYERS
                and not (i and isinstance(p, str) and (p in _UNION_MEMBERS or "[" in p)))
    field = (error.get("ctx") or {}).get("field") if error.get("type") == RULE_BROKEN else None
    return loc + tuple(str(field).split(".")) if field else loc


def validation_error(exc: ValidationError) -> ErrorInfo:
    """The reply to input that does not parse: VALIDATION_FAILED, the field at fault (its location joined by
    "."), and what is wrong with it in Chinese, pydantic's words in parentheses. Never the value sent."""
    return explain(exc.errors(include_input=False, include_url=False))


MAX_PROBLEMS = 20  # fields said one by one in a reply: a form has fewer; a list gone wrong in every entry, more


def explain(errors: list[Any]) -> ErrorInfo:
    """`validation_error` for pydantic's error list as another layer reports it (FastAPI's, over HTTP); a location's
    leading `body`/`query`/`header` is the layer's, not the contract's, and is left out of the field."""
    located = [{**e, "loc": _location(e)} for e in errors]
    # One per field: the members of a union (`as_of`: a moment or a day) each refuse the same value.
    errors = [e for i, e in enumerate(located) if all(e["loc"] != x["loc"] for x in located[:i])]
    if not errors:
        return ErrorInfo(code=VALIDATION_FAILED, message=f"请求: {GENERIC}", field=None)
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    message = f"{field or '请求'}: {_problem(first)}"
    problems = None
    if len(errors) > 1:  # named, so that one reply shows all there is to fix (five at most)
        others = [".".join(str(p) for p in e["loc"]) or "请求" for e in errors[1:]]
        named = "、".join(others[:5]) + ("等" if len(others) > 5 else "")
        message += f"；另有 {len(errors) - 1} 处不合要求（{named}）"
        problems = [FieldProblem(field=".".join(str(p) for p in e["loc"]) or "请求", message=_problem(e))
                    for e in errors[:MAX_PROBLEMS]]
    return ErrorInfo(code=VALIDATION_FAILED, message=message, field=field, problems=problems)

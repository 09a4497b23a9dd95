"""The HTTP API, generated from the contracts: one route per command and per query, answered over the bus."""

import hashlib
import hmac
import json
import math
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import nats.errors
import orjson
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from contracts import activities, liaison, membership
from contracts.base import Command, Slug
from contracts.city import City
from contracts.history import SUBJECTS, History, Subject
from contracts.identity import ForbiddenError
from contracts.queries import QUERIES, ServiceStatus
from contracts.queries import Query as ViewQuery
from contracts.replies import CommandReply, ErrorInfo, QueryReply
from gongdi.ops.client import UNREACHABLE
from gongdi.ops.history import history
from services.gateway.metrics import Metrics
from services.gateway.sessions import COOKIE, LoginFailed, Session, Sessions, SessionsFull
from services.gateway.throttle import Throttled

CONTRACTS = (membership, activities, liaison)
# An Idempotency-Key that is no UUID becomes one, per identity and keyed by a secret of the installation (the
# gateway's own bus password): two people's keys never collide, and nobody can work out another's id in advance and
# spend it first (which left the owner's retries COMMAND_ID_REUSED).
KEY_NAMESPACE = uuid.UUID("5b0f6f1e-3c2a-4f8e-9d1e-6a7c1b2e9f40")
SERVICES_WITH_STATUS = [c.SERVICE for c in CONTRACTS]

# The HTTP status each kind of refusal is answered with; the body is the bus's typed error either way.
STATUS_OF = {"VALIDATION_FAILED": 422, "FORBIDDEN": 403, "LOGIN_REQUIRED": 401, "LOGIN_FAILED": 401,
             "REQUEST_TOO_LARGE": 413, "METHOD_NOT_ALLOWED": 405, "COMMAND_ID_REUSED": 409, "UNREACHABLE": 503,
             "SESSIONS_FULL": 503, "UNAVAILABLE": 503, "INTERNAL": 500, "CROSS_ORIGIN": 403,
             "LOGIN_THROTTLED": 429}


def status_for(code: str) -> int:
    if code in STATUS_OF:
        return STATUS_OF[code]
    return 404 if code.endswith("_NOT_FOUND") else 409  # any other: a rule of the domain refused it


def refused(code: str, message: str, field: str | None = None, problems: Any = None) -> JSONResponse:
    error = ErrorInfo(code=code, message=message, field=field, problems=problems).model_dump()
    return JSONResponse({"ok": False, "error": error}, status_code=status_for(code))


def answer(reply: dict[str, Any]) -> Response:
    """The service's reply as it came, with the HTTP status its outcome deserves."""
    status = 200 if reply.get("ok") else status_for(str((reply.get("error") or {}).get("code")))
    return Response(orjson.dumps(reply), status_code=status, media_type="application/json")


class NotLoggedIn(Exception):
    """No valid session on a request that needs one."""


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(COOKIE)


def session_dependency(sessions: Sessions) -> Callable[[Request], Session]:
    def current(request: Request) -> Session:
        session = sessions.get(bearer(request))
        if session is None:
            raise NotLoggedIn()
        return session

    return current


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Annotated[str, Field(min_length=1, max_length=100, description="身份，如 city、township.diantou")]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class Me(BaseModel):
    user: str
    role: str
    role_label: str
    township: str | None
    site: str | None
    department: str | None
    scope: str | None
    may_write: bool
    city: dict[str, Any]


class MeReply(BaseModel):
    ok: bool
    data: Me | None = None
    error: ErrorInfo | None = None


def http_body(command: type[Command]) -> type[BaseModel]:
    """The command as an HTTP body: the same contract, with `command_id` optional (the Idempotency-Key header or
    a new id fills it)."""
    return create_model(command.__name__, __base__=command, __module__=command.__module__,
                        command_id=(uuid.UUID | None, None))


def command_id_for(key: str | None, body_id: Any, user: str, secret: str = "") -> str:
    if key:
        try:
            return str(uuid.UUID(key))
        except ValueError:
            keyed = hmac.new(secret.encode(), f"{user}\n{key}".encode(), hashlib.sha256).hexdigest()
            return str(uuid.uuid5(KEY_NAMESPACE, keyed))
    return str(body_id) if body_id else str(uuid.uuid4())


def _same_id(given: Any, used: str) -> bool:
    try:
        return uuid.UUID(str(given)) == uuid.UUID(used)
    except ValueError:
        return False


async def over_bus(metrics: Metrics, kind: str, name: str, ask: Callable[[], Any]) -> Response:
    try:
        reply = await ask()
    except UNREACHABLE:
        metrics.count(kind, name, "UNREACHABLE")
        return refused("UNREACHABLE", "平台暂时无法访问，请稍后重试 (the platform did not answer)")
    except nats.errors.Error:
        metrics.count(kind, name, "UNREACHABLE")
        return refused("UNREACHABLE", "平台暂时无法访问，请稍后重试 (bus error)")
    outcome = "ok" if reply.get("ok") else str((reply.get("error") or {}).get("code"))
    if reply.get("duplicate"):
        outcome = "duplicate"
    metrics.count(kind, name, outcome)
    return answer(reply)


def build_api(app: FastAPI, sessions: Sessions, metrics: Metrics, city: dict[str, Any], key_secret: str = "") -> None:
    current = session_dependency(sessions)
    Current = Annotated[Session, Depends(current)]
    places = City.model_validate(city)  # the histories name townships and departments that acted
    errors = {401: {"model": QueryReply, "description": "未登录"}, 403: {"model": QueryReply, "description": "无权"},
              422: {"model": QueryReply, "description": "输入不合要求"},
              503: {"model": QueryReply, "description": "平台暂时无法访问"}}

    auth = APIRouter(prefix="/api", tags=["登录"])

    @auth.post("/login", response_model=MeReply, responses={401: {"model": MeReply}, 422: {"model": MeReply},
                                                            429: {"model": MeReply}}, summary="登录")
    async def login(body: Login, request: Request) -> Response:
        try:
            session = await sessions.login(body.user, body.password, request.client.host if request.client else "")
        except Throttled as wait:
            metrics.count("login", "login", "LOGIN_THROTTLED")
            seconds = max(1, math.ceil(wait.wait))
            response = refused("LOGIN_THROTTLED", f"登录失败次数过多，请 {seconds} 秒后再试 (too many failed logins)",
                               "password")
            response.headers["Retry-After"] = str(seconds)
            return response
        except LoginFailed:  # counted: a run of them on /metrics is somebody guessing
            metrics.count("login", "login", "LOGIN_FAILED")
            return refused("LOGIN_FAILED", "用户名或密码不对 (login failed)", "password")
        except SessionsFull:
            metrics.count("login", "login", "SESSIONS_FULL")
            return refused("SESSIONS_FULL", "同时登录的会话已满，请稍后再试 (every session is in use)")
        except UNREACHABLE:
            metrics.count("login", "login", "UNREACHABLE")
            return refused("UNREACHABLE", "平台暂时无法访问，请稍后重试 (the bus did not answer)")
        metrics.count("login", "login", "ok")
        response = JSONResponse({"ok": True, "data": session.me(city)})
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", max_age=12 * 3600)
        response.headers["X-Session-Token"] = session.token  # for programs using `Authorization: Bearer`
        return response

    @auth.post("/logout", summary="退出")
    async def logout(request: Request) -> Response:
        await sessions.logout(bearer(request))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return response

    @auth.get("/me", response_model=MeReply, responses={401: errors[401]}, summary="当前身份")
    async def me(session: Current) -> dict[str, Any]:
        return {"ok": True, "data": session.me(city)}

    app.include_router(auth)

    views = APIRouter(prefix="/api/views", tags=["视图"])
    for q in QUERIES.values():
        views.add_api_route(f"/{q.name}", _query_route(q, current, metrics), methods=["GET"], summary=q.title,
                            response_model=QueryReply, responses={**errors, 404: {"model": QueryReply}},
                            name=f"view_{q.name}")
    app.include_router(views)

    status = APIRouter(prefix="/api/status", tags=["运行状态"])
    for service in SERVICES_WITH_STATUS:
        status.add_api_route(f"/{service}", _status_route(service, current, metrics), methods=["GET"],
                             summary=f"{service} 服务进度", response_model=QueryReply, responses=errors,
                             name=f"status_{service}")
    app.include_router(status)

    past = APIRouter(prefix="/api/history", tags=["历史记录"])
    ORDER_HELP = "recorded 按记录时间（默认）；newest 同上，最新在前；day 按发生日期（补录的事实排在它发生的那天）"
    Order = Literal["recorded", "newest", "day"]  # gongdi.ops.history.ORDERS
    kinds = "、".join(f"{k} {v}" for k, v in SUBJECTS.items())
    about = ("涉及它的每一条记录，来自每个记录服务，按记录时间（`order=newest` 最新在前，`order=day` 按发生日期）排列："
             "发生与记录时间、记录人、命令编号，以及因果链"
             f"（进场 → 谈话任务 → 谈话）。数据形状: {History.__name__}。与总线上各服务的 `qry.<服务>.history` 相同，"
             "按登录身份检查权限：市工委与审计可查看全部，乡镇本乡镇的工地，工地书记本工地；主管部门与大屏不可查看"
             "（含人员姓名）。")

    @past.get("/{kind}/{ident}", response_model=QueryReply, responses=errors, summary="历史记录", description=about,
              name="history")
    async def history_route(kind: Annotated[Subject, Path(description=kinds)],
                            ident: Annotated[Slug, Path(description="工地、党员或案件编号（党支部：其工地编号）")],
                            session: Current, request: Request,
                            order: Annotated[Order, Query(description=ORDER_HELP)] = "recorded",
                            ) -> Response:
        if unknown := sorted(set(request.query_params) - {"order"}):  # `?as_of=` would be silently ignored
            metrics.count("query", "history", "VALIDATION_FAILED")
            return refused("VALIDATION_FAILED", f"{unknown[0]}: 不认识的参数；历史记录总是列出全部记录，只可选排列"
                                                f" order (history takes only order)", unknown[0])
        return await over_bus(metrics, "query", "history", lambda: history(session.client, kind, ident, order, places))

    app.include_router(past)

    for contract in CONTRACTS:
        router = APIRouter(prefix=f"/api/commands/{contract.SERVICE}", tags=[f"命令: {contract.SERVICE}"])
        for name, command in contract.COMMANDS.items():
            router.add_api_route(f"/{name}", _command_route(contract.SERVICE, name, command, current, metrics,
                                                            key_secret),
                                 methods=["POST"], summary=(command.__doc__ or name).strip().splitlines()[0],
                                 response_model=CommandReply, name=f"{contract.SERVICE}_{name}",
                                 responses={**errors, 404: {"model": CommandReply}, 409: {"model": CommandReply},
                                            413: {"model": QueryReply, "description": "请求体过大"},
                                            500: {"model": QueryReply, "description": "平台内部错误（附事件编号）"}})
        app.include_router(router)


def _query_route(q: ViewQuery, current: Callable[..., Session], metrics: Metrics) -> Callable[..., Any]:
    async def route(params: Annotated[q.params, Query()], session: Annotated[Session, Depends(current)]
                    ) -> Response:  # type: ignore[valid-type]
        # What was given only: a default sent on would read as asked for (`as_of_basis` without `as_of` is refused).
        body = params.model_dump(include=params.model_fields_set, exclude_none=True)
        return await over_bus(metrics, "query", q.name, lambda: session.client.query("views", q.name, body))

    route.__doc__ = f"{q.title}。与总线上的 `{q.subject}` 相同，按登录身份检查权限。"
    return route


class BodyRefused(ValueError):
    """A command body the service could not read as it is meant; `field` names a key given twice."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise BodyRefused(f"{key}: 字段重复出现，无法确定取哪一个 (a key given twice)", key)
    return body


def command_json(body: bytes) -> dict[str, Any]:
    """A command's body as the service will read it: UTF-8 JSON (a byte-order mark allowed), each key once. The
    framework's own parser read UTF-16 too (which the service cannot) and let the last of two equal keys win, so a
    body could say `"headcount": -5` and `"headcount": 71` and be recorded as 71."""
    try:
        text = body.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRefused("请求体须为 UTF-8 编码的 JSON (the body is not UTF-8)") from None
    try:
        orjson.loads(text)  # strict: no lone surrogates, which the service could not read either
    except orjson.JSONDecodeError:
        raise BodyRefused("请求体不是有效的 JSON (the body is not JSON)") from None
    raw = json.loads(text, object_pairs_hook=_no_repeats)
    if not isinstance(raw, dict):
        raise BodyRefused("请求体须为 JSON 对象 (the body is not a JSON object)")
    return raw


def _status_route(service: str, current: Callable[..., Session], metrics: Metrics) -> Callable[..., Any]:
    async def route(session: Annotated[Session, Depends(current)]) -> Response:
        return await over_bus(metrics, "query", f"{service}.status",
                              lambda: session.client.request(f"qry.{service}.status", b"{}"))

    route.__doc__ = f"{service} 的事件记录与发布进度、其消费者的死信。数据形状: {ServiceStatus.__name__}。"
    return route


def _command_route(service: str, name: str, command: type[Command], current: Callable[..., Session],
                   metrics: Metrics, key_secret: str = "") -> Callable[..., Any]:
    model = http_body(command)

    async def route(body: Annotated[model, Body()], request: Request,  # type: ignore[valid-type]
                    session: Annotated[Session, Depends(current)],
                    idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Response:
        try:  # a role that only reads is told so in its words, not by the bus's refusal of the subject
            session.identity.check_may_write()
        except ForbiddenError as exc:
            metrics.count("command", f"{service}.{name}", "FORBIDDEN")
            return refused("FORBIDDEN", exc.message, exc.rule)
        # The service parses the body itself, strictly: it gets the bytes as sent, with the command id set.
        try:
            raw = command_json(await request.body())
        except BodyRefused as exc:
            metrics.count("command", f"{service}.{name}", "VALIDATION_FAILED")
            return refused("VALIDATION_FAILED", str(exc), exc.field)
        if len(request.headers.getlist("idempotency-key")) > 1:  # which would a retry send? Not one taken silently
            metrics.count("command", f"{service}.{name}", "VALIDATION_FAILED")
            return refused("VALIDATION_FAILED", "Idempotency-Key: 只能有一个 (one Idempotency-Key header)",
                           "Idempotency-Key")
        body_id = raw.get("command_id")
        raw["command_id"] = command_id_for(idempotency_key, body_id, session.identity.name, key_secret)
        if idempotency_key and body_id is not None and not _same_id(body_id, raw["command_id"]):
            metrics.count("command", f"{service}.{name}", "VALIDATION_FAILED")
            return refused("VALIDATION_FAILED", "command_id: 与 Idempotency-Key 不一致，只用其中一个即可"
                           " (command_id and Idempotency-Key differ)", "command_id")
        return await over_bus(metrics, "command", f"{service}.{name}",
                              lambda: session.client.send_raw(service, name, orjson.dumps(raw)))

    route.__doc__ = (f"{(command.__doc__ or name).strip()}\n\n发往 `cmd.<scope>.{service}.{name}`；"
                     "`Idempotency-Key` 头即命令编号：同一键重发只记录一次。")
    return route

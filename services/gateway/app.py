"""The gateway's composition root: settings, the platform connection, sessions, the HTTP app and its server."""

import asyncio
import contextlib
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

import structlog
import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.errors import explain
from contracts.queries import QUERIES
from contracts.replies import QueryReply
from gongdi.ops import processfile
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import each_status
from gongdi.service.logging import configure
from gongdi.service.process import MAX_REQUEST_BYTES, origin_of
from gongdi.service.settings import Settings
from services.gateway import api, exports, health, imports, live, metrics, pages, reports
from services.gateway.asyncapi import specification
from services.gateway.sessions import Session, Sessions

VERSION = "0.2.0"
SWEEP_EVERY = 300.0  # seconds between closing idle sessions
# Seconds a stopping gateway waits for open requests. Live streams never end by themselves: without a bound, a
# stopped gateway would keep feeding keep-alives to screens that then look live on a dead process.
GRACE = 2
SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # a live view's key: a site id, township or department code
# The upload of a file to import reads its body itself, up to its own larger limit (services.gateway.imports).
OWN_BODY_LIMIT = ("/api/import/",)


class BodyLimit:
    """Refuses a request body larger than the bus would carry (`MAX_REQUEST_BYTES`) with 413 REQUEST_TOO_LARGE
    before the app reads it: by its Content-Length, unread; sent without one (chunked), as soon as what arrived
    passes the limit. Otherwise the app gets the body as it came. (Without this, FastAPI read and parsed a body of
    any size, even before the login was checked.) The rest of a refused body is the server's to skip: uvicorn drops
    what still arrives of it and keeps the connection, so the client reads the 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_REQUEST_BYTES, own: tuple[str, ...] = OWN_BODY_LIMIT,
                 counts: metrics.Metrics | None = None):
        self.app = app
        self.limit = limit
        self.own = own
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.own):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.strip().isdigit() and int(length) > self.limit:
            await self.refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            size += len(message.get("body", b""))
            if size > self.limit:
                await self.refuse(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        first: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            # The body once, then the server's own messages (a disconnect, which a live stream listens for).
            return first.pop() if first else await receive()

        await self.app(scope, replay, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.counts is not None:
            self.counts.count("gateway", "body", "REQUEST_TOO_LARGE")
        reply = api.refused("REQUEST_TOO_LARGE", f"请求过大：请求体不能超过 {self.limit // 1024} KiB"
                                                 f" (request body over {self.limit} bytes)")
        await reply(scope, receive, send)


UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SameOrigin:
    """Refuses a request that changes something (POST …) sent by a page of another origin (403 CROSS_ORIGIN): a
    browser adds its session cookie to a form another site posts here (a roster uploaded, a command recorded), and
    SameSite=Strict still lets a site on another port of the same host, or another subdomain, do it. Browsers always
    send `Origin` with such requests; programs (curl, the CLI's HTTP use) send none and are not affected."""

    def __init__(self, app: ASGIApp, counts: metrics.Metrics | None = None):
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            host = headers.get("x-forwarded-host") or headers.get("host", "")
            if origin is not None and urlsplit(origin).netloc != host:
                if self.counts is not None:
                    self.counts.count("gateway", "origin", "CROSS_ORIGIN")
                reply = api.refused("CROSS_ORIGIN", "请求来自其他网站的页面，未执行 (request from another site's page)")
                await reply(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build(settings: Settings) -> FastAPI:
    """The whole HTTP app; nothing connects until its lifespan starts."""
    city = settings.city()
    city_info: dict[str, Any] = {"code": city.code, "name": city.name, "townships": dict(city.townships),
                                 "departments": dict(city.departments)}
    sessions = Sessions(settings)
    counts = metrics.Metrics()
    platform: dict[str, GongdiClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        platform["client"] = await GongdiClient.connect(settings, timeout=5, lasting=True)
        sweeper = asyncio.create_task(_sweep(sessions))
        # Its own lines, since uvicorn's are turned down to warnings: before, gateway.log stayed empty.
        log = structlog.get_logger()
        log.info("gateway serving", host=settings.http_host, port=settings.http_port, city=city.code)
        try:
            yield
        finally:
            sweeper.cancel()
            log.info("gateway stopping", sessions=len(sessions.by_token))
            await sessions.close()
            await platform["client"].close()

    app = FastAPI(title=f"{city.name} 工地党建 HTTP API", version=VERSION, lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="每个命令与查询都与 NATS 总线上的相同，由同一份 contracts 生成；"
                  "登录后以该身份的权限执行。错误形如 `{ok: false, error: {code, message, field}}`。")

    app.add_middleware(BodyLimit, counts=counts)
    app.add_middleware(SameOrigin, counts=counts)

    def refused(request: Request, code: str, message: str, field: str | None = None,
                problems: Any = None) -> Response:
        """A refusal by the gateway itself, counted like the services' (by the route's template: no ids)."""
        route = request.scope.get("route")
        counts.count("gateway", getattr(route, "path", "other"), code)
        return api.refused(code, message, field, problems)

    @app.exception_handler(api.NotLoggedIn)
    async def not_logged_in(request: Request, __: Exception) -> Response:
        return refused(request, "LOGIN_REQUIRED", "请先登录 (log in first)")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # A JSON syntax error's location is a position in the text, not a field.
        errors = [{**e, "loc": ()} if e.get("type") == "json_invalid" else e for e in exc.errors()]
        info = explain(errors)
        return refused(request, info.code, info.message, info.field, info.problems)

    @app.exception_handler(400)
    async def unreadable(request: Request, __: Exception) -> Response:  # FastAPI: a body it could not decode at all
        return refused(request, "VALIDATION_FAILED", "请求: 不是有效的 UTF-8 JSON，或嵌套过深"
                                                     " (the body is no valid UTF-8 JSON, or nested too deeply)")

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> Response:
        # Every request gets a typed answer, even from a bug: the same INTERNAL with an incident id as the services
        # give (the exception's type and place in the log, never its text, which may quote the input).
        incident = uuid.uuid4().hex[:12]
        structlog.get_logger().error("request failed", path=request.url.path, incident=incident,
                                     error=type(exc).__name__, where=origin_of(exc))
        return refused(request, "INTERNAL", f"平台内部错误，请联系管理员，编号 {incident} (internal error)")

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc: Exception) -> Response:
        reply = refused(request, "METHOD_NOT_ALLOWED", "这个接口不接受这种请求方法 (method not allowed)")
        reply.headers.update(getattr(exc, "headers", None) or {})
        return reply

    api.build_api(app, sessions, counts, city_info, settings.nats_password or "")
    exports.build_exports(app, sessions, counts, city)
    imports.build_imports(app, sessions, counts, city)
    reports.build_reports(app, sessions, counts, city)
    current = api.session_dependency(sessions)

    @app.get("/api/live", tags=["实时"], summary="视图的实时推送 (Server-Sent Events)",
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}, 401: {"model": QueryReply},
                        403: {"model": QueryReply}, 404: {"model": QueryReply}, 422: {"model": QueryReply}})
    async def live_view(request: Request, session: Annotated[Session, Depends(current)],
                        view: Annotated[live.LiveView, Query()] = "city",
                        key: Annotated[str | None, Query(pattern=SLUG)] = None) -> Response:
        """先推送一份完整快照，之后每次变化后一秒内再推送；`seq` 只增不减，断线重连从新的快照开始。
        `key` 也可写作该视图查询的参数名（`site_id`、`township`、`department`）。无权或不存在时直接以 HTTP 状态码拒绝，
        浏览器的 EventSource 不会反复重连。"""
        q = QUERIES[view]
        if key is None and q.key:  # the view's own parameter name, as /api/views takes it
            named = request.query_params.get(q.key)
            key = named if named and re.fullmatch(SLUG, named) else None
        if view != "city" and key is None:
            return api.refused("VALIDATION_FAILED", f"key: 必填，{q.key} 的值 (Field required)", "key")
        # Asked once before the stream starts: a refusal is an HTTP status, which ends an EventSource for good (a
        # refusal inside the stream was followed by a reconnect every second, for ever).
        first = await api.over_bus(counts, "query", f"views.{view}",
                                   lambda: session.client.query("views", view, {q.key: key} if q.key else {}))
        if first.status_code != 200:
            return first
        last = request.headers.get("last-event-id", "")
        seen = int(last) if last.isascii() and last.isdigit() and len(last) <= 18 else -1
        stream = live.snapshots(session, platform["client"].nc, view, key, city.code, counts, seen)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    stalls = health.Stalls(after=settings.health_stuck_after)

    @app.get("/health", tags=["运行状态"], summary="健康检查",
             description="200 when every service answers and every relay and consumer keeps up; otherwise 503 with "
                         "`problems` naming the service and what is wrong (SERVICE_MISSING, RELAY_STUCK, "
                         "CONSUMER_STUCK, DATABASE_BEHIND_STREAM, PROCESS_DOWN).")
    async def health_check() -> Response:
        body = health.assess(await each_status(platform["client"], health.ASK_WITHIN), stalls,
                             processfile.read(settings.process_file))
        body |= {"bus": platform["client"].nc.is_connected, "sessions": len(sessions.by_token)}
        return JSONResponse(body, status_code=200 if body["ok"] else 503)

    @app.get("/metrics", tags=["运行状态"], summary="Prometheus 指标", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(counts, await each_status(platform["client"], health.ASK_WITHIN),
                                       len(sessions.by_token), processfile.read(settings.process_file)),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    document = specification(city.code, VERSION).to_specification().to_json()
    pages.build_pages(app, sessions, document, pages.asyncapi_page_html(json.loads(document)))
    return app


async def _sweep(sessions: Sessions) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY)
        await sessions.sweep()


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "serve"
    if what != "serve":
        sys.exit(f"usage: python -m services.gateway [serve], not {what!r}")
    settings = Settings.from_env()
    configure(settings.log_format, settings.log_level, "gateway")
    missing = pages.missing_assets()
    if missing:
        structlog.get_logger().warning("dashboard assets missing; run `make` (npm ci in services/gateway/web)",
                                       packages=missing)
    config = uvicorn.Config(build(settings), host=settings.http_host, port=settings.http_port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=GRACE)
    uvicorn.Server(config).run()

"""The dashboard's pages and assets, all served from this machine: no CDN is reachable on a government intranet."""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from contracts.identity import Identity, Role
from services.gateway.api import bearer
from services.gateway.sessions import Sessions

WEB = Path(__file__).resolve().parent / "web"
STATIC = WEB / "static"
MODULES = WEB / "node_modules"
# npm packages (pinned by web/package-lock.json, installed by `make`) served under /vendor/<name>.
VENDOR = ["echarts", "swagger-ui-dist"]
# Page path → file in static/ (the path's parameters are read by the page's script from location).
PAGES = {"/login": "login.html", "/city": "city.html", "/township/{code}": "township.html",
         "/department/{code}": "department.html", "/site/{site_id}": "site.html",
         "/site/{site_id}/record": "record.html", "/import": "import.html",
         "/history/{kind}/{ident}": "history.html", "/register": "register.html"}
# Only this machine's own scripts (files, never inline or eval'd), assets and API; inline styles for the charts.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")


def home(identity: Identity) -> str:
    if identity.role is Role.TOWNSHIP:
        return f"/township/{identity.township}"
    if identity.role is Role.SITE:
        return f"/site/{identity.site}"
    if identity.role is Role.DEPARTMENT:
        return f"/department/{identity.department}"
    return "/city"


def missing_assets() -> list[str]:
    return [name for name in VENDOR if not (MODULES / name / "package.json").exists()]


def build_pages(app: FastAPI, sessions: Sessions, asyncapi_json: str, asyncapi_html: str) -> None:
    @app.middleware("http")
    async def no_foreign_content(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    def page(file: str, public: bool = False):  # type: ignore[no-untyped-def]
        async def serve(request: Request) -> Response:
            if not public and sessions.get(bearer(request)) is None:
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            return FileResponse(STATIC / file, headers={"Cache-Control": "no-cache"})

        return serve

    for path, file in PAGES.items():
        app.add_api_route(path, page(file, public=path == "/login"), methods=["GET"], include_in_schema=False)

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        session = sessions.get(bearer(request))
        return RedirectResponse(home(session.identity) if session else "/login", status_code=303)

    # Swagger UI from the local package, started by a script file (docs.js), so no page needs an inline script.
    app.add_api_route("/docs", page("docs.html", public=True), methods=["GET"], include_in_schema=False)

    @app.get("/asyncapi", include_in_schema=False)
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(asyncapi_html)

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_document() -> Response:
        return Response(asyncapi_json, media_type="application/json")

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    for name in VENDOR:
        # A package not installed is not there (404, and the gateway's log says so at start), not a 500 per asset.
        if (MODULES / name).is_dir():
            app.mount(f"/vendor/{name}", StaticFiles(directory=MODULES / name), name=f"vendor-{name}")

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"ok": False, "error": {"code": "NOT_FOUND", "message": "没有这个接口 (no such path)",
                                                        "field": None}}, status_code=404)
        return HTMLResponse("<!doctype html><meta charset=utf-8><title>找不到页面</title>"
                            "<p>找不到这个页面。<a href='/'>回到首页</a></p>", status_code=404)


def asyncapi_page_html(document: dict) -> str:
    """FastStream's AsyncAPI document as a page of its own: channels by kind, each with its message's schema. Drawn
    here rather than by the AsyncAPI React viewer, whose npm package brings 246 others (119 MB) for one page."""
    schemas = document.get("components", {}).get("schemas", {})
    messages = document.get("components", {}).get("messages", {})
    kinds = {"cmd": "命令 (请求/应答)", "qry": "查询 (请求/应答)", "evt": "事件 (JetStream)", "live": "实时变化"}
    rows: dict[str, list[str]] = {k: [] for k in kinds}
    for name, channel in sorted(document.get("channels", {}).items()):
        payload = ""
        for ref in channel.get("messages", {}).values():
            message = messages.get(ref.get("$ref", "").rsplit("/", 1)[-1], {})
            target = message.get("payload", {}).get("$ref", "")
            if target:
                payload = target.rsplit("/", 1)[-1]
                payload = f'<a href="#schema-{escape(payload)}">{escape(payload)}</a>'
        kind = name.split(".", 1)[0]
        rows.setdefault(kind, []).append(
            f"<tr><td><code>{escape(channel.get('address', name))}</code></td><td>{payload}</td>"
            f"<td>{escape(channel.get('description', ''))}</td></tr>")
    sections = ""
    for kind, lines in rows.items():
        if lines:
            sections += (f"<h2>{escape(kinds.get(kind, kind))} · {len(lines)}</h2><table><tr><th>主题</th><th>消息</th>"
                         "<th>说明</th></tr>" + "".join(lines) + "</table>")
    defs = "".join(f'<details id="schema-{escape(n)}"><summary>{escape(n)}</summary><pre>'
                   f"{escape(json.dumps(schema, ensure_ascii=False, indent=2))}</pre></details>"
                   for n, schema in sorted(schemas.items()))
    info = document.get("info", {})
    return (f"<!doctype html><html lang=zh-CN><meta charset=utf-8><title>{escape(info.get('title', ''))} AsyncAPI"
            "</title><link rel=stylesheet href=/static/style.css><link rel=icon href=/static/favicon.svg>"
            f"<body class=doc><main class=doc><h1>{escape(info.get('title', ''))}</h1>"
            f"<p>AsyncAPI {escape(document.get('asyncapi', ''))} · {escape(info.get('description', ''))} · "
            "<a href=/asyncapi.json>asyncapi.json</a> · <a href=/docs>HTTP API</a></p>"
            f"{sections}<h2>消息结构</h2>{defs}</main></body></html>")

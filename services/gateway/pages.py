"""The dashboard's pages and assets, all served from this machine: no CDN is reachable on a government intranet."""
from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from faststream.specification.asyncapi.site import get_asyncapi_html

from contracts.identity import Identity, Role
from services.gateway.sessions import Sessions

WEB = Path(__file__).resolve().parent / "web"
STATIC = WEB / "static"
MODULES = WEB / "node_modules"
# npm packages (pinned by web/package-lock.json, installed by `make`) served under /vendor/<name>.
VENDOR = ["echarts", "swagger-ui-dist", "@asyncapi/react-component"]
# Page path → file in static/ (the path's parameters are read by the page's script from location).
PAGES = {"/login": "login.html", "/city": "city.html", "/township/{code}": "township.html",
         "/department/{code}": "department.html", "/site/{site_id}": "site.html",
         "/site/{site_id}/record": "record.html"}
# Only this machine's own assets and API; inline styles for charts and the documentation pages' own scripts.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
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
    from services.gateway.api import bearer

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

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="工地党建 HTTP API",
                                   swagger_js_url="/vendor/swagger-ui-dist/swagger-ui-bundle.js",
                                   swagger_css_url="/vendor/swagger-ui-dist/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")

    @app.get("/asyncapi", include_in_schema=False)
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(asyncapi_html)

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_document() -> Response:
        return Response(asyncapi_json, media_type="application/json")

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    for name in VENDOR:
        app.mount(f"/vendor/{name}", StaticFiles(directory=MODULES / name, check_dir=False), name=f"vendor-{name}")

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"ok": False, "error": {"code": "NOT_FOUND", "message": "没有这个接口 (no such path)",
                                                        "field": None}}, status_code=404)
        return HTMLResponse("<!doctype html><meta charset=utf-8><title>找不到页面</title>"
                            "<p>找不到这个页面。<a href='/'>回到首页</a></p>", status_code=404)


def asyncapi_page_html(schema) -> str:  # type: ignore[no-untyped-def]
    """FastStream's AsyncAPI page with the viewer from /vendor; its favicon links to the internet are dropped."""
    html = get_asyncapi_html(schema, asyncapi_js_url="/vendor/@asyncapi/react-component/browser/standalone/index.js",
                             asyncapi_css_url="/vendor/@asyncapi/react-component/styles/default.min.css",
                             try_it_out_path=None)
    return re.sub(r'\s*<link rel="icon"[^>]*https?://[^>]*>', "", html)

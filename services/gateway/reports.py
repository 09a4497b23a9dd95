"""The yearly report over HTTP: the same HTML and PDF as `gongdi report`, made as the person logged in."""

import asyncio
from typing import Annotated, Literal

import nats.errors
from fastapi import APIRouter, Depends, FastAPI, Path, Query
from fastapi.responses import Response

from contracts.city import City
from contracts.replies import QueryReply
from gongdi.ops.client import UNREACHABLE, GongdiClient
from gongdi.report import QUERY_TIMEOUT, ReportError, refusal, year_refusal
from gongdi.report.gather import gather
from gongdi.report.html import render_html
from gongdi.report.model import build
from gongdi.report.pdf import render_pdf
from services.gateway.api import refused, session_dependency
from services.gateway.exports import content_disposition
from services.gateway.metrics import Metrics
from services.gateway.sessions import Session, Sessions


def build_reports(app: FastAPI, sessions: Sessions, metrics: Metrics, city: City) -> None:
    current = session_dependency(sessions)
    # One report at a time: each asks the views some sixty as-of answers, each a replay of the log. A second
    # request waits its turn rather than doubling the load on the views.
    making = asyncio.Lock()
    router = APIRouter(prefix="/api/report", tags=["年度报告"])

    @router.get("/{year}", summary="全市年度报告（HTML 或 PDF）", response_class=Response,
                responses={200: {"content": {"text/html": {}, "application/pdf": {}}},
                           403: {"model": QueryReply, "description": "无权"},
                           503: {"model": QueryReply, "description": "平台暂时无法访问"}})
    async def report(session: Annotated[Session, Depends(current)],
                     year: Annotated[int, Path(description="年度；范围同 `gongdi report --year`")],
                     format: Annotated[Literal["html", "pdf"], Query()] = "html") -> Response:
        """与 `gongdi report --year` 相同：按业务日期截至当年 12 月 31 日的视图，当年发生的事项按当年计。
        市工委、审计与大屏身份可生成；报告只列项目与村名，不含个人姓名。全市数据较多时需数十秒。"""
        name = f"report.{format}"
        if (why := refusal(session.identity.name)) is not None:
            metrics.count("report", name, "FORBIDDEN")
            return refused("FORBIDDEN", why, "NOT_YOURS")
        if (why := year_refusal(year)) is not None:  # the same years as `gongdi report --year`
            metrics.count("report", name, "VALIDATION_FAILED")
            return refused("VALIDATION_FAILED", f"year: {why}", "year")
        # The session's own connection, waiting as long as an as-of answer may take.
        client = GongdiClient(session.client.nc, QUERY_TIMEOUT, session.client.user)
        try:
            async with making:
                made = build(city, year, await gather(client, city, year))
        except ReportError as exc:
            metrics.count("report", name, exc.code)
            return refused(exc.code, exc.message)
        except (*UNREACHABLE, nats.errors.Error):
            metrics.count("report", name, "UNREACHABLE")
            return refused("UNREACHABLE", "平台暂时无法访问，请稍后重试 (the platform did not answer)")
        metrics.count("report", name, "ok")
        stem = f"{city.name}-{year}年工地党建年度报告"
        if format == "pdf":
            body, media = await asyncio.to_thread(render_pdf, made), "application/pdf"
        else:
            body, media = render_html(made).encode("utf-8"), "text/html; charset=utf-8"
        disposition = content_disposition(stem, f"report-{year}", format)
        if format == "html":  # read in the browser; the PDF is saved
            disposition = "inline" + disposition.removeprefix("attachment")
        return Response(body, media_type=media, headers={"Content-Disposition": disposition,
                                                         "Cache-Control": "no-store"})

    app.include_router(router)

"""Downloads: every view, the roster and the project list as .xlsx or .csv, asked as the person logged in."""

import asyncio
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import quote

import nats.errors
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from contracts.base import Slug
from contracts.city import City
from contracts.queries import QUERIES
from contracts.replies import QueryReply
from gongdi.ops.client import UNREACHABLE
from gongdi.ops.readiness import stream_status_if_allowed
from gongdi.sheets.export import EXPORTS, Refused, gather
from gongdi.sheets.workbook import MEDIA_TYPES, write
from services.gateway.api import refused, session_dependency
from services.gateway.metrics import Metrics
from services.gateway.sessions import Session, Sessions

Format = Literal["xlsx", "csv"]
NOT_IN_FALLBACK = re.compile(r"[^A-Za-z0-9._-]")


class ListParams(BaseModel):
    """The roster and the project list: every site the login may see, or one township's."""

    model_config = ConfigDict(extra="forbid")
    township: Slug | None = None


def export_params(name: str) -> type[BaseModel]:
    """A view's own query parameters (or a list's) plus the file format, as one model: the query string is checked
    as the view's route checks it."""
    base = QUERIES[name].params if name in QUERIES else ListParams
    return create_model(f"{base.__name__}Export", __base__=base, __module__=__name__,
                        format=(Format, Field("xlsx", description="xlsx：每部分一个工作表；csv：UTF-8（带 BOM），"
                                                                  "各部分依次排列，以【标题】行分隔")))


def content_disposition(stem: str, fallback: str, extension: str) -> str:
    """An attachment with its Chinese name (RFC 6266 / RFC 5987 `filename*`), and an ASCII one for old clients."""
    plain = NOT_IN_FALLBACK.sub("_", fallback) or "export"
    return (f'attachment; filename="{plain}.{extension}"; '
            f"filename*=UTF-8''{quote(f'{stem}.{extension}', safe='')}")


def build_exports(app: FastAPI, sessions: Sessions, metrics: Metrics, city: City) -> None:
    current = session_dependency(sessions)
    errors = {401: {"model": QueryReply, "description": "未登录"}, 403: {"model": QueryReply, "description": "无权"},
              404: {"model": QueryReply, "description": "没有找到"},
              422: {"model": QueryReply, "description": "输入不合要求"},
              503: {"model": QueryReply, "description": "平台暂时无法访问"}}
    files = {200: {"description": "文件", "content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}}}
    router = APIRouter(prefix="/api/export", tags=["导出"])
    for name, title in EXPORTS.items():
        router.add_api_route(f"/{name}", _route(name, title, export_params(name), current, metrics, city),
                             methods=["GET"], summary=f"下载{title}", response_class=Response,
                             responses={**files, **errors}, name=f"export_{name}")
    app.include_router(router)


def _route(name: str, title: str, model: type[BaseModel], current: Callable[..., Session], metrics: Metrics,
           city: City) -> Callable[..., Any]:
    async def route(params: Annotated[model, Query()],  # type: ignore[valid-type]
                    session: Annotated[Session, Depends(current)]) -> Response:
        fmt: str = params.format  # type: ignore[attr-defined]
        # What was given only: a default sent on would read as asked for (`as_of_basis` without `as_of` is refused).
        body = params.model_dump(mode="json", include=params.model_fields_set - {"format"}, exclude_none=True)

        async def ask(query: str, values: dict[str, Any]) -> dict[str, Any]:
            return await session.client.query("views", query, values)

        try:
            made = await gather(ask, name, body, session.identity, city,
                                platform=lambda: stream_status_if_allowed(session.client))
        except Refused as exc:
            metrics.count("export", name, exc.code)
            return refused(exc.code, exc.message, exc.field)
        except (*UNREACHABLE, nats.errors.Error):
            metrics.count("export", name, "UNREACHABLE")
            return refused("UNREACHABLE", "平台暂时无法访问，请稍后重试 (the platform did not answer)")
        # Writing a workbook is CPU work: off the event loop, so live streams keep flowing meanwhile.
        data = await asyncio.to_thread(write, made.sections, fmt, made.title)
        metrics.count("export", name, "ok")
        return Response(data, media_type=MEDIA_TYPES[fmt],
                        headers={"Content-Disposition": content_disposition(made.stem, made.ascii_stem, fmt),
                                 "Cache-Control": "no-store"})

    what = {"members": "在场党员，列与导入模板相同", "sites": "工地登记信息，列与导入模板相同"}
    route.__doc__ = (f"{title}，{what.get(name, '每部分一个工作表')}；数据来自与 `/api/views` 相同的查询，按登录身份"
                     "检查权限（大屏身份只得到不含姓名的汇总）。`Content-Disposition` 带中文文件名。")
    return route

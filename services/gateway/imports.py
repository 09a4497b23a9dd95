"""Import over HTTP: a roster or a project list uploaded (multipart), each row sent as the logged-in person's command.

The gateway holds no rights of its own here either: the rows go over the person's own NATS connection, so a township
importing another township's sites gets FORBIDDEN on those rows from the services, as with any command."""

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal
from urllib.parse import quote

import nats.errors
import orjson
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts.city import City
from contracts.replies import ErrorInfo, QueryReply
from gongdi.ops.client import UNREACHABLE
from gongdi.sheets.importing import (
    WIDTH,
    Progress,
    Report,
    kind_of,
    may_not_import,
    read,
    result_file,
    run_import,
)
from gongdi.sheets.reading import MAX_BYTES, SheetError
from gongdi.sheets.templates import TITLES, template, template_csv
from services.gateway.api import refused, session_dependency
from services.gateway.metrics import Metrics
from services.gateway.sessions import Session, Sessions

ImportKind = Literal["members", "sites"]
NDJSON = "application/x-ndjson"
UNREACHABLE_TEXT = "平台暂时无法访问，请稍后重试 (the platform did not answer)"
PROGRESS_EVERY = 0.25  # seconds between progress lines at most (the first and the last row always have one)
MAX_BODY = MAX_BYTES + 64 * 1024  # the file and the form's own lines
MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8"}
FORM = {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": ".xlsx 或 .csv（UTF-8 或 GBK）"},
                   "dry_run": {"type": "boolean", "description": "只校验，不记录（与查询参数 dry_run 相同）"}}}}}


class TooLarge(Exception):
    """The body grew past MAX_BODY while it was read."""


class ImportRow(BaseModel):
    row: int
    name: str
    status: Literal["recorded", "already", "refused", "valid", "skipped"]
    code: str | None
    column: str | None
    message: str
    result: str
    command_id: str | None


class ResultFile(BaseModel):
    name: str
    media_type: str
    base64: str


class ImportResult(BaseModel):
    kind: ImportKind
    file: str
    dry_run: bool
    summary: str
    counts: dict[str, int]
    rows: list[ImportRow]
    result_file: ResultFile


class ImportReply(BaseModel):
    ok: bool
    data: ImportResult | None = None
    error: ErrorInfo | None = None


def attachment(name: str, fallback: str) -> str:
    """An attachment with its Chinese name (RFC 5987 `filename*`) and an ASCII one for old clients."""
    return f'attachment; filename="{fallback}"; filename*=UTF-8\'\'{quote(name, safe="")}'


async def _limited(request: Request) -> Any:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > MAX_BODY:
            raise TooLarge()
        yield chunk


async def _form(request: Request) -> tuple[bytes, str, bool | None]:
    """The uploaded file, its name, and the form's dry_run if it has one; refusals as (code, message) in ValueError."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ValueError("请以 multipart/form-data 上传文件（字段名 file）")
    parser = MultiPartParser(request.headers, _limited(request), max_files=1, max_fields=5, max_part_size=1024)
    form = await parser.parse()
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValueError("缺少文件：表单字段 file 应为上传的 .xlsx 或 .csv")
        data = await upload.read()
        flag = form.get("dry_run")
        dry_run = None if flag is None else str(flag).strip().lower() in ("1", "true", "on", "yes", "是")
        return data, upload.filename or "", dry_run
    finally:
        await form.close()


def build_imports(app: FastAPI, sessions: Sessions, metrics: Metrics, city: City) -> None:
    current = session_dependency(sessions)
    Current = Annotated[Session, Depends(current)]
    errors = {401: {"model": QueryReply, "description": "未登录"},
              403: {"model": QueryReply, "description": "只能查看的身份，不能导入"},
              413: {"model": QueryReply, "description": "文件过大"},
              422: {"model": QueryReply, "description": "不是可读取的表格，或缺少表头"},
              503: {"model": QueryReply, "description": "平台暂时无法访问"}}
    router = APIRouter(prefix="/api/import", tags=["导入"])
    running: set[asyncio.Task] = set()  # imports whose page went away: they still finish (a re-import shows 已导入)
    kinds = "members 党员花名册（每行一条 RecordArrival）、sites 重点项目清单（每行一条 RegisterSite）"

    @router.get("/{kind}/template", summary="下载导入模板", response_class=Response,
                responses={200: {"description": "模板文件", "content": {MEDIA["xlsx"]: {}, MEDIA["csv"]: {}}},
                           401: errors[401], 422: errors[422]})
    async def template_route(kind: Annotated[ImportKind, Path(description=kinds)], _: Current,
                             format: Annotated[Literal["xlsx", "csv"], Query()] = "xlsx") -> Response:
        """表头、一行示例（导入时自动跳过）、列宽与下拉选项；另有“填写说明”工作表（xlsx）。"""
        data = template(kind, city) if format == "xlsx" else template_csv(kind, city)
        name = f"{TITLES[kind]}模板.{format}"
        return Response(data, media_type=MEDIA[format],
                        headers={"Content-Disposition": attachment(name, f"{kind}-template.{format}")})

    @router.post("/{kind}", summary="导入党员花名册或重点项目清单", response_model=ImportReply,
                 responses={200: {"model": ImportReply}, **errors}, openapi_extra={"requestBody": {
                     "required": True, "content": FORM}})
    async def import_route(kind: Annotated[ImportKind, Path(description=kinds)], request: Request,
                           session: Current, dry_run: Annotated[bool, Query()] = False) -> Response:
        """每行作为一条普通命令，以登录身份发送（权限与逐条记录相同）；命令编号由行内容推出，同一文件再导入不会
        重复记录（回复为“已导入”）。`dry_run` 只校验、不记录。只能查看的身份（主管部门、审计、大屏）不能导入，
        在读取文件之前即拒绝（403 FORBIDDEN，field READ_ONLY_ROLE）。回复每行的结果，以及带“导入结果”列的原文件
        （base64）。请求头 `Accept: application/x-ndjson` 时逐行回复：发送过程中的进度
        `{"progress": {"done": 已处理行数, "total": 总行数}}`，最后一行是同样的回复。"""
        read_only = may_not_import(session.identity.name)
        if read_only is not None:  # before the upload is read: every row would be refused
            metrics.count("import", kind, read_only.rule)
            return refused("FORBIDDEN", read_only.message, read_only.rule)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            return refused("REQUEST_TOO_LARGE", f"文件超过 {MAX_BYTES // (1024 * 1024)} MB，请分成几个文件导入")
        try:
            data, filename, flag = await _form(request)
        except TooLarge:
            return refused("REQUEST_TOO_LARGE", f"文件超过 {MAX_BYTES // (1024 * 1024)} MB，请分成几个文件导入")
        except (ValueError, MultiPartException) as exc:
            return refused("VALIDATION_FAILED", f"file: {exc}", "file")
        dry = dry_run or bool(flag)
        try:
            sheet = await asyncio.to_thread(read, kind_of(kind), data, filename)
        except SheetError as exc:
            metrics.count("import", kind, exc.code)
            return refused("VALIDATION_FAILED", f"file: {exc.message} ({exc.code})", "file")

        async def imported(progress: Progress | None) -> dict[str, Any]:
            try:
                report = await run_import(kind_of(kind), data, filename, city, session.client, dry, WIDTH,
                                          progress, sheet=sheet)
            except (*UNREACHABLE, nats.errors.Error):
                metrics.count("import", kind, "UNREACHABLE")
                return {"ok": False, "error": ErrorInfo(code="UNREACHABLE", message=UNREACHABLE_TEXT).model_dump()}
            metrics.count("import", kind, "dry_run" if dry else "refused_rows" if report.refused else "ok")
            return {"ok": True, "data": await asyncio.to_thread(_body, kind, data, report)}

        if NDJSON in request.headers.get("accept", ""):
            return StreamingResponse(_with_progress(imported, running), media_type=NDJSON)
        reply = await imported(None)
        if not reply["ok"]:
            return refused(reply["error"]["code"], reply["error"]["message"])
        return JSONResponse(reply)

    app.include_router(router)


async def _with_progress(imported: Callable[[Progress], Awaitable[dict[str, Any]]], running: set[asyncio.Task]
                         ) -> AsyncIterator[bytes]:
    """The import as lines of JSON (`Accept: application/x-ndjson`): `{"progress": {"done", "total"}}` as rows are
    sent, then the reply the plain request gets. A page shows how far a long file has come."""
    lines: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done in (1, total) or now - last >= PROGRESS_EVERY:
            last = now
            lines.put_nowait((done, total))

    task = asyncio.ensure_future(imported(progress))
    running.add(task)
    task.add_done_callback(running.discard)
    while not task.done() or not lines.empty():
        if lines.empty():
            waiting = asyncio.ensure_future(lines.get())
            await asyncio.wait((task, waiting), return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
                continue
            done, total = waiting.result()
        else:
            done, total = lines.get_nowait()
        yield orjson.dumps({"progress": {"done": done, "total": total}}) + b"\n"
    yield orjson.dumps(task.result()) + b"\n"


def _body(kind: str, data: bytes, report: Report) -> dict[str, Any]:
    made = result_file(data, report)
    return {"kind": kind, "file": report.filename, "dry_run": report.dry_run, "summary": report.summary(),
            "counts": report.counts(), "rows": report.rows(),
            "result_file": {"name": report.result_name(), "media_type": MEDIA[report.sheet.format],
                            "base64": base64.b64encode(made).decode()}}

"""Rows of a roster or a project list → the ordinary commands (RecordArrival, RegisterSite), sent as the importer.

Nothing here has rights of its own: every row goes over NATS as the importer's identity, and the services check it
like any command. Each command's id is derived from who imports, the kind, the target ids and the normalised row,
so importing the same file again records nothing twice (the services answer `duplicate`, shown as 已导入). Rows are
sent `width` at a time, every row of one target (a member, a site) in file order, sites before members."""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import nats.errors
import orjson
from openpyxl import load_workbook
from openpyxl.styles import Font
from pydantic import ValidationError

from contracts.base import Command
from contracts.city import City
from contracts.errors import explain
from contracts.identity import LABELS, ForbiddenError, Identity, Role
from contracts.membership import SERVICE, RecordArrival, RegisterSite
from contracts.queries import SERVICE as VIEWS
from gongdi.ops.client import UNREACHABLE, GongdiClient
from gongdi.sheets import cells
from gongdi.sheets.cells import CellRefusal
from gongdi.sheets.columns import (
    ALSO,
    GENDER,
    HEADER_ALIASES,
    JOB,
    MEMBER_COLUMNS,
    RELATION,
    SITE_COLUMNS,
    STATUS,
    UNIT_KIND,
)
from gongdi.sheets.reading import Sheet, SheetError, Uncomputed, header_key, read_sheet
from gongdi.sheets.templates import EXAMPLE_MEMBER, EXAMPLE_SITE, TITLES

RESULT_HEADER = "导入结果"
WIDTH = 32  # commands in flight
# Every imported command's id lies in this namespace (uuid5), apart from ids typed in or made at random.
NAMESPACE = uuid.UUID("8d3c2f4e-6b1a-5c7d-9e0f-1a2b3c4d5e6f")
UNKNOWN_SITE = "UNKNOWN_SITE"
AMBIGUOUS_SITE = "AMBIGUOUS_SITE"
UNREACHABLE_CODE = "UNREACHABLE"
_MEMBER_FIELDS = {"name", "gender", "admitted_on", "status", "unit_kind", "unit_name", "job", "section", "home_org",
                  "relation"}
_UNIT_FIELDS = {"owner", "design", "construction", "supervision"}

_GENDER = cells.words(GENDER, ALSO)
_STATUS = cells.words(STATUS, ALSO)
_RELATION = cells.words(RELATION, ALSO)
_JOB = cells.words(JOB, ALSO)
_UNIT_KIND = cells.words(UNIT_KIND, ALSO)


@dataclass(frozen=True)
class Kind:
    name: str  # "members" or "sites": the CLI's word and the URL's
    title: str  # 党员花名册, 重点项目清单
    columns: list[tuple[str, str]]  # (header, field) in template order
    command: type[Command]
    phase: int  # sites (0) are sent before members (1)

    @property
    def known(self) -> dict[str, str]:
        """header_key of every accepted header (its own and its aliases) → the header."""
        out: dict[str, str] = {}
        for header, _ in self.columns:
            for word in (header, *HEADER_ALIASES.get(header, ())):
                out.setdefault(header_key(word), header)
        return out

    def column_of(self, field_path: str | None) -> str | None:
        """The header of a command field as a reply or pydantic names it: member.name → 姓名, units.owner → 建设单位."""
        if not field_path:
            return None
        leaf = field_path.split(".")[1] if field_path.startswith(("member.", "units.")) else field_path
        return next((h for h, f in self.columns if f == leaf), None)


KINDS = {k.name: k for k in (Kind("sites", TITLES["sites"], SITE_COLUMNS, RegisterSite, 0),
                             Kind("members", TITLES["members"], MEMBER_COLUMNS, RecordArrival, 1))}


def kind_of(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(f"no such import kind {name!r}: {', '.join(KINDS)}")
    return KINDS[name]


# Columns a header may lack: ids are derived from the row when blank, and a site secretary's rows need no site.
OPTIONAL_COLUMNS = {"工地编号", "党员编号"}


def read(kind: Kind, data: bytes, filename: str) -> Sheet:
    """The file's rows under its header, for `kind` (reading.SheetError when it cannot be read, or its header lacks
    a column every row needs: said once, not as a refusal of every row)."""
    sheet = read_sheet(data, filename, kind.known)
    missing = [h for h, _ in kind.columns if h not in sheet.columns and h not in OPTIONAL_COLUMNS]
    if missing:
        where = f"工作表“{sheet.name}”" if sheet.name else ""
        raise SheetError("MISSING_COLUMNS", f"{where}第 {sheet.header_row} 行的表头缺少必填的列：{'、'.join(missing)}。"
                         "请按模板补上这些列后再导入")
    return sheet


# ---- outcomes -----------------------------------------------------------------------------------------------------

RECORDED, ALREADY, REFUSED, VALID, SKIPPED = "recorded", "already", "refused", "valid", "skipped"


@dataclass(frozen=True)
class Outcome:
    status: str  # recorded 成功, already 已导入, refused 未导入, valid 校验通过 (dry run), skipped (the example row)
    code: str | None = None
    message: str = ""
    column: str | None = None
    warnings: tuple[str, ...] = ()
    repeat_of: int | None = None  # the earlier row of the file this one repeats (not sent again)

    def text(self) -> str:
        """What the result file's 导入结果 column says."""
        if self.status == RECORDED:
            return "成功" + (f"（提示：{'；'.join(self.warnings)}）" if self.warnings else "")
        if self.repeat_of is not None:  # a dry run sends nothing either: not 已导入, whose row says how it went
            return f"与第 {self.repeat_of} 行相同（不重复发送）"
        if self.status == ALREADY:
            return "已导入" + (f"（{self.message}）" if self.message else "")
        if self.status == VALID:
            return "校验通过"
        if self.status == SKIPPED:
            return self.message
        return f"未导入 {self.code}：{self.message}"


def refusal(errors: Sequence[CellRefusal]) -> Outcome:
    first = errors[0]
    return Outcome(REFUSED, first.code, "；".join(e.text() for e in errors), first.column)


# The rules' answer to a row that states what is recorded already, as it is (an exported list imported again,
# or the same rows imported by another login): nothing new, so 已导入, not 未导入.
SAME_AS_RECORDED = {"ARRIVAL_ALREADY_RECORDED", "SITE_ALREADY_RECORDED"}


def from_reply(kind: Kind, reply: Mapping[str, Any]) -> Outcome:
    """A service's reply as a row's outcome: 成功 (with its warnings), 已导入 for a duplicate or a row the same as
    the record, or the refusal as the service gave it (code and message), the column named when the field is one."""
    if reply.get("ok"):
        if reply.get("duplicate"):  # this very row (same file, same row), imported before: said, not left blank
            return Outcome(ALREADY, message="此前已导入过这一行，未重复记录")
        return Outcome(RECORDED, warnings=tuple(str(w.get("message", "")) for w in reply.get("warnings") or ()))
    error = reply.get("error") or {}
    if error.get("code") in SAME_AS_RECORDED:
        return Outcome(ALREADY, str(error["code"]), "已在册，内容相同")
    column = kind.column_of(error.get("field"))
    message = str(error.get("message", ""))
    if column and error.get("code") == "VALIDATION_FAILED":
        message = f"{column}：{message.split(': ', 1)[-1]}"
    return Outcome(REFUSED, str(error.get("code", "INTERNAL")), message, column)


# ---- rows → commands ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What turning rows into commands needs besides the rows: the city's townships and departments, who imports
    (part of every derived command id) and the sites that importer can see (project name → site ids)."""

    city: City
    importer: str
    sites: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def own_site(self) -> str | None:
        """A site secretary's own site: where a member row without 工地编号 goes."""
        try:
            identity = Identity.parse(self.importer)
        except ValueError:
            return None
        return identity.site if identity.role is Role.SITE else None


@dataclass(frozen=True)
class Planned:
    """One row and what it becomes: a command to send, or an outcome decided without sending (refused, skipped, the
    same as an earlier row)."""

    number: int
    label: str  # the member's or project's name, for people reading the results
    command: Command | None
    outcome: Outcome | None
    key: str = ""  # rows of one key (member id, site id) are sent one after another, in file order


def site_key(name: str) -> str:
    return cells.compact(name).casefold()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(cells.compact(p).casefold() for p in parts).encode()).hexdigest()


def derived_site_id(township: str, name: str) -> str:
    """A site without 工地编号: its township's code and a digest of its name, the same each time."""
    return f"{township[:40]}-{_digest(name)[:10]}"


def derived_member_id(name: str, admitted_on: dt.date, home_org: str) -> str:
    """A member without 党员编号: a digest of name, admission day and home organisation, the same each time."""
    return f"m-{_digest(name, admitted_on.isoformat(), home_org)[:12]}"


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 9000, 9000.0 and 9,000 are one value
    raise TypeError(f"{type(value).__name__} in an imported row")


def command_id(importer: str, kind: Kind, targets: Sequence[str], body: Mapping[str, Any]) -> uuid.UUID:
    """The id a row's command gets: who imports, the kind, the target ids and the normalised row. The importer is in
    it because a command id names one sender's command (contracts.base.Command.fingerprint): the city and a
    township importing the same row send two commands, and the rules answer the second."""
    row = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=_canonical).decode()
    return uuid.uuid5(NAMESPACE, "\n".join([importer, kind.name, *targets, row]))


class _Cells:
    """A row's cells read one by one, every refusal kept, so a row with three mistakes names all three."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = values
        self.errors: list[CellRefusal] = []

    def get(self, read: Callable[..., Any], column: str, *args: Any) -> Any:
        try:
            return read(cells.computed(self.values.get(column), column), column, *args)
        except CellRefusal as exc:
            self.errors.append(exc)
            return None


def _validated(kind: Kind, number: int, label: str, body: dict[str, Any], ctx: Context, targets: list[str],
               key: str) -> Planned:
    cid = command_id(ctx.importer, kind, targets, body)
    try:
        command = kind.command.model_validate({"command_id": str(cid), **orjson.loads(
            orjson.dumps(body, default=_canonical))})
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_input=False, include_url=False):
            info = explain([e])
            column = kind.column_of(info.field)
            errors.append(CellRefusal(info.code, info.message.split(": ", 1)[-1], column or info.field))
        return Planned(number, label, None, refusal(errors), key)
    return Planned(number, label, command, None, key)


def _member(number: int, values: Mapping[str, Any], ctx: Context) -> Planned:
    kind = KINDS["members"]
    row = _Cells(values)
    name = row.get(cells.text, "姓名")
    if name == EXAMPLE_MEMBER:
        return Planned(number, name, None, Outcome(SKIPPED, message="模板示例行，未导入"))
    facts = {
        "name": name,
        "gender": row.get(cells.choice, "性别", _GENDER, GENDER),
        "admitted_on": row.get(cells.day, "入党日期"),
        "status": row.get(cells.choice, "党员状态", _STATUS, STATUS),
        "unit_kind": row.get(cells.choice, "单位类别", _UNIT_KIND, UNIT_KIND),
        "unit_name": row.get(cells.text, "单位名称"),
        "job": row.get(cells.choice, "岗位", _JOB, JOB),
        "section": row.get(cells.text, "工段/班组"),
        "home_org": row.get(cells.text, "原党组织"),
        "relation": row.get(cells.choice, "组织关系", _RELATION, RELATION),
    }
    arrived_on = row.get(cells.day, "进场日期")
    member_id = row.get(cells.ident, "党员编号")
    if member_id is None and name and facts["admitted_on"] and facts["home_org"]:
        member_id = derived_member_id(name, facts["admitted_on"], facts["home_org"])
    site_id = _site_of(row, ctx)
    label = name or ""
    if row.errors:
        return Planned(number, label, None, refusal(row.errors), member_id or "")
    body = {"site_id": site_id, "member_id": member_id, "member": facts, "arrived_on": arrived_on}
    return _validated(kind, number, label, body, ctx, [site_id, member_id], f"member:{member_id}")


def _site_of(row: _Cells, ctx: Context) -> str | None:
    """工地编号 of a member row: an id, or the name of a site the importer can see, or blank for a site's secretary."""
    column = "工地编号"
    value = row.values.get(column)
    if isinstance(value, Uncomputed):
        return row.get(cells.ident, column)  # refused as a formula without its result
    if cells.blank(value):
        if ctx.own_site:
            return ctx.own_site
        row.errors.append(CellRefusal(cells.MISSING_VALUE, "必填，填工地编号或项目名称", column))
        return None
    if cells.looks_like_id(value):
        return row.get(cells.ident, column)
    found = ctx.sites.get(site_key(cells.clean(value)), [])
    if len(found) == 1:
        return found[0]
    if found:
        row.errors.append(CellRefusal(AMBIGUOUS_SITE, f"有 {len(found)} 个同名的工地，请填工地编号", column))
    else:
        row.errors.append(CellRefusal(UNKNOWN_SITE, "没有这个名称的工地（或无权查看），请填工地编号", column))
    return None


def _site(number: int, values: Mapping[str, Any], ctx: Context) -> Planned:
    kind = KINDS["sites"]
    row = _Cells(values)
    name = row.get(cells.text, "项目名称")
    if name == EXAMPLE_SITE:
        return Planned(number, name, None, Outcome(SKIPPED, message="模板示例行，未导入"))
    township = row.get(cells.township, "所属乡镇", ctx.city.townships, ctx.city.name)
    body = {
        "name": name,
        "township": township,
        "department": row.get(cells.department, "主管部门", ctx.city.departments, ctx.city.name),
        "cost_wan": row.get(cells.amount_wan, "总投资(万元)"),
        "planned_months": row.get(cells.months, "计划工期(月)"),
        "start_date": row.get(cells.day, "开工日期"),
        "units": {f: row.get(cells.text, h) for h, f in kind.columns if f in _UNIT_FIELDS},
    }
    site_id = row.get(cells.ident, "工地编号")
    if site_id is None and name and township:
        site_id = derived_site_id(township, name)
    label = name or ""
    if row.errors:
        return Planned(number, label, None, refusal(row.errors), site_id or "")
    return _validated(kind, number, label, {"site_id": site_id, **body}, ctx, [site_id], f"site:{site_id}")


def plan(kind: Kind, sheet: Sheet, ctx: Context) -> list[Planned]:
    """Every row of the sheet as a command or an outcome; a row the same as an earlier one is not sent again."""
    make = _member if kind.name == "members" else _site
    out: list[Planned] = []
    first: dict[uuid.UUID, int] = {}
    for row in sheet.rows:
        planned = make(row.number, row.values, ctx)
        if planned.command is not None:
            earlier = first.setdefault(planned.command.command_id, row.number)
            if earlier != row.number:
                planned = Planned(row.number, planned.label, None, Outcome(ALREADY, repeat_of=earlier))
        out.append(planned)
    return out


def needs_sites(kind: Kind, sheet: Sheet) -> bool:
    """Whether some member row names its site by project name (and the importer's sites must be looked up)."""
    return kind.name == "members" and any(
        not cells.blank(v) and not cells.looks_like_id(v) for v in (r.values.get("工地编号") for r in sheet.rows))


async def visible_sites(client: GongdiClient) -> dict[str, list[str]]:
    """Project name → ids of the sites the client's identity may see, asked of the views (never the database)."""
    identity = client.identity
    if identity is None:
        return {}
    if identity.role is Role.SITE:
        replies = [await client.query(VIEWS, "site", {"site_id": identity.site})]
    elif identity.role is Role.TOWNSHIP:
        replies = [await client.query(VIEWS, "township", {"township": identity.township})]
    elif identity.role is Role.DEPARTMENT:
        replies = [await client.query(VIEWS, "department", {"department": identity.department})]
    else:
        city = await client.query(VIEWS, "city")
        codes = [t["township"] for t in (city.get("data") or {}).get("townships", [])] if city.get("ok") else []
        replies = await asyncio.gather(*(client.query(VIEWS, "township", {"township": c}) for c in codes))
    out: dict[str, list[str]] = {}
    for reply in replies:
        data = (reply.get("data") or {}) if reply.get("ok") else {}
        for s in data.get("sites", [data] if "site_id" in data else []):
            out.setdefault(site_key(s["name"]), []).append(s["site_id"])
    return out


# ---- sending ------------------------------------------------------------------------------------------------------

Send = Callable[[str, str, bytes], Awaitable[dict[str, Any]]]
Progress = Callable[[int, int], None]
NOT_SENT = "平台无法访问，本行未发送；平台恢复后可用同一文件重新导入，已记录的行不会重复记录"


async def send_all(planned: Sequence[Planned], send: Send, width: int = WIDTH, progress: Progress | None = None
                   ) -> list[Outcome]:
    """Send every planned command, `width` in flight; the rows of one key one after another in file order, sites
    before members. Once the platform is unreachable the rows not yet sent are marked so, not tried one by one."""
    outcomes: list[Outcome | None] = [p.outcome for p in planned]
    todo = [i for i, p in enumerate(planned) if p.command is not None]
    total, done = len(todo), 0
    gate = asyncio.Semaphore(width)
    lost: list[BaseException] = []

    async def chain(indices: list[int]) -> None:
        nonlocal done
        for i in indices:
            command = planned[i].command
            assert command is not None
            kind = next(k for k in KINDS.values() if isinstance(command, k.command))
            if lost:
                outcomes[i] = Outcome(REFUSED, UNREACHABLE_CODE, NOT_SENT)
            else:
                async with gate:
                    try:
                        reply = await send(SERVICE, type(command).__name__, command.model_dump_json().encode())
                        outcomes[i] = from_reply(kind, reply)
                    except (*UNREACHABLE, nats.errors.Error) as exc:
                        # Maybe recorded, maybe not: the same file imported again tells (已导入 or 成功).
                        lost.append(exc)
                        outcomes[i] = Outcome(REFUSED, UNREACHABLE_CODE, f"{NOT_SENT}（{type(exc).__name__}）")
            done += 1
            if progress:
                progress(done, total)

    phases: dict[int, dict[str, list[int]]] = {}
    for i in todo:
        command = planned[i].command
        phase = next(k.phase for k in KINDS.values() if isinstance(command, k.command))
        phases.setdefault(phase, {}).setdefault(planned[i].key or f"row:{i}", []).append(i)
    for phase in sorted(phases):
        await asyncio.gather(*(chain(indices) for indices in phases[phase].values()))
    if progress and total == 0:
        progress(0, 0)
    return [o if o is not None else Outcome(VALID) for o in outcomes]


# ---- one import, from the file to the result ------------------------------------------------------------------------


@dataclass
class Report:
    kind: Kind
    filename: str
    sheet: Sheet
    planned: list[Planned]
    outcomes: list[Outcome]
    dry_run: bool
    seconds: float

    def counts(self) -> dict[str, int]:
        out = {RECORDED: 0, ALREADY: 0, REFUSED: 0, VALID: 0, SKIPPED: 0}
        for o in self.outcomes:
            out[o.status] += 1
        return out

    @property
    def refused(self) -> int:
        return self.counts()[REFUSED]

    def rows(self) -> list[dict[str, Any]]:
        """Per row, for JSON: its number, the name, the outcome and what the result file says."""
        return [{"row": p.number, "name": p.label, "status": o.status, "code": o.code, "column": o.column,
                 "message": o.message, "result": o.text(),
                 "command_id": str(p.command.command_id) if p.command else None}
                for p, o in zip(self.planned, self.outcomes, strict=True)]

    def summary(self) -> str:
        c = self.counts()
        what = "校验" if self.dry_run else "导入"
        parts = ([f"校验通过 {c[VALID]}"] if self.dry_run else [f"成功 {c[RECORDED]}", f"已导入 {c[ALREADY]}"])
        parts.append(f"未通过 {c[REFUSED]}" if self.dry_run else f"未导入 {c[REFUSED]}")
        if self.dry_run and c[ALREADY]:  # rows repeating an earlier one: only those are 'already' in a dry run
            parts.append(f"与前面的行重复 {c[ALREADY]}")
        others = ""
        if self.sheet.others:
            others = (f"。只读了工作表“{self.sheet.name}”；工作表{'、'.join(f'“{t}”' for t in self.sheet.others)}"
                      f"也有{self.kind.title}的表头，未{what}：请把它们各自另存为文件再{what}")
        if c[SKIPPED]:
            parts.append(f"跳过示例行 {c[SKIPPED]}")
        rate = len(self.outcomes) / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.kind.title}{what}：共 {len(self.outcomes)} 行，{'，'.join(parts)}；用时 {self.seconds:.1f}s"
                f"（{rate:,.0f} 行/秒）{others}")

    def result_name(self) -> str:
        path = PurePath(self.filename or f"{self.kind.title}.{self.sheet.format}")
        suffix = ".xlsx" if self.sheet.format == "xlsx" else ".csv"
        return f"{path.stem}-{'校验结果' if self.dry_run else RESULT_HEADER}{suffix}"


def may_not_import(importer: str) -> ForbiddenError | None:
    """Why `importer` (a user name) can import nothing, before a row is read: every row is a command, and a role
    that only reads (主管部门, 审计, 大屏, a platform tool) would have each refused, while a dry run, which sends
    nothing, could only foresee other refusals. None: it may write (the services still check every row)."""
    try:
        identity = Identity.parse(importer)
    except ValueError:
        identity = Identity(Role.PLATFORM, name=importer)
    try:
        identity.check_may_write()
    except ForbiddenError as exc:
        return ForbiddenError(exc.rule, f"{LABELS[identity.role]}身份只能查看，不能导入：导入的每一行都是一条记录，"
                              f"请以市工委、乡镇或工地书记身份导入 ({identity.name} may not write) [{exc.rule}]")
    return None


async def run_import(kind: Kind, data: bytes, filename: str, city: City, client: GongdiClient | None,
                     dry_run: bool = False, width: int = WIDTH, progress: Progress | None = None,
                     importer: str | None = None, sheet: Sheet | None = None) -> Report:
    """Read (unless `sheet` is the file read already), plan and (unless `dry_run`) send one file as the client's
    identity. A dry run sends nothing; it asks the views only when some row names its site by project name. Reading
    and planning run in a thread (a big workbook takes a while, and a gateway keeps answering meanwhile)."""
    started = time.perf_counter()
    if sheet is None:
        sheet = await asyncio.to_thread(read, kind, data, filename)
    who = importer if importer is not None else (client.user if client else "")
    sites = await visible_sites(client) if client is not None and needs_sites(kind, sheet) else {}
    planned = await asyncio.to_thread(plan, kind, sheet, Context(city, who, sites))
    if dry_run and client is not None:
        if kind.name == "members" and not sites:
            sites = await visible_sites(client)
        reach = {site_id for ids in sites.values() for site_id in ids}
        outcomes = [p.outcome or foreseen(p, client.identity, reach) for p in planned]
    elif dry_run or client is None:
        outcomes = [p.outcome or Outcome(VALID) for p in planned]
    else:
        outcomes = await send_all(planned, client.send_raw, width, progress)
    return Report(kind, filename, sheet, planned, outcomes, dry_run or client is None, time.perf_counter() - started)


def foreseen(planned: Planned, identity: Identity | None, reach: set[str]) -> Outcome:
    """A dry run's verdict on a row that parsed: what the services would refuse for whose row it is, foreseen from
    what the importer may see (the real run still leaves every rule to the services)."""
    command = planned.command
    if isinstance(command, RecordArrival) and command.site_id not in reach:
        return Outcome(REFUSED, UNKNOWN_SITE, f"工地 {command.site_id} 不存在或不在本身份的范围内，导入时会被拒绝",
                       "工地编号")
    if (isinstance(command, RegisterSite) and identity is not None and identity.role is Role.TOWNSHIP
            and command.township != identity.township):
        return Outcome(REFUSED, "FORBIDDEN", f"项目属于其他乡镇，{identity.name} 只能登记本乡镇的项目 [OTHER_TOWNSHIP]",
                       "所属乡镇")
    return Outcome(VALID)


# ---- the result file ----------------------------------------------------------------------------------------------

_RED, _GREEN, _GREY = Font(color="D4380D"), Font(color="12A150"), Font(color="86909C")


def result_file(data: bytes, report: Report) -> bytes:
    """The file as it came, with a column 导入结果 after the last (or the one a previous result file had) saying
    what became of each row: xlsx in, xlsx out; CSV in, CSV out (UTF-8 with BOM)."""
    by_row = {p.number: o for p, o in zip(report.planned, report.outcomes, strict=True)}
    if report.sheet.format == "xlsx":
        return _result_xlsx(data, report.sheet, by_row)
    return _result_csv(report.sheet, by_row)


def _result_column(headers: Sequence[Any], width: int) -> int:
    """0-based: the column a previous import's result file added, else a new one after the last."""
    for i, h in enumerate(headers):
        if header_key(h) == header_key(RESULT_HEADER):
            return i
    return width


def _result_xlsx(data: bytes, sheet: Sheet, by_row: Mapping[int, Outcome]) -> bytes:
    book = load_workbook(io.BytesIO(data))  # formulas, styles and merges kept as they were
    try:
        ws = book[sheet.name] if sheet.name in book.sheetnames else book.active
        column = _result_column(sheet.headers, ws.max_column) + 1
        head = ws.cell(sheet.header_row, column, RESULT_HEADER)
        head.font = Font(bold=True)
        for number, outcome in by_row.items():
            cell = ws.cell(number, column, outcome.text())
            cell.font = (_GREEN if outcome.status in (RECORDED, VALID) else
                         _RED if outcome.status == REFUSED else _GREY)
        ws.column_dimensions[head.column_letter].width = 48
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    finally:
        book.close()


def _result_csv(sheet: Sheet, by_row: Mapping[int, Outcome]) -> bytes:
    column = _result_column(sheet.headers, max((len(r) for r in sheet.records), default=0))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=sheet.delimiter, lineterminator="\r\n")
    for i, record in enumerate(sheet.records):
        number = i + 1
        text = (RESULT_HEADER if number == sheet.header_row else
                by_row[number].text() if number in by_row else None)
        if text is None:
            writer.writerow(record)
            continue
        writer.writerow([*record, *[""] * (column - len(record)), text] if column >= len(record)
                        else [*record[:column], text, *record[column + 1:]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")

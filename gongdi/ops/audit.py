"""`gongdi verify`: each writing service's log checked in PostgreSQL, against its signed heads and its JetStream copy.

Every problem names its record (service, position, stream and version, or the command id) and says how it differs,
in Chinese with an English code in brackets; problems are listed in log order, so the first line is the first
record that differs.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from nats.js import JetStreamContext
from pydantic import ValidationError

from contracts.envelope import Envelope, chain_hash, command_digest
from contracts.history import EVENT_LABELS
from contracts.timeline import CITY_TZ
from gongdi.bus.continuity import own_hash
from gongdi.bus.heads import each_head, event_copy, latest_head
from gongdi.store.heads import head_of, key_id, signature_valid, unsigned
from gongdi.store.postgres import CommandRow, read_commands, read_events

LAST = (2**63, 0)  # where problems that name no event sort: after every event, the first record named first


@dataclass(frozen=True, order=True)
class Problem:
    order: tuple[int, int]  # (position, 0) of the record it names; LAST for the log as a whole
    text: str = field(compare=False)
    code: str = field(compare=False)

    def __str__(self) -> str:
        return f"{self.text} [{self.code}]"


@dataclass
class Report:
    service: str
    events: int = 0
    commands: int = 0
    head: dict[str, Any] | None = None
    published: int = 0
    problems: list[Problem] = field(default_factory=list)
    kept: dict[str, Any] | None = None  # the latest head of the service in the file `--heads` named, checked too


def _event(service: str, position: Any, stream: Any, version: Any, kind: Any = None) -> str:
    """A record as verify names it: where it is, then what it is (党员进场 MemberArrived) when known."""
    what = f" {EVENT_LABELS.get(kind, '')} {kind}".replace("  ", " ") if isinstance(kind, str) else ""
    return f"{service} 事件 position {position} (stream {stream} version {version}){what}"


def _row(service: str, row: Any) -> str:
    return _event(service, row.position, row.stream_id, row.version, row.type)


def check_log(service: str, rows: Sequence[Any], commands: Sequence[CommandRow]) -> list[Problem]:
    """PostgreSQL alone: each stream's chain (rows ordered by stream and version), each event's hash under its own
    scheme, and the binding of the `commands` rows to their events."""
    out: list[Problem] = []
    by_id = {c.command_id: c for c in commands}
    counts: dict[UUID, int] = {}
    for row in rows:
        if row.command_id is not None:
            counts[row.command_id] = counts.get(row.command_id, 0) + 1
    prev: dict[str, tuple[int, str | None, int]] = {}
    for row in rows:
        name = _row(service, row)
        at = (row.position, 0)
        last_version, last_hash, last_scheme = prev.get(row.stream_id, (0, None, 1))
        scheme = row.hash_scheme
        if row.version != last_version + 1:
            out.append(Problem(at, f"{name}: 版本不连续，前一条是 version {last_version}，缺少 version"
                                   f" {last_version + 1}–{row.version - 1}", "VERSION_GAP"))
        elif row.prev_hash != last_hash:
            out.append(Problem(at, f"{name}: prev_hash 与前一条的哈希不符", "PREV_MISMATCH"))
        if chain_hash(row.hash_values()) != row.hash:
            out.append(Problem(at, f"{name}: 哈希不符，内容在写入后被改动", "HASH_MISMATCH"))
        if scheme < last_scheme:
            out.append(Problem(at, f"{name}: 哈希方案 {scheme} 出现在方案 {last_scheme} 之后", "SCHEME_DOWNGRADE"))
        if scheme >= 2 and row.command_id is not None:
            command = by_id.get(row.command_id)
            if command is None:
                out.append(Problem(at, f"{name}: 它的命令 {row.command_id} 在 commands 表中不存在", "COMMAND_MISSING"))
            elif command_digest(command.command_id, command.fingerprint, command.warnings,
                                counts[row.command_id]) != row.command_digest:
                out.append(Problem(at, f"{name}: 命令 {row.command_id} 的 commands 行或事件数与事件所记不符",
                                   "COMMAND_MISMATCH"))
        prev[row.stream_id] = (row.version, row.hash, max(scheme, last_scheme))
    for command in commands:
        # Every accepted command writes at least one event (no decide returns none): a row without any answers a
        # command that was never carried out, as "duplicate".
        if command.command_id not in counts:
            out.append(Problem(LAST, f"{service} 命令 {command.command_id}: commands 表中有此命令，但没有它的任何事件",
                               "COMMAND_WITHOUT_EVENTS"))
    return out


def check_head(service: str, signed: dict[str, Any], public_hex: str, rows: Sequence[Any],
               commands: Sequence[CommandRow], where: str) -> list[Problem]:
    """PostgreSQL against a signed head: what the head covers must still be there, exactly."""
    label = (f"{service} 签名日志头 ({where}, {city_time(signed.get('signed_at'))},"
             f" 覆盖 tx < {signed.get('tx_below', '?')})")
    if signed.get("key_id") != key_id(public_hex) or not signature_valid(signed, public_hex):
        return [Problem(LAST, f"{label}: 签名无效或不是本平台的密钥签的", "HEAD_SIGNATURE")]
    want = unsigned(signed)
    have = head_of(service, want.tx_below, rows, commands)
    out = []
    if (have.events, have.position) != (want.events, want.position):
        # Events recorded after a restore from an older copy fall below the head's tx_below too (the restored
        # server's transaction ids go on from the copy's): counted by position, what is missing is said plainly.
        upto = sum(1 for e in rows if e.tx_id < want.tx_below and e.position <= want.position)
        missing = (f"；至 position {want.position} 只有 {upto} 条，缺少 {want.events - upto} 条签名时已有的事件"
                   "（数据库恢复自较早的副本，或事件被删除）" if upto < want.events else "")
        out.append(Problem(LAST, f"{label}: 事件数 {want.events}（至 position {want.position}），PostgreSQL 中为"
                                  f" {have.events}（至 position {have.position}）{missing}", "HEAD_EVENTS"))
    if (have.streams, have.streams_root) != (want.streams, want.streams_root):
        out.append(Problem(LAST, f"{label}: 各事件流末尾的 Merkle 根不符（流 {want.streams} 个，PostgreSQL 中"
                                  f" {have.streams} 个）", "HEAD_STREAMS"))
    if have.commands != want.commands:
        out.append(Problem(LAST, f"{label}: 命令 {want.commands} 条，PostgreSQL 中为 {have.commands} 条",
                           "HEAD_COMMANDS"))
    elif have.commands_root != want.commands_root:
        # A command's digest binds how many events it wrote: an event gone changes it with the table untouched.
        out.append(Problem(LAST, f"{label}: 命令同为 {want.commands} 条，但其 Merkle 根不符（命令被改动，或其事件"
                                  "数目变了）", "HEAD_COMMANDS"))
    return out


@dataclass
class HeadHistory:
    """Every validly signed head of a service, oldest first, folded: a log only grows, so no head may cover less
    than one signed before it (a head signed after events were cut out would otherwise hide the cut)."""

    public_hex: str
    last: dict[str, Any] | None = None  # the latest head, valid or not (the signature check reports it)
    valid: dict[str, Any] | None = None  # the latest validly signed one
    widest: dict[str, Any] | None = None  # the one covering most events
    regressed: tuple[dict[str, Any], dict[str, Any]] | None = None  # the first head covering less than its previous
    regressions: int = 0

    def add(self, signed: dict[str, Any]) -> None:
        self.last = signed
        if not (signed.get("key_id") == key_id(self.public_hex) and signature_valid(signed, self.public_hex)):
            return
        before, self.valid = self.valid, signed
        if before is not None and any(signed[k] < before[k] for k in ("events", "position", "commands")):
            self.regressions += 1
            self.regressed = self.regressed or (before, signed)
        if self.widest is None or signed["events"] > self.widest["events"]:
            self.widest = signed

    def problems(self, service: str) -> list[Problem]:
        if self.regressed is None:
            return []
        before, after = self.regressed
        more = f"（共 {self.regressions} 次）" if self.regressions > 1 else ""
        return [Problem(LAST, f"{service} 签名日志头倒退{more}：{city_time(before['signed_at'])} 的头覆盖"
                              f" {before['events']} 条事件（至 position {before['position']}）、命令"
                              f" {before['commands']} 条，其后"
                              f" {city_time(after['signed_at'])} 的头只有 {after['events']} 条事件（至 position"
                              f" {after['position']}）、命令 {after['commands']} 条：两者之间日志被删减",
                        "HEAD_REGRESSED")]


def _published(row: Any, service: str) -> dict[str, Any]:
    return orjson.loads(row.envelope_json(service))


DEFAULTS = {"hash_scheme": 1, "command_digest": None}  # fields a message published before them lacks


def check_copy(service: str, rows: Sequence[Any], copy: list[dict[str, Any]]) -> list[Problem]:
    """PostgreSQL against the JetStream copy, read before it: every published event must be in PostgreSQL as
    published; an event of PostgreSQL that is not in the copy must come after the copy's end (not yet published)."""
    out: list[Problem] = []
    stored = {str(r.event_id): r for r in rows}
    for msg in copy:
        row = stored.get(msg.get("event_id"))
        name = _event(service, msg.get("position"), msg.get("stream_id"), msg.get("version"), msg.get("type"))
        if row is None:
            out.append(Problem((msg.get("position") or 0, 1), f"{name}: 在 JetStream 副本中，PostgreSQL 中已没有",
                               "MISSING_IN_DATABASE"))
            continue
        mine = _published(row, service)
        differ = [k for k in mine if k != "service" and mine[k] != msg.get(k, DEFAULTS.get(k))]
        if differ:
            out.append(Problem((row.position, 0), f"{_row(service, row)}:"
                                                  f" 与 JetStream 副本不符 ({', '.join(differ)})", "COPY_MISMATCH"))
    if copy:
        published = {m.get("event_id") for m in copy}
        end = max((stored[m["event_id"]].checkpoint for m in copy if m.get("event_id") in stored), default=None)
        for row in rows:
            if str(row.event_id) not in published and end is not None and row.checkpoint < end:
                out.append(Problem((row.position, 0), f"{_row(service, row)}:"
                                                      " 不在 JetStream 副本中，却排在已发布的事件之前", "NOT_IN_COPY"))
    return out


def genuine(message: dict[str, Any]) -> bool:
    """A message that is an event as a writer made it: a valid envelope whose hash recomputes from its fields (not a
    stranger's message, which a repair is for)."""
    try:
        event = Envelope.model_validate(message)
    except ValidationError:
        return False
    return own_hash(event) == event.hash


async def evidence_in_copy(pool: asyncpg.Pool, js: JetStreamContext, service: str) -> list[Problem]:
    """Events the JetStream copy holds that PostgreSQL lost or holds otherwise: what `repair-stream`, which makes the
    stream anew from PostgreSQL, would destroy. Read in `audit`'s order (the copy first)."""
    copy = await event_copy(js, service)
    if not copy:
        return []
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await read_events(conn, service)
    found = check_copy(service, rows, [m for m in copy if genuine(m)])
    return sorted(p for p in found if p.code in ("MISSING_IN_DATABASE", "COPY_MISMATCH"))


async def audit(pool: asyncpg.Pool, js: JetStreamContext | None, service: str, public_hex: str | None,
                kept: dict[str, Any] | None = None) -> Report:
    """One writing service. The head and the copy are read before PostgreSQL: whatever they hold was committed
    before the database is read, so a record missing from the database is missing, not yet to come."""
    report = Report(service, kept=kept)
    copy = None
    history = HeadHistory(public_hex or "")
    if js is not None:
        if public_hex is None:
            report.head = await latest_head(js, service)
        else:
            async for signed in each_head(js, service):
                history.add(signed)
            report.head = history.last
        copy = await event_copy(js, service)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await read_events(conn, service)
        commands = await read_commands(conn, service)
    report.events, report.commands = len(rows), len(commands)
    problems = check_log(service, rows, commands)
    heads = [(h, w) for h, w in ((report.head, "HEADS 流"), (kept, "保存的文件")) if h is not None]
    if public_hex is None and heads:
        problems.append(Problem(LAST, f"{service}: 没有平台公钥，无法核对签名日志头", "NO_KEY"))
    elif public_hex is not None:
        if history.widest is not None and history.widest is not report.head:
            heads.append((history.widest, "HEADS 流中覆盖最多的"))  # what a cut since then took away
        for signed, where in heads:
            problems += check_head(service, signed, public_hex, rows, commands, where)
        problems += history.problems(service)
    if js is not None and copy is None:
        problems.append(Problem(LAST, f"{service}: JetStream 副本（事件流）不存在", "COPY_MISSING"))
    elif copy is not None:
        report.published = len(copy)
        problems += check_copy(service, rows, copy)
    report.problems = sorted(problems)
    return report


def kept_heads(path: Path) -> dict[str, dict[str, Any]]:
    """The latest head of each service in an exported file (JSON lines, appended by `--export-heads`)."""
    out: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            head = orjson.loads(line)
            if head["tx_below"] >= out.get(head["service"], {}).get("tx_below", -1):
                out[head["service"]] = head
    return out


def export_heads(path: Path, heads: Sequence[dict[str, Any]]) -> None:
    with path.open("ab") as out:
        for head in heads:
            out.write(orjson.dumps(head) + b"\n")


async def verify_all(database_url: str, js: JetStreamContext | None, services: Sequence[str],
                     public_hex: str | None, kept: Path | None = None, export: Path | None = None) -> list[Report]:
    """Every service in turn; with `export`, the latest valid head of each is appended to that file."""
    heads = kept_heads(kept) if kept else {}
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        reports = [await audit(pool, js, s, public_hex, heads.get(s)) for s in services]
    finally:
        await pool.close()
    if export is not None:
        export_heads(export, [r.head for r in reports
                              if r.head and public_hex and signature_valid(r.head, public_hex)])
    return reports


def lagging_heads(reports: Sequence[Report], exported: Path) -> list[str]:
    """What to tell the one who exported heads that cover fewer events than the logs hold: heads are signed every
    minute and at shutdown, so right after a burst of records they lag behind, and a baseline kept then says
    nothing about those records."""
    out = []
    for r in reports:
        covered = r.head["events"] if r.head else 0
        if covered < r.events:
            out.append(f"注意：{r.service} 的签名日志头覆盖 {covered} / {r.events} 条事件（每分钟签发一次）："
                       f"已导出到 {exported} 的日志头不含最近的事件，请一分钟后再导出一次")
    return out


def city_time(signed_at: Any) -> str:
    """A head's signing time (signed as UTC ISO text) as the city's clocks show it, like the rest of the CLI."""
    if not isinstance(signed_at, str):
        return "?"
    try:
        moment = dt.datetime.fromisoformat(signed_at)
    except ValueError:  # not a time: shown as written (the signature check reports a head that was altered)
        return signed_at
    return moment.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M:%S 北京时间")


def summary(report: Report) -> str:
    head = report.head
    signed = (f"签名日志头 {city_time(head['signed_at'])} 覆盖 {head['events']} 条事件" if head else "没有签名日志头")
    # Before, `--heads` printed what a plain verify prints: nothing said the kept file had been checked at all.
    kept = (f"，留存的日志头 {city_time(report.kept['signed_at'])} 覆盖 {report.kept['events']} 条事件"
            if report.kept else "")
    return (f"{report.service}: 事件 {report.events} 条，命令 {report.commands} 条，"
            f"JetStream 副本 {report.published} 条，{signed}{kept}")

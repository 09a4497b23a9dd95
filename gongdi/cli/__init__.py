"""The `gongdi` command: run the platform, seed it, query views, send commands, verify the hash chains."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import difflib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats.errors
import orjson

from contracts import activities, liaison, membership
from contracts.history import SUBJECTS
from contracts.identity import LABELS, ForbiddenError, Identity, Role
from contracts.queries import QUERIES, Query
from contracts.queries import SERVICE as VIEWS_SERVICE
from contracts.timeline import CITY_TZ, Basis
from gongdi.cli.format import (
    format_birthdays,
    format_city,
    format_department,
    format_identities,
    format_records,
    format_site,
    format_status,
    format_talks,
    format_township,
)
from gongdi.cli.parsing import Parser, examples
from gongdi.cli.retrying import RetryNotice
from gongdi.ops import statelock
from gongdi.ops.client import send_retrying, with_client
from gongdi.ops.credentials import FILE_NAME as CREDENTIALS
from gongdi.ops.credentials import SUPERUSER, Credentials
from gongdi.ops.history import ORDERS, format_history, history
from gongdi.ops.readiness import (
    short_logs,
    stream_status,
    stream_status_if_allowed,
    wait_caught_up,
    wait_http,
    wait_ready,
)
from gongdi.ops.runtime import (
    EmbeddedNats,
    EmbeddedPostgres,
    free_port,
    port_free,
    reload_nats_accounts,
    without_password,
    write_private,
)
from gongdi.ops.supervisor import DATABASE_ROLES, SETUP_ORDER, WRITERS, Supervisor, end_leftovers
from gongdi.service.logging import configure
from gongdi.service.settings import Settings
from gongdi.sheets.export import EXPORTS
from gongdi.store.roles import password_variable

DEFAULT_HOME = Path(os.environ.get("GONGDI_HOME", ".gongdi"))


def runtime_settings(home: Path) -> Settings:
    """The operator's settings: environment first (external servers), then what `gongdi up` wrote down, as the
    platform's `setup` user when the state folder has the credentials."""
    values: dict[str, Any] = {}
    info = home / "runtime.json"
    if info.exists():
        try:
            values.update(json.loads(info.read_text()))
        except ValueError:  # only addresses and ports: `gongdi up` writes it again
            print(f"注意：{info} 已损坏，已忽略；`gongdi up` 会重新写入 (runtime.json is damaged)", file=sys.stderr)
    env = Settings.from_env()
    if "NATS_URL" in os.environ or "nats_url" not in values:
        values["nats_url"] = env.nats_url
    if "DATABASE_URL" in os.environ or "database_url" not in values:
        values["database_url"] = env.database_url
    settings = env.model_copy(update=values)
    creds = Credentials.load(home / CREDENTIALS)
    if "GONGDI_NATS_USER" not in os.environ and "setup" in creds.nats:
        settings = settings.as_user("setup", creds.nats["setup"])
    if creds.head_key and "GONGDI_HEAD_KEY" not in os.environ:  # the supervisor hands it to the writers only
        settings = settings.model_copy(update={"head_key": creds.head_key})
    return settings


def client_settings(args: argparse.Namespace) -> Settings:
    """The settings of the identity the user acts as (`--as`, default the city work committee)."""
    settings = runtime_settings(args.home)
    who = args.identity
    if "GONGDI_NATS_USER" in os.environ and who is None:
        return Settings.from_env().model_copy(update={"nats_url": settings.nats_url})
    who = who or Role.CITY.value
    creds = Credentials.load(args.home / CREDENTIALS)
    if who not in creds.nats:
        known = ", ".join(sorted(u for u in creds.nats if _is_person(u))) or "(none yet: run `gongdi up`)"
        raise SystemExit(f"没有身份 {who} (unknown identity); 可用: {known}")
    return settings.as_user(who, creds.nats[who])


def _is_person(user: str) -> bool:
    try:
        Identity.parse(user)
    except ValueError:
        return False
    return True


# ---- commands -----------------------------------------------------------------------------------


Printer = Callable[[dict[str, Any]], str]
PRINTERS: dict[str, Printer] = {"city": format_city, "site": format_site, "township": format_township,
                                "department": format_department, "birthdays": format_birthdays,
                                "talks": format_talks, "records": format_records, "status": format_status}
VIEWS: dict[str, tuple[Query, Printer]] = {name: (q, PRINTERS[name]) for name, q in QUERIES.items()}  # the registry's
# Every writing service's commands, as its contract declares them: `gongdi send` checks a name before connecting.
COMMANDS: dict[str, list[str]] = {c.SERVICE: list(c.COMMANDS) for c in (membership, activities, liaison)}


def _code_of(key: str, given: str, settings: Settings) -> str:
    """A township or department named as people name it (点头镇, 点头, 交通运输局) → its code; anything else as given
    (a site id, a code, or a name the view then refuses)."""
    if key not in ("township", "department"):
        return given
    try:
        names = getattr(settings.city(), f"{key}s")
    except ValueError:  # the city file is the services' to refuse; the id goes as given
        return given
    if given in names:
        return given
    found = [code for code, name in names.items() if given == name] or [
        code for code, name in names.items() if given in name and not given.isascii()]
    return found[0] if len(found) == 1 else given


def cmd_view(args: argparse.Namespace) -> int:
    if args.basis is not None and args.as_of is None:
        print("--basis 须与 --as-of 一起使用 (--basis needs --as-of)", file=sys.stderr)
        return 2
    query, printer = VIEWS[args.what]
    if not query.key and args.site_id:
        print(f"gongdi view {args.what} 不接受编号 {args.site_id}（它不属于某个工地或乡镇） (takes no id)",
              file=sys.stderr)
        return 2
    settings = client_settings(args)
    body: dict[str, Any] = {}
    if query.key:  # the site (or township, or department) the view is of
        if not args.site_id:
            print(f"用法: gongdi view {args.what} <{query.key}>", file=sys.stderr)
            return 2
        body[query.key] = code = _code_of(query.key, args.site_id, settings)
        if query.key in ("township", "department") and not code.isascii():
            # A name, but no township's or department's of the city: say which there are.
            try:
                names = getattr(settings.city(), f"{query.key}s")
            except ValueError:  # the city file is the services' to refuse: the view refuses the name
                names = None
            if names is not None:
                print(f"本市没有名为 {code} 的{'乡镇' if query.key == 'township' else '主管部门'}；可用: "
                      + "、".join(f"{name}（{c}）" for c, name in names.items()), file=sys.stderr)
                return 2
    for flag, value, field in (("--month", args.month, "month"), ("--record", args.record, "record")):
        if value:
            if field not in query.params.model_fields:
                print(f"gongdi view {args.what} 不接受 {flag}", file=sys.stderr)
                return 2
            body[field] = value
    if args.as_of is not None:  # an empty one too: the view refuses it, naming as_of
        if "as_of" not in query.params.model_fields:
            print(f"gongdi view {args.what} 不接受 --as-of", file=sys.stderr)
            return 2
        body.update(as_of=args.as_of, as_of_basis=args.basis or Basis.business.value)
    if args.what == "status":  # every service's own status: the views' consumers and the writers' policies
        from gongdi.ops.readiness import ServiceRefused

        try:
            reply = {"ok": True, "data": asyncio.run(with_client(settings, lambda c: stream_status(None, c)))}
        except ServiceRefused as exc:
            reply = {"ok": False, "error": {"code": exc.code, "message": f"{exc.service}: {exc.message}"}}
    else:
        reply = asyncio.run(with_client(settings, lambda c: c.query(VIEWS_SERVICE, query.name, body)))
    if not reply["ok"]:
        print(f"错误 {reply['error']['code']}: {reply['error']['message']}", file=sys.stderr)
        return 1
    data = reply["data"]
    if args.json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return 0
    if "as_of" in data:  # which moment, in which sense, and how much of the log it shows
        past = data["as_of"]
        print(f"{past['title']}：日志 {past['read']} 条事件中的 {past['events']} 条\n")
    print(printer(data))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Every event touching a site, member, case or branch, from every writing service, with what it caused."""
    settings = client_settings(args)
    reply = asyncio.run(with_client(settings, lambda c: history(c, args.kind, args.ident, args.order, settings.city())))
    if not reply["ok"]:
        print(f"错误 {reply['error']['code']}: {reply['error']['message']}", file=sys.stderr)
        return 1
    print(orjson.dumps(reply["data"], option=orjson.OPT_INDENT_2).decode() if args.json
          else format_history(reply["data"]))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The city's yearly report in Chinese, as HTML and PDF, from the views as of the year's end (gongdi.report)."""
    from gongdi.report import ReportError, make_report, refusal, write_report, year_refusal

    if (why := year_refusal(args.year)) is not None:
        print(f"错误 VALIDATION_FAILED: {why} (--year)", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"错误: {args.out} 是一个文件；--out 应为文件夹 (--out must be a folder)", file=sys.stderr)
        return 2
    settings = client_settings(args)
    refused = refusal(settings.nats_user)
    if refused:
        print(f"错误 FORBIDDEN: {refused}", file=sys.stderr)
        return 1
    try:
        report = asyncio.run(make_report(settings, args.year))
    except ReportError as exc:
        print(f"错误 {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    try:
        html, pdf = write_report(report, args.out)
    except OSError as exc:
        print(f"错误: 无法写入 {args.out}：{exc.strerror or exc} (cannot write the report)", file=sys.stderr)
        return 1
    print(f"{args.year}年度报告: {html.resolve()}\n              {pdf.resolve()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A view, the roster or the project list as .xlsx or .csv (gongdi.sheets), asked as the caller's identity."""
    from gongdi.sheets.export import LISTS, Refused, gather
    from gongdi.sheets.workbook import write

    settings = client_settings(args)
    body: dict[str, Any] = {}
    query = QUERIES.get(args.what)
    if query is not None and query.key:
        if not args.ident:
            print(f"用法: gongdi export {args.what} <{query.key}>", file=sys.stderr)
            return 2
        body[query.key] = args.ident
    elif args.what in LISTS and args.ident:  # a list of one township's sites (the views check it may be read)
        body["township"] = args.ident
    taken = query.params.model_fields if query is not None else {}
    if args.basis is not None and args.as_of is None:
        print("--basis 须与 --as-of 一起使用 (--basis needs --as-of)", file=sys.stderr)
        return 2
    for flag, value, fields in (("--month", args.month, {"month": args.month}),
                                ("--record", args.record, {"record": args.record}),
                                ("--as-of", args.as_of, {"as_of": args.as_of,
                                                          "as_of_basis": args.basis or Basis.business.value})):
        if value:
            if not set(fields) <= set(taken):
                print(f"gongdi export {args.what} 不接受 {flag}", file=sys.stderr)
                return 2
            body.update(fields)
    try:
        identity = Identity.parse(settings.nats_user)
    except ValueError:  # a platform user (GONGDI_NATS_USER): the views answer it as such, or refuse
        identity = Identity(Role.PLATFORM, name=settings.nats_user)
    try:
        made = asyncio.run(with_client(settings, lambda c: gather(
            lambda name, params: c.query(VIEWS_SERVICE, name, params), args.what, body, identity,
            settings.city(), platform=lambda: stream_status_if_allowed(c))))
    except Refused as exc:
        print(f"错误 {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    data = write(made.sections, args.format, made.title)
    if args.out == Path("-"):
        sys.stdout.buffer.write(data)
        return 0
    out = args.out or Path(f"{made.stem}.{args.format}")
    out.write_bytes(data)
    print(f"{made.title}: {out.resolve()}（{len(made.sections)} 个{'工作表' if args.format == 'xlsx' else '表'}）")
    return 0


def unknown_command(service: str, name: str) -> tuple[str, str] | None:
    """Why `gongdi send SERVICE NAME` can have no answer, as (code, message), said before connecting: nothing
    listens on such a subject, and the send would wait for the platform in vain. None: a command of the contracts."""
    if service not in COMMANDS:
        close = difflib.get_close_matches(service, COMMANDS, n=1)
        hint = f"；是否指 {close[0]}？" if close else ""
        return "UNKNOWN_SERVICE", f"没有服务 {service} (unknown service){hint}\n可用的服务: {'、'.join(COMMANDS)}"
    if name not in COMMANDS[service]:
        close = difflib.get_close_matches(name, COMMANDS[service], n=3)
        hint = f"；是否指 {'、'.join(close)}？" if close else ""
        return "UNKNOWN_COMMAND", (f"服务 {service} 没有命令 {name} (unknown command){hint}\n{service} 的命令: "
                                   + "、".join(COMMANDS[service]))
    return None


def _read_only(user: str) -> dict[str, Any] | None:
    """A role that only reads (审计, 主管部门, 大屏) is told so in its words, as over HTTP, rather than by the bus's
    refusal of the subject (which still stands behind this: the account may publish no command)."""
    try:
        Identity.parse(user).check_may_write()
    except ValueError:  # a platform user: the bus decides
        return None
    except ForbiddenError as exc:
        return {"ok": False, "error": {"code": "FORBIDDEN", "field": exc.rule, "message": exc.message}}
    return None


def cmd_send(args: argparse.Namespace) -> int:
    unknown = unknown_command(args.service, args.name)
    if unknown:
        print(f"错误 {unknown[0]}: {unknown[1]}", file=sys.stderr)
        return 2
    try:
        body = json.loads(args.body)
    except json.JSONDecodeError as exc:
        print(f"错误 BODY_NOT_JSON: 命令内容不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列附近 (body is not JSON:"
              f" {exc})", file=sys.stderr)
        return 2
    except RecursionError:
        print("错误 BODY_NOT_JSON: 命令内容嵌套过深 (body nested too deeply)", file=sys.stderr)
        return 2
    if not isinstance(body, dict):
        print("错误 BODY_NOT_OBJECT: 命令内容须为 JSON 对象，如 '{\"site_id\": \"…\"}' (body must be a JSON object)",
              file=sys.stderr)
        return 2
    # The id is fixed once: a retry after a lost reply or an outage is the same command, recorded at most once.
    body = {"command_id": str(uuid.uuid4()), **body}
    try:
        raw = orjson.dumps(body)
    except TypeError as exc:  # what the bus cannot carry: an integer beyond 64 bits, a lone surrogate
        print(f"错误 BODY_NOT_JSON: 命令内容含无法传送的值（超出 64 位的整数，或不成对的 \\ud800 类字符） ({exc})",
              file=sys.stderr)
        return 2
    settings = client_settings(args)
    if refusal := _read_only(settings.nats_user):
        print(orjson.dumps(refusal, option=orjson.OPT_INDENT_2).decode())
        return 1

    notice = RetryNotice(sys.stderr, body["command_id"], sys.stderr.isatty())
    outcome = "gave_up"
    try:
        reply = asyncio.run(send_retrying(settings, args.service, args.name, raw, args.wait, notice))
        outcome = "sent"
    except KeyboardInterrupt:
        outcome = "interrupted"
        raise
    finally:  # the waiting line ends with what came of it; main() then explains an unreachable platform
        notice.done(outcome)
    print(orjson.dumps(reply, option=orjson.OPT_INDENT_2).decode())
    return 0 if reply.get("ok") else 1


def cmd_import(args: argparse.Namespace) -> int:
    """A roster or a project list (.xlsx or .csv) as the ordinary commands, sent as the caller (gongdi.sheets)."""
    from gongdi.ops.client import GongdiClient
    from gongdi.ops.progress import ProgressBar
    from gongdi.sheets.importing import kind_of, may_not_import, read, result_file, run_import
    from gongdi.sheets.reading import MAX_BYTES, SheetError
    from gongdi.sheets.templates import template, template_csv

    kind = kind_of(args.kind)
    if args.template:
        city = runtime_settings(args.home).city()
        made = template_csv(kind.name, city) if args.template.suffix.lower() == ".csv" else template(kind.name, city)
        return _write_file(args.template, made, f"{kind.title}模板")
    if args.file is None:
        print(f"用法: gongdi import {kind.name} FILE [--dry-run] [--result FILE]，或 --template FILE", file=sys.stderr)
        return 2
    settings = client_settings(args)
    read_only = may_not_import(settings.nats_user)
    if read_only is not None:  # said once, before the file is read, instead of a refusal on every row
        print(f"错误 FORBIDDEN: {read_only.message}", file=sys.stderr)
        return 1
    if not args.file.exists():
        print(f"无法导入 {args.file}: 文件不存在 (no such file)", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"无法导入 {args.file}: 不是文件（是文件夹或设备） (not a file)", file=sys.stderr)
        return 2
    if args.file.stat().st_size > MAX_BYTES:
        print(f"无法导入 {args.file}: 超过 {MAX_BYTES // (1024 * 1024)} MB (too large)", file=sys.stderr)
        return 2
    try:
        data = args.file.read_bytes()
        sheet = read(kind, data, args.file.name)  # a file that is no spreadsheet is refused before connecting
    except OSError as exc:
        print(f"无法读取 {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except SheetError as exc:
        print(f"无法导入 {args.file.name}: {exc.code} {exc.message}", file=sys.stderr)
        return 2

    async def run() -> Any:
        try:
            client = await GongdiClient.connect(settings)
        except (nats.errors.NoServersError, OSError):
            if not args.dry_run:
                raise
            # A dry run needs the platform only to find sites named by project name: those rows say so.
            print("平台未连接：只校验表格本身，按项目名称填写的工地无法核对", file=sys.stderr)
            return await run_import(kind, data, args.file.name, settings.city(), None, True,
                                    importer=settings.nats_user, sheet=sheet)
        try:
            return await run_import(kind, data, args.file.name, settings.city(), client, args.dry_run,
                                    progress=None if args.dry_run else ProgressBar("导入", "行", start=0),
                                    sheet=sheet)
        finally:
            await client.close()

    report = asyncio.run(run())
    refused = [row for row in report.rows() if row["status"] == "refused"]
    for row in refused[:20]:
        print(f"  第 {row['row']} 行 {row['name']}: {row['result']}")
    if len(refused) > 20:
        print(f"  …另有 {len(refused) - 20} 行未通过，见结果文件")
    print(report.summary())
    out = args.result or args.file.with_name(report.result_name())
    written = _write_file(out, result_file(data, report), f"{'校验' if args.dry_run else '导入'}结果")
    return written or (1 if report.refused else 0)


def _write_file(path: Path, data: bytes, what: str) -> int:
    """Write a file the user asked for; a folder that cannot be written is said so (main() would take the OSError
    for an unreachable platform)."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        print(f"无法写入{what} {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{what}: {path.resolve()}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    _seed(runtime_settings(args.home), Credentials.load(args.home / CREDENTIALS))
    return 0


def _seed(settings: Settings, creds: Credentials) -> None:
    from gongdi.demo.seeder import seed_as_townships

    def progress(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            print(f"\r  演示数据 {done}/{total}", end="", flush=True)

    started = time.monotonic()
    counts = asyncio.run(seed_as_townships(settings, creds.password, progress))
    print(f"\n  新记录 {counts['recorded']} 条，已存在 {counts['already']} 条，用时 {time.monotonic() - started:.1f}s")
    if counts["prompted"]:
        print(f"  流动党员定时提醒 {counts['prompted']} 条（应转接组织关系、失联党员上报）")
    if counts["differs"]:
        print(f"  另有 {counts['differs']} 条与此前（旧版）演示数据记录的不同，未记录，原有记录保持不变"
              " (an earlier demo recorded these facts otherwise; the folder is kept as it is)")


def bus_answers(settings: Settings) -> bool:
    """Whether NATS takes a connection now, tried once: the operator's commands connect as the services do (retrying
    for ever), which with the platform stopped hung `gongdi verify` instead of saying so."""

    async def probe() -> None:
        async def quiet(_: Exception) -> None:
            return None

        nc = await nats.connect(settings.nats_servers, name="gongdi-probe", connect_timeout=2,
                                max_reconnect_attempts=2, reconnect_time_wait=0.2, error_cb=quiet)
        await nc.close()

    try:
        asyncio.run(probe())
    except (nats.errors.Error, OSError, TimeoutError):
        return False
    return True


def _up_command(home: Path) -> str:
    """The command that starts this folder's platform, as the user would type it."""
    return "gongdi up" if home == DEFAULT_HOME and "GONGDI_HOME" not in os.environ else f"gongdi --home {home} up"


def unreachable(home: Path) -> int:
    print(f"无法连接平台：NATS 没有应答。平台未运行？请先运行 `{_up_command(home)}`，或设置 NATS_URL；"
          f"状态目录 {home.resolve()} (cannot reach NATS)", file=sys.stderr)
    return 1


def cmd_verify(args: argparse.Namespace) -> int:
    """Every writing service (or `--schema`): chains, commands, signed heads, JetStream copy (gongdi.ops.audit)."""
    from gongdi.ops.audit import kept_heads, lagging_heads, summary, verify_all
    from gongdi.service.process import connect_nats
    from gongdi.store.heads import HeadKey

    if args.heads is not None:
        try:
            kept_heads(args.heads)
        except OSError as exc:
            print(f"错误: 无法读取留存的日志头文件 {args.heads}：{exc.strerror or exc} (--heads)", file=sys.stderr)
            return 2
        except (ValueError, KeyError, TypeError) as exc:
            print(f"错误: {args.heads} 不是 `gongdi verify --export-heads` 写的日志头文件 ({type(exc).__name__})",
                  file=sys.stderr)
            return 2
    settings = runtime_settings(args.home)
    if not bus_answers(settings):
        return unreachable(args.home)
    creds = Credentials.load(args.home / CREDENTIALS)
    public = HeadKey(creds.head_key).public_hex if creds.head_key else None

    async def run() -> list:
        nc = await connect_nats(settings, "gongdi-verify")
        try:
            return await verify_all(settings.database_url, nc.jetstream(), [args.schema] if args.schema else WRITERS,
                                    public, args.heads, args.export_heads)
        finally:
            await nc.close()

    reports = asyncio.run(run())
    problems = [p for r in reports for p in r.problems]
    for r in reports:
        print(summary(r))
    if args.heads is not None:
        absent = [r.service for r in reports if r.kept is None]
        lacking = f"（文件中没有 {'、'.join(absent)} 的日志头）" if absent else ""
        print(f"已与留存文件 {args.heads} 中的日志头核对{lacking}")
    for p in problems:
        print(f"!! {p}")
    if args.export_heads:
        for line in lagging_heads(reports, args.export_heads):
            print(line)
    print("哈希链、命令、签名日志头与 JetStream 副本一致 (all verify)" if not problems else f"{len(problems)} 处不一致")
    return 0 if not problems else 1


def cmd_setup(args: argparse.Namespace) -> int:
    settings = runtime_settings(args.home)
    creds = Credentials.load(args.home / CREDENTIALS)
    # A server's database: the passwords the install gives; the embedded one: the state folder's own.
    database_passwords = _role_passwords_given() if "DATABASE_URL" in os.environ else creds.postgres or None
    try:
        lines = Supervisor(settings, args.home / "logs", passwords=creds.nats or None,
                           database_passwords=database_passwords).setup()
    except RuntimeError as exc:
        print(f"setup 未完成：\n{exc}\n内置的 NATS 与 PostgreSQL 由 `gongdi up` 启动并自动 setup；单独的 `gongdi setup`"
              " 用于已在运行的服务器（NATS_URL、DATABASE_URL）", file=sys.stderr)
        return 1
    for line in lines:
        print(f"  {line}")
    return 0


def _role_passwords_given() -> dict[str, str] | None:
    """The service roles' passwords a server install gives setup (PG_PW_MEMBERSHIP, …, from
    deploy/env/nats-secrets.env), all or none: without them setup makes the roles without login, for an operator to
    enable by hand."""
    from gongdi.ops.deployfiles import PLACEHOLDER

    given = {role: os.environ.get(password_variable(role), "") for role in DATABASE_ROLES}
    if not any(given.values()):
        return None
    unusable = [password_variable(role) for role, pw in given.items() if not pw or pw == PLACEHOLDER]
    if unusable:
        raise SystemExit(f"setup 未开始：{', '.join(unusable)} 未设置或仍是示例值 {PLACEHOLDER}；"
                         "用 `python -m gongdi.ops.deployfiles secrets` 生成随机密码")
    return given


def cmd_repair_stream(args: argparse.Namespace) -> int:
    """Make a writing service's stream anew from PostgreSQL (see gongdi.bus.repair), then set it up again."""
    import asyncpg

    from gongdi.bus.repair import repair_stream
    from gongdi.ops.audit import evidence_in_copy
    from gongdi.service.process import connect_nats
    from gongdi.store.postgres import PostgresEventStore

    settings = runtime_settings(args.home)
    if not bus_answers(settings):
        return unreachable(args.home)
    schemas = [module.rsplit(".", 1)[-1] for module in SETUP_ORDER]

    async def run() -> bool:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        nc = await connect_nats(settings, "gongdi-repair")
        try:
            if not args.force and (evidence := await evidence_in_copy(pool, nc.jetstream(), args.service)):
                print(f"未修复：{args.service} 的消息流中有 {len(evidence)} 条事件在 PostgreSQL 中已没有"
                      f"或不同，第一条：{evidence[0]}。修复会以 PostgreSQL 为准重发，这些证据将随旧流删除。"
                      "请先运行 `gongdi verify` 查明（可用 --export-heads 保存签名日志头）；"
                      "确认以 PostgreSQL 为准时，加 --force 再运行"
                      " (not repaired: the stream holds events the database lost; --force to repair anyway)",
                      file=sys.stderr)
                return False
            await repair_stream(nc.jetstream(), PostgresEventStore(pool, args.service), schemas)
            return True
        finally:
            await nc.close()
            await pool.close()

    if not asyncio.run(run()):
        return 1
    cmd_setup(args)  # the stream and every consumer of it made again; the relay then republishes into it
    print(f"已修复 {args.service} 的流；`gongdi view status` 显示重新发布的进度 (republishing; watch the status)")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild a reading service's schema in its shadow and swap it in, while it keeps answering (gongdi.bus.shadow)."""
    from gongdi.bus.shadow import LettersRefused, RebuildError
    from gongdi.ops.rebuilding import rebuild_bar, result_line
    from services.views.app import VIEWS as READING

    if not bus_answers(runtime_settings(args.home)):
        return unreachable(args.home)
    # The rebuild's own log lines (each refused event, in the services' English) go to a file beside the services'
    # logs: the terminal shows the progress bar and the outcome in Chinese.
    log_path = args.home / "logs" / "rebuild.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log_file:
        configure(service="rebuild", file=log_file)
        try:
            outcome = asyncio.run(READING.rebuild_swap(runtime_settings(args.home), args.fresh, rebuild_bar(),
                                                       accept_letters=args.accept_dead_letters))
        except LettersRefused as exc:
            print(f"{exc}\n  每条被拒事件的详情见 {log_path.resolve()}", file=sys.stderr)
            return 1
        except RebuildError as exc:
            print(f"无法重建 (cannot rebuild): {exc}", file=sys.stderr)
            return 1
    print(result_line(READING.name, outcome))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the platform's PostgreSQL and its credentials in one file (gongdi.ops.backup): taken
    from the running platform without stopping it, or, when it is stopped, with its database started for the copy."""
    from urllib.parse import urlsplit

    from gongdi.ops.backup import BackupError, event_counts, prune, take

    home: Path = args.home
    if args.keep is not None and not (args.to and args.to.is_dir()):
        print("--keep 须与 --to 目录 一起使用：只清理该目录中较早的备份 (--keep needs --to FOLDER)", file=sys.stderr)
        return 2
    if "DATABASE_URL" in os.environ:
        print("gongdi backup 备份内置的 PostgreSQL；外部数据库请用它自己的备份（pg_basebackup、存储快照）"
              " (DATABASE_URL is set: back that server up with its own tools)", file=sys.stderr)
        return 2
    creds = Credentials.load(home / CREDENTIALS)
    if not (home / "postgres" / "data" / "PG_VERSION").exists() or SUPERUSER not in creds.postgres:
        print(f"{home.resolve()} 中没有平台数据，无可备份 (nothing to back up)", file=sys.stderr)
        return 1
    default = f"gongdi-backup-{dt.datetime.now(CITY_TZ).strftime('%Y%m%d-%H%M%S')}.tar"  # Beijing time, as shown
    target: Path = args.to or Path(default)
    if target.is_dir():
        target = target / default
    if target.exists():
        print(f"未备份：{target} 已存在；请换一个文件名 (the file exists)", file=sys.stderr)
        return 1
    if not target.parent.is_dir():
        print(f"未备份：目录 {target.parent} 不存在 (no such folder)", file=sys.stderr)
        return 1
    settings = runtime_settings(home)
    try:
        held: int | None = statelock.hold(home)
    except statelock.FolderInUse:
        held = None  # running: its own PostgreSQL serves the copy
    pg = EmbeddedPostgres(home / "postgres", password=creds.postgres[SUPERUSER])
    try:
        if held is None:
            url = urlsplit(settings.database_url)
            pg.port, pg.database = url.port or 5432, url.path.lstrip("/") or pg.database
        else:
            pg.start()
        print(f"正在备份{'运行中的' if held is None else '已停止的'}平台到 {target} …", file=sys.stderr)
        counts = asyncio.run(event_counts(pg.url, WRITERS))
        manifest = take(pg, home, target, settings.city().code, counts, progress=sys.stderr.isatty())
    except BackupError as exc:
        print(f"未备份：{exc}", file=sys.stderr)
        return 1
    finally:
        if held is not None:
            pg.stop()
            statelock.release(held)
    held_events = "，".join(f"{w} {n} 个事件" for w, n in manifest.events.items())
    meanwhile = "，及备份期间提交的" if held is None else ""
    print(f"已备份到 {target.resolve()}（{target.stat().st_size // 1024} KB；{held_events}{meanwhile}；"
          f"含全部身份密码，请像状态目录一样保密保存）。恢复：gongdi --home 新目录 restore {target}")
    if args.keep is not None and (gone := prune(target.parent, args.keep)):
        print(f"已删除较早的备份 {len(gone)} 个（保留最新 {args.keep} 个）：" + "、".join(p.name for p in gone))
    return 0


def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"应为不小于 1 的整数，而不是 {text!r}")
    return n


def cmd_restore(args: argparse.Namespace) -> int:
    """A backup made by `gongdi backup` into a state folder that holds no platform; `gongdi up` then republishes the
    streams from the restored database."""
    import asyncpg

    from gongdi.ops.backup import BackupError, event_counts, forget_publishing, unpack

    home: Path = args.home
    if (home / CREDENTIALS).exists() or (home / "postgres").exists():
        print(f"未恢复：{home.resolve()} 已有平台数据；请恢复到新的状态目录（--home 新目录），或先 gongdi reset"
              " (the folder holds a platform)", file=sys.stderr)
        return 1
    try:
        held = statelock.hold(home)
    except statelock.FolderInUse as exc:
        print(f"未恢复：{exc}", file=sys.stderr)
        return 1
    try:
        manifest = unpack(args.archive, home)
        pg = EmbeddedPostgres(home / "postgres", password=Credentials.load(home / CREDENTIALS).postgres[SUPERUSER])
        try:
            pg.start()
            asyncio.run(forget_publishing(pg.url, WRITERS))
            counts = asyncio.run(event_counts(pg.url, WRITERS))
        except (RuntimeError, OSError, asyncpg.PostgresError) as exc:  # the copy unpacked, but no database in it
            raise BackupError(f"无法从备份启动数据库，备份文件可能已损坏（{type(exc).__name__}；详情见"
                              f" {home / 'postgres' / 'postgres.log'}）") from exc
        finally:
            pg.stop()
    except BackupError as exc:
        _remove_restored(home)
        print(f"未恢复：{exc}", file=sys.stderr)
        return 1
    finally:
        statelock.release(held)
    held_events = "，".join(f"{w} {n} 个事件" for w, n in counts.items())
    made = dt.datetime.fromisoformat(manifest.made_at).astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M:%S")
    print(f"已恢复 {manifest.city} 于 {made}（北京时间）的备份到 {home.resolve()}：{held_events}。\n"
          f"运行 gongdi --home {home} up 启动；各消息流将从 PostgreSQL 重新发布。若留存了签名日志头，"
          f"再运行 gongdi --home {home} verify --heads 日志头文件：备份之后签名的日志头所含事件即为备份后丢失的记录。")
    return 0


def _remove_restored(home: Path) -> None:
    """What a failed restore unpacked, and nothing else the folder held."""
    import shutil

    shutil.rmtree(home / "postgres", ignore_errors=True)
    (home / CREDENTIALS).unlink(missing_ok=True)


def _confirmed(home: Path, yes: bool) -> bool:
    """On a terminal, emptying a folder that holds data is asked first, with the folder's name typed back: with
    GONGDI_HOME set in the shell, `gongdi reset` alone would wipe that installation, passwords included. Scripts
    (no terminal) and `--yes` are not asked."""
    if yes or not sys.stdin.isatty() or not home.is_dir() or not any(home.iterdir()):
        return True
    print(f"将删除 {home.resolve()} 中的全部数据，包括身份密码 (credentials.json) 和日志，不可恢复。", file=sys.stderr)
    try:
        typed = input(f"确认请输入目录名 {home.resolve().name}（其他任何输入取消）: ")
    except EOFError:
        return False
    return typed.strip() == home.resolve().name


def cmd_reset(args: argparse.Namespace) -> int:
    if not _confirmed(args.home, args.yes):
        print("未清空 (cancelled)", file=sys.stderr)
        return 1
    try:
        held = statelock.hold(args.home)
    except statelock.FolderInUse as exc:
        print(f"未清空：{exc}；请先停止它 (Ctrl-C) 再清空 (the platform is running)", file=sys.stderr)
        return 1
    try:
        _reset(args.home)
    finally:
        statelock.release(held)
    print(f"已清空 {args.home}")
    return 0


def _reset(home: Path) -> None:
    """Every server a dead `up` left behind stopped, and the folder emptied; the caller holds its lock."""
    from gongdi.ops.runtime import _kill_stale

    for pidfile in (home / "nats" / "nats.pid", home / "postgres" / "data" / "postmaster.pid"):
        _kill_stale(pidfile)
    statelock.empty(home)



def cmd_up(args: argparse.Namespace) -> int:
    home: Path = args.home
    try:
        statelock.hold(home)  # for as long as this process lives: servers left by a dead one are stale, not live
    except statelock.FolderInUse as exc:
        print(f"平台已在运行：{exc}；不再启动第二个 (already running)", file=sys.stderr)
        return 1
    if args.reset:
        if not _confirmed(home, args.yes):
            print("未清空，未启动 (cancelled)", file=sys.stderr)
            return 1
        _reset(home)
    if ended := end_leftovers(home / "logs"):
        print(f"已结束上次未正常停止时遗留的 {ended} 个平台进程 (ended {ended} processes left running)")
    http_port = _http_port(home)  # a port asked for and taken is said before anything starts
    nats_srv = pg = None
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    # The terminal closing (SIGHUP) stops the platform as Ctrl-C does: before, `up` died of it at once and left
    # every server and service running with nobody watching. Started under nohup, hangups stay ignored.
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, on_term)
    # A shell without job control starts a background command with SIGINT ignored, and Python keeps it so: `kill
    # -INT` (what Ctrl-C sends) must still stop the platform, wherever it was started from.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    supervisor = None
    try:
        print(f"gongdi: 数据目录 {home.resolve()}")
        city = Settings.from_env().city()
        urls: dict[str, str] = {}
        creds: Credentials | None = None
        database_passwords: dict[str, str] | None = None
        if "NATS_URL" in os.environ:
            urls["nats_url"] = os.environ["NATS_URL"]
        else:
            # Every identity's password, created once and kept in the state folder (owner-only).
            creds = Credentials.ensure(home, city, WRITERS)
            if args.seed and DEMO_SECRETARY[0] not in creds.secretaries:
                # The demo's site branch secretary, so the record forms can be tried as the person who uses them;
                # added before the server starts: a reload under running requests loses their replies.
                creds.add_secretary(city, *DEMO_SECRETARY)
            nats_srv = EmbeddedNats(home / "nats", accounts=creds.accounts(city).render())
            urls["nats_url"] = nats_srv.start()
        if "DATABASE_URL" in os.environ:
            urls["database_url"] = os.environ["DATABASE_URL"]
        else:
            # The superuser's and every service role's password, created once beside the NATS ones.
            db_creds = creds or Credentials.load(home / CREDENTIALS)
            db_creds.ensure_postgres(DATABASE_ROLES)
            database_passwords = db_creds.postgres
            pg = EmbeddedPostgres(home / "postgres", password=db_creds.postgres[SUPERUSER])
            urls["database_url"] = pg.start()
        urls["http_port"] = http_port
        write_private(home / "runtime.json", json.dumps(urls, indent=2))  # the database URL carries a password
        settings = runtime_settings(home)
        # The servers the platform started itself are watched too: killed, they are restarted in place.
        supervisor = Supervisor(settings, home / "logs", passwords=creds.nats if creds else None,
                                database_passwords=database_passwords,
                                servers=[s for s in (nats_srv, pg) if s is not None])
        for line in supervisor.setup():
            print(f"  {line}")
        supervisor.start()
        admin = client_settings(argparse.Namespace(home=home, identity=None))
        wait_ready(admin)
        web = f"http://{settings.http_host}:{settings.http_port}"
        wait_http(f"{web}/health")
        if args.seed:
            _seed(settings, Credentials.load(home / CREDENTIALS))
        view = wait_caught_up(admin)
        print()
        print(format_city(view))
        status = asyncio.run(with_client(admin, lambda c: stream_status(None, c)))
        # A view or a policy incomplete, or a log shorter than its stream (events deleted): say so here.
        if any(c["dead_letters"] for c in status["consumers"]) or short_logs(status):
            print(format_status(status))
        print()
        print(f"  NATS       {urls['nats_url']}")
        print(f"  PostgreSQL {without_password(urls['database_url'])}")
        print(f"  日志       {(home / 'logs').resolve()}")
        print(f"  网页       {web}/   (全市大屏 {web}/city，接口文档 {web}/docs，总线文档 {web}/asyncapi)")
        if creds and args.seed:
            print(format_logins(creds.nats, ["city", "dashboard", "township.shacheng", "site.shacheng.shachengwan",
                                             "department.jiaotong", "auditor"]))
        if creds:
            print(f"  身份       {len([u for u in creds.nats if _is_person(u)])} 个，密码在 {creds.path.resolve()}"
                  " (仅本用户可读)；`gongdi users` 列出全部")
            print("             gongdi --as township.diantou view township diantou  (默认身份: city 市工委)")
        print("  试试: gongdi view city | gongdi view site shachengwan | gongdi send membership RecordArrival '{...}'")
        print("  按 Ctrl-C 停止（在后台运行时：gongdi stop）。")
        while not stopping:
            supervisor.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C while stopping would leave the servers running: stopping is not interruptible.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _say("\n正在停止…")  # after a hangup the terminal is gone: a failed line must not stop the stopping
        if supervisor:
            supervisor.stop()
        if pg:
            pg.stop()
        if nats_srv:
            nats_srv.stop()
        _say("已停止 (stopped)")
    return 0


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, flush=True)


DEMO_SECRETARY = ("shachengwan", "shacheng")  # site, township


def format_logins(passwords: dict[str, str], users: list[str]) -> str:
    """The demo's logins for the dashboard: a few identities of each role with their passwords."""
    lines = ["  登录       (演示身份；全部身份见 `gongdi users`)"]
    for user in users:
        if user in passwords:
            role = LABELS[Identity.parse(user).role]
            lines.append(f"             {role:<6} 用户 {user:<28} 密码 {passwords[user]}")
    return "\n".join(lines)


def _http_port(home: Path) -> int:
    """The gateway's port: GONGDI_HTTP_PORT (0: any free one), else the one this state folder had, else 8480, else
    any free one."""
    if "GONGDI_HTTP_PORT" in os.environ:
        text = os.environ["GONGDI_HTTP_PORT"].strip()
        if not text.isdigit() or not 0 <= (asked := int(text)) <= 65535:
            raise SystemExit(f"GONGDI_HTTP_PORT={text!r} 不是端口号：应为 1–65535，或 0 让平台自选"
                             " (not a port number)")
        if asked and not port_free(asked):  # before, the gateway died on it and `up` waited a minute for it
            raise SystemExit(f"端口 {asked} 已被占用（GONGDI_HTTP_PORT）：请换一个端口，或设为 0 让平台自选"
                             f" (port {asked} is taken)")
        return asked or free_port()
    info = home / "runtime.json"
    try:
        before = json.loads(info.read_text()).get("http_port") if info.exists() else None
    except ValueError:  # damaged: written again below
        before = None
    for port in (before, Settings().http_port):
        if port and port_free(int(port)):
            return int(port)
    return free_port()


def cmd_stop(args: argparse.Namespace) -> int:
    """Stops the `gongdi up` running on the state folder as Ctrl-C would (SIGTERM), and waits until it has: for an
    `up` started in the background (nohup, a service manager), which before only `kill` with its PID stopped."""
    home: Path = args.home
    pid = statelock.holder(home)
    if pid is None:
        print(f"{home} 没有正在运行的平台 (not running)")
        return 0
    try:
        os.kill(int(pid), signal.SIGTERM)
    except (ValueError, ProcessLookupError, PermissionError) as exc:
        print(f"无法停止 {home} 上的平台（PID {pid or '?'}）：{exc} (cannot signal it)", file=sys.stderr)
        return 1
    print(f"正在停止 {home} 上的平台（PID {pid}）…", flush=True)
    deadline = time.monotonic() + args.timeout
    while statelock.holder(home) is not None:  # the lock goes with the process, after its servers stopped
        if time.monotonic() > deadline:
            print(f"{args.timeout:g} 秒后仍未停止：请查看 {home / 'logs'}；仍不停止可 kill -9 {pid} (still running)",
                  file=sys.stderr)
            return 1
        time.sleep(0.2)
    print("已停止 (stopped)")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    settings = runtime_settings(args.home)
    city = settings.city()
    if not (args.home / CREDENTIALS).exists():
        print(f"{args.home.resolve()} 还没有身份：请先运行 `gongdi up` (no identities yet)", file=sys.stderr)
        return 1
    creds = Credentials.ensure(args.home, city, WRITERS)
    if args.action == "add-secretary":
        if not args.site_id or not args.township:
            print("用法: gongdi users add-secretary <site_id> <township>", file=sys.stderr)
            return 2
        problem = _site_of_another_township(args, city)
        if problem:
            print(f"错误: {problem}", file=sys.stderr)
            return 2
        try:
            identity = creds.add_secretary(city, args.site_id, args.township)
        except ValueError as exc:
            print(f"错误: {exc}", file=sys.stderr)
            return 2
        live = reload_nats_accounts(args.home / "nats", creds.accounts(city).render())
        print(f"已添加 {identity.name}" + ("，已生效" if live else "；下次 `gongdi up` 时生效"))
        # The secretary needs it to log in; it is also kept in credentials.json (readable by this user only).
        print(f"  登录名 {identity.name}  密码 {creds.password(identity.name)}  （请当面交给该工地书记）")
    identities = [Identity.parse(u) for u in creds.nats if _is_person(u)]
    print(format_identities(city, identities, creds.path, _site_names(args, identities)))
    return 0


def _site_names(args: argparse.Namespace, identities: list[Identity]) -> dict[str, str]:
    """The names of the secretaries' sites, from the running platform's township views (one query a township);
    none when it is not running: the list then names sites by id, as their logins do."""
    townships = sorted({i.township for i in identities if i.role is Role.SITE and i.township})
    if not townships:
        return {}

    async def ask(client: Any) -> list[dict[str, Any]]:
        return await asyncio.gather(*(client.query(VIEWS_SERVICE, "township", {"township": t}) for t in townships))

    try:
        replies = asyncio.run(with_client(client_settings(args), ask))
    except (OSError, nats.errors.Error, SystemExit):  # not running, or never started: ids it is
        return {}
    return {s["site_id"]: s["name"] for r in replies if r.get("ok") for s in r["data"].get("sites", [])}


def _site_of_another_township(args: argparse.Namespace, city: Any) -> str | None:
    """Why a secretary for `args.site_id` of `args.township` would be wrong, asked of the running platform (as the
    city): no such site, or a site of another township. Before, a mistyped township made an identity that reads
    the site's members and left the real secretary locked out. Not running: said, and not checked."""
    unchecked = f"未能核对工地 {args.site_id} 是否属于 {city.township_name(args.township)}"
    try:
        settings = client_settings(args)
    except SystemExit as exc:  # the state folder has no city identity yet: never started
        print(f"注意：{unchecked}：{exc}", file=sys.stderr)
        return None
    try:
        reply = asyncio.run(with_client(settings, lambda c: c.query(VIEWS_SERVICE, "site", {"site_id": args.site_id})))
    except (OSError, nats.errors.Error) as exc:
        print(f"注意：平台未运行，{unchecked} (not checked: {type(exc).__name__})", file=sys.stderr)
        return None
    if not reply.get("ok"):
        error = reply.get("error") or {}
        return f"{error.get('message', '')} [{error.get('code', '')}]；请先登记工地，或检查工地编号"
    actual = (reply.get("data") or {}).get("township")
    if actual and actual != args.township:
        return (f"工地 {args.site_id} 属于{city.township_name(actual)}（{actual}），不属于"
                f"{city.township_name(args.township)}（{args.township}）：请用 {actual}")
    return None


def cmd_deadletters(args: argparse.Namespace) -> int:
    """List every consumer's dead letters (from each service's status), or have the services retry them."""
    from gongdi.cli.format import format_dead_letters, format_retry
    from gongdi.ops.client import GongdiClient
    from gongdi.ops.readiness import ServiceRefused

    if args.action == "list":
        try:
            status = asyncio.run(with_client(client_settings(args), lambda c: stream_status(None, c)))
        except ServiceRefused as exc:
            print(f"错误 {exc.code}: {exc.service}: {exc.message}", file=sys.stderr)
            return 1
        print(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() if args.json else format_dead_letters(status))
        return 0
    # Retry is the platform operator's: asked as `setup` on `ops.<service>.deadletters.retry`, which only the
    # PLATFORM account reaches. Each service re-applies its own consumers' letters with its own handlers.
    from contracts.queries import retry_subject

    services = [args.service] if args.service else [*WRITERS, VIEWS_SERVICE]

    async def retry() -> list[dict[str, Any]]:
        client = await GongdiClient.connect(runtime_settings(args.home), timeout=args.timeout)
        try:
            results = []
            for service in services:
                reply = await client.request(retry_subject(service), b"{}")
                if not reply.get("ok"):
                    raise ServiceRefused(service, reply.get("error") or {})
                results += reply["data"]["results"]
            return results
        finally:
            await client.close()

    try:
        results = asyncio.run(retry())
    except ServiceRefused as exc:
        print(f"错误 {exc.code}: {exc.service}: {exc.message}", file=sys.stderr)
        return 1
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() if args.json else format_retry(results))
    return 0 if all(r["outcome"] in ("applied", "gone") for r in results) else 1


# Which area each writing service records, for `gongdi send -h` and `gongdi repair-stream -h`.
SERVICES = {"membership": "工地、从业人员、党员进退场、党支部和党小组",
            "activities": "三必谈、走访、政治生日、责任区、示范岗、三会一课、积分等党建活动",
            "liaison": "联席会议、双达标、党建联创、纠纷调解、帮扶驻地"}
AS_OF = ("查看过去某一天（YYYY-MM-DD：当天结束时，本市时间）或某一时刻（YYYY-MM-DDTHH:MM[+08:00]）的情况，"
         "而不是现在 (as of a day or a moment)")
BASIS = ("与 --as-of 一起用：business 按业务日期，即当时的实际情况，含事后补录的事实（默认）；recorded 按记录时间，"
         "即平台当时显示的内容 (by business date / by recording time)")
MONTH = "月份 YYYY-MM，只用于 birthdays 政治生日（默认本月） (month)"
RECORD = ("只用于 records 可撤销的记录：只列这一类，最多 1000 条（不给：各类最近 100 条）："
          + "，".join(f"{k.value} {activities.LABELS[k.value]}" for k in activities.RecordKind) + " (record kind)")


def add_time_options(parser: argparse.ArgumentParser) -> None:
    """A view's month and as-of moment, the same for `view` and `export`."""
    parser.add_argument("--month", metavar="YYYY-MM", help=MONTH)
    parser.add_argument("--record", choices=[k.value for k in activities.RecordKind], metavar="类别", help=RECORD)
    parser.add_argument("--as-of", metavar="时间", help=AS_OF)
    parser.add_argument("--basis", choices=[b.value for b in Basis], help=BASIS)
JSON = "输出 JSON，而不是文字 (print JSON)"


def _as(command: str) -> str:
    return f"以此身份操作，同 `gongdi --as 身份 {command} …` (act as this identity)"


def build_parser() -> argparse.ArgumentParser:
    """The `gongdi` command's parser: every command, positional and option described in Chinese first, with
    examples, for the city's and the townships' staff who use it."""
    views = "，".join(f"{q.name} {q.title}" for q in QUERIES.values())
    parser = Parser(prog="gongdi", description="工地党建共享记录平台：启动平台、查看视图、导出导入表格、发送命令、"
                    "核验记录。\n(construction-site party building records: run, view, export, import, send, verify)",
                    epilog=examples(("gongdi up --seed", "启动平台并载入演示数据"),
                                    ("gongdi view city", "全市视图"),
                                    ("gongdi --as township.diantou view township diantou", "以点头镇党委身份看本镇"),
                                    ("gongdi export members --format csv", "导出党员花名册"),
                                    ("gongdi users", "全部身份及密码文件位置"),
                                    ("gongdi 命令 -h", "某一命令的说明")))
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, metavar="目录",
                        help="状态目录：数据库、消息服务器、身份密码和日志都在这里（默认 .gongdi，或环境变量"
                        " GONGDI_HOME） (state folder)")
    parser.add_argument("--as", dest="identity", metavar="身份",
                        help="以此身份操作（默认 city 市工委），如 township.diantou 乡镇、site.shacheng.shachengwan"
                        " 工地书记、department.jiaotong 主管部门；全部身份见 `gongdi users` (act as this identity)")
    sub = parser.add_subparsers(dest="cmd", required=True, title="命令 (commands)", metavar="命令")

    up = sub.add_parser("up", help="启动平台：NATS、PostgreSQL 和全部服务；Ctrl-C 或 gongdi stop 停止 (start)",
                        description="启动平台：NATS、PostgreSQL、全部服务和网页；按 Ctrl-C（或 gongdi stop）停止。"
                        "数据保存在状态目录，下次启动时仍在。",
                        epilog=examples(("gongdi up --seed", "启动并载入演示数据"),
                                        ("gongdi up --reset --seed", "清空全部数据后重新开始")))
    up.add_argument("--seed", action="store_true", help="载入演示数据（默认城市 2020 年的项目、党员和活动；再次载入不会"
                    "重复记录） (load the demo city)")
    up.add_argument("--reset", action="store_true", help="启动前删除全部数据（整个状态目录），不可恢复；在终端上"
                    "先要求输入目录名确认 (delete all state first)")
    up.add_argument("--yes", action="store_true", help="与 --reset 一起：不询问确认 (do not ask)")
    up.set_defaults(fn=cmd_up)
    stop = sub.add_parser("stop", help="停止在状态目录上运行的平台（同 Ctrl-C） (stop a running platform)",
                          description="停止在状态目录上运行的 gongdi up（后台启动的也可），"
                          "等到全部服务和服务器都已停止。",
                          epilog=examples(("gongdi stop", "停止 .gongdi 上的平台"),
                                          ("gongdi --home /srv/gongdi stop", "停止另一个状态目录上的平台")))
    stop.add_argument("--timeout", type=float, default=120.0, metavar="秒",
                      help="最多等待的秒数（默认 120） (seconds to wait)")
    stop.set_defaults(fn=cmd_stop)
    sub.add_parser("setup", help="建立数据库表、消息流和消费者；可重复运行 (create schemas, streams and consumers)",
                   description="建立数据库表、消息流和消费者；已有的保持不变，可重复运行。"
                   ).set_defaults(fn=cmd_setup)
    sub.add_parser("seed", help="向运行中的平台载入演示数据 (load the demo city)",
                   description="向运行中的平台载入演示数据；已记录的不会重复记录。").set_defaults(fn=cmd_seed)
    reset = sub.add_parser("reset", help="停止残留的服务器并删除状态目录（全部数据） (delete the state folder)",
                           description="停止残留的服务器并删除状态目录：全部数据、身份密码和日志都将删除，不可恢复。"
                           "在终端上先要求输入目录名确认。")
    reset.add_argument("--yes", action="store_true", help="不询问确认（脚本用） (do not ask)")
    reset.set_defaults(fn=cmd_reset)

    backup = sub.add_parser("backup", help="备份平台（运行中也可）：数据库与身份密码写入一个文件 (back up)",
                            description="把平台的 PostgreSQL（一致的物理副本）和身份密码写入一个文件；平台运行中"
                            "也可备份，不必停止。JetStream 不备份：恢复后由 PostgreSQL 重新发布。",
                            epilog=examples(("gongdi backup", "写入当前目录的 gongdi-backup-日期-时间.tar"),
                                            ("gongdi backup --to /mnt/备份/gongdi.tar", "写入指定文件"),
                                            ("gongdi backup --to /mnt/备份/ --keep 14", "写入目录，只保留最新 14 个")))
    backup.add_argument("--to", type=Path, metavar="文件",
                        help="备份文件或目录（默认当前目录 gongdi-backup-日期-时间.tar）")
    backup.add_argument("--keep", type=_at_least_one, metavar="N",
                        help="备份到目录时，只保留该目录中最新的 N 个备份，删除更早的 (keep the newest N)")
    backup.set_defaults(fn=cmd_backup)
    restore = sub.add_parser("restore", help="把备份恢复到一个新的状态目录 (restore a backup)",
                             description="把 gongdi backup 写的备份恢复到没有平台数据的状态目录（--home）；"
                             "之后 gongdi up 启动，消息流从 PostgreSQL 重新发布。",
                             epilog=examples(("gongdi --home ~/.gongdi-恢复 restore gongdi-backup-20201231-180000.tar",
                                              "恢复到新目录")))
    restore.add_argument("archive", type=Path, metavar="备份文件")
    restore.set_defaults(fn=cmd_restore)

    view = sub.add_parser("view", help=f"查看视图：{views} (show a view)", description=f"查看视图：{views}。",
                          epilog=examples(("gongdi view city", "全市视图"),
                                          ("gongdi view site shachengwan", "一个工地"),
                                          ("gongdi view township diantou --as-of 2020-06-30", "点头镇 6 月底的情况"),
                                          ("gongdi view birthdays shachengwan --month 2020-07", "7 月的政治生日"),
                                          ("gongdi view status", "各服务的处理进度和死信")))
    view.add_argument("what", choices=list(VIEWS), metavar="视图", help=f"视图名称：{views}")
    view.add_argument("site_id", nargs="?", metavar="编号",
                      help="视图的对象：工地编号（site、talks、birthdays，如 shachengwan）、乡镇代码（township，如"
                      " diantou）或主管部门代码（department，如 jiaotong）；city 和 status 不需要")
    add_time_options(view)
    view.add_argument("--json", action="store_true", help=JSON)
    view.set_defaults(fn=cmd_view)

    exports = "，".join(f"{k} {v}" for k, v in EXPORTS.items())
    export = sub.add_parser("export", help="把视图、党员花名册或重点项目清单导出为 Excel 或 CSV 文件 (export a file)",
                            description=f"把视图、党员花名册（members）或重点项目清单（sites）导出为 Excel 工作簿或"
                            f" CSV：{exports}。文件名写明地区、内容和日期，如 白琳镇-党员花名册-2020-12-31.xlsx，与网页"
                            "下载的文件同名。",
                            epilog=examples(("gongdi export city", "全市视图，写入 福鼎市-全市视图-<日期>.xlsx"),
                                            ("gongdi --as township.bailin export members --format csv",
                                             "白琳镇的党员花名册（CSV）"),
                                            ("gongdi export sites bailin", "白琳镇的重点项目清单"),
                                            ("gongdi export site shachengwan --as-of 2020-12-31", "一个工地年底的情况"),
                                            ("gongdi export township diantou --out - > 点头镇.xlsx", "输出到标准输出")))
    export.add_argument("what", choices=list(EXPORTS), metavar="内容", help=f"导出的内容：{exports}")
    export.add_argument("ident", nargs="?", metavar="编号",
                        help="导出的对象：工地编号、乡镇代码或主管部门代码；members 和 sites 可给一个乡镇代码（默认："
                        "本身份可见的全部工地）")
    export.add_argument("--format", choices=["xlsx", "csv"], default="xlsx",
                        help="xlsx：Excel 工作簿，每部分一个工作表（默认）；csv：UTF-8（带 BOM），各部分依次排列")
    export.add_argument("--out", type=Path, metavar="文件",
                        help="写入的文件（默认：当前文件夹下的中文文件名；- 表示输出到标准输出） (output file)")
    export.add_argument("--as", dest="identity", metavar="身份", default=argparse.SUPPRESS, help=_as("export"))
    add_time_options(export)
    export.set_defaults(fn=cmd_export)

    subjects = "，".join(f"{k} {v}" for k, v in SUBJECTS.items())
    hist = sub.add_parser("history", help=f"一个对象的全部事件：何时、何人、哪条命令、引起了什么（{subjects}）"
                          " (every event touching it)",
                          description=f"一个对象的全部事件，来自每个写入服务：何时、何人、哪条命令、引起了什么。"
                          f"对象：{subjects}。",
                          epilog=examples(("gongdi history site shachengwan", "一个工地的全部记录"),
                                          ("gongdi history member m0001", "一名党员的全部记录"),
                                          ("gongdi history member m0001 --order day",
                                           "按发生日期排列，补录的事实排在它发生的那天")))
    hist.add_argument("kind", choices=list(SUBJECTS), metavar="类别", help=f"对象的类别：{subjects}")
    hist.add_argument("ident", metavar="编号", help="工地编号、党员编号或案件编号（工地党支部用其工地的编号）")
    hist.add_argument("--order", choices=list(ORDERS), default="recorded",
                      help="recorded 按记录时间（默认）；newest 同上，最新在前；"
                           "day 按发生日期（事实本身的日期，补录的排在它发生的那天）")
    hist.add_argument("--json", action="store_true", help=JSON)
    hist.set_defaults(fn=cmd_history)

    report = sub.add_parser("report", help="全市年度报告（带图表的 HTML 和 PDF） (the yearly report)",
                            description="全市年度报告：带图表的 HTML 和 PDF，数据为该年年末的视图。只有市工委、审计和"
                            "大屏身份可以生成（报告只写项目和村名，不写个人）。",
                            epilog=examples(("gongdi report --year 2020", "在当前文件夹写入 report-2020.html 和 .pdf"),
                                            ("gongdi report --year 2020 --out 报告", "写入 报告 文件夹")))
    report.add_argument("--year", type=int, required=True, metavar="年度",
                        help="报告的年度，如 2020；数据截至该年 12 月 31 日（必填） (the year)")
    report.add_argument("--out", type=Path, default=Path("."), metavar="文件夹",
                        help="报告存放的文件夹，文件名 report-<年度>.html 和 .pdf（默认当前文件夹） (output folder)")
    report.set_defaults(fn=cmd_report)

    services = "；".join(f"{k}：{v}" for k, v in SERVICES.items())
    send = sub.add_parser("send", help="发送一条命令，如 gongdi send membership RecordArrival '{...}' (send a command)",
                          description="发送一条命令并显示平台的答复。平台暂不可用时，用同一命令编号持续重试"
                          "（见 --wait），同一命令不会重复记录。",
                          epilog=examples(
                              ("gongdi send membership ReportWorkforce "
                               "'{\"site_id\": \"baolong\", \"headcount\": 1500, \"as_of\": \"2020-09-01\"}'",
                               "报告从业人数"),
                              ("gongdi --as township.tongshan send membership RecordArrival '{...}'",
                               "以乡镇身份记录党员进场"),
                              ("gongdi send membership 无此命令 '{}'", "列出 membership 的全部命令")))
    send.add_argument("service", metavar="服务", help=f"接收命令的服务：{services}")
    send.add_argument("name", metavar="命令",
                      help="命令名称，如 RecordArrival、ReportWorkforce；写错时列出该服务的全部命令")
    send.add_argument("body", metavar="内容",
                      help="命令内容：一个 JSON 对象，用单引号括起；没有 command_id 时自动添加 (the command as JSON)")
    send.add_argument("--wait", type=float, default=30.0, metavar="秒",
                      help="平台暂不可用时持续重试的秒数，用同一命令编号（默认 30） (seconds to keep retrying)")
    send.set_defaults(fn=cmd_send)

    imp = sub.add_parser("import", help="从 .xlsx 或 .csv 导入党员花名册或重点项目清单"
                         " (import a roster or project list)",
                         description="从 .xlsx 或 .csv 导入党员花名册（members）或重点项目清单（sites）：每行作为一条"
                         "普通命令发送，按导入者的身份检查权限；同一文件再次导入不会重复记录。每行的结果写入结果文件的"
                         "“导入结果”列。",
                         epilog=examples(("gongdi import members --template 花名册模板.xlsx", "写出空白模板"),
                                         ("gongdi --as township.bailin import members 花名册.xlsx --dry-run",
                                          "只校验，不记录"),
                                         ("gongdi --as township.bailin import members 花名册.xlsx", "导入")))
    imp.add_argument("kind", choices=["members", "sites"], metavar="类别",
                     help="members 党员花名册；sites 重点项目清单")
    imp.add_argument("file", type=Path, nargs="?", metavar="文件",
                     help="要导入的 .xlsx 或 .csv 文件，不超过 10 MB（用 --template 时不需要）")
    imp.add_argument("--dry-run", action="store_true", help="只校验每一行，不记录任何内容 (check only)")
    imp.add_argument("--result", type=Path, metavar="文件",
                     help="结果文件（原表加“导入结果”列）的位置（默认：在导入文件旁，名为 <文件名>-导入结果 或"
                     " -校验结果） (result file)")
    imp.add_argument("--template", type=Path, metavar="文件",
                     help="不导入，写出空白模板（.xlsx，或 .csv） (write the blank template)")
    imp.add_argument("--as", dest="identity", metavar="身份", default=argparse.SUPPRESS, help=_as("import"))
    imp.set_defaults(fn=cmd_import)

    users = sub.add_parser("users", help="列出全部身份；add-secretary 添加工地党支部书记 (list or add identities)",
                           description="列出全部身份（登录名和角色）及密码文件的位置；add-secretary 为一个工地添加"
                           "党支部书记身份，平台运行时立即生效。",
                           epilog=examples(("gongdi users", "列出全部身份"),
                                           ("gongdi users add-secretary shachengwan shacheng",
                                            "为沙埕湾工地（沙埕镇）添加书记")))
    users.add_argument("action", nargs="?", choices=["list", "add-secretary"], default="list", metavar="操作",
                       help="list 列出（默认）；add-secretary 添加工地党支部书记")
    users.add_argument("site_id", nargs="?", metavar="工地编号",
                       help="工地编号（add-secretary 时），如 shachengwan")
    users.add_argument("township", nargs="?", metavar="乡镇代码",
                       help="工地所属乡镇的代码（add-secretary 时），如 shacheng")
    users.set_defaults(fn=cmd_users)

    dead = sub.add_parser("deadletters", help="列出处理失败的事件（死信）；retry 在原因排除后重新处理 (dead letters)",
                          description="列出各消费者处理失败的事件（死信）；原因排除后，retry 让各服务重新处理。",
                          epilog=examples(("gongdi deadletters", "列出死信"),
                                          ("gongdi deadletters retry --service views", "重新处理视图服务的死信")))
    dead.add_argument("action", nargs="?", choices=["list", "retry"], default="list", metavar="操作",
                      help="list 列出（默认）；retry 重新处理")
    dead.add_argument("--service", choices=[*WRITERS, VIEWS_SERVICE], metavar="服务",
                      help=f"retry 时只重试这个服务的消费者：{'、'.join([*WRITERS, VIEWS_SERVICE])}")
    dead.add_argument("--timeout", type=float, default=120.0, metavar="秒",
                      help="retry 时等待每个服务的秒数（默认 120）")
    dead.add_argument("--json", action="store_true", help=JSON)
    dead.set_defaults(fn=cmd_deadletters)

    repair = sub.add_parser("repair-stream", help="从 PostgreSQL 重建一个写入服务的消息流 (repair a stream)",
                            description="一个写入服务的消息流被删除、清空或被他人写入时：从 PostgreSQL 重新发布，"
                            "并重新指向其消费者。",
                            epilog=examples(("gongdi repair-stream membership", "修复 membership 的流")))
    repair.add_argument("service", choices=WRITERS, metavar="服务", help=f"写入服务：{services}")
    repair.add_argument("--force", action="store_true",
                        help="即使流中有 PostgreSQL 已没有的事件（证据）也修复 (repair even if the stream holds events"
                             " the database lost)")
    repair.set_defaults(fn=cmd_repair_stream)

    rebuild = sub.add_parser("rebuild", help="重建视图，期间查询照常 (rebuild the views)",
                             description="在影子模式中依据各写入服务的日志重建视图，完成后替换；重建期间查询照常；"
                             "中断的重建再次运行时从停下处继续。",
                             epilog=examples(("gongdi rebuild", "重建视图"),
                                             ("gongdi rebuild --fresh", "丢弃中断的重建，从头开始")))
    rebuild.add_argument("schema", nargs="?", choices=[VIEWS_SERVICE], default=VIEWS_SERVICE, metavar="服务",
                         help=f"要重建的读取服务（目前只有 {VIEWS_SERVICE}，默认）")
    rebuild.add_argument("--fresh", action="store_true", help="丢弃中断的重建留下的影子，从头开始 (start over)")
    rebuild.add_argument("--accept-dead-letters", action="store_true",
                         help="即使重建会把在用视图显示的事件作为死信丢掉也切换（先用 gongdi verify 查明）"
                              " (swap even if events the live views show become dead letters)")
    rebuild.set_defaults(fn=cmd_rebuild)

    verify = sub.add_parser("verify", help="核验各写入服务的日志：哈希链、命令、签名日志头、副本 (verify the logs)",
                            description="核验每个写入服务的日志：哈希链、命令、签名日志头，以及 JetStream 副本"
                            "是否一致。",
                            epilog=examples(("gongdi verify", "核验全部"),
                                            ("gongdi verify --export-heads 日志头.txt", "并留存最新日志头"),
                                            ("gongdi verify --heads 日志头.txt", "与留存的日志头核对")))
    verify.add_argument("--schema", metavar="服务", choices=WRITERS,
                        help=f"只核验这一个写入服务（默认全部：{'、'.join(WRITERS)}）")
    verify.add_argument("--heads", type=Path, metavar="文件",
                        help="同时与此留存文件中最新的日志头核对 (check kept heads)")
    verify.add_argument("--export-heads", type=Path, metavar="文件",
                        help="把每个服务最新的签名日志头追加到此文件，留待日后核对 (keep the heads)")
    verify.set_defaults(fn=cmd_verify)
    return parser


# The commands that act as a person (`--as`); the others are the operator's, run with the state folder's own rights.
AS_A_PERSON = {"view", "export", "history", "report", "send", "import", "deadletters"}


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "identity", None) and args.cmd not in AS_A_PERSON:
        parser.exit(2, f"gongdi {args.cmd} 是运维命令，以本机平台的权限运行，不接受 --as；--as 用于 "
                       f"{'、'.join(sorted(AS_A_PERSON))} (--as does not apply to {args.cmd})\n")
    try:
        code = args.fn(args)
    except BrokenPipeError:
        # The reader of the output went away (`gongdi view … | head`): nothing is wrong with the platform. The
        # output is pointed at /dev/null so that the flush at exit does not fail again (Python's docs, SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
        # Before the OSError below, which a timeout also is (Python 3.11): a service that does not answer in time
        # (its database frozen, say) was reported as NATS unreachable.
        print("平台已连接，但服务未在时限内应答（服务可能正在等待数据库）(no service answered); 查看日志: "
              f"{(args.home / 'logs').resolve()}", file=sys.stderr)
        code = 1
    except (nats.errors.NoServersError, ConnectionRefusedError, OSError) as exc:
        if isinstance(exc, OSError) and exc.filename:  # a file or folder, not the bus: say which and why
            print(f"无法使用 {exc.filename}：{exc.strerror} (state folder or file: {type(exc).__name__})",
                  file=sys.stderr)
        else:
            print(f"无法连接平台 (cannot reach NATS: {exc}). 平台未运行？请先运行 `{_up_command(args.home)}`，"
                  f"或设置 NATS_URL；状态目录 {args.home.resolve()}", file=sys.stderr)
        code = 1
    sys.exit(code)

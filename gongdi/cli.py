"""The `gongdi` command: run the platform, seed it, query views, send commands, verify and rebuild."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import nats.errors
import orjson

from contracts.activities import LABELS
from contracts.liaison import LABELS as LIAISON_LABELS
from gongdi.client import GongdiClient
from gongdi.runtime import EmbeddedNats, EmbeddedPostgres
from gongdi.settings import Settings
from gongdi.supervisor import Supervisor

DEFAULT_HOME = Path(os.environ.get("GONGDI_HOME", ".gongdi"))


def runtime_settings(home: Path) -> Settings:
    """Environment first (external servers), then what `gongdi up` wrote down."""
    values: dict[str, Any] = {}
    info = home / "runtime.json"
    if info.exists():
        values.update(json.loads(info.read_text()))
    env = Settings.from_env()
    if "NATS_URL" in os.environ or "nats_url" not in values:
        values["nats_url"] = env.nats_url
    if "DATABASE_URL" in os.environ or "database_url" not in values:
        values["database_url"] = env.database_url
    return env.model_copy(update=values)


# ---- printing -----------------------------------------------------------------------------------


def format_city(d: dict[str, Any]) -> str:
    cov = d["coverage"]
    lines = [
        f"{d['city_name']} 工地党建 · 全市视图",
        f"  重点工程项目 {d['projects']:>8,}",
        f"  从业人员     {d['workers']:>8,}",
        f"  党员         {d['members']:>8,}   (正式党员 {d['full_members']:,})",
        f"  工地党支部   {d['branches']:>8,}",
        f"  应覆盖工地   {cov['qualifying']:>8,}   已覆盖 {cov['covered']}，空白点 {len(d['gaps'])}  ({cov['rule']})",
    ]
    if d["gaps"]:
        lines.append("  空白点: " + "、".join(g["name"] for g in d["gaps"][:8]) + (" …" if len(d["gaps"]) > 8 else ""))
    if d["should_form_branch"]:
        names = "、".join(f"{g['name']}({g['full_members']}名正式党员)" for g in d["should_form_branch"][:6])
        more = " …" if len(d["should_form_branch"]) > 6 else ""
        lines.append(f"  应组建党支部 ({len(d['should_form_branch'])}): {names}{more}")
    if "activities" in d:
        lines += format_activities(d["activities"])
    if "liaison" in d:
        lines += format_liaison(d["liaison"])
    return "\n".join(lines)


def format_activities(a: dict[str, Any]) -> list[str]:
    teams = "，".join(f"{LABELS[k]} {n}" for k, n in a["teams"].items())
    posts = "，".join(f"{LABELS[k]} {n}" for k, n in a["posts"].items())
    lessons = "，".join(f"{LABELS[k]} {v['sessions']}场/{v['attendance']}人次"
                       for k, v in a["lessons"].items() if v["sessions"])
    visits = "，".join(f"{LABELS[k]} {n}" for k, n in a["visits"].items())
    t = a["talks"]
    return [
        f"  党员责任区   {a['zones']:>8,}",
        f"  党员队伍     {sum(a['teams'].values()):>8,}   ({teams})",
        f"  党员示范岗   {sum(a['posts'].values()):>8,}   ({a['post_kinds']}类: {posts})",
        f"  示范工点     {a['work_points']:>8,}",
        f"  三进三必谈   待谈 {t['open']}（逾期 {t['overdue']}），已谈 {t['done']}；走访: {visits}",
        f"  本月政治生日 {a['birthdays_this_month']:>8,}",
        f"  创新成果     {a['innovations']:>8,}   (全项目推广 {a['innovations_adopted']})",
        f"  活动         {lessons or '无'}",
    ]


def format_liaison(li: dict[str, Any]) -> list[str]:
    mi, cb = li["meeting_items"], li["cobuilding"]
    units = "，".join(f"{LIAISON_LABELS[u]} {v['open']}" for u, v in mi["by_unit"].items() if v["open"])
    compliance = "，".join(f"{LIAISON_LABELS[t]} 达标{v['met']}/未达标{v['not_met']}"
                           for t, v in li["compliance"].items())
    disputes = "，".join(
        f"{LIAISON_LABELS[k]} " + "/".join(f"{LIAISON_LABELS[st]}{n}" for st, n in v.items() if n)
        for k, v in li["disputes"].items() if any(v.values())
    )
    support = "，".join(f"{LIAISON_LABELS[k]} {v['total']:,}{v['unit']}"
                       for k, v in li["support"].items() if v["total"])
    return [
        f"  联席会议     {li['meetings']:>8,}   议题待办 {mi['open']}（逾期 {mi['overdue']}），已解决 {mi['resolved']}"
        + (f"；待办单位: {units}" if units else ""),
        f"  双达标       {compliance}",
        f"  党建联创     协议 {cb['agreements']}，共建清单 {cb['completed']}/{cb['items']} 项完成",
        f"  纠纷调解     {disputes or '无'}",
        f"  上访         {li['petitions']} 起，其中薪资纠纷上访 {li['wage_petitions']} 起",
        f"  帮扶驻地     {support or '无'}",
    ]


def format_township(d: dict[str, Any]) -> str:
    lines = [f"{d['name']} [{d['township']}] 工地 {d['projects']}，从业人员 {d['workers']:,}，党员 {d['members']}，"
             f"党支部 {d['branches']}"]
    return "\n".join(lines + format_liaison(d["liaison"]))


def format_site(d: dict[str, Any]) -> str:
    b = d["branch"]
    lines = [
        f"{d['name']}  [{d['site_id']}]  {d['township_name']} · {d['department']}",
        f"  造价 {d['cost_wan']}万元，工期 {d['planned_months']}个月，开工 {d['start_date']}",
        f"  业主 {d['units']['owner']} / 设计 {d['units']['design']} / 施工 {d['units']['construction']}"
        f" / 监理 {d['units']['supervision']}",
        f"  从业人员 {d['workforce']:,}，在场党员 {d['members_present']}（正式 {d['full_members']}）",
        f"  按单位: {d['by_unit_kind']}  按关系: {d['by_relation']}",
        f"  按工段/班组: {d['by_section']}",
    ]
    if b:
        lines.append(f"  党支部: {b['name']}，书记 {b['secretary']}，指导员 {b['instructor']}，联络员 {b['liaison']}")
    else:
        flags = ("（空白点）" if d["gap"] else "") + ("，应组建" if d["should_form_branch"] else "")
        lines.append("  党支部: 未成立" + flags)
    for g in d["groups"]:
        lines.append(f"  党小组 {g['name']}: 组长 {g['leader']}，{len(g['members'])}名党员")
    if "activities" in d:
        lines += format_activities(d["activities"])
    if "liaison" in d:
        lines += format_liaison(d["liaison"])
    for h in d.get("departed_holders", []):
        what = "示范岗" if h["what"] == "post" else "责任区"
        lines.append(f"  !! {what} {h['id']} 的党员 {h['member_id']} 已离场，需调整")
    return "\n".join(lines)


def format_birthdays(d: dict[str, Any]) -> str:
    lines = [f"{d['site_id']} · {d['month']} 政治生日"]
    for m in d["members"]:
        done = f"已过 ({m['celebrated_on']})" if m["celebrated_on"] else "未过"
        lines.append(f"  {m['member_id']} {m['name']}  入党 {m['admitted_on']}  {done}")
    if not d["members"]:
        lines[0] += "：本月无"
    lines.append(f"  {d['month'][:4]}年尚未过政治生日: {len(d['not_celebrated_this_year'])}名")
    return "\n".join(lines)


def format_talks(d: dict[str, Any]) -> str:
    lines = [f"{d['site_id']} · 待谈话 {len(d['open'])}"]
    for t in d["open"]:
        late = "  逾期" if t["overdue"] else ""
        lines.append(f"  {t['obligation_id']}  {t['member_id']}  {LABELS[t['reason']]}  应于 {t['due_on']} 前{late}")
    return "\n".join(lines)


# ---- commands -----------------------------------------------------------------------------------


async def _with_client(settings: Settings, fn):
    client = await GongdiClient.connect(settings.nats_url)
    try:
        return await fn(client)
    finally:
        await client.close()


def format_status(d: dict[str, Any]) -> str:
    return "\n".join(f"  {s['stream']}: 已记录 {s['recorded']}，已发布 {s['last_seq']}，视图已处理 {s['applied']}，"
                     f"落后 {s['recorded'] - s['applied']}" for s in d["streams"])


VIEWS = {  # what: (query, needs a site, printer)
    "city": ("city", False, format_city),
    "site": ("site", True, format_site),
    "township": ("township", True, format_township),
    "birthdays": ("birthdays", True, format_birthdays),
    "talks": ("talks", True, format_talks),
    "status": ("status", False, format_status),
}


def cmd_view(args: argparse.Namespace) -> int:
    settings = runtime_settings(args.home)
    query, needs_site, printer = VIEWS[args.what]
    body: dict[str, Any] = {}
    if needs_site:
        if not args.site_id:
            print(f"用法: gongdi view {args.what} <site_id>", file=sys.stderr)
            return 2
        body["township" if args.what == "township" else "site_id"] = args.site_id
    if args.month:
        body["month"] = args.month
    if args.what == "status":
        rows = asyncio.run(_with_client(settings, lambda c: pipeline(settings, c)))
        reply = {"ok": True, "data": {"streams": rows}}
    else:
        reply = asyncio.run(_with_client(settings, lambda c: c.query("views", query, body)))
    if not reply["ok"]:
        print(f"错误 {reply['error']['code']}: {reply['error']['message']}", file=sys.stderr)
        return 1
    print(orjson.dumps(reply["data"], option=orjson.OPT_INDENT_2).decode() if args.json else printer(reply["data"]))
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    settings = runtime_settings(args.home)
    try:
        body = json.loads(args.body)
    except json.JSONDecodeError as exc:
        print(f"body is not JSON: {exc}", file=sys.stderr)
        return 2
    reply = asyncio.run(_with_client(settings, lambda c: c.send_dict(args.service, args.name, body)))
    print(orjson.dumps(reply, option=orjson.OPT_INDENT_2).decode())
    return 0 if reply.get("ok") else 1


def cmd_seed(args: argparse.Namespace) -> int:
    settings = runtime_settings(args.home)
    _seed(settings)
    return 0


def _seed(settings: Settings) -> None:
    from gongdi.demo import seed

    def progress(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            print(f"\r  演示数据 {done}/{total}", end="", flush=True)

    started = time.monotonic()
    counts = asyncio.run(_with_client(settings, lambda c: seed(c, progress)))
    print(f"\n  新记录 {counts['recorded']} 条，已存在 {counts['already']} 条，用时 {time.monotonic() - started:.1f}s")


def cmd_verify(args: argparse.Namespace) -> int:
    import asyncpg

    from gongdi.eventstore import EventStore

    settings = runtime_settings(args.home)

    async def run() -> list[str]:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await EventStore(pool, args.schema).verify()
        finally:
            await pool.close()

    problems = asyncio.run(run())
    for p in problems:
        print(f"!! {p}")
    print("哈希链完整 (all hash chains verify)" if not problems else f"{len(problems)} 处不一致")
    return 0 if not problems else 1


def cmd_setup(args: argparse.Namespace) -> int:
    settings = runtime_settings(args.home)
    for line in Supervisor(settings.env(), args.home / "logs").setup():
        print(f"  {line}")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    _reset(args.home)
    print(f"已清空 {args.home}")
    return 0


def _reset(home: Path) -> None:
    for pidfile in (home / "nats" / "nats.pid", home / "postgres" / "data" / "postmaster.pid"):
        from gongdi.runtime import _kill_stale

        _kill_stale(pidfile)
    shutil.rmtree(home, ignore_errors=True)


async def services_ready(client: GongdiClient) -> bool:
    """Both services answer: views a query, membership a command (an empty one, refused without writing)."""
    try:
        if not (await client.query("views", "city"))["ok"]:
            return False
        probe = await client.send_raw("membership", "ReportWorkforce", b"{}")
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        return False  # not up yet
    return (probe.get("error") or {}).get("code") == "VALIDATION_FAILED"


def _wait_ready(settings: Settings, timeout: float = 60.0) -> None:
    async def probe() -> None:
        deadline = time.monotonic() + timeout
        client = await GongdiClient.connect(settings.nats_url, timeout=2)
        try:
            while not await services_ready(client):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"services did not answer within {timeout:.0f}s; see the logs folder")
                await asyncio.sleep(0.2)
        finally:
            await client.close()

    asyncio.run(probe())


async def pipeline(settings: Settings, client: GongdiClient) -> list[dict[str, Any]]:
    """Per writing service: events recorded in Postgres, published on its stream, applied by the views."""
    import asyncpg

    streams = (await client.query("views", "status"))["data"]["streams"]
    conn = await asyncpg.connect(settings.database_url)
    try:
        for row in streams:
            schema = row["stream"].removeprefix("EVT_").lower()
            row["recorded"] = await conn.fetchval(f"SELECT count(*) FROM {schema}.events")
    finally:
        await conn.close()
    return streams


async def caught_up(settings: Settings, client: GongdiClient) -> bool:
    """Every recorded event is on its stream and applied by the views (streams hold each event once)."""
    return all(r["recorded"] == r["last_seq"] == r["applied"] for r in await pipeline(settings, client))


def _wait_caught_up(settings: Settings, timeout: float = 60.0) -> dict[str, Any]:
    async def probe(client: GongdiClient) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not await caught_up(settings, client) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return (await client.query("views", "city"))["data"]

    return asyncio.run(_with_client(settings, probe))


def cmd_up(args: argparse.Namespace) -> int:
    home: Path = args.home
    if args.reset:
        _reset(home)
    home.mkdir(parents=True, exist_ok=True)
    nats_srv = pg = None
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    supervisor = None
    try:
        print(f"gongdi: 数据目录 {home.resolve()}")
        urls: dict[str, str] = {}
        if "NATS_URL" in os.environ:
            urls["nats_url"] = os.environ["NATS_URL"]
        else:
            nats_srv = EmbeddedNats(home / "nats")
            urls["nats_url"] = nats_srv.start()
        if "DATABASE_URL" in os.environ:
            urls["database_url"] = os.environ["DATABASE_URL"]
        else:
            pg = EmbeddedPostgres(home / "postgres")
            urls["database_url"] = pg.start()
        (home / "runtime.json").write_text(json.dumps(urls, indent=2))
        settings = Settings.from_env().model_copy(update=urls)
        supervisor = Supervisor(settings.env(), home / "logs")
        for line in supervisor.setup():
            print(f"  {line}")
        supervisor.start()
        _wait_ready(settings)
        if args.seed:
            _seed(settings)
        city = _wait_caught_up(settings)
        print()
        print(format_city(city))
        print()
        print(f"  NATS       {urls['nats_url']}")
        print(f"  PostgreSQL {urls['database_url']}")
        print(f"  日志       {(home / 'logs').resolve()}")
        print("  试试: gongdi view city | gongdi view site shachengwan | gongdi send membership RecordArrival '{...}'")
        print("  按 Ctrl-C 停止。")
        while not stopping:
            supervisor.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\n正在停止…")
        if supervisor:
            supervisor.stop()
        if pg:
            pg.stop()
        if nats_srv:
            nats_srv.stop()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gongdi", description="工地党建共享记录平台")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="state folder (default .gongdi)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start NATS, Postgres and every service; Ctrl-C stops them")
    up.add_argument("--seed", action="store_true", help="load the Fuding demo city")
    up.add_argument("--reset", action="store_true", help="delete all state first")
    up.set_defaults(fn=cmd_up)
    sub.add_parser("setup", help="create schemas, streams and consumers (idempotent)").set_defaults(fn=cmd_setup)
    sub.add_parser("seed", help="load the demo city into a running platform").set_defaults(fn=cmd_seed)
    sub.add_parser("reset", help="stop leftover servers and delete the state folder").set_defaults(fn=cmd_reset)
    view = sub.add_parser("view", help="show a view")
    view.add_argument("what", choices=list(VIEWS))
    view.add_argument("site_id", nargs="?", help="the site (or, for `township`, the township code)")
    view.add_argument("--month", help="YYYY-MM, for birthdays (default: this month)")
    view.add_argument("--json", action="store_true")
    view.set_defaults(fn=cmd_view)
    send = sub.add_parser("send", help="send a command, e.g. gongdi send membership RecordArrival '{...}'")
    send.add_argument("service")
    send.add_argument("name")
    send.add_argument("body", help="the command as JSON; command_id is added when missing")
    send.set_defaults(fn=cmd_send)
    verify = sub.add_parser("verify", help="recompute every hash chain")
    verify.add_argument("--schema", default="membership")
    verify.set_defaults(fn=cmd_verify)
    args = parser.parse_args(argv)
    try:
        code = args.fn(args)
    except (nats.errors.NoServersError, ConnectionRefusedError, OSError) as exc:
        print(f"无法连接平台 (cannot reach NATS: {exc}). 请先在项目目录运行 `make demo` / `gongdi up`，"
              f"或设置 NATS_URL；状态目录 {args.home.resolve()}", file=sys.stderr)
        code = 1
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        print("平台已连接，但服务未响应 (no service answered); 查看日志: " f"{(args.home / 'logs').resolve()}",
              file=sys.stderr)
        code = 1
    sys.exit(code)

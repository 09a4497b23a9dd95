"""Import rate: a roster of N rows through the whole import (read the .xlsx, plan, send, write the result file),
against the same N commands sent directly with the client, 32 in flight each, same platform, same run."""
from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from openpyxl import Workbook

from contracts.membership import SERVICE
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import settled
from gongdi.service.settings import Settings
from gongdi.sheets.columns import MEMBER_COLUMNS
from gongdi.sheets.importing import KINDS, RECORDED, Context, plan, read, result_file, run_import

HEADERS = [h for h, _ in MEMBER_COLUMNS]
MEMBERS = KINDS["members"]


def roster(n: int, sites: list[str], prefix: str) -> bytes:
    """N rows as a township keeps them: a title row, Chinese words, dates as text, member ids left blank."""
    book = Workbook()
    ws = book.active
    ws.append(["党员花名册（基准测试）"])
    ws.append(HEADERS)
    for i in range(n):
        ws.append([sites[i % len(sites)], "", f"{prefix}党员{i}", "男" if i % 3 else "女", f"20{i % 20:02d}年7月1日",
                   "正式党员" if i % 5 else "预备", "施工单位", "中交某工程局", "农民工", f"{i % 8 + 1}工段",
                   f"{prefix}某村党支部{i % 40}", "流动" if i % 2 else "转入", "2020/7/1"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _direct(client: GongdiClient, data: bytes, width: int, city: Any) -> tuple[float, int]:
    """The baseline: the very commands the importer would make of this file, sent straight with the client."""
    commands = [p.command for p in plan(MEMBERS, read(MEMBERS, data, "b.xlsx"), Context(city, client.user))]
    gate = asyncio.Semaphore(width)
    ok = 0

    async def one(command: Any) -> None:
        nonlocal ok
        async with gate:
            reply = await client.send(SERVICE, command)
        ok += bool(reply.get("ok"))

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in commands))
    return time.perf_counter() - started, ok


async def _settle(client: GongdiClient, timeout: float = 600.0) -> None:
    """Until the relays, views and policies have passed everything recorded: each run starts on a quiet platform."""
    deadline = time.monotonic() + timeout
    while not await settled(None, client):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the platform did not settle within {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def bench(admin: Settings, n: int, width: int = 32, sites: int = 50, say: Callable[[str], None] = print
                ) -> dict[str, float]:
    city = admin.city()
    client = await GongdiClient.connect(admin)
    try:
        for s in ("warm", *(f"imp-{i}" for i in range(sites)), *(f"dir-{i}" for i in range(sites))):
            assert (await client.send(SERVICE, f.register(s)))["ok"]
        warm = roster(min(n, 500), ["warm"], "预热")
        await run_import(MEMBERS, warm, "warm.xlsx", city, client, width=width)
        direct_file = roster(n, [f"dir-{i}" for i in range(sites)], "直")
        import_file = roster(n, [f"imp-{i}" for i in range(sites)], "导")
        say(f"  {n:,} rows over {sites} sites, {len(import_file) / 1024:,.0f} KiB .xlsx; {width} in flight")

        await _settle(client)
        direct_seconds, direct_ok = await _direct(client, direct_file, width, city)
        await _settle(client)
        started = time.perf_counter()
        report = await run_import(MEMBERS, import_file, "bench.xlsx", city, client, width=width)
        made = result_file(import_file, report)
        import_seconds = time.perf_counter() - started
        await _settle(client)
        started = time.perf_counter()
        again = await run_import(MEMBERS, import_file, "bench.xlsx", city, client, width=width)
        result_file(import_file, again)
        again_seconds = time.perf_counter() - started
        started = time.perf_counter()
        checked = await run_import(MEMBERS, import_file, "bench.xlsx", city, None, dry_run=True,
                                   importer=client.user)
        dry_seconds = time.perf_counter() - started
    finally:
        await client.close()
    assert direct_ok == n and report.counts()[RECORDED] == n and again.counts()["already"] == n, report.summary()
    assert checked.counts()["valid"] == n and made
    return {"n": n, "direct": n / direct_seconds, "import": n / import_seconds, "again": n / again_seconds,
            "dry": n / dry_seconds, "import_seconds": import_seconds, "direct_seconds": direct_seconds}


def report(r: dict[str, float]) -> None:
    direct, imported = r["direct_seconds"], r["import_seconds"]
    print(f"  {'direct: the same commands, client.send':<44}{r['direct']:>9,.0f} rows/s  ({direct:.1f} s)")
    print(f"  {'import: read + plan + send + result file':<44}{r['import']:>9,.0f} rows/s  ({imported:.1f} s)")
    print(f"  {'ratio import / direct':<44}{r['import'] / r['direct']:>9.2f}")
    print(f"  {'the same file again (all 已导入)':<44}{r['again']:>9,.0f} rows/s")
    print(f"  {'dry run (read + plan, nothing sent)':<44}{r['dry']:>9,.0f} rows/s")

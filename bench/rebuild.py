"""Rebuild rate: a shadow rebuild of the views against a raw keyset read + decode of the same events, same run."""
from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg

from bench.cpu import CpuMeter, server_pid_of
from gongdi.bus.logread import decode, read_log
from gongdi.bus.shadow import Feed, Outcome, ShadowRebuild
from gongdi.demo.synthetic import SERVICE, generate
from gongdi.store.base import Checkpoint


async def raw_read(pool: asyncpg.Pool, batch: int = 5000) -> tuple[int, float]:
    """The baseline: every event of the log by the same keyset read and the same decode as the rebuild."""
    after, n = Checkpoint(), 0
    started = time.perf_counter()
    while rows := await read_log(pool, SERVICE, after, batch):
        for row in rows:
            decode(row, SERVICE)
        n += len(rows)
        after = Checkpoint(rows[-1]["tx_id"], rows[-1]["position"])
    return n, time.perf_counter() - started


async def shadow_rebuild(pool: asyncpg.Pool, dsn: str, batch: int = 5000) -> Outcome:
    """The views rebuilt into their shadow from the same log (afresh, no swap: no live views in the bench)."""
    from services.views.app import VIEWS

    feeds = [Feed(service, p) for service, p in VIEWS.feeds("views_shadow")]
    rebuild = ShadowRebuild(pool, VIEWS.name, VIEWS.name, VIEWS.version, VIEWS.migrations, feeds, batch=batch,
                            dsn=dsn)
    return await rebuild.run(fresh=True, swap=False)


async def bench(dsn: str, n: int, batch: int = 5000, say: Callable[[str], None] = print) -> dict[str, float]:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    try:
        started = time.perf_counter()
        have = await pool.fetchval(f"SELECT count(*) FROM {SERVICE}.events")
        if have < n:
            await generate(pool, n - have, sites=max(1000, n // 1000), prefix=f"g{have}_")
        say(f"  {n:,} events in the log ({time.perf_counter() - started:.1f} s to generate)")
        await pool.execute(f"VACUUM ANALYZE {SERVICE}.events")
        meter = CpuMeter(server_pid_of(await pool.fetchval("SELECT pg_backend_pid()")))
        mark = meter.mark()
        read, seconds = await raw_read(pool, batch)
        raw_cpu, mark = meter.since(mark), meter.mark()
        outcome = await shadow_rebuild(pool, dsn, batch)
        rebuild_cpu = meter.since(mark)
        out = {"events": read, "raw_rate": read / seconds, "raw_seconds": seconds,
               "rebuild_rate": outcome.events / outcome.seconds, "rebuild_seconds": outcome.seconds,
               "applied": outcome.applied, "batches": outcome.batches}
        for name, cpu in (("raw", raw_cpu), ("rebuild", rebuild_cpu)):
            if cpu is not None:  # µs of CPU an event, per side
                out |= {f"{name}_cpu_bench": cpu.bench / read * 1e6, f"{name}_cpu_server": cpu.server / read * 1e6}
        return out
    finally:
        await pool.close()


def report(r: dict[str, float]) -> None:
    print(f"  {'raw keyset read + row decode':<44}{r['raw_rate']:>9,.0f} events/s  ({r['raw_seconds']:.1f} s)")
    print(f"  {'shadow rebuild of the views':<44}{r['rebuild_rate']:>9,.0f} events/s  ({r['rebuild_seconds']:.1f} s,"
          f" {r['applied']:,} applied, {r['batches']:,} batches)")
    print(f"  {'ratio rebuild / raw':<44}{r['rebuild_rate'] / r['raw_rate']:>9.2f}")
    if "raw_cpu_bench" in r:
        # Both sides share the machine's cores: on 2 cores a stretch that keeps both busy takes about half their sum.
        for name, title in (("raw", "raw read (this process)"), ("rebuild", "rebuild (its part processes)")):
            bench, server = r[f"{name}_cpu_bench"], r[f"{name}_cpu_server"]
            print(f"  {'CPU an event, ' + title:<44}{bench + server:>9.1f} µs  ({bench:.1f} Python,"
                  f" {server:.1f} PostgreSQL)")
        rebuild, raw = (r[f"{name}_cpu_bench"] + r[f"{name}_cpu_server"] for name in ("rebuild", "raw"))
        print(f"  {'ratio of CPU an event, rebuild / raw':<44}{rebuild / raw:>9.2f}")

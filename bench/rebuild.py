"""Rebuild rate: a shadow rebuild of the views against a raw keyset read + decode of the same events, same run."""
from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import asyncpg

from contracts.membership import MemberArrived, MemberDeparted, SiteRegistered, WorkforceReported
from gongdi.bus.shadow import Feed, Outcome, ShadowRebuild, decode, read_log
from gongdi.demo import samples as f
from gongdi.store.base import Checkpoint, Meta, Pending, StreamHead, prepare
from gongdi.store.postgres import insert_sql, rows_json
from gongdi.store.sitestreams import stream_of

SERVICE = "membership"
CHUNK = 10_000  # events per insert statement


def events(n: int, sites: int, prefix: str = "g") -> list[Pending]:
    """`sites` registrations, then arrivals with every tenth a workforce report and every tenth a departure of an
    earlier arrival: the mix of statements a membership log gives the views."""
    facts = f.arrive("x", "x").member
    out: list[Pending] = []
    for s in range(min(sites, n)):
        site = f"{prefix}{s}"
        out.append(Pending(SiteRegistered(site_id=site, name=f"工地{site}", township="bailin", department="交通运输局",
                                          cost_wan=Decimal(9000), planned_months=30, start_date=f.DAY,
                                          units=f.UNITS), stream_of(site), "bailin", site))
    arrived: dict[str, list[str]] = {}
    for i in range(n - len(out)):
        site = f"{prefix}{i % sites}"
        if i % 10 == 7:
            event = WorkforceReported(site_id=site, headcount=100 + i % 50, as_of=f.DAY)
        elif i % 10 == 9 and arrived.get(site):
            event = MemberDeparted(site_id=site, member_id=arrived[site].pop(0), departed_on=f.DAY)
        else:
            member = f"m{i}"
            arrived.setdefault(site, []).append(member)
            event = MemberArrived(site_id=site, member_id=member, member=facts, arrived_on=f.DAY)
        out.append(Pending(event, stream_of(site), "bailin", site))
    return out


async def generate(pool: asyncpg.Pool, n: int, sites: int = 1000, prefix: str = "g",
                   progress: Callable[[int], None] | None = None) -> int:
    """`n` valid membership events (hash chains as `prepare` makes them), inserted straight into the log, one
    statement per chunk; the relay, if one runs, publishes them like any others."""
    pending = events(n, sites, prefix)
    heads: dict[str, StreamHead] = {}
    sql = insert_sql(SERVICE)
    for start in range(0, len(pending), CHUNK):
        prepared = prepare(pending[start:start + CHUNK], heads, Meta("bench"))
        heads = prepared.heads
        async with pool.acquire() as conn:
            await conn.fetch(sql, rows_json(prepared))
        if progress:
            progress(start + len(prepared.rows))
    return len(pending)


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


async def shadow_rebuild(pool: asyncpg.Pool, batch: int = 5000) -> Outcome:
    """The views rebuilt into their shadow from the same log (afresh, no swap: no live views in the bench)."""
    from services.views.app import VIEWS

    feeds = [Feed(service, p) for service, p in VIEWS.feeds("views_shadow")]
    rebuild = ShadowRebuild(pool, VIEWS.name, VIEWS.name, VIEWS.version, VIEWS.migrations, feeds, batch=batch)
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
        read, seconds = await raw_read(pool, batch)
        outcome = await shadow_rebuild(pool, batch)
        return {"events": read, "raw_rate": read / seconds, "raw_seconds": seconds,
                "rebuild_rate": outcome.events / outcome.seconds, "rebuild_seconds": outcome.seconds,
                "applied": outcome.applied, "batches": outcome.batches}
    finally:
        await pool.close()


def report(r: dict[str, float]) -> None:
    print(f"  {'raw keyset read + Envelope decode':<44}{r['raw_rate']:>9,.0f} events/s  ({r['raw_seconds']:.1f} s)")
    print(f"  {'shadow rebuild of the views':<44}{r['rebuild_rate']:>9,.0f} events/s  ({r['rebuild_seconds']:.1f} s,"
          f" {r['applied']:,} applied, {r['batches']:,} batches)")
    print(f"  {'ratio rebuild / raw':<44}{r['rebuild_rate'] / r['raw_rate']:>9.2f}")

"""Synthetic logs for benchmarks and tests: valid membership events with real hash chains, written straight into
the service's log in large statements (a million in about a minute), as if the service had recorded them."""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import asyncpg

from contracts.membership import MemberArrived, MemberDeparted, SiteRegistered, WorkforceReported
from gongdi.demo import samples as f
from gongdi.store.base import Meta, Pending, StreamHead, prepare
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

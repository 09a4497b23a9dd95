"""End-to-end throughput and latency, against raw JetStream and raw asyncpg baselines measured in the same run."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import nats
import orjson

from bench.live import live_latency
from contracts.activities import ActivityKind, RecordActivity
from contracts.base import Command
from contracts.liaison import DisputeKind, RecordVillageSupport, ReportDispute, SupportKind
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.credentials import SUPERUSER, Credentials
from gongdi.ops.readiness import wait_http, wait_ready
from gongdi.ops.runtime import EmbeddedNats, EmbeddedPostgres, free_port
from gongdi.ops.supervisor import DATABASE_ROLES, WRITERS, Supervisor
from gongdi.service.settings import Settings

DAY = dt.date(2020, 9, 1)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000 if values else float("nan")


async def load(client: GongdiClient, nc: nats.NATS, commands: list[tuple[str, Command]], width: int
               ) -> dict[str, float]:
    """Send the commands `width` at a time; time each reply and each change until the views show it."""
    seen: dict[tuple[str, str], int] = {}
    waiting: dict[tuple[str, str], list[tuple[int, float]]] = {}
    visible: list[float] = []

    async def on_live(msg) -> None:
        body = orjson.loads(msg.data)
        now = time.perf_counter()
        key = (body["site_id"], body["service"])
        seen[key] = max(seen.get(key, 0), body["position"])
        still = []
        for position, sent in waiting.get(key, []):
            if position <= body["position"]:
                visible.append(now - sent)
            else:
                still.append((position, sent))
        waiting[key] = still

    sub = await nc.subscribe("live.site.*", cb=on_live)
    gate = asyncio.Semaphore(width)
    replies: list[float] = []

    async def one(service: str, cmd: Command) -> None:
        async with gate:
            sent = time.perf_counter()
            reply = await client.send(service, cmd)
            replies.append(time.perf_counter() - sent)
        assert reply["ok"], reply
        key = (cmd.site_id, service)  # type: ignore[attr-defined]
        position = reply["events"][-1]["position"]
        if seen.get(key, 0) >= position:
            visible.append(time.perf_counter() - sent)
        else:
            waiting.setdefault(key, []).append((position, sent))

    started = time.perf_counter()
    await asyncio.gather(*(one(s, c) for s, c in commands))
    elapsed = time.perf_counter() - started
    deadline = time.monotonic() + 30
    while len(visible) < len(commands) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await sub.unsubscribe()
    return {"rate": len(commands) / elapsed, "reply50": pct(replies, 50), "reply99": pct(replies, 99),
            "visible50": pct(visible, 50), "visible99": pct(visible, 99), "seen": len(visible), "n": len(commands)}


def mixed(n: int, sites: int) -> list[tuple[str, Command]]:
    """Arrivals, lessons, village support and disputes, in that rotation."""
    out: list[tuple[str, Command]] = []
    for i in range(n):
        site = f"b{i % sites}"
        match i % 4:
            case 0:
                out.append(("membership", f.arrive(site, f"x{i}")))
            case 1:
                out.append(("activities", RecordActivity(command_id=uuid.uuid4(), site_id=site,
                                                         kind=ActivityKind.night_school, title="夜校", held_on=DAY,
                                                         headcount=30)))
            case 2:
                out.append(("liaison", RecordVillageSupport(command_id=uuid.uuid4(), site_id=site, village="村",
                                                            kind=SupportKind.donation, given_on=DAY,
                                                            quantity=Decimal(100))))
            case _:
                out.append(("liaison", ReportDispute(command_id=uuid.uuid4(), site_id=site, case_id=f"c{i}",
                                                     kind=DisputeKind.neighbours, reported_on=DAY, parties=["x"],
                                                     description="d")))
    return out


async def platform_runs(settings: Settings, n: int, width: int, sites: int) -> tuple[dict, dict]:
    client = await GongdiClient.connect(settings)
    nc = await nats.connect(settings.nats_servers)
    for s in range(sites):
        assert (await client.send("membership", f.register(f"b{s}")))["ok"]
    arrivals = await load(client, nc, [("membership", f.arrive(f"b{i % sites}", f"m{i}")) for i in range(n)], width)
    await until_known(client, f"b{sites - 1}")
    mix = await load(client, nc, mixed(n, sites), width)
    await nc.close()
    await client.close()
    return arrivals, mix


async def until_known(client: GongdiClient, site_id: str) -> None:
    """Activities and liaison learn sites from membership events; wait until both know the last one."""
    probes = [
        ("liaison", "StartMediation", {"site_id": site_id, "case_id": "none", "mediator": "m",
                                       "started_on": "2020-01-01"}),
        ("activities", "RecordTalk", {"site_id": site_id, "obligation_id": str(uuid.UUID(int=0)), "talked_by": "x",
                                      "talked_on": "2020-01-01"}),
    ]
    for service, name, body in probes:
        while (await client.send_dict(service, name, body))["error"]["code"] == "SITE_NOT_FOUND":
            await asyncio.sleep(0.1)


async def raw_jetstream(servers: list[str], n: int, size: int) -> float:
    nc = await nats.connect(servers)
    js = nc.jetstream()
    await js.add_stream(name="BENCH", subjects=["bench.>"])
    payload = b"x" * size
    started = time.perf_counter()
    futures = [await js.publish_async("bench.x", payload) for _ in range(n)]
    await asyncio.gather(*futures)
    rate = n / (time.perf_counter() - started)
    await js.delete_stream("BENCH")
    await nc.close()
    return rate


async def raw_asyncpg(dsn: str, n: int, width: int, size: int) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=width, max_size=width)
    await pool.execute("DROP TABLE IF EXISTS bench; CREATE TABLE bench (id bigint GENERATED ALWAYS AS IDENTITY"
                       " PRIMARY KEY, payload jsonb NOT NULL)")
    body = orjson.dumps({"x": "y" * size}).decode()
    gate = asyncio.Semaphore(width)

    async def one() -> None:
        async with gate:
            await pool.execute("INSERT INTO bench (payload) VALUES ($1::jsonb)", body)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    rate = n / (time.perf_counter() - started)
    await pool.execute("DROP TABLE bench")
    await pool.close()
    return rate


def report(name: str, r: dict, baseline: float) -> None:
    print(f"  {name:<44}{r['rate']:>9,.0f} cmd/s   ({r['rate'] / baseline:.2f} × raw insert)")
    print(f"    reply    p50 {r['reply50']:6.1f} ms   p99 {r['reply99']:6.1f} ms")
    print(f"    visible  p50 {r['visible50']:6.1f} ms   p99 {r['visible99']:6.1f} ms   ({r['seen']}/{r['n']} seen)")


@contextlib.contextmanager
def embedded_servers() -> Iterator[tuple[Path, Credentials, Settings]]:
    """Fresh embedded NATS and PostgreSQL in a temporary folder, every process with its own bus user and database
    role as under `gongdi up`; the settings are the operator's (`setup`). Stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="gongdi-bench-") as tmp:
        root = Path(tmp)
        city = Settings().city()
        creds = Credentials.ensure(root, city, WRITERS)
        creds.ensure_postgres(DATABASE_ROLES)
        nats_srv = EmbeddedNats(root / "nats", accounts=creds.accounts(city).render())
        pg = EmbeddedPostgres(root / "pg", password=creds.postgres[SUPERUSER])
        try:
            yield root, creds, Settings(nats_url=nats_srv.start(), database_url=pg.start(), log_level="warning",
                                        nats_user="setup", nats_password=creds.password("setup"))
        finally:
            pg.stop()
            nats_srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=3000, help="commands per run")
    parser.add_argument("--width", type=int, default=32, help="commands in flight")
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--live", type=int, default=100, help="arrivals timed from HTTP command to live push")
    parser.add_argument("--rebuild", type=int, metavar="N", help="only the rebuild bench, over N generated events")
    parser.add_argument("--import", dest="import_rows", type=int, metavar="N",
                        help="only the import bench: N roster rows imported, against the same commands sent directly")
    parser.add_argument("--big-site", type=int, metavar="N",
                        help="only the big-site bench: N arrivals into one site, against arrivals over small sites")
    args = parser.parse_args()
    if args.big_site:
        big_site_bench(args.big_site, args.width)
        return
    if args.rebuild:
        rebuild_bench(args.rebuild)
        return
    if args.import_rows:
        import_bench(args.import_rows, args.width)
        return
    with embedded_servers() as (root, creds, settings):
        settings = settings.model_copy(update={"http_port": free_port()})
        admin = settings.as_user("city", creds.password("city"))
        sup = Supervisor(settings, root / "logs", say=print, passwords=creds.nats, database_passwords=creds.postgres)
        try:
            print(f"bench: {args.n} commands per run over {args.sites} sites, {args.width} in flight;"
                  " fsync on for both servers")
            js_rate = asyncio.run(raw_jetstream(settings.nats_servers, args.n, 700))
            pg_rate = asyncio.run(raw_asyncpg(settings.database_url, args.n, args.width, 700))
            sup.setup()
            sup.start()
            wait_ready(admin)
            arrivals, mix = asyncio.run(platform_runs(admin, args.n, args.width, args.sites))
            wait_http(f"http://127.0.0.1:{settings.http_port}/health")
            pushes = asyncio.run(live_latency(f"http://127.0.0.1:{settings.http_port}", creds.password("city"),
                                              args.live))
        finally:
            sup.stop()
    print(f"  {'raw JetStream publish (pipelined, sync always)':<44}{js_rate:>9,.0f} msg/s")
    print(f"  {'raw asyncpg insert (1 row/tx, ' + str(args.width) + ' in flight)':<44}{pg_rate:>9,.0f} rows/s")
    report("end-to-end arrivals (membership)", arrivals, pg_rate)
    report("end-to-end mixed (membership, activities, liaison)", mix, pg_rate)
    r, p = pushes["reply"], pushes["pushed"]
    print(f"  {'live: HTTP command → city snapshot pushed':<44}p50 {pct(p, 50):>5.1f} ms  p99 {pct(p, 99):>5.1f} ms"
          f"  ({len(p)} arrivals, one at a time; the command's own HTTP reply p50 {pct(r, 50):.1f} ms,"
          f" ratio {pct(p, 50) / pct(r, 50):.1f})")


def rebuild_bench(n: int) -> None:
    """The views rebuilt into their shadow from a log of `n` events, against a raw read + decode of that log."""
    from bench import rebuild

    with embedded_servers() as (root, creds, settings):
        Supervisor(settings, root / "logs", say=print, passwords=creds.nats, database_passwords=creds.postgres).setup()
        print(f"bench: rebuild of the views from {n:,} membership events; fsync on")
        result = asyncio.run(rebuild.bench(settings.database_url, n))
    rebuild.report(result)


@contextlib.contextmanager
def platform_as_city() -> Iterator[Settings]:
    """Fresh embedded servers with every platform process running; the city work committee's settings."""
    with embedded_servers() as (root, creds, settings):
        settings = settings.model_copy(update={"http_port": free_port()})
        sup = Supervisor(settings, root / "logs", say=print, passwords=creds.nats, database_passwords=creds.postgres)
        try:
            sup.setup()
            sup.start()
            admin = settings.as_user("city", creds.password("city"))
            wait_ready(admin)
            yield admin
        finally:
            sup.stop()


def big_site_bench(n: int, width: int) -> None:
    """`n` arrivals into one site, timed by block of 1,000, against arrivals spread over 100 small sites."""
    from bench import bigsite

    with platform_as_city() as admin:
        print(f"bench: {n:,} arrivals into one site as the city committee, {width} in flight; fsync on")
        result = asyncio.run(bigsite.bench(admin, n, min(n, 1000), width))
    bigsite.report(result)


def import_bench(n: int, width: int) -> None:
    """`n` member rows imported from an .xlsx into a fresh platform, against the same commands sent directly."""
    from bench import importing

    with platform_as_city() as admin:
        print(f"bench: import of {n:,} roster rows as the city committee; fsync on")
        result = asyncio.run(importing.bench(admin, n, width))
    importing.report(result)


if __name__ == "__main__":
    main()

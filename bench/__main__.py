"""End-to-end command throughput and latency, against raw JetStream and raw asyncpg baselines in the same run."""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import asyncpg
import nats
import orjson

from contracts.membership import SERVICE
from gongdi.client import GongdiClient
from gongdi.runtime import EmbeddedNats, EmbeddedPostgres
from gongdi.settings import Settings
from gongdi.supervisor import Supervisor
from tests import factories as f


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000


async def end_to_end(settings: Settings, n: int, width: int, sites: int) -> dict[str, float]:
    client = await GongdiClient.connect(settings.nats_url)
    nc = await nats.connect(settings.nats_url)
    seen: dict[str, int] = {}
    waiting: dict[str, list[tuple[int, float]]] = {}
    visible: list[float] = []

    async def on_live(msg) -> None:
        body = orjson.loads(msg.data)
        now = time.perf_counter()
        site, pos = body["site_id"], body["position"]
        seen[site] = max(seen.get(site, 0), pos)
        still = []
        for position, sent in waiting.get(site, []):
            if position <= pos:
                visible.append(now - sent)
            else:
                still.append((position, sent))
        waiting[site] = still

    await nc.subscribe("live.site.*", cb=on_live)
    for s in range(sites):
        assert (await client.send(SERVICE, f.register(f"b{s}")))["ok"]
    commands = [f.arrive(f"b{i % sites}", f"m{i}") for i in range(n)]
    gate = asyncio.Semaphore(width)
    replies: list[float] = []

    async def one(cmd) -> None:
        async with gate:
            sent = time.perf_counter()
            reply = await client.send(SERVICE, cmd)
            replies.append(time.perf_counter() - sent)
        assert reply["ok"], reply
        position = reply["events"][-1]["position"]
        if seen.get(cmd.site_id, 0) >= position:
            visible.append(time.perf_counter() - sent)
        else:
            waiting.setdefault(cmd.site_id, []).append((position, sent))

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in commands))
    elapsed = time.perf_counter() - started
    deadline = time.monotonic() + 30
    while len(visible) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await nc.close()
    await client.close()
    return {
        "commands/s": n / elapsed,
        "reply p50 ms": pct(replies, 50), "reply p99 ms": pct(replies, 99),
        "visible p50 ms": pct(visible, 50), "visible p99 ms": pct(visible, 99),
        "visible count": len(visible),
    }


async def raw_jetstream(url: str, n: int, size: int) -> float:
    nc = await nats.connect(url)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=3000, help="commands (arrivals) to send")
    parser.add_argument("--width", type=int, default=32, help="commands in flight")
    parser.add_argument("--sites", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gongdi-bench-") as tmp:
        root = Path(tmp)
        nats_srv, pg = EmbeddedNats(root / "nats"), EmbeddedPostgres(root / "pg")
        settings = Settings(nats_url=nats_srv.start(), database_url=pg.start(), log_level="warning")
        sup = Supervisor(settings.env(), root / "logs", say=print)
        try:
            print(f"bench: {args.n} arrivals over {args.sites} sites, {args.width} in flight;"
                  " fsync on for both servers")
            js_rate = asyncio.run(raw_jetstream(settings.nats_url, args.n, 700))
            pg_rate = asyncio.run(raw_asyncpg(settings.database_url, args.n, args.width, 700))
            sup.setup()
            sup.start()
            time.sleep(2)
            e2e = asyncio.run(end_to_end(settings, args.n, args.width, args.sites))
        finally:
            sup.stop()
            pg.stop()
            nats_srv.stop()
    print(f"  raw JetStream publish (pipelined, sync always)  {js_rate:>9,.0f} msg/s")
    print(f"  raw asyncpg insert (1 row/tx, {args.width} in flight)    {pg_rate:>9,.0f} rows/s")
    print(f"  end-to-end commands                             {e2e['commands/s']:>9,.0f} cmd/s")
    print(f"    reply    p50 {e2e['reply p50 ms']:6.1f} ms   p99 {e2e['reply p99 ms']:6.1f} ms")
    print(f"    visible  p50 {e2e['visible p50 ms']:6.1f} ms   p99 {e2e['visible p99 ms']:6.1f} ms"
          f"   ({e2e['visible count']}/{args.n} seen)")
    print(f"  ratio e2e / raw insert    {e2e['commands/s'] / pg_rate:.2f}")
    print(f"  ratio e2e / raw publish   {e2e['commands/s'] / js_rate:.2f}")


if __name__ == "__main__":
    main()

"""Rebuild and swap: under load no query fails and the views end equal to a fresh replay; a rebuild killed with
SIGKILL goes on where it stopped; a schema built by another code version is rebuilt when the platform starts; an
event the projection cannot store is dead-lettered and the rebuild goes on."""
from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import asyncpg
import nats
import pytest

from contracts.envelope import Envelope
from gongdi.bus import shadow
from gongdi.bus.consumer import checkpoint_sql, stream_heads_sql
from gongdi.bus.logread import log_end
from gongdi.bus.parts import CUT, PROBE_SQL, READER_SETTINGS, Part, insert_parts_sql, read_part
from gongdi.bus.shadow import REBUILD_NEEDED, stamp_version, stored_version
from gongdi.demo import samples as f
from gongdi.demo.synthetic import generate
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import caught_up
from gongdi.ops.supervisor import Supervisor
from gongdi.service.process import connect_nats
from gongdi.service.settings import Settings
from gongdi.store.base import Checkpoint
from gongdi.store.migrations import Migration
from gongdi.store.postgres import PostgresEventStore
from services.views.app import VIEWS, rebuild
from tests.appending import append_one
from tests.conftest import Servers
from tests.integration.conftest import _wait_ready
from tests.integration.waiting import eventually

# Bookkeeping whose rows differ by when they were written (or hold letters); compared by their content below.
NOT_READ_MODELS = {"consumer_checkpoint", "dead_letters", "retried_letters", "schema_migrations"}
NEVER = 10**12  # a `split_from` no test log reaches


async def settled(settings: Settings, client: GongdiClient) -> bool:
    try:
        return await caught_up(settings, client)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        return False


async def assert_equal_to_fresh_replay(settings: Settings, pool: asyncpg.Pool) -> None:
    """The swapped-in views hold what a replay of the whole streams into an empty schema gives."""
    await rebuild(settings, "views_rebuild")
    async with pool.acquire() as conn:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'views' ORDER BY tablename")]
        assert "rebuild_cursor" not in tables
        for table in [t for t in tables if t not in NOT_READ_MODELS]:
            live = sorted((tuple(r) for r in await conn.fetch(f"SELECT * FROM views.{table}")), key=repr)
            fresh = sorted((tuple(r) for r in await conn.fetch(f"SELECT * FROM views_rebuild.{table}")), key=repr)
            assert live == fresh, table
        checkpoints = "SELECT consumer, stream, stream_seq FROM {}.consumer_checkpoint ORDER BY stream"
        assert [tuple(r) for r in await conn.fetch(checkpoints.format("views"))] == [
            tuple(r) for r in await conn.fetch(checkpoints.format("views_rebuild"))]
        assert await stored_version(conn, "views") == VIEWS.version
        assert not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname LIKE 'views\\_%' AND"
                                       " nspname <> 'views_rebuild'")


async def views_waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = 'gongdi_views'"
                                    " AND wait_event_type = 'Lock' AND datname = current_database()"))


async def test_rebuild_under_load_every_query_answers(platform: Supervisor, client: GongdiClient,
                                                      pool: asyncpg.Pool, ready_settings: Settings, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    # Inside the swap's transaction, with every table of the views locked and renamed, queries are sent and the
    # swap goes on only once the views service is seen waiting on a lock: they are in flight across the swap.
    across: list[asyncio.Future] = []
    grant = shadow.grant_service_role

    async def grant_while_queries_wait(conn: asyncpg.Connection, schema: str, password: str | None) -> str:
        asks = (("city", {}), ("site", {"site_id": "g7"}), ("township", {"township": "bailin"}))
        across.extend(asyncio.ensure_future(client.query("views", name, body)) for name, body in asks)
        assert await eventually(lambda: views_waiting_on_a_lock(pool), timeout=20)
        return await grant(conn, schema, password)

    monkeypatch.setattr(shadow, "grant_service_role", grant_while_queries_wait)
    await generate(pool, 2000, sites=40)
    assert await eventually(lambda: settled(ready_settings, client), timeout=60)

    stop = asyncio.Event()
    answers: list[dict] = []
    replies: list[dict] = []
    arrived: list[str] = []  # the sites of the arrivals sent
    # Commands paced by the rebuild's progress (two per batch), so that they flow all through it, up to the swap
    # and after, without outrunning it on a small machine; queries as fast as they come.
    allowed = asyncio.Semaphore(0)

    def progress(_done: int, _total: int) -> None:
        allowed.release()
        allowed.release()

    async def ask() -> None:
        while not stop.is_set():
            answers.append(await client.query("views", "city"))
            answers.append(await client.query("views", "site", {"site_id": "g7"}))

    async def command() -> None:
        n = 0
        while True:
            await allowed.acquire()
            if stop.is_set():
                return
            site = f"load{n // 20}"
            cmd = f.register(site) if n % 20 == 0 else f.arrive(site, f"l{n}")
            replies.append(await client.send("membership", cmd))
            if n % 20:
                arrived.append(site)
            n += 1

    load = [asyncio.ensure_future(ask()), asyncio.ensure_future(ask()), asyncio.ensure_future(command())]
    try:
        outcome = await VIEWS.rebuild_swap(ready_settings, progress=progress, batch=200)
        assert outcome.swapped and outcome.resumed_from == 0 and outcome.applied >= 2000, outcome
        assert across and all(a["ok"] for a in await asyncio.gather(*across)), across
        # Progress, not time: queries and commands go on after the swap, against the new tables.
        asked, sent = len(answers), len(replies)
        assert asked >= 20 and sent >= 10  # and they flowed during the rebuild
        for _ in range(10):
            allowed.release()
        assert await eventually(lambda: len(answers) >= asked + 30 and len(replies) >= sent + 10, timeout=30)
    finally:
        stop.set()
        allowed.release()
        await asyncio.gather(*load)
    assert len(answers) > 60 and all(a["ok"] for a in answers), [a for a in answers if not a["ok"]][:3]
    assert len(replies) > 20 and all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    assert await eventually(lambda: settled(ready_settings, client), timeout=60)
    await assert_equal_to_fresh_replay(ready_settings, pool)
    # The live consumer goes on in the new tables: the last command's arrival is shown.
    site = await client.query("views", "site", {"site_id": arrived[-1]})
    assert site["ok"] and site["data"]["members"], site
    log = (tmp_path / "logs" / "views.log").read_text()
    assert "Traceback" not in log and "error" not in log.lower(), log[-3000:]

    # The numbering check before a swap: the stream's message n must be the log's event n.
    nc = await connect_nats(ready_settings, "test-numbering")
    try:
        probe = shadow.ShadowRebuild(pool, "views", "views", VIEWS.version, VIEWS.migrations,
                                     [shadow.Feed("membership", None)], nc.jetstream())  # type: ignore[arg-type]
        first = await pool.fetchval("SELECT event_id::text FROM membership.events ORDER BY tx_id, position LIMIT 1")
        probe.places = {"EVT_MEMBERSHIP": shadow.Place(seq=1, last_event_id=first)}
        await probe.check_numbering()
        probe.places = {"EVT_MEMBERSHIP": shadow.Place(seq=2, last_event_id=first)}
        with pytest.raises(shadow.RebuildError, match="not numbered like the log"):
            await probe.check_numbering()
    finally:
        await nc.close()


async def shadow_events(pool: asyncpg.Pool) -> int:
    try:
        return await pool.fetchval(
            "SELECT coalesce(sum(stream_seq), 0) FROM views_shadow.consumer_checkpoint WHERE consumer = 'views'")
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return 0


async def test_rebuild_killed_goes_on_where_it_stopped(platform: Supervisor, client: GongdiClient,
                                                       pool: asyncpg.Pool, ready_settings: Settings, tmp_path: Path):
    await generate(pool, 4000, sites=50)
    assert await eventually(lambda: settled(ready_settings, client), timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "services.views", "swap", "--batch", "200"],
                            env={**os.environ, **ready_settings.env()}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # After five batches, and while it waits for a lock the test holds in the middle of the next one.
    held = await killed_in_a_batch(proc, pool, lambda: _at_least(pool, 1000), "views_shadow.consumer_checkpoint",
                                   "SELECT sum(stream_seq) FROM views_shadow.consumer_checkpoint")
    assert 1000 <= held < 4000

    def rerun() -> subprocess.CompletedProcess | None:
        """`gongdi rebuild`, as the operator runs it again after the kill."""
        done = subprocess.run([sys.executable, "-m", "gongdi", "--home", str(tmp_path / "home"), "rebuild"],
                              env={**os.environ, **ready_settings.env()}, capture_output=True, text=True, timeout=60)
        # The killed process's session may hold its lock a moment longer.
        assert done.returncode == 0 or "already running" in done.stderr, done.stderr
        return done if done.returncode == 0 else None

    done = await eventually(rerun, timeout=30)
    # It went on from the last committed batch, not from the start, and applied exactly the rest.
    total = await pool.fetchval("SELECT sum(stream_seq) FROM views.consumer_checkpoint")
    assert f"resumed after {held:,})" in done.stdout, done.stdout
    assert f"{total - held:,} events applied" in done.stdout and "swapped in" in done.stdout, done.stdout
    assert "重建 [" in done.stderr  # the progress bar
    assert await eventually(lambda: settled(ready_settings, client), timeout=60)
    await assert_equal_to_fresh_replay(ready_settings, pool)


async def test_a_rebuild_that_would_drop_what_the_views_show_is_not_swapped_in(
        platform: Supervisor, client: GongdiClient, pool: asyncpg.Pool, ready_settings: Settings, tmp_path: Path):
    """An arrival edited in the log after the views applied it: the rebuild refuses it and the rest of its stream,
    so swapped in, the views would lose that site's members. `gongdi rebuild` keeps the live views, exits 1 and
    names the record; with `--accept-dead-letters` it swaps."""
    await generate(pool, 300, sites=6)
    assert await eventually(lambda: settled(ready_settings, client), timeout=60)
    await tamper_one_arrival(pool, 100)
    edited = await pool.fetchrow("SELECT position, stream_id, version FROM membership.events"
                                 " WHERE payload -> 'member' ->> 'name' = '改名'")
    later = await pool.fetchval("SELECT count(*) FROM membership.events WHERE stream_id = $1 AND version > $2",
                                edited["stream_id"], edited["version"])
    before = await rebuilt_tables(pool, "views")
    members_sql = "SELECT count(*) FROM views.site_member WHERE site_id = $1"
    site = edited["stream_id"].removeprefix("site-")
    shown_before = await pool.fetchval(members_sql, site)

    def gongdi_rebuild(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gongdi", "--home", str(tmp_path / "home"), "rebuild", *flags],
                              env={**os.environ, **ready_settings.env()}, capture_output=True, text=True, timeout=120)

    refused = gongdi_rebuild()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"少 {1 + later} 条事件" in refused.stderr, refused.stderr
    assert (f"membership 事件 position {edited['position']}（MemberArrived，流 {edited['stream_id']}"
            f" 第 {edited['version']} 版）：其哈希与内容不符") in refused.stderr, refused.stderr
    # each refused event in the rebuild's log file, not in English on the operator's terminal
    log = (tmp_path / "home" / "logs" / "rebuild.log").read_text()
    assert "event refused" not in refused.stderr and "rebuild.log" in refused.stderr, refused.stderr
    assert 1 <= log.count("event refused") <= shadow.LOGGED_REFUSALS
    assert await rebuilt_tables(pool, "views") == before  # the live views untouched, still showing the stream

    accepted = gongdi_rebuild("--accept-dead-letters")
    assert accepted.returncode == 0, accepted.stderr
    assert "swapped in" in accepted.stdout, accepted.stdout
    assert f"不再显示在用视图显示过的 {1 + later} 条事件" in accepted.stdout, accepted.stdout
    # What the log now proves: the site's members up to the edited arrival, the rest left out as letters.
    assert await pool.fetchval(members_sql, site) < shown_before
    assert "改名" not in str(await rebuilt_tables(pool, "views"))


async def killed_in_a_batch(proc: subprocess.Popen, pool: asyncpg.Pool, progressed: Callable[[], Awaitable[bool]],
                            table: str, held_sql: str) -> int:
    """Kill the rebuild `proc` with -9 on progress (once `progressed()`), while the test holds `table`, which every
    batch writes last, so that the batch under way waits uncommitted and dies with it; what had committed then."""
    try:
        assert await eventually(progressed, timeout=60), proc.poll()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            held = await conn.fetchval(held_sql)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    return held


async def _at_least(pool: asyncpg.Pool, n: int) -> bool:
    return await shadow_events(pool) >= n


async def test_other_code_version_rebuilds_on_start(ready_settings: Settings, admin_settings: Settings,
                                                    servers: Servers, client: GongdiClient, pool: asyncpg.Pool,
                                                    tmp_path: Path):
    def supervisor(logs: str) -> Supervisor:
        return Supervisor(ready_settings, tmp_path / logs, say=lambda *_: None, passwords=servers.credentials.nats,
                          database_passwords=servers.credentials.postgres)

    first = supervisor("logs1")
    first.start()
    try:
        await _wait_ready(admin_settings)
        await generate(pool, 1000, sites=20)
        assert await eventually(lambda: settled(ready_settings, client), timeout=60)
    finally:
        first.stop()
    async with pool.acquire() as conn:
        assert await stored_version(conn, "views") == VIEWS.version  # stamped by the first setup
        await stamp_version(conn, "views", "0")  # as an older release's code would have left it

    second = supervisor("logs2")
    lines = second.setup()  # what `gongdi up` does: setup, then start
    assert any(line.startswith(REBUILD_NEEDED) for line in lines), lines
    second.start()
    try:
        job = next(c for c in second.children if c.name == "views-rebuild")

        async def swapped() -> bool:
            second.check()
            async with pool.acquire() as conn:
                return await stored_version(conn, "views") == VIEWS.version and job.proc.poll() == 0

        assert await eventually(swapped, timeout=60), (tmp_path / "logs2" / "views-rebuild.log").read_text()
        assert "swapped in" in (tmp_path / "logs2" / "views-rebuild.log").read_text()
        assert (await client.query("views", "site", {"site_id": "g3"}))["ok"]
        assert await eventually(lambda: settled(ready_settings, client), timeout=60)
        await assert_equal_to_fresh_replay(ready_settings, pool)
        second.check()
        assert job.proc.poll() == 0  # a job done is not restarted
    finally:
        second.stop()
    assert not any(line.startswith(REBUILD_NEEDED) for line in supervisor("logs3").setup())



class Poisoned:
    """A projection that cannot store event 2 (it raises) nor event 4 (the database refuses its row)."""

    def __init__(self, schema: str):
        self.schema = schema

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        if event.payload["n"] == 2:
            raise ValueError("value out of range for 张三")
        await conn.execute(f"INSERT INTO {self.schema}.applied (event_id, n) VALUES ($1, $2)", event.event_id,
                           event.payload["n"])


async def test_shadow_rebuild_dead_letters_what_it_cannot_store_and_goes_on(pool: asyncpg.Pool,
                                                                            ready_settings: Settings):
    store = PostgresEventStore(pool, "membership")
    for n in range(10):
        await append_one(store, "s-1", n)
    tables = Migration(1, "checkpoint, heads, dead letters, the projection", lambda s: checkpoint_sql(s)
                       + stream_heads_sql(s) + f"CREATE TABLE {s}.applied (event_id uuid PRIMARY KEY,"
                       " n int NOT NULL CHECK (n <> 4));")
    rebuild = shadow.ShadowRebuild(pool, "t", "t-consumer", "1", [tables],
                                   [shadow.Feed("membership", Poisoned("t_shadow"))], batch=3)
    outcome = await rebuild.run(swap=False)
    assert (outcome.applied, outcome.dead_letters, outcome.events) == (8, 2, 10), outcome
    assert sorted(r["n"] for r in await pool.fetch("SELECT n FROM t_shadow.applied")) == [0, 1, 3, 5, 6, 7, 8, 9]
    letters = await pool.fetch("SELECT stream_seq, error FROM t_shadow.dead_letters ORDER BY stream_seq")
    assert [r["stream_seq"] for r in letters] == [3, 5]
    assert letters[0]["error"].startswith("ValueError at test_rebuild.py:") and "张三" not in letters[0]["error"]
    assert letters[1]["error"].startswith("CheckViolationError[23514]")
    assert await pool.fetchval("SELECT stream_seq FROM t_shadow.consumer_checkpoint") == 10
    assert await pool.fetchval("SELECT version FROM t_shadow.stream_head WHERE stream_id = 's-1'") == 10


async def rebuilt_tables(pool: asyncpg.Pool, schema: str) -> dict[str, list[tuple]]:
    tables = [r["tablename"] for r in await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", schema)]
    out = {}
    for table in tables:
        if table in {"schema_migrations", "rebuild_cursor", "rebuild_part"}:
            continue
        columns = [r["column_name"] for r in await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2"
            " AND column_name NOT IN ('updated_at', 'dead_lettered_at', 'recorded_at')", schema, table)]
        listed = ", ".join(columns)
        out[table] = sorted((tuple(r) for r in await pool.fetch(f"SELECT {listed} FROM {schema}.{table}")), key=repr)
    return out


async def test_hashes_checked_in_a_process_apart_refuse_what_a_check_here_refuses(pool: asyncpg.Pool,
                                                                                  ready_settings: Settings):
    """The views rebuilt with every hash recomputed in the rebuilding process, and with the hashes handed to the
    checking process (and a tampered event found only after the shadow applied it): the same tables, letters and
    checkpoints."""
    await generate(pool, 600, sites=12)
    tampered = await pool.fetchrow("SELECT event_id, stream_id FROM membership.events"
                                   " WHERE event_type = 'MemberArrived' ORDER BY position LIMIT 1 OFFSET 200")
    async with pool.acquire() as conn:
        await conn.execute("SET session_replication_role = replica")  # past the append-only triggers, as an attacker
        await conn.execute("UPDATE membership.events SET payload = jsonb_set(payload, '{member,name}', '\"改名\"')"
                           " WHERE event_id = $1", tampered["event_id"])
        await conn.execute("SET session_replication_role = origin")
    outcomes = {}
    for schema, dsn in (("views_here", None), ("views_apart", ready_settings.database_url)):
        feeds = [shadow.Feed(service, p) for service, p in VIEWS.feeds(schema)]
        outcomes[schema] = await shadow.ShadowRebuild(
            pool, "views", "views", VIEWS.version, VIEWS.migrations, feeds, batch=100, shadow=schema, dsn=dsn,
            check_apart=0, split_from=NEVER).run(fresh=True, swap=False)
    here, apart = outcomes["views_here"], outcomes["views_apart"]
    assert here.events == apart.events == 600
    # The tampered arrival and every later event of its stream are refused; everything else applied.
    later = await pool.fetchval("SELECT count(*) FROM membership.events WHERE stream_id = $1 AND version >"
                                " (SELECT version FROM membership.events WHERE event_id = $2)",
                                tampered["stream_id"], tampered["event_id"])
    assert here.dead_letters == apart.dead_letters == 1 + later
    assert (here.applied, apart.applied) == (600 - 1 - later,) * 2
    letters = await pool.fetch("SELECT error FROM views_apart.dead_letters ORDER BY stream_seq LIMIT 1")
    assert "hash" in letters[0]["error"]
    assert await rebuilt_tables(pool, "views_here") == await rebuilt_tables(pool, "views_apart")
    assert "改名" not in str(await rebuilt_tables(pool, "views_apart"))


async def tamper_one_arrival(pool: asyncpg.Pool, offset: int) -> None:
    """An arrival's name changed in the log past the append-only triggers, as an attacker would."""
    async with pool.acquire() as conn:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("UPDATE membership.events SET payload = jsonb_set(payload, '{member,name}', '\"改名\"')"
                           " WHERE event_id = (SELECT event_id FROM membership.events WHERE event_type ="
                           " 'MemberArrived' ORDER BY position LIMIT 1 OFFSET $1)", offset)
        await conn.execute("SET session_replication_role = origin")


async def one_process_rebuild(pool: asyncpg.Pool, schema: str) -> shadow.Outcome:
    feeds = [shadow.Feed(service, p) for service, p in VIEWS.feeds(schema)]
    return await shadow.ShadowRebuild(pool, "views", "views", VIEWS.version, VIEWS.migrations, feeds, batch=100,
                                      shadow=schema, split_from=NEVER).run(fresh=True, swap=False)


async def test_a_rebuild_split_by_stream_into_processes_equals_one_in_a_single_process(pool: asyncpg.Pool,
                                                                                     ready_settings: Settings):
    """Each source read by three part processes (streams cut by their id's hash) gives the same tables, dead
    letters (at their stream sequences) and checkpoints as one process reading the log in its order."""
    await generate(pool, 900, sites=15)
    await tamper_one_arrival(pool, 300)
    here = await one_process_rebuild(pool, "views_here")
    shown: list[tuple[int, int]] = []
    feeds = [shadow.Feed(service, p) for service, p in VIEWS.feeds("views_split")]
    split = await shadow.ShadowRebuild(
        pool, "views", "views", VIEWS.version, VIEWS.migrations, feeds, batch=40, shadow="views_split",
        dsn=ready_settings.database_url, split_from=0, parts=3, progress=lambda n, of: shown.append((n, of))
    ).run(fresh=True, swap=False)
    assert (split.events, split.applied, split.dead_letters) == (here.events, here.applied, here.dead_letters)
    assert here.dead_letters > 0 and here.events == 900
    assert await rebuilt_tables(pool, "views_split") == await rebuilt_tables(pool, "views_here")
    assert not await pool.fetchval("SELECT count(*) FROM views_split.rebuild_part")
    cursor = "SELECT stream, stream_seq, event_id FROM {}.rebuild_cursor ORDER BY stream"
    assert [tuple(r) for r in await pool.fetch(cursor.format("views_split"))] == [
        tuple(r) for r in await pool.fetch(cursor.format("views_here"))]
    # The progress moved with the parts' batches, up to the whole log.
    assert len(shown) > 5 and shown[-1] == (900, 900), shown[-3:]
    assert [n for n, _ in shown] == sorted(n for n, _ in shown)


PART_RUN = """
import asyncio, sys
import asyncpg
from gongdi.bus import shadow
from services.views.app import VIEWS

async def main(dsn):
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    feeds = [shadow.Feed(service, p) for service, p in VIEWS.feeds("views_split")]
    outcome = await shadow.ShadowRebuild(pool, "views", "views", VIEWS.version, VIEWS.migrations, feeds, batch=25,
                                         shadow="views_split", dsn=dsn, split_from=0, parts=2).run(swap=False)
    print(outcome.resumed_from, outcome.applied, outcome.events)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_split_rebuild_killed_goes_on_from_each_part(pool: asyncpg.Pool, ready_settings: Settings):
    """The rebuild killed with -9 while its parts run: the part processes end with it, and the rebuild run again
    takes each part up where its last batch committed and ends equal to a rebuild in one go."""
    await generate(pool, 3000, sites=30)
    dsn = ready_settings.database_url
    proc = subprocess.Popen([sys.executable, "-c", PART_RUN, dsn], stdout=subprocess.PIPE, text=True)
    # Once the parts read 600 events, and while the test holds the parts' table: each part's next batch waits.
    held = await killed_in_a_batch(proc, pool, lambda: _parts_read(pool, 600), "views_split.rebuild_part",
                                   "SELECT sum(done) FROM views_split.rebuild_part")
    assert 600 <= held < 3000
    assert await eventually(lambda: not _part_processes(), timeout=10), _part_processes()

    again = subprocess.run([sys.executable, "-c", PART_RUN, dsn], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed_from, applied, events = (int(x) for x in again.stdout.splitlines()[-1].split())
    assert (resumed_from, events) == (held, 3000)
    assert applied == 3000 - held  # no dead letters in this log: every event read once, by one run or the other
    here = await one_process_rebuild(pool, "views_here")
    assert here.applied == 3000
    assert await rebuilt_tables(pool, "views_split") == await rebuilt_tables(pool, "views_here")


async def test_parts_an_older_release_left_keep_their_cut(pool: asyncpg.Pool, ready_settings: Settings):
    """A split left by the first release (its parts' table has no `cut`) is taken up reading each part's streams as
    that release cut them, by the first byte of the id's SHA-256 (computed here apart); new parts are cut otherwise,
    every stream wholly in one part."""
    await generate(pool, 600, sites=12)
    feeds = [shadow.Feed(service, p) for service, p in VIEWS.feeds("views_split")]
    rebuild = shadow.ShadowRebuild(pool, "views", "views", VIEWS.version, VIEWS.migrations, feeds,
                                   shadow="views_split")
    await rebuild.open(fresh=True)
    end = await log_end(pool, "membership")
    assert end is not None
    await pool.execute("ALTER TABLE views_split.rebuild_part DROP COLUMN cut")  # as the first release made it
    await pool.executemany(
        "INSERT INTO views_split.rebuild_part (stream, part, parts, start_tx, start_position, start_seq, until_tx,"
        " until_position, tx_id, position, done) VALUES ('EVT_MEMBERSHIP', $1, 2, 0, 0, 0, $2, $3, 0, 0, 0)",
        [(k, end.tx_id, end.position) for k in range(2)])
    await rebuild.open()  # as a run taking the split up does
    left = [Part.from_row(r) for r in await pool.fetch("SELECT * FROM views_split.rebuild_part ORDER BY part")]
    assert [p.cut for p in left] == [1, 1]
    streams = [r["stream_id"] for r in await pool.fetch("SELECT DISTINCT stream_id FROM membership.events")]
    reader = await asyncpg.connect(ready_settings.database_url, server_settings=READER_SETTINGS)
    try:
        for cut in (1, CUT):
            read = [{r["stream_id"] for r in await read_part(reader, "membership", replace(p, cut=cut),
                                                             p.start, 10_000)} for p in left]
            assert read[0] | read[1] == set(streams) and not read[0] & read[1], cut
            if cut == 1:
                assert read == [{s for s in streams if hashlib.sha256(s.encode()).digest()[0] % 2 == k}
                                for k in range(2)]
        counted = [len(await read_part(reader, "membership", p, p.start, 10_000)) for p in left]
        assert sum(counted) == 600 and min(counted) > 0
    finally:
        await reader.close()


async def test_parts_the_server_would_cut_otherwise_are_not_taken_up(pool: asyncpg.Pool, ready_settings: Settings):
    """Parts made where `hashtextextended` gave another answer (a PostgreSQL that changed it) would read other
    streams: the rebuild stops and says to start afresh, and afresh it goes through."""
    await generate(pool, 300, sites=6)
    feeds = [shadow.Feed(service, p) for service, p in VIEWS.feeds("views_split")]

    def rebuild() -> shadow.ShadowRebuild:
        return shadow.ShadowRebuild(pool, "views", "views", VIEWS.version, VIEWS.migrations, feeds,
                                    shadow="views_split", dsn=ready_settings.database_url, split_from=0, parts=2)

    await rebuild().open(fresh=True)
    end = await log_end(pool, "membership")
    assert end is not None
    probe = await pool.fetchval(PROBE_SQL)
    await pool.executemany(insert_parts_sql("views_split"), [
        Part("EVT_MEMBERSHIP", k, 2, Checkpoint(), 0, end, Checkpoint(), probe=probe + 1).values() for k in range(2)])
    with pytest.raises(shadow.RebuildError, match="--fresh"):
        await rebuild().run(swap=False)
    assert await pool.fetchval("SELECT count(*) FROM views_split.site_member") == 0  # nothing read
    outcome = await rebuild().run(fresh=True, swap=False)
    assert outcome.events == 300 and outcome.applied == 300


async def _parts_read(pool: asyncpg.Pool, n: int) -> bool:
    try:
        return (await pool.fetchval("SELECT coalesce(sum(done), 0) FROM views_split.rebuild_part")) >= n
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return False


def _part_processes() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"gongdi.bus.rebuildpart" in f.read():
                    found.append(pid)
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError, PermissionError):
            continue
    return found


async def test_a_split_rebuild_swaps_in_while_commands_flow(platform: Supervisor, client: GongdiClient,
                                                            pool: asyncpg.Pool, ready_settings: Settings):
    """Split up to the live consumer's checkpoint (not the log's end), then caught up and swapped in as ever, with
    arrivals recorded all through: the views equal a fresh replay and go on."""
    await generate(pool, 3000, sites=30)
    assert (await client.send("membership", f.register("during")))["ok"]
    assert await eventually(lambda: settled(ready_settings, client), timeout=60)
    allowed = asyncio.Semaphore(0)
    replies: list[dict] = []
    stop = asyncio.Event()

    async def command() -> None:
        n = 0
        while True:
            await allowed.acquire()
            if stop.is_set():
                return
            replies.append(await client.send("membership", f.arrive("during", f"split{n}")))
            n += 1

    def progress(_done: int, _total: int) -> None:
        allowed.release()  # one arrival per batch of a part: commands flow while the parts run

    nc = await connect_nats(ready_settings, "test-split-swap")
    sending = asyncio.ensure_future(command())
    try:
        feeds = [shadow.Feed(service, p) for service, p in VIEWS.feeds("views_shadow")]
        outcome = await shadow.ShadowRebuild(
            pool, "views", "views", VIEWS.version, VIEWS.migrations, feeds, nc.jetstream(), batch=50,
            progress=progress, dsn=ready_settings.database_url, split_from=0, parts=2).run(fresh=True)
    finally:
        stop.set()
        allowed.release()
        await sending
        await nc.close()
    assert outcome.swapped and outcome.applied >= 3000, outcome
    assert len(replies) >= 10 and all(r["ok"] for r in replies), [r.get("error") for r in replies[:3]]
    assert await eventually(lambda: settled(ready_settings, client), timeout=60)
    await assert_equal_to_fresh_replay(ready_settings, pool)
    site = await client.query("views", "site", {"site_id": "during"})
    assert len(site["data"]["members"]) == len(replies), site

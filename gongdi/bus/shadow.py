"""Rebuild and swap: a reading service's schema rebuilt in a shadow from the writers' logs, then swapped in live.

The shadow (`<schema>_shadow`) is made by the same migrations and filled from each source service's `events` table
in the relay's gap-safe order, `(tx_id, position)`, by keyset batches: one read, one transaction per batch, the
projections' writes sent as `executemany` runs (`Batcher`). Every batch moves the shadow's consumer checkpoint,
its stream heads and its read cursor in that transaction, so a rebuild killed at any point goes on from the last
batch. The relay publishes exactly these rows in exactly this order, numbering them 1, 2, … on the stream, so the
n-th event read is stream sequence n: the shadow's checkpoints are the live consumer's own numbers, and the swap
(which holds the live consumer back and catches the shadow up to its checkpoints) hands the running consumer a
schema it goes on from without a gap or a double. See docs/architecture.md, "Rebuild and swap".
"""
from __future__ import annotations

import asyncio
import functools
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.envelope import EnvelopeRow
from contracts.subjects import stream_name
from gongdi.bus.consumer import Handler, describe, head_columns, heads_upsert_sql, save_position
from gongdi.bus.continuity import Continuity, Verdict, check, is_next
from gongdi.bus.hashcheck import Checking, Mismatch
from gongdi.bus.logread import decode, log_end, read_log
from gongdi.bus.parts import (
    CUT,
    PROBE_SQL,
    SPLIT_FROM,
    Part,
    PartProcess,
    insert_parts_sql,
    part_table_sql,
    parts_wanted,
    read_part,
    seq_of_sql,
)
from gongdi.bus.setwise import SetForm, set_form
from gongdi.store.base import Checkpoint, StoredRow, StreamHead
from gongdi.store.migrations import Migration, migrate
from gongdi.store.roles import grant_service_role

Progress = Callable[[int, int], None]
VERSION_COMMENT = "gongdi code version "  # the schema's comment: which projection code built its rows
REBUILD_NEEDED = "需要重建视图："  # how a reading service's setup tells the supervisor to rebuild in the background
BATCH = 5000
SWAP_WITHIN = 500  # events behind the live consumer at most when the swap (which holds queries back) is tried
LOCK_TIMEOUT = "250ms"  # the swap gives way (and tries again) rather than make queries wait longer than this
NO_HEAD = StreamHead()  # a stream not applied yet (frozen: one for all)
CHECK_APART = 20_000  # events to read from which hashes are recomputed in a checking process (its start: ~1 s)


class RebuildError(RuntimeError):
    """The rebuild cannot go on as asked (another one runs, the live schema is missing, the log and the stream
    disagree); the message says what to do."""


REFUSED_EXIT = 3  # a rebuild job's exit status for "not swapped, on purpose": the supervisor does not retry it
LOGGED_REFUSALS = 10  # refused events a rebuild logs one by one; the rest are counted (every one is a dead letter)


class LettersRefused(RebuildError):
    """The rebuilt views would leave out events the live views show: dead letters the live consumer does not have
    (a log edited or cut since the live consumer applied it, or a projection that now fails on old events). The
    shadow is kept and not swapped in, unless the operator accepts it (`accept_letters`)."""

    def __init__(self, live: str, count: int, body: str, error: str):
        try:
            env = orjson.loads(body)
            where = (f"{env.get('service')} 事件 position {env.get('position')}（{env.get('type')}，"
                     f"流 {env.get('stream_id')} 第 {env.get('version')} 版）")
        except (ValueError, AttributeError):
            where = "（无法读出的事件）"
        super().__init__(
            f"未切换：重建出的视图比在用的 {live} 少 {count} 条事件（死信），第一条是 {where}：{letter_reason(error)}。"
            "请先运行 `gongdi verify` 查明日志；确认以日志现状为准时，运行 `gongdi rebuild --accept-dead-letters`"
            f" (not swapped: {count} events the live views show would be dead letters)")
        self.count = count


def letter_reason(error: str) -> str:
    """A dead letter's `error` as an operator reads it."""
    if error.startswith("StreamContinuityError"):
        if "from its fields" in error:
            return "其哈希与内容不符，记录在写入后被改动过"
        return "不接续其流：之前的事件缺失、被改动或被替换"
    return f"投影无法写入它（{error}）"


def shadow_of(schema: str) -> str:
    return f"{schema}_shadow"


async def stored_version(conn: asyncpg.Connection, schema: str) -> str | None:
    """The code version recorded on `schema` (None: no such schema, or one from before versions)."""
    comment = await conn.fetchval(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", schema)
    if comment and comment.startswith(VERSION_COMMENT):
        return comment[len(VERSION_COMMENT):]
    return None


async def stamp_version(conn: asyncpg.Connection, schema: str, version: str) -> None:
    await conn.execute(f"COMMENT ON SCHEMA {schema} IS '{VERSION_COMMENT}{version}'")


async def check_version(conn: asyncpg.Connection, schema: str, version: str) -> str | None:
    """`setup`'s look at the live schema: a schema without a version (just created, or made before versions were
    kept, by the code of version 1) takes the code's; a different one is reported as `REBUILD_NEEDED …`."""
    stored = await stored_version(conn, schema)
    if stored is None:
        await stamp_version(conn, schema, version)
        return None
    if stored != version:
        return (f"{REBUILD_NEEDED}{schema} 由代码版本 {stored} 建成，现在的代码是 {version}；"
                f"正在后台重建，旧视图照常应答（gongdi rebuild {schema}）")
    return None


class NeedsConnection(RuntimeError):
    """A projection wants the database while its batch is only being planned."""


class Batcher:
    """What a projection sees as its connection during a rebuild: its writes are queued and sent at the end of the
    batch (or before any read), each group of the same statement as one statement over all its rows when the
    statement has a set-based form (`gongdi.bus.setwise`), else as one `executemany`; and `stamp`s, kept per row
    to the latest only, last of all.

    Without `commute`, groups are runs of the same statement in the order written: the effect is exactly that of
    executing each write in turn. With it (the projection's `streams_commute`: events of different event streams
    touch different rows), only each stream's order is kept: the k-th event of every stream in the batch forms
    wave k, and within a wave the i-th statement of each event goes out together, so a batch of thousands of
    events over many sites takes a few dozen round trips instead of one per change of statement."""

    def __init__(self, conn: asyncpg.Connection | None, commute: bool = False,
                 forms: dict[str, SetForm | None] | None = None):
        self._conn = conn
        self._commute = commute
        self._pending: list[tuple[str, list[Sequence[Any]]]] = []  # in order: (statement, rows)
        # With `commute`, each write goes at once to its slot (wave, i-th statement of its event): statement → rows
        self._slots: dict[tuple[int, int], dict[str, list[Sequence[Any]]]] = {}
        self._seen: dict[str | None, int] = {}  # events of each stream so far
        self._stream: str | None = None  # the current event's stream, its wave, its statements so far
        self._wave = self._level = 0
        self._stamps: dict[str, dict[Any, tuple[Any, ...]]] = {}  # statement → key → (key, order, values…)
        self._forms = {} if forms is None else forms  # statement → its set-based form (kept by the rebuild)
        self.statements = 0  # round trips made, for the profile

    def begin(self, stream_id: str | None) -> None:
        """The writes that follow are those of the next event, of stream `stream_id`."""
        self._stream = stream_id
        self._wave = self._seen.get(stream_id, 0)
        self._seen[stream_id] = self._wave + 1
        self._level = 0

    async def execute(self, sql: str, *args: Any) -> str:
        if not args:  # the simple-query protocol (several statements, no parameters): cannot be batched
            await self.flush()
            return await self._conn.execute(sql)
        self._queue(sql, [args])
        return ""  # no projection reads a status; a queued write has none yet

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._queue(sql, list(rows))

    def _queue(self, sql: str, rows: list[Sequence[Any]]) -> None:
        if not self._commute:
            if self._pending and self._pending[-1][0] == sql:
                self._pending[-1][1].extend(rows)
            else:
                self._pending.append((sql, rows))
            return
        slot = (self._wave, self._level)
        self._level += 1
        statements = self._slots.get(slot)
        if statements is None:
            self._slots[slot] = {sql: rows}
        elif (have := statements.get(sql)) is None:
            statements[sql] = rows
        else:
            have.extend(rows)

    def stamp(self, sql: str, key: Any, order: Any, *values: Any) -> None:
        """Keep, per `key`, only the stamp of greatest `order`; `sql` gets them all at the end of the flush as
        arrays (key, order, values…). For a projection's "latest change" columns, which would otherwise be
        updated by every event (see services.views.stamps)."""
        stamps = self._stamps.setdefault(sql, {})
        have = stamps.get(key)
        if have is None or have[1] < order:
            stamps[key] = (key, order, *values)

    async def fetch(self, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        await self.flush()
        return await self._conn.fetch(*args, **kwargs)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        await self.flush()
        return await self._conn.fetchrow(*args, **kwargs)

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush()
        return await self._conn.fetchval(*args, **kwargs)

    def groups(self) -> list[tuple[str, list[Sequence[Any]]]]:
        """The queued writes as (statement, rows) in the order they go out; the queue is emptied (with `commute`,
        the current event's later writes start the next flush's first wave)."""
        if not self._commute:
            pending, self._pending = self._pending, []
            return pending
        slots, self._slots = self._slots, {}
        self._seen = {self._stream: 1}
        self._wave = self._level = 0
        return [(sql, rows) for key in sorted(slots) for sql, rows in slots[key].items()]

    async def send(self, conn: asyncpg.Connection) -> None:
        """Send what was queued without a connection (a batch planned while the one before it was written)."""
        self._conn = conn
        await self.flush()

    async def flush(self) -> None:
        if self._conn is None:
            raise NeedsConnection("a projection read during a planned batch")
        for sql, rows in self.groups():
            self.statements += 1
            if len(rows) == 1:
                await self._conn.execute(sql, *rows[0])
            elif (form := await self._form(sql)) is not None and form.fits(rows):
                if form.copy is not None:
                    await form.copy_into(self._conn, rows)
                else:
                    await self._conn.execute(form.sql, form.argument(rows))
            else:
                await self._conn.executemany(sql, rows)
        stamps, self._stamps = self._stamps, {}
        for sql, latest in stamps.items():
            self.statements += 1
            await self._conn.execute(sql, *(list(column) for column in zip(*latest.values(), strict=True)))

    async def _form(self, sql: str) -> SetForm | None:
        if sql not in self._forms:
            types = [t.name if t.kind == "scalar" and t.schema == "pg_catalog" else ""
                     for t in (await self._conn.prepare(sql)).get_parameters()]
            self._forms[sql] = set_form(sql, types)
        return self._forms[sql]


@dataclass(frozen=True)
class Feed:
    """One source of the rebuilt schema: a writing service's log and the projection that shows it."""

    service: str
    handler: Handler

    @functools.cached_property
    def stream(self) -> str:  # asked for every event: made once
        return stream_name(self.service)


@dataclass
class Place:
    """How far the shadow has read one source: the last event's place in the log and its stream sequence."""

    after: Checkpoint = field(default_factory=Checkpoint)
    seq: int = 0
    heads: dict[str, StreamHead] = field(default_factory=dict)
    last_event_id: str | None = None


@dataclass
class Plan:
    """A batch checked and projected, its writes queued: written once the batch before it committed."""

    rows: list[Any]
    events: list[EnvelopeRow]
    heads_before: dict[str, StreamHead]
    seq: int  # the stream sequence before its first event
    heads: dict[str, StreamHead] = field(default_factory=dict)
    moved: dict[str, StreamHead] = field(default_factory=dict)
    applied: int = 0
    letters: int = 0
    batcher: Batcher | None = None  # None: planning failed, the writer goes event by event


@dataclass
class Outcome:
    applied: int = 0  # events applied by this run
    resumed_from: int = 0  # events the shadow already held when this run began (0: started afresh)
    events: int = 0  # events the rebuilt schema has read in all
    dead_letters: int = 0
    seconds: float = 0.0
    swapped: bool = False
    batches: int = 0
    held: float = 0.0  # seconds the swap held the live schema's locks (queries waited at most this long)
    dropped: int = 0  # events the old views showed that the swapped-in ones hold as dead letters (accepted)

    @property
    def rate(self) -> float:
        return self.applied / self.seconds if self.seconds else 0.0


class ShadowRebuild:
    """One rebuild of schema `live` in its shadow. `run` does it all; the steps are separate for tests and benches."""

    def __init__(self, pool: asyncpg.Pool, live: str, durable: str, version: str, migrations: Sequence[Migration],
                 feeds: Sequence[Feed], js: JetStreamContext | None = None, batch: int = BATCH,
                 progress: Progress | None = None, log: Any = None, shadow: str | None = None,
                 dsn: str | None = None, check_apart: int = CHECK_APART, split_from: int = SPLIT_FROM,
                 parts: int | None = None, part: Part | None = None, reader: asyncpg.Connection | None = None,
                 accept_letters: bool = False):
        self.pool = pool
        self.accept_letters = accept_letters  # swap even if events the live views show became dead letters
        self._refusals = 0
        self.dsn = dsn  # for the checking process's own connection; without it every hash is checked here
        self.check_apart = check_apart
        self.split_from = split_from  # a source with this many events still to read is split (with `dsn`)
        self.parts = parts  # into this many parts (None: `parts_wanted()`)
        self.part = part  # set in a part's process: this rebuild reads only that part, on `reader`
        self.reader = reader
        self._parted: dict[str, int] = {}  # per stream: events its parts read beyond the shadow's checkpoint
        self.live = live
        self.shadow = shadow or shadow_of(live)
        self.durable = durable  # the consumer name of its checkpoints: the live consumer's, to be taken over
        self.version = version
        self.migrations = migrations
        self.feeds = list(feeds)
        self.js = js
        self.batch = batch
        self.progress = progress
        self.log = log or structlog.get_logger()
        self.places: dict[str, Place] = {}
        self.forms: dict[str, SetForm | None] = {}  # each statement's set-based form, found once
        self.checked: dict[str, Checkpoint] = {}  # per stream: hashes up to here are the checking process's
        self.refused: dict[str, Mismatch] = {}  # event id → what the checking process found wrong with it
        self._checks: dict[str, Checking] = {}
        self.outcome = Outcome()
        self.total = 0

    # ---- the shadow -------------------------------------------------------------------------------------------

    async def open(self, fresh: bool = False) -> int:
        """Make the shadow, or take up the one a killed rebuild left when it was built by this code version;
        returns the events it already holds."""
        async with self.pool.acquire() as conn:
            exists = await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", self.shadow)
            if exists and (fresh or await stored_version(conn, self.shadow) != self.version):
                await conn.execute(f"DROP SCHEMA {self.shadow} CASCADE")
            await migrate(conn, self.shadow, self.migrations)
            await conn.execute(f"""CREATE TABLE IF NOT EXISTS {self.shadow}.rebuild_cursor (
                stream text PRIMARY KEY, tx_id bigint NOT NULL, position bigint NOT NULL, stream_seq bigint NOT NULL,
                event_id uuid NOT NULL)""")
            await conn.execute(part_table_sql(self.shadow))
            # Last: a shadow without it (killed before this line) is not taken up, but made afresh.
            await stamp_version(conn, self.shadow, self.version)
            cursors = {r["stream"]: r for r in await conn.fetch(f"SELECT * FROM {self.shadow}.rebuild_cursor")}
            for feed in self.feeds:
                c = cursors.get(feed.stream)
                heads = await self._heads(conn, feed.stream)
                self.places[feed.stream] = Place(Checkpoint(c["tx_id"], c["position"]), c["stream_seq"], heads,
                                                 str(c["event_id"])) if c else Place(heads=heads)
            self._parted = {r["stream"]: r["done"] for r in await conn.fetch(
                f"SELECT stream, sum(done) AS done FROM {self.shadow}.rebuild_part GROUP BY stream")}
        held = self.done
        self.outcome.resumed_from = held
        if held:
            self.log.info("rebuild resumed", shadow=self.shadow, events=held)
        return held

    async def _heads(self, conn: asyncpg.Connection, stream: str) -> dict[str, StreamHead]:
        return {r["stream_id"]: StreamHead(r["version"], r["hash"]) for r in await conn.fetch(
            f"SELECT stream_id, version, hash FROM {self.shadow}.stream_head WHERE consumer = $1 AND stream = $2",
            self.durable, stream)}

    async def live_positions(self, conn: asyncpg.Connection | None = None) -> dict[str, int]:
        """The live consumer's checkpoint on each stream: how far the shadow must read."""
        sql = f"SELECT stream, stream_seq FROM {self.live}.consumer_checkpoint WHERE consumer = $1"
        rows = await (conn.fetch(sql, self.durable) if conn else self.pool.fetch(sql, self.durable))
        seen = {r["stream"]: r["stream_seq"] for r in rows}
        return {feed.stream: seen.get(feed.stream, 0) for feed in self.feeds}

    async def log_sizes(self) -> dict[str, int]:
        return {feed.stream: await self.pool.fetchval(f"SELECT count(*) FROM {feed.service}.events")
                for feed in self.feeds}

    # ---- reading and applying ---------------------------------------------------------------------------------

    async def advance(self, limits: dict[str, int] | None, conn: asyncpg.Connection | None = None) -> int:
        """Read and apply each source up to its limit (the stream sequence to reach; None: the log's gap-safe end),
        a batch per transaction, or all within `conn`'s transaction (the swap's); events applied."""
        applied = 0
        for feed in self.feeds:
            applied += await (self._advance(feed, limits) if conn is None else self._advance_in(conn, feed, limits))
        return applied

    async def _advance(self, feed: Feed, limits: dict[str, int] | None) -> int:
        """Three stages at once: the next batch is read and decoded (the server reads while this process works),
        this one is planned (continuity, projection into queued writes: this process's CPU), the previous one is
        written and committed (the server's CPU). A batch is written only once the one before it committed."""
        place = self.places[feed.stream]
        limit = None if limits is None else limits[feed.stream]
        planned = Place(place.after, place.seq, dict(place.heads), place.last_event_id)  # where planning stands
        reading: asyncio.Future | None = None
        writing: asyncio.Future | None = None
        applied = 0
        try:
            while limit is None or planned.seq < limit:
                want = self.batch if limit is None else min(self.batch, limit - planned.seq)
                rows, events = await (reading or self._read(feed.service, planned.after, want))
                reading = None
                if not rows:
                    break
                after = Checkpoint(rows[-1]["tx_id"], rows[-1]["position"])
                if limit is None or planned.seq + len(rows) < limit:
                    more = self.batch if limit is None else min(self.batch, limit - planned.seq - len(rows))
                    reading = asyncio.ensure_future(self._read(feed.service, after, more))
                plan = await self._plan(feed, planned.heads, planned.seq, rows, events)
                if writing is not None:
                    applied += await writing
                    writing = None
                    self._report()
                if plan is None or plan.batcher is None:
                    # The projection reads while it writes (no queue), or a batch fails (redone event by event):
                    # one batch after the other.
                    applied += await (self._batch(feed, place, rows, events) if plan is None
                                      else self._write(feed, place, plan))
                    self._report()
                    planned = Place(place.after, place.seq, dict(place.heads), place.last_event_id)
                    continue
                writing = asyncio.ensure_future(self._write(feed, place, plan))
                planned = Place(after, planned.seq + len(rows), plan.heads, str(rows[-1]["event_id"]))
            if writing is not None:
                applied += await writing
                writing = None
                self._report()
        finally:
            for task in (reading, writing):
                if task is not None:
                    task.cancel()
        return applied

    async def _advance_in(self, conn: asyncpg.Connection, feed: Feed, limits: dict[str, int] | None) -> int:
        """Within the swap's transaction, which holds every query back: each batch batched in a savepoint, and only
        if that fails, one savepoint per event."""
        place = self.places[feed.stream]
        limit = None if limits is None else limits[feed.stream]
        applied = 0
        while limit is None or place.seq < limit:
            want = self.batch if limit is None else min(self.batch, limit - place.seq)
            rows, events = await self._read(feed.service, place.after, want)
            if not rows:
                break
            try:
                async with conn.transaction():
                    batcher = Batcher(conn, getattr(feed.handler, "streams_commute", False), self.forms)
                    heads, n, letters, moved = await self._queue(batcher, feed, place.heads, place.seq, rows, events)
                    await batcher.flush()
                    await self._save(conn, feed, place.seq, rows, moved)
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
                raise  # the swap gives way and tries again
            except Exception:
                async with conn.transaction():
                    heads, n, letters = await self._apply(conn, feed, place.heads, place.seq, rows, events)
            self._moved(place, rows, heads, n, letters)
            applied += n
        return applied

    def _report(self) -> None:
        self.outcome.batches += 1
        if self.progress:
            self.progress(self.done, self.total)

    @property
    def done(self) -> int:
        return sum(p.seq for p in self.places.values()) + sum(self._parted.values())

    async def _read(self, service: str, after: Checkpoint, limit: int
                    ) -> tuple[list[Any], list[EnvelopeRow]]:
        if self.part is None:
            rows = await read_log(self.pool, service, after, limit)
        else:
            assert self.reader is not None
            rows = await read_part(self.reader, service, self.part, after, limit)
        return rows, [decode(row, service) for row in rows]

    def _moved(self, place: Place, rows: list[Any], heads: dict[str, StreamHead], applied: int, letters: int
               ) -> None:
        """A batch committed: the shadow's place moves past it."""
        place.heads = heads
        place.after = Checkpoint(rows[-1]["tx_id"], rows[-1]["position"])
        place.seq += len(rows)
        place.last_event_id = str(rows[-1]["event_id"])
        self.outcome.applied += applied
        self.outcome.dead_letters += letters

    async def _plan(self, feed: Feed, heads: dict[str, StreamHead], seq: int, rows: list[Any],
                    events: list[EnvelopeRow]) -> Plan | None:
        """The batch's checks and projection, its writes queued (no database); None when the projection reads."""
        batcher = Batcher(None, getattr(feed.handler, "streams_commute", False), self.forms)
        plan = Plan(rows, events, dict(heads), seq)
        try:
            plan.heads, plan.applied, plan.letters, plan.moved = await self._queue(batcher, feed, heads, seq, rows,
                                                                                  events)
        except NeedsConnection:
            return None
        except Exception:
            return plan  # without writes: the writer applies it event by event and dead-letters what fails
        plan.batcher = batcher
        return plan

    async def _write(self, feed: Feed, place: Place, plan: Plan) -> int:
        """One transaction: the planned writes, the checkpoint, heads and cursor; if it fails, the same batch one
        savepoint per event, dead-lettering what fails (as the live consumer would), so that the rebuild goes on."""
        done = False
        if plan.batcher is not None:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await plan.batcher.send(conn)
                    await self._save(conn, feed, plan.seq, plan.rows, plan.moved)
                heads, applied, letters = plan.heads, plan.applied, plan.letters
                done = True
            except Exception:
                pass  # redone below, event by event
        if not done:
            async with self.pool.acquire() as conn, conn.transaction():
                heads, applied, letters = await self._apply(conn, feed, plan.heads_before, plan.seq, plan.rows,
                                                            plan.events)
        self._moved(place, plan.rows, heads, applied, letters)
        return applied

    async def _batch(self, feed: Feed, place: Place, rows: list[Any], events: list[EnvelopeRow]) -> int:
        """A batch written as it is projected (for a projection that reads): one transaction, or if it fails, one
        savepoint per event."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                batcher = Batcher(conn, getattr(feed.handler, "streams_commute", False), self.forms)
                heads, applied, letters, moved = await self._queue(batcher, feed, place.heads, place.seq, rows,
                                                                   events)
                await batcher.flush()
                await self._save(conn, feed, place.seq, rows, moved)
        except Exception:
            async with self.pool.acquire() as conn, conn.transaction():
                heads, applied, letters = await self._apply(conn, feed, place.heads, place.seq, rows, events)
        self._moved(place, rows, heads, applied, letters)
        return applied

    async def _queue(self, batcher: Batcher, feed: Feed, heads: dict[str, StreamHead], seq: int, rows: list[Any],
                     events: list[EnvelopeRow]
                     ) -> tuple[dict[str, StreamHead], int, int, dict[str, StreamHead]]:
        """Check and project every event of the batch into `batcher`: (heads after, applied, letters, moved)."""
        heads = dict(heads)
        moved: dict[str, StreamHead] = {}
        applied = letters = 0
        # Every hash checked here, none refused before: the next link of its stream is applied at once.
        judged_here = not self.refused and feed.stream not in self.checked
        for i, (row, event) in enumerate(zip(rows, events, strict=True)):
            if i % 50 == 49:
                await asyncio.sleep(0)  # the previous batch's writes and the next read go on meanwhile
            if not (judged_here and is_next(heads.get(event.stream_id, NO_HEAD), event)):
                n = seq + i + 1
                verdict, why = self._judge(feed, heads, n, event)
                if verdict is Verdict.REFUSE:
                    batcher.begin(None)  # a letter's row is its own: None orders it with everything
                    await self._dead_letter(batcher, feed, n, str(why), row)
                    letters += 1
                    continue
                if verdict is Verdict.DUPLICATE:
                    continue
            batcher.begin(event.stream_id)
            await feed.handler.apply(batcher, event)
            applied += 1
            # Applied or passed as a dead letter, the stream's head moves past it, as in the live consumer.
            heads[event.stream_id] = moved[event.stream_id] = StreamHead(event.version, event.hash)
        return heads, applied, letters, moved

    def _judge(self, feed: Feed, heads: dict[str, StreamHead], seq: int, event: EnvelopeRow
               ) -> tuple[Verdict, str | None]:
        """Apply, skip as a duplicate of its stream's head, or refuse (its hash does not recompute, or it does not
        continue its stream: a dead letter, with why)."""
        if self.refused and (wrong := self.refused.get(str(event.event_id))):
            verdict = Continuity(Verdict.REFUSE, f"hash {wrong.computed} from its fields", f"hash {wrong.stored}")
        else:
            until = self.checked.get(feed.stream)
            verdict = check(heads.get(event.stream_id, NO_HEAD), event,
                            recompute=until is None or (event.tx_id, event.position) > (until.tx_id, until.position))
        if verdict.verdict is Verdict.REFUSE:
            error = verdict.error(event)
            self._refusals += 1
            if self._refusals <= LOGGED_REFUSALS:  # a cut stream refuses all its later events: the first tell
                self.log.error("event refused: it does not continue its stream", stream=feed.stream,
                               stream_id=event.stream_id, version=event.version, stream_seq=seq,
                               expected=error.expected, got=error.got)
            return Verdict.REFUSE, describe(error)
        return verdict.verdict, None

    async def _dead_letter(self, target: Any, feed: Feed, seq: int, error: str, row: Any) -> None:
        if self.part is not None:  # a part knows its own events only: the letter's sequence is counted in the log
            await target.execute(
                f"INSERT INTO {self.shadow}.dead_letters (consumer, stream, stream_seq, error, body)"
                f" VALUES ($1, $2, {seq_of_sql(feed.service, 5, 6)}, $3, $4) ON CONFLICT DO NOTHING",
                self.durable, feed.stream, error, StoredRow(**row).envelope_json(feed.service), str(row["tx_id"]),
                row["position"])
            return
        await target.execute(
            f"INSERT INTO {self.shadow}.dead_letters (consumer, stream, stream_seq, error, body)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            self.durable, feed.stream, seq, error, StoredRow(**row).envelope_json(feed.service))

    async def _apply(self, conn: asyncpg.Connection, feed: Feed, heads: dict[str, StreamHead], seq: int,
                     rows: list[Any], events: list[EnvelopeRow]) -> tuple[dict[str, StreamHead], int, int]:
        """The batch one savepoint per event: an event its projection cannot store is dead-lettered and passed."""
        heads = dict(heads)
        moved: dict[str, StreamHead] = {}
        applied = letters = 0
        for i, (row, event) in enumerate(zip(rows, events, strict=True)):
            n = seq + i + 1
            verdict, why = self._judge(feed, heads, n, event)
            if verdict is Verdict.REFUSE:
                await self._dead_letter(conn, feed, n, str(why), row)
                letters += 1
                continue
            if verdict is Verdict.DUPLICATE:
                continue
            try:
                async with conn.transaction():  # savepoint: a failing event leaves no trace
                    await feed.handler.apply(conn, event)
                applied += 1
            except Exception as exc:
                self.log.error("event dead-lettered in the rebuild", stream=feed.stream, stream_seq=n,
                               error=describe(exc))
                await self._dead_letter(conn, feed, n, describe(exc), row)
                letters += 1
            heads[event.stream_id] = moved[event.stream_id] = StreamHead(event.version, event.hash)
        await self._save(conn, feed, seq, rows, moved)
        return heads, applied, letters

    async def _save(self, conn: asyncpg.Connection, feed: Feed, seq: int, rows: list[Any],
                    moved: dict[str, StreamHead]) -> None:
        """The checkpoint, the heads that moved and the read cursor, in the batch's transaction."""
        last = rows[-1]
        seq += len(rows)
        if self.part is not None:  # a part's place and heads; the checkpoint moves when all parts are done
            await conn.execute(
                f"WITH heads AS ({heads_upsert_sql(self.shadow, 3)}) UPDATE {self.shadow}.rebuild_part"
                " SET tx_id = $6, position = $7, done = $8 WHERE stream = $2 AND part = $9",
                self.durable, feed.stream, *head_columns(moved), last["tx_id"], last["position"], seq,
                self.part.part)
            return
        await save_position(conn, self.shadow, self.durable, feed.stream, seq, moved)
        await self._save_cursor(conn, feed.stream, Checkpoint(last["tx_id"], last["position"]), seq,
                                last["event_id"])

    async def _save_cursor(self, conn: asyncpg.Connection, stream: str, at: Checkpoint, seq: int, event_id: Any
                           ) -> None:
        await conn.execute(
            f"INSERT INTO {self.shadow}.rebuild_cursor (stream, tx_id, position, stream_seq, event_id)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream) DO UPDATE SET tx_id = $2, position = $3,"
            " stream_seq = $4, event_id = $5",
            stream, at.tx_id, at.position, seq, event_id)

    # ---- the swap ---------------------------------------------------------------------------------------------

    async def check_numbering(self) -> None:
        """The stream's message at the shadow's checkpoint must be the event the shadow read last: otherwise the
        stream is not numbered like the log (republished from elsewhere) and the checkpoints would not fit it."""
        if self.js is None:
            return
        for feed in self.feeds:
            place = self.places[feed.stream]
            if not place.seq:
                continue
            try:
                msg = await self.js.get_msg(feed.stream, seq=place.seq, direct=True)
            except NotFoundError:
                self.log.warning("rebuild: the stream no longer holds the message to compare (purged)",
                                 stream=feed.stream, stream_seq=place.seq)
                continue
            try:
                got = str(orjson.loads(msg.data)["event_id"])
            except (ValueError, KeyError, TypeError):
                got = None
            if got != place.last_event_id:
                raise RebuildError(
                    f"消息流 {feed.stream} 的编号与日志不符，请先运行 `gongdi verify`，查明后再 `gongdi repair-stream"
                    f" {feed.service}` ({feed.stream} message {place.seq} is event {got}, the log's event {place.seq}"
                    f" is {place.last_event_id}: the stream is not numbered like the log)")

    async def swap(self) -> bool:
        """In one transaction: hold back the live consumer and every query (locks), apply the last events up to the
        live checkpoints, check that the checkpoints are equal, put the shadow in the live schema's place with the
        service role's rights, and drop the old one. False when the locks were not free at once (try again)."""
        saved = {s: Place(p.after, p.seq, dict(p.heads), p.last_event_id) for s, p in self.places.items()}
        counted = (self.outcome.applied, self.outcome.dead_letters, self.outcome.batches)
        retired = f"{self.live}_retired"
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                # The checkpoint table first: the consumer takes it first in every batch, so a batch under way
                # finishes, and the next one waits here, holding nothing else.
                await conn.execute(f"LOCK TABLE {self.live}.consumer_checkpoint IN ACCESS EXCLUSIVE MODE")
                tables = [r["tablename"] for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", self.live)]
                # Every table now, before any change: a query holding one while waiting for another would
                # otherwise deadlock with the drop below. Queries wait (briefly) and then read the new tables.
                await conn.execute(f"LOCK TABLE {', '.join(f'{self.live}.{t}' for t in tables)}"
                                   " IN ACCESS EXCLUSIVE MODE")
                locked = time.perf_counter()
                limits = await self.live_positions(conn)
                await self.advance(limits, conn)
                theirs = await self.live_positions(conn)
                ours = {r["stream"]: r["stream_seq"] for r in await conn.fetch(
                    f"SELECT stream, stream_seq FROM {self.shadow}.consumer_checkpoint WHERE consumer = $1",
                    self.durable)}
                if any(ours.get(s, 0) != n for s, n in theirs.items()):
                    raise RebuildError(f"追上在用视图后检查点不一致：日志中的事件少于流中的 (checkpoints differ after"
                                       f" the catch-up: live {theirs}, rebuilt {ours}); 请运行 `gongdi verify`")
                await self._refuse_new_letters(conn)
                await conn.execute(f"DROP TABLE {self.shadow}.rebuild_cursor, {self.shadow}.rebuild_part")
                await conn.execute(f"ALTER SCHEMA {self.live} RENAME TO {retired}")
                await conn.execute(f"ALTER SCHEMA {self.shadow} RENAME TO {self.live}")
                await grant_service_role(conn, self.live, None)
                await conn.execute(f"DROP SCHEMA {retired} CASCADE")
            held = time.perf_counter() - locked  # from the locks to the commit
        except BaseException as exc:
            # Rolled back: the shadow is where it was before, and so must be what this process knows of it.
            self.places = saved
            self.outcome.applied, self.outcome.dead_letters, self.outcome.batches = counted
            if isinstance(exc, (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError)):
                return False
            raise
        self.outcome.swapped = True
        self.outcome.held = held
        return True

    async def _refuse_new_letters(self, conn: asyncpg.Connection) -> None:
        """Raise `LettersRefused` when the shadow dead-lettered events the live consumer applied (unless accepted,
        then counted in `Outcome.dropped`): swapped in, the views would silently drop what they show now."""
        first = await conn.fetchrow(
            f"SELECT count(*) OVER () AS n, s.body, s.error FROM {self.shadow}.dead_letters AS s"
            f" WHERE s.consumer = $1 AND NOT EXISTS (SELECT FROM {self.live}.dead_letters AS l"
            "  WHERE l.consumer = s.consumer AND l.stream = s.stream AND l.stream_seq = s.stream_seq)"
            " ORDER BY s.stream, s.stream_seq LIMIT 1", self.durable)
        if first is not None and not self.accept_letters:
            raise LettersRefused(self.live, first["n"], first["body"], first["error"])
        self.outcome.dropped = 0 if first is None else first["n"]

    # ---- a long stretch split into parts (gongdi.bus.parts) ------------------------------------------------------

    async def split(self, ends: dict[str, int], limits: dict[str, int] | None) -> None:
        """Each source whose projection lets streams commute and which has at least `split_from` events to read up
        to `ends` (or a split a killed rebuild left) is read up to there by parts in processes of their own."""
        probe = await self.pool.fetchval(PROBE_SQL)
        for feed in self.feeds:
            if not getattr(feed.handler, "streams_commute", False):
                continue
            parts = [Part.from_row(r) for r in await self.pool.fetch(
                f"SELECT * FROM {self.shadow}.rebuild_part WHERE stream = $1 ORDER BY part", feed.stream)]
            place = self.places[feed.stream]
            if any(p.cut == CUT and p.probe != probe for p in parts):
                raise RebuildError(f"数据库分流方式与这次重建开始时不同（PostgreSQL 升级了？），请加 --fresh 重新运行"
                                   f" (the server cuts event streams otherwise than when this rebuild of {feed.stream}"
                                   " began)")
            if not parts and ends[feed.stream] - place.seq >= max(1, self.split_from):
                until = await self._split_end(feed, place, None if limits is None else limits[feed.stream])
                if until is None:
                    continue
                n = self.parts or parts_wanted()
                parts = [Part(feed.stream, k, n, place.after, place.seq, until, place.after, probe=probe)
                         for k in range(n)]
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.executemany(insert_parts_sql(self.shadow), [p.values() for p in parts])
                self.log.info("rebuild split", stream=feed.stream, parts=n, events=ends[feed.stream] - place.seq)
            if parts:
                await self._run_parts(feed, parts)
                await self._merge(feed)

    async def _split_end(self, feed: Feed, place: Place, limit: int | None) -> Checkpoint | None:
        """Where the parts stop: the log's gap-safe end now, or the `limit`-th event (the live consumer's)."""
        if limit is None:
            end = await log_end(self.pool, feed.service)
        else:
            row = await self.pool.fetchrow(
                f"""SELECT e.tx_id::text::bigint AS tx_id, e.position FROM {feed.service}.events AS e
                    WHERE (e.tx_id, e.position) > ($1::text::xid8, $2)
                      AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
                    ORDER BY e.tx_id, e.position OFFSET $3 LIMIT 1""",
                str(place.after.tx_id), place.after.position, limit - place.seq - 1)
            end = None if row is None else Checkpoint(row["tx_id"], row["position"])
        if end is None or (end.tx_id, end.position) <= (place.after.tx_id, place.after.position):
            return None
        return end

    async def _run_parts(self, feed: Feed, parts: list[Part]) -> None:
        request = {"dsn": self.dsn, "live": self.live, "shadow": self.shadow, "durable": self.durable,
                   "version": self.version, "feed": feed, "batch": self.batch}
        running: list[PartProcess] = []
        finished = sum(p.done for p in parts if p.finished)

        def changed() -> None:
            self._parted[feed.stream] = finished + sum(r.counted.done for r in running)
            self._report()

        try:  # a part started before a later one failed to start is stopped too
            for part in parts:
                if not part.finished:
                    running.append(await PartProcess.start(part, request))
            counted = await asyncio.gather(*(r.follow(changed) for r in running))
        finally:
            for r in running:
                r.stop()
        self.outcome.applied += sum(c.applied for c in counted)
        self.outcome.dead_letters += sum(c.letters for c in counted)

    async def _merge(self, feed: Feed) -> None:
        """All parts read to their end: in one transaction the shadow's checkpoint and cursor move past the stretch
        (the stream sequence counted in the log) and the parts are gone."""
        async with self.pool.acquire() as conn, conn.transaction():
            parts = [Part.from_row(r) for r in await conn.fetch(
                f"SELECT * FROM {self.shadow}.rebuild_part WHERE stream = $1 ORDER BY part FOR UPDATE", feed.stream)]
            first = parts[0]
            if len(parts) != first.parts or not all(p.finished for p in parts):
                raise RebuildError(f"重建的分段未全部完成，请再运行一次 (the parts of the rebuild of {feed.stream} did"
                                   " not all reach their end)")
            counted = await conn.fetchval(
                f"""SELECT count(*) FROM {feed.service}.events AS e WHERE (e.tx_id, e.position) > ($1::text::xid8, $2)
                    AND (e.tx_id, e.position) <= ($3::text::xid8, $4)""",
                str(first.start.tx_id), first.start.position, str(first.until.tx_id), first.until.position)
            if counted != sum(p.done for p in parts):
                raise RebuildError(f"重建的分段读到的事件数与日志不符，请运行 `gongdi verify` (the parts of the"
                                   f" rebuild of {feed.stream} read {sum(p.done for p in parts)} events; the log"
                                   f" holds {counted} in their stretch)")
            last = await conn.fetchval(f"SELECT event_id FROM {feed.service}.events WHERE position = $1",
                                       first.until.position)
            seq = first.start_seq + counted
            await save_position(conn, self.shadow, self.durable, feed.stream, seq, {})
            await self._save_cursor(conn, feed.stream, first.until, seq, last)
            await conn.execute(f"DELETE FROM {self.shadow}.rebuild_part WHERE stream = $1", feed.stream)
            heads = await self._heads(conn, feed.stream)
        self.places[feed.stream] = Place(first.until, seq, heads, str(last))
        self._parted.pop(feed.stream, None)

    async def run_part(self) -> Outcome:
        """In a part's process (`self.part`): read, check and project the part to its end."""
        assert self.part is not None
        feed = self.feeds[0]
        async with self.pool.acquire() as conn:
            heads = await self._heads(conn, feed.stream)
        self.places = {feed.stream: Place(self.part.after, self.part.done, heads)}
        with relaxed_collector():
            await self._advance(feed, None)
        # Read to its end: its place is the stretch's end (its own last event may lie before it).
        await self.pool.execute(f"UPDATE {self.shadow}.rebuild_part SET tx_id = $3, position = $4"
                                " WHERE stream = $1 AND part = $2", feed.stream, self.part.part,
                                self.part.until.tx_id, self.part.until.position)
        return self.outcome

    # ---- the hash check apart ----------------------------------------------------------------------------------

    async def _start_checks(self) -> None:
        """Hand the recomputing of hashes, up to each log's end as it is now, to a process of its own; the events
        after that end are checked here, as they come."""
        assert self.dsn is not None
        for feed in self.feeds:
            until = await log_end(self.pool, feed.service)
            if until is not None:
                self.checked[feed.stream] = until
                self._checks[feed.stream] = await Checking.start(self.dsn, feed.service, until)

    async def _checks_failed(self) -> bool:
        """Wait for the checking process; True when the shadow applied an event whose hash it found wrong (so the
        shadow is made afresh, refusing those events as dead letters, as a check here would have)."""
        applied_wrong = False
        for stream, checking in list(self._checks.items()):
            place = self.places[stream]
            for wrong in await checking.result():
                self.refused[wrong.event_id] = wrong
                self.log.error("event refused: its hash does not recompute", stream=stream, event_id=wrong.event_id,
                               stored=wrong.stored, computed=wrong.computed)
                applied_wrong |= (wrong.place.tx_id, wrong.place.position) <= (place.after.tx_id,
                                                                               place.after.position)
            del self._checks[stream]
        if applied_wrong:
            self.log.warning("rebuild: starting afresh without the events whose hash does not recompute",
                             shadow=self.shadow, events=len(self.refused))
            await self.open(fresh=True)
            self.outcome.applied = self.outcome.dead_letters = 0
        return applied_wrong

    # ---- all of it --------------------------------------------------------------------------------------------

    async def _fill(self, fresh: bool, swap: bool) -> None:
        await self.open(fresh)
        while True:
            limits = await self.live_positions() if swap else None
            ends = limits or await self.log_sizes()
            self.total = sum(ends.values())
            before = self.done
            if self.dsn:
                await self.split(ends, limits)
            if self.dsn and not self.checked and self.total - self.done >= self.check_apart:
                await self._start_checks()
            await self.advance(limits)
            if swap:
                behind = sum((await self.live_positions()).values()) - self.done
                if behind > SWAP_WITHIN:
                    if self.done == before:
                        raise RebuildError(f"日志比在用视图已处理的少 {behind} 条事件，请运行 `gongdi verify` (the"
                                           f" logs end {behind} events before the live consumer's checkpoints:"
                                           " the stream is not numbered like the log)")
                    continue
            if await self._checks_failed():
                continue
            if not swap:
                return
            await self.check_numbering()
            if await self.swap():
                return
            await asyncio.sleep(0.05)  # the locks were busy: a moment for the queries, then again

    async def run(self, fresh: bool = False, swap: bool = True) -> Outcome:
        """Open (or take up) the shadow, fill it, and with `swap` catch up with the live consumer and swap."""
        started = time.perf_counter()
        async with self.pool.acquire() as guard:
            # One rebuild of a schema at a time; the lock goes with the session, so a killed rebuild frees it.
            if not await guard.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"gongdi-rebuild-{self.live}"):
                raise RebuildError(f"{self.live} 已有一个重建在运行 (a rebuild of {self.live} is already running)")
            try:
                if swap and not await guard.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", self.live):
                    raise RebuildError(f"模式 {self.live} 不存在，请先运行 `gongdi setup` (schema {self.live} does"
                                       " not exist)")
                with relaxed_collector():
                    await self._fill(fresh, swap)
            finally:
                for checking in self._checks.values():
                    checking.stop()
                await guard.execute("SELECT pg_advisory_unlock(hashtext($1))", f"gongdi-rebuild-{self.live}")
        self.outcome.events = self.done
        self.outcome.seconds = time.perf_counter() - started
        if self.progress:
            self.progress(self.done, max(self.total, self.done))
        return self.outcome


@contextmanager
def relaxed_collector() -> Iterator[None]:
    """A rebuild allocates millions of short-lived objects and makes no cycles worth collecting at once. The
    collector's youngest generation counts objects made and not yet freed, and a batch in flight holds some 100,000
    of them (rows, events, queued writes): at the default threshold the collector spent a quarter of the rebuild's
    time, at 50,000 still a tenth (2 µs an event, measured with `gc.callbacks`). At a million it runs only when
    objects pile up beyond the batches in flight."""
    before = gc.get_threshold()
    gc.set_threshold(1_000_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)

"""A long rebuild of one source split by event stream into parts, each rebuilt by a process of its own.

A projection whose events of different streams touch different rows (`streams_commute`) can take the streams in
any interleaving, each stream in its order. So the stretch of a log from the shadow's place to a fixed end is cut
by stream id into parts, and each part is read, checked (hashes recomputed) and projected by its own process
(`python -m gongdi.bus.rebuildpart`) into the same shadow: the machine's cores all project, and every event is read
once (a rebuild in one process spent a second read on the hash check). Each part's place, the stream heads it moved
and its writes go in one transaction per batch, so a killed rebuild takes each part up where it stopped. When all
parts reached the end, the shadow's checkpoint moves past the stretch at once (`ShadowRebuild._merge`).
"""
from __future__ import annotations

import asyncio
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from gongdi.store.base import Checkpoint
from gongdi.store.postgres import SELECT_LIST

SPLIT_FROM = 20_000  # events to read from which a source is split (a part's process starts in about a second)
# The planner, which cannot estimate the part's share, chose a scan of the whole log and a sort for every batch
# (EXPLAIN: seconds a batch on a million events); a part's reader has only the ordered index left to choose.
READER_SETTINGS = {"enable_seqscan": "off", "enable_sort": "off", "enable_bitmapscan": "off"}


def parts_wanted() -> int:
    """One part per core (two at least: with one the split would only add a process), four at most: beyond that
    the database's own work, not the projecting, is what the rebuild waits for."""
    return max(2, min(4, os.cpu_count() or 2))


# How a stream id is cut into a part: a number of 0–255 from the id that a database keeps giving (a killed rebuild's
# parts must be the same when it goes on), taken modulo the parts. A part keeps the cut it was made with.
# 1: the first byte of the id's SHA-256 (the first release of the split). 2: the low byte of `hashtextextended`,
# which PostgreSQL keeps across releases (hash-partitioned tables rely on it through pg_upgrade); each part passes
# over every row of the stretch, and this costs the server ~0.2 µs a row against ~0.5 (measured).
CUTS = {1: "get_byte(sha256(convert_to(e.stream_id, 'UTF8')), 0)", 2: "(hashtextextended(e.stream_id, 0) & 255)"}
CUT = 2
# What the server's `hashtextextended` gives for a fixed text, kept with each part: a rebuild taken up on a server
# whose function gives another (a PostgreSQL that changed it, after an upgrade) would cut the streams otherwise.
PROBE_SQL = "SELECT hashtextextended('gongdi rebuild part', 0)"


def part_table_sql(schema: str) -> str:
    """The parts' table; a table made before cuts were kept gets the column, its parts the first cut."""
    return f"""CREATE TABLE IF NOT EXISTS {schema}.rebuild_part (
        stream text NOT NULL, part int NOT NULL, parts int NOT NULL,
        start_tx bigint NOT NULL, start_position bigint NOT NULL, start_seq bigint NOT NULL,
        until_tx bigint NOT NULL, until_position bigint NOT NULL,
        tx_id bigint NOT NULL, position bigint NOT NULL, done bigint NOT NULL,
        PRIMARY KEY (stream, part));
        ALTER TABLE {schema}.rebuild_part ADD COLUMN IF NOT EXISTS cut int NOT NULL DEFAULT 1;
        ALTER TABLE {schema}.rebuild_part ADD COLUMN IF NOT EXISTS probe bigint"""


@dataclass(frozen=True)
class Part:
    """The events of one source's log after `start` (then at stream sequence `start_seq`) and up to `until` whose
    stream id falls in part `part` of `parts`; `after` is how far it was read, `done` how many of its events."""

    stream: str
    part: int
    parts: int
    start: Checkpoint
    start_seq: int
    until: Checkpoint
    after: Checkpoint
    done: int = 0
    cut: int = CUT
    probe: int | None = None  # `PROBE_SQL`'s answer when the part was made (cut 2)

    @classmethod
    def from_row(cls, row: Any) -> Part:
        return cls(row["stream"], row["part"], row["parts"], Checkpoint(row["start_tx"], row["start_position"]),
                   row["start_seq"], Checkpoint(row["until_tx"], row["until_position"]),
                   Checkpoint(row["tx_id"], row["position"]), row["done"], row["cut"], row["probe"])

    def values(self) -> tuple[Any, ...]:
        return (self.stream, self.part, self.parts, self.start.tx_id, self.start.position, self.start_seq,
                self.until.tx_id, self.until.position, self.after.tx_id, self.after.position, self.done, self.cut,
                self.probe)

    @property
    def finished(self) -> bool:
        return (self.after.tx_id, self.after.position) >= (self.until.tx_id, self.until.position)


def insert_parts_sql(schema: str) -> str:
    return (f"INSERT INTO {schema}.rebuild_part (stream, part, parts, start_tx, start_position, start_seq, until_tx,"
            " until_position, tx_id, position, done, cut, probe)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")


def in_part(cut: int, parts_param: int, part_param: int) -> str:
    """Whether an event's stream is in the part, by the part's cut."""
    return f"{CUTS[cut]} % ${parts_param} = ${part_param}"


async def read_part(conn: asyncpg.Connection, service: str, part: Part, after: Checkpoint, limit: int
                    ) -> list[asyncpg.Record]:
    """The next `limit` events of the part after `after`, in the log's order (on a reader with `READER_SETTINGS`)."""
    return await conn.fetch(
        f"""SELECT {SELECT_LIST} FROM {service}.events AS e
            WHERE (e.tx_id, e.position) > ($1::text::xid8, $2) AND (e.tx_id, e.position) <= ($3::text::xid8, $4)
              AND {in_part(part.cut, 5, 6)}
            ORDER BY e.tx_id, e.position LIMIT $7""",
        str(after.tx_id), after.position, str(part.until.tx_id), part.until.position, part.parts, part.part, limit)


def seq_of_sql(service: str, tx_param: int, position_param: int) -> str:
    """An event's stream sequence, by its place in the log: the events up to it (a part's process knows only its
    own events; wanted for a dead letter, which is rare)."""
    return (f"(SELECT count(*) FROM {service}.events AS e WHERE (e.tx_id, e.position) <="
            f" (${tx_param}::text::xid8, ${position_param}))")


class PartError(RuntimeError):
    """A part's process failed (its own output on standard error says why); the parts go on when the rebuild is
    run again."""


@dataclass
class Counted:
    """What a part's process reported: its events read in all, and what this run applied and dead-lettered."""

    done: int = 0
    applied: int = 0
    letters: int = 0


class PartProcess:
    """A part's process under way, told what to do on its standard input (a pickle: the projection goes along, and
    no password shows in a process list); it writes a line per batch: `done applied letters batches`."""

    def __init__(self, proc: asyncio.subprocess.Process, part: Part):
        self._proc = proc
        self.part = part
        self.counted = Counted(part.done)

    @classmethod
    async def start(cls, part: Part, request: dict[str, Any]) -> PartProcess:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gongdi.bus.rebuildpart",
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps({**request, "part": part, "parent": os.getpid()}))
        await proc.stdin.drain()
        proc.stdin.close()
        return cls(proc, part)

    async def follow(self, changed: Callable[[], None]) -> Counted:
        """Read its lines until it ends, calling `changed()` after each; what it counted, or `PartError`."""
        assert self._proc.stdout is not None
        async for line in self._proc.stdout:
            done, applied, letters = (int(x) for x in line.split())
            self.counted = Counted(done, applied, letters)
            changed()
        if await self._proc.wait() != 0:
            raise PartError(f"part {self.part.part + 1} of {self.part.parts} of the rebuild of {self.part.stream}"
                            f" ended with exit code {self._proc.returncode}")
        return self.counted

    def stop(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()

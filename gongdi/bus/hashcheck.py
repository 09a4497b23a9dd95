"""The rebuild's hash check in a process of its own: every event of a stretch of a writer's log recomputed from its
fields while the rebuild projects the same events (recomputing them was a third of the projecting process's work;
the machine's second core takes it)."""
from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from dataclasses import dataclass

import asyncpg
import orjson

from gongdi.bus.continuity import own_hash
from gongdi.bus.logread import decode, read_log
from gongdi.store.base import Checkpoint

BATCH = 5000
PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


@dataclass(frozen=True)
class Mismatch:
    """An event whose stored hash is not the one its fields give: where it lies in the log, and both hashes."""

    event_id: str
    place: Checkpoint
    stored: str
    computed: str


class HashCheckError(RuntimeError):
    """The checking process failed (its own output on standard error says why)."""


class Checking:
    """A checking process under way (`python -m gongdi.bus.hashcheck`, told what to check on its standard input,
    so that no password shows in a process list): `result()` waits for it, `stop()` ends it early."""

    def __init__(self, proc: asyncio.subprocess.Process, request: bytes):
        self._proc = proc
        self._answer = asyncio.ensure_future(proc.communicate(request))

    @classmethod
    async def start(cls, dsn: str, service: str, until: Checkpoint) -> Checking:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gongdi.bus.hashcheck",
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(proc, orjson.dumps({"dsn": dsn, "service": service, "until": [until.tx_id, until.position],
                                       "parent": os.getpid()}))

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def result(self) -> list[Mismatch]:
        out, _ = await self._answer
        if self._proc.returncode != 0:
            raise HashCheckError(f"the hash check ended with exit code {self._proc.returncode}")
        return [Mismatch(m["event_id"], Checkpoint(*m["place"]), m["stored"], m["computed"])
                for m in orjson.loads(out)]

    def stop(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
        self._answer.cancel()


async def check(dsn: str, service: str, until: Checkpoint) -> list[Mismatch]:
    """The events of `service`'s log up to `until` whose hash does not recompute from their fields."""
    conn = await asyncpg.connect(dsn)
    try:
        found: list[Mismatch] = []
        after = Checkpoint()
        while rows := await read_log(conn, service, after, BATCH, until):
            for row in rows:
                event = decode(row, service)
                computed = own_hash(event)
                if computed != event.hash:
                    found.append(Mismatch(str(event.event_id), Checkpoint(row["tx_id"], row["position"]),
                                          event.hash, computed))
            after = Checkpoint(rows[-1]["tx_id"], rows[-1]["position"])
        return found
    finally:
        await conn.close()


def end_with_parent(parent: int) -> None:
    """A rebuild killed with -9 takes its check with it, rather than leaving it to read its whole stretch first
    (Linux; elsewhere the check ends when it writes its answer to the closed pipe)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the signal was asked for
        raise SystemExit("the rebuild that started this check has ended")


def main() -> None:
    request = orjson.loads(sys.stdin.buffer.read())
    end_with_parent(request["parent"])
    found = asyncio.run(check(request["dsn"], request["service"], Checkpoint(*request["until"])))
    sys.stdout.buffer.write(orjson.dumps([
        {"event_id": m.event_id, "place": [m.place.tx_id, m.place.position], "stored": m.stored,
         "computed": m.computed} for m in found]))


if __name__ == "__main__":
    main()

"""Chaos on progress: SIGKILL service processes when the work reaches set counts, never on the wall clock.

A test names its victims and the counts to kill at, then reports progress: `await chaos.progress()` after each
completed reply, or `await chaos.watch(count)` to follow a count read elsewhere (events applied). Each threshold
kills exactly once, so a test asserts `len(chaos.kills) == len(thresholds)`; thresholds well below the total make
every kill land while the work is still in flight. A victim is killed only once it runs again and, if the test gives
a probe for it, answers (so that kill cannot land on a process still starting). Deadlines here only bound a wait;
they never trigger a kill.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import nats.errors

from gongdi.ops.client import GongdiClient
from gongdi.ops.supervisor import Child, Server, Supervisor

Probe = Callable[[], Awaitable[bool]]


def _victims(sup: Supervisor) -> dict[str, Child | Server]:
    """What a test may kill: the platform's processes and the servers the supervisor watches."""
    return {c.name: c for c in sup.children} | {w.server.name: w.server for w in sup.servers}


def _child(sup: Supervisor, name: str) -> Child | Server:
    return _victims(sup)[name]


def _alive(sup: Supervisor, name: str) -> bool:
    child = _child(sup, name)
    return child.proc is not None and child.proc.poll() is None


def views_answer(client: GongdiClient) -> Probe:
    """A probe: the views answer a query, which they do only once their consumers have started."""
    async def probe() -> bool:
        try:
            return (await client.query("views", "city"))["ok"]
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return False

    return probe


async def revive(sup: Supervisor, name: str, within: float = 90.0) -> None:
    """Turn the supervisor until `name` runs again. Its back-off reaches 30 s, so `within` is generous."""
    deadline = time.monotonic() + within
    while True:
        sup.check()
        if _alive(sup, name):
            return
        assert time.monotonic() < deadline, f"{name} did not restart within {within:.0f}s"
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Kill:
    victim: str
    threshold: int
    seen: int  # the progress count when the kill landed


class KillOnProgress:
    """SIGKILL the victims in turn, one per threshold crossed, and have the supervisor bring each back."""

    def __init__(self, sup: Supervisor, victims: Sequence[str], at: Sequence[int],
                 ready: Mapping[str, Probe] | None = None, revive_within: float = 90.0):
        assert victims and at and list(at) == sorted(set(at)) and at[0] > 0, (victims, at)
        names = set(_victims(sup))
        assert set(victims) <= names, f"unknown victims {set(victims) - names}"
        self.sup = sup
        self.victims = list(victims)
        self.at = list(at)
        self.ready = dict(ready or {})
        self.revive_within = revive_within
        self.count = 0
        self.kills: list[Kill] = []
        self._claimed = 0  # thresholds already taken by a caller
        self._lock = asyncio.Lock()

    @property
    def done(self) -> bool:
        return len(self.kills) == len(self.at)

    async def progress(self, n: int = 1) -> None:
        """`n` more units of work completed (e.g. one reply)."""
        await self.reached(self.count + n)

    async def reached(self, count: int) -> None:
        """The work has reached `count`; kill once for every threshold this crosses."""
        self.count = max(self.count, count)
        due = []
        while self._claimed < len(self.at) and self.at[self._claimed] <= self.count:
            due.append(self._claimed)
            self._claimed += 1
        for i in due:
            async with self._lock:  # one kill and its restart at a time
                await self._kill(i)

    async def watch(self, count: Callable[[], Awaitable[int]], within: float = 300.0) -> None:
        """Follow a count read elsewhere until every threshold has killed; `within` bounds the whole run."""
        deadline = time.monotonic() + within
        while not self.done:
            await self.reached(await count())
            assert time.monotonic() < deadline, f"progress stuck at {self.count}; kills {self.kills}"
            await asyncio.sleep(0.01)  # polling interval of the count, not a trigger

    async def _kill(self, i: int) -> None:
        name = self.victims[i % len(self.victims)]
        await revive(self.sup, name, self.revive_within)  # still down from an earlier kill: bring it back first
        if name in self.ready:
            deadline = time.monotonic() + self.revive_within
            while not await self.ready[name]():
                assert time.monotonic() < deadline, f"{name} runs but does not answer"
                self.sup.check()
                await asyncio.sleep(0.05)
            await revive(self.sup, name, self.revive_within)
        child = _child(self.sup, name)
        os.kill(child.proc.pid, signal.SIGKILL)
        child.proc.wait(timeout=10)  # dead before the supervisor looks, or it would take it for alive
        self.kills.append(Kill(name, self.at[i], self.count))
        await revive(self.sup, name, self.revive_within)

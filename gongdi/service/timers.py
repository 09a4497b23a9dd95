"""Timers: commands a writing service gives itself when their day comes, on an injectable clock (docs: "Timers").

A service declares `Timers`: how to find, for a day, the commands that are due (each with a command id derived from
what it fires for). The runner fires them through the service's own pipeline at start and then every
`timer_interval` seconds. Nothing about a timer is kept in memory: what is due is read from the store each pass, and
the rules decide each firing against the state, so a restart, a crash between firing and recording, or a second
replica records each timer once (the command id guard, then the rules finding it no longer due).
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from contracts.base import Command
from contracts.errors import DomainError
from contracts.timeline import city_today
from gongdi.service.pipeline import CommandPipeline
from gongdi.service.settings import Settings

Clock = Callable[[], dt.date]


def clock(settings: Settings) -> Clock:
    """Today by the settings: GONGDI_TODAY fixes the day, GONGDI_CLOCK_OFFSET_DAYS moves it (tests, drills); by
    default the city's day (not the host's: a server on UTC is a day behind the city from 16:00). Only the timers
    read it: dates in commands are still checked against the real day."""
    fixed = dt.date.fromisoformat(settings.today) if settings.today else None
    offset = dt.timedelta(days=settings.clock_offset_days)
    return lambda: (fixed or city_today()) + offset


@dataclass(frozen=True)
class Timers:
    actor: str  # who the recorded events say recorded them, e.g. "timer:流动党员"
    # due(pool, day, sites): the commands due on `day`, on every site or (a list) on those only
    due: Callable[[asyncpg.Pool, dt.date, Sequence[str] | None], Awaitable[list[Command]]]


class TimerRunner:
    def __init__(self, timers: Timers, pool: asyncpg.Pool, pipeline: CommandPipeline, today: Clock,
                 interval: float, log: structlog.BoundLogger):
        self.timers = timers
        self.pool = pool
        self.pipeline = pipeline
        self.today = today
        self.interval = interval
        self.log = log
        self._touched: set[str] = set()
        self._wake = asyncio.Event()

    def touched(self, site: str) -> None:
        """A command was recorded on `site`: what it made due there fires now, not at the next pass."""
        self._touched.add(site)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """A pass at start (what came due while the service was down fires now), then one per interval, and the
        sites commands touched in between as soon as they are."""
        next_pass = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if loop.time() >= next_pass:
                self._touched.clear()  # a whole pass covers them
                await self.fire()
                next_pass = loop.time() + self.interval
            elif self._touched:
                sites, self._touched = sorted(self._touched), set()
                await self.fire(sites)
            self._wake.clear()
            if self._touched:
                continue
            stopping, woken = asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({stopping, woken}, timeout=max(0.0, next_pass - loop.time()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                woken.cancel()

    async def fire(self, sites: Sequence[str] | None = None) -> int:
        """One pass (over every site, or over `sites`): every due command through the pipeline; how many recorded
        events."""
        day = self.today()
        due = await self.timers.due(self.pool, day, sites)
        recorded = 0
        for command in due:
            try:
                refs = await self.pipeline.record(command, self.timers.actor)
            except DomainError as exc:  # one refused firing must not keep the others from theirs
                self.log.warning("timer refused", code=exc.code, command_id=str(command.command_id))
                continue
            recorded += len(refs or [])
        # Tests follow this line to know a pass has finished (progress, never a sleep); a pass over the sites
        # commands touched is said apart, as it is not the pass at start.
        if sites is None:
            self.log.info("timer pass", day=day.isoformat(), due=len(due), recorded=recorded)
        elif recorded:
            self.log.info("timers fired on command", sites=len(sites), due=len(due), recorded=recorded)
        return recorded

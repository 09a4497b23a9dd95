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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import structlog

from contracts.base import Command
from contracts.errors import DomainError
from gongdi.service.pipeline import CommandPipeline
from gongdi.service.settings import Settings

Clock = Callable[[], dt.date]


def clock(settings: Settings) -> Clock:
    """Today by the settings: GONGDI_TODAY fixes the day, GONGDI_CLOCK_OFFSET_DAYS moves it (tests, drills); by
    default the host's date. Only the timers read it: dates in commands are still checked against the host's."""
    fixed = dt.date.fromisoformat(settings.today) if settings.today else None
    offset = dt.timedelta(days=settings.clock_offset_days)
    return lambda: (fixed or dt.date.today()) + offset


@dataclass(frozen=True)
class Timers:
    actor: str  # who the recorded events say recorded them, e.g. "timer:流动党员"
    due: Callable[[asyncpg.Pool, dt.date], Awaitable[list[Command]]]


class TimerRunner:
    def __init__(self, timers: Timers, pool: asyncpg.Pool, pipeline: CommandPipeline, today: Clock,
                 interval: float, log: structlog.BoundLogger):
        self.timers = timers
        self.pool = pool
        self.pipeline = pipeline
        self.today = today
        self.interval = interval
        self.log = log

    async def run(self, stop: asyncio.Event) -> None:
        """A pass at start (what came due while the service was down fires now), then one per interval."""
        while not stop.is_set():
            await self.fire()
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                continue

    async def fire(self) -> int:
        """One pass: every due command through the pipeline; how many recorded events."""
        day = self.today()
        due = await self.timers.due(self.pool, day)
        recorded = 0
        for command in due:
            try:
                refs = await self.pipeline.record(command, self.timers.actor)
            except DomainError as exc:  # one refused firing must not keep the others from theirs
                self.log.warning("timer refused", code=exc.code, command_id=str(command.command_id))
                continue
            recorded += len(refs or [])
        # Tests follow this line to know a pass has finished (progress, never a sleep).
        self.log.info("timer pass", day=day.isoformat(), due=len(due), recorded=recorded)
        return recorded

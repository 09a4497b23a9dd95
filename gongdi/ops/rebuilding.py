"""The operator's view of a rebuild: a progress bar on stderr and the one-line result."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from gongdi.bus.shadow import Outcome


class ProgressBar:
    """`done/total`, rate and time left, redrawn in place at most `every` seconds (a batch takes milliseconds)."""

    def __init__(self, out: TextIO | None = None, every: float = 0.2, width: int = 30):
        self.out = out or sys.stderr
        self.every = every
        self.width = width
        self.started = time.monotonic()
        self.first: int | None = None  # what the shadow held at the first report: a resumed rebuild's start
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        final = total and done >= total
        if now - self.shown < self.every and not final:
            return
        self.shown = now
        self.out.write("\r" + bar_line(done, total, done - self.first, now - self.started, self.width))
        if final:
            self.out.write("\n")
        self.out.flush()


def bar_line(done: int, total: int, moved: int, seconds: float, width: int = 30) -> str:
    """One line of the bar; `moved` events in `seconds` give the rate and the time left."""
    total = max(total, done)
    filled = int(width * done / total) if total else width
    rate = moved / seconds if seconds > 0 else 0.0
    left = f"{(total - done) / rate:.0f}s" if rate > 0 else "?"
    return (f"重建 [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} 事件"
            f"  {rate:,.0f}/s  剩余 {left} ")


def result_line(schema: str, outcome: Outcome) -> str:
    """What a finished rebuild says, in the CLI's two languages."""
    resumed = (f"，续接已有的 {outcome.resumed_from:,} 条 (resumed after {outcome.resumed_from:,})"
               if outcome.resumed_from else "")
    swapped = (f"，已切换为在用视图，查询最多等待 {outcome.held * 1000:.0f} ms (swapped in; queries waited at most"
               f" {outcome.held * 1000:.0f} ms)" if outcome.swapped else "，未切换 (not swapped)")
    letters = f"，死信 {outcome.dead_letters} 条 (dead letters)" if outcome.dead_letters else ""
    return (f"已重建 {schema}: 应用 {outcome.applied:,} 条事件，用时 {outcome.seconds:.1f}s，"
            f"{outcome.rate:,.0f} 条/秒{resumed}{swapped}{letters}"
            f" (rebuilt {schema}: {outcome.applied:,} events applied in {outcome.seconds:.1f} s,"
            f" {outcome.rate:,.0f}/s)")

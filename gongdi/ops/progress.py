"""A progress bar on stderr for long work started from a terminal: a rebuild, an import."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """`done/total`, rate and time left, redrawn in place at most `every` seconds. Without `start`, the rate counts
    from the first report (a resumed rebuild's first report is what the shadow held already)."""

    def __init__(self, what: str, unit: str, start: int | None = None, out: TextIO | None = None,
                 every: float = 0.2, width: int = 30):
        self.what = what
        self.unit = unit
        self.first = start
        self.out = out or sys.stderr
        self.every = every
        self.width = width
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        final = total and done >= total
        if now - self.shown < self.every and not final:
            return
        self.shown = now
        self.out.write("\r" + bar_line(done, total, done - self.first, now - self.started, self.width, self.what,
                                       self.unit))
        if final:
            self.out.write("\n")
        self.out.flush()


def bar_line(done: int, total: int, moved: int, seconds: float, width: int = 30, what: str = "重建",
             unit: str = "事件") -> str:
    """One line of the bar; `moved` items in `seconds` give the rate and the time left."""
    total = max(total, done)
    filled = int(width * done / total) if total else width
    rate = moved / seconds if seconds > 0 else 0.0
    left = f"{(total - done) / rate:.0f}s" if rate > 0 else "?"
    return (f"{what} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} {unit}"
            f"  {rate:,.0f}/s  剩余 {left} ")

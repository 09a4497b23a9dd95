"""What `gongdi send` says while the platform is unreachable: one line redrawn in place on a terminal, a line every
few seconds in a log, and the outcome at the end."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

# A log (stderr not a terminal) gets a line at most this often: readable, yet showing the send is still trying.
LOG_EVERY = 5.0


class RetryNotice:
    """Told of each failed attempt (`__call__`), then of the outcome (`done`). On a terminal the waiting line is
    rewritten in place, short enough for 80 columns; in a log it is written at the first failure and then at most
    every `every` seconds. Nothing is said when the first attempt succeeds."""

    def __init__(self, out: TextIO, command_id: str, terminal: bool, every: float = LOG_EVERY,
                 clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.command_id = command_id
        self.terminal = terminal
        self.every = every
        self.clock = clock
        self.started = clock()
        self.failures = 0
        self.written: float | None = None  # when the last log line was written

    def __call__(self, exc: BaseException) -> None:
        self.failures += 1
        now = self.clock()
        waited = now - self.started
        if self.terminal:
            self._redraw(f"平台暂不可用，正在重试：第 {self.failures} 次，已等 {waited:.0f} 秒"
                         "（同一命令编号，不会重复记录）")
        elif self.written is None or now - self.written >= self.every:
            self.written = now
            self.out.write(f"平台暂不可用 ({type(exc).__name__})，已等 {waited:.0f} 秒；"
                           f"用同一命令编号 {self.command_id} 第 {self.failures} 次重试…"
                           " (unavailable; retrying with the same command id)\n")
            self.out.flush()

    def done(self, outcome: str) -> None:
        """The end of the wait: `sent` (answered), `gave_up` (the time ran out) or `interrupted` (Ctrl-C)."""
        if not self.failures:
            return
        waited = self.clock() - self.started
        if outcome == "sent":
            line = f"平台已恢复，命令已送达（重试 {self.failures} 次，用时 {waited:.0f} 秒） (sent after retrying)"
        elif outcome == "gave_up":
            line = (f"已放弃：平台 {waited:.0f} 秒内仍不可用（重试 {self.failures} 次）。命令编号 {self.command_id}；"
                    "重发时在内容中带上此 command_id，不会重复记录 (gave up)")
        else:
            line = (f"已中断（重试 {self.failures} 次）。命令编号 {self.command_id}；重发时在内容中带上此 command_id，"
                    "不会重复记录 (interrupted)")
        if self.terminal:
            self._redraw(line)
            self.out.write("\n")
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def _redraw(self, line: str) -> None:
        # \r back to the line's start, \x1b[K clears what a longer line before left behind.
        self.out.write(f"\r{line}\x1b[K")
        self.out.flush()

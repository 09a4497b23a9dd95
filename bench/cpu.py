"""CPU time of a stretch of a bench, per side: this process with the processes it started, and the database server.

On 2 cores a rebuild is bound by CPU, so where its CPU goes says more than its rate alone. Read from /proc (Linux;
elsewhere no figures): a process's own time and, once it has waited for them, its children's (`cutime`, `cstime`),
so a part process or a server backend that ended during the stretch is counted whole by its parent.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces): [0] is the state."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # ended meanwhile
        return None
    return text.rsplit(")", 1)[1].split()


def _own(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime, stime


def _waited(fields: list[str]) -> int:
    return int(fields[13]) + int(fields[14])  # cutime, cstime


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def tree_ticks(root: int, exe: str | None = None) -> int:
    """CPU ticks of `root`, its ended children it waited for, and its children running now (one level: a server's
    backends, a bench's part processes, which start none of their own); with `exe`, only the running children of
    that program (the bench's servers are its children too)."""
    fields = _stat(root)
    if fields is None:
        return 0
    total = _own(fields) + _waited(fields)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (child := _stat(int(entry.name))) is None or int(child[1]) != root:
            continue
        if exe is None or _exe(int(entry.name)) == exe:
            total += _own(child)
    return total


@dataclass(frozen=True)
class Sides:
    """Seconds of CPU: this bench process and its children; the database server's processes."""

    bench: float
    server: float


class CpuMeter:
    """`mark()` now, `since(mark)` the CPU of each side since then; None where /proc is not there."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid  # the postmaster: its backends are its children
        self.available = sys.platform.startswith("linux") and Path(f"/proc/{server_pid}/stat").exists()

    def mark(self) -> Sides | None:
        if not self.available:
            return None
        return Sides(tree_ticks(os.getpid(), _exe(os.getpid())) / TICK, tree_ticks(self.server_pid) / TICK)

    def since(self, mark: Sides | None) -> Sides | None:
        now = self.mark()
        if now is None or mark is None:
            return None
        return Sides(now.bench - mark.bench, now.server - mark.server)


def server_pid_of(backend_pid: int) -> int:
    """The postmaster of a backend (`SELECT pg_backend_pid()`): its parent."""
    fields = _stat(backend_pid)
    return int(fields[1]) if fields is not None else 0

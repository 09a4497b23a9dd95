"""The supervisor's account of its processes, in a file the gateway reads for /metrics and /health: which process
runs, how often it was restarted, since when one is down. (Under docker compose there is no such file: the
container engine restarts and counts.)"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

PROCESS_FILE = "processes.json"  # in the log folder, beside the processes' logs


class ProcessState(BaseModel):
    name: str
    running: bool
    restarts: int = 0  # times it ended and was started again, since the supervisor started
    ended: str | None = None  # how it ended last, in Chinese (gongdi.ops.supervisor.ended)
    down_since: float | None = None  # when it ended, while it is down (seconds since the epoch)
    job: bool = False  # a one-shot job: not running once done is what it should do


class Processes(BaseModel):
    supervisor: int  # the supervisor's pid
    processes: list[ProcessState]


def write(path: Path, processes: Processes) -> None:
    """Whole or not at all: written beside and renamed, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(processes.model_dump_json())
    partial.replace(path)


def read(path: str | Path) -> Processes | None:
    """None when there is no file (no supervisor: compose, or an operator's own process manager), it is not one this
    release wrote, or its supervisor is gone (killed: what it says is no longer looked after)."""
    if not path:
        return None
    try:
        found = Processes.model_validate_json(Path(path).read_bytes())
    except (OSError, ValidationError):
        return None
    return found if Path(f"/proc/{found.supervisor}").exists() else None

"""Runs the platform's service processes, reports a death and restarts the process with backoff."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# The platform's processes: (name, python module, argument).
PROCESSES = [
    ("membership", "services.membership", "serve"),
    ("membership-relay", "services.membership", "relay"),
    ("activities", "services.activities", "serve"),
    ("activities-relay", "services.activities", "relay"),
    ("liaison", "services.liaison", "serve"),
    ("liaison-relay", "services.liaison", "relay"),
    ("views", "services.views", "serve"),
]
WRITERS = ["membership", "activities", "liaison"]  # the services that record events, each in its own schema
SETUP_ORDER = [*(f"services.{w}" for w in WRITERS), "services.views"]


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    def __init__(self, env: dict[str, str], logdir: Path, say=print):
        self.env = {**os.environ, **env}
        self.logdir = logdir
        self.say = say
        self.children = [
            Child(name, [sys.executable, "-m", module, arg], logdir / f"{name}.log") for name, module, arg in PROCESSES
        ]

    def setup(self) -> list[str]:
        lines = []
        for module in SETUP_ORDER:
            out = subprocess.run([sys.executable, "-m", module, "setup"], env=self.env, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"setup of {module} failed:\n{out.stderr[-3000:]}")
            lines += out.stdout.splitlines()
        return lines

    def _start(self, child: Child) -> None:
        out = child.log.open("ab")
        child.proc = subprocess.Popen(child.argv, env=self.env, stdout=out, stderr=out, start_new_session=True)
        out.close()
        child.started_at = time.monotonic()

    def start(self) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._start(child)

    def check(self) -> None:
        """Restart any child that died; the delay doubles while it keeps dying young."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.next_start == 0.0:
                lived = now - child.started_at
                child.restarts = child.restarts + 1 if lived < 30 else 1
                delay = min(0.5 * 2 ** (child.restarts - 1), 30.0)
                self.say(f"!! {child.name} 退出 (exit {child.proc.returncode})，{delay:.1f}秒后重启；日志 {child.log}")
                child.next_start = now + delay
            elif now >= child.next_start:
                child.next_start = 0.0
                self._start(child)

    def stop(self) -> None:
        for child in self.children:
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in self.children:
            if child.proc:
                try:
                    child.proc.wait(15)
                except subprocess.TimeoutExpired:
                    child.proc.kill()

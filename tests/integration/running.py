"""Running the `gongdi` command as a user does: `up` in the background, one-shot commands, a clean stop."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GONGDI = [sys.executable, "-m", "gongdi"]


def start(home: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([*GONGDI, "--home", str(home), "up", *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env())


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}


def wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 120) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("".join(seen))


def gongdi(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GONGDI, "--home", str(home), *args], capture_output=True, text=True, env=_env(),
                          timeout=30)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(60)

"""The rebuild's checking process ends with the rebuild that started it, even one killed with -9."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# The rebuild's side: start a check, say its pid, then wait to be killed.
PARENT = """
import asyncio, sys
from gongdi.bus.hashcheck import Checking
from gongdi.store.base import Checkpoint

async def main():
    checking = await Checking.start(sys.argv[1], "membership", Checkpoint(0, 0))
    print(checking.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_a_check_ends_when_the_rebuild_is_killed():
    # A database that accepts and never answers: the check waits on it as it would on a long stretch of log.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(60)
        dsn = f"postgresql://nobody:nothing@127.0.0.1:{silent.getsockname()[1]}/none"
        parent = subprocess.Popen([sys.executable, "-c", PARENT, dsn], stdout=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).resolve().parents[2])
        checker = 0
        try:
            checker = int(parent.stdout.readline())
            connection, _ = silent.accept()  # the check has its request and is reading the log
            with connection:
                parent.send_signal(signal.SIGKILL)
                parent.wait(30)
                deadline = time.monotonic() + 30  # a bound on failure: it would otherwise wait a minute on us
                while not gone(checker):
                    assert time.monotonic() < deadline, "the check outlived the rebuild that started it"
                    time.sleep(0.05)
        finally:
            if parent.poll() is None:
                parent.kill()
            if checker and not gone(checker):
                os.kill(checker, signal.SIGKILL)

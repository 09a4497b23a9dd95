"""The state folder's lock: one `gongdi up` per folder, and no `reset` under a running one."""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

LOCK_FILE = ".gongdi-up.lock"  # kept by a reset: a lock on a deleted file would not stop a second `up`


class FolderInUse(Exception):
    """Another process holds the folder (its PID in `pid`, as it wrote it)."""

    def __init__(self, home: Path, pid: str):
        super().__init__(f"{home} 正由另一个 gongdi up 使用（PID {pid or '?'}）")
        self.home, self.pid = home, pid


def hold(home: Path) -> int:
    """An exclusive lock on `home`, held by the returned descriptor until it is closed or this process ends (the
    kernel frees it even after kill -9, so a stale one never blocks). Child processes do not inherit it."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise FolderInUse(home, pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def holder(home: Path) -> str | None:
    """The PID (as written) of the `gongdi up` holding `home`, or None when none does. Asks the lock itself, not the
    PID: a PID left in the file by an `up` that ended names no process of ours."""
    path = home / LOCK_FILE
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    finally:
        os.close(fd)  # closing frees a lock taken here
    return None


def release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def empty(home: Path) -> None:
    """Everything in `home` removed but its lock file (which the caller holds)."""
    if not home.exists():
        return
    for entry in home.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)

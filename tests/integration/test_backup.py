"""`gongdi backup` of a running platform and `gongdi restore` into a new folder, as an operator runs them."""
from __future__ import annotations

import json
import subprocess
import tarfile
import time
from pathlib import Path

from gongdi.demo import samples as f
from gongdi.ops.backup import BASE
from tests.integration.running import GONGDI, _env, gongdi, start, stop, wait_for_line


def send(home: Path, command: str, body: str) -> dict:
    done = subprocess.run([*GONGDI, "--home", str(home), "send", "--wait", "10", "membership", command, body],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def workers(home: Path, site: str) -> int | None:
    done = gongdi(home, "view", "site", site, "--json")
    return json.loads(done.stdout)["workforce"] if done.returncode == 0 else None


def eventually_workers(home: Path, site: str, expected: int, timeout: float = 60) -> int | None:
    deadline = time.monotonic() + timeout
    while (seen := workers(home, site)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return seen


def test_a_backup_of_the_running_platform_restores_what_was_acknowledged_before_it(tmp_path: Path):
    """Before, the only backup was a copy of the stopped folder; a copy of a running one could lose an acknowledged
    command. The backup is PostgreSQL's own consistent copy; after a restore the relays republish the streams."""
    home, restored, archive = tmp_path / "home", tmp_path / "restored", tmp_path / "backup.tar"
    proc = start(home)
    try:
        wait_for_line(proc, "Ctrl-C")
        assert send(home, "RegisterSite", f.register("bk").model_dump_json(exclude={"command_id"}))["ok"]
        assert send(home, "ReportWorkforce", f.workforce("bk", 120).model_dump_json(exclude={"command_id"}))["ok"]
        taken = gongdi(home, "backup", "--to", str(archive))
        assert taken.returncode == 0, taken.stderr
        assert "已备份到" in taken.stdout and "正在备份运行中的平台" in taken.stderr
        assert archive.stat().st_mode & 0o077 == 0  # it holds every password
        later = f.workforce("bk", 999).model_dump_json(exclude={"command_id"})
        assert send(home, "ReportWorkforce", later)["ok"]  # after the backup: not in it
    finally:
        stop(proc)

    done = gongdi(restored, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    assert "membership 2 个事件" in done.stdout
    again = gongdi(restored, "restore", str(archive))
    assert again.returncode == 1 and "已有平台数据" in again.stderr  # never over a platform

    proc = start(restored)
    try:
        wait_for_line(proc, "Ctrl-C")
        assert eventually_workers(restored, "bk", 120) == 120  # the streams republished, the views as they were
        checked = gongdi(restored, "verify")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert send(restored, "ReportWorkforce", f.workforce("bk", 130).model_dump_json(exclude={"command_id"}))["ok"]
        assert eventually_workers(restored, "bk", 130) == 130
    finally:
        stop(proc)
    logs = "".join(p.read_text(errors="replace") for p in (restored / "logs").glob("*.log"))
    assert "Traceback" not in logs and "StreamUnusable" not in logs
    assert "gateway serving" in (restored / "logs" / "gateway.log").read_text()  # before, it stayed empty

    stopped = gongdi(restored, "backup", "--to", str(tmp_path / "stopped.tar"))
    assert stopped.returncode == 0 and "正在备份已停止的平台" in stopped.stderr, stopped.stderr
    assert "membership 3 个事件" in stopped.stdout

    # A scheduled backup into a folder keeps the newest few of its own files and touches nothing else
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("gongdi-backup-20200101-000000.tar", "gongdi-backup-20210101-000000.tar", "notes.tar"):
        (kept / name).write_text("older")
    pruned = gongdi(restored, "backup", "--to", str(kept), "--keep", "2")
    assert pruned.returncode == 0, pruned.stderr
    assert "已删除较早的备份 1 个（保留最新 2 个）：gongdi-backup-20200101-000000.tar" in pruned.stdout
    names = sorted(p.name for p in kept.iterdir())
    assert names[0] == "gongdi-backup-20210101-000000.tar" and names[-1] == "notes.tar" and len(names) == 3, names
    alone = gongdi(restored, "backup", "--keep", "2")
    assert alone.returncode == 2 and "--keep 须与 --to 目录 一起使用" in alone.stderr


def test_a_damaged_or_wrong_file_is_refused_and_leaves_the_folder_as_it_was(tmp_path: Path):
    """Before, a backup damaged inside crashed the restore with a traceback and left a half-restored folder that
    refused the next restore."""
    home, archive = tmp_path / "home", tmp_path / "backup.tar"
    proc = start(home)
    try:
        wait_for_line(proc, "Ctrl-C")
        assert send(home, "RegisterSite", f.register("bk").model_dump_json(exclude={"command_id"}))["ok"]
    finally:
        stop(proc)
    taken = gongdi(home, "backup", "--to", str(tmp_path))  # a folder: the file is named in it
    assert taken.returncode == 0 and "正在备份已停止的平台" in taken.stderr, taken.stderr
    assert "备份期间" not in taken.stdout
    [made] = tmp_path.glob("gongdi-backup-*.tar")
    made.rename(archive)

    damaged = tmp_path / "damaged.tar"
    data = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        inside = tar.getmember(BASE).offset_data + tar.getmember(BASE).size // 2
    data[inside:inside + 16] = bytes(b ^ 0xFF for b in data[inside:inside + 16])
    damaged.write_bytes(bytes(data))
    (tmp_path / "notes.txt").write_text("not a backup")
    target = tmp_path / "restored"
    for file, said in ((damaged, "已损坏"), (tmp_path / "notes.txt", "不是 `gongdi backup` 写的备份文件"),
                       (tmp_path / "nosuch.tar", "找不到备份文件")):
        refused = gongdi(target, "restore", str(file))
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert not (target / "postgres").exists() and not (target / "credentials.json").exists()
    done = gongdi(target, "restore", str(archive))  # the same folder takes the good one
    assert done.returncode == 0 and "membership 1 个事件" in done.stdout, done.stderr

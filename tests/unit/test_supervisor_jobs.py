"""The supervisor's one-shot jobs: restarted when they fail, left stopped when done or when they refuse on purpose."""
from __future__ import annotations

import sys
from pathlib import Path

from gongdi.bus.shadow import REFUSED_EXIT
from gongdi.ops.supervisor import Child, Supervisor, ended, rotate
from gongdi.service.settings import Settings


def exiting(name: str, code: int, logdir: Path) -> Child:
    return Child(name, [sys.executable, "-c", f"import sys; sys.exit({code})"], logdir / f"{name}.log", once=True)


def test_a_job_that_refuses_is_said_once_and_not_restarted_while_a_failed_one_is(tmp_path: Path):
    said: list[str] = []
    supervisor = Supervisor(Settings(), tmp_path, say=said.append)
    jobs = [exiting("refusing", REFUSED_EXIT, tmp_path), exiting("failing", 1, tmp_path), exiting("done", 0, tmp_path)]
    supervisor.children = jobs
    supervisor.start()
    for job in jobs:
        job.proc.wait(30)
    supervisor.check()
    supervisor.check()
    refusing, failing, done = jobs
    assert refusing.next_start == 0.0 and done.next_start == 0.0  # neither scheduled again
    assert failing.next_start > 0.0  # restarted after its back-off
    assert [line for line in said if "refusing" in line and "未切换视图" in line] == [said[0]]
    assert sum("refusing" in line for line in said) == 1
    assert any("failing" in line and "重启" in line for line in said)


def test_a_log_past_its_limit_is_kept_once_and_emptied_while_its_writer_goes_on(tmp_path: Path):
    log = tmp_path / "membership.log"
    (tmp_path / "membership.log.1").write_text("the copy before\n")
    with log.open("ab", buffering=0) as writer:  # as the supervisor hands it to a child
        writer.write(b"x" * 100 + b"\n")
        assert not rotate(log, limit=200)
        writer.write(b"y" * 150 + b"\n")
        assert rotate(log, limit=200)
        assert log.read_bytes() == b""
        writer.write(b"after\n")
    assert log.read_bytes() == b"after\n"  # at the start, not after a hole of the old size
    assert (tmp_path / "membership.log.1").read_bytes() == b"x" * 100 + b"\n" + b"y" * 150 + b"\n"
    assert not rotate(tmp_path / "absent.log", limit=0)


def test_a_process_killed_by_a_signal_is_said_so_not_as_an_exit_code():
    assert ended(-9) == "被信号 9（SIGKILL）终止"
    assert ended(1) == "退出（exit 1）"

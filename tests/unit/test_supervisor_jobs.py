"""The supervisor's one-shot jobs: restarted when they fail, left stopped when done or when they refuse on purpose."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gongdi.bus.shadow import REFUSED_EXIT
from gongdi.ops import processfile
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


def test_the_supervisor_accounts_for_its_processes_for_the_gateway(tmp_path: Path):
    """Before, a restart was said on the terminal only: /metrics had no count, /health missed a dead relay that had
    nothing to publish."""
    supervisor = Supervisor(Settings(), tmp_path, say=lambda _: None)
    assert supervisor.env_for("services.gateway", "serve")["GONGDI_PROCESS_FILE"] == str(supervisor.process_file)
    jobs = [exiting("failing", 1, tmp_path), exiting("done", 0, tmp_path)]
    supervisor.children = jobs
    supervisor.start()
    for job in jobs:
        job.proc.wait(30)
    supervisor.check()
    account = processfile.read(supervisor.process_file)
    assert account is not None and account.supervisor == os.getpid()
    failing, done = account.processes
    assert not failing.running and failing.restarts == 1 and failing.ended == "退出（exit 1）"
    assert failing.down_since is not None and abs(failing.down_since - time.time()) < 60
    assert not done.running and done.restarts == 0 and done.job  # a job done is no restart
    supervisor.check()  # seen ended before: not counted again
    assert processfile.read(supervisor.process_file).processes[0].restarts == 1
    jobs[0].next_start = time.monotonic()  # its back-off over
    supervisor.check()
    again = processfile.read(supervisor.process_file).processes[0]
    assert again.running or again.ended is not None  # started again (it may have ended already)
    assert again.restarts == 1 and (again.down_since is None) == again.running
    supervisor.stop()
    assert processfile.read(supervisor.process_file) is None  # no supervisor, no account


def test_an_account_whose_supervisor_is_gone_is_not_read(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / processfile.PROCESS_FILE
    processfile.write(path, processfile.Processes(supervisor=int(dead.stdout), processes=[]))
    assert processfile.read(path) is None and processfile.read("") is None
    processfile.write(path, processfile.Processes(supervisor=os.getpid(), processes=[]))
    assert processfile.read(path) is not None
    path.write_text("{}")
    assert processfile.read(path) is None


def test_an_account_that_cannot_be_written_is_said_and_the_supervisor_goes_on(tmp_path: Path):
    said: list[str] = []
    supervisor = Supervisor(Settings(), tmp_path, say=said.append)
    (tmp_path / processfile.PROCESS_FILE).mkdir()  # in its way: the rename over it fails, as on a full disk
    supervisor.children = [exiting("done", 0, tmp_path)]
    supervisor.start()
    supervisor.children[0].proc.wait(30)
    supervisor.check()
    assert any("无法写入进程状态文件" in line for line in said), said

"""How the CLI says that the platform failed it: a service that does not answer in time is not NATS unreachable."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nats.errors
import pytest

import gongdi.cli as cli


def said(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
         failure: BaseException) -> tuple[int, str]:
    def failing(_args: Any) -> int:
        raise failure

    monkeypatch.setattr(cli, "cmd_view", failing)
    with pytest.raises(SystemExit) as ended:
        cli.main(["--home", str(tmp_path), "view", "city"])
    return int(ended.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize("failure", [nats.errors.TimeoutError(), TimeoutError(), nats.errors.NoRespondersError()])
def test_a_service_that_does_not_answer_in_time_is_said_so(monkeypatch, capsys, tmp_path, failure):
    # nats' TimeoutError is an OSError too (Python 3.11): it was said as "cannot reach NATS: timeout".
    code, err = said(monkeypatch, capsys, tmp_path, failure)
    assert code == 1 and "服务未在时限内应答" in err and "cannot reach NATS" not in err, err


@pytest.mark.parametrize("failure", [nats.errors.NoServersError(), ConnectionRefusedError(111, "refused")])
def test_nats_that_does_not_take_a_connection_is_said_so(monkeypatch, capsys, tmp_path, failure):
    code, err = said(monkeypatch, capsys, tmp_path, failure)
    assert code == 1 and "无法连接平台" in err, err

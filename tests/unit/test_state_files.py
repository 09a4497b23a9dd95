"""The state folder's secret files: owner-only, written whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from gongdi.ops import runtime
from gongdi.ops.runtime import write_private


def test_a_secret_file_is_owner_only_and_replaced_whole(tmp_path: Path):
    path = tmp_path / "credentials.json"
    write_private(path, '{"old": 1}')
    write_private(path, '{"new": 2}')
    assert path.read_text() == '{"new": 2}' and path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.json"]  # no part left beside it


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Before, the file was truncated first: a crash while writing left a credentials.json nothing could read."""
    path = tmp_path / "credentials.json"
    write_private(path, '{"old": 1}')

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(runtime.os, "fsync", crash)
    with pytest.raises(OSError):
        write_private(path, '{"new": 2}')
    assert path.read_text() == '{"old": 1}'
    assert os.stat(path).st_mode & 0o777 == 0o600

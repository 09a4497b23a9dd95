"""Which session gives way to a new login: the same person's least used one, or somebody's long idle one, never a
session in use by somebody else."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from contracts.identity import Identity
from gongdi.service.settings import Settings
from services.gateway import sessions as s


class Connection:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def session(user: str, idle: float) -> s.Session:
    return s.Session(f"{user}-{idle}-{time.monotonic_ns()}", Identity.parse(user),
                     SimpleNamespace(nc=Connection()), last_used=time.monotonic() - idle)  # type: ignore[arg-type]


def holding(*open_sessions: s.Session) -> s.Sessions:
    sessions = s.Sessions(Settings())
    sessions.by_token = {x.token: x for x in open_sessions}
    return sessions


async def test_a_persons_new_login_past_the_limit_closes_their_least_used_session():
    mine = [session("auditor", idle=i) for i in range(s.PER_PERSON)]
    other = session("dashboard", idle=10_000)
    sessions = holding(*mine, other)
    await sessions._make_room("auditor")
    least_used = mine[-1]
    assert least_used.token not in sessions.by_token and least_used.client.nc.closed
    assert other.token in sessions.by_token and len(sessions.by_token) == s.PER_PERSON


async def test_when_every_session_is_open_only_a_long_idle_one_gives_way(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(s, "MAX_SESSIONS", 3)
    busy = [session("city", idle=5), session("dashboard", idle=60), session("auditor", idle=s.CROWDED_IDLE / 2)]
    with pytest.raises(s.SessionsFull):
        await holding(*busy)._make_room("township.shacheng")
    idle = session("auditor", idle=s.CROWDED_IDLE + 1)
    sessions = holding(busy[0], busy[1], idle)
    await sessions._make_room("township.shacheng")
    assert set(sessions.by_token) == {busy[0].token, busy[1].token} and idle.client.nc.closed

"""Failed logins: a few free tries, then waits that double, per name from one address and per address."""
from __future__ import annotations

import pytest

from services.gateway import throttle as t


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failing(guard: t.LoginThrottle, times: int, user: str = "township.bailin", address: str = "10.0.0.9") -> None:
    for _ in range(times):
        guard.check(user, address)
        guard.failed(user, address)


def wait_of(guard: t.LoginThrottle, user: str = "township.bailin", address: str = "10.0.0.9") -> float:
    try:
        guard.check(user, address)
    except t.Throttled as throttled:
        return throttled.wait
    return 0.0


def test_a_few_mistyped_passwords_cost_no_wait():
    guard = t.LoginThrottle(Clock())
    failing(guard, t.FREE_TRIES - 1)
    assert wait_of(guard) == 0.0


def test_the_free_tries_spent_the_name_waits_from_that_address_only():
    guard = t.LoginThrottle(Clock())
    failing(guard, t.FREE_TRIES)
    assert wait_of(guard) == t.FIRST_WAIT
    assert wait_of(guard, address="10.0.0.10") == 0.0  # the person at their own desk is not locked out
    assert wait_of(guard, user="township.diantou") == 0.0


def test_each_failure_after_a_wait_doubles_the_next_up_to_the_most():
    clock = Clock()
    guard = t.LoginThrottle(clock)
    failing(guard, t.FREE_TRIES)
    waits = []
    for _ in range(8):
        clock.now += wait_of(guard)
        failing(guard, 1)
        waits.append(wait_of(guard))
    assert waits[:3] == [2 * t.FIRST_WAIT, 4 * t.FIRST_WAIT, 8 * t.FIRST_WAIT]
    assert waits[-1] == t.WAIT_MOST


def test_a_success_starts_the_count_again():
    guard = t.LoginThrottle(Clock())
    failing(guard, t.FREE_TRIES - 1)
    guard.succeeded("township.bailin", "10.0.0.9")
    failing(guard, t.FREE_TRIES - 1)
    assert wait_of(guard) == 0.0


def test_an_hour_without_failures_wipes_the_slate():
    clock = Clock()
    guard = t.LoginThrottle(clock)
    failing(guard, t.FREE_TRIES - 1)
    clock.now += t.FORGET_AFTER + 1
    failing(guard, t.FREE_TRIES - 1)
    assert wait_of(guard) == 0.0


def test_one_address_guessing_many_names_waits_for_all_of_them():
    guard = t.LoginThrottle(Clock())
    for i in range(t.FREE_TRIES_ADDRESS):
        failing(guard, 1, user=f"site.bailin.s{i}")
    assert wait_of(guard, user="city") == t.FIRST_WAIT
    assert wait_of(guard, user="city", address="10.0.0.10") == 0.0


def test_made_up_names_cannot_fill_the_memory(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(t, "KEPT", 50)
    guard = t.LoginThrottle(Clock())
    for i in range(500):
        guard.failed(f"x{i}", f"10.1.{i // 250}.{i % 250}")
    assert len(guard.failures) == 50

"""Failed logins slow down further guesses: per login name from one address, and per address over every name."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# A person mistyping gets a few tries before any wait; a guesser's waits double up to WAIT_MOST.
FREE_TRIES = 5          # failures of one name from one address before the first wait
FREE_TRIES_ADDRESS = 30  # failures from one address over all names (a script guessing many logins)
FIRST_WAIT = 30.0
WAIT_MOST = 15 * 60.0
FORGET_AFTER = 60 * 60.0  # an hour without failures wipes the slate
KEPT = 10_000  # keys remembered: the oldest go first, so a flood of made-up names cannot fill the memory


@dataclass
class Failures:
    count: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class Throttled(Exception):
    """Too many failed logins: the next try is allowed after `wait` seconds."""

    def __init__(self, wait: float):
        super().__init__(f"retry in {wait:.0f} s")
        self.wait = wait


class LoginThrottle:
    """Remembers failures by (name, address) and by address; `check` raises Throttled while one of them waits.

    A wait is only ever for the name from that address, or for that address: a guesser elsewhere cannot lock a person
    out of their own login. The password is not even tried while a wait lasts, so waiting is never a way to test one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.failures: OrderedDict[tuple[str, str], Failures] = OrderedDict()

    def check(self, user: str, address: str) -> None:
        now = self.clock()
        wait = max(self._remaining(("name", f"{user}\0{address}"), now), self._remaining(("address", address), now))
        if wait > 0:
            raise Throttled(wait)

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        self._count(("name", f"{user}\0{address}"), FREE_TRIES, now)
        self._count(("address", address), FREE_TRIES_ADDRESS, now)

    def succeeded(self, user: str, address: str) -> None:
        """The person got in: their name's count from that address starts again (the address's stays)."""
        self.failures.pop(("name", f"{user}\0{address}"), None)

    def _remaining(self, key: tuple[str, str], now: float) -> float:
        f = self.failures.get(key)
        return 0.0 if f is None else max(0.0, f.blocked_until - now)

    def _count(self, key: tuple[str, str], free: int, now: float) -> None:
        f = self.failures.pop(key, None)
        if f is None or now - f.last > FORGET_AFTER:
            f = Failures()
        f.count += 1
        f.last = now
        if f.count >= free:
            f.blocked_until = now + min(WAIT_MOST, FIRST_WAIT * 2 ** (f.count - free))
        self.failures[key] = f  # to the end: most recently failed last
        while len(self.failures) > KEPT:
            self.failures.popitem(last=False)

"""Waiting for eventually consistent effects: poll a check until it holds or time runs out."""
from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any] | Any], timeout: float = 20.0) -> Any:
    """`check` may be a coroutine function or a plain one; the deadline is a failure bound, never a trigger."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)

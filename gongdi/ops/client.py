"""A small NATS client for commands and queries as one identity, used by the CLI, the seeder, tests and benchmarks."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import nats.errors
import orjson
from nats.aio.client import Client as NATS

from contracts.base import Command
from contracts.identity import Identity
from contracts.subjects import command_subject, query_subject
from gongdi.ops.accounts import inbox_prefix
from gongdi.service.process import UNAVAILABLE
from gongdi.service.settings import Settings

_DENIED = re.compile(r'permissions violation for publish to "([^"]+)"', re.IGNORECASE)
NATS_PERMISSION = "NATS_PERMISSION"


def denied_reply(subject: str, who: str) -> dict[str, Any]:
    """The server refused the publish itself: answered like a service's refusal, so callers handle one shape."""
    doing = "记录" if subject.startswith("cmd.") else "查看"
    message = f"{who or '匿名'} 的身份无权{doing}这项内容（{subject}） (permissions violation)"
    return {"ok": False, "error": {"code": "FORBIDDEN", "field": NATS_PERMISSION, "message": message}}


class GongdiClient:
    def __init__(self, nc: NATS, timeout: float = 10.0, user: str = ""):
        self.nc = nc
        self.timeout = timeout
        self.user = user
        try:
            self.identity: Identity | None = Identity.parse(user)
        except ValueError:
            self.identity = None  # a platform tool: it may query, not send commands
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    @classmethod
    async def connect(cls, settings: Settings, timeout: float = 10.0, lasting: bool = False) -> GongdiClient:
        """A client as the settings' identity. Short-lived by default (fails fast once the bus is gone); a
        `lasting` one (a gateway session) reconnects for as long as it is open."""
        waiting: dict[str, set[asyncio.Future[None]]] = {}

        async def on_error(exc: Exception) -> None:
            # The server answers a forbidden publish with an error on the connection, not on the request:
            # fail the requests waiting on that subject now instead of letting them time out.
            m = _DENIED.search(str(exc))
            if m:
                for waiter in waiting.get(m.group(1).lower(), ()):
                    if not waiter.done():
                        waiter.set_result(None)

        # A short-lived client: fail fast with one clear error instead of logging each reconnect attempt.
        # Replies arrive under the identity's own prefix, the only inbox NATS lets it subscribe to.
        prefix = inbox_prefix(settings.nats_user) if settings.nats_user else "_INBOX"
        nc = await nats.connect(settings.nats_servers, name="gongdi-client", connect_timeout=2,
                                max_reconnect_attempts=-1 if lasting else 2,
                                reconnect_time_wait=0.5 if lasting else 0.2, error_cb=on_error, inbox_prefix=prefix)
        client = cls(nc, timeout, settings.nats_user)
        client._waiting = waiting
        return client

    async def close(self) -> None:
        await self.nc.drain()

    @property
    def scope(self) -> str:
        """The scope token of this identity's command subjects."""
        if self.identity is None or self.identity.scope is None:
            return self.identity.role.value if self.identity else "platform"
        return self.identity.scope

    async def send(self, service: str, command: Command) -> dict[str, Any]:
        return await self.send_raw(service, type(command).__name__, command.model_dump_json().encode())

    async def send_raw(self, service: str, name: str, body: bytes, scope: str | None = None) -> dict[str, Any]:
        return await self.request(command_subject(scope or self.scope, service, name), body)

    async def send_dict(self, service: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"command_id": str(uuid.uuid4()), **body}
        return await self.send_raw(service, name, orjson.dumps(body))

    async def query(self, service: str, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.request(query_subject(service, name), orjson.dumps(body or {}))

    async def request(self, subject: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
        denied: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = subject.lower()
        self._waiting.setdefault(key, set()).add(denied)
        answer = asyncio.ensure_future(self.nc.request(subject, body, timeout=self.timeout, headers=headers))
        try:
            await asyncio.wait({answer, denied}, return_when=asyncio.FIRST_COMPLETED)
            if not answer.done():
                answer.cancel()
                return denied_reply(subject, self.user)
            return orjson.loads(answer.result().data)
        finally:
            waiters = self._waiting[key]
            waiters.discard(denied)
            if not waiters:
                del self._waiting[key]


T = TypeVar("T")


async def with_client(settings: Settings, fn: Callable[[GongdiClient], Awaitable[T]]) -> T:
    """Connect as the settings' identity, run `fn(client)`, and close whatever happens."""
    client = await GongdiClient.connect(settings)
    try:
        return await fn(client)
    finally:
        await client.close()


# Failures after which a command may or may not have been recorded, or never arrived: retried with the same id.
UNREACHABLE = (nats.errors.NoServersError, nats.errors.NoRespondersError, nats.errors.TimeoutError,
               nats.errors.ConnectionClosedError, OSError)


async def send_retrying(settings: Settings, service: str, name: str, body: bytes, wait: float,
                        on_retry: Callable[[BaseException], None]) -> dict[str, Any]:
    """Send one command (its `command_id` already in `body`) until it is answered or `wait` seconds have passed,
    on a fresh connection each time. The id stays the same, so a command whose reply was lost in an outage is
    recorded once: the retry gets the first reply back (`duplicate: true`). `on_retry` is told of each outage."""
    deadline = time.monotonic() + wait
    while True:
        try:
            reply = await with_client(settings, lambda c: c.send_raw(service, name, body))
        except UNREACHABLE as exc:
            if time.monotonic() >= deadline:
                raise
            on_retry(exc)
            await asyncio.sleep(1.0)
            continue
        if (reply.get("error") or {}).get("code") != UNAVAILABLE or time.monotonic() >= deadline:
            return reply
        on_retry(ConnectionError("数据库暂时无法访问 (database unavailable)"))  # the service's store, a moment
        await asyncio.sleep(1.0)

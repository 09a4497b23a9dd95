"""A small NATS client for commands and queries, used by the CLI, the seeder, tests and benchmarks."""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import orjson
from nats.aio.client import Client as NATS

from contracts.base import Command
from contracts.subjects import command_subject, query_subject


async def _quiet(_: Exception) -> None:
    return None


class GongdiClient:
    def __init__(self, nc: NATS, timeout: float = 10.0):
        self.nc = nc
        self.timeout = timeout

    @classmethod
    async def connect(cls, url: str, timeout: float = 10.0) -> GongdiClient:
        servers = [u for u in url.split(",") if u]
        # A short-lived client: fail fast with one clear error instead of logging each reconnect attempt.
        nc = await nats.connect(servers, name="gongdi-client", connect_timeout=2, max_reconnect_attempts=2,
                                reconnect_time_wait=0.2, error_cb=_quiet)
        return cls(nc, timeout)

    async def close(self) -> None:
        await self.nc.drain()

    async def send(self, service: str, command: Command) -> dict[str, Any]:
        return await self.send_raw(service, type(command).__name__, command.model_dump_json().encode())

    async def send_raw(self, service: str, name: str, body: bytes) -> dict[str, Any]:
        msg = await self.nc.request(command_subject(service, name), body, timeout=self.timeout)
        return orjson.loads(msg.data)

    async def send_dict(self, service: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"command_id": str(uuid.uuid4()), **body}
        return await self.send_raw(service, name, orjson.dumps(body))

    async def query(self, service: str, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        msg = await self.nc.request(query_subject(service, name), orjson.dumps(body or {}), timeout=self.timeout)
        return orjson.loads(msg.data)


T = TypeVar("T")


async def with_client(url: str, fn: Callable[[GongdiClient], Awaitable[T]]) -> T:
    """Connect, run `fn(client)`, and close whatever happens."""
    client = await GongdiClient.connect(url)
    try:
        return await fn(client)
    finally:
        await client.close()

"""Every request gets an answer: what a handler's failure becomes (the broker is a stand-in that keeps the endpoint;
what is tested is the endpoint's own logic)."""
from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import pytest

from gongdi.service.process import Request, reply_handler


class Keeper:
    """Takes the endpoint `reply_handler` subscribes, as a broker would."""

    endpoint: Any = None

    def subscriber(self, *_: object, **__: object) -> Any:
        def keep(fn: Any) -> Any:
            self.endpoint = fn
            return fn

        return keep


def endpoint_failing_with(exc: Exception) -> Any:
    async def handle(_: Request) -> bytes:
        raise exc

    broker = Keeper()
    reply_handler(broker, "cmd.x", "q", 1, handle)  # type: ignore[arg-type]
    return broker.endpoint


@pytest.mark.parametrize("exc", [asyncpg.CannotConnectNowError("the database system is starting up"),
                                 asyncpg.ConnectionDoesNotExistError("closed in the middle"),
                                 ConnectionRefusedError(111, "refused"), asyncpg.AdminShutdownError("shutdown")])
async def test_a_database_that_is_down_for_a_moment_is_an_answer_to_retry(exc: Exception):
    """Before, a restart of PostgreSQL answered INTERNAL: 请联系管理员, and the CLI did not send again."""
    reply = orjson.loads(await endpoint_failing_with(exc)(Request(b"{}", "cmd.x", None)))
    assert reply["error"]["code"] == "UNAVAILABLE" and "请稍后重试" in reply["error"]["message"]


async def test_any_other_failure_is_internal_with_an_incident_id_never_the_input():
    reply = orjson.loads(await endpoint_failing_with(ValueError("张三 350982199001011234"))(
        Request(b"{}", "cmd.x", None)))
    assert reply["error"]["code"] == "INTERNAL" and "编号" in reply["error"]["message"]
    assert "张三" not in reply["error"]["message"]


async def test_the_cli_sends_the_same_command_again_while_the_database_is_unavailable(monkeypatch: pytest.MonkeyPatch):
    from gongdi.ops import client as c
    from gongdi.service.settings import Settings

    replies = [{"ok": False, "error": {"code": "UNAVAILABLE", "message": "…"}}, {"ok": True, "events": []}]
    sent: list[bytes] = []

    async def answering(_: Settings, fn: Any) -> Any:
        class Client:
            async def send_raw(self, service: str, name: str, body: bytes) -> dict:
                sent.append(body)
                return replies.pop(0)

        return await fn(Client())

    async def no_pause(_: float) -> None:
        return None

    monkeypatch.setattr(c, "with_client", answering)
    monkeypatch.setattr(c.asyncio, "sleep", no_pause)
    told: list[BaseException] = []
    reply = await c.send_retrying(Settings(), "membership", "RecordArrival", b'{"command_id": "x"}', 30, told.append)
    assert reply["ok"] and sent == [b'{"command_id": "x"}'] * 2 and len(told) == 1

"""Live pages: a view's snapshot at once, then a new one within a second of each change, as Server-Sent Events."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import nats.errors
import orjson
from nats.aio.client import Client as NATS

from contracts.queries import QUERIES
from contracts.subjects import live_subject
from gongdi.ops.client import UNREACHABLE
from services.gateway.metrics import Metrics
from services.gateway.sessions import Session

LiveView = Literal["city", "township", "department", "site"]
KEEPALIVE = 15.0  # seconds between comments, so proxies and the browser know the stream is alive
RETRY_MS = 1000  # how soon the browser reconnects after the stream broke


def subject_for(view: str, key: str | None, city_code: str) -> str:
    """What announces a change of this view: a site's own subject, or the city's (which every change reaches)."""
    return live_subject("site", key or "") if view == "site" else live_subject("city", city_code)


def _event(kind: str, data: dict[str, Any], ident: int | None = None) -> bytes:
    head = f"event: {kind}\n" + (f"id: {ident}\n" if ident is not None else "")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


async def snapshots(session: Session, notices: NATS, view: str, key: str | None, city_code: str, metrics: Metrics,
                    last_seen: int = -1) -> AsyncIterator[bytes]:
    """The SSE stream of one view for one session. Every message is the whole view, numbered by `seq` (the sum of
    the views' applied positions, read in the same snapshot), so a reconnect that starts with a fresh snapshot
    cannot miss a change; changes are coalesced: at most one query in flight, and one more if something changed
    meanwhile. The change notices come over the gateway's own platform connection (`notices`: people's NATS
    identities hear none, gongdi.ops.accounts); a notice only wakes the stream, and every view it pushes is asked over
    the session's own connection, so the session's rights apply to the pushes too (a refused first ask ends it)."""
    q = QUERIES[view]
    params = {q.key: key} if q.key else {}
    changed = asyncio.Event()
    changed.set()

    async def on_change(_msg: Any) -> None:
        changed.set()

    sub = await notices.subscribe(subject_for(view, key, city_code), cb=on_change)
    metrics.live_streams += 1
    sent = last_seen
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        first = True
        while True:
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            changed.clear()
            try:
                reply = await session.client.query("views", view, params)
            except (*UNREACHABLE, nats.errors.Error):
                yield _event("failure", {"code": "UNREACHABLE", "message": "平台暂时无法访问，正在重试"})
                changed.set()
                await asyncio.sleep(1.0)
                continue
            if not reply.get("ok"):
                yield _event("failure", reply.get("error") or {"code": "INTERNAL", "message": "未知错误"})
                return  # a refusal (rights, unknown site) does not change by asking again
            data = reply["data"]
            seq = int((data.get("snapshot") or {}).get("seq", 0))
            if first or seq > sent:
                sent = max(sent, seq)
                yield _event("snapshot", {"view": view, "key": key, "seq": seq,
                                          "at": (data.get("snapshot") or {}).get("at"), "data": data}, seq)
            first = False
    finally:
        metrics.live_streams -= 1
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()

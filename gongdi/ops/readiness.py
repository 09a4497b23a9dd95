"""Readiness and progress of a running platform: do the services answer, has every consumer caught up."""
from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import nats.errors

from contracts import activities, liaison, membership
from contracts.queries import SERVICE as VIEWS
from contracts.queries import ServiceStatus, status_subject
from gongdi.ops.client import UNREACHABLE, GongdiClient, with_client
from gongdi.ops.supervisor import WRITERS
from gongdi.service.settings import Settings


async def services_ready(client: GongdiClient) -> bool:
    """Every service answers: views a query, each writer a command (an empty one, refused without writing)."""
    try:
        if not (await client.query("views", "city"))["ok"]:
            return False
        for contract in (membership, activities, liaison):
            probe = await client.send_raw(contract.SERVICE, next(iter(contract.COMMANDS)), b"{}")
            if (probe.get("error") or {}).get("code") != "VALIDATION_FAILED":
                return False
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        return False  # not up yet
    return True


def wait_ready(settings: Settings, timeout: float = 60.0) -> None:
    async def probe() -> None:
        deadline = time.monotonic() + timeout
        client = await GongdiClient.connect(settings, timeout=2)
        try:
            while not await services_ready(client):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"services did not answer within {timeout:.0f}s; see the logs folder")
                await asyncio.sleep(0.2)
        finally:
            await client.close()

    asyncio.run(probe())


class ServiceRefused(RuntimeError):
    """A service refused a status or retry request (the identity asking may not, or the request failed)."""

    def __init__(self, service: str, error: dict[str, Any]):
        super().__init__(f"{service}: {error.get('code')}: {error.get('message')}")
        self.service = service
        self.code = str(error.get("code"))
        self.message = str(error.get("message"))


async def service_status(client: GongdiClient, service: str) -> ServiceStatus:
    """One service's answer to `qry.<service>.status`, checked against the contract."""
    reply = await client.request(status_subject(service), b"{}")
    if not reply.get("ok"):
        raise ServiceRefused(service, reply.get("error") or {})
    return ServiceStatus.model_validate(reply["data"])


# The consumers are asked before the counts they are compared with (the views first, membership, whose stream the
# policies read, last), so a reading in between can only make the platform look behind, never caught up too soon.
ASKING_ORDER = (VIEWS, *reversed(WRITERS))


async def stream_status(_settings: Settings | None, client: GongdiClient) -> dict[str, Any]:
    """Every writing service's stream (events recorded, published) and every consumer of it, views and policies
    (applied, dead letters), as the services themselves answer over NATS: nothing here reads a database.
    `_settings` is unused: kept for the callers written when this read the counts by SQL."""
    return merged({service: await service_status(client, service) for service in ASKING_ORDER})


async def each_status(client: GongdiClient, timeout: float | None = None) -> dict[str, ServiceStatus | str]:
    """Every service's status, asked in ASKING_ORDER; for one that does not answer (within `timeout` seconds, else
    the client's own), why: its error code, or the bus's exception. So the others are still asked and the silent
    one can be named."""
    out: dict[str, ServiceStatus | str] = {}
    for service in ASKING_ORDER:
        try:
            out[service] = await asyncio.wait_for(service_status(client, service), timeout)
        except ServiceRefused as exc:
            out[service] = exc.code
        except UNREACHABLE as exc:
            out[service] = type(exc).__name__
    return out


def merged(answers: Mapping[str, ServiceStatus]) -> dict[str, Any]:
    """The services' answers as one status: the streams and every consumer with its stream's recorded count."""
    streams = [{"service": w, "stream": answers[w].stream, "recorded": answers[w].recorded,
                "published": answers[w].published} for w in WRITERS]
    recorded = {s["stream"]: s["recorded"] for s in streams}
    consumers = [{**c.model_dump(mode="json"), "recorded": recorded.get(c.stream)}
                 for service in (VIEWS, *WRITERS) for c in answers[service].consumers]
    return {"streams": streams, "consumers": consumers}


async def stream_status_if_allowed(client: GongdiClient) -> dict[str, Any] | None:
    """`stream_status`, or None when a service refuses the client (only the city, the auditor and the platform may
    ask every service's)."""
    try:
        return await stream_status(None, client)
    except ServiceRefused:
        return None


def dead_letter_count(status: dict[str, Any]) -> int:
    return sum(c["dead_letters"] for c in status["consumers"])


def all_applied(status: dict[str, Any]) -> bool:
    """Every recorded event is on its stream (a stream holds each event once) and every consumer passed it."""
    return (all(s["recorded"] == s["published"] for s in status["streams"])
            and all(c["recorded"] is not None and c["applied"] == c["recorded"] for c in status["consumers"]))


def short_logs(status: dict[str, Any]) -> list[dict[str, Any]]:
    """Streams holding more events than their service's log: events were deleted from the database after they were
    published (or the database was restored from an older backup). Such a stream never settles."""
    return [s for s in status["streams"] if s["published"] > s["recorded"]]


async def caught_up(settings: Settings | None, client: GongdiClient) -> bool:
    """Every recorded event published and applied by every consumer, views and policies, and no dead letter
    anywhere: an event passed without being applied leaves a view or a policy incomplete."""
    status = await stream_status(settings, client)
    return all_applied(status) and dead_letter_count(status) == 0


async def settled(settings: Settings | None, client: GongdiClient) -> bool:
    """Nothing is on its way: every recorded event is published and passed by every consumer, applied or not."""
    return all_applied(await stream_status(settings, client))


def wait_caught_up(settings: Settings, timeout: float = 60.0) -> dict[str, Any]:
    async def probe(client: GongdiClient) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = await stream_status(settings, client)
            if all_applied(status) or short_logs(status):  # a short log would keep it waiting to the end
                break
            await asyncio.sleep(0.2)
        return (await client.query("views", "city"))["data"]

    return asyncio.run(with_client(settings, probe))


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Until the gateway answers its health check (it starts after the services it asks)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"网关没有应答 {url}: {exc}; 见 logs/gateway.log") from exc
            time.sleep(0.2)

"""Per-test isolation on the shared servers: a fresh database and empty JetStream, then the real services."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.js.errors import NotFoundError

from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import services_ready
from gongdi.ops.supervisor import SETUP_WAVES, Supervisor, database_role
from gongdi.service.settings import Settings
from services.activities.app import ACTIVITIES
from services.liaison.app import LIAISON
from services.membership.app import MEMBERSHIP
from services.views.app import VIEWS
from tests.conftest import Servers

SERVICES = {f"services.{s.name}": s for s in (MEMBERSHIP, ACTIVITIES, LIAISON, VIEWS)}


async def _fresh(servers: Servers) -> Settings:
    database_url = await servers.new_database("t")
    settings = servers.settings(database_url, consumer_ack_wait=3.0)
    nc = await nats.connect(settings.nats_servers)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()
    return settings


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return asyncio.run(_fresh(servers))


async def _set_up(settings: Settings, servers: Servers) -> None:
    """Every service's own `setup`, in the order `gongdi setup` runs them, here rather than a process each (the
    processes' start was ~2 s of every test's set-up); each login role gets the password the supervisor gives."""
    for wave in SETUP_WAVES:
        for module in wave:
            await SERVICES[module].setup(settings, servers.credentials.postgres[database_role(module)])


@pytest.fixture
def ready_settings(settings: Settings, servers: Servers) -> Settings:
    """Schemas, streams and consumers created, by the code `gongdi setup` runs."""
    asyncio.run(_set_up(settings, servers))
    return settings


@pytest.fixture
def admin_settings(ready_settings: Settings, servers: Servers) -> Settings:
    """The city work committee's identity: what the CLI acts as by default."""
    return servers.as_identity(ready_settings, "city")


@pytest.fixture
def platform(ready_settings: Settings, admin_settings: Settings, servers: Servers, tmp_path: Path
             ) -> Iterator[Supervisor]:
    """Every service as its own process and bus user, the way `gongdi up` runs them."""
    yield from _running(ready_settings, admin_settings, servers, tmp_path / "logs")


def _running(ready: Settings, admin: Settings, servers: Servers, logs: Path,
             database_passwords: dict[str, str] | None = None) -> Iterator[Supervisor]:
    sup = Supervisor(ready, logs, say=lambda *_: None, passwords=servers.credentials.nats,
                     database_passwords=database_passwords or servers.credentials.postgres)
    sup.start()
    try:
        asyncio.run(_wait_ready(admin))
        yield sup
    finally:
        sup.stop()


def shared_platform() -> tuple[Any, ...]:
    """`settings, ready_settings, admin_settings, platform = shared_platform()` in a test module: one platform for
    all of its tests (set up and started once, not per test), for modules whose tests kill nothing and expect the
    facts the tests before them recorded."""

    @pytest.fixture(scope="module", name="settings")
    def module_settings(servers: Servers) -> Settings:
        return asyncio.run(_fresh(servers))

    @pytest.fixture(scope="module", name="ready_settings")
    def module_ready_settings(settings: Settings, servers: Servers) -> Settings:
        asyncio.run(_set_up(settings, servers))
        return settings

    @pytest.fixture(scope="module", name="admin_settings")
    def module_admin_settings(ready_settings: Settings, servers: Servers) -> Settings:
        return servers.as_identity(ready_settings, "city")

    @pytest.fixture(scope="module", name="platform")
    def module_platform(ready_settings: Settings, admin_settings: Settings, servers: Servers,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
        yield from _running(ready_settings, admin_settings, servers, tmp_path_factory.mktemp("platform") / "logs")

    return module_settings, module_ready_settings, module_admin_settings, module_platform


async def _wait_ready(settings: Settings, timeout: float = 30.0) -> None:
    client = await GongdiClient.connect(settings, timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while not await services_ready(client):
            assert time.monotonic() < deadline, "services did not start"
            await asyncio.sleep(0.1)
    finally:
        await client.close()


@pytest.fixture
async def client(admin_settings: Settings) -> AsyncIterator[GongdiClient]:
    c = await GongdiClient.connect(admin_settings)
    yield c
    await c.close()


@pytest.fixture
async def pool(ready_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(ready_settings.database_url, min_size=1, max_size=12)
    yield p
    await p.close()

"""Real servers for the whole test session: nats-server and PostgreSQL from the project's wheels."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from contracts.city import DEFAULT_CITY_FILE, City, load_city
from gongdi.ops.accounts import AccountsConfig
from gongdi.ops.credentials import SUPERUSER, Credentials
from gongdi.ops.runtime import EmbeddedNats, EmbeddedPostgres, free_port, reload_nats_accounts
from gongdi.ops.supervisor import DATABASE_ROLES, WRITERS
from gongdi.service.settings import Settings


@dataclass
class Servers:
    nats_url: str
    pg_port: int
    credentials: Credentials
    nats_root: Path
    cities: list[City] = field(default_factory=list)
    leaf_url: str = ""  # where a township's leaf node connects

    def accounts(self) -> str:
        """Users for every city a test has run, so that each test's city finds its identities."""
        users = {u.name: u for city in self.cities for u in self.credentials.users(city)}
        return AccountsConfig(list(users.values()), self.credentials.password).render()

    def add_city(self, city: City) -> None:
        """A test running another city: its identities join the running server."""
        if city in self.cities:
            return
        self.cities.append(city)
        self.credentials.add_users(city)
        reload_nats_accounts(self.nats_root, self.accounts())

    def add_secretary(self, site_id: str, township: str) -> str:
        identity = self.credentials.add_secretary(self.cities[0], site_id, township)
        reload_nats_accounts(self.nats_root, self.accounts())
        return identity.name

    def settings(self, database_url: str, **more: object) -> Settings:
        """A platform operator's settings (the `setup` user) on these servers; the gateway on a port of its own."""
        more.setdefault("http_port", free_port())
        more.setdefault("head_key", self.credentials.head_key)
        # No timers unless a test asks (test_mobility_timers): the samples' members arrived in 2020, so a restarted
        # membership service would prompt them and add events that tests counting events do not expect.
        more.setdefault("timer_interval", 0)
        return Settings(nats_url=self.nats_url, database_url=database_url, nats_user="setup",
                        nats_password=self.credentials.password("setup"), **more)

    def as_identity(self, settings: Settings, name: str) -> Settings:
        return settings.as_user(name, self.credentials.password(name))

    def database_url(self, name: str) -> str:
        """The superuser's URL (setup's, the tests' own): the password is required."""
        return f"postgresql://postgres:{self.credentials.postgres[SUPERUSER]}@127.0.0.1:{self.pg_port}/{name}"

    async def new_database(self, prefix: str) -> str:
        """A new, empty database on the shared server; its URL."""
        name = unique(prefix)
        conn = await asyncpg.connect(self.database_url("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.database_url(name)


@dataclass
class Running:
    """Servers a test started itself, with their handles: a test that kills them needs the processes."""

    servers: Servers
    nats: EmbeddedNats
    postgres: EmbeddedPostgres


@contextlib.contextmanager
def running_servers(root: Path, leaf: bool = False) -> Iterator[Running]:
    """nats-server and PostgreSQL in `root`, as `gongdi up` starts them, stopped at the end."""
    city = load_city(DEFAULT_CITY_FILE)
    credentials = Credentials.ensure(root, city, WRITERS)
    nats_srv = EmbeddedNats(root / "nats", accounts=credentials.accounts(city).render(),
                            leaf_port=free_port() if leaf else 0)
    credentials.ensure_postgres(DATABASE_ROLES)
    pg = EmbeddedPostgres(root / "postgres", database="postgres", password=credentials.postgres[SUPERUSER])
    try:
        nats_srv.start()
        pg.start()
        leaf_url = f"nats-leaf://127.0.0.1:{nats_srv.leaf_port}" if leaf else ""
        yield Running(Servers(nats_srv.url, pg.port, credentials, root / "nats", [city], leaf_url), nats_srv, pg)
    finally:
        nats_srv.stop()
        pg.stop()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running_servers(tmp_path_factory.mktemp("servers"), leaf=True) as run:
        yield run.servers


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"

"""Real servers for the whole test session: nats-server and PostgreSQL from the project's wheels."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from gongdi.ops.runtime import EmbeddedNats, EmbeddedPostgres


@dataclass(frozen=True)
class Servers:
    nats_url: str
    pg_port: int

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{name}"

    async def new_database(self, prefix: str) -> str:
        """A new, empty database on the shared server; its URL."""
        name = unique(prefix)
        conn = await asyncpg.connect(self.database_url("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.database_url(name)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("servers")
    nats_srv = EmbeddedNats(root / "nats")
    pg = EmbeddedPostgres(root / "postgres", database="postgres")
    try:
        nats_srv.start()
        pg.start()
        yield Servers(nats_srv.url, pg.port)
    finally:
        nats_srv.stop()
        pg.stop()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"

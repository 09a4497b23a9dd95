"""Activities' inline state: its own site snapshots, and the sites and members it learnt from membership events."""
from __future__ import annotations

import asyncpg

from contracts.membership import MemberArrived, MemberDeparted, SiteRegistered
from gongdi.eventstore import StreamHead
from services.activities.domain import ActivitySite, Given, Present

SCHEMA = "activities"

TABLES_SQL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.site_state (
    site_id text PRIMARY KEY,
    version int NOT NULL,
    hash text NOT NULL,
    state jsonb NOT NULL
);
-- Learnt from membership events (consumer `activities`), to check that sites and members exist.
CREATE TABLE IF NOT EXISTS {SCHEMA}.known_site (
    site_id text PRIMARY KEY,
    township text NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.presence (
    member_id text PRIMARY KEY,
    site_id text NOT NULL,
    name text NOT NULL,
    admitted_on date NOT NULL
);
CREATE INDEX IF NOT EXISTS presence_site ON {SCHEMA}.presence (site_id);
"""


def stream_of(site_id: str) -> str:
    return f"site-{site_id}"


class ActivityRepository:
    async def load(self, conn: asyncpg.Connection, site_id: str) -> tuple[ActivitySite | None, StreamHead]:
        row = await conn.fetchrow(
            f"SELECT version, hash, state::text AS state FROM {SCHEMA}.site_state WHERE site_id = $1", site_id
        )
        if row is None:
            return None, StreamHead()
        return ActivitySite.model_validate_json(row["state"]), StreamHead(row["version"], row["hash"])

    async def given(self, conn: asyncpg.Connection, site_id: str) -> tuple[Given, str | None, StreamHead]:
        township = await conn.fetchval(f"SELECT township FROM {SCHEMA}.known_site WHERE site_id = $1", site_id)
        site, head = await self.load(conn, site_id)
        rows = await conn.fetch(
            f"SELECT member_id, name, admitted_on FROM {SCHEMA}.presence WHERE site_id = $1", site_id
        )
        present = {r["member_id"]: Present(r["name"], r["admitted_on"]) for r in rows}
        return Given(site=site, known=township is not None, present=present), township, head

    async def save(self, conn: asyncpg.Connection, state: ActivitySite, head: StreamHead) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.site_state (site_id, version, hash, state) VALUES ($1, $2, $3, $4::jsonb)"
            " ON CONFLICT (site_id) DO UPDATE SET version = $2, hash = $3, state = $4::jsonb",
            state.site_id, head.version, head.hash, state.model_dump_json(),
        )

    async def learn_site(self, conn: asyncpg.Connection, e: SiteRegistered) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.known_site (site_id, township) VALUES ($1, $2)"
            " ON CONFLICT (site_id) DO UPDATE SET township = EXCLUDED.township",
            e.site_id, e.township,
        )

    async def arrived(self, conn: asyncpg.Connection, e: MemberArrived) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.presence (member_id, site_id, name, admitted_on) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (member_id) DO UPDATE SET site_id = $2, name = $3, admitted_on = $4",
            e.member_id, e.site_id, e.member.name, e.member.admitted_on,
        )

    async def departed(self, conn: asyncpg.Connection, e: MemberDeparted) -> None:
        await conn.execute(
            f"DELETE FROM {SCHEMA}.presence WHERE member_id = $1 AND site_id = $2", e.member_id, e.site_id
        )

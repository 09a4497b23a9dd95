"""Inline state the membership rules check in the same transaction: site snapshots and member presence."""
from __future__ import annotations

import asyncpg

from contracts.base import Event
from contracts.membership import MemberArrived, MemberDeparted, RecordArrival
from gongdi.eventstore import ConcurrencyError, StreamHead
from services.membership.domain import Given, SiteState, evolve

SCHEMA = "membership"

TABLES_SQL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.site_state (
    site_id text PRIMARY KEY,
    version int NOT NULL,
    hash text NOT NULL,
    state jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.member_presence (
    member_id text PRIMARY KEY,
    site_id text NOT NULL
);
"""


def stream_of(site_id: str) -> str:
    return f"site-{site_id}"


class SiteRepository:
    """Site state is folded from events and kept beside them, updated in the appending transaction."""

    async def load(self, conn: asyncpg.Connection, site_id: str) -> tuple[SiteState | None, StreamHead]:
        row = await conn.fetchrow(
            f"SELECT version, hash, state::text AS state FROM {SCHEMA}.site_state WHERE site_id = $1", site_id
        )
        if row is None:
            return None, StreamHead()
        return SiteState.model_validate_json(row["state"]), StreamHead(row["version"], row["hash"])

    async def given(self, conn: asyncpg.Connection, command: object) -> tuple[Given, dict[str, StreamHead]]:
        site_id: str = command.site_id  # type: ignore[attr-defined]
        site, head = await self.load(conn, site_id)
        heads = {stream_of(site_id): head}
        previous = None
        if isinstance(command, RecordArrival):
            at = await conn.fetchval(
                f"SELECT site_id FROM {SCHEMA}.member_presence WHERE member_id = $1", command.member_id
            )
            if at is not None and at != site_id:
                previous, heads[stream_of(at)] = await self.load(conn, at)
        return Given(site=site, previous_site=previous), heads

    async def save(
        self, conn: asyncpg.Connection, given: Given, events: list[Event], heads: dict[str, StreamHead]
    ) -> None:
        states: dict[str, SiteState | None] = {}
        for site in (given.site, given.previous_site):
            if site is not None:
                states[site.site_id] = site
        for event in events:
            site_id = event.site_id  # type: ignore[attr-defined]
            states[site_id] = evolve(states.get(site_id), event)
            await self._presence(conn, event)
        for site_id, state in states.items():
            head = heads[stream_of(site_id)]
            assert state is not None and head.hash is not None
            await conn.execute(
                f"INSERT INTO {SCHEMA}.site_state (site_id, version, hash, state) VALUES ($1, $2, $3, $4::jsonb)"
                " ON CONFLICT (site_id) DO UPDATE SET version = $2, hash = $3, state = $4::jsonb",
                site_id, head.version, head.hash, state.model_dump_json(),
            )

    async def _presence(self, conn: asyncpg.Connection, event: Event) -> None:
        """One site per member, enforced by the primary key: a racing arrival fails and is retried."""
        match event:
            case MemberDeparted():
                status = await conn.execute(
                    f"DELETE FROM {SCHEMA}.member_presence WHERE member_id = $1 AND site_id = $2",
                    event.member_id, event.site_id,
                )
            case MemberArrived():
                try:
                    status = await conn.execute(
                        f"INSERT INTO {SCHEMA}.member_presence (member_id, site_id) VALUES ($1, $2)",
                        event.member_id, event.site_id,
                    )
                except asyncpg.UniqueViolationError as exc:
                    raise ConcurrencyError(f"member {event.member_id} moved concurrently") from exc
            case _:
                return
        if not status.endswith(" 1"):
            raise ConcurrencyError(f"presence of member {event.member_id} changed concurrently")

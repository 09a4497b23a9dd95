"""Activities' inline state: the sites and members it learnt from membership events, to check its rules against."""
from __future__ import annotations

import asyncpg

from contracts.membership import BranchFormed, MemberArrived, MemberDeparted, SiteCompleted, SiteRegistered
from contracts.timeline import city_today
from gongdi.bus.consumer import checkpoint_sql, stream_heads_sql
from gongdi.bus.deadletters import retries_sql
from gongdi.store.migrations import Migration, numbered
from gongdi.store.postgres import (
    EVENT_STORE_MIGRATIONS,
    command_fingerprints,
    refold_states,
    tamper_evidence,
    trailing_states,
)
from services.activities.domain import ActivitySite, Branch, Given, Present

SCHEMA = "activities"

MIGRATIONS = numbered(EVENT_STORE_MIGRATIONS, [
    Migration(2, "sites and members learnt from membership events; consumer checkpoint", lambda s: f"""
        CREATE TABLE IF NOT EXISTS {s}.known_site (
            site_id text PRIMARY KEY,
            township text NOT NULL
        );
        CREATE TABLE IF NOT EXISTS {s}.presence (
            member_id text PRIMARY KEY,
            site_id text NOT NULL,
            name text NOT NULL,
            admitted_on date NOT NULL
        );
        CREATE INDEX IF NOT EXISTS presence_site ON {s}.presence (site_id);
        {checkpoint_sql(s)}"""),
    Migration(3, "the policy consumer keeps the head of every membership event stream it applied", stream_heads_sql),
    command_fingerprints(4),
    Migration(5, "dead letters record their retries; applied ones move to retried_letters", retries_sql),
    tamper_evidence(6),
    Migration(7, "branches learnt from membership events (三会一课 and 民主评议 need one)", lambda s: f"""
        CREATE TABLE IF NOT EXISTS {s}.known_branch (
            site_id text PRIMARY KEY,
            formed_on date NOT NULL,
            has_committee boolean NOT NULL
        );"""),
    trailing_states(8),
    Migration(9, "members present keep their arrival date (facts about them are not dated before it)",
              lambda s: f"ALTER TABLE {s}.presence ADD COLUMN IF NOT EXISTS arrived_on date;"),
    Migration(10, "sites keep their completion (nothing is dated after it; sites completed before are not checked)",
              lambda s: f"ALTER TABLE {s}.known_site ADD COLUMN IF NOT EXISTS completed_on date;"),
    Migration(11, "sites keep their start (nothing is dated before it; sites learnt before are not checked)",
              lambda s: f"ALTER TABLE {s}.known_site ADD COLUMN IF NOT EXISTS started_on date;"),
    refold_states(12, "the records that can be retracted (撤销)"),
    refold_states(13, "talks and points among the records that can be retracted"),
    refold_states(14, "violations, personal changes, posts, zones and teams among the records that can be retracted"),
])


class Directory:
    """Which sites exist and who is present on them, as the membership events say."""

    async def context(self, conn: asyncpg.Connection, site_id: str, site: ActivitySite | None
                      ) -> tuple[Given, str | None]:
        known = await conn.fetchrow(
            f"SELECT township, completed_on, started_on FROM {SCHEMA}.known_site WHERE site_id = $1", site_id)
        township = known["township"] if known else None
        rows = await conn.fetch(
            f"SELECT member_id, name, admitted_on, arrived_on FROM {SCHEMA}.presence WHERE site_id = $1", site_id
        )
        present = {r["member_id"]: Present(r["name"], r["admitted_on"], r["arrived_on"]) for r in rows}
        branch = await conn.fetchrow(
            f"SELECT formed_on, has_committee FROM {SCHEMA}.known_branch WHERE site_id = $1", site_id)
        return Given(site=site, known=township is not None, present=present,
                     branch=Branch(branch["formed_on"], branch["has_committee"]) if branch else None,
                     completed_on=known["completed_on"] if known else None,
                     started_on=known["started_on"] if known else None,
                     today=city_today()), township

    async def learn_site(self, conn: asyncpg.Connection, e: SiteRegistered) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.known_site (site_id, township, started_on) VALUES ($1, $2, $3)"
            " ON CONFLICT (site_id) DO UPDATE SET township = EXCLUDED.township, started_on = EXCLUDED.started_on",
            e.site_id, e.township, e.start_date,
        )

    async def completed(self, conn: asyncpg.Connection, e: SiteCompleted) -> None:
        await conn.execute(f"UPDATE {SCHEMA}.known_site SET completed_on = $2 WHERE site_id = $1",
                           e.site_id, e.completed_on)

    async def branch_formed(self, conn: asyncpg.Connection, e: BranchFormed) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.known_branch (site_id, formed_on, has_committee) VALUES ($1, $2, $3)"
            " ON CONFLICT (site_id) DO UPDATE SET formed_on = $2, has_committee = $3",
            e.site_id, e.formed_on, bool(e.committee),
        )

    async def branch_dissolved(self, conn: asyncpg.Connection, site_id: str) -> None:
        """A dissolved branch (工程竣工) holds no more meetings or appraisals."""
        await conn.execute(f"DELETE FROM {SCHEMA}.known_branch WHERE site_id = $1", site_id)

    async def arrived(self, conn: asyncpg.Connection, e: MemberArrived) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.presence (member_id, site_id, name, admitted_on, arrived_on)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (member_id) DO UPDATE SET site_id = $2, name = $3, admitted_on = $4, arrived_on = $5",
            e.member_id, e.site_id, e.member.name, e.member.admitted_on, e.arrived_on,
        )

    async def departed(self, conn: asyncpg.Connection, e: MemberDeparted) -> None:
        await conn.execute(
            f"DELETE FROM {SCHEMA}.presence WHERE member_id = $1 AND site_id = $2", e.member_id, e.site_id
        )

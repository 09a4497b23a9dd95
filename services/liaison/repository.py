"""Liaison's inline state: the sites it learnt from membership events, and whether each has a branch."""
from __future__ import annotations

import asyncpg

from contracts.membership import BranchFormed, SiteCompleted, SiteRegistered
from gongdi.bus.consumer import checkpoint_sql, stream_heads_sql
from gongdi.bus.deadletters import retries_sql
from gongdi.store.migrations import Migration, numbered
from gongdi.store.postgres import EVENT_STORE_MIGRATIONS, command_fingerprints, tamper_evidence, trailing_states
from services.liaison.domain import Given, LiaisonSite

SCHEMA = "liaison"

MIGRATIONS = numbered(EVENT_STORE_MIGRATIONS, [
    Migration(2, "sites and branches learnt from membership events; consumer checkpoint", lambda s: f"""
        CREATE TABLE IF NOT EXISTS {s}.known_site (
            site_id text PRIMARY KEY,
            township text NOT NULL,
            has_branch boolean NOT NULL DEFAULT false
        );
        {checkpoint_sql(s)}"""),
    Migration(3, "the policy consumer keeps the head of every membership event stream it applied", stream_heads_sql),
    command_fingerprints(4),
    Migration(5, "dead letters record their retries; applied ones move to retried_letters", retries_sql),
    tamper_evidence(6),
    trailing_states(7),
    Migration(8, "sites keep their completion (nothing is dated after it; sites completed before are not checked)",
              lambda s: f"ALTER TABLE {s}.known_site ADD COLUMN IF NOT EXISTS completed_on date;"),
    Migration(9, "sites keep the day their branch was formed (an agreement is not signed before it)",
              lambda s: f"ALTER TABLE {s}.known_site ADD COLUMN IF NOT EXISTS branch_formed_on date;"),
    Migration(10, "sites keep their start (nothing is dated before it; sites learnt before are not checked)",
              lambda s: f"ALTER TABLE {s}.known_site ADD COLUMN IF NOT EXISTS started_on date;"),
])


class Directory:
    async def context(self, conn: asyncpg.Connection, site_id: str, site: LiaisonSite | None
                      ) -> tuple[Given, str | None]:
        row = await conn.fetchrow(
            f"SELECT township, has_branch, completed_on, branch_formed_on, started_on FROM {SCHEMA}.known_site"
            " WHERE site_id = $1", site_id)
        if row is None:
            return Given(site=site, known=False), None
        return Given(site=site, known=True, has_branch=row["has_branch"], completed_on=row["completed_on"],
                     branch_formed_on=row["branch_formed_on"], started_on=row["started_on"]), row["township"]

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
            f"UPDATE {SCHEMA}.known_site SET has_branch = true, branch_formed_on = $2 WHERE site_id = $1",
            e.site_id, e.formed_on)

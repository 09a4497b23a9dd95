"""Views of mobility: the to-do lists 应转接组织关系 and 失联党员上报 per site, township and city.

The membership projection applies the mobility events with the methods of `MobilityViews` (one projection per
source stream): a row of `mobility_todo` is an open item of a member present; the event that settles it (a
transfer, contact restored, the member's departure) deletes it.
"""
from __future__ import annotations

from typing import Any

import asyncpg

from contracts.envelope import Envelope
from contracts.membership import ContactEscalated, ContactLost, ContactRestored, RelationTransferred, TransferPrompted
from gongdi.store.migrations import Migration
from services.views.stamps import SiteStamps

TRANSFER, LOST, ESCALATED = "transfer", "lost", "escalated"  # the kinds of item

# Numbered in the views' one sequence (see app.py).
MIGRATIONS = (
    Migration(9, "mobility to-dos: transfer prompts, members out of contact, escalations", lambda s: f"""
        CREATE TABLE IF NOT EXISTS {s}.mobility_todo (
            site_id text NOT NULL,
            member_id text NOT NULL,
            kind text NOT NULL,
            since date NOT NULL,
            due_on date,
            fired_on date,
            position bigint NOT NULL,
            PRIMARY KEY (site_id, member_id, kind)
        );"""),
)


class MobilityViews(SiteStamps):
    """Mixed into the membership projection (which has `schema` and stamps sites): not a projection of its own."""

    schema: str

    async def _todo(self, conn: asyncpg.Connection, env: Envelope, site_id: str, member_id: str, kind: str,
                    since: Any, due_on: Any = None, fired_on: Any = None) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.mobility_todo (site_id, member_id, kind, since, due_on, fired_on, position)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site_id, member_id, kind) DO UPDATE SET"
            " since = EXCLUDED.since, due_on = EXCLUDED.due_on, fired_on = EXCLUDED.fired_on,"
            " position = EXCLUDED.position",
            site_id, member_id, kind, since, due_on, fired_on, env.position)
        await self.stamp_site(conn, env, site_id)

    async def _done(self, conn: asyncpg.Connection, site_id: str, member_id: str, *kinds: str) -> None:
        await conn.execute(
            f"DELETE FROM {self.schema}.mobility_todo WHERE site_id = $1 AND member_id = $2 AND kind = ANY($3)",
            site_id, member_id, list(kinds))

    async def mobility_departed(self, conn: asyncpg.Connection, site_id: str, member_id: str) -> None:
        """A member who leaves the site leaves its to-dos: the next stay's are the next site's."""
        await self._done(conn, site_id, member_id, TRANSFER, LOST, ESCALATED)

    async def relation_transferred(self, conn: asyncpg.Connection, env: Envelope, e: RelationTransferred) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.site_member SET relation = 'transferred' WHERE site_id = $1 AND member_id = $2",
            e.site_id, e.member_id)
        await self._done(conn, e.site_id, e.member_id, TRANSFER)
        await self.stamp_site(conn, env, e.site_id)

    async def transfer_prompted(self, conn: asyncpg.Connection, env: Envelope, e: TransferPrompted) -> None:
        await self._todo(conn, env, e.site_id, e.member_id, TRANSFER, e.arrived_on, e.due_on, e.prompted_on)

    async def contact_lost(self, conn: asyncpg.Connection, env: Envelope, e: ContactLost) -> None:
        await self._todo(conn, env, e.site_id, e.member_id, LOST, e.last_contact_on)

    async def contact_escalated(self, conn: asyncpg.Connection, env: Envelope, e: ContactEscalated) -> None:
        await self._todo(conn, env, e.site_id, e.member_id, ESCALATED, e.last_contact_on, e.due_on, e.escalated_on)

    async def contact_restored(self, conn: asyncpg.Connection, env: Envelope, e: ContactRestored) -> None:
        await self._done(conn, e.site_id, e.member_id, LOST, ESCALATED)
        await self.stamp_site(conn, env, e.site_id)


# ---- queries --------------------------------------------------------------------------------------


async def site_todo(conn: asyncpg.Connection, schema: str, site_id: str) -> dict[str, Any]:
    """A site's lists, with names (the site view may show them): open prompts, escalations, members out of contact
    not yet escalated."""
    rows = await conn.fetch(
        f"""SELECT t.kind, t.member_id, m.name, t.since, t.due_on, t.fired_on FROM {schema}.mobility_todo t
            LEFT JOIN {schema}.site_member m USING (site_id, member_id)
            WHERE t.site_id = $1 ORDER BY t.due_on NULLS LAST, t.since, t.member_id""", site_id)
    escalated = {r["member_id"] for r in rows if r["kind"] == ESCALATED}

    def item(r: asyncpg.Record, since: str, due: str | None = None, fired: str | None = None) -> dict[str, Any]:
        out = {"member_id": r["member_id"], "name": r["name"], since: r["since"].isoformat()}
        if due and fired:
            out |= {"due_on": r["due_on"].isoformat(), fired: r["fired_on"].isoformat()}
        return out

    return {
        "transfer_prompts": [item(r, "arrived_on", "due_on", "prompted_on") for r in rows if r["kind"] == TRANSFER],
        "escalated": [item(r, "last_contact_on", "due_on", "escalated_on") for r in rows if r["kind"] == ESCALATED],
        "contact_lost": [item(r, "last_contact_on") for r in rows
                         if r["kind"] == LOST and r["member_id"] not in escalated],
    }


async def summary(conn: asyncpg.Connection, schema: str, scope: str, value: str | None) -> dict[str, Any]:
    """Counts for a township, a department or the city (None), and the sites with an open item by name: no member
    is named, as the township and department views name none."""
    rows = await conn.fetch(
        f"""SELECT t.site_id, s.name,
                   count(*) FILTER (WHERE t.kind = '{TRANSFER}') AS transfer_prompts_open,
                   count(*) FILTER (WHERE t.kind = '{ESCALATED}') AS escalated,
                   count(*) FILTER (WHERE t.kind = '{LOST}') AS contact_lost
            FROM {schema}.mobility_todo t JOIN {schema}.site s USING (site_id)
            WHERE {_scope(schema, scope)}
            GROUP BY t.site_id, s.name ORDER BY s.name, t.site_id""", value)
    sites = [{"site_id": r["site_id"], "name": r["name"], "transfer_prompts_open": r["transfer_prompts_open"],
              "escalated": r["escalated"]} for r in rows if r["transfer_prompts_open"] or r["escalated"]]
    return {
        "transfer_prompts_open": sum(r["transfer_prompts_open"] for r in rows),
        "escalated": sum(r["escalated"] for r in rows),
        "contact_lost": sum(r["contact_lost"] for r in rows),
        "sites": sites,
    }


def _scope(schema: str, scope: str) -> str:
    """The condition on `t.site_id` selecting the scope's sites (as services.views.membership.scope_filter, which
    cannot be imported here: that module imports this one); $1 is the site, township code, department name or
    None for the city."""
    if scope == "city":  # its sites, as scope_filter says why
        return f"$1::text IS NULL AND t.site_id IN (SELECT site_id FROM {schema}.site)"
    if scope not in ("site", "township", "department"):
        raise ValueError(f"no such scope {scope!r}")
    column = "site_id" if scope == "site" else scope
    return f"t.site_id IN (SELECT site_id FROM {schema}.site WHERE {column} = $1)"

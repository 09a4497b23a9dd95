"""Views of membership development (发展党员) and the branch lifecycle: candidates table, projection, figures."""
from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import orjson

from contracts.envelope import Envelope
from contracts.membership import (
    ActivistDesignated,
    ApplicationSubmitted,
    BranchDissolved,
    DevelopmentTargetDesignated,
    FullMembershipConfirmed,
    PartyGroupClosed,
    ProbationaryAdmitted,
    ProbationExtended,
)
from contracts.rules import DEFAULT_RULES, Rules, branch_size_warning
from gongdi.store.migrations import Migration
from services.views.stamps import SiteStamps

STAGES = ("applicant", "activist", "target", "probationary", "full")  # in order (services.membership.domain.Stage)

# Numbered in the views' one sequence (see app.py).
MIGRATIONS = (
    # One row per person on a site's development path; `approvals` maps each step to the organisation that approved
    # it. `admitted_here`: admitted on this site (a probationary member who arrived gets a row when extended or
    # confirmed, and is not counted as developed here). Closed groups stay listed with their closing day.
    Migration(10, "membership development (发展党员); closed party groups", lambda s: f"""
        CREATE TABLE IF NOT EXISTS {s}.development (
            site_id text NOT NULL,
            person_id text NOT NULL,
            name text NOT NULL,
            stage text NOT NULL,
            applied_on date,
            activist_on date,
            target_on date,
            admitted_on date,
            admitted_here boolean NOT NULL DEFAULT false,
            probation_ends date,
            extensions int NOT NULL DEFAULT 0,
            confirmed_on date,
            approvals jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            PRIMARY KEY (site_id, person_id)
        );
        ALTER TABLE {s}.party_group ADD COLUMN IF NOT EXISTS closed_on date;"""),
)


class DevelopmentViews(SiteStamps):
    """Mixed into the membership projection (which has `schema` and stamps sites): not a projection of its own."""

    schema: str

    async def _advance(self, conn: asyncpg.Connection, env: Envelope, site_id: str, person_id: str, stage: str | None,
                       column: str, day: dt.date, step: str, approved_by: str) -> None:
        """Move a person to `stage` (None: keep it) on `day`, recording who approved the step."""
        await conn.execute(
            f"UPDATE {self.schema}.development SET stage = coalesce($3, stage), {column} = $4,"
            " approvals = approvals || jsonb_build_object($5::text, $6::text)"
            " WHERE site_id = $1 AND person_id = $2",
            site_id, person_id, stage, day, step, approved_by)
        await self.stamp_site(conn, env, site_id)

    async def _ensure_member_row(self, conn: asyncpg.Connection, site_id: str, person_id: str) -> None:
        """A probationary member who arrived (admitted elsewhere) gets a row from the member's facts."""
        await conn.execute(
            f"INSERT INTO {self.schema}.development (site_id, person_id, name, stage, admitted_on)"
            f" SELECT site_id, member_id, name, 'probationary', admitted_on FROM {self.schema}.site_member"
            " WHERE site_id = $1 AND member_id = $2 ON CONFLICT (site_id, person_id) DO NOTHING",
            site_id, person_id)

    async def application_submitted(self, conn: asyncpg.Connection, env: Envelope, e: ApplicationSubmitted) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.development (site_id, person_id, name, stage, applied_on)"
            " VALUES ($1, $2, $3, 'applicant', $4)",
            e.site_id, e.person_id, e.name, e.applied_on)  # no birth date: a view never shows it
        await self.stamp_site(conn, env, e.site_id)

    async def activist_designated(self, conn: asyncpg.Connection, env: Envelope, e: ActivistDesignated) -> None:
        await self._advance(conn, env, e.site_id, e.person_id, "activist", "activist_on", e.designated_on,
                            "activist", e.approved_by)

    async def development_target_designated(self, conn: asyncpg.Connection, env: Envelope,
                                            e: DevelopmentTargetDesignated) -> None:
        await self._advance(conn, env, e.site_id, e.person_id, "target", "target_on", e.designated_on, "target",
                            e.approved_by)

    async def probationary_admitted(self, conn: asyncpg.Connection, env: Envelope, e: ProbationaryAdmitted) -> None:
        # The MemberArrived of the same command adds the member present; this row keeps the path.
        await conn.execute(
            f"UPDATE {self.schema}.development SET probation_ends = $3, admitted_here = true"
            " WHERE site_id = $1 AND person_id = $2", e.site_id, e.person_id, e.probation_ends)
        await self._advance(conn, env, e.site_id, e.person_id, "probationary", "admitted_on", e.admitted_on,
                            "probationary", e.approved_by)

    async def probation_extended(self, conn: asyncpg.Connection, env: Envelope, e: ProbationExtended) -> None:
        await self._ensure_member_row(conn, e.site_id, e.person_id)
        await conn.execute(
            f"UPDATE {self.schema}.development SET extensions = extensions + 1 WHERE site_id = $1 AND person_id = $2",
            e.site_id, e.person_id)
        await self._advance(conn, env, e.site_id, e.person_id, None, "probation_ends", e.probation_ends, "extended",
                            e.approved_by)

    async def full_membership_confirmed(self, conn: asyncpg.Connection, env: Envelope,
                                        e: FullMembershipConfirmed) -> None:
        await self._ensure_member_row(conn, e.site_id, e.person_id)
        await conn.execute(
            f"UPDATE {self.schema}.site_member SET status = 'full' WHERE site_id = $1 AND member_id = $2",
            e.site_id, e.person_id)
        await self._advance(conn, env, e.site_id, e.person_id, "full", "confirmed_on", e.confirmed_on, "full",
                            e.approved_by)

    async def branch_dissolved(self, conn: asyncpg.Connection, env: Envelope, e: BranchDissolved) -> None:
        # Kept in `branch` for history; every count of branches leaves a dissolved one out.
        await conn.execute(
            f"UPDATE {self.schema}.site SET branch = branch || jsonb_build_object('dissolved_on', $2::text)"
            " WHERE site_id = $1", e.site_id, e.dissolved_on.isoformat())
        await self.stamp_site(conn, env, e.site_id)

    async def party_group_closed(self, conn: asyncpg.Connection, env: Envelope, e: PartyGroupClosed) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.party_group SET closed_on = $3 WHERE site_id = $1 AND group_id = $2",
            e.site_id, e.group_id, e.closed_on)
        await self.stamp_site(conn, env, e.site_id)


# ---- queries --------------------------------------------------------------------------------------------------


async def figures(conn: asyncpg.Connection, schema: str, condition: str, key: str | None, today: dt.date
                  ) -> dict[str, int]:
    """The development figures of a scope (city, township, department, site) on `today`: people at each stage now
    (`applied`: applicants and activists, those who applied and are not yet development targets; `activists`: of
    them, the activists), `developed`: admitted as probationary on the scope's sites up to today, of which
    `developed_this_year` in today's year (and so `applied_this_year`, `activists_this_year`,
    `confirmed_this_year`: applications, activists named and confirmations dated in it), `full_confirmed`: confirmed
    full members, `overdue`: probationary members
    whose probation (with any extension) ended before today and who are not yet confirmed. `condition` selects the
    scope's `site_id`s with `key` as $1 (services.views.membership.scope_filter)."""
    row = await conn.fetchrow(
        f"""
        SELECT count(*) FILTER (WHERE stage IN ('applicant', 'activist')) AS applied,
               count(*) FILTER (WHERE stage = 'activist') AS activists,
               count(*) FILTER (WHERE stage = 'target') AS targets,
               count(*) FILTER (WHERE stage = 'probationary') AS probationary,
               count(*) FILTER (WHERE stage = 'full') AS full_confirmed,
               count(*) FILTER (WHERE admitted_here) AS developed,
               count(*) FILTER (WHERE admitted_here AND admitted_on >= date_trunc('year', $2::date)::date)
                   AS developed_this_year,
               count(*) FILTER (WHERE applied_on >= date_trunc('year', $2::date)::date) AS applied_this_year,
               count(*) FILTER (WHERE activist_on >= date_trunc('year', $2::date)::date) AS activists_this_year,
               count(*) FILTER (WHERE confirmed_on >= date_trunc('year', $2::date)::date) AS confirmed_this_year,
               count(*) FILTER (WHERE stage = 'probationary' AND probation_ends < $2::date) AS overdue
        FROM {schema}.development WHERE {condition}""",
        key, today)
    return {k: int(v) for k, v in dict(row).items()}


async def candidates(conn: asyncpg.Connection, schema: str, site_id: str) -> dict[str, list[dict[str, Any]]]:
    """A site's development path by stage, with names and dates (never a birth date); `departed`: a member who
    has left the site since (their row stays: the site admitted them; the pages say they left)."""
    rows = await conn.fetch(
        f"SELECT person_id, name, stage, applied_on, activist_on, target_on, admitted_on, probation_ends, extensions,"
        f" confirmed_on, approvals::text AS approvals,"
        f" NOT EXISTS (SELECT 1 FROM {schema}.site_member m WHERE m.site_id = d.site_id AND m.member_id = d.person_id)"
        f" AND EXISTS (SELECT 1 FROM {schema}.site_departure x WHERE x.site_id = d.site_id"
        "  AND x.member_id = d.person_id) AS departed"
        f" FROM {schema}.development d WHERE site_id = $1 ORDER BY person_id", site_id)
    out: dict[str, list[dict[str, Any]]] = {stage: [] for stage in STAGES}
    for r in rows:
        item = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in dict(r).items() if k != "stage"}
        item["approvals"] = orjson.loads(r["approvals"])
        out[r["stage"]].append(item)
    return out


def branch_warning(members: int, has_branch: bool, rules: Rules = DEFAULT_RULES) -> str | None:
    """The general-branch or base-committee warning of a site's active branch (contracts.rules)."""
    return branch_size_warning(members, rules) if has_branch else None

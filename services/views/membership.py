"""Views of membership: the site, member and party-group tables, their projection, and the site and city queries."""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson

from contracts import membership
from contracts.city import City
from contracts.envelope import Envelope
from contracts.membership import (
    BranchFormed,
    MemberArrived,
    MemberDeparted,
    PartyGroupFormed,
    SiteCompleted,
    SiteRegistered,
    WorkforceReported,
)
from contracts.rules import DEFAULT_RULES, Rules, qualifies_for_coverage
from contracts.timeline import city_today
from gongdi.bus.projection import Projection
from gongdi.store.migrations import Migration
from services.views.development import DevelopmentViews, branch_warning
from services.views.mobility import MobilityViews

# ---- tables ---------------------------------------------------------------------------------------


# Changes to these tables after release 0.1, numbered in the views' one sequence (see app.py).
MIGRATIONS = (
    Migration(2, "sites: completion date",
              lambda s: f"ALTER TABLE {s}.site ADD COLUMN IF NOT EXISTS completed_on date;"),
    # A site's township sees who recorded each departure: another township's arrival moves members away too.
    Migration(4, "departures and who recorded them", lambda s: f"""
        CREATE TABLE IF NOT EXISTS {s}.site_departure (
            position bigint PRIMARY KEY,
            site_id text NOT NULL,
            member_id text NOT NULL,
            name text NOT NULL,
            departed_on date NOT NULL,
            moved_to_site text,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS site_departure_site ON {s}.site_departure (site_id, position);"""),
    # The city's arrivals by month count every stay, ended or not: a departure keeps the arrival date of the stay
    # it ends (departures recorded before this migration have none until a rebuild).
    Migration(6, "departures keep the arrival date of the stay they end",
              lambda s: f"ALTER TABLE {s}.site_departure ADD COLUMN IF NOT EXISTS arrived_on date;"),
    # The roster (党员花名册) exported from the site view carries every fact an arrival records, so that it imports
    # into another platform; members applied before this migration have none until the rebuild the code version
    # asks for (services/views/app.py).
    Migration(11, "members present keep gender and home organisation", lambda s: f"""
        ALTER TABLE {s}.site_member ADD COLUMN IF NOT EXISTS gender text;
        ALTER TABLE {s}.site_member ADD COLUMN IF NOT EXISTS home_org text;"""),
    # The site page says why each member left (before, only the history did); departures applied before this have
    # none until the rebuild views version 4 brings.
    Migration(13, "departures keep their reason",
              lambda s: f"ALTER TABLE {s}.site_departure ADD COLUMN IF NOT EXISTS reason text;"),
)
RECENT_DEPARTURES = 20


def tables_sql(schema: str) -> str:
    """The schema itself and the membership tables (SQL is schema-parameterised: rebuild replays elsewhere)."""
    return f"""
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {schema}.site (
        site_id text PRIMARY KEY,
        name text NOT NULL,
        township text NOT NULL,
        department text NOT NULL,
        cost_wan numeric NOT NULL,
        planned_months int NOT NULL,
        start_date date NOT NULL,
        units jsonb NOT NULL,
        qualifies boolean NOT NULL,
        workforce int NOT NULL DEFAULT 0,
        branch jsonb,
        last_position bigint NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS {schema}.site_member (
        site_id text NOT NULL,
        member_id text NOT NULL,
        name text NOT NULL,
        status text NOT NULL,
        unit_kind text NOT NULL,
        unit_name text NOT NULL,
        job text NOT NULL,
        section text NOT NULL,
        relation text NOT NULL,
        admitted_on date NOT NULL,
        arrived_on date NOT NULL,
        PRIMARY KEY (site_id, member_id)
    );
    CREATE TABLE IF NOT EXISTS {schema}.party_group (
        site_id text NOT NULL,
        group_id text NOT NULL,
        name text NOT NULL,
        section text NOT NULL,
        leader text NOT NULL,
        members jsonb NOT NULL,
        formed_on date NOT NULL,
        PRIMARY KEY (site_id, group_id)
    );
    """


# ---- projection -----------------------------------------------------------------------------------


class MembershipProjection(DevelopmentViews, MobilityViews, Projection):
    """Applies membership events to the per-site tables; the city view is aggregated from them on read."""

    # Every row it writes belongs to the event's site, and each site is one event stream.
    streams_commute = True
    contract = membership

    def __init__(self, schema: str, rules: Rules = DEFAULT_RULES):
        super().__init__()
        self.schema = schema
        self.rules = rules

    async def site_registered(self, conn: asyncpg.Connection, env: Envelope, e: SiteRegistered) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.site (site_id, name, township, department, cost_wan, planned_months,"
            " start_date, units, qualifies, last_position, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)",
            e.site_id, e.name, e.township, e.department, e.cost_wan, e.planned_months, e.start_date,
            orjson.dumps(e.units.model_dump()).decode(),
            qualifies_for_coverage(e.cost_wan, e.planned_months, self.rules), env.position, env.recorded_at,
        )

    @functools.cached_property
    def _batched_workforce(self) -> str:
        return (f"UPDATE {self.schema}.site AS s SET workforce = a.headcount"
                " FROM unnest($1::text[], $2::bigint[], $3::int[]) AS a(site_id, position, headcount)"
                " WHERE s.site_id = a.site_id")

    async def workforce_reported(self, conn: asyncpg.Connection, env: Envelope, e: WorkforceReported) -> None:
        stamp = getattr(conn, "stamp", None)
        if stamp is not None:
            # A rebuild's batch: only a site's latest report of the batch counts, so one statement for the batch's
            # sites instead of one per wave of reports (the server spent 29 µs a report on those, measured).
            stamp(self._batched_workforce, e.site_id, env.position, e.headcount)
            await self.stamp_site(conn, env, e.site_id)
            return
        await conn.execute(
            f"UPDATE {self.schema}.site SET workforce = $2, last_position = $3, updated_at = $4 WHERE site_id = $1",
            e.site_id, e.headcount, env.position, env.recorded_at,
        )

    async def member_arrived(self, conn: asyncpg.Connection, env: Envelope, e: MemberArrived) -> None:
        m = e.member
        await self.with_stamp(
            conn, env,
            f"INSERT INTO {self.schema}.site_member (site_id, member_id, name, status, unit_kind, unit_name, job,"
            " section, relation, admitted_on, arrived_on, gender, home_org)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            # The choices are `StrEnum`s, so strings as they are: their `.value`s cost a microsecond a rebuilt arrival.
            e.site_id, e.member_id, m.name, m.status, m.unit_kind, m.unit_name, m.job,
            m.section, m.relation, m.admitted_on, e.arrived_on, m.gender, m.home_org,
        )

    async def member_departed(self, conn: asyncpg.Connection, env: Envelope, e: MemberDeparted) -> None:
        # The member's row goes; the departure is logged with the stay's name and arrival date.
        s = self.schema
        await self.with_stamp(
            conn, env,
            f"INSERT INTO {s}.site_departure (position, site_id, member_id, name, departed_on, moved_to_site,"
            " recorded_by, recorded_at, arrived_on, reason)"
            " SELECT $3, $1, $2, coalesce((SELECT name FROM gone), ''), $4, $5, $6, $7, (SELECT arrived_on FROM gone),"
            " $8",
            e.site_id, e.member_id, env.position, e.departed_on, e.moved_to_site, env.actor, env.recorded_at, e.reason,
            ctes=f"gone AS (DELETE FROM {s}.site_member WHERE site_id = $1 AND member_id = $2"
                 " RETURNING name, arrived_on)",
            site_id=e.site_id,
        )
        await self.mobility_departed(conn, e.site_id, e.member_id)

    async def branch_formed(self, conn: asyncpg.Connection, env: Envelope, e: BranchFormed) -> None:
        branch = e.model_dump(mode="json", exclude={"site_id"})
        await conn.execute(
            f"UPDATE {self.schema}.site SET branch = $2::jsonb, last_position = $3, updated_at = $4 WHERE site_id = $1",
            e.site_id, orjson.dumps(branch).decode(), env.position, env.recorded_at,
        )

    async def party_group_formed(self, conn: asyncpg.Connection, env: Envelope, e: PartyGroupFormed) -> None:
        await self.with_stamp(
            conn, env,
            f"INSERT INTO {self.schema}.party_group (site_id, group_id, name, section, leader, members, formed_on)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
            e.site_id, e.group_id, e.name, e.section, e.leader, orjson.dumps(e.members).decode(), e.formed_on,
        )

    async def site_completed(self, conn: asyncpg.Connection, env: Envelope, e: SiteCompleted) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.site SET completed_on = $2, last_position = $3, updated_at = $4 WHERE site_id = $1",
            e.site_id, e.completed_on, env.position, env.recorded_at,
        )


# ---- queries --------------------------------------------------------------------------------------

AREAS = ("township", "department")  # the columns of `site` that group sites into an area: code / name
ACTIVE_BRANCH = "(s.branch IS NOT NULL AND NOT s.branch ? 'dissolved_on')"  # a dissolved branch stays for history


def scope_filter(schema: str, scope: str) -> str:
    """A condition on `site_id` selecting the scope's sites; its parameter is $1: the site id, the township code,
    the department's name (what a site stores), or None for the city."""
    if scope == "site":
        return "site_id = $1"
    if scope in AREAS:
        return f"site_id IN (SELECT site_id FROM {schema}.site WHERE {scope} = $1)"
    if scope == "city":
        # The city is its sites: a fact of a site the view does not hold yet (in a view as of a day by business
        # time, an application dated before the site's registration) is no township's, so no city's either.
        return f"$1::text IS NULL AND site_id IN (SELECT site_id FROM {schema}.site)"
    raise ValueError(f"no such scope {scope!r}")


async def city(conn: asyncpg.Connection, schema: str, city: City, rules: Rules = DEFAULT_RULES,
               today: dt.date | None = None) -> dict[str, Any]:
    s = schema
    day = today or city_today()
    rows = await conn.fetch(
        f"""
        SELECT s.site_id, s.name, s.township, s.department, s.workforce, s.qualifies, s.start_date,
               {ACTIVE_BRANCH} AS has_branch, s.completed_on IS NOT NULL AS completed,
               coalesce(m.members, 0) AS members, coalesce(m.full_members, 0) AS full_members
        FROM {s}.site s
        LEFT JOIN (SELECT site_id, count(*) AS members, count(*) FILTER (WHERE status = 'full') AS full_members
                   FROM {s}.site_member GROUP BY site_id) m USING (site_id)
        ORDER BY s.site_id"""
    )
    # A completed project needs no branch any more, and one not started yet needs none so far: neither is a gap
    # nor asked to form one (a project registered for next year was a 空白点 at once).
    building = [r for r in rows if not r["completed"] and r["start_date"] <= day]
    qualifying = [r for r in building if r["qualifies"]]
    gaps = [_brief(r) for r in qualifying if not r["has_branch"]]
    should_form = [
        _brief(r) for r in building if not r["has_branch"] and r["full_members"] >= rules.branch_min_full_members
    ]
    townships: dict[str, dict[str, Any]] = {}
    order = {code: i for i, code in enumerate(city.townships)}
    for r in rows:
        t = townships.setdefault(
            r["township"],
            {"township": r["township"], "name": city.township_name(r["township"]), "projects": 0,
             "workers": 0, "members": 0, "branches": 0},
        )
        t["projects"] += 1
        t["workers"] += r["workforce"]
        t["members"] += r["members"]
        t["branches"] += int(r["has_branch"])
    return {
        "city": city.code,
        "city_name": city.name,
        "projects": len(rows),
        "completed": len(rows) - len(building),
        "workers": sum(r["workforce"] for r in rows),
        "members": sum(r["members"] for r in rows),
        "full_members": sum(r["full_members"] for r in rows),
        "branches": sum(1 for r in rows if r["has_branch"]),
        "coverage": coverage([r["has_branch"] for r in qualifying], rules),
        "gaps": gaps,
        "should_form_branch": should_form,
        # 党总支 over 50 members, 党的基层委员会 over 100 (contracts.rules.branch_size_warning)
        "branch_warnings": [{**_brief(r), "members": r["members"], "warning": w} for r in rows
                            if (w := branch_warning(r["members"], r["has_branch"], rules))],
        # In the city file's order, as the pages' navigation and the report list them (by code, 白琳 came first).
        "townships": sorted(townships.values(), key=lambda t: (order.get(t["township"], len(order)), t["township"])),
        "by_month": await by_month(conn, schema),
    }


def coverage(branched: list[bool], rules: Rules) -> dict[str, Any]:
    """覆盖（已建/应建）: of the projects the rule makes qualify (one flag each: has it a branch?), and the rule."""
    return {"qualifying": len(branched), "covered": sum(branched),
            "rule": f"造价≥{rules.coverage_min_cost_wan}万元且工期≥{rules.coverage_min_months}个月"}


async def by_month(conn: asyncpg.Connection, schema: str) -> list[dict[str, Any]]:
    """Per month, from the first to the last with anything in it (months between with nothing included): members'
    arrivals (every stay, present or ended), departures (moves to another site included) and sites started."""
    s = schema
    rows = await conn.fetch(
        f"""
        WITH dated AS (
            SELECT arrived_on AS day, 1 AS arrivals, 0 AS departures, 0 AS started FROM {s}.site_member
            UNION ALL SELECT arrived_on, 1, 0, 0 FROM {s}.site_departure WHERE arrived_on IS NOT NULL
            UNION ALL SELECT departed_on, 0, 1, 0 FROM {s}.site_departure
            UNION ALL SELECT start_date, 0, 0, 1 FROM {s}.site),
        monthly AS (
            SELECT date_trunc('month', day::timestamp) AS month, sum(arrivals) AS arrivals,
                   sum(departures) AS departures, sum(started) AS started
            FROM dated GROUP BY 1)
        SELECT to_char(m, 'YYYY-MM') AS month, coalesce(monthly.arrivals, 0)::bigint AS arrivals,
               coalesce(monthly.departures, 0)::bigint AS departures, coalesce(monthly.started, 0)::bigint AS started
        FROM generate_series((SELECT min(month) FROM monthly), (SELECT max(month) FROM monthly), interval '1 month')
             AS m
        LEFT JOIN monthly ON monthly.month = m
        ORDER BY m"""
    )
    return [{"month": r["month"], "arrivals": r["arrivals"], "departures": r["departures"],
             "sites_started": r["started"]} for r in rows]


async def area(conn: asyncpg.Connection, schema: str, column: str, value: str, city: City,
               rules: Rules = DEFAULT_RULES, today: dt.date | None = None) -> dict[str, Any] | None:
    """The figures of the sites whose `column` (township code or department name) is `value`, and the sites
    themselves by name; None when there is none. Counts and project names: no member is named."""
    if column not in AREAS:
        raise ValueError(f"no such area {column!r}")
    s = schema
    rows = await conn.fetch(
        f"""
        SELECT s.site_id, s.name, s.township, s.department, s.workforce, s.qualifies, s.start_date,
               CASE WHEN {ACTIVE_BRANCH} THEN s.branch->>'name' END AS branch,
               s.completed_on, coalesce(m.members, 0) AS members, coalesce(m.full_members, 0) AS full_members
        FROM {s}.site s
        LEFT JOIN (SELECT site_id, count(*) AS members, count(*) FILTER (WHERE status = 'full') AS full_members
                   FROM {s}.site_member WHERE {scope_filter(s, column)} GROUP BY site_id) m USING (site_id)
        WHERE s.{column} = $1
        ORDER BY s.name, s.site_id""",
        value,
    )
    if not rows:
        return None
    sites = []
    day = today or city_today()
    for r in rows:
        building = r["completed_on"] is None and r["start_date"] <= day
        sites.append({
            "site_id": r["site_id"],
            "name": r["name"],
            "township": r["township"],
            "township_name": city.township_name(r["township"]),
            "department": r["department"],
            "workforce": r["workforce"],
            "members_present": r["members"],
            "full_members": r["full_members"],
            "branch": r["branch"],
            "qualifies": r["qualifies"],
            "gap": r["qualifies"] and r["branch"] is None and building,
            "should_form_branch": r["branch"] is None and building
                                  and r["full_members"] >= rules.branch_min_full_members,
            "completed_on": r["completed_on"].isoformat() if r["completed_on"] else None,
            "building": building,  # started and not completed: a site the coverage asks a branch of
            "branch_warning": branch_warning(r["members"], r["branch"] is not None, rules),
        })
    return {
        "projects": len(sites),
        # as the city counts it: a completed project needs no branch any more and is out of both figures
        "coverage": coverage([x["branch"] is not None for x in sites if x["qualifies"] and x["building"]], rules),
        "workers": sum(x["workforce"] for x in sites),
        "members": sum(x["members_present"] for x in sites),
        "branches": sum(1 for x in sites if x["branch"] is not None),
        "sites": sites,
        "branch_warnings": [{"site_id": x["site_id"], "name": x["name"], "members": x["members_present"],
                             "warning": x["branch_warning"]} for x in sites if x["branch_warning"]],
    }


def no_sites(rules: Rules = DEFAULT_RULES) -> dict[str, Any]:
    """`area`'s figures for an area of the city without a site (yet, or as of a day before its first)."""
    return {"projects": 0, "coverage": coverage([], rules), "workers": 0, "members": 0, "branches": 0, "sites": [],
            "branch_warnings": []}


def _brief(r: asyncpg.Record) -> dict[str, Any]:
    return {"site_id": r["site_id"], "name": r["name"], "township": r["township"],
            "full_members": r["full_members"]}


async def site(conn: asyncpg.Connection, schema: str, site_id: str, city: City, rules: Rules = DEFAULT_RULES,
               today: dt.date | None = None) -> dict[str, Any] | None:
    s = schema
    row = await conn.fetchrow(f"SELECT * FROM {s}.site WHERE site_id = $1", site_id)
    if row is None:
        return None
    members = await conn.fetch(
        f"SELECT member_id, name, status, unit_kind, unit_name, job, section, relation, arrived_on, gender, home_org,"
        f" admitted_on FROM {s}.site_member WHERE site_id = $1 ORDER BY member_id",
        site_id,
    )
    groups = await conn.fetch(
        f"SELECT group_id, name, section, leader, members::text AS members, formed_on, closed_on FROM {s}.party_group"
        " WHERE site_id = $1 ORDER BY group_id",
        site_id,
    )
    departures = await conn.fetch(
        f"SELECT d.member_id, d.name, d.departed_on, d.moved_to_site, t.name AS moved_to_name, d.recorded_by,"
        " coalesce(d.reason, '') AS reason"
        f" FROM {s}.site_departure d LEFT JOIN {s}.site t ON t.site_id = d.moved_to_site"
        f" WHERE d.site_id = $1 ORDER BY d.position DESC LIMIT {RECENT_DEPARTURES}",
        site_id,
    )
    full = sum(1 for m in members if m["status"] == "full")
    present = {m["member_id"]: m["name"] for m in members}
    branch = orjson.loads(row["branch"]) if row["branch"] else None
    # A secretary or a group's member who left is still named (as they left), and flagged: the post needs filling.
    held = {branch.get("secretary", "")} if branch else set()
    for g in groups:
        held |= {g["leader"], *orjson.loads(g["members"])}
    names = {**await _departed_names(conn, s, site_id, sorted(held - present.keys())), **present}
    building = row["completed_on"] is None and row["start_date"] <= (today or city_today())
    if branch is not None:
        branch["secretary_name"] = names.get(branch.get("secretary", ""))
        branch["secretary_departed"] = branch.get("secretary") not in present
    return {
        "site_id": row["site_id"],
        "name": row["name"],
        "township": row["township"],
        "township_name": city.township_name(row["township"]),
        "department": row["department"],
        "cost_wan": format(row["cost_wan"], "f"),  # 20000, not 2E+4 (numeric keeps the sender's exponent)
        "planned_months": row["planned_months"],
        "start_date": row["start_date"].isoformat(),
        "units": orjson.loads(row["units"]),
        "workforce": row["workforce"],
        "qualifies": row["qualifies"],
        "completed_on": row["completed_on"].isoformat() if row["completed_on"] else None,
        "branch": branch,
        "gap": row["qualifies"] and branch is None and building,
        "should_form_branch": branch is None and building and full >= rules.branch_min_full_members,
        "branch_warning": branch_warning(len(members), branch is not None and "dissolved_on" not in branch, rules),
        "members_present": len(members),
        "full_members": full,
        "by_unit_kind": _count(members, "unit_kind"),
        "by_section": _count(members, "section"),
        "by_relation": _count(members, "relation"),
        "members": [
            {**dict(m), "arrived_on": m["arrived_on"].isoformat(), "admitted_on": m["admitted_on"].isoformat()}
            for m in members
        ],
        "groups": [_group(g, names, present) for g in groups],
        "recent_departures": [{**dict(d), "departed_on": d["departed_on"].isoformat()} for d in departures],
        "last_position": row["last_position"],
    }


def _group(g: asyncpg.Record, names: dict[str, str], present: Mapping[str, str]) -> dict[str, Any]:
    ids = orjson.loads(g["members"])
    return {**dict(g), "members": ids, "formed_on": g["formed_on"].isoformat(),
            "closed_on": g["closed_on"].isoformat() if g["closed_on"] else None,
            "leader_name": names.get(g["leader"]), "member_names": [names.get(m) for m in ids],
            "departed": [m for m in ids if m not in present]}


async def _departed_names(conn: asyncpg.Connection, schema: str, site_id: str, ids: list[str]) -> dict[str, str]:
    """The names members who left the site left under (their last departure from it)."""
    if not ids:
        return {}
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (member_id) member_id, name FROM {schema}.site_departure"
        " WHERE site_id = $1 AND member_id = ANY($2::text[]) ORDER BY member_id, position DESC", site_id, ids)
    return {r["member_id"]: r["name"] for r in rows if r["name"]}


def _count(rows: list[asyncpg.Record], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items()))

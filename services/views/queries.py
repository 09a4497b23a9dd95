"""Queries over the read models: the city-wide figures and one site's page."""
from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from contracts.geo import CITY, CITY_NAME, TOWNSHIPS
from contracts.rules import DEFAULT_RULES, Rules


async def city(conn: asyncpg.Connection, schema: str, rules: Rules = DEFAULT_RULES) -> dict[str, Any]:
    s = schema
    rows = await conn.fetch(
        f"""
        SELECT s.site_id, s.name, s.township, s.department, s.workforce, s.qualifies,
               s.branch IS NOT NULL AS has_branch,
               coalesce(m.members, 0) AS members, coalesce(m.full_members, 0) AS full_members
        FROM {s}.site s
        LEFT JOIN (SELECT site_id, count(*) AS members, count(*) FILTER (WHERE status = 'full') AS full_members
                   FROM {s}.site_member GROUP BY site_id) m USING (site_id)
        ORDER BY s.site_id"""
    )
    qualifying = [r for r in rows if r["qualifies"]]
    gaps = [_brief(r) for r in qualifying if not r["has_branch"]]
    should_form = [
        _brief(r) for r in rows if not r["has_branch"] and r["full_members"] >= rules.branch_min_full_members
    ]
    townships: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = townships.setdefault(
            r["township"],
            {"township": r["township"], "name": TOWNSHIPS.get(r["township"], r["township"]), "projects": 0,
             "workers": 0, "members": 0, "branches": 0},
        )
        t["projects"] += 1
        t["workers"] += r["workforce"]
        t["members"] += r["members"]
        t["branches"] += int(r["has_branch"])
    return {
        "city": CITY,
        "city_name": CITY_NAME,
        "projects": len(rows),
        "workers": sum(r["workforce"] for r in rows),
        "members": sum(r["members"] for r in rows),
        "full_members": sum(r["full_members"] for r in rows),
        "branches": sum(1 for r in rows if r["has_branch"]),
        "coverage": {
            "qualifying": len(qualifying),
            "covered": sum(1 for r in qualifying if r["has_branch"]),
            "rule": f"造价≥{rules.coverage_min_cost_wan}万元且工期≥{rules.coverage_min_months}个月",
        },
        "gaps": gaps,
        "should_form_branch": should_form,
        "townships": sorted(townships.values(), key=lambda t: t["township"]),
    }


def _brief(r: asyncpg.Record) -> dict[str, Any]:
    return {"site_id": r["site_id"], "name": r["name"], "township": r["township"],
            "full_members": r["full_members"]}


async def site(conn: asyncpg.Connection, schema: str, site_id: str, rules: Rules = DEFAULT_RULES
               ) -> dict[str, Any] | None:
    s = schema
    row = await conn.fetchrow(f"SELECT * FROM {s}.site WHERE site_id = $1", site_id)
    if row is None:
        return None
    members = await conn.fetch(
        f"SELECT member_id, name, status, unit_kind, unit_name, job, section, relation, arrived_on"
        f" FROM {s}.site_member WHERE site_id = $1 ORDER BY member_id",
        site_id,
    )
    groups = await conn.fetch(
        f"SELECT group_id, name, section, leader, members::text AS members, formed_on FROM {s}.party_group"
        " WHERE site_id = $1 ORDER BY group_id",
        site_id,
    )
    full = sum(1 for m in members if m["status"] == "full")
    branch = orjson.loads(row["branch"]) if row["branch"] else None
    return {
        "site_id": row["site_id"],
        "name": row["name"],
        "township": row["township"],
        "township_name": TOWNSHIPS.get(row["township"], row["township"]),
        "department": row["department"],
        "cost_wan": str(row["cost_wan"]),
        "planned_months": row["planned_months"],
        "start_date": row["start_date"].isoformat(),
        "units": orjson.loads(row["units"]),
        "workforce": row["workforce"],
        "qualifies": row["qualifies"],
        "branch": branch,
        "gap": row["qualifies"] and branch is None,
        "should_form_branch": branch is None and full >= rules.branch_min_full_members,
        "members_present": len(members),
        "full_members": full,
        "by_unit_kind": _count(members, "unit_kind"),
        "by_section": _count(members, "section"),
        "by_relation": _count(members, "relation"),
        "members": [
            {**dict(m), "arrived_on": m["arrived_on"].isoformat()} for m in members
        ],
        "groups": [
            {**dict(g), "members": orjson.loads(g["members"]), "formed_on": g["formed_on"].isoformat()}
            for g in groups
        ],
        "last_position": row["last_position"],
    }


def _count(rows: list[asyncpg.Record], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items()))

"""Queries over the activity read models: counts for a site or the city, flags, birthdays, open talks."""
from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from contracts.activities import ActivityKind, PostKind, TeamKind, VisitKind


def _where(site_id: str | None, column: str = "site_id") -> str:
    return f"WHERE {column} = $1" if site_id else f"WHERE ($1::text IS NULL OR {column} = $1)"


async def summary(conn: asyncpg.Connection, schema: str, site_id: str | None, today: dt.date) -> dict[str, Any]:
    """Counts for one site, or for the whole city when `site_id` is None."""
    s, w = schema, _where(site_id)

    async def by_kind(table: str, kinds: list[str]) -> dict[str, int]:
        rows = await conn.fetch(f"SELECT kind, count(*) AS n FROM {s}.{table} {w} GROUP BY kind", site_id)
        counts = {r["kind"]: r["n"] for r in rows}
        return {k: counts.get(k, 0) for k in kinds}

    posts = await by_kind("post", [k.value for k in PostKind])
    talks = await conn.fetchrow(
        f"SELECT count(*) FILTER (WHERE closed_on IS NULL) AS open,"
        f" count(*) FILTER (WHERE closed_on IS NULL AND due_on < $2) AS overdue,"
        f" count(*) FILTER (WHERE closed_on IS NOT NULL) AS done FROM {s}.talk_obligation {w}",
        site_id, today,
    )
    lessons = await conn.fetch(
        f"SELECT kind, count(*) AS sessions, sum(headcount)::int AS attendance FROM {s}.activity {w} GROUP BY kind",
        site_id,
    )
    per_kind = {r["kind"]: {"sessions": r["sessions"], "attendance": r["attendance"]} for r in lessons}
    birthdays = await conn.fetchval(
        f"SELECT count(*) FROM {s}.site_member {w} AND extract(month FROM admitted_on) = $2",
        site_id, today.month,
    )
    return {
        "zones": await conn.fetchval(f"SELECT count(*) FROM {s}.zone {w}", site_id),
        "teams": await by_kind("team", [k.value for k in TeamKind]),
        "posts": posts,
        "post_kinds": sum(1 for n in posts.values() if n),
        "work_points": await conn.fetchval(f"SELECT count(*) FROM {s}.work_point {w}", site_id),
        "innovations": await conn.fetchval(f"SELECT count(*) FROM {s}.innovation {w}", site_id),
        "innovations_adopted": await conn.fetchval(
            f"SELECT count(*) FROM {s}.innovation {w} AND adopted_project_wide", site_id),
        "visits": await by_kind("visit", [k.value for k in VisitKind]),
        "talks": {"open": talks["open"], "overdue": talks["overdue"], "done": talks["done"]},
        "birthdays_this_month": birthdays,
        "lessons": {k.value: per_kind.get(k.value, {"sessions": 0, "attendance": 0}) for k in ActivityKind},
    }


async def departed_holders(conn: asyncpg.Connection, schema: str, site_id: str) -> list[dict[str, str]]:
    """Posts and zones held by a member who is no longer on the site."""
    s = schema
    rows = await conn.fetch(
        f"""
        SELECT 'post' AS what, p.post_id AS id, p.kind AS kind, p.holder AS member_id FROM {s}.post p
        WHERE p.site_id = $1 AND NOT EXISTS (
            SELECT 1 FROM {s}.site_member m WHERE m.site_id = p.site_id AND m.member_id = p.holder)
        UNION ALL
        SELECT 'zone', z.zone_id, z.name, r.member_id FROM {s}.zone z, jsonb_array_elements_text(z.responsible)
            AS r(member_id)
        WHERE z.site_id = $1 AND NOT EXISTS (
            SELECT 1 FROM {s}.site_member m WHERE m.site_id = z.site_id AND m.member_id = r.member_id)
        ORDER BY 1, 2""",
        site_id,
    )
    return [dict(r) for r in rows]


async def birthdays(conn: asyncpg.Connection, schema: str, site_id: str, year: int, month: int
                    ) -> list[dict[str, Any]]:
    """Members present whose political birthday (admission date) falls in the month, and whether celebrated."""
    rows = await conn.fetch(
        f"SELECT m.member_id, m.name, m.admitted_on, b.held_on AS celebrated_on FROM {schema}.site_member m"
        f" LEFT JOIN {schema}.birthday b ON b.site_id = m.site_id AND b.member_id = m.member_id AND b.year = $2"
        " WHERE m.site_id = $1 AND extract(month FROM m.admitted_on) = $3 ORDER BY m.admitted_on, m.member_id",
        site_id, year, month,
    )
    return [
        {"member_id": r["member_id"], "name": r["name"], "admitted_on": r["admitted_on"].isoformat(),
         "celebrated_on": r["celebrated_on"].isoformat() if r["celebrated_on"] else None}
        for r in rows
    ]


async def open_talks(conn: asyncpg.Connection, schema: str, site_id: str, today: dt.date) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT obligation_id, member_id, reason, created_on, due_on FROM {schema}.talk_obligation"
        " WHERE site_id = $1 AND closed_on IS NULL ORDER BY due_on, member_id",
        site_id,
    )
    return [
        {"obligation_id": str(r["obligation_id"]), "member_id": r["member_id"], "reason": r["reason"],
         "created_on": r["created_on"].isoformat(), "due_on": r["due_on"].isoformat(),
         "overdue": r["due_on"] < today}
        for r in rows
    ]


async def not_celebrated(conn: asyncpg.Connection, schema: str, site_id: str, year: int) -> list[dict[str, Any]]:
    """Members present whose political birthday has not been celebrated in `year`."""
    rows = await conn.fetch(
        f"SELECT m.member_id, m.name, m.admitted_on FROM {schema}.site_member m WHERE m.site_id = $1 AND NOT EXISTS"
        f" (SELECT 1 FROM {schema}.birthday b WHERE b.site_id = m.site_id AND b.member_id = m.member_id"
        " AND b.year = $2) ORDER BY extract(month FROM m.admitted_on), m.member_id",
        site_id, year,
    )
    return [{"member_id": r["member_id"], "name": r["name"], "admitted_on": r["admitted_on"].isoformat()}
            for r in rows]

"""Views of activities: zones, teams, posts, work points, talks, visits, lessons, birthdays; projection and queries."""
from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import orjson

from contracts import activities
from contracts.activities import (
    ActivityHeld,
    ActivityKind,
    BirthdaysCelebrated,
    InnovationRecorded,
    PersonalChangeReported,
    PostEstablished,
    PostKind,
    SafetyViolationRecorded,
    TalkHeld,
    TalkMethod,
    TalkObligationCreated,
    TeamFormed,
    TeamKind,
    VisitKind,
    VisitRecorded,
    WorkPointDesignated,
    ZoneDesignated,
)
from contracts.envelope import Envelope
from gongdi.bus.projection import Projection
from gongdi.store.migrations import Migration
from services.views.membership import scope_filter

# ---- tables ---------------------------------------------------------------------------------------


# Changes to these tables after release 0.1, numbered in the views' one sequence (see app.py).
MIGRATIONS: tuple[Migration, ...] = (
    # TalkHeld v2 says how a talk was held. Every talk recorded before it reads as 面谈 (the v1 → v2 upcaster), so
    # rows already applied get that value here, as a rebuild would give them.
    Migration(7, "talks: how each was held (面谈, 电话)", lambda s: f"""
        ALTER TABLE {s}.talk_obligation ADD COLUMN IF NOT EXISTS method text;
        UPDATE {s}.talk_obligation SET method = 'in_person' WHERE closed_on IS NOT NULL AND method IS NULL;
        """),
)


def tables_sql(schema: str) -> str:
    """The activities tables; counts and flags are computed from these rows on read."""
    s = schema
    return f"""
    CREATE TABLE IF NOT EXISTS {s}.zone (
        site_id text NOT NULL, zone_id text NOT NULL, name text NOT NULL, area text NOT NULL,
        responsible jsonb NOT NULL, PRIMARY KEY (site_id, zone_id));
    CREATE TABLE IF NOT EXISTS {s}.team (
        site_id text NOT NULL, team_id text NOT NULL, kind text NOT NULL, name text NOT NULL, leader text NOT NULL,
        members jsonb NOT NULL, purpose text NOT NULL, PRIMARY KEY (site_id, team_id));
    CREATE TABLE IF NOT EXISTS {s}.post (
        site_id text NOT NULL, post_id text NOT NULL, kind text NOT NULL, holder text NOT NULL, place text NOT NULL,
        PRIMARY KEY (site_id, post_id));
    CREATE TABLE IF NOT EXISTS {s}.work_point (
        site_id text NOT NULL, point_id text NOT NULL, name text NOT NULL, designated_on date NOT NULL,
        PRIMARY KEY (site_id, point_id));
    CREATE TABLE IF NOT EXISTS {s}.talk_obligation (
        obligation_id uuid PRIMARY KEY, site_id text NOT NULL, member_id text NOT NULL, reason text NOT NULL,
        created_on date NOT NULL, due_on date NOT NULL, closed_on date, talked_by text, note text);
    CREATE INDEX IF NOT EXISTS talk_obligation_site ON {s}.talk_obligation (site_id);
    CREATE TABLE IF NOT EXISTS {s}.visit (
        event_id uuid PRIMARY KEY, site_id text NOT NULL, kind text NOT NULL, place text NOT NULL,
        visited_on date NOT NULL);
    CREATE TABLE IF NOT EXISTS {s}.incident (
        event_id uuid PRIMARY KEY, site_id text NOT NULL, kind text NOT NULL, member_id text NOT NULL,
        happened_on date NOT NULL);
    CREATE TABLE IF NOT EXISTS {s}.activity (
        activity_id uuid PRIMARY KEY, site_id text NOT NULL, kind text NOT NULL, title text NOT NULL,
        held_on date NOT NULL, headcount int NOT NULL, organisation text, service text);
    CREATE TABLE IF NOT EXISTS {s}.innovation (
        site_id text NOT NULL, innovation_id text NOT NULL, title text NOT NULL, team text NOT NULL,
        recorded_on date NOT NULL, adopted_project_wide boolean NOT NULL, PRIMARY KEY (site_id, innovation_id));
    CREATE TABLE IF NOT EXISTS {s}.birthday_party (
        event_id uuid PRIMARY KEY, site_id text NOT NULL, held_on date NOT NULL, members int NOT NULL,
        cards_sent int NOT NULL);
    CREATE TABLE IF NOT EXISTS {s}.birthday (
        site_id text NOT NULL, year int NOT NULL, member_id text NOT NULL, held_on date NOT NULL,
        PRIMARY KEY (site_id, year, member_id));
    """


# ---- projection -----------------------------------------------------------------------------------


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class ActivitiesProjection(Projection):
    """Applies activities events; counts and flags are computed on read from these rows."""

    # Every row it writes belongs to the event's site, and each site is one event stream.
    streams_commute = True
    contract = activities
    ignored = frozenset()

    def __init__(self, schema: str):
        super().__init__()
        self.schema = schema

    async def visit_recorded(self, conn: asyncpg.Connection, env: Envelope, e: VisitRecorded) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.visit (event_id, site_id, kind, place, visited_on) VALUES ($1, $2, $3, $4, $5)",
            env.event_id, e.site_id, e.kind.value, e.place, e.visited_on,
        )

    async def _incident(self, conn: asyncpg.Connection, env: Envelope, kind: str, member_id: str, on) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.incident (event_id, site_id, kind, member_id, happened_on)"
            " VALUES ($1, $2, $3, $4, $5)",
            env.event_id, env.site_id, kind, member_id, on,
        )

    async def safety_violation_recorded(self, conn: asyncpg.Connection, env: Envelope,
                                        e: SafetyViolationRecorded) -> None:
        await self._incident(conn, env, "safety_violation", e.member_id, e.occurred_on)

    async def personal_change_reported(self, conn: asyncpg.Connection, env: Envelope,
                                       e: PersonalChangeReported) -> None:
        await self._incident(conn, env, "personal_change", e.member_id, e.reported_on)

    async def talk_obligation_created(self, conn: asyncpg.Connection, env: Envelope,
                                      e: TalkObligationCreated) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.talk_obligation (obligation_id, site_id, member_id, reason, created_on,"
            " due_on) VALUES ($1, $2, $3, $4, $5, $6)",
            e.obligation_id, e.site_id, e.member_id, e.reason.value, e.created_on, e.due_on,
        )

    async def talk_held(self, conn: asyncpg.Connection, env: Envelope, e: TalkHeld) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.talk_obligation SET closed_on = $2, talked_by = $3, note = $4, method = $5"
            " WHERE obligation_id = $1",
            e.obligation_id, e.talked_on, e.talked_by, e.note, e.method.value,
        )

    async def birthdays_celebrated(self, conn: asyncpg.Connection, env: Envelope, e: BirthdaysCelebrated) -> None:
        await conn.execute(
            f"WITH party AS (INSERT INTO {self.schema}.birthday_party (event_id, site_id, held_on, members, cards_sent)"
            " VALUES ($1, $2, $3, cardinality($4::text[]), $5))"
            f" INSERT INTO {self.schema}.birthday (site_id, year, member_id, held_on)"
            " SELECT $2, extract(year FROM $3::date)::int, m, $3 FROM unnest($4::text[]) AS m",
            env.event_id, e.site_id, e.held_on, e.members, e.cards_sent,
        )

    async def zone_designated(self, conn: asyncpg.Connection, env: Envelope, e: ZoneDesignated) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.zone (site_id, zone_id, name, area, responsible)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            e.site_id, e.zone_id, e.name, e.area, _json(e.responsible),
        )

    async def team_formed(self, conn: asyncpg.Connection, env: Envelope, e: TeamFormed) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.team (site_id, team_id, kind, name, leader, members, purpose)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
            e.site_id, e.team_id, e.kind.value, e.name, e.leader, _json(e.members), e.purpose,
        )

    async def post_established(self, conn: asyncpg.Connection, env: Envelope, e: PostEstablished) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.post (site_id, post_id, kind, holder, place) VALUES ($1, $2, $3, $4, $5)",
            e.site_id, e.post_id, e.kind.value, e.holder, e.place,
        )

    async def work_point_designated(self, conn: asyncpg.Connection, env: Envelope, e: WorkPointDesignated) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.work_point (site_id, point_id, name, designated_on) VALUES ($1, $2, $3, $4)",
            e.site_id, e.point_id, e.name, e.designated_on,
        )

    async def activity_held(self, conn: asyncpg.Connection, env: Envelope, e: ActivityHeld) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.activity (activity_id, site_id, kind, title, held_on, headcount, organisation,"
            " service) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            e.activity_id, e.site_id, e.kind.value, e.title, e.held_on, e.headcount, e.organisation, e.service,
        )

    async def innovation_recorded(self, conn: asyncpg.Connection, env: Envelope, e: InnovationRecorded) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.innovation (site_id, innovation_id, title, team, recorded_on,"
            " adopted_project_wide) VALUES ($1, $2, $3, $4, $5, $6)",
            e.site_id, e.innovation_id, e.title, e.team, e.recorded_on, e.adopted_project_wide,
        )


# ---- queries --------------------------------------------------------------------------------------


async def summary(conn: asyncpg.Connection, schema: str, scope: str, key: str | None, today: dt.date
                  ) -> dict[str, Any]:
    """Counts for a scope (membership.scope_filter): the city (key None), a township, a department (its name, as
    the sites store it) or one site."""
    s, w = schema, f"WHERE {scope_filter(schema, scope)}"

    async def by_kind(table: str, kinds: list[str]) -> dict[str, int]:
        rows = await conn.fetch(f"SELECT kind, count(*) AS n FROM {s}.{table} {w} GROUP BY kind", key)
        counts = {r["kind"]: r["n"] for r in rows}
        return {k: counts.get(k, 0) for k in kinds}

    posts = await by_kind("post", [k.value for k in PostKind])
    talks = await conn.fetchrow(
        f"SELECT count(*) FILTER (WHERE closed_on IS NULL) AS open,"
        f" count(*) FILTER (WHERE closed_on IS NULL AND due_on < $2) AS overdue,"
        f" count(*) FILTER (WHERE closed_on IS NOT NULL) AS done FROM {s}.talk_obligation {w}",
        key, today,
    )
    held = await conn.fetch(
        f"SELECT method, count(*) AS n FROM {s}.talk_obligation {w} AND closed_on IS NOT NULL GROUP BY method", key)
    by_method = {r["method"]: r["n"] for r in held}
    # sum() of an int column is a bigint; it was cast back to int, which 2,148 activities of the largest allowed
    # headcount (1,000,000) overflow. Casting to bigint keeps the value an int for the JSON reply.
    lessons = await conn.fetch(
        f"SELECT kind, count(*) AS sessions, sum(headcount)::bigint AS attendance FROM {s}.activity {w}"
        " GROUP BY kind",
        key,
    )
    per_kind = {r["kind"]: {"sessions": r["sessions"], "attendance": r["attendance"]} for r in lessons}
    birthdays = await conn.fetchval(
        f"SELECT count(*) FROM {s}.site_member {w} AND extract(month FROM admitted_on) = $2",
        key, today.month,
    )
    return {
        "zones": await conn.fetchval(f"SELECT count(*) FROM {s}.zone {w}", key),
        "teams": await by_kind("team", [k.value for k in TeamKind]),
        "posts": posts,
        "post_kinds": sum(1 for n in posts.values() if n),
        "work_points": await conn.fetchval(f"SELECT count(*) FROM {s}.work_point {w}", key),
        "innovations": await conn.fetchval(f"SELECT count(*) FROM {s}.innovation {w}", key),
        "innovations_adopted": await conn.fetchval(
            f"SELECT count(*) FROM {s}.innovation {w} AND adopted_project_wide", key),
        "visits": await by_kind("visit", [k.value for k in VisitKind]),
        "talks": {"open": talks["open"], "overdue": talks["overdue"], "done": talks["done"]},
        "talks_by_method": {m.value: by_method.get(m.value, 0) for m in TalkMethod},  # talks done, 面谈 / 电话
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

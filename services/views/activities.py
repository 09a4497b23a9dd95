"""Activities views: zones, teams, posts, talks, lessons, birthdays, talent, points, meetings: projection, queries."""
from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts import activities
from contracts.activities import (
    ActivityHeld,
    ActivityKind,
    BackboneTrained,
    BirthdaysCelebrated,
    BranchMeetingHeld,
    CrewLeaderRecommended,
    Grade,
    InnovationRecorded,
    MeetingKind,
    MembersAppraised,
    PersonalChangeReported,
    PointsAwarded,
    PointsCategory,
    PostEstablished,
    PostKind,
    PromotedToManagement,
    RecommendedForManagement,
    RecordKind,
    RecordRetracted,
    SafetyViolationRecorded,
    TalkHeld,
    TalkMethod,
    TalkObligationCreated,
    TalkObligationMooted,
    TalkReason,
    TeamFormed,
    TeamKind,
    VisitKind,
    VisitRecorded,
    WorkPointDesignated,
    ZoneDesignated,
    meeting_period,
)
from contracts.envelope import Envelope
from contracts.rules import DEFAULT_RULES, Rules
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
    # Issue 12: 三培两推, 积分, 民主评议, 三会一课; an obligation closed as moot (site completed) is closed, not held.
    Migration(8, "talent pipeline, points, appraisals, branch meetings; talks closed as moot", lambda s: f"""
        ALTER TABLE {s}.talk_obligation ADD COLUMN IF NOT EXISTS mooted boolean NOT NULL DEFAULT false;
        CREATE TABLE IF NOT EXISTS {s}.talent (
            event_id uuid PRIMARY KEY, site_id text NOT NULL, step text NOT NULL, person_id text NOT NULL,
            happened_on date NOT NULL, backbone boolean NOT NULL DEFAULT false);
        CREATE INDEX IF NOT EXISTS talent_site ON {s}.talent (site_id);
        CREATE TABLE IF NOT EXISTS {s}.points (
            event_id uuid PRIMARY KEY, site_id text NOT NULL, member_id text NOT NULL, category text NOT NULL,
            points int NOT NULL, awarded_on date NOT NULL);
        CREATE INDEX IF NOT EXISTS points_site ON {s}.points (site_id);
        CREATE TABLE IF NOT EXISTS {s}.appraisal (
            site_id text NOT NULL, year int NOT NULL, member_id text NOT NULL, grade text NOT NULL,
            appraised_on date NOT NULL, PRIMARY KEY (site_id, year, member_id));
        CREATE TABLE IF NOT EXISTS {s}.branch_meeting (
            meeting_id uuid PRIMARY KEY, site_id text NOT NULL, kind text NOT NULL, held_on date NOT NULL,
            topic text NOT NULL, attendance int NOT NULL);
        CREATE INDEX IF NOT EXISTS branch_meeting_site ON {s}.branch_meeting (site_id, kind, held_on);
        """),
    # Points name their award (the command id) so that 撤销记录 can withdraw them; points applied before have none
    # until the rebuild views version 4 brings, and points recorded before awards had ids never have one.
    Migration(14, "points keep the id of their award",
              lambda s: f"ALTER TABLE {s}.points ADD COLUMN IF NOT EXISTS award_id uuid;"),
    # Violations and personal changes name their record (the command id), and say what happened; posts, zones and
    # teams keep their day: so that 撤销记录 can list and withdraw them; points their reason, which tells two awards
    # of one member, category and day apart there. Rows applied before have neither until the rebuild views version
    # 5 brings.
    Migration(15, "violations, personal changes, posts, zones and teams can be retracted", lambda s: f"""
        ALTER TABLE {s}.incident ADD COLUMN IF NOT EXISTS record_id uuid;
        ALTER TABLE {s}.incident ADD COLUMN IF NOT EXISTS description text;
        CREATE INDEX IF NOT EXISTS incident_site ON {s}.incident (site_id);
        ALTER TABLE {s}.zone ADD COLUMN IF NOT EXISTS designated_on date;
        ALTER TABLE {s}.team ADD COLUMN IF NOT EXISTS formed_on date;
        ALTER TABLE {s}.post ADD COLUMN IF NOT EXISTS established_on date;
        ALTER TABLE {s}.points ADD COLUMN IF NOT EXISTS reason text;
        """),
)

# 三培两推 steps as the talent table names them, and the summary's keys for them.
TALENT = {"backbone_trained": "backbone_trained", "recommended_management": "recommended_management",
          "recommended_crew_leader": "recommended_crew_leaders", "promoted_management": "promoted_management"}


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

    async def _incident(self, conn: asyncpg.Connection, env: Envelope, kind: str, e: SafetyViolationRecorded
                        | PersonalChangeReported, on: dt.date, record_id: UUID | None) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.incident (event_id, site_id, kind, member_id, happened_on, record_id,"
            " description) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            env.event_id, env.site_id, kind, e.member_id, on, record_id, e.description,
        )

    async def safety_violation_recorded(self, conn: asyncpg.Connection, env: Envelope,
                                        e: SafetyViolationRecorded) -> None:
        await self._incident(conn, env, "safety_violation", e, e.occurred_on, e.violation_id)

    async def personal_change_reported(self, conn: asyncpg.Connection, env: Envelope,
                                       e: PersonalChangeReported) -> None:
        await self._incident(conn, env, "personal_change", e, e.reported_on, e.change_id)

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
            f"INSERT INTO {self.schema}.zone (site_id, zone_id, name, area, responsible, designated_on)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
            e.site_id, e.zone_id, e.name, e.area, _json(e.responsible), e.designated_on,
        )

    async def team_formed(self, conn: asyncpg.Connection, env: Envelope, e: TeamFormed) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.team (site_id, team_id, kind, name, leader, members, purpose, formed_on)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)",
            e.site_id, e.team_id, e.kind.value, e.name, e.leader, _json(e.members), e.purpose, e.formed_on,
        )

    async def post_established(self, conn: asyncpg.Connection, env: Envelope, e: PostEstablished) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.post (site_id, post_id, kind, holder, place, established_on)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            e.site_id, e.post_id, e.kind.value, e.holder, e.place, e.established_on,
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

    async def talk_obligation_mooted(self, conn: asyncpg.Connection, env: Envelope, e: TalkObligationMooted) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.talk_obligation SET closed_on = $2, mooted = true WHERE obligation_id = $1",
            e.obligation_id, e.mooted_on,
        )

    async def _talent(self, conn: asyncpg.Connection, env: Envelope, step: str, person_id: str, on: dt.date,
                      backbone: bool = False) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.talent (event_id, site_id, step, person_id, happened_on, backbone)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            env.event_id, env.site_id, step, person_id, on, backbone,
        )

    async def backbone_trained(self, conn: asyncpg.Connection, env: Envelope, e: BackboneTrained) -> None:
        await self._talent(conn, env, "backbone_trained", e.member_id, e.trained_on, True)

    async def promoted_to_management(self, conn: asyncpg.Connection, env: Envelope, e: PromotedToManagement) -> None:
        await self._talent(conn, env, "promoted_management", e.member_id, e.promoted_on, True)

    async def crew_leader_recommended(self, conn: asyncpg.Connection, env: Envelope,
                                      e: CrewLeaderRecommended) -> None:
        await self._talent(conn, env, "recommended_crew_leader", e.person_id, e.recommended_on,
                           e.candidate.value == "backbone")

    async def recommended_for_management(self, conn: asyncpg.Connection, env: Envelope,
                                         e: RecommendedForManagement) -> None:
        await self._talent(conn, env, "recommended_management", e.member_id, e.recommended_on, e.backbone)

    async def points_awarded(self, conn: asyncpg.Connection, env: Envelope, e: PointsAwarded) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.points (event_id, site_id, member_id, category, points, awarded_on, award_id,"
            " reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            env.event_id, e.site_id, e.member_id, e.category.value, e.points, e.awarded_on, e.award_id, e.reason,
        )

    async def members_appraised(self, conn: asyncpg.Connection, env: Envelope, e: MembersAppraised) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.appraisal (site_id, year, member_id, grade, appraised_on)"
            " SELECT $1, $2, g.member_id, g.grade, $3 FROM unnest($4::text[], $5::text[]) AS g(member_id, grade)",
            e.site_id, e.year, e.appraised_on, [g.member_id for g in e.grades], [g.grade.value for g in e.grades],
        )

    async def branch_meeting_held(self, conn: asyncpg.Connection, env: Envelope, e: BranchMeetingHeld) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.branch_meeting (meeting_id, site_id, kind, held_on, topic, attendance)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            e.meeting_id, e.site_id, e.kind.value, e.held_on, e.topic, e.attendance,
        )

    async def record_retracted(self, conn: asyncpg.Connection, env: Envelope, e: RecordRetracted) -> None:
        if e.record is RecordKind.appraisal:
            await conn.execute(f"DELETE FROM {self.schema}.appraisal WHERE site_id = $1 AND year = $2",
                               e.site_id, int(e.record_id))
            return
        if e.record is RecordKind.points:
            await conn.execute(f"DELETE FROM {self.schema}.points WHERE award_id = $1::uuid AND site_id = $2",
                               e.record_id, e.site_id)
            return
        if e.record is RecordKind.talk:  # the obligation is owed again, as before the talk
            await conn.execute(f"UPDATE {self.schema}.talk_obligation SET closed_on = NULL, talked_by = NULL,"
                               " note = NULL, method = NULL WHERE obligation_id = $1::uuid AND site_id = $2",
                               e.record_id, e.site_id)
            return
        if e.obligation_id is not None:  # the talk a retracted violation or personal change had caused
            await conn.execute(f"DELETE FROM {self.schema}.talk_obligation WHERE obligation_id = $1 AND site_id = $2",
                               e.obligation_id, e.site_id)
        table, key, cast = RETRACTED_ROWS[e.record]
        await conn.execute(f"DELETE FROM {self.schema}.{table} WHERE {key} = $1{cast} AND site_id = $2",
                           e.record_id, e.site_id)

    async def innovation_recorded(self, conn: asyncpg.Connection, env: Envelope, e: InnovationRecorded) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.innovation (site_id, innovation_id, title, team, recorded_on,"
            " adopted_project_wide) VALUES ($1, $2, $3, $4, $5, $6)",
            e.site_id, e.innovation_id, e.title, e.team, e.recorded_on, e.adopted_project_wide,
        )


# The row a retraction deletes, by the record's kind: its table, the column naming it, and that column's cast.
RETRACTED_ROWS: dict[RecordKind, tuple[str, str, str]] = {
    RecordKind.meeting: ("branch_meeting", "meeting_id", "::uuid"),
    RecordKind.activity: ("activity", "activity_id", "::uuid"),
    RecordKind.violation: ("incident", "record_id", "::uuid"),
    RecordKind.change: ("incident", "record_id", "::uuid"),
    RecordKind.post: ("post", "post_id", ""),
    RecordKind.zone: ("zone", "zone_id", ""),
    RecordKind.team: ("team", "team_id", ""),
}


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
        f" count(*) FILTER (WHERE closed_on IS NOT NULL AND NOT mooted) AS done,"
        f" count(*) FILTER (WHERE mooted) AS mooted FROM {s}.talk_obligation {w}",
        key, today,
    )
    held = await conn.fetch(
        f"SELECT method, count(*) AS n FROM {s}.talk_obligation {w} AND closed_on IS NOT NULL AND NOT mooted"
        " GROUP BY method", key)
    by_method = {r["method"]: r["n"] for r in held}
    reasons = await conn.fetch(
        f"SELECT reason, count(*) AS n FROM {s}.talk_obligation {w} AND closed_on IS NOT NULL AND NOT mooted"
        " GROUP BY reason", key)
    by_reason = {r["reason"]: r["n"] for r in reasons}
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
        # mooted: closed without a talk because the site was completed (closed, not held)
        "talks": {"open": talks["open"], "overdue": talks["overdue"], "done": talks["done"],
                  "mooted": talks["mooted"]},
        "talks_by_method": {m.value: by_method.get(m.value, 0) for m in TalkMethod},  # talks done, 面谈 / 电话
        # talks done by why they were owed: the three 必谈 and an applicant's talk (入党申请人谈话), which is not one
        "talks_by_reason": {r.value: by_reason.get(r.value, 0) for r in TalkReason},
        "birthdays_this_month": birthdays,
        "lessons": {k.value: per_kind.get(k.value, {"sessions": 0, "attendance": 0}) for k in ActivityKind},
        "talent": await talent(conn, s, w, key),
        "points": await points(conn, s, w, key, today),
        "appraisal": await appraisal(conn, s, w, key, today),
        "meetings": await meetings(conn, s, scope, key, today),
    }


async def talent(conn: asyncpg.Connection, s: str, w: str, key: str | None) -> dict[str, int]:
    """三培两推 counts (the seed's 培养骨干 48, 推荐进入管理层 32); workers cultivated into members are membership's."""
    rows = await conn.fetch(f"SELECT step, count(*) AS n FROM {s}.talent {w} GROUP BY step", key)
    counts = {r["step"]: r["n"] for r in rows}
    return {out: counts.get(step, 0) for step, out in TALENT.items()}


YEARS_SHOWN = 5  # the points' and appraisals' years a scope's summary gives one by one, latest first


async def points(conn: asyncpg.Connection, s: str, w: str, key: str | None, today: dt.date) -> dict[str, Any]:
    """党员积分 of the latest year with points up to `today`: total, members scored, per category; and the latest
    years one by one (`years`: sites, members, total), since a scope's latest year may be one site's first entry
    (before, one 2026 award at one site turned the city's figure from 2020's 1,600 points to 20, and said nothing
    of 2020)."""
    years = [dict(r) for r in await conn.fetch(
        f"SELECT extract(year FROM awarded_on)::int AS year, count(DISTINCT site_id) AS sites,"
        f" count(DISTINCT member_id) AS members, sum(points)::bigint AS total FROM {s}.points {w}"
        " AND awarded_on <= $2 GROUP BY 1 ORDER BY 1 DESC LIMIT $3", key, today, YEARS_SHOWN)]
    year = years[0]["year"] if years else None
    rows = await conn.fetch(
        f"SELECT category, sum(points)::bigint AS n, count(DISTINCT member_id) AS m FROM {s}.points {w}"
        " AND extract(year FROM awarded_on) = $2 AND awarded_on <= $3 GROUP BY category", key, year, today)
    by = {r["category"]: r["n"] for r in rows}
    members = await conn.fetchval(
        f"SELECT count(DISTINCT member_id) FROM {s}.points {w} AND extract(year FROM awarded_on) = $2"
        " AND awarded_on <= $3", key, year, today)
    return {"year": year, "total": sum(by.values()), "members": members, "sites": years[0]["sites"] if years else 0,
            "by_category": {c.value: by.get(c.value, 0) for c in PointsCategory}, "years": years}


async def appraisal(conn: asyncpg.Connection, s: str, w: str, key: str | None, today: dt.date) -> dict[str, Any]:
    """民主评议 of the latest year appraised up to `today`: branches, members appraised, grades; and the latest years
    one by one (`years`: branches, members appraised), as the points."""
    years = [dict(r) for r in await conn.fetch(
        f"SELECT year, count(DISTINCT site_id) AS branches, count(*) AS appraised FROM {s}.appraisal {w}"
        " AND appraised_on <= $2 GROUP BY year ORDER BY year DESC LIMIT $3", key, today, YEARS_SHOWN)]
    year = years[0]["year"] if years else None
    rows = await conn.fetch(
        f"SELECT grade, count(*) AS n, count(DISTINCT site_id) AS b FROM {s}.appraisal {w} AND year = $2"
        " AND appraised_on <= $3 GROUP BY grade", key, year, today)
    grades = {r["grade"]: r["n"] for r in rows}
    branches = await conn.fetchval(
        f"SELECT count(DISTINCT site_id) FROM {s}.appraisal {w} AND year = $2 AND appraised_on <= $3",
        key, year, today)
    return {"year": year, "branches": branches, "appraised": sum(grades.values()),
            "grades": {g.value: grades.get(g.value, 0) for g in Grade}, "years": years}


async def branch_meetings_due(conn: asyncpg.Connection, s: str, scope: str, key: str | None, today: dt.date,
                              rules: Rules = DEFAULT_RULES) -> list[dict[str, Any]]:
    """Per branch and meeting kind: held in the period holding `today` (due while not), and held in the period
    before (overdue when not, counting periods that began after the branch was formed). Kinds that do not apply
    are left out: 支委会 without a committee, 党小组会 without a party group; a completed site owes nothing."""
    where = scope_filter(s, scope)
    branches = await conn.fetch(
        f"SELECT site_id, name, (branch->>'formed_on')::date AS formed_on,"
        f" jsonb_array_length(coalesce(branch->'committee', '[]'::jsonb)) > 0 AS committee,"
        f" EXISTS (SELECT 1 FROM {s}.party_group g WHERE g.site_id = site.site_id) AS groups"
        f" FROM {s}.site WHERE branch IS NOT NULL AND (completed_on IS NULL OR completed_on > $2) AND {where}"
        " ORDER BY site_id", key, today)
    out = []
    for b in branches:
        if b["formed_on"] > today:
            continue
        for kind in MeetingKind:
            if (kind is MeetingKind.committee and not b["committee"]) or (kind is MeetingKind.group
                                                                        and not b["groups"]):
                continue
            start, end = meeting_period(today, rules.meeting_months(kind.value))
            before_start, before_end = meeting_period(start - dt.timedelta(days=1), rules.meeting_months(kind.value))
            row = await conn.fetchrow(
                f"SELECT count(*) FILTER (WHERE held_on BETWEEN $3 AND $4) AS now,"
                f" count(*) FILTER (WHERE held_on BETWEEN $5 AND $6) AS before,"
                f" max(held_on) AS last FROM {s}.branch_meeting WHERE site_id = $1 AND kind = $2"
                " AND held_on <= $4",
                b["site_id"], kind.value, start, min(end, today), before_start, before_end)
            out.append({
                "site_id": b["site_id"], "kind": kind.value, "period": [start.isoformat(), end.isoformat()],
                "held_this_period": row["now"], "due": row["now"] == 0,
                "overdue": row["before"] == 0 and b["formed_on"] <= before_start,
                "last_held_on": row["last"].isoformat() if row["last"] else None,
            })
    return out


async def meetings(conn: asyncpg.Connection, s: str, scope: str, key: str | None, today: dt.date
                   ) -> dict[str, Any]:
    """三会一课 summed over the scope's branches: due this period, overdue from the last, held (all time) by kind."""
    per = await branch_meetings_due(conn, s, scope, key, today)
    held = await conn.fetch(
        f"SELECT kind, count(*) AS n FROM {s}.branch_meeting WHERE {scope_filter(s, scope)} AND held_on <= $2"
        " GROUP BY kind", key, today)
    held_by = {r["kind"]: r["n"] for r in held}
    by_kind = {k.value: {"held": held_by.get(k.value, 0),
                         "due": sum(1 for x in per if x["kind"] == k.value and x["due"]),
                         "overdue": sum(1 for x in per if x["kind"] == k.value and x["overdue"])}
               for k in MeetingKind}
    return {"due": sum(v["due"] for v in by_kind.values()), "overdue": sum(v["overdue"] for v in by_kind.values()),
            "held": sum(v["held"] for v in by_kind.values()), "by_kind": by_kind}


async def records(conn: asyncpg.Connection, schema: str, site_id: str, limit: int = 100,
                  kind: RecordKind | None = None) -> list[dict[str, Any]]:
    """The site's records a secretary may retract (撤销), latest first: its meetings, activities, appraisals, talks,
    points, violations, personal changes, posts, zones and teams (a talk's, points', violation's or change's
    title: whom, by name while known here; records made before they had ids or days are not among them)."""
    s = schema
    rows = await conn.fetch(f"""
        SELECT * FROM (
            SELECT 'meeting' AS record, meeting_id::text AS record_id, held_on AS day, kind, topic AS title,
                   attendance AS count FROM {s}.branch_meeting WHERE site_id = $1
            UNION ALL
            SELECT 'activity', activity_id::text, held_on, kind, title, headcount FROM {s}.activity WHERE site_id = $1
            UNION ALL
            SELECT 'appraisal', year::text, max(appraised_on), 'appraisal', year || ' 年度', count(*)::int
            FROM {s}.appraisal WHERE site_id = $1 GROUP BY year
            UNION ALL
            SELECT 'talk', t.obligation_id::text, t.closed_on, t.reason,
                   coalesce(m.name, d.name, t.member_id) || '（' || t.member_id || '）', 1
            FROM {s}.talk_obligation t
            LEFT JOIN {s}.site_member m ON m.site_id = t.site_id AND m.member_id = t.member_id
            LEFT JOIN {s}.development d ON d.site_id = t.site_id AND d.person_id = t.member_id
            WHERE t.site_id = $1 AND t.closed_on IS NOT NULL AND NOT t.mooted
            UNION ALL
            SELECT 'points', p.award_id::text, p.awarded_on, p.category,
                   coalesce(m.name, p.member_id) || '（' || p.member_id || '）'
                   || coalesce('：' || p.reason, ''), p.points
            FROM {s}.points p
            LEFT JOIN {s}.site_member m ON m.site_id = p.site_id AND m.member_id = p.member_id
            WHERE p.site_id = $1 AND p.award_id IS NOT NULL
            UNION ALL
            SELECT CASE i.kind WHEN 'safety_violation' THEN 'violation' ELSE 'change' END, i.record_id::text,
                   i.happened_on, i.kind,
                   coalesce(m.name, i.member_id) || '（' || i.member_id || '）：' || coalesce(i.description, ''), 1
            FROM {s}.incident i
            LEFT JOIN {s}.site_member m ON m.site_id = i.site_id AND m.member_id = i.member_id
            WHERE i.site_id = $1 AND i.record_id IS NOT NULL
            UNION ALL
            SELECT 'post', p.post_id, p.established_on, p.kind,
                   coalesce(m.name, p.holder) || '（' || p.holder || '） · ' || p.place, 1
            FROM {s}.post p
            LEFT JOIN {s}.site_member m ON m.site_id = p.site_id AND m.member_id = p.holder
            WHERE p.site_id = $1 AND p.established_on IS NOT NULL
            UNION ALL
            SELECT 'zone', zone_id, designated_on, 'zone', name, jsonb_array_length(responsible)
            FROM {s}.zone WHERE site_id = $1 AND designated_on IS NOT NULL
            UNION ALL
            SELECT 'team', team_id, formed_on, kind, name, jsonb_array_length(members)
            FROM {s}.team WHERE site_id = $1 AND formed_on IS NOT NULL
        ) r WHERE $3::text IS NULL OR record = $3
        ORDER BY day DESC, record, title, record_id LIMIT $2""", site_id, limit, kind.value if kind else None)
    return [{**dict(r), "day": r["day"].isoformat()} for r in rows]


async def points_ranking(conn: asyncpg.Connection, schema: str, site_id: str, today: dt.date, limit: int = 20
                         ) -> dict[str, Any]:
    """The site's 积分排名 for the latest year with points up to `today`: members by total, then id; and the year
    before it with points (`earlier`), since a new year's first award left the site page with a one-line ranking
    and last year's whole one gone."""
    s = schema
    years = [r["year"] for r in await conn.fetch(
        f"SELECT DISTINCT extract(year FROM awarded_on)::int AS year FROM {s}.points"
        " WHERE site_id = $1 AND awarded_on <= $2 ORDER BY year DESC LIMIT 2", site_id, today)]
    out: dict[str, Any] = {"year": years[0] if years else None,
                           "members": await _ranking(conn, s, site_id, years[0], today, limit) if years else []}
    if len(years) > 1:
        out["earlier"] = {"year": years[1], "members": await _ranking(conn, s, site_id, years[1], today, limit)}
    return out


async def _ranking(conn: asyncpg.Connection, s: str, site_id: str, year: int, today: dt.date, limit: int
                   ) -> list[dict[str, Any]]:
    # A member who left since is named as they left (their last departure from the site).
    rows = await conn.fetch(
        f"SELECT r.member_id, r.total, coalesce(m.name, (SELECT d.name FROM {s}.site_departure d"
        "   WHERE d.site_id = $1 AND d.member_id = r.member_id ORDER BY d.position DESC LIMIT 1)) AS name"
        f" FROM (SELECT member_id, sum(points)::bigint AS total FROM {s}.points"
        "       WHERE site_id = $1 AND extract(year FROM awarded_on) = $2 AND awarded_on <= $3"
        "       GROUP BY member_id ORDER BY total DESC, member_id LIMIT $4) r"
        f" LEFT JOIN {s}.site_member m ON m.site_id = $1 AND m.member_id = r.member_id"
        " ORDER BY r.total DESC, r.member_id",
        site_id, year, today, limit)
    # Members with the same total share a rank (并列), the next after them counted on: 1, 2, 2, 4.
    ranks = [1 + sum(1 for other in rows if other["total"] > r["total"]) for r in rows]
    return [{"rank": rank, "member_id": r["member_id"], "name": r["name"], "points": r["total"]}
            for rank, r in zip(ranks, rows, strict=True)]


async def departed_holders(conn: asyncpg.Connection, schema: str, site_id: str) -> list[dict[str, str]]:
    """Posts, zones, teams (their leaders), the branch (its secretary) and party groups (their leaders) held by a
    member who is no longer on the site, with the name the member left under."""
    s = schema
    rows = await conn.fetch(
        f"""
        SELECT h.*, (SELECT d.name FROM {s}.site_departure d WHERE d.site_id = $1 AND d.member_id = h.member_id
                     ORDER BY d.position DESC LIMIT 1) AS name
        FROM (
            SELECT 'post' AS what, p.post_id AS id, p.kind AS kind, p.holder AS member_id FROM {s}.post p
            WHERE p.site_id = $1 AND NOT EXISTS (
                SELECT 1 FROM {s}.site_member m WHERE m.site_id = p.site_id AND m.member_id = p.holder)
            UNION ALL
            SELECT 'zone', z.zone_id, z.name, r.member_id FROM {s}.zone z, jsonb_array_elements_text(z.responsible)
                AS r(member_id)
            WHERE z.site_id = $1 AND NOT EXISTS (
                SELECT 1 FROM {s}.site_member m WHERE m.site_id = z.site_id AND m.member_id = r.member_id)
            UNION ALL
            SELECT 'team', t.team_id, t.name, t.leader FROM {s}.team t
            WHERE t.site_id = $1 AND NOT EXISTS (
                SELECT 1 FROM {s}.site_member m WHERE m.site_id = t.site_id AND m.member_id = t.leader)
            UNION ALL
            SELECT 'secretary', b.site_id, b.branch->>'name', b.branch->>'secretary' FROM {s}.site b
            WHERE b.site_id = $1 AND b.branch IS NOT NULL AND NOT b.branch ? 'dissolved_on' AND NOT EXISTS (
                SELECT 1 FROM {s}.site_member m WHERE m.site_id = b.site_id AND m.member_id = b.branch->>'secretary')
            UNION ALL
            SELECT 'group', g.group_id, g.name, g.leader FROM {s}.party_group g
            WHERE g.site_id = $1 AND g.closed_on IS NULL AND NOT EXISTS (
                SELECT 1 FROM {s}.site_member m WHERE m.site_id = g.site_id AND m.member_id = g.leader)
        ) h
        ORDER BY 1, 2""",
        site_id,
    )
    return [dict(r) for r in rows]


async def birthdays(conn: asyncpg.Connection, schema: str, site_id: str, year: int, month: int
                    ) -> list[dict[str, Any]]:
    """Members present whose political birthday (admission date) falls in the month, and whether celebrated; one
    admitted in `year` has none yet (it was shown as 0 年)."""
    rows = await conn.fetch(
        f"SELECT m.member_id, m.name, m.admitted_on, b.held_on AS celebrated_on FROM {schema}.site_member m"
        f" LEFT JOIN {schema}.birthday b ON b.site_id = m.site_id AND b.member_id = m.member_id AND b.year = $2"
        " WHERE m.site_id = $1 AND extract(month FROM m.admitted_on) = $3 AND extract(year FROM m.admitted_on) < $2"
        " ORDER BY m.admitted_on, m.member_id",
        site_id, year, month,
    )
    return [
        {"member_id": r["member_id"], "name": r["name"], "admitted_on": r["admitted_on"].isoformat(),
         "celebrated_on": r["celebrated_on"].isoformat() if r["celebrated_on"] else None}
        for r in rows
    ]


async def open_talks(conn: asyncpg.Connection, schema: str, site_id: str, today: dt.date) -> list[dict[str, Any]]:
    # The member's name while present, an applicant's from the development path, a departed member's from the
    # departure (a talk may still be open after the member left).
    rows = await conn.fetch(
        f"SELECT t.obligation_id, t.member_id, coalesce(m.name, d.name, (SELECT x.name FROM {schema}.site_departure x"
        f" WHERE x.site_id = t.site_id AND x.member_id = t.member_id AND x.name <> ''"
        f" ORDER BY x.position DESC LIMIT 1)) AS name, t.reason, t.created_on, t.due_on"
        f" FROM {schema}.talk_obligation t"
        f" LEFT JOIN {schema}.site_member m ON m.site_id = t.site_id AND m.member_id = t.member_id"
        f" LEFT JOIN {schema}.development d ON d.site_id = t.site_id AND d.person_id = t.member_id"
        " WHERE t.site_id = $1 AND t.closed_on IS NULL ORDER BY t.due_on, t.member_id",
        site_id,
    )
    return [
        {"obligation_id": str(r["obligation_id"]), "member_id": r["member_id"], "name": r["name"],
         "reason": r["reason"], "created_on": r["created_on"].isoformat(), "due_on": r["due_on"].isoformat(),
         "overdue": r["due_on"] < today}
        for r in rows
    ]


async def not_celebrated(conn: asyncpg.Connection, schema: str, site_id: str, year: int) -> list[dict[str, Any]]:
    """Members present whose political birthday has not been celebrated in `year` (admitted before it)."""
    rows = await conn.fetch(
        f"SELECT m.member_id, m.name, m.admitted_on FROM {schema}.site_member m WHERE m.site_id = $1 AND NOT EXISTS"
        f" (SELECT 1 FROM {schema}.birthday b WHERE b.site_id = m.site_id AND b.member_id = m.member_id"
        " AND b.year = $2) AND extract(year FROM m.admitted_on) < $2"
        " ORDER BY extract(month FROM m.admitted_on), m.member_id",
        site_id, year,
    )
    return [{"member_id": r["member_id"], "name": r["name"], "admitted_on": r["admitted_on"].isoformat()}
            for r in rows]

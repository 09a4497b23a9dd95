"""Read models of site activities: must-talks, birthdays, zones, teams, posts, work points, lessons."""
from __future__ import annotations

import asyncpg
import orjson

from contracts.activities import (
    ActivityHeld,
    BirthdaysCelebrated,
    InnovationRecorded,
    PersonalChangeReported,
    PostEstablished,
    SafetyViolationRecorded,
    TalkHeld,
    TalkObligationCreated,
    TeamFormed,
    VisitRecorded,
    WorkPointDesignated,
    ZoneDesignated,
    parse_event,
)
from contracts.envelope import Envelope
from services.views.projection import Projection


def activity_tables_sql(schema: str) -> str:
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


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class ActivityProjection(Projection):
    """Applies activities events; counts and flags are computed on read from these rows."""

    def __init__(self, schema: str):
        self.schema = schema
        self.parse = parse_event
        self.methods = {
            "VisitRecorded": self.visit_recorded,
            "SafetyViolationRecorded": self.safety_violation_recorded,
            "PersonalChangeReported": self.personal_change_reported,
            "TalkObligationCreated": self.talk_obligation_created,
            "TalkHeld": self.talk_held,
            "BirthdaysCelebrated": self.birthdays_celebrated,
            "ZoneDesignated": self.zone_designated,
            "TeamFormed": self.team_formed,
            "PostEstablished": self.post_established,
            "WorkPointDesignated": self.work_point_designated,
            "ActivityHeld": self.activity_held,
            "InnovationRecorded": self.innovation_recorded,
        }


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
            f"UPDATE {self.schema}.talk_obligation SET closed_on = $2, talked_by = $3, note = $4"
            " WHERE obligation_id = $1",
            e.obligation_id, e.talked_on, e.talked_by, e.note,
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

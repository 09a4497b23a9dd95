"""Read models of sites and the city, one method per event they handle; SQL is schema-parameterised for rebuilds."""
from __future__ import annotations

import asyncpg
import orjson

from contracts.envelope import Envelope
from contracts.membership import (
    BranchFormed,
    MemberArrived,
    MemberDeparted,
    PartyGroupFormed,
    SiteRegistered,
    WorkforceReported,
    parse_event,
)
from contracts.rules import DEFAULT_RULES, Rules, qualifies_for_coverage
from services.views.activity_projections import activity_tables_sql
from services.views.liaison_projections import liaison_tables_sql
from services.views.projection import Projection


def tables_sql(schema: str) -> str:
    return site_tables_sql(schema) + activity_tables_sql(schema) + liaison_tables_sql(schema)


def site_tables_sql(schema: str) -> str:
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


class SiteProjection(Projection):
    """Applies membership events to the per-site tables; the city view is aggregated from them on read."""

    def __init__(self, schema: str, rules: Rules = DEFAULT_RULES):
        self.schema = schema
        self.rules = rules
        self.parse = parse_event
        self.methods = {
            "SiteRegistered": self.site_registered,
            "WorkforceReported": self.workforce_reported,
            "MemberArrived": self.member_arrived,
            "MemberDeparted": self.member_departed,
            "BranchFormed": self.branch_formed,
            "PartyGroupFormed": self.party_group_formed,
        }


    async def _with_touch(self, conn: asyncpg.Connection, env: Envelope, sql: str, *args: object) -> None:
        """Run `sql` and stamp the site with the event's position, in one round trip."""
        n = len(args)
        await conn.execute(
            f"WITH change AS ({sql}) UPDATE {self.schema}.site SET last_position = ${n + 1}, updated_at = ${n + 2}"
            f" WHERE site_id = ${n + 3}",
            *args, env.position, env.recorded_at, env.site_id,
        )

    async def site_registered(self, conn: asyncpg.Connection, env: Envelope, e: SiteRegistered) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.site (site_id, name, township, department, cost_wan, planned_months,"
            " start_date, units, qualifies, last_position, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)",
            e.site_id, e.name, e.township, e.department, e.cost_wan, e.planned_months, e.start_date,
            orjson.dumps(e.units.model_dump()).decode(),
            qualifies_for_coverage(e.cost_wan, e.planned_months, self.rules), env.position, env.recorded_at,
        )

    async def workforce_reported(self, conn: asyncpg.Connection, env: Envelope, e: WorkforceReported) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.site SET workforce = $2, last_position = $3, updated_at = $4 WHERE site_id = $1",
            e.site_id, e.headcount, env.position, env.recorded_at,
        )

    async def member_arrived(self, conn: asyncpg.Connection, env: Envelope, e: MemberArrived) -> None:
        m = e.member
        await self._with_touch(
            conn, env,
            f"INSERT INTO {self.schema}.site_member (site_id, member_id, name, status, unit_kind, unit_name, job,"
            " section, relation, admitted_on, arrived_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            e.site_id, e.member_id, m.name, m.status.value, m.unit_kind.value, m.unit_name, m.job.value,
            m.section, m.relation.value, m.admitted_on, e.arrived_on,
        )

    async def member_departed(self, conn: asyncpg.Connection, env: Envelope, e: MemberDeparted) -> None:
        await self._with_touch(
            conn, env, f"DELETE FROM {self.schema}.site_member WHERE site_id = $1 AND member_id = $2",
            e.site_id, e.member_id,
        )

    async def branch_formed(self, conn: asyncpg.Connection, env: Envelope, e: BranchFormed) -> None:
        branch = e.model_dump(mode="json", exclude={"site_id"})
        await conn.execute(
            f"UPDATE {self.schema}.site SET branch = $2::jsonb, last_position = $3, updated_at = $4 WHERE site_id = $1",
            e.site_id, orjson.dumps(branch).decode(), env.position, env.recorded_at,
        )

    async def party_group_formed(self, conn: asyncpg.Connection, env: Envelope, e: PartyGroupFormed) -> None:
        await self._with_touch(
            conn, env,
            f"INSERT INTO {self.schema}.party_group (site_id, group_id, name, section, leader, members, formed_on)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
            e.site_id, e.group_id, e.name, e.section, e.leader, orjson.dumps(e.members).decode(), e.formed_on,
        )

"""Numbered schema migrations: applied by `setup` in order, each in its own transaction, recorded per schema.

Migration 1 of every schema is what release 0.1 created, written with `IF NOT EXISTS`, so that a database made
before migrations existed takes it as a no-op and is then recorded at 1. Later migrations change the schema and
are never edited once released. Routines (functions and triggers: code, not data) are re-created by every setup.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Migration:
    number: int
    title: str
    sql: Callable[[str], str]  # schema name → statements


def numbered(*groups: Sequence[Migration]) -> tuple[Migration, ...]:
    """Join migration lists; numbers must be unique and start at 1 without holes."""
    out = tuple(sorted((m for g in groups for m in g), key=lambda m: m.number))
    if [m.number for m in out] != list(range(1, len(out) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps: {[m.number for m in out]}")
    return out


async def migrate(conn: asyncpg.Connection, schema: str, migrations: Sequence[Migration],
                  routines: Sequence[Callable[[str], str]] = ()) -> str:
    """Apply what is missing; returns one line for the operator."""
    applied: list[int] = []
    async with conn.transaction():
        # Serialise with every other setup, so two of them never migrate the same schema at once.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('gongdi-setup'))")
        await conn.execute(f"""
            CREATE SCHEMA IF NOT EXISTS {schema};
            CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                number int PRIMARY KEY,
                title text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )""")
    for m in numbered(migrations):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('gongdi-setup'))")
            done = await conn.fetchval(f"SELECT true FROM {schema}.schema_migrations WHERE number = $1", m.number)
            if done:
                continue
            await conn.execute(m.sql(schema))
            await conn.execute(f"INSERT INTO {schema}.schema_migrations (number, title) VALUES ($1, $2)",
                               m.number, m.title)
            applied.append(m.number)
    if routines:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('gongdi-setup'))")
            for routine in routines:
                await conn.execute(routine(schema))
    latest = len(migrations)
    news = f"本次执行第 {', '.join(map(str, applied))} 项" if applied else "已是最新"
    return f"数据库模式 {schema}：迁移至第 {latest} 项（{news}）"


async def applied_migrations(conn: asyncpg.Connection, schema: str) -> list[int]:
    rows = await conn.fetch(f"SELECT number FROM {schema}.schema_migrations ORDER BY number")
    return [r["number"] for r in rows]

"""Database roles: one login role per service schema, holding the rights its processes use and nothing more.

Every `setup` (run as the schema's owner, after the migrations) re-derives the rights from the tables present,
so a table a later migration adds is covered by the same setup that adds it, and a right the code no longer
grants is taken away. Default privileges are not used: they would hand a new table UPDATE and DELETE before
anyone decided whether it is append-only.

A service role gets USAGE on its own schema only; SELECT, INSERT, UPDATE, DELETE on its tables; on `events` and
`commands` SELECT and INSERT only (UPDATE, DELETE and TRUNCATE are revoked by name; the GD403 triggers stay as
the second guard, for the owner); nothing on `schema_migrations`; EXECUTE on its functions. Functions must run
with the caller's rights (SECURITY INVOKER, PostgreSQL's default): `membership.commit` then writes events,
commands, presence and snapshots as `gongdi_membership`, within that role's rights. A SECURITY DEFINER function
would run as the owner and bypass all of it, so setup refuses one.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

ROLE_PREFIX = "gongdi_"
# The service's role password, given to its `setup` process only (the serve and relay processes get it in
# DATABASE_URL instead). Without it setup creates the role without login, to be enabled by an operator.
ROLE_PASSWORD_ENV = "GONGDI_DATABASE_ROLE_PASSWORD"
APPEND_ONLY = ("events", "commands")
TABLE_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
PRIVATE = ("schema_migrations",)  # setup's own bookkeeping


def role_name(schema: str) -> str:
    """The login role of the service owning `schema`. Roles belong to the whole server, not to one database."""
    return f"{ROLE_PREFIX}{schema}"


def password_variable(role: str) -> str:
    """The environment variable a server install keeps `role`'s password in (deploy/env/nats-secrets.env):
    `PG_PW_MEMBERSHIP` for `gongdi_membership`, `PG_PW_POSTGRES` for the superuser."""
    return "PG_PW_" + role.removeprefix(ROLE_PREFIX).upper()


def login_url(url: str, user: str, password: str) -> str:
    """`url` with another user and password (the host, port, database and options kept)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677 keys). Sent instead of the password,
    so that the password itself never travels in a statement that a server log could keep. The passwords here
    are ASCII (`new_password`), which SASLprep leaves as they are."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


SAID = {"created": "新建", "updated": "已更新"}  # what `ensure_role` did, as the operator reads it


async def ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> str:
    """Create or update the login role; with no password an existing role's login is left as it is."""
    attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    login = f"LOGIN PASSWORD {quote_literal(scram_verifier(password))}" if password is not None else ""
    exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        try:
            await conn.execute(f'CREATE ROLE "{role}" {attributes} {login or "NOLOGIN"}')
            return "created"
        except asyncpg.DuplicateObjectError:
            pass  # created meanwhile by a setup in another database of the same server: update it below
    await conn.execute(f'ALTER ROLE "{role}" {attributes} {login}')
    return "updated"


async def grant_service_role(conn: asyncpg.Connection, schema: str, password: str | None) -> str:
    """Ensure the schema's role and give it exactly its rights; returns one line for the operator."""
    role = role_name(schema)
    done = await ensure_role(conn, role, password)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('gongdi-setup'))")
        definers = await conn.fetch(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = $1 AND p.prosecdef", schema)
        if definers:
            names = ", ".join(f"{schema}.{r['proname']}" for r in definers)
            raise RuntimeError(f"{names}: SECURITY DEFINER would run with the owner's rights, not {role}'s")
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)}
        statements = [
            f'GRANT USAGE ON SCHEMA {schema} TO "{role}"',
            # From nothing, so that the role holds what this code grants and no leftover of an older one.
            f'REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM "{role}"',
            f'GRANT {TABLE_RIGHTS} ON ALL TABLES IN SCHEMA {schema} TO "{role}"',
            *(f'REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{t} FROM "{role}"' for t in APPEND_ONLY if t in tables),
            *(f'REVOKE ALL ON {schema}.{t} FROM "{role}"' for t in PRIVATE if t in tables),
            f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO "{role}"',
            # Functions are executable by everyone by default; only the service reaches its schema anyway.
            f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {schema} FROM PUBLIC",
            f'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO "{role}"',
        ]
        for statement in statements:
            await conn.execute(statement)
    login = "可登录" if password is not None else "未给密码：登录方式不变"
    return f"数据库角色 {role}：{SAID[done]}，已授予模式 {schema} 的权限（{login}）"

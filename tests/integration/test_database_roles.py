"""PostgreSQL without superuser for the services: passwords for everyone, one role per service schema, least rights."""
from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import asyncpg
import pytest

from contracts.membership import SERVICE as MEMBERSHIP
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.credentials import SUPERUSER
from gongdi.ops.deployfiles import password
from gongdi.ops.runtime import EmbeddedPostgres
from gongdi.ops.supervisor import DATABASE_ROLES, SETUP_ORDER, WRITERS, Supervisor
from gongdi.service.settings import Settings
from gongdi.store.roles import grant_service_role, login_url, password_variable, role_name
from tests.conftest import Servers
from tests.integration.conftest import _running
from tests.integration.running import GONGDI, _env
from tests.integration.waiting import eventually

SCHEMAS = [module.rsplit(".", 1)[-1] for module in SETUP_ORDER]  # every service's schema, views included
PERMISSION_DENIED = "42501"
CHANGES = {  # what no service may do to its record, table → statements
    "events": ["UPDATE {s}.events SET payload = payload", "DELETE FROM {s}.events", "TRUNCATE {s}.events"],
    "commands": ["UPDATE {s}.commands SET warnings = warnings", "DELETE FROM {s}.commands",
                 "TRUNCATE {s}.commands"],
}


async def as_role(settings: Settings, servers: Servers, schema: str) -> asyncpg.Connection:
    role = role_name(schema)
    return await asyncpg.connect(login_url(settings.database_url, role, servers.credentials.postgres[role]))


async def denied(conn: asyncpg.Connection, sql: str) -> bool:
    try:
        await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        return exc.sqlstate == PERMISSION_DENIED
    return False


async def test_a_connection_without_the_password_is_refused(servers: Servers):
    url = servers.database_url("postgres")
    for wrong in (url.replace(f":{servers.credentials.postgres[SUPERUSER]}@", "@"),
                  url.replace(f":{servers.credentials.postgres[SUPERUSER]}@", ":not-the-password@")):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(wrong)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT current_user") == SUPERUSER
    finally:
        await conn.close()


@pytest.mark.parametrize("schema", WRITERS)
async def test_a_service_role_cannot_change_or_remove_its_record(ready_settings: Settings, servers: Servers,
                                                                schema: str):
    conn = await as_role(ready_settings, servers, schema)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.events") == 0  # it reads its own
        for statements in CHANGES.values():
            for sql in statements:
                assert await denied(conn, sql.format(s=schema)), sql  # refused by rights, before any trigger
        assert await denied(conn, f"SELECT * FROM {schema}.schema_migrations")
        assert await denied(conn, f"CREATE TABLE {schema}.extra (x int)")
    finally:
        await conn.close()


async def test_a_service_role_reads_no_other_schema(ready_settings: Settings, servers: Servers):
    tables = {schema: "events" for schema in WRITERS} | {"views": "consumer_checkpoint"}
    for schema in SCHEMAS:
        conn = await as_role(ready_settings, servers, schema)
        try:
            for other, table in tables.items():
                if other != schema:
                    assert await denied(conn, f"SELECT count(*) FROM {other}.{table}"), (schema, other)
        finally:
            await conn.close()


async def test_setup_takes_back_a_right_granted_by_hand(ready_settings: Settings, servers: Servers):
    role = role_name(MEMBERSHIP)
    admin = await asyncpg.connect(ready_settings.database_url)
    try:
        await admin.execute(f"GRANT UPDATE, DELETE, TRUNCATE ON membership.events TO {role}")
        await grant_service_role(admin, MEMBERSHIP, None)  # as a setup without the password: login kept
        for right in ("UPDATE", "DELETE", "TRUNCATE"):
            assert not await admin.fetchval("SELECT has_table_privilege($1, 'membership.events', $2)", role, right)
        assert await admin.fetchval("SELECT has_table_privilege($1, 'membership.events', 'INSERT')", role)
    finally:
        await admin.close()
    conn = await as_role(ready_settings, servers, MEMBERSHIP)
    await conn.close()


async def test_the_services_log_in_as_their_roles(platform: Supervisor, client: GongdiClient,
                                                 ready_settings: Settings):
    admin = await asyncpg.connect(ready_settings.database_url)
    try:
        async def logins() -> set[str]:
            # Logged-in client connections only: an autovacuum worker on this database, or a connection still
            # authenticating, shows no user (seen once in CI as a `None` beside the roles).
            rows = await admin.fetch("SELECT DISTINCT usename FROM pg_stat_activity"
                                     " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                                     " AND backend_type = 'client backend' AND usename IS NOT NULL")
            return {r["usename"] for r in rows}

        roles = {role_name(schema) for schema in SCHEMAS}

        async def all_logged_in() -> bool:
            return roles <= await logins()

        assert await eventually(all_logged_in), f"services not logged in as their roles: {await logins()}"
        assert await logins() <= roles  # nobody else: no service as the superuser
        # The membership role writes through membership.commit (SECURITY INVOKER: with its own rights).
        reply = await client.send(MEMBERSHIP, f.register("roles"))
        assert reply["ok"], reply
        assert await admin.fetchval("SELECT actor FROM membership.events WHERE site_id = 'roles'")
    finally:
        await admin.close()


def test_a_trust_data_dir_is_given_passwords_at_start(tmp_path: Path):
    """What `gongdi up` meets in a release 0.1 state folder: initdb --auth=trust and a superuser without password."""
    root = tmp_path / "postgres"
    first = EmbeddedPostgres(root, password="made-with-a-password")
    first.start()
    try:
        asyncio.run(_execute(first.url, "ALTER ROLE postgres PASSWORD NULL"))
    finally:
        first.stop()
    hba = root / "data" / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))

    pg = EmbeddedPostgres(root, password="given-at-upgrade")
    pg.start()
    try:
        assert "trust" not in [line.split()[-1] for line in hba.read_text().splitlines()
                               if line.strip() and not line.startswith("#")]
        assert asyncio.run(_execute(pg.url, "SELECT current_user")) == SUPERUSER
        with pytest.raises(asyncpg.InvalidPasswordError):
            asyncio.run(_execute(pg.url.replace(":given-at-upgrade@", "@"), "SELECT 1"))
    finally:
        pg.stop()


async def _execute(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_a_server_install_gives_each_service_its_role_and_password(tmp_path: Path, settings: Settings,
                                                                   servers: Servers):
    """What docker-compose.yml does: a PostgreSQL of its own whose superuser has a password from the secrets file;
    `gongdi setup` as the superuser, told each role's PG_PW_<SCHEMA>; every service then logs in as its role with
    that password alone. Before, every container connected as the superuser with the literal `change-me`."""
    pg = EmbeddedPostgres(tmp_path / "postgres", password=password())
    pg.start()
    try:
        role_passwords = {password_variable(role): password() for role in DATABASE_ROLES}
        env = {**_env(), "NATS_URL": settings.nats_url, "GONGDI_NATS_USER": "setup",
               "GONGDI_NATS_PASSWORD": servers.credentials.password("setup"), "DATABASE_URL": pg.url}
        home = tmp_path / "home"

        half = {**env, **dict(list(role_passwords.items())[:2]), password_variable(DATABASE_ROLES[2]): "change-me"}
        refused = subprocess.run([*GONGDI, "--home", str(home), "setup"], capture_output=True, text=True, env=half,
                                 timeout=120)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
        assert "PG_PW_LIAISON, PG_PW_VIEWS 未设置或仍是示例值 change-me" in refused.stderr, refused.stderr
        assert asyncio.run(_execute(pg.url, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'gongdi_%'")) == 0

        done = subprocess.run([*GONGDI, "--home", str(home), "setup"], capture_output=True, text=True,
                              env={**env, **role_passwords}, timeout=120)
        assert done.returncode == 0, done.stderr
        for role in DATABASE_ROLES:
            url = login_url(pg.url, role, role_passwords[password_variable(role)])
            assert asyncio.run(_execute(url, "SELECT current_user")) == role
            with pytest.raises(asyncpg.InvalidPasswordError):
                asyncio.run(_execute(login_url(pg.url, role, "change-me"), "SELECT 1"))

        # The services with nothing but their role's URL, as the compose file gives them.
        on_own = settings.model_copy(update={"database_url": pg.url})
        roles = {role: role_passwords[password_variable(role)] for role in DATABASE_ROLES}
        sup_running = _running(on_own, servers.as_identity(on_own, "city"), servers, tmp_path / "logs",
                               database_passwords=roles)
        next(sup_running)
        try:
            reply = asyncio.run(_send(servers.as_identity(on_own, "city")))
            assert reply["ok"], reply
            assert asyncio.run(_execute(pg.url, "SELECT actor FROM membership.events WHERE site_id = 'compose'")) \
                == "city"
        finally:
            sup_running.close()
    finally:
        pg.stop()


async def _send(settings: Settings) -> dict:
    client = await GongdiClient.connect(settings)
    try:
        return await client.send(MEMBERSHIP, f.register("compose"))
    finally:
        await client.close()

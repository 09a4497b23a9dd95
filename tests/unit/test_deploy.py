"""The deployment files parse and agree with the code: every process the supervisor runs is deployed."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from contracts.city import DEFAULT_CITY_FILE, load_city
from gongdi.ops.accounts import env_name
from gongdi.ops.deployfiles import (
    DATABASE_PASSWORDS,
    LEAF_URL_VAR,
    PLACEHOLDER,
    ensure_secrets,
    generated,
    password,
    production_users,
    read_env,
)
from gongdi.ops.runtime import nats_server_binary
from gongdi.ops.supervisor import DATABASE_ROLES, PROCESSES, WITHOUT_DATABASE, bus_user, database_role
from gongdi.store.roles import password_variable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NODES = ["single.conf", "cluster-1.conf", "cluster-2.conf", "cluster-3.conf"]
SECRETS_EXAMPLE = DEPLOY / "env/nats-secrets.env.example"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_platform_process():
    services = compose()["services"]
    for name, module, arg in PROCESSES:
        assert services[name]["command"] == ["python", "-m", module, arg]


def test_compose_has_a_three_node_jetstream_cluster_and_postgres():
    services = compose()["services"]
    nodes = [s for s in services if s.startswith("nats-")]
    assert len(nodes) == 3 and "postgres" in services
    for node in nodes:
        conf = services[node]["volumes"][0].split(":")[0]
        text = (ROOT / conf).read_text()
        assert "jetstream" in text and "routes" in text


def test_services_wait_for_setup():
    services = compose()["services"]
    for name, _, _ in PROCESSES:
        assert services[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_every_process_connects_as_its_own_user_with_its_own_password():
    services = compose()["services"]
    users = {u.name for u in production_users(load_city(DEFAULT_CITY_FILE))}
    deployed = [(name, bus_user(module, arg)) for name, module, arg in PROCESSES] + [("setup", "setup")]
    for name, user in deployed:
        env = services[name]["environment"]
        assert env["GONGDI_NATS_USER"] == user and user in users, name
        # compose substitutes it from the secrets file, and refuses to start without it
        assert env["GONGDI_NATS_PASSWORD"].startswith("${" + env_name(user) + ":?"), name
    assert len({user for _, user in deployed}) == len(deployed)


def test_nats_nodes_get_the_accounts_file_and_the_secrets():
    services = compose()["services"]
    for node in [s for s in services if s.startswith("nats-")]:
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[node]["volumes"]}
        assert mounts["/etc/nats/accounts.conf"] == "./deploy/nats/accounts.conf"
        assert services[node]["env_file"] == "deploy/env/nats-server.env"


@pytest.mark.parametrize("conf", NODES)
def test_every_node_fsyncs_includes_the_accounts_and_listens_for_townships(conf: str):
    text = (DEPLOY / "nats" / conf).read_text()
    live = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "sync_interval: always" in live
    assert re.search(r"^include \./accounts\.conf$", live, re.M)
    assert re.search(r"leafnodes \{\s*listen: 0\.0\.0\.0:7422", live)
    assert "tls" not in live, "TLS is documented, not enabled"
    assert "verify:" in text and "cert_file:" in text


def test_generated_files_are_committed_as_the_code_generates_them():
    for path, text in generated(load_city(DEFAULT_CITY_FILE)).items():
        assert (DEPLOY / path).read_text() == text, f"deploy/{path} is stale: run python -m gongdi.ops.deployfiles"


def test_every_user_has_its_password_variable_in_the_secrets_example():
    accounts = (DEPLOY / "nats/accounts.conf").read_text()
    entries = re.findall(r'\{user: "([^"]+)", password: ([^,}]+)', accounts)
    assert {u for u, _ in entries} == {u.name for u in production_users(load_city(DEFAULT_CITY_FILE))}
    example = read_env(SECRETS_EXAMPLE)
    for user, secret in entries:
        assert secret == f"${env_name(user)}", user  # a reference, never a password in the repository
        assert example[env_name(user)] == PLACEHOLDER
    assert set(example) == {env_name(u) for u, _ in entries} | {"GONGDI_HEAD_KEY", *DATABASE_PASSWORDS}
    assert set(DATABASE_PASSWORDS) == {"PG_PW_POSTGRES", "PG_PW_MEMBERSHIP", "PG_PW_ACTIVITIES", "PG_PW_LIAISON",
                                       "PG_PW_VIEWS"}
    assert "township.diantou" in {u for u, _ in entries}


def test_generated_passwords_survive_the_servers_reading_of_the_environment():
    for _ in range(200):
        pw = password()
        assert pw[0].isalpha() and pw.isalnum() and len(pw) == 32


@pytest.mark.parametrize("conf", [*NODES, "township-leaf.conf"])
def test_nats_server_accepts_every_config(conf: str):
    env = {**os.environ, **read_env(SECRETS_EXAMPLE), **read_env(DEPLOY / "env/township-leaf.env.example")}
    assert LEAF_URL_VAR in env
    out = subprocess.run([nats_server_binary(), "-c", str(DEPLOY / "nats" / conf), "-t"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_a_missing_password_stops_the_server():
    env = {k: v for k, v in {**os.environ, **read_env(SECRETS_EXAMPLE)}.items() if k != "NATS_PW_CITY"}
    out = subprocess.run([nats_server_binary(), "-c", str(DEPLOY / "nats/cluster-1.conf"), "-t"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "NATS_PW_CITY" in out.stderr


def test_only_the_writing_services_get_the_head_signing_key_from_the_secrets(tmp_path: Path):
    services = compose()["services"]
    holders = {name for name, service in services.items() if "GONGDI_HEAD_KEY" in (service.get("environment") or {})}
    assert holders == {"membership", "activities", "liaison"}
    for name in holders:
        assert services[name]["environment"]["GONGDI_HEAD_KEY"].startswith("${GONGDI_HEAD_KEY:?")
    secrets = tmp_path / "nats-secrets.env"
    city = load_city(DEFAULT_CITY_FILE)
    assert "GONGDI_HEAD_KEY" in ensure_secrets(city, secrets)
    key = read_env(secrets)["GONGDI_HEAD_KEY"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert ensure_secrets(city, secrets) == [] and read_env(secrets)["GONGDI_HEAD_KEY"] == key  # never replaced


def _from_secrets(value: str, variable: str) -> bool:
    """compose substitutes `variable` from the secrets file into `value`, and refuses to start without it."""
    return "${" + variable + ":?" in value


def test_no_password_is_written_in_the_compose_files():
    for path in (ROOT / "docker-compose.yml", DEPLOY / "env/production.env"):
        assert PLACEHOLDER not in path.read_text(), path
    assert "DATABASE_URL" not in read_env(DEPLOY / "env/production.env")


def test_every_service_logs_in_to_postgres_as_its_own_role():
    """Before, every container connected as the superuser with the literal password `change-me`."""
    services = compose()["services"]
    for name, module, _ in PROCESSES:
        url = services[name]["environment"].get("DATABASE_URL")
        if module in WITHOUT_DATABASE:
            assert not url, name
            continue
        role = database_role(module)
        assert url.startswith(f"postgresql://{role}:") and url.endswith("@postgres:5432/gongdi"), name
        assert _from_secrets(url, password_variable(role)), name
        assert "PG_PW_POSTGRES" not in url, name


def test_only_postgres_and_setup_get_the_superusers_password():
    services = compose()["services"]
    assert _from_secrets(services["postgres"]["environment"]["POSTGRES_PASSWORD"], "PG_PW_POSTGRES")
    setup = services["setup"]["environment"]
    assert setup["DATABASE_URL"].startswith("postgresql://postgres:")
    assert _from_secrets(setup["DATABASE_URL"], "PG_PW_POSTGRES")
    for role in DATABASE_ROLES:  # setup gives each role its password
        assert _from_secrets(setup[password_variable(role)], password_variable(role))
    holders = {name for name, service in services.items() if "PG_PW_POSTGRES" in str(service.get("environment"))}
    assert holders == {"postgres", "setup"}


def test_the_secrets_file_gets_the_database_passwords_and_keeps_them(tmp_path: Path):
    secrets = tmp_path / "nats-secrets.env"
    city = load_city(DEFAULT_CITY_FILE)
    assert set(DATABASE_PASSWORDS) <= set(ensure_secrets(city, secrets))
    first = read_env(secrets)
    assert all(first[name].isalnum() and first[name] != PLACEHOLDER for name in DATABASE_PASSWORDS)
    assert len({first[name] for name in DATABASE_PASSWORDS}) == len(DATABASE_PASSWORDS)
    assert ensure_secrets(city, secrets) == [] and read_env(secrets) == first


def test_the_nats_nodes_get_the_nats_passwords_and_nothing_else(tmp_path: Path):
    """Before, the nats-* containers read the whole secrets file: every database password and the head key too."""
    city = load_city(DEFAULT_CITY_FILE)
    secrets = tmp_path / "nats-secrets.env"
    ensure_secrets(city, secrets)
    full, nats_only = read_env(secrets), read_env(tmp_path / "nats-server.env")
    assert set(nats_only) == {env_name(u.name) for u in production_users(city)}
    assert all(full[k] == v for k, v in nats_only.items())
    assert (tmp_path / "nats-server.env").stat().st_mode & 0o077 == 0
    assert not set(nats_only) & {"GONGDI_HEAD_KEY", *DATABASE_PASSWORDS}


def test_the_services_settings_file_is_the_one_compose_uses_and_holds_no_secret():
    """Before, every service ran from a file named `production.env.example`."""
    services = compose()["services"]
    for name, _, _ in PROCESSES:
        assert services[name]["env_file"] == "deploy/env/production.env", name
    settings = read_env(DEPLOY / "env/production.env")
    assert not [k for k in settings if "PASSWORD" in k or k.startswith(("NATS_PW_", "PG_PW_")) or k.endswith("KEY")]

"""The production files generated from the city file: accounts.conf, the secrets example (NATS and PostgreSQL
passwords, the head key), the township leaf."""
from __future__ import annotations

import argparse
import os
import secrets
import string
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts.city import DEFAULT_CITY_FILE, City, load_city
from contracts.identity import Identity, Role
from gongdi.ops.accounts import AccountsConfig, User, all_users, env_name
from gongdi.ops.credentials import SUPERUSER
from gongdi.ops.runtime import write_private
from gongdi.ops.supervisor import DATABASE_ROLES, WRITERS
from gongdi.store.heads import new_seed
from gongdi.store.roles import password_variable

DEPLOY = DEFAULT_CITY_FILE.parent  # the repository's deploy/ folder
ACCOUNTS = Path("nats/accounts.conf")
SECRETS_EXAMPLE = Path("env/nats-secrets.env.example")
SECRETS = Path("env/nats-secrets.env")  # the real one: made by `secrets`, never committed (deploy/env/.gitignore)
# The NATS passwords alone, for the nats-* containers: they need nothing else of SECRETS (not the database's
# passwords, not the head-signing key). Made from SECRETS by every `secrets`, never committed.
NATS_SERVER_ENV = Path("env/nats-server.env")
TOWNSHIP_LEAF = Path("nats/township-leaf.conf")
LEAF_URL_VAR = "CITY_LEAF_URL"  # the township leaf's whole address of the city, its user and password included
LEAF_PORT = 7422
PLACEHOLDER = "change-me"

_LETTERS = string.ascii_letters
_ALPHABET = string.ascii_letters + string.digits


def password(length: int = 32) -> str:
    """A password nats-server can take from the environment. The server reads a `$VARIABLE`'s value as a config
    token, not as a string: `123`, `true`, `on` become a number or a boolean and a leading `-`, a space, `,`, `;`,
    `}` or a quote break the file (tried with nats-server 2.15). Letters and digits, starting with a letter, are
    always a string."""
    return secrets.choice(_LETTERS) + "".join(secrets.choice(_ALPHABET) for _ in range(length - 1))


def production_users(city: City) -> list[User]:
    """Every NATS user of a production installation: the platform's processes and the city's people.
    Site secretaries are registered while the platform runs, so they are not in the generated file."""
    return all_users(city, WRITERS)


def accounts_conf(city: City) -> str:
    header = (
        f"# Generated for {city.name} from its city file by `python -m gongdi.ops.deployfiles`: do not edit,\n"
        "# regenerate (tests/unit/test_deploy.py fails when this file differs from what the code generates).\n"
        "# Each password is the environment variable $NATS_PW_<USER> of the nats-server process, read when the\n"
        "# server starts; a missing variable stops it. The values live in deploy/env/nats-secrets.env\n"
        "# (`python -m gongdi.ops.deployfiles secrets`); the example lists every variable.\n"
    )
    return header + AccountsConfig(production_users(city)).render()


def _secrets_header(what: str) -> str:
    return (
        f"# {what}\n"
        "# One password per NATS user of deploy/nats/accounts.conf. nats-server reads them (docker compose passes\n"
        "# this file to the nats-* containers) and each platform process gets its own as GONGDI_NATS_PASSWORD\n"
        "# (docker compose --env-file deploy/env/nats-secrets.env up). A township's leaf node needs its\n"
        "# NATS_PW_TOWNSHIP_<CODE> in its CITY_LEAF_URL (deploy/env/township-leaf.env.example).\n"
        "# Letters and digits only, starting with a letter: nats-server reads each value as a config token, so a\n"
        "# number, true/false, a leading '-', spaces, commas or quotes break it.\n"
        "# PG_PW_POSTGRES is PostgreSQL's superuser (the postgres container, setup and the operator's tools);\n"
        "# PG_PW_<SCHEMA> is the login role gongdi_<schema> each service connects as (setup sets it).\n"
    )


# The Ed25519 seed the writing services sign their log heads with (gongdi.store.heads): kept here, with the
# passwords, and never in PostgreSQL, so that whoever can rewrite the database cannot sign a rewritten head.
HEAD_KEY = "GONGDI_HEAD_KEY"


# PostgreSQL's passwords: the superuser's (the postgres container is made with it; setup and the operator's
# tools connect with it), then each service role's, which setup gives the role and the service logs in with.
DATABASE_PASSWORDS = [password_variable(role) for role in (SUPERUSER, *DATABASE_ROLES)]
SUPERUSER_PASSWORD = DATABASE_PASSWORDS[0]


def _variables(city: City) -> list[str]:
    return [*(env_name(u.name) for u in production_users(city)), *DATABASE_PASSWORDS]


def secrets_example(city: City) -> str:
    """The committed example: every variable accounts.conf and docker-compose.yml refer to, and the head-signing
    key, with a placeholder."""
    header = _secrets_header(
        "Example only: make the real file with `python -m gongdi.ops.deployfiles secrets` (random passwords).")
    return header + "".join(f"{name}={PLACEHOLDER}\n" for name in _variables(city)) + f"{HEAD_KEY}={PLACEHOLDER}\n"


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as docker compose reads an env file (no quotes, no expansion)."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def ensure_secrets(city: City, path: Path) -> list[str]:
    """The real secrets file, with a random password for every user that has none yet; returns the variables
    added. A password already handed out (a township's leaf uses it) is never replaced."""
    current = read_env(path)
    added = [name for name in _variables(city) if name not in current]
    if added or HEAD_KEY not in current or not path.exists():
        current.update({name: password() for name in added})
        if HEAD_KEY not in current:  # a key already signing heads is never replaced: old heads verify with it
            current[HEAD_KEY] = new_seed()
            added.append(HEAD_KEY)
        header = _secrets_header("Secrets of this installation: owner-only, never committed, back it up.")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, header + "".join(f"{k}={v}\n" for k, v in current.items()))
    nats_only = [env_name(u.name) for u in production_users(city)]
    write_private(path.with_name(NATS_SERVER_ENV.name),
                  "# The NATS passwords of nats-secrets.env, for the nats-* containers only: made from it by\n"
                  "# `python -m gongdi.ops.deployfiles secrets`, do not edit.\n"
                  + "".join(f"{name}={current[name]}\n" for name in nats_only))
    return added


# A postgres volume made before the file had PG_PW_POSTGRES keeps the password it was made with: the image reads
# POSTGRES_PASSWORD only when it creates the data directory.
OLDER_VOLUME = (
    f"{SUPERUSER_PASSWORD} 是新生成的：已有的 PostgreSQL 数据卷仍用建立时的超级用户密码（以前的 docker-compose.yml 为\n"
    "change-me）。请改成新密码后再启动其余服务：\n"
    "  docker compose exec postgres psql -U postgres -c '\\password postgres'   （输入该值两次）\n"
    f"(an existing postgres volume keeps its old superuser password; set it to {SUPERUSER_PASSWORD} as above)")


def leaf_url(township: str, host: str, secrets_: dict[str, str], port: int = LEAF_PORT) -> str:
    """The CITY_LEAF_URL a township's office sets: its user and password, the city's leafnode address."""
    user = Identity(Role.TOWNSHIP, township=township).name
    return f"nats-leaf://{user}:{secrets_[env_name(user)]}@{host}:{port}"


def township_leaf_conf(listen: str = "0.0.0.0:4222", http: str = "127.0.0.1:8222") -> str:
    """A township office's leaf node; the same text for every township, whose identity is in CITY_LEAF_URL."""
    return f"""\
# A township office's leaf node (generated by `python -m gongdi.ops.deployfiles`; do not edit, regenerate).
# The office's computers connect here without a password, and the node connects to the city cluster as the
# township's user (township.<code>): the city applies that user's rights to everything crossing the link, and
# the services see the township as the sender of every request (Nats-Request-Info user township.<code>,
# kind Leafnode). So whoever reaches this port acts as the township: open it to the office network only.
# Nothing is stored here (no JetStream): commands and queries need the city's services; while the link is down
# a request fails at once (no responders) and works again when the node has reconnected by itself.
listen: {listen}
# Monitoring (/leafz shows the link to the city); no authentication, so local only.
http: {http}
max_payload: 8MB
leafnodes {{
  remotes: [
    {{
      # ${LEAF_URL_VAR} = nats-leaf://township.<code>:<its NATS_PW_TOWNSHIP_<CODE>>@<city host>:{LEAF_PORT}, one
      # variable because nats-server expands $VARIABLES only as whole values, never inside a string
      # (deploy/env/township-leaf.env.example; `python -m gongdi.ops.deployfiles leaf-url <code> <host>`).
      urls: [${LEAF_URL_VAR}]
      # TLS to the city (not enabled). With it, the link is encrypted and the city's certificate is checked;
      # the client certificate is needed when the city's leafnodes block sets `verify: true`.
      # tls {{
      #   ca_file: "/etc/nats/tls/city-ca.pem"
      #   cert_file: "/etc/nats/tls/township.pem"
      #   key_file: "/etc/nats/tls/township-key.pem"
      # }}
    }}
  ]
}}
"""


def township_leaf_env_example() -> str:
    return (
        "# Environment of a township office's leaf node (deploy/nats/township-leaf.conf), here for 点头镇 (diantou).\n"
        "# The city's administrator makes the line with\n"
        "#   python -m gongdi.ops.deployfiles leaf-url diantou <city host>\n"
        "# from deploy/env/nats-secrets.env, and hands it to the township only: it is the township's password.\n"
        f"{LEAF_URL_VAR}=nats-leaf://township.diantou:{PLACEHOLDER}@city.example.invalid:{LEAF_PORT}\n"
    )


def generated(city: City) -> dict[Path, str]:
    """Every generated file under deploy/, by its path there."""
    return {ACCOUNTS: accounts_conf(city), SECRETS_EXAMPLE: secrets_example(city),
            TOWNSHIP_LEAF: township_leaf_conf(), Path("env/township-leaf.env.example"): township_leaf_env_example()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gongdi.ops.deployfiles",
                                     description="服务器部署用的文件：由城市文件生成 (" + (__doc__ or "") + ")")
    parser.add_argument("--city", type=Path, default=Path(os.environ.get("GONGDI_CITY_FILE", DEFAULT_CITY_FILE)),
                        help="城市文件（默认 GONGDI_CITY_FILE 或仓库的 deploy/city.yaml） (the city file)")
    parser.add_argument("--deploy", type=Path, default=DEPLOY,
                        help="deploy 目录（默认仓库的） (the deploy folder, default: the repository's)")
    sub = parser.add_subparsers(dest="action")
    sub.add_parser("write", help="写 accounts.conf、township-leaf.conf 和各示例文件（默认） (write the files)")
    sub.add_parser("secrets", help="生成或补全 env/nats-secrets.env（随机密码）和 env/nats-server.env"
                                   " (create or complete the secrets)")
    leaf = sub.add_parser("leaf-url", help="打印一个乡镇的 CITY_LEAF_URL (print a township's leaf URL)")
    leaf.add_argument("township")
    leaf.add_argument("host")
    args = parser.parse_args(argv)
    city = load_city(args.city)
    if args.action == "secrets":
        existed = (args.deploy / SECRETS).exists()
        added = ensure_secrets(city, args.deploy / SECRETS)
        print(f"{args.deploy / SECRETS}：新生成 {len(added)} 个密码" + (f"（{', '.join(added)}）" if added else "")
              + f"；NATS 服务器用的 {args.deploy / NATS_SERVER_ENV} 已更新。两者仅本用户可读；请备份"
              f" {SECRETS.name}：全部密码和日志头签名密钥只在这里 ({len(added)} new password(s))")
        if existed and SUPERUSER_PASSWORD in added:
            print(OLDER_VOLUME, file=sys.stderr)
    elif args.action == "leaf-url":
        if args.township not in city.townships:
            print(f"{city.name}没有乡镇代码 {args.township}", file=sys.stderr)
            return 2
        try:
            print(f"{LEAF_URL_VAR}={leaf_url(args.township, args.host, read_env(args.deploy / SECRETS))}")
        except KeyError:
            print(f"{args.deploy / SECRETS} has no password for {args.township}: run `secrets` first", file=sys.stderr)
            return 2
    else:
        for path, text in generated(city).items():
            (args.deploy / path).write_text(text)
            print(args.deploy / path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

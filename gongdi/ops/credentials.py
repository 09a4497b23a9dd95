"""The embedded default's secrets: one password per NATS user and database role, kept in the state folder (0600)."""
from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from contracts.city import City
from contracts.identity import Identity, Role
from gongdi.ops.accounts import AccountsConfig, User, all_users
from gongdi.store.heads import new_seed

FILE_NAME = "credentials.json"
SUPERUSER = "postgres"  # the embedded PostgreSQL's superuser: setup, migrations and the operator's tools


def new_password() -> str:
    # Letters and digits, starting with a letter: safe in a nats:// or postgresql:// URL without escaping, and
    # read as a string (never a number, boolean or option) by nats-server's configuration parser.
    alphabet = string.ascii_letters + string.digits
    return secrets.choice(string.ascii_letters) + "".join(secrets.choice(alphabet) for _ in range(31))


@dataclass
class Credentials:
    """Created once by `gongdi up` (or a test's servers), extended when a township, department or secretary is
    added, never rotated silently: a password handed to a township keeps working."""

    path: Path
    nats: dict[str, str] = field(default_factory=dict)
    postgres: dict[str, str] = field(default_factory=dict)
    secretaries: dict[str, str] = field(default_factory=dict)  # site id → township code
    head_key: str = ""  # the Ed25519 seed that signs the log heads (gongdi.store.heads): here, never in PostgreSQL
    writers: list[str] = field(default_factory=list)  # the writing services (not stored: the code's list)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        try:
            raw = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            raise SystemExit(f"{path} 已损坏，读不出其中的密码（不是完整的 JSON）。请从备份恢复它；没有备份时，"
                             "数据库的密码已无法找回 (credentials.json is damaged)") from None
        return cls(path, raw.get("nats", {}), raw.get("postgres", {}), raw.get("secretaries", {}),
                   raw.get("head_key", ""))

    @classmethod
    def ensure(cls, home: Path, city: City, writers: Iterable[str]) -> Credentials:
        """The state folder's credentials, with a password for every user the city and services need."""
        creds = cls.load(home / FILE_NAME)
        creds.writers = list(writers)
        if not creds.head_key:  # a state folder from before signed heads gets its key on its first start
            creds.head_key = new_seed()
            creds.save()
        creds.add_users(city)
        return creds

    def users(self, city: City) -> list[User]:
        return all_users(city, self.writers, self.secretaries)

    def add_users(self, city: City) -> None:
        changed = False
        for user in self.users(city):
            if user.name not in self.nats:
                self.nats[user.name] = new_password()
                changed = True
        if changed or not self.path.exists():
            self.save()

    def ensure_postgres(self, roles: Iterable[str]) -> None:
        """A password for the database superuser and for each service's role (`gongdi.store.roles.role_name`),
        for an embedded PostgreSQL; kept once made, like the NATS passwords."""
        missing = [role for role in (SUPERUSER, *roles) if role not in self.postgres]
        for role in missing:
            self.postgres[role] = new_password()
        if missing or not self.path.exists():
            self.save()

    def add_secretary(self, city: City, site_id: str, township: str) -> Identity:
        if township not in city.townships:
            raise ValueError(f"{city.name}没有乡镇代码 {township}；可用: {'、'.join(sorted(city.townships))}")
        identity = Identity(Role.SITE, township=township, site=site_id)
        try:  # a site id that is no slug would make a user no role has
            valid = Identity.parse(identity.name) == identity
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"工地编号 {site_id!r} 不合规：小写字母、数字、-、_ (site id is not a slug)")
        if (before := self.secretaries.get(site_id)) not in (None, township):
            # One secretary identity per site: before, the new one silently took the place of the real one.
            raise ValueError(f"工地 {site_id} 已有工地书记身份 site.{before}.{site_id}"
                             f"（{city.township_name(before)}）；一个工地只属于一个乡镇，请检查乡镇代码"
                             f" (the site's secretary is of {before})")
        self.secretaries[site_id] = township
        self.add_users(city)
        return identity

    def password(self, user: str) -> str:
        try:
            return self.nats[user]
        except KeyError:
            raise KeyError(f"no NATS user {user!r} in {self.path}") from None

    def accounts(self, city: City) -> AccountsConfig:
        return AccountsConfig(self.users(city), self.password)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"nats": self.nats, "postgres": self.postgres, "secretaries": self.secretaries,
                           "head_key": self.head_key}, indent=2, ensure_ascii=False)
        # Written under a temporary name with owner-only rights, then renamed: never readable by others,
        # never half-written.
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

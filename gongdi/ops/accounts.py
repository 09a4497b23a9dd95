"""The NATS side of who-may-do-what: every identity's user and subject permissions, written as server config.

Two accounts. PLATFORM holds the services, relays and operator tools and is the only one with JetStream;
USERS holds people and their programs, which reach the platform only through PLATFORM's exported `cmd.>` and
`qry.>` services (imported with `share`, so the server tells the responder who asked, in `Nats-Request-Info`).
A USERS identity therefore cannot publish events, answer commands, or touch streams. The views' change notices
(`live.>`) stay in PLATFORM, heard by the gateway only: a service's answer goes to whatever reply subject the
requester named in its own account, so a notice subject people could hear there is one any writer could fill.
PLATFORM does not export `ops.>`: the operator's requests to the services (the retry of dead letters) come from
its `setup` user only.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from contracts.city import City
from contracts.history import history_subject
from contracts.identity import PLATFORM_ACCOUNT, USERS_ACCOUNT, Identity, Role
from contracts.queries import OPS_PREFIX, STATUS, status_subject
from contracts.queries import SERVICE as VIEWS
from contracts.subjects import stream_name
from gongdi.bus.heads import head_subject

INBOX = "_INBOX.>"
GATEWAY = "gateway"  # the HTTP gateway's platform user
# What a consumer of a stream needs from the JetStream API, and no more (no creating or deleting anything).
_CONSUME = ["$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.CONSUMER.INFO.*.*", "$JS.API.CONSUMER.MSG.NEXT.*.*",
            "$JS.ACK.>", "dlq.>"]


@dataclass(frozen=True)
class User:
    name: str
    account: str
    publish: Sequence[str] = ()
    subscribe: Sequence[str] = ()
    allow_responses: bool = False
    everything: bool = False  # the operator's `setup` user: administers streams and consumers
    title: str = ""

    def permissions(self) -> dict | None:
        if self.everything:
            return None
        perms: dict = {"publish": {"allow": list(self.publish)} if self.publish else {"deny": [">"]},
                       "subscribe": {"allow": list(self.subscribe)} if self.subscribe else {"deny": [">"]}}
        if self.allow_responses:
            perms["allow_responses"] = True
        return perms


def platform_users(writers: Sequence[str], reader: str = "views") -> list[User]:
    users = [User("setup", PLATFORM_ACCOUNT, everything=True, title="安装与运维工具 (setup, status, verify, rebuild)")]
    for w in writers:
        # Commands, its status and history, the operator's retry of its dead letters; stream info (in _CONSUME) for
        # status. People ask histories through `qry.>` (not the dashboard: its reads are listed in client_user).
        # ... and its own signed log head, on its own subject only (gongdi.bus.heads).
        users.append(User(w, PLATFORM_ACCOUNT, publish=[*_CONSUME, head_subject(w)],
                          subscribe=[f"cmd.*.{w}.>", status_subject(w), history_subject(w), f"{OPS_PREFIX}.{w}.>",
                                     INBOX],
                          allow_responses=True, title=f"{w} 服务"))
        stream = stream_name(w)
        users.append(User(f"relay.{w}", PLATFORM_ACCOUNT, subscribe=[INBOX], title=f"{w} 事件转发",
                          publish=[f"evt.*.{w}.>", "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}",
                                   f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>",
                                   f"$JS.API.STREAM.MSG.GET.{stream}"]))
    # As-of views read the streams again through short-lived consumers of their own (gongdi.bus.asof).
    reread = [f"$JS.API.CONSUMER.{verb}.{stream_name(w)}{tail}" for w in writers
              for verb, tail in (("CREATE", ""), ("CREATE", ".>"), ("DELETE", ".*"))]
    users.append(User(reader, PLATFORM_ACCOUNT, publish=[*_CONSUME, *reread, "live.>"],
                      subscribe=[f"qry.{reader}.>", f"{OPS_PREFIX}.{reader}.>", INBOX], allow_responses=True,
                      title="视图服务"))
    # The HTTP gateway's own connection asks only for every service's progress (health, metrics) and hears the
    # views' change notices for the live pages. What people do or read through it goes over a connection made with
    # their own identity (services.gateway.sessions): a notice only makes a page ask again, with the page's rights.
    users.append(User(GATEWAY, PLATFORM_ACCOUNT, publish=[f"qry.*.{STATUS}"], subscribe=[INBOX, "live.>"],
                      title="网关 (健康、指标与实时页面)"))
    return users


def user_identities(city: City, secretaries: Mapping[str, str] = {}) -> list[Identity]:
    """Every person-facing identity of a city: its committee, townships, departments, auditor, dashboard and
    the site secretaries registered so far (site → township)."""
    out = [Identity(Role.CITY), Identity(Role.AUDITOR), Identity(Role.DASHBOARD)]
    out += [Identity(Role.TOWNSHIP, township=t) for t in city.townships]
    out += [Identity(Role.DEPARTMENT, department=d) for d in city.departments]
    out += [Identity(Role.SITE, township=t, site=s) for s, t in sorted(secretaries.items())]
    return out


def client_user(identity: Identity) -> User:
    """What NATS lets an identity do; the services check the same rights again on every request (a writing
    service's status, for one, answers the city, the auditor and the dashboard only: gongdi.service.kit)."""
    reads = ["qry.>"]
    if identity.role is Role.DASHBOARD:  # the city's, townships' and departments' figures, every service's status
        reads = [f"qry.{VIEWS}.city", f"qry.{VIEWS}.township", f"qry.{VIEWS}.department", f"qry.*.{STATUS}"]
    writes = [f"cmd.{identity.scope}.>"] if identity.scope else []
    # Replies come back on the identity's own inbox prefix: with `_INBOX.>` anyone could read everyone's answers.
    # Nothing else: live pages are the gateway's (/api/live), see the module's docstring.
    return User(identity.name, USERS_ACCOUNT, publish=[*writes, *reads], subscribe=[f"{inbox_prefix(identity.name)}.>"])


def inbox_prefix(user: str) -> str:
    """Where a person's replies arrive; the client must request with this prefix (nats-py `inbox_prefix`)."""
    return f"_INBOX.{user}"


def all_users(city: City, writers: Sequence[str], secretaries: Mapping[str, str] = {}) -> list[User]:
    return [*platform_users(writers), *(client_user(i) for i in user_identities(city, secretaries))]


def env_name(user: str) -> str:
    """The environment variable holding a user's password in the production files."""
    return "NATS_PW_" + "".join(c if c.isalnum() else "_" for c in user).upper()


@dataclass(frozen=True)
class AccountsConfig:
    users: Sequence[User]
    password: Callable[[str], str] = field(default=lambda user: f"${env_name(user)}")

    def render(self) -> str:
        """The `accounts { … }` block of nats-server's configuration."""
        lines = ["accounts {"]
        for account in (PLATFORM_ACCOUNT, USERS_ACCOUNT):
            lines.append(f"  {account} {{")
            if account == PLATFORM_ACCOUNT:
                lines += ["    jetstream: enabled",
                          '    exports: [{service: "cmd.>"}, {service: "qry.>"}]']
            else:
                lines += ["    imports: [",
                          f'      {{service: {{account: {PLATFORM_ACCOUNT}, subject: "cmd.>"}}, share: true}}',
                          f'      {{service: {{account: {PLATFORM_ACCOUNT}, subject: "qry.>"}}, share: true}}',
                          "    ]"]
            lines.append("    users: [")
            for user in self.users:
                if user.account != account:
                    continue
                secret = self.password(user.name)
                # A literal password is quoted; a `$VARIABLE` reference must stay bare for the server to expand it.
                value = secret if secret.startswith("$") else json.dumps(secret)
                entry = f"{{user: {json.dumps(user.name)}, password: {value}"
                perms = user.permissions()
                if perms is not None:
                    entry += f", permissions: {json.dumps(perms, ensure_ascii=False)}"
                lines.append(f"      {entry}}}")
            lines += ["    ]", "  }"]
        lines.append("}")
        return "\n".join(lines) + "\n"


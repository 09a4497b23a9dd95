"""Who may do what: the platform's identities (NATS user names) and the rights of each role, as pure rules."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# The NATS accounts: people and their programs connect to USERS; the platform's own processes to PLATFORM.
USERS_ACCOUNT = "USERS"
PLATFORM_ACCOUNT = "PLATFORM"
# The command-subject token of the city work committee (a township code for everyone else who writes).
CITY_SCOPE = "city"

_SLUG = r"[a-z0-9][a-z0-9_-]{0,62}"


class Role(StrEnum):
    CITY = "city"  # 市工委: reads all, writes anywhere, administers
    TOWNSHIP = "township"  # 乡镇党委 operator: writes and reads the sites of its township
    SITE = "site"  # 工地党支部书记: writes and reads its own site
    DEPARTMENT = "department"  # 行业主管部门: reads the projects it supervises
    AUDITOR = "auditor"  # 审计: reads everything, writes nothing
    DASHBOARD = "dashboard"  # 大屏: aggregates and live figures only, no names
    PLATFORM = "platform"  # the platform's own services, relays and tools


LABELS = {Role.CITY: "市工委", Role.TOWNSHIP: "乡镇", Role.SITE: "工地书记", Role.DEPARTMENT: "主管部门",
          Role.AUDITOR: "审计", Role.DASHBOARD: "大屏", Role.PLATFORM: "平台"}

_PATTERNS = {
    Role.TOWNSHIP: re.compile(rf"^township\.(?P<township>{_SLUG})$"),
    Role.SITE: re.compile(rf"^site\.(?P<township>{_SLUG})\.(?P<site>{_SLUG})$"),
    Role.DEPARTMENT: re.compile(rf"^department\.(?P<department>{_SLUG})$"),
}


class ForbiddenError(Exception):
    """The sender's identity does not allow this; `rule` names which right is missing."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class Identity:
    """One identity the platform knows. Its `name` is its NATS user name and the actor recorded on its events."""

    role: Role
    township: str | None = None
    site: str | None = None
    department: str | None = None  # the department's code in the city file
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", _name_of(self))

    @classmethod
    def parse(cls, name: str, account: str = USERS_ACCOUNT) -> Identity:
        """The identity a user name stands for; raises ValueError for a name no role has."""
        if account == PLATFORM_ACCOUNT:
            return cls(Role.PLATFORM, name=name)
        if account != USERS_ACCOUNT:
            raise ValueError(f"account {account!r} is not one of the platform's")
        if name in (Role.CITY, Role.AUDITOR, Role.DASHBOARD):
            return cls(Role(name))
        for role, pattern in _PATTERNS.items():
            m = pattern.match(name)
            if m:
                return cls(role, **m.groupdict())
        raise ValueError(f"{name!r} is not a platform identity")

    @property
    def scope(self) -> str | None:
        """The token its command subjects carry (cmd.<scope>.<service>.<Name>); None when it may not write."""
        if self.role is Role.CITY:
            return CITY_SCOPE
        if self.role in (Role.TOWNSHIP, Role.SITE):
            return self.township
        return None

    def check_may_write(self) -> None:
        """May it record anything at all? A role that only reads (主管部门, 审计, 大屏) is refused whatever the site,
        so a caller about to send many commands (an import) can say so once, before any is made."""
        if self.scope is None:
            raise ForbiddenError("READ_ONLY_ROLE",
                                 f"{LABELS[self.role]}身份只能查看，不能记录 ({self.name} may not write)")

    def check_subject(self, scope: str) -> None:
        """May it record anything through a `scope` subject? Its role and the subject, before anything is read."""
        self.check_may_write()
        if scope != self.scope:
            raise ForbiddenError("SUBJECT_SCOPE",
                                 f"{self.name} 只能在 cmd.{self.scope}.* 上发送命令，不能用 cmd.{scope}.*")

    def check_write(self, scope: str, township: str | None, site_id: str, registering: bool = False,
                    names: Mapping[str, str] | None = None) -> None:
        """May it record a fact on `site_id` (of `township`, None while unknown) through a `scope` subject? The
        refusal names townships by their names in `names` (the city's), by code without it."""
        self.check_subject(scope)
        if self.role is Role.SITE and registering:
            raise ForbiddenError("OTHER_SITE", f"工地书记 {self.name} 不能登记工地：工地由乡镇或市工委登记"
                                               " (a site secretary registers no site)")
        if self.role is Role.SITE and site_id != self.site:
            # Before the township's check and whether the site exists: a secretary was told another township's
            # site apart from one of their own township and from a made-up id, which told them which ids exist.
            raise ForbiddenError("OTHER_SITE", f"{self.name} 只能记录本工地 {self.site}，不能记录 {site_id}")
        if self.role is Role.CITY or township is None:
            return  # an unknown site is the rules' to refuse; nothing can be written on it by this check
        if township != self.township:
            named = names or {}
            own = named.get(self.township or "")
            who = f"{self.name}（{own}）" if own else f"{self.name} "
            raise ForbiddenError("OTHER_TOWNSHIP",
                                 f"工地 {site_id} 属于 {named.get(township, township)}，{who}只能记录本乡镇的工地")

    def may_read_site(self, township: str, department: str | None, site_id: str) -> bool:
        """Sites carry names of members: only roles responsible for that site (or everything) see them."""
        if self.role in (Role.CITY, Role.AUDITOR, Role.PLATFORM):
            return True
        if self.role is Role.TOWNSHIP:
            return township == self.township
        if self.role is Role.SITE:
            return site_id == self.site
        if self.role is Role.DEPARTMENT:
            return department is not None and department == self.department
        return False

    def may_read_township(self, township: str) -> bool:
        """A township's figures: counts and project names, no members' names."""
        if self.role in (Role.TOWNSHIP, Role.SITE):
            return township == self.township
        return True

    def may_read_department(self, department: str) -> bool:
        """A competent department's figures (`department`: its code): counts and project names, no members'
        names. Its own department, and those who see the whole city; not a township's or a site's people."""
        if self.role in (Role.CITY, Role.AUDITOR, Role.DASHBOARD, Role.PLATFORM):
            return True
        if self.role is Role.DEPARTMENT:
            return department == self.department
        return False


def _name_of(identity: Identity) -> str:
    if identity.role is Role.TOWNSHIP:
        return f"township.{identity.township}"
    if identity.role is Role.SITE:
        return f"site.{identity.township}.{identity.site}"
    if identity.role is Role.DEPARTMENT:
        return f"department.{identity.department}"
    return identity.role.value

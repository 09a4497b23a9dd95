"""Activities composition root: which commands, state, policy and tables make up the service."""
from __future__ import annotations

from contracts.activities import COMMANDS, SERVICE
from contracts.rules import DEFAULT_RULES
from gongdi.service.kit import SiteService
from gongdi.store.sitestreams import Snapshots
from services.activities.domain import ActivitySite, evolve
from services.activities.handlers import MembershipPolicy, activity_commands
from services.activities.repository import SCHEMA, TABLES_SQL

assert SCHEMA == SERVICE

ACTIVITIES = SiteService(
    name=SERVICE,
    commands=COMMANDS,
    snapshots=Snapshots(SCHEMA, ActivitySite),
    evolve=evolve,
    tables_sql=TABLES_SQL,
    make_commands=lambda pool, stream, log: activity_commands(pool, stream, DEFAULT_RULES, log),
    make_policy=lambda stream: MembershipPolicy(stream, DEFAULT_RULES),
)
build_app = ACTIVITIES.app
setup = ACTIVITIES.setup

"""Liaison composition root: which commands, state, policy and tables make up the service."""
from __future__ import annotations

from contracts.liaison import COMMANDS, SERVICE
from gongdi.service.kit import SiteService
from gongdi.store.sitestreams import Snapshots
from services.liaison.domain import LiaisonSite, evolve
from services.liaison.handlers import MembershipPolicy, liaison_commands
from services.liaison.repository import SCHEMA, TABLES_SQL

assert SCHEMA == SERVICE

LIAISON = SiteService(
    name=SERVICE,
    commands=COMMANDS,
    snapshots=Snapshots(SCHEMA, LiaisonSite),
    evolve=evolve,
    tables_sql=TABLES_SQL,
    make_commands=liaison_commands,
    make_policy=lambda _stream: MembershipPolicy(),
)
build_app = LIAISON.app
setup = LIAISON.setup

"""Liaison composition root: the service as a declaration; the kit wires settings, pool, broker and relay."""
from __future__ import annotations

from contracts.liaison import COMMANDS, EVENTS, SERVICE
from contracts.membership import SERVICE as MEMBERSHIP
from gongdi.service.kit import Policy, WritingService
from gongdi.store.postgres import PostgresEventStore, routines_sql
from gongdi.store.sitestreams import SiteFolds, SiteStream, SiteStreams
from services.liaison.domain import LiaisonSite, advise, decide, evolve
from services.liaison.handlers import MembershipPolicy
from services.liaison.repository import MIGRATIONS, SCHEMA, Directory

assert SCHEMA == SERVICE

LIAISON = WritingService(
    name=SERVICE,
    commands=COMMANDS,
    repository=lambda pool, _city: SiteStreams(
        SiteStream(PostgresEventStore(pool, SCHEMA), SiteFolds(LiaisonSite, evolve, EVENTS)), Directory().context),
    decide=decide,
    advise=advise,
    migrations=MIGRATIONS,
    routines=(routines_sql,),
    policies=(Policy(MEMBERSHIP, lambda _pool: MembershipPolicy()),),
)

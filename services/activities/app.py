"""Activities composition root: the service as a declaration; the kit wires settings, pool, broker and relay."""
from __future__ import annotations

import asyncpg

from contracts.activities import COMMANDS, EVENTS, SERVICE
from contracts.membership import SERVICE as MEMBERSHIP
from contracts.rules import DEFAULT_RULES
from gongdi.service.kit import Policy, WritingService
from gongdi.store.postgres import PostgresEventStore, routines_sql
from gongdi.store.sitestreams import SiteFolds, SiteStream, SiteStreams
from services.activities.domain import ActivitySite, advise, decide, evolve
from services.activities.handlers import MembershipPolicy
from services.activities.repository import MIGRATIONS, SCHEMA, Directory

assert SCHEMA == SERVICE


def site_stream(pool: asyncpg.Pool) -> SiteStream[ActivitySite]:
    return SiteStream(PostgresEventStore(pool, SCHEMA), SiteFolds(ActivitySite, evolve, EVENTS))


ACTIVITIES = WritingService(
    name=SERVICE,
    commands=COMMANDS,
    repository=lambda pool, _city: SiteStreams(site_stream(pool), Directory().context),
    decide=lambda command, given: decide(command, given, DEFAULT_RULES),
    advise=advise,
    migrations=MIGRATIONS,
    routines=(routines_sql,),
    policies=(Policy(MEMBERSHIP, lambda pool: MembershipPolicy(site_stream(pool), DEFAULT_RULES)),),
)

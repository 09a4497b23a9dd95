"""Membership composition root: the service as a declaration; the kit wires settings, pool, broker and relay."""
from __future__ import annotations

from contracts.membership import COMMANDS, SERVICE
from contracts.rules import DEFAULT_RULES
from gongdi.service.kit import WritingService
from services.membership.domain import advise, decide
from services.membership.repository import MIGRATIONS, ROUTINES, SCHEMA, MembershipRepository
from services.membership.timers import TIMERS

assert SCHEMA == SERVICE

MEMBERSHIP = WritingService(
    name=SERVICE,
    commands=COMMANDS,
    repository=MembershipRepository,
    decide=lambda command, given: decide(command, given, DEFAULT_RULES),
    advise=lambda command, given: advise(command, given, DEFAULT_RULES),
    migrations=MIGRATIONS,
    routines=ROUTINES,
    timers=TIMERS,
)

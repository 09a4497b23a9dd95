"""Numbered rules from the branch work regulations, as named settings a city may adjust."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class Rules(BaseModel):
    """Each field names the rule a refusal or warning cites."""

    model_config = ConfigDict(frozen=True)
    branch_min_full_members: int = 3
    branch_warn_members: int = 50
    branch_general_members: int = 100
    branch_committee_threshold: int = 7
    branch_committee_min: int = 3
    branch_committee_max: int = 7
    party_group_min_members: int = 3
    party_group_min_full: int = 1
    coverage_min_cost_wan: Decimal = Decimal(5000)
    coverage_min_months: int = 24
    # 三必谈: days from the cause to the talk before the obligation is overdue. Bounded: a due day never precedes
    # its cause, and only a cause in the calendar's last year needs the cap in activities' `talk_due`.
    talk_due_days: int = Field(default=7, ge=0, le=366)


DEFAULT_RULES = Rules()


class Limits(BaseModel):
    """What a plausible fact looks like: the bounds every command is checked against (VALIDATION_FAILED with the
    field). Dates are checked against the day the command arrives."""

    model_config = ConfigDict(frozen=True)
    earliest_day: dt.date = dt.date(1921, 7, 1)  # nothing in a party record happened before the Party's founding
    future_days: int = 7  # a fact may be recorded a few days ahead (a meeting planned this week), no more
    plan_years: int = 5  # a project's planned start may lie this far ahead
    max_count: int = 1_000_000  # headcounts, workforce, cards, attendees: real sites have far fewer; fits int32
    max_months: int = 240  # planned duration of a project: 20 years
    max_cost_wan: Decimal = Decimal(10_000_000)  # 1,000亿元: more than any single project
    max_yuan: Decimal = Decimal(100_000_000)  # 1亿元: wages in dispute, donations, settlements
    max_quantity: Decimal = Decimal(1_000_000)  # metres of road, trips, patrols
    max_people: int = 50  # names listed in one fact: parties, signatories, committee
    max_items: int = 100  # items of one meeting or agreement
    # One event as the relay publishes it (envelope and payload, encoded; EVENT_TOO_LARGE otherwise): well above
    # what the bounds above let a command make (a joint meeting at every limit, 4-byte characters, is ~65 KiB),
    # well below the 1 MB nats-server and nats-py default to (8 MB configured here): a stored event always fits.
    max_event_bytes: int = 256 * 1024


LIMITS = Limits()


def qualifies_for_coverage(cost_wan: Decimal, planned_months: int, rules: Rules = DEFAULT_RULES) -> bool:
    """强制覆盖: cost ≥ 5,000万元 and planned duration ≥ 2 years."""
    return cost_wan >= rules.coverage_min_cost_wan and planned_months >= rules.coverage_min_months

"""Numbered rules from the branch work regulations, as named settings a city may adjust."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

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
    # 流动党员 (docs/architecture.md, "Timers"): calendar months from a mobile member's arrival at a site to the
    # prompt to transfer the relation, and from a lost member's last contact to the escalation. Bounded so that a
    # due day stays a real date.
    transfer_prompt_months: int = Field(default=6, ge=1, le=120)
    contact_escalation_months: int = Field(default=6, ge=1, le=120)
    # 入党申请人谈话: the branch talks with an applicant within this many calendar months of the application.
    application_talk_months: int = Field(default=1, ge=0, le=12)
    # 发展党员 (membership development): an applicant is at least this old on the day of the application (on the
    # birthday counts); an activist is cultivated at least this many months before becoming a development target
    # (on the anniversary counts); probation lasts this many months and may be extended at most this many times,
    # each by at most this many months. "N months after a day" is contracts.rules.months_after.
    applicant_min_age: int = Field(default=18, ge=14, le=100)
    activist_min_months: int = Field(default=12, ge=0, le=120)
    probation_months: int = Field(default=12, ge=1, le=120)
    probation_extensions_max: int = Field(default=1, ge=0, le=10)
    probation_extension_max_months: int = Field(default=12, ge=1, le=120)
    # An extension is decided when the probation ends (the branch discusses it then, 党章 第七条): at most this many
    # months after the end, not years later (which turned an overdue confirmation into an "extended" probation).
    probation_decision_months: int = Field(default=3, ge=0, le=24)
    # 党员积分: each category's weight, the most a member may earn in it in one year (together 100).
    points_weight_post_goals: int = Field(default=40, ge=0, le=100)  # 岗位目标
    points_weight_obligations: int = Field(default=30, ge=0, le=100)  # 履行义务
    points_weight_rules_kept: int = Field(default=20, ge=0, le=100)  # 遵规守纪
    points_weight_innovation: int = Field(default=10, ge=0, le=100)  # 创新创效
    # 民主评议: 优秀 at most one in this many of those appraised (one third).
    appraisal_excellent_one_in: int = Field(default=3, ge=1)
    # 三会一课 and the rest: months in one period of each kind (a divisor of 12, periods start in January).
    meeting_months_general_assembly: Literal[1, 2, 3, 4, 6, 12] = 3  # 支部党员大会, quarterly
    meeting_months_committee: Literal[1, 2, 3, 4, 6, 12] = 1  # 支委会, monthly (where there is a committee)
    meeting_months_group: Literal[1, 2, 3, 4, 6, 12] = 1  # 党小组会, monthly
    meeting_months_lecture: Literal[1, 2, 3, 4, 6, 12] = 3  # 党课, quarterly
    meeting_months_themed_day: Literal[1, 2, 3, 4, 6, 12] = 1  # 主题党日, monthly
    meeting_months_life_meeting: Literal[1, 2, 3, 4, 6, 12] = 12  # 组织生活会, yearly

    def points_weight(self, category: str) -> int:
        return getattr(self, f"points_weight_{category}")

    def meeting_months(self, kind: str) -> int:
        return getattr(self, f"meeting_months_{kind}")


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


def branch_size_warning(members: int, rules: Rules = DEFAULT_RULES) -> str | None:
    """What a branch of `members` members present should become, naming the rule: over `branch_warn_members` a
    general branch (党总支), over `branch_general_members` a base committee (党的基层委员会); None up to the first."""
    if members <= rules.branch_warn_members:
        return None
    if members > rules.branch_general_members:
        return (f"支部党员{members}名，超过{rules.branch_general_members}名，应考虑成立党的基层委员会"
                " (rule branch_general_members)")
    return f"支部党员{members}名，超过{rules.branch_warn_members}名，应考虑成立党总支 (rule branch_warn_members)"


def months_after(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later, or that month's last day when it has none (29 February + 12 →
    28 February): how the development rules count a year, and what PostgreSQL's `+ interval` gives."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    following = dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return min(dt.date(year, month + 1, 1) + dt.timedelta(days=day.day - 1), following - dt.timedelta(days=1))

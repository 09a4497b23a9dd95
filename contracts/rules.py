"""Numbered rules from the branch work regulations, as named settings a city may adjust."""
from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict


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
    talk_due_days: int = 7  # 三必谈: days from the cause to the talk before the obligation is overdue


DEFAULT_RULES = Rules()


def qualifies_for_coverage(cost_wan: Decimal, planned_months: int, rules: Rules = DEFAULT_RULES) -> bool:
    """强制覆盖: cost ≥ 5,000万元 and planned duration ≥ 2 years."""
    return cost_wan >= rules.coverage_min_cost_wan and planned_months >= rules.coverage_min_months

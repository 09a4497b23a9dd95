"""Queries over the liaison read models, for one site, one township or the whole city."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg

from contracts.liaison import UNITS, CaseState, DisputeKind, SupportKind, Target


def scope_filter(schema: str, scope: str) -> str:
    """A condition on `site_id` selecting the scope's sites; its parameter is $1 (None for the city)."""
    if scope == "site":
        return "site_id = $1"
    if scope == "township":
        return f"site_id IN (SELECT site_id FROM {schema}.site WHERE township = $1)"
    return "$1::text IS NULL"


async def summary(conn: asyncpg.Connection, schema: str, scope: str, key: str | None, today: dt.date
                  ) -> dict[str, Any]:
    s, w = schema, scope_filter(schema, scope)
    items = await conn.fetch(
        f"SELECT responsible, count(*) FILTER (WHERE resolved_on IS NULL) AS open,"
        f" count(*) FILTER (WHERE resolved_on IS NULL AND due_on < $2) AS overdue,"
        f" count(*) FILTER (WHERE resolved_on IS NOT NULL) AS resolved"
        f" FROM {s}.meeting_item WHERE {w} GROUP BY responsible ORDER BY responsible",
        key, today,
    )
    targets = await conn.fetch(
        f"SELECT target, count(*) FILTER (WHERE met) AS met, count(*) FILTER (WHERE NOT met) AS not_met,"
        f" count(*) FILTER (WHERE met IS NULL) AS unassessed FROM {s}.compliance_target WHERE {w} GROUP BY target",
        key,
    )
    by_target = {r["target"]: dict(r) for r in targets}
    agreements = await conn.fetch(
        f"SELECT site_id, agreement_id, village, count(*) AS items, count(completed_on) AS completed"
        f" FROM {s}.cobuilding_item WHERE {w} GROUP BY site_id, agreement_id, village ORDER BY 1, 2",
        key,
    )
    disputes = await conn.fetch(
        f"SELECT kind, state, count(*) AS n FROM {s}.dispute WHERE {w} GROUP BY kind, state", key
    )
    by_kind = {k.value: {st.value: 0 for st in CaseState} for k in DisputeKind}
    for r in disputes:
        by_kind[r["kind"]][r["state"]] = r["n"]
    support = await conn.fetch(
        f"SELECT kind, sum(quantity) AS total FROM {s}.village_support WHERE {w} GROUP BY kind", key
    )
    totals = {r["kind"]: r["total"] for r in support}
    villages = await conn.fetch(
        f"SELECT village, kind, sum(quantity) AS total FROM {s}.village_support WHERE {w}"
        " GROUP BY village, kind ORDER BY village, kind",
        key,
    )
    meetings = await conn.fetchval(f"SELECT count(*) FROM {s}.meeting WHERE {w}", key)
    return {
        "meetings": meetings,
        "meeting_items": {
            "open": sum(r["open"] for r in items),
            "overdue": sum(r["overdue"] for r in items),
            "resolved": sum(r["resolved"] for r in items),
            "by_unit": {r["responsible"]: {"open": r["open"], "overdue": r["overdue"]} for r in items},
        },
        "compliance": {
            t.value: {k: by_target.get(t.value, {}).get(k, 0) for k in ("met", "not_met", "unassessed")}
            for t in Target
        },
        "cobuilding": {
            "agreements": len(agreements),
            "items": sum(r["items"] for r in agreements),
            "completed": sum(r["completed"] for r in agreements),
            "by_agreement": [dict(r) for r in agreements],
        },
        "disputes": by_kind,
        "petitions": sum(v[CaseState.petitioned.value] for v in by_kind.values()),
        "wage_petitions": by_kind[DisputeKind.wages.value][CaseState.petitioned.value],
        "support": {k.value: {"total": _num(totals.get(k.value, 0)), "unit": UNITS[k]} for k in SupportKind},
        "support_by_village": [
            {"village": r["village"], "kind": r["kind"], "total": _num(r["total"]),
             "unit": UNITS[SupportKind(r["kind"])]}
            for r in villages
        ],
    }


def _num(value: Decimal | int) -> int | float:
    """Whole numbers print as integers (metres, yuan); anything else keeps its fraction."""
    return int(value) if value == int(value) else float(value)

"""Views of liaison: meeting items, compliance targets, co-building items, disputes, support; projection and queries."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg

from contracts import liaison
from contracts.envelope import Envelope
from contracts.liaison import (
    UNITS,
    CaseState,
    CoBuildingAgreementSigned,
    CoBuildingItemCompleted,
    ComplianceAssessed,
    ComplianceLetterSigned,
    DisputeEscalated,
    DisputeKind,
    DisputeReported,
    JointMeetingHeld,
    MediationResolved,
    MediationStarted,
    SupportKind,
    Target,
    VillageSupportRecorded,
)
from gongdi.bus.projection import Projection
from gongdi.store.migrations import Migration
from services.views.membership import scope_filter

# ---- tables ---------------------------------------------------------------------------------------


# Changes to these tables after release 0.1, numbered in the views' one sequence (see app.py).
MIGRATIONS: tuple[Migration, ...] = (
    # What a case is about, so that a site's open cases and the record page's case picker say it (before: id, kind
    # and state only). Rows from before have none until the rebuild that views version 3 brings.
    Migration(12, "dispute cases keep their description",
              lambda s: f"ALTER TABLE {s}.dispute ADD COLUMN IF NOT EXISTS description text;"),
)


def tables_sql(schema: str) -> str:
    """The liaison tables; the township and department scopes join them to the membership `site` table on read."""
    s = schema
    return f"""
    CREATE TABLE IF NOT EXISTS {s}.meeting (
        site_id text NOT NULL, meeting_id text NOT NULL, held_on date NOT NULL, parties jsonb NOT NULL,
        PRIMARY KEY (site_id, meeting_id));
    CREATE TABLE IF NOT EXISTS {s}.meeting_item (
        site_id text NOT NULL, item_id text NOT NULL, meeting_id text NOT NULL, kind text NOT NULL,
        description text NOT NULL, responsible text NOT NULL, raised_on date NOT NULL, due_on date NOT NULL,
        resolved_on date, resolved_in text, PRIMARY KEY (site_id, item_id));
    CREATE TABLE IF NOT EXISTS {s}.compliance_target (
        site_id text NOT NULL, letter_id text NOT NULL, target text NOT NULL, description text NOT NULL,
        signed_on date NOT NULL, assessed_on date, met boolean, note text,
        PRIMARY KEY (site_id, letter_id, target));
    CREATE TABLE IF NOT EXISTS {s}.cobuilding_item (
        site_id text NOT NULL, agreement_id text NOT NULL, village text NOT NULL, item_id text NOT NULL,
        title text NOT NULL, signed_on date NOT NULL, completed_on date,
        PRIMARY KEY (site_id, agreement_id, item_id));
    CREATE TABLE IF NOT EXISTS {s}.dispute (
        site_id text NOT NULL, case_id text NOT NULL, kind text NOT NULL, state text NOT NULL,
        reported_on date NOT NULL, amount_yuan numeric, mediator text, closed_on date, outcome text,
        amount_settled_yuan numeric, PRIMARY KEY (site_id, case_id));
    CREATE TABLE IF NOT EXISTS {s}.village_support (
        support_id text PRIMARY KEY, site_id text NOT NULL, village text NOT NULL, kind text NOT NULL,
        given_on date NOT NULL, quantity numeric NOT NULL);
    """


# ---- projection -----------------------------------------------------------------------------------


class LiaisonProjection(Projection):
    """Applies liaison events; each case, item and target is one row whose state the later events update."""

    # Every row it writes belongs to the event's site, and each site is one event stream.
    streams_commute = True
    contract = liaison
    ignored = frozenset()

    def __init__(self, schema: str):
        super().__init__()
        self.schema = schema

    async def joint_meeting_held(self, conn: asyncpg.Connection, env: Envelope, e: JointMeetingHeld) -> None:
        s = self.schema
        await conn.execute(
            f"INSERT INTO {s}.meeting (site_id, meeting_id, held_on, parties)"
            " VALUES ($1, $2, $3, to_jsonb($4::text[]))",
            e.site_id, e.meeting_id, e.held_on, [p.value for p in e.parties],
        )
        if e.items:
            await conn.executemany(
                f"INSERT INTO {s}.meeting_item (site_id, item_id, meeting_id, kind, description, responsible,"
                " raised_on, due_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [(e.site_id, i.item_id, e.meeting_id, i.kind.value, i.description, i.responsible.value, e.held_on,
                  i.due_on) for i in e.items],
            )
        if e.resolves:  # after the inserts: an item may be raised and settled in the same meeting
            await conn.execute(
                f"UPDATE {s}.meeting_item SET resolved_on = $3, resolved_in = $2"
                " WHERE site_id = $1 AND item_id = ANY($4::text[])",
                e.site_id, e.meeting_id, e.held_on, list(e.resolves),
            )

    async def compliance_letter_signed(self, conn: asyncpg.Connection, env: Envelope,
                                       e: ComplianceLetterSigned) -> None:
        await conn.executemany(
            f"INSERT INTO {self.schema}.compliance_target (site_id, letter_id, target, description, signed_on)"
            " VALUES ($1, $2, $3, $4, $5)",
            [(e.site_id, e.letter_id, t.value, d, e.signed_on) for t, d in e.targets.items()],
        )

    async def compliance_assessed(self, conn: asyncpg.Connection, env: Envelope, e: ComplianceAssessed) -> None:
        # The latest assessment is the current status of each target.
        await conn.executemany(
            f"UPDATE {self.schema}.compliance_target SET assessed_on = $4, met = $5, note = $6"
            " WHERE site_id = $1 AND letter_id = $2 AND target = $3 AND (assessed_on IS NULL OR assessed_on <= $4)",
            [(e.site_id, e.letter_id, r.target.value, e.assessed_on, r.met, r.note) for r in e.results],
        )

    async def co_building_agreement_signed(self, conn: asyncpg.Connection, env: Envelope,
                                          e: CoBuildingAgreementSigned) -> None:
        await conn.executemany(
            f"INSERT INTO {self.schema}.cobuilding_item (site_id, agreement_id, village, item_id, title, signed_on)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [(e.site_id, e.agreement_id, e.village, i.item_id, i.title, e.signed_on) for i in e.items],
        )

    async def co_building_item_completed(self, conn: asyncpg.Connection, env: Envelope,
                                        e: CoBuildingItemCompleted) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.cobuilding_item SET completed_on = $4"
            " WHERE site_id = $1 AND agreement_id = $2 AND item_id = $3",
            e.site_id, e.agreement_id, e.item_id, e.completed_on,
        )

    async def dispute_reported(self, conn: asyncpg.Connection, env: Envelope, e: DisputeReported) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.dispute (site_id, case_id, kind, state, reported_on, amount_yuan,"
            " description) VALUES ($1, $2, $3, 'reported', $4, $5, $6)",
            e.site_id, e.case_id, e.kind.value, e.reported_on, e.amount_yuan, e.description,
        )

    async def mediation_started(self, conn: asyncpg.Connection, env: Envelope, e: MediationStarted) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.dispute SET state = 'mediating', mediator = $3 WHERE site_id = $1 AND case_id = $2",
            e.site_id, e.case_id, e.mediator,
        )

    async def mediation_resolved(self, conn: asyncpg.Connection, env: Envelope, e: MediationResolved) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.dispute SET state = 'resolved', closed_on = $3, outcome = $4,"
            " amount_settled_yuan = $5 WHERE site_id = $1 AND case_id = $2",
            e.site_id, e.case_id, e.resolved_on, e.outcome, e.amount_settled_yuan,
        )

    async def dispute_escalated(self, conn: asyncpg.Connection, env: Envelope, e: DisputeEscalated) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.dispute SET state = 'petitioned', closed_on = $3, outcome = $4"
            " WHERE site_id = $1 AND case_id = $2",
            e.site_id, e.case_id, e.escalated_on, e.reason,
        )

    async def village_support_recorded(self, conn: asyncpg.Connection, env: Envelope,
                                       e: VillageSupportRecorded) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.village_support (support_id, site_id, village, kind, given_on, quantity)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            e.support_id, e.site_id, e.village, e.kind.value, e.given_on, e.quantity,
        )


# ---- queries --------------------------------------------------------------------------------------


COMPLIANCE_COUNTS = ("met", "not_met", "unassessed", "met_this_year", "not_met_this_year")


async def summary(conn: asyncpg.Connection, schema: str, scope: str, key: str | None, today: dt.date
                  ) -> dict[str, Any]:
    """The liaison figures of a scope (membership.scope_filter): city (key None), township, department (its name,
    as the sites store it) or site."""
    s, w = schema, scope_filter(schema, scope)
    items = await conn.fetch(
        f"SELECT responsible, count(*) FILTER (WHERE resolved_on IS NULL) AS open,"
        f" count(*) FILTER (WHERE resolved_on IS NULL AND due_on < $2) AS overdue,"
        f" count(*) FILTER (WHERE resolved_on IS NOT NULL) AS resolved"
        f" FROM {s}.meeting_item WHERE {w} GROUP BY responsible ORDER BY responsible",
        key, today,
    )
    # met/not_met: each target's latest assessment; the `_this_year` ones only those assessed in today's year, for
    # the yearly report (before, a 2021 report repeated the 2020 assessments as its own).
    targets = await conn.fetch(
        f"SELECT target, count(*) FILTER (WHERE met) AS met, count(*) FILTER (WHERE NOT met) AS not_met,"
        f" count(*) FILTER (WHERE met IS NULL) AS unassessed,"
        f" count(*) FILTER (WHERE met AND assessed_on >= date_trunc('year', $2::date)::date) AS met_this_year,"
        f" count(*) FILTER (WHERE NOT met AND assessed_on >= date_trunc('year', $2::date)::date)"
        f" AS not_met_this_year FROM {s}.compliance_target WHERE {w} GROUP BY target",
        key, today,
    )
    by_target = {r["target"]: dict(r) for r in targets}
    agreements = await conn.fetch(
        f"SELECT c.site_id, (SELECT t.name FROM {s}.site t WHERE t.site_id = c.site_id) AS site_name, agreement_id,"
        f" village, count(*) AS items, count(completed_on) AS completed"
        f" FROM {s}.cobuilding_item c WHERE {w} GROUP BY c.site_id, agreement_id, village ORDER BY 1, 3",
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
            t.value: {k: by_target.get(t.value, {}).get(k, 0) for k in COMPLIANCE_COUNTS}
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


async def site_detail(conn: asyncpg.Connection, schema: str, site_id: str, today: dt.date) -> dict[str, Any]:
    """What a site's next steps name, one by one: the meeting items still open, each co-building agreement with its
    items, and the dispute cases not closed (a later meeting resolves an item by its id, a completion names the
    agreement and item, a mediation the case)."""
    s = schema
    items = await conn.fetch(
        f"SELECT item_id, meeting_id, kind, description, responsible, raised_on, due_on FROM {s}.meeting_item"
        " WHERE site_id = $1 AND resolved_on IS NULL ORDER BY due_on, item_id", site_id)
    listed = await conn.fetch(
        f"SELECT agreement_id, village, signed_on, item_id, title, completed_on FROM {s}.cobuilding_item"
        " WHERE site_id = $1 ORDER BY signed_on, agreement_id, item_id", site_id)
    agreements: dict[str, dict[str, Any]] = {}
    for r in listed:
        a = agreements.setdefault(r["agreement_id"], {"agreement_id": r["agreement_id"], "village": r["village"],
                                                      "signed_on": r["signed_on"].isoformat(), "items": []})
        a["items"].append({"item_id": r["item_id"], "title": r["title"],
                           "completed_on": r["completed_on"].isoformat() if r["completed_on"] else None})
    cases = await conn.fetch(
        f"SELECT case_id, kind, state, reported_on, amount_yuan, mediator, description FROM {s}.dispute"
        " WHERE site_id = $1 AND closed_on IS NULL ORDER BY reported_on, case_id", site_id)
    return {
        "open_items": [{**dict(r), "raised_on": r["raised_on"].isoformat(), "due_on": r["due_on"].isoformat(),
                        "overdue": r["due_on"] < today} for r in items],
        "agreements": list(agreements.values()),
        "open_cases": [{**dict(r), "reported_on": r["reported_on"].isoformat(),
                        "amount_yuan": None if r["amount_yuan"] is None else format(r["amount_yuan"], "f")}
                       for r in cases],
    }


def _num(value: Decimal | int) -> int | float:
    """Whole numbers print as integers (metres, yuan); anything else keeps its fraction. A total beyond 64 bits
    (only events from before the limits can make one) prints as a float: the JSON encoder refuses such an int,
    and one old event must not make every city, township and site query fail."""
    if value == int(value) and abs(value) < 2**63:
        return int(value)
    return float(value)

"""Read models of liaison work: meeting items, compliance targets, co-building items, disputes, village support."""
from __future__ import annotations

import asyncpg

from contracts.envelope import Envelope
from contracts.liaison import (
    CoBuildingAgreementSigned,
    CoBuildingItemCompleted,
    ComplianceAssessed,
    ComplianceLetterSigned,
    DisputeEscalated,
    DisputeReported,
    JointMeetingHeld,
    MediationResolved,
    MediationStarted,
    VillageSupportRecorded,
    parse_event,
)
from services.views.projection import Projection


def liaison_tables_sql(schema: str) -> str:
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


class LiaisonProjection(Projection):
    def __init__(self, schema: str):
        self.schema = schema
        self.parse = parse_event
        self.methods = {
            "JointMeetingHeld": self.joint_meeting_held,
            "ComplianceLetterSigned": self.compliance_letter_signed,
            "ComplianceAssessed": self.compliance_assessed,
            "CoBuildingAgreementSigned": self.cobuilding_agreement_signed,
            "CoBuildingItemCompleted": self.cobuilding_item_completed,
            "DisputeReported": self.dispute_reported,
            "MediationStarted": self.mediation_started,
            "MediationResolved": self.mediation_resolved,
            "DisputeEscalated": self.dispute_escalated,
            "VillageSupportRecorded": self.village_support_recorded,
        }


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

    async def cobuilding_agreement_signed(self, conn: asyncpg.Connection, env: Envelope,
                                          e: CoBuildingAgreementSigned) -> None:
        await conn.executemany(
            f"INSERT INTO {self.schema}.cobuilding_item (site_id, agreement_id, village, item_id, title, signed_on)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [(e.site_id, e.agreement_id, e.village, i.item_id, i.title, e.signed_on) for i in e.items],
        )

    async def cobuilding_item_completed(self, conn: asyncpg.Connection, env: Envelope,
                                        e: CoBuildingItemCompleted) -> None:
        await conn.execute(
            f"UPDATE {self.schema}.cobuilding_item SET completed_on = $4"
            " WHERE site_id = $1 AND agreement_id = $2 AND item_id = $3",
            e.site_id, e.agreement_id, e.item_id, e.completed_on,
        )

    async def dispute_reported(self, conn: asyncpg.Connection, env: Envelope, e: DisputeReported) -> None:
        await conn.execute(
            f"INSERT INTO {self.schema}.dispute (site_id, case_id, kind, state, reported_on, amount_yuan)"
            " VALUES ($1, $2, $3, 'reported', $4, $5)",
            e.site_id, e.case_id, e.kind.value, e.reported_on, e.amount_yuan,
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

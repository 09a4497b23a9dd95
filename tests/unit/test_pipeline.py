"""The command pipeline against the in-memory store, no processes: replies, idempotency, refusals, retries."""
from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from typing import Any

import orjson
import pytest

from contracts.identity import Identity, Role
from contracts.liaison import COMMANDS, EVENTS, Party
from contracts.rules import LIMITS
from contracts.subjects import command_subject
from contracts.timeline import city_today
from gongdi.service.pipeline import CommandPipeline
from gongdi.service.process import Request
from gongdi.store.base import WIDEST_TIME, Meta, StreamHead, jsonb_text
from gongdi.store.memory import MemoryEventStore
from gongdi.store.sitestreams import SiteFolds, SiteStream, SiteStreams, stream_of
from services.liaison.domain import Given, LiaisonSite, decide, evolve

KNOWN = {"east": "bailin", "west": "diantou"}


def dispute(case_id: str = "w-1", site_id: str = "east", **extra: Any) -> bytes:
    body = {"command_id": str(uuid.uuid4()), "site_id": site_id, "case_id": case_id, "kind": "wages",
            "reported_on": "2020-06-01", "parties": ["劳务班组"], "amount_yuan": "8000", "description": "欠薪"}
    return orjson.dumps({**body, **extra})


class Directory:
    """The rule context liaison gets from membership events, here a fixed list of sites."""

    def __init__(self) -> None:
        self.loads = 0

    async def context(self, _tx: Any, site_id: str, site: LiaisonSite | None) -> tuple[Given, str | None]:
        self.loads += 1
        township = KNOWN.get(site_id)
        return Given(site=site, known=township is not None), township


def stream(store: MemoryEventStore) -> SiteStream[LiaisonSite]:
    return SiteStream(store, SiteFolds(LiaisonSite, evolve, EVENTS))


def build(store: MemoryEventStore, directory: Directory | None = None, attempts: int = 20) -> CommandPipeline:
    repo = SiteStreams(stream(store), (directory or Directory()).context)
    return CommandPipeline(COMMANDS, repo, decide, attempts=attempts)


CITY = Identity(Role.CITY)


async def handle(pipeline: CommandPipeline, name: str, raw: bytes, sender: Identity | None = CITY,
                 scope: str | None = None) -> dict[str, Any]:
    """As the service gets it: the sender the server asserted, on the sender's own command subject."""
    scope = scope or (sender.scope if sender and sender.scope else "city")
    request = Request(raw, command_subject(scope, "liaison", name), sender)
    return orjson.loads(await pipeline.handle(name, request))


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore()


async def test_an_accepted_command_is_stored_with_its_snapshot_and_answered(store: MemoryEventStore):
    reply = await handle(build(store), "ReportDispute", dispute())
    assert reply["ok"] and [e["type"] for e in reply["events"]] == ["DisputeReported"]
    rows = await store.load(stream_of("east"))
    assert [(r.type, r.township, r.site_id) for r in rows] == [("DisputeReported", "bailin", "east")]
    assert reply["events"][0]["position"] == rows[0].position
    async with store.transaction() as tx:
        stored = await store.snapshot(tx, "east")
    assert stored.head == StreamHead(1, rows[0].hash)
    assert "w-1" in LiaisonSite.model_validate_json(stored.state).cases


async def test_a_retried_command_id_gets_the_first_reply_and_writes_nothing(store: MemoryEventStore):
    pipeline, raw = build(store), dispute()
    first = await handle(pipeline, "ReportDispute", raw)
    again = await handle(pipeline, "ReportDispute", raw)
    assert again["duplicate"] and again["events"] == first["events"]
    assert len(store.rows) == 1


async def test_a_date_must_be_written_as_a_date_not_a_timestamp(store: MemoryEventStore):
    # 1590969600 is 2020-06-01 at midnight UTC: pydantic's lax mode would take it; the pipeline parses strictly.
    reply = await handle(build(store), "ReportDispute", dispute(reported_on=1590969600))
    assert reply["error"]["code"] == "VALIDATION_FAILED" and reply["error"]["field"] == "reported_on"
    assert store.rows == []


async def test_invalid_input_names_the_field_and_writes_nothing(store: MemoryEventStore):
    reply = await handle(build(store), "ReportDispute", dispute(kind="canteen"))
    assert reply["error"]["code"] == "VALIDATION_FAILED" and reply["error"]["field"] == "kind"
    broken = await handle(build(store), "ReportDispute", b"{not json")
    assert broken["error"]["code"] == "VALIDATION_FAILED"
    assert store.rows == [] and store.commands == {}


async def test_a_broken_rule_is_refused_with_its_code_and_writes_nothing(store: MemoryEventStore):
    pipeline = build(store)
    unknown = await handle(pipeline, "ReportDispute", dispute(site_id="nowhere"))
    assert unknown["error"]["code"] == "SITE_NOT_FOUND" and unknown["error"]["field"] == "site_id"
    assert (await handle(pipeline, "ReportDispute", dispute()))["ok"]
    twice = await handle(pipeline, "ReportDispute", dispute())
    assert twice["error"]["code"] == "ALREADY_EXISTS"
    resolve = {"command_id": str(uuid.uuid4()), "site_id": "east", "case_id": "w-1", "resolved_on": "2020-06-03",
               "outcome": "结清", "amount_settled_yuan": "8000"}
    skipped = await handle(pipeline, "ResolveMediation", orjson.dumps(resolve))
    assert skipped["error"]["code"] == "ILLEGAL_TRANSITION"
    assert len(store.rows) == 1 and len(store.commands) == 1


class RacingDirectory(Directory):
    """Another writer appends to the same stream right after this command loaded it, `races` times."""

    def __init__(self, store: MemoryEventStore, races: int):
        super().__init__()
        self.store = store
        self.races = races

    async def context(self, tx: Any, site_id: str, site: LiaisonSite | None) -> tuple[Given, str | None]:
        if self.races:
            self.races -= 1
            rival = stream(self.store)
            async with self.store.transaction() as other:
                state, head, stored_at = await rival.load(other, site_id)
                events = decide(COMMANDS["ReportDispute"].model_validate_json(dispute(f"rival-{self.races}")),
                                Given(site=state, known=True))
                await rival.append(other, site_id, "bailin", state, head, stored_at, events, Meta("rival"))
        return await super().context(tx, site_id, site)


async def test_a_lost_race_is_decided_again_on_the_new_state(store: MemoryEventStore):
    directory = RacingDirectory(store, races=2)
    reply = await handle(build(store, directory), "ReportDispute", dispute("mine"))
    assert reply["ok"] and reply["events"][0]["version"] == 3
    assert directory.loads == 3
    assert [r.version for r in await store.load(stream_of("east"))] == [1, 2, 3]
    assert await store.verify() == []


async def test_too_many_lost_races_get_a_typed_refusal_and_write_nothing_of_this_command(store: MemoryEventStore):
    reply = await handle(build(store, RacingDirectory(store, races=10), attempts=3), "ReportDispute", dispute("m"))
    assert reply["error"]["code"] == "CONCURRENCY_CONFLICT"
    assert {r.actor for r in store.rows} == {"rival"}


async def test_the_same_command_racing_itself_is_recorded_once(store: MemoryEventStore):
    raw = dispute()
    replies = await asyncio.gather(*(handle(build(store), "ReportDispute", raw) for _ in range(5)))
    assert all(r["ok"] for r in replies)
    assert sum(1 for r in replies if not r["duplicate"]) == 1
    assert len(store.rows) == 1 and len(store.commands) == 1


BAILIN = Identity(Role.TOWNSHIP, township="bailin")


async def test_the_actor_recorded_is_the_identity_the_server_asserted(store: MemoryEventStore):
    assert (await handle(build(store), "ReportDispute", dispute(), BAILIN))["ok"]
    assert [r.actor for r in store.rows] == ["township.bailin"]


async def test_a_payload_cannot_name_its_own_actor(store: MemoryEventStore):
    reply = await handle(build(store), "ReportDispute", dispute(actor="policy:新来党员必谈"), BAILIN)
    assert reply["error"]["code"] == "VALIDATION_FAILED" and reply["error"]["field"] == "actor"
    assert store.rows == []


async def test_a_township_writing_another_townships_site_is_forbidden_and_writes_nothing(store: MemoryEventStore):
    reply = await handle(build(store), "ReportDispute", dispute(site_id="west"), BAILIN)
    assert reply["error"]["code"] == "FORBIDDEN" and reply["error"]["field"] == "OTHER_TOWNSHIP"
    assert store.rows == [] and store.commands == {}


async def test_a_command_on_another_townships_subject_is_forbidden(store: MemoryEventStore):
    reply = await handle(build(store), "ReportDispute", dispute(), BAILIN, scope="diantou")
    assert reply["error"]["field"] == "SUBJECT_SCOPE" and store.rows == []


@pytest.mark.parametrize("reader", [Identity(Role.AUDITOR), Identity(Role.DASHBOARD),
                                    Identity(Role.DEPARTMENT, department="shuili")])
async def test_read_only_roles_cannot_write(store: MemoryEventStore, reader: Identity):
    reply = await handle(build(store), "ReportDispute", dispute(), reader, scope="bailin")
    assert reply["error"]["code"] == "FORBIDDEN" and reply["error"]["field"] == "READ_ONLY_ROLE"
    assert store.rows == []


async def test_a_request_without_an_asserted_identity_is_forbidden(store: MemoryEventStore):
    reply = await handle(build(store), "ReportDispute", dispute(), sender=None)
    assert reply["error"]["field"] == "NO_IDENTITY" and store.rows == []


async def test_a_secretary_writes_its_own_site_only(store: MemoryEventStore):
    secretary = Identity(Role.SITE, township="bailin", site="east")
    assert (await handle(build(store), "ReportDispute", dispute(), secretary))["ok"]
    other = Identity(Role.SITE, township="bailin", site="elsewhere")
    reply = await handle(build(store), "ReportDispute", dispute("w-2"), other)
    assert reply["error"]["field"] == "OTHER_SITE"
    assert [r.actor for r in store.rows] == ["site.bailin.east"]


async def test_a_township_gets_the_rules_refusal_for_a_site_nobody_registered(store: MemoryEventStore):
    reply = await handle(build(store), "ReportDispute", dispute(site_id="nowhere"), BAILIN)
    assert reply["error"]["code"] == "SITE_NOT_FOUND" and store.rows == []


async def test_a_command_id_reused_for_another_command_is_refused_not_answered_twice(store: MemoryEventStore):
    pipeline, raw = build(store), dispute()
    assert (await handle(pipeline, "ReportDispute", raw))["ok"]
    other = orjson.dumps({**orjson.loads(raw), "case_id": "w-2"})
    reused = await handle(pipeline, "ReportDispute", other)
    assert reused["error"]["code"] == "COMMAND_ID_REUSED" and reused["error"]["field"] == "command_id"
    by_someone_else = await handle(pipeline, "ReportDispute", raw, BAILIN)
    assert by_someone_else["error"]["code"] == "COMMAND_ID_REUSED"
    assert (await handle(pipeline, "ReportDispute", raw))["duplicate"]
    assert len(store.rows) == 1


# ---- the size of an event ---------------------------------------------------------------------


def padded(description: int) -> Any:
    """The liaison rules, except that the dispute's description is `description` characters long: what a bug or a
    laxer contract could produce (the contracts allow 100)."""

    def decide_padded(command: Any, given: Given) -> list[Any]:
        return [e.model_copy(update={"description": "x" * description}) for e in decide(command, given)]

    return decide_padded


def build_padded(store: MemoryEventStore, description: int) -> CommandPipeline:
    repo = SiteStreams(stream(store), Directory().context)
    return CommandPipeline(COMMANDS, repo, padded(description))


def measured(reply: dict[str, Any]) -> int:
    """The size the refusal reports, as `<size> > <limit> bytes`."""
    size, limit = re.search(r"(\d+) > (\d+) bytes", reply["error"]["message"]).groups()
    assert int(limit) == LIMITS.max_event_bytes
    return int(size)


async def test_a_command_whose_event_is_too_large_is_refused_and_writes_nothing(store: MemoryEventStore):
    raw = dispute()
    reply = await handle(build_padded(store, 300_000), "ReportDispute", raw)
    assert reply["error"]["code"] == "EVENT_TOO_LARGE" and reply["error"]["field"] is None
    assert measured(reply) > 300_000
    assert store.rows == [] and store.commands == {} and store.snapshots == {}
    again = await handle(build_padded(store, 300_000), "ReportDispute", raw)  # nothing was recorded to repeat
    assert again["error"]["code"] == "EVENT_TOO_LARGE" and not again.get("duplicate")


async def test_an_event_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not(store: MemoryEventStore):
    over = measured(await handle(build_padded(store, LIMITS.max_event_bytes), "ReportDispute", dispute("w-1")))
    fits = LIMITS.max_event_bytes - (over - LIMITS.max_event_bytes)  # one character of padding is one byte
    assert (await handle(build_padded(store, fits), "ReportDispute", dispute("w-1")))["ok"]
    one_more = await handle(build_padded(store, fits + 1), "ReportDispute", dispute("w-2"))
    assert measured(one_more) == LIMITS.max_event_bytes + 1
    [row] = store.rows
    # What the relay publishes for it (the payload as PostgreSQL prints jsonb) is what was measured, less what the
    # measure took at its widest because the commit had not chosen it yet.
    published = dataclasses.replace(row, payload=jsonb_text(orjson.loads(row.payload))).envelope_json("liaison")
    widest = {"position": 2**63 - 1, "tx_id": 2**63 - 1, "version": 2**31 - 1, "prev_hash": "f" * 64,
              "recorded_at": WIDEST_TIME, "occurred_at": WIDEST_TIME}
    unknown = sum(len(orjson.dumps(value)) - len(orjson.dumps(getattr(row, name))) for name, value in widest.items())
    assert len(published) + unknown == LIMITS.max_event_bytes


async def test_a_joint_meeting_at_every_limit_is_well_under_the_event_size_limit(store: MemoryEventStore):
    today = city_today()
    slug = [f"{i:03d}" + "a" * 60 for i in range(LIMITS.max_items)]  # 63 characters, the longest id
    meeting = {"command_id": str(uuid.uuid4()), "site_id": "east", "meeting_id": "m" * 63,
               "held_on": today.isoformat(), "parties": [p.value for p in Party], "resolves": slug,
               "items": [{"item_id": s, "kind": "technical_bottleneck", "description": "𠀀" * 100,
                          "responsible": "supervision", "due_on": today.isoformat()} for s in slug]}
    reply = await handle(build(store), "HoldJointMeeting", orjson.dumps(meeting))
    assert reply["ok"], reply
    [row] = store.rows
    published = dataclasses.replace(row, payload=jsonb_text(orjson.loads(row.payload))).envelope_json("liaison")
    assert len(published) < LIMITS.max_event_bytes // 3

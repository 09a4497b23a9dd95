"""Event schema evolution: upcaster chains, reading stored v1 talks as v2, and stored rows left untouched."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

import orjson
import pytest

from contracts import activities, liaison, membership
from contracts.activities import RecordTalk, TalkHeld, TalkMethod, TalkObligationCreated, TalkReason
from contracts.base import Event, parse
from contracts.envelope import STORED, Envelope, EnvelopeRow, chain_hash
from contracts.upcasting import UPCASTERS, SchemaVersionError, Upcasters
from gongdi.store.base import Meta, Pending, StreamHead, prepare
from gongdi.store.memory import MemoryEventStore
from services.activities import domain
from services.views.activities import ActivitiesProjection
from tests.releases import Release01

DAY = dt.date(2020, 7, 1)
OBLIGATION = uuid.UUID(int=1)

# ---- the mechanism, on a made-up event type with three versions ---------------------------------------------


class Measured(Event):
    """v1 {metres}; v2 renamed it {length_m}; v3 added {unit}."""

    schema_version: ClassVar[int] = 3
    length_m: int
    unit: str


def registry(*skip: int) -> Upcasters:
    r = Upcasters()
    if 1 not in skip:
        @r.register("Measured", 1)
        def _rename(p: dict) -> dict:
            p["length_m"] = p.pop("metres")  # changes its argument in place: the caller's dict must not see it
            return p
    if 2 not in skip:
        r.register("Measured", 2)(lambda p: {**p, "unit": "m"})
    return r


EVENTS: dict[str, type[Event]] = {"Measured": Measured}


@pytest.mark.parametrize("version, payload", [(1, {"metres": 5}), (2, {"length_m": 5}),
                                              (3, {"length_m": 5, "unit": "m"})])
def test_every_older_version_reads_in_the_current_shape(version: int, payload: dict):
    stored = orjson.loads(orjson.dumps(payload))
    assert parse(EVENTS, "Measured", version, stored, registry()) == Measured(length_m=5, unit="m")
    assert stored == payload  # the stored payload is read, never changed


def test_a_missing_step_is_named():
    with pytest.raises(SchemaVersionError, match="no upcaster for Measured v2 → v3"):
        parse(EVENTS, "Measured", 1, {"metres": 5}, registry(2))
    with pytest.raises(SchemaVersionError, match="no upcaster for Measured v1 → v2"):
        parse(EVENTS, "Measured", 1, {"metres": 5}, registry(1))
    # A v2 payload needs only the second step.
    assert parse(EVENTS, "Measured", 2, {"length_m": 5}, registry(1)).unit == "m"
    assert registry(2).missing(EVENTS) == ["Measured v2 → v3"]
    assert registry().missing(EVENTS) == []


def test_a_version_newer_than_the_code_is_a_clear_error():
    with pytest.raises(SchemaVersionError, match=r"Measured v4 is newer than this code, which reads up to v3"):
        parse(EVENTS, "Measured", 4, {"length_m": 5, "unit": "m", "precision": 1}, registry())
    with pytest.raises(SchemaVersionError, match="versions start at 1"):
        parse(EVENTS, "Measured", 0, {"metres": 5}, registry())
    # Without an upcaster, a stored version other than the class's is refused, as before this mechanism.
    with pytest.raises(SchemaVersionError):
        parse(membership.EVENTS, "SiteRegistered", 2, {}, Upcasters())


def test_a_step_is_registered_once_and_from_version_1():
    r = registry()
    with pytest.raises(ValueError, match="has an upcaster already"):
        r.register("Measured", 1)(lambda p: p)
    with pytest.raises(ValueError, match="start at 1"):
        r.register("Measured", 0)
    r.register("Other", 1)(lambda p: [p])  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="not a dict"):
        r.upcast("Other", 1, 2, {})


def test_every_contract_has_the_whole_chain_of_every_event_type():
    catalogues = [membership.EVENTS, activities.EVENTS, liaison.EVENTS]
    names = [name for c in catalogues for name in c]
    assert len(names) == len(set(names)), "the registry is keyed by event type: names must not repeat"
    assert [UPCASTERS.missing(c) for c in catalogues] == [[], [], []]


# ---- the real change: TalkHeld v2 says how the talk was held (谈话方式) ---------------------------------------


OLD_TALK = Release01.TalkHeld(site_id="a", obligation_id=OBLIGATION, member_id="m1", talked_by="书记",
                              talked_on=DAY, note="了解家庭情况")


def test_talk_held_is_version_2_and_a_stored_v1_reads_as_held_in_person():
    assert (OLD_TALK.type_name(), OLD_TALK.schema_version) == ("TalkHeld", 1)
    assert TalkHeld.schema_version == 2
    stored = OLD_TALK.model_dump(mode="json")
    assert "method" not in stored
    event = activities.parse_event("TalkHeld", 1, stored)
    assert type(event) is TalkHeld and event.method is TalkMethod.in_person
    assert event.model_dump(exclude={"method"}) == OLD_TALK.model_dump()
    assert "method" not in stored
    phoned = activities.parse_event("TalkHeld", 2, {**stored, "method": "phone"})
    assert phoned.method is TalkMethod.phone
    with pytest.raises(SchemaVersionError, match="TalkHeld v3 is newer"):
        activities.parse_event("TalkHeld", 3, {**stored, "method": "phone"})


def test_the_command_takes_the_method_and_writes_v2():
    obligation = TalkObligationCreated(site_id="a", obligation_id=OBLIGATION, member_id="m1",
                                       reason=TalkReason.new_arrival, created_on=DAY, due_on=DAY)
    given = domain.Given(site=domain.evolve(None, obligation), known=True)
    talk = {"command_id": str(uuid.uuid4()), "site_id": "a", "obligation_id": str(OBLIGATION), "talked_by": "书记",
            "talked_on": DAY.isoformat()}
    assert RecordTalk.model_validate(talk).method is TalkMethod.in_person  # optional: 面谈 unless said
    [held] = domain.decide(RecordTalk.model_validate({**talk, "method": "phone"}), given)
    assert isinstance(held, TalkHeld) and held.method is TalkMethod.phone
    [row] = prepare([Pending(held, "site-a", "bailin", "a")], {}, Meta("test")).rows
    assert (row["type"], row["schema_version"], row["payload"]["method"]) == ("TalkHeld", 2, "phone")
    # The writer folds an upcast v1 event as it folds a v2 one: the obligation is closed either way.
    for event in (held, activities.parse_event("TalkHeld", 1, OLD_TALK.model_dump(mode="json"))):
        assert domain.evolve(given.site, event).obligations[str(OBLIGATION)].closed_on == DAY


async def test_a_stored_v1_event_keeps_its_row_and_hash():
    store = MemoryEventStore()
    async with store.transaction() as tx:
        await store.append(tx, [Pending(OLD_TALK, "site-a", "bailin", "a")], {"site-a": StreamHead()}, Meta("old"))
    [row] = await store.load("site-a")
    before = (row.schema_version, row.payload, row.hash)
    event = activities.parse_event(row.type, row.schema_version, orjson.loads(row.payload))
    assert isinstance(event, TalkHeld) and event.method is TalkMethod.in_person
    [again] = await store.load("site-a")
    assert (again.schema_version, again.payload, again.hash) == before == (1, before[1], chain_hash(row.hash_values()))
    assert "method" not in orjson.loads(again.payload)
    assert await store.verify() == []


class Recording:
    """A connection that remembers what the projection asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self.calls.append((sql, *args))


def envelope(schema_version: int, payload: dict) -> Envelope:
    now = dt.datetime(2020, 7, 1, tzinfo=dt.UTC)
    return Envelope(event_id=uuid.uuid4(), type="TalkHeld", schema_version=schema_version, stream_id="site-a",
                    version=2, position=2, tx_id=2, service="activities", township="bailin", site_id="a",
                    actor="a", command_id=None, correlation_id=None, causation_id=None, occurred_at=now,
                    recorded_at=now, payload=payload, prev_hash=None, hash="0" * 64)


async def test_the_views_projection_gets_both_versions_in_the_new_shape():
    conn = Recording()
    projection = ActivitiesProjection("views")
    old = envelope(1, OLD_TALK.model_dump(mode="json"))
    await projection.apply(conn, old)  # type: ignore[arg-type]
    await projection.apply(conn, envelope(2, {**OLD_TALK.model_dump(mode="json"), "method": "phone"}))  # type: ignore[arg-type]
    assert [c[-1] for c in conn.calls] == ["in_person", "phone"]
    assert "method" not in old.payload and old.schema_version == 1
    with pytest.raises(SchemaVersionError):
        await projection.apply(conn, envelope(3, {}))  # type: ignore[arg-type]


@pytest.mark.parametrize("version, payload", [(1, {"metres": 5}), (2, {"length_m": 5}),
                                              (3, {"length_m": 5, "unit": "m"})])
def test_a_payload_read_as_its_stored_text_reads_alike(version: int, payload: dict):
    """A rebuild hands the contract the stored JSON text (`EnvelopeRow`): parsed at once when current, upcast
    from an older version as a decoded payload would be."""
    assert parse(EVENTS, "Measured", version, orjson.dumps(payload).decode(), registry()) == Measured(length_m=5,
                                                                                                     unit="m")


def test_a_version_newer_than_the_code_is_refused_from_text_too():
    with pytest.raises(SchemaVersionError, match="newer than this code"):
        parse(EVENTS, "Measured", 4, '{"length_m": 5, "unit": "m"}', registry())


async def test_the_views_projection_gets_a_rebuild_s_rows_in_the_new_shape_too():
    conn = Recording()
    projection = ActivitiesProjection("views")
    for version, payload in [(1, OLD_TALK.model_dump(mode="json")),
                             (2, {**OLD_TALK.model_dump(mode="json"), "method": "phone"})]:
        values = envelope(version, payload).model_dump()
        values["payload"] = orjson.dumps(payload).decode()
        await projection.apply(conn, EnvelopeRow(*(values[f.name] for f in STORED), "activities"))  # type: ignore[arg-type]
    assert [c[-1] for c in conn.calls] == ["in_person", "phone"]

"""A site stream whose stored state trails its head (gongdi.store.sitestreams): every load is the fold of every
event, whoever wrote them, and a state kept in a process is built on only where the log continues it."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from contracts.base import parse
from contracts.liaison import EVENTS, DisputeKind, ReportDispute
from gongdi.store.base import Meta, StoredState, StreamHead
from gongdi.store.memory import MemoryEventStore
from gongdi.store.sitestreams import REFOLD_PER_ENTRIES, SiteFolds, SiteStream, entries, refold_due, stream_of
from services.liaison.domain import Given, LiaisonSite, decide, evolve

SITE = "east"


def report(case_id: str) -> ReportDispute:
    return ReportDispute(command_id=uuid.uuid4(), site_id=SITE, case_id=case_id, kind=DisputeKind.wages,
                         reported_on=dt.date(2020, 6, 1), parties=["劳务班组"], amount_yuan="8000", description="欠薪")


def stream(store: MemoryEventStore) -> SiteStream[LiaisonSite]:
    """One process's view of the site streams: its own kept states."""
    return SiteStream(store, SiteFolds(LiaisonSite, evolve, EVENTS))


async def record(s: SiteStream[LiaisonSite], case_id: str) -> None:
    async with s.store.transaction() as tx:
        state, head, stored_at = await s.load(tx, SITE)
        events = decide(report(case_id), Given(site=state, known=True))
        await s.append(tx, SITE, "bailin", state, head, stored_at, events, Meta("test"))


async def folded_from_the_log(store: MemoryEventStore) -> LiaisonSite:
    state = None
    for r in await store.load(stream_of(SITE)):
        state = evolve(state, parse(EVENTS, r.type, r.schema_version, r.payload))
    assert state is not None
    return state


async def stored(store: MemoryEventStore) -> StoredState:
    async with store.transaction() as tx:
        return await store.snapshot(tx, SITE)


async def loaded(s: SiteStream[LiaisonSite]) -> LiaisonSite | None:
    async with s.store.transaction() as tx:
        return (await s.load(tx, SITE))[0]


@pytest.fixture
async def store() -> MemoryEventStore:
    """A site of 200 cases: its state is stored again every fifth event, and trails now."""
    store = MemoryEventStore()
    writer = stream(store)
    n = 0
    while n < 200 or (await stored(store)).state_version == n:
        await record(writer, f"w-{n}")
        n += 1
    return store


def test_a_small_state_is_stored_with_every_event_and_a_big_one_now_and_then():
    assert refold_due(10, 5, 4) and refold_due(10_000, 1, 0)  # the first state is always stored
    assert not refold_due(10_000, 150, 1) and refold_due(10_000, 202, 1)
    assert REFOLD_PER_ENTRIES == 50


def test_a_states_entries_are_its_collections_entries():
    site = LiaisonSite(site_id=SITE, meetings=["a", "b"], letters={"l": dt.date(2020, 1, 1)})
    assert entries(site) == 3


async def test_the_stored_state_trails_and_a_fresh_process_folds_the_rest(store: MemoryEventStore):
    now = await stored(store)
    assert now.head.version - 200 // REFOLD_PER_ENTRIES <= now.state_version < now.head.version
    assert len(LiaisonSite.model_validate_json(now.state).cases) == now.state_version
    assert await loaded(stream(store)) == await folded_from_the_log(store)


async def test_two_processes_writing_one_site_in_turn_each_see_the_others_events(store: MemoryEventStore):
    one, other = stream(store), stream(store)
    for i in range(12):
        await record(one if i % 2 else other, f"x-{i}")
    assert await loaded(one) == await loaded(other) == await folded_from_the_log(store)
    assert {f"x-{i}" for i in range(12)} <= set((await loaded(one)).cases)


async def test_a_kept_state_the_log_does_not_continue_is_not_built_on(store: MemoryEventStore):
    s = stream(store)
    truth = await loaded(s)
    head = s.folds.latest[SITE].head
    wrong = truth.model_copy(update={"cases": {}})
    s.folds.keep(SITE, StreamHead(head.version, "0" * 64), wrong)  # as if its transaction had rolled back
    assert await loaded(s) == truth
    behind = (await stored(store)).state_version  # not older than the stored state: the kept one is folded on
    s.folds.keep(SITE, StreamHead(behind, "0" * 64), wrong)
    assert await loaded(s) == truth
    s.folds.keep(SITE, StreamHead(head.version + 1, "0" * 64), wrong)  # ahead of the log: a restored database
    assert await loaded(s) == truth

"""A big site's stored state trails its head (membership's repository): every load still sees every event, in a
process that kept the state, in one that did not, and in two processes writing the same site in turn."""
from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from contracts.base import parse
from contracts.membership import COMMANDS, EVENTS, SERVICE
from contracts.rules import DEFAULT_RULES
from gongdi.demo import samples as f
from gongdi.service.pipeline import CommandPipeline
from gongdi.service.settings import Settings
from gongdi.store.base import StreamHead
from services.membership.domain import ArrivalAlreadyRecordedError, SiteState, decide, due_timers, evolve
from services.membership.repository import MembershipRepository
from services.membership.timers import due_commands

SITE = "big"
ACTOR = "city"


def pipeline(pool: asyncpg.Pool) -> tuple[CommandPipeline, MembershipRepository]:
    """A membership process as far as its store goes: its own repository (and so its own kept states)."""
    repository = MembershipRepository(pool, Settings().city())
    return CommandPipeline(COMMANDS, repository, lambda c, g: decide(c, g, DEFAULT_RULES)), repository


async def folded_from_the_log(pool: asyncpg.Pool) -> SiteState:
    state = None
    for r in await pool.fetch(f"SELECT event_type, schema_version, payload::text AS payload FROM {SERVICE}.events"
                              " WHERE stream_id = $1 ORDER BY version", f"site-{SITE}"):
        state = evolve(state, parse(EVENTS, r["event_type"], r["schema_version"], r["payload"]))
    assert state is not None
    return state


async def stored(pool: asyncpg.Pool) -> tuple[int, int, SiteState]:
    r = await pool.fetchrow(f"SELECT version, state_version, state::text AS state FROM {SERVICE}.site_state"
                            " WHERE site_id = $1", SITE)
    return r["version"], r["state_version"], SiteState.model_validate_json(r["state"])


async def loaded(pool: asyncpg.Pool, repository: MembershipRepository) -> SiteState:
    async with repository.attempt() as attempt:
        return (await attempt.load(f.depart(SITE, "anyone"))).given.site


@pytest.fixture
async def big_site(pool: asyncpg.Pool) -> CommandPipeline:
    """A site of 120 members or a few more (its state is then written again every fifth event: 240 entries with
    the arrival dates), its stored state trailing its head."""
    writer, _ = pipeline(pool)
    await writer.record(f.register(SITE), ACTOR)
    for i in range(120):
        await writer.record(f.arrive(SITE, f"m{i}"), ACTOR)
    for i in range(120, 126):
        if (await stored(pool))[1] < (await stored(pool))[0]:
            break
        await writer.record(f.arrive(SITE, f"m{i}"), ACTOR)
    return writer


async def test_the_stored_state_trails_and_a_fresh_process_folds_the_rest(pool: asyncpg.Pool,
                                                                         big_site: CommandPipeline):
    version, state_version, state = await stored(pool)
    assert version - 5 < state_version < version  # trailing, by at most 240 // 50 events
    assert len(state.members) == state_version - 1

    _, fresh = pipeline(pool)
    assert await loaded(pool, fresh) == await folded_from_the_log(pool)
    assert len((await loaded(pool, fresh)).members) == version - 1


async def test_two_processes_writing_one_site_each_see_what_the_other_wrote(pool: asyncpg.Pool,
                                                                          big_site: CommandPipeline):
    other, _ = pipeline(pool)
    for i in range(10):  # in turn: each process's kept state is behind by the other's event every time
        await (big_site if i % 2 else other).record(f.arrive(SITE, f"n{i}"), ACTOR)
        await (other if i % 2 else big_site).record(f.depart(SITE, f"n{i}"), ACTOR)
    await other.record(f.arrive(SITE, "last"), ACTOR)
    with pytest.raises(ArrivalAlreadyRecordedError):  # the other process's arrival, as it was recorded
        await big_site.record(f.arrive(SITE, "last"), ACTOR)
    assert "last" in (await folded_from_the_log(pool)).members
    assert [n for n in (await folded_from_the_log(pool)).members if n.startswith("n")] == []


async def test_a_kept_state_the_log_does_not_continue_is_not_built_on(pool: asyncpg.Pool, big_site: CommandPipeline):
    _, repository = pipeline(pool)
    truth = await loaded(pool, repository)
    head = repository.folds.latest[SITE].head
    # As if the database had been restored from a backup and written on since: same version, another event.
    wrong = truth.model_copy(update={"members": {}})
    repository.folds.keep(SITE, StreamHead(head.version, "0" * 64), wrong)
    assert await loaded(pool, repository) == truth
    behind = (await stored(pool))[1]  # not older than the stored state: the kept one is folded on
    repository.folds.keep(SITE, StreamHead(behind, "0" * 64), wrong)
    assert await loaded(pool, repository) == truth


async def test_timers_see_a_mobile_member_the_stored_state_does_not_hold_yet(pool: asyncpg.Pool,
                                                                             big_site: CommandPipeline):
    version, state_version, state = await stored(pool)
    late = [f"m{i}" for i in range(state_version - 1, version - 1)]
    assert late and not set(late) & set(state.members)  # the last arrivals are only in the events
    today = f.DAY + dt.timedelta(days=366)
    fired = {c.member_id for c in await due_commands(pool, today)}
    assert fired == {d.member_id for d in due_timers(await folded_from_the_log(pool), today)}
    assert set(late) <= fired

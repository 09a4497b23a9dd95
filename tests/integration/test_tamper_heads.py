"""A cut the heads would hide: events deleted, then a head signed over what the database holds now (as the writing
service does every minute). `verify` reads every head the service published, not only the latest, so the head that
covers less than one before it is named, and the widest head is compared with the database."""
from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest
from structlog.testing import capture_logs

from gongdi.bus.heads import HeadPublisher, each_head
from gongdi.store.heads import HeadKey, unsigned
from tests.conftest import Servers
from tests.integration.tampering import Base, copy_of, make_base, rows, tamper, verify

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def base(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Base:
    return make_base(servers, tmp_path_factory)


@pytest.fixture
async def copy(base: Base) -> AsyncIterator[str]:
    yield await copy_of(base)


async def test_a_head_signed_after_events_were_cut_out_is_named_as_a_regression(base: Base, copy: str):
    last = (await rows(copy, "stream_id = 'site-tamper-a'"))[-1]
    pool = await asyncpg.create_pool(copy, min_size=1, max_size=1)
    nc = await nats.connect(base.settings.nats_servers)
    try:
        js = nc.jetstream()
        # The writing service's publisher signs a head, the event is cut out, it signs what the database holds
        # then: it signs it all the same, and says so in its log.
        publisher = HeadPublisher(pool, js, "membership", HeadKey(base.servers.credentials.head_key), 60.0)
        await publisher.publish()
        before = [h async for h in each_head(js, "membership")]
        await tamper(copy, lambda c: c.execute("DELETE FROM membership.events WHERE position = $1", last.position))
        with capture_logs() as logged:
            signed = await publisher.publish()
        assert [e["log_level"] for e in logged if "went backwards" in e["event"]] == ["error"]
        assert [h async for h in each_head(js, "membership")] == [*before, signed]  # every head, oldest first
        after_cut = unsigned(signed)
    finally:
        await nc.close()
        await pool.close()
    widest = max(h["events"] for h in before)
    problems = [str(p) for r in await verify(base, copy) if r.service == "membership" for p in r.problems]
    assert any(p.endswith("[HEAD_REGRESSED]") and f"覆盖 {widest} 条事件" in p
               and f"只有 {after_cut.events} 条事件" in p for p in problems), problems
    assert any(p.endswith("[HEAD_EVENTS]") and "覆盖最多的" in p and f"事件数 {widest}" in p
               for p in problems), problems

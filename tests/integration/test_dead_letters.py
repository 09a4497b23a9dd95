"""A dead letter is visible: `status` counts it per stream, and the platform is not "caught up" while it exists."""
from __future__ import annotations

import uuid

import nats
import pytest

from contracts.envelope import Envelope
from contracts.membership import SERVICE
from contracts.subjects import event_subject, stream_name
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import caught_up, stream_status
from gongdi.service.settings import Settings
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")


async def test_a_refused_event_shows_in_status_and_blocks_caught_up(client: GongdiClient, ready_settings: Settings):
    assert (await client.send(SERVICE, f.register("dl")))["ok"]
    assert await eventually(lambda: caught_up(ready_settings, client))
    nc = await nats.connect(ready_settings.nats_servers)  # the operator's user: it may publish anything
    try:
        js = nc.jetstream()
        real = Envelope.from_json((await js.get_msg(stream_name(SERVICE), seq=1)).data)
        forged = real.model_copy(update={"event_id": uuid.uuid4(), "version": 7})  # continues nothing
        await js.publish(event_subject("bailin", SERVICE, "SiteRegistered"), forged.to_json(),
                         headers={"Nats-Msg-Id": str(forged.event_id)})
    finally:
        await nc.close()

    async def dead_letters() -> int:
        return sum(r["dead_letters"] for r in await stream_status(ready_settings, client))

    assert await eventually(dead_letters) == 1
    assert not await caught_up(ready_settings, client)
    rows = {r["stream"]: r["dead_letters"] for r in await stream_status(ready_settings, client)}
    assert rows == {stream_name(s): int(s == SERVICE) for s in ("membership", "activities", "liaison")}

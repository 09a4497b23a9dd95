"""A township office's leaf node against the city's server: its clients have exactly the township's rights."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import nats.errors
import orjson
import pytest
from nats.js.errors import Error as JetStreamError

from contracts.identity import Identity, Role
from contracts.membership import SERVICE
from contracts.subjects import event_subject, live_subject, stream_name
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.deployfiles import LEAF_URL_VAR, township_leaf_conf
from gongdi.ops.runtime import free_port, nats_server_binary
from gongdi.service.process import REQUEST_INFO, sender_of
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("platform")

TOWNSHIP = "township.diantou"


@dataclass
class Leaf:
    url: str
    monitor: int

    def link(self) -> dict:
        """The leaf's side of its link to the city, as its monitoring endpoint reports it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/leafz?subs=1", timeout=2) as r:
            links = json.load(r)["leafs"]
        return links[0] if links else {}

    def sent(self) -> int:
        """Messages that crossed from the office to the city so far."""
        return self.link()["out_msgs"]


@pytest.fixture
def leaf(servers: Servers, tmp_path: Path) -> Iterator[Leaf]:
    """deploy/nats/township-leaf.conf on free local ports, given 点头镇's address of the session's server."""
    port, monitor = free_port(), free_port()
    conf = tmp_path / "leaf.conf"
    conf.write_text(township_leaf_conf(listen=f"127.0.0.1:{port}", http=f"127.0.0.1:{monitor}"))
    url = servers.leaf_url.replace("://", f"://{TOWNSHIP}:{servers.credentials.password(TOWNSHIP)}@", 1)
    log = tmp_path / "leaf.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)], env={**os.environ, LEAF_URL_VAR: url},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    leaf = Leaf(f"nats://127.0.0.1:{port}", monitor)
    try:
        # Linked once the city has told the leaf which subjects it serves (the imported cmd.> among them).
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if "cmd.>" in leaf.link().get("subscriptions_list", []):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the leaf did not link to the city:\n{log.read_text()}"
            time.sleep(0.05)
        yield leaf
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def office(leaf: Leaf) -> AsyncIterator[GongdiClient]:
    """A computer in the office: no password (the leaf asks none); the user name only tells the client its scope."""
    c = await GongdiClient.connect(Settings(nats_url=leaf.url, nats_user=TOWNSHIP), timeout=2)

    async def round_trip() -> bool:
        # The link is up once a request from the office is answered through it: the city has both the office's
        # interest in its reply inbox and the township's imports bound to the link.
        try:
            return (await c.query("views", "status"))["ok"]
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            return False

    assert await eventually(round_trip, timeout=30), "no answer through the leaf"
    c.timeout = 10.0
    yield c
    await c.close()


async def actors(pool: asyncpg.Pool, site_id: str) -> list[str]:
    rows = await pool.fetch("SELECT actor FROM membership.events WHERE stream_id = $1 ORDER BY version",
                            f"site-{site_id}")
    return [r["actor"] for r in rows]


async def test_the_office_writes_and_reads_its_own_sites_as_the_township(
        office: GongdiClient, leaf: Leaf, pool: asyncpg.Pool, ready_settings: Settings):
    reply = await office.send(SERVICE, f.register("leaf-own", township="diantou"))
    assert reply["ok"], reply
    assert await actors(pool, "leaf-own") == [TOWNSHIP]
    assert (await office.send(SERVICE, f.workforce("leaf-own", 80)))["ok"]
    assert await actors(pool, "leaf-own") == [TOWNSHIP, TOWNSHIP]

    async def shown() -> bool:
        site = await office.query("views", "site", {"site_id": "leaf-own"})
        return site["ok"] and site["data"]["workforce"] == 80

    assert await eventually(shown)

    # What the server tells a responder about a request from the office: the leaf's user on the city's side.
    operator = await nats.connect(ready_settings.nats_servers)
    infos: list[dict] = []

    async def probe(msg) -> None:
        infos.append(msg.headers or {})
        await msg.respond(b"{}")

    try:
        await operator.subscribe("qry.leafprobe.whoami", cb=probe)
        await operator.flush()
        await office.query("leafprobe", "whoami")
    finally:
        await operator.close()
    info = orjson.loads(infos[0][REQUEST_INFO])
    assert (info["acc"], info["user"], info["kind"]) == ("USERS", TOWNSHIP, "Leafnode")
    assert sender_of(infos[0]) == Identity(Role.TOWNSHIP, township="diantou")


async def test_the_office_cannot_write_another_townships_site(
        office: GongdiClient, client: GongdiClient, leaf: Leaf, pool: asyncpg.Pool):
    assert (await client.send(SERVICE, f.register("leaf-other")))["ok"]  # the city registers a bailin site

    # Through its own subject, the service refuses: the site is bailin's.
    reply = await office.send(SERVICE, f.workforce("leaf-other", 5))
    assert reply["error"]["code"] == "FORBIDDEN" and reply["error"]["field"] == "OTHER_TOWNSHIP", reply
    reply = await office.send(SERVICE, f.register("leaf-new", township="bailin"))
    assert reply["error"]["code"] == "FORBIDDEN" and reply["error"]["field"] == "OTHER_TOWNSHIP", reply

    # Through bailin's subject, nothing leaves the office: the leaf enforces the rights the city sent it, so the
    # request finds no responder instead of a permissions error.
    before = leaf.sent()
    body = f.workforce("leaf-other", 6).model_dump_json().encode()
    with pytest.raises(nats.errors.NoRespondersError):
        await office.send_raw(SERVICE, "ReportWorkforce", body, scope="bailin")
    await office.nc.publish("cmd.bailin.membership.ReportWorkforce", body)
    await office.nc.flush()
    assert leaf.sent() == before
    assert not (await office.query("views", "site", {"site_id": "leaf-other"}))["ok"]  # not its site
    assert leaf.sent() == before + 1, "what the township may send does cross"
    assert await actors(pool, "leaf-other") == ["city"]
    assert await actors(pool, "leaf-new") == []


async def test_the_office_cannot_publish_events_touch_streams_or_overhear_commands(
        office: GongdiClient, client: GongdiClient, leaf: Leaf, ready_settings: Settings):
    operator = await nats.connect(ready_settings.nats_servers)
    js = operator.jetstream()
    streams = sorted(i.config.name for i in await js.streams_info())
    last = (await js.stream_info(stream_name(SERVICE))).state.last_seq
    raw = await nats.connect(leaf.url)
    try:
        before = leaf.sent()
        await raw.publish(event_subject("diantou", SERVICE, "MemberArrived"), b'{"member_id": "ghost"}')
        await raw.flush()
        office_js = raw.jetstream(timeout=2)
        for attempt in (office_js.account_info(), office_js.stream_info(stream_name(SERVICE)),
                        office_js.delete_stream(stream_name(SERVICE)),
                        office_js.add_stream(name="MINE", subjects=["mine.>"]),
                        office_js.publish(event_subject("diantou", SERVICE, "MemberArrived"), b"{}")):
            with pytest.raises((nats.errors.Error, JetStreamError, asyncio.TimeoutError)):
                await attempt
        assert leaf.sent() == before, "neither the event nor a JetStream request left the office"

        # Commands other people send in the city, their events and the views' change notices (the gateway's
        # alone) do not reach the office, though it listens for them.
        overheard: list[str] = []
        notified: list[str] = []

        async def on_command(msg) -> None:
            overheard.append(msg.subject)

        async def on_notice(msg) -> None:
            notified.append(msg.subject)

        for subject in ("cmd.>", "evt.>", "live.>"):
            await raw.subscribe(subject, cb=on_command)
        await raw.flush()
        await operator.subscribe(live_subject("site", "leaf-city"), cb=on_notice)
        await operator.flush()
        assert (await client.send(SERVICE, f.register("leaf-city")))["ok"]
        assert await eventually(lambda: notified), "the platform heard the change"
        # An answer to the office comes down the link after anything routed to it before: once it is here and the
        # office's listener has flushed, the command and the notice would have been delivered too.
        assert (await office.query("views", "status"))["ok"]
        await raw.flush()
        assert overheard == []
    finally:
        await raw.close()
    assert (await js.stream_info(stream_name(SERVICE))).state.last_seq == last + 1  # leaf-city's registration
    assert sorted(i.config.name for i in await js.streams_info()) == streams
    await operator.close()

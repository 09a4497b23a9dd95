"""/health names what is wrong: a relay paused with events waiting, a service not running."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contracts.membership import SERVICE as MEMBERSHIP
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from tests.conftest import Servers
from tests.integration.gateway import Gateway, eventually, running_gateway
from tests.integration.running import GONGDI, _env


@pytest.fixture(scope="module")
def gw(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # A backlog standing still for a second is stuck here (60 s by default), so that the test waits little.
    with running_gateway(servers, tmp_path_factory.mktemp("health"), health_stuck_after=1.0) as gateway:
        yield gateway


def health(gw: Gateway) -> tuple[int, dict]:
    reply = httpx.get(f"{gw.url}/health", timeout=10)
    return reply.status_code, reply.json()


def child_pid(gw: Gateway, name: str) -> int:
    [child] = [c for c in gw.supervisor.children if c.name == name]
    assert child.proc is not None and child.proc.poll() is None, name
    return child.proc.pid


async def record(gw: Gateway, site: str) -> None:
    client = await GongdiClient.connect(gw.servers.as_identity(gw.settings, "city"))
    try:
        reply = await client.send(MEMBERSHIP, f.register(site))
        assert reply["ok"], reply
    finally:
        await client.close()


def test_a_paused_relay_with_events_waiting_is_reported_until_it_goes_on(gw: Gateway, tmp_path: Path):
    """Before, /health said ok while a relay was paused: commands were accepted and never reached the views."""
    code, body = health(gw)
    assert code == 200 and body["problems"] == [] and body["unpublished"] == 0, body
    relay = child_pid(gw, "membership-relay")
    os.kill(relay, signal.SIGSTOP)
    try:
        asyncio.run(record(gw, "paused"))

        def stuck() -> dict | None:
            code, body = health(gw)
            return body if code == 503 and any(p["code"] == "RELAY_STUCK" for p in body["problems"]) else None

        body = eventually(stuck, timeout=30)
        assert body, health(gw)
        [problem] = [p for p in body["problems"] if p["code"] == "RELAY_STUCK"]
        assert problem["service"] == "membership" and problem["events"] >= 1
        assert "未发布到 JetStream" in problem["message"]
        assert body["unpublished"] >= 1 and body["services"]["membership"] == "answering"
        # The CLI's status says it too (before: only the two counts, one apart).
        env = {**_env(), "NATS_URL": gw.settings.nats_url, "GONGDI_NATS_USER": "city",
               "GONGDI_NATS_PASSWORD": gw.password("city")}
        shown = subprocess.run([*GONGDI, "--home", str(tmp_path), "view", "status"], capture_output=True, text=True,
                               env=env, timeout=60)
        said = shown.stdout + shown.stderr
        assert "待发布 " in shown.stdout and "membership-relay 停了或卡住了" in shown.stdout, said
    finally:
        os.kill(relay, signal.SIGCONT)

    def healthy() -> bool:
        code, body = health(gw)
        return code == 200 and body["lag"] == 0 and body["unpublished"] == 0

    assert eventually(healthy, timeout=30), health(gw)


def test_a_service_that_hangs_is_named_as_not_answering_in_time(gw: Gateway):
    views = child_pid(gw, "views")
    os.kill(views, signal.SIGSTOP)
    try:
        code, body = health(gw)
    finally:
        os.kill(views, signal.SIGCONT)
    assert code == 503, body
    [problem] = body["problems"]
    assert (problem["code"], problem["service"], problem["reason"]) == ("SERVICE_MISSING", "views", "TimeoutError")
    assert problem["message"] == "视图服务（views）超时未应答：进程卡住或过忙，或连不上它的数据库"
    assert body["services"]["membership"] == "answering"  # the others still asked

    def healthy() -> bool:
        return health(gw)[0] == 200

    assert eventually(healthy, timeout=30), health(gw)


def test_a_relay_killed_with_nothing_to_publish_is_named_until_it_runs_again(gw: Gateway):
    """Before, a dead relay with no events waiting left every figure as it was: /health said ok, /metrics had no
    restart count."""
    [child] = [c for c in gw.supervisor.children if c.name == "liaison-relay"]
    os.kill(child_pid(gw, "liaison-relay"), signal.SIGKILL)
    assert child.proc is not None
    child.proc.wait(timeout=30)
    gw.supervisor.check()  # the supervisor sees it ended (this test's supervisor has no watch loop of its own)

    def down() -> dict | None:
        code, body = health(gw)
        return body if code == 503 and body["problems"] else None

    body = eventually(down, timeout=30)
    assert body, health(gw)
    [problem] = body["problems"]
    assert problem["code"] == "PROCESS_DOWN" and problem["process"] == "liaison-relay", problem
    assert "被信号 9（SIGKILL）终止" in problem["message"] and problem["restarts"] == 1
    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'gongdi_process_up{process="liaison-relay"} 0' in metrics
    assert 'gongdi_process_restarts_total{process="liaison-relay"} 1' in metrics
    assert 'gongdi_process_up{process="liaison"} 1' in metrics

    child.next_start = time.monotonic()  # its back-off over: started again at the next look
    gw.supervisor.check()

    def healthy() -> bool:
        return health(gw)[0] == 200

    assert eventually(healthy, timeout=30), health(gw)
    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'gongdi_process_up{process="liaison-relay"} 1' in metrics
    assert 'gongdi_process_restarts_total{process="liaison-relay"} 1' in metrics


def test_a_service_that_is_not_running_is_named(gw: Gateway):
    """Before, /health said only `missing`, not which service."""
    serve = child_pid(gw, "activities")
    os.kill(serve, signal.SIGTERM)
    [child] = [c for c in gw.supervisor.children if c.name == "activities"]
    assert child.proc is not None
    child.proc.wait(timeout=30)  # nobody restarts it here: the test's supervisor has no watch loop

    code, body = health(gw)
    assert code == 503 and body["ok"] is False, body
    assert body["services"]["activities"] == "missing" and body["services"]["membership"] == "answering"
    [problem] = body["problems"]
    assert problem["code"] == "SERVICE_MISSING" and problem["service"] == "activities"
    assert problem["message"] == "党建活动服务（activities）没有应答：进程未运行，或与 NATS 断开了"
    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'gongdi_service_up{service="activities"} 0' in metrics
    assert 'gongdi_service_up{service="membership"} 1' in metrics and "gongdi_platform_up 0" in metrics

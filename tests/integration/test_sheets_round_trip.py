"""The demo city's roster and project list, exported with `gongdi export` and imported with `gongdi import` into an
empty platform: the new platform's lists and membership figures are the demo's."""
from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gongdi.demo.seeder import seed_as_townships
from gongdi.ops.client import GongdiClient
from gongdi.ops.readiness import caught_up
from gongdi.ops.supervisor import Supervisor
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.conftest import _fresh, _wait_ready
from tests.integration.waiting import eventually


def gongdi(settings: Settings, servers: Servers, home: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI as the city work committee, against the platform of `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GONGDI_CITY_FILE")}
    env.update(NATS_URL=settings.nats_url, GONGDI_NATS_USER="city",
               GONGDI_NATS_PASSWORD=servers.credentials.password("city"))
    return subprocess.run([sys.executable, "-m", "gongdi", "--home", str(home), *args], capture_output=True,
                          text=True, env=env, timeout=300)


def rows(path: Path) -> list[list[str]]:
    """A list export's rows, header first (the CSV of one section is a plain table)."""
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 only with its BOM
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


async def figures(settings: Settings, servers: Servers) -> dict[str, Any]:
    """The membership figures of the city view, once every event is applied."""
    city = await GongdiClient.connect(servers.as_identity(settings, "city"))
    try:
        assert await eventually(lambda: caught_up(settings, city), timeout=120)
        data = (await city.query("views", "city"))["data"]
    finally:
        await city.close()
    per_township = {t["township"]: (t["projects"], t["members"]) for t in data["townships"]}
    return {"projects": data["projects"], "members": data["members"], "per_township": per_township}


def started(settings: Settings, servers: Servers, logs: Path) -> Supervisor:
    sup = Supervisor(settings, logs, say=lambda *_: None, passwords=servers.credentials.nats,
                     database_passwords=servers.credentials.postgres)
    sup.setup()
    sup.start()
    asyncio.run(_wait_ready(servers.as_identity(settings, "city")))
    return sup


def test_the_demo_city_exported_and_imported_into_an_empty_platform_gives_the_same_lists(servers: Servers,
                                                                                        tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    demo = asyncio.run(_fresh(servers))
    sup = started(demo, servers, tmp_path / "logs-demo")
    try:
        asyncio.run(seed_as_townships(demo, servers.credentials.password))
        before = asyncio.run(figures(demo, servers))
        for kind in ("sites", "members"):
            done = gongdi(demo, servers, home, "export", kind, "--format", "csv", "--out", str(tmp_path / kind))
            assert done.returncode == 0, done.stderr
        # Imported back where they came from (the rows differ from the townships' own commands, so their ids do
        # too): every row is the record as it is, 已导入, and nothing is written. Before, every row was refused.
        for kind in ("sites", "members"):
            done = gongdi(demo, servers, home, "import", kind, str(tmp_path / kind), "--result",
                          str(tmp_path / f"{kind}-back.csv"))
            assert done.returncode == 0, done.stdout + done.stderr
            results = rows(tmp_path / f"{kind}-back.csv")
            assert {r[-1] for r in results[1:]} == {"已导入（已在册，内容相同）"}, \
                [r for r in results if r[-1] != "已导入（已在册，内容相同）"][:3]
        assert asyncio.run(figures(demo, servers)) == before
    finally:
        sup.stop()
    assert before["members"] > 200 and before["projects"] > 50  # the whole demo city, not a part of it
    exported = {kind: rows(tmp_path / kind) for kind in ("sites", "members")}
    assert len(exported["sites"]) - 1 == before["projects"] and len(exported["members"]) - 1 == before["members"]

    empty = asyncio.run(_fresh(servers))
    sup = started(empty, servers, tmp_path / "logs-empty")
    try:
        for kind in ("sites", "members"):  # projects first: a member row names its site
            done = gongdi(empty, servers, home, "import", kind, str(tmp_path / kind), "--result",
                          str(tmp_path / f"{kind}-result.csv"))
            assert done.returncode == 0, done.stdout + done.stderr
            results = rows(tmp_path / f"{kind}-result.csv")
            assert {r[-1] for r in results[1:]} == {"成功"}, [r for r in results if r[-1] != "成功"][:3]
        after = asyncio.run(figures(empty, servers))
        for kind in ("sites", "members"):
            done = gongdi(empty, servers, home, "export", kind, "--format", "csv", "--out",
                          str(tmp_path / f"{kind}-again"))
            assert done.returncode == 0, done.stderr
            assert rows(tmp_path / f"{kind}-again") == exported[kind]
    finally:
        sup.stop()
    assert after == before

"""A made-up city through the same code: its townships and departments come from its file, not from the code."""
from __future__ import annotations

from pathlib import Path

import nats
import orjson
import pytest

from contracts.city import load_city
from contracts.membership import SERVICE
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.service.settings import Settings
from tests.conftest import Servers
from tests.integration.waiting import eventually

SEASIDE = """
code: seaside
name: 海滨市
townships:
  east: 东湖镇
  west: 西岭乡
departments: {shuili: 水利局, jiaotong: 交通运输局}
"""


@pytest.fixture
def settings(settings: Settings, servers: Servers, tmp_path: Path) -> Settings:
    """Every process of this test's platform reads the made-up city's file; its identities join the bus."""
    path = tmp_path / "seaside.yaml"
    path.write_text(SEASIDE, encoding="utf-8")
    servers.add_city(load_city(path))
    return settings.model_copy(update={"city_file": str(path)})


@pytest.mark.usefixtures("platform")
async def test_a_second_city_runs_on_its_own_configuration(client: GongdiClient, ready_settings: Settings,
                                                           servers: Servers):
    live: list[dict] = []

    async def on_live(msg) -> None:
        live.append(orjson.loads(msg.data))

    gateway = await nats.connect(servers.as_identity(ready_settings, "gateway").nats_servers)
    sub = await gateway.subscribe("live.city.seaside", cb=on_live)
    await gateway.flush()
    assert (await client.send(SERVICE, f.register("dam", township="east")))["ok"]
    default_city = await client.send(SERVICE, f.register("elsewhere", township="bailin"))
    assert default_city["error"]["code"] == "UNKNOWN_TOWNSHIP" and default_city["error"]["field"] == "township"
    assert "海滨市" in default_city["error"]["message"]
    no_such_department = await client.send(SERVICE, f.register("b2").model_copy(
        update={"township": "west", "department": "宇航局"}))
    assert no_such_department["error"]["code"] == "UNKNOWN_DEPARTMENT"

    async def shown() -> dict | None:
        city = (await client.query("views", "city"))["data"]
        return city if city["projects"] == 1 else None

    city = await eventually(shown)
    assert (city["city"], city["city_name"]) == ("seaside", "海滨市")
    assert [(t["township"], t["name"]) for t in city["townships"]] == [("east", "东湖镇")]
    site = (await client.query("views", "site", {"site_id": "dam"}))["data"]
    assert site["township_name"] == "东湖镇"
    assert await eventually(lambda: bool(live)), "no live change on live.city.seaside"
    await sub.unsubscribe()
    await gateway.close()

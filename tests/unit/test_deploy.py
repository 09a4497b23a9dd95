"""The deployment files parse and agree with the code: every process the supervisor runs is deployed."""
from __future__ import annotations

from pathlib import Path

import yaml

from gongdi.ops.supervisor import PROCESSES

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_platform_process():
    services = compose()["services"]
    for name, module, arg in PROCESSES:
        assert services[name]["command"] == ["python", "-m", module, arg]


def test_compose_has_a_three_node_jetstream_cluster_and_postgres():
    services = compose()["services"]
    nodes = [s for s in services if s.startswith("nats-")]
    assert len(nodes) == 3 and "postgres" in services
    for node in nodes:
        conf = services[node]["volumes"][0].split(":")[0]
        text = (ROOT / conf).read_text()
        assert "jetstream" in text and "routes" in text


def test_services_wait_for_setup():
    services = compose()["services"]
    for name, _, _ in PROCESSES:
        assert services[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_single_node_config_fsyncs_every_write():
    assert "sync_interval: always" in (ROOT / "deploy/nats/single.conf").read_text()

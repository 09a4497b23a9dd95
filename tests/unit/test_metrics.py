"""The /metrics page keeps Prometheus' text format: each metric's samples together, after its HELP and TYPE."""
from __future__ import annotations

import re

from contracts.queries import ConsumerStatus, ServiceStatus
from gongdi.ops.processfile import Processes, ProcessState
from services.gateway.metrics import Metrics, render


def answers() -> dict[str, ServiceStatus | str]:
    consumers = [ConsumerStatus(service="views", consumer=f"views-{w}", stream=w.upper(), applied=3, published=4,
                                dead_letters=1, letters=[]) for w in ("membership", "activities")]
    return {"views": ServiceStatus(service="views", consumers=consumers),
            **{w: ServiceStatus(service=w, stream=w.upper(), recorded=4, published=4)
               for w in ("liaison", "activities", "membership")}}


def test_each_metric_is_one_group_after_its_type():
    """Before, recorded and published (and lag and dead letters) alternated line by line: an OpenMetrics parser
    refused the page ("Clashing name")."""
    counts = Metrics()
    counts.count("command", "membership.RecordArrival", "ok")
    lines = render(counts, answers(), sessions=2).splitlines()
    names = [re.match(r"[a-z_]+", line).group(0) for line in lines if not line.startswith("#")]
    groups = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
    assert len(groups) == len(set(groups)), groups  # no metric comes back after another
    for name in set(names):
        first = next(i for i, line in enumerate(lines) if line.startswith(name))
        assert lines[first - 1] == f"# TYPE {name} gauge" or lines[first - 1].startswith(f"# TYPE {name} ")
    assert 'gongdi_consumer_lag{service="views",consumer="views-membership",stream="MEMBERSHIP"} 1' in lines
    assert 'gongdi_service_up{service="membership"} 1' in lines


def test_a_silent_service_is_down_and_the_stream_figures_are_left_out():
    lines = render(Metrics(), answers() | {"activities": "TimeoutError"}, sessions=0).splitlines()
    assert 'gongdi_service_up{service="activities"} 0' in lines and "gongdi_platform_up 0" in lines
    assert not any(line.startswith("gongdi_events_recorded") for line in lines)


def test_the_supervisors_processes_are_counted_when_there_is_one():
    processes = Processes(supervisor=1, processes=[
        ProcessState(name="membership-relay", running=False, restarts=3, ended="被信号 9（SIGKILL）终止",
                     down_since=1.0),
        ProcessState(name="views", running=True)])
    lines = render(Metrics(), answers(), sessions=0, processes=processes).splitlines()
    assert 'gongdi_process_up{process="membership-relay"} 0' in lines
    assert 'gongdi_process_up{process="views"} 1' in lines
    assert 'gongdi_process_restarts_total{process="membership-relay"} 3' in lines
    assert "# TYPE gongdi_process_restarts_total counter" in lines
    # Under compose the container engine counts: no such metric at all
    assert not any("gongdi_process" in line for line in render(Metrics(), answers(), sessions=0).splitlines())

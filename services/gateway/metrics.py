"""Health and Prometheus metrics: what passed through the gateway, and every service's progress over the bus."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from contracts.queries import ServiceStatus
from gongdi.ops.processfile import Processes
from gongdi.ops.readiness import merged


class Metrics:
    """Counts of requests by kind, name and outcome (the reply's code, `ok` or `duplicate`)."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.live_streams = 0

    def count(self, kind: str, name: str, outcome: str) -> None:
        self.requests[(kind, name, outcome)] += 1


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render(metrics: Metrics, answers: Mapping[str, ServiceStatus | str], sessions: int,
           processes: Processes | None = None) -> str:
    """The metrics page; `answers` is each service's status or why it gave none (gongdi.ops.readiness.each_status),
    `processes` the supervisor's account of its processes (none under compose)."""
    missing = [service for service, answer in answers.items() if isinstance(answer, str)]
    status = None if missing else merged({s: a for s, a in answers.items() if not isinstance(a, str)})
    out = ["# HELP gongdi_gateway_requests_total Commands and queries through the gateway, by outcome.",
           "# TYPE gongdi_gateway_requests_total counter"]
    for (kind, name, outcome), n in sorted(metrics.requests.items()):
        out.append(f'gongdi_gateway_requests_total{{kind="{kind}",name="{_label(name)}",'
                   f'outcome="{_label(outcome)}"}} {n}')
    out += ["# HELP gongdi_gateway_sessions Logged-in sessions.", "# TYPE gongdi_gateway_sessions gauge",
            f"gongdi_gateway_sessions {sessions}",
            "# HELP gongdi_gateway_live_streams Open live (SSE) streams.", "# TYPE gongdi_gateway_live_streams gauge",
            f"gongdi_gateway_live_streams {metrics.live_streams}",
            "# HELP gongdi_platform_up 1 when every service answered its status.",
            "# TYPE gongdi_platform_up gauge", f"gongdi_platform_up {0 if status is None else 1}",
            "# HELP gongdi_service_up 1 when the service answered its status.", "# TYPE gongdi_service_up gauge"]
    out += [f'gongdi_service_up{{service="{service}"}} {0 if service in missing else 1}' for service in answers]
    if processes is not None:
        out += ["# HELP gongdi_process_up 1 while the supervisor's process runs (a relay answers no status).",
                "# TYPE gongdi_process_up gauge"]
        out += [f'gongdi_process_up{{process="{_label(p.name)}"}} {int(p.running)}' for p in processes.processes]
        out += ["# HELP gongdi_process_restarts_total Times a process ended and the supervisor started it again.",
                "# TYPE gongdi_process_restarts_total counter"]
        out += [f'gongdi_process_restarts_total{{process="{_label(p.name)}"}} {p.restarts}'
                for p in processes.processes]
    if status is None:
        return "\n".join(out) + "\n"
    # Each metric's samples together, after its HELP and TYPE: the text format's rule (interleaved, an OpenMetrics
    # parser refused the page with "Clashing name").
    for name, key, help_ in (("gongdi_events_recorded", "recorded", "Events in a writing service's store."),
                             ("gongdi_events_published", "published", "Events in a writing service's stream.")):
        out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
        out += [f'{name}{{service="{s["service"]}"}} {s[key]}' for s in status["streams"]]

    def labels(c: dict[str, Any]) -> str:
        return f'service="{c["service"]}",consumer="{c["consumer"]}",stream="{c["stream"]}"'

    out += ["# HELP gongdi_consumer_lag Stream messages a consumer has not applied yet.",
            "# TYPE gongdi_consumer_lag gauge"]
    for c in status["consumers"]:
        behind = (c["recorded"] if c.get("recorded") is not None else c["published"]) - c["applied"]
        out.append(f"gongdi_consumer_lag{{{labels(c)}}} {max(0, behind)}")
    out += ["# HELP gongdi_dead_letters Events a consumer passed without applying them.",
            "# TYPE gongdi_dead_letters gauge"]
    out += [f"gongdi_dead_letters{{{labels(c)}}} {c['dead_letters']}" for c in status["consumers"]]
    return "\n".join(out) + "\n"

"""/health: every service answers, and the platform's events move: each relay publishing, each consumer applying."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.queries import SERVICE_NAMES, ServiceStatus
from gongdi.ops.processfile import Processes
from gongdi.ops.readiness import merged

# Seconds each service has to answer: a hung one is named within this, so that a probe's own timeout (often a few
# seconds) meets a 503 rather than a timeout of its own (the client's 5 s before).
ASK_WITHIN = 2.0

# Why a service gave no status (gongdi.ops.readiness.each_status), as the operator reads it.
SILENCE = {"NoRespondersError": "没有应答：进程未运行，或与 NATS 断开了",
           "TimeoutError": "超时未应答：进程卡住或过忙，或连不上它的数据库"}


def _name(service: str) -> str:
    return f"{SERVICE_NAMES.get(service, service)}（{service}）"


@dataclass
class Stalls:
    """How long each backlog has stood still, over the checks the gateway made. A relay or a consumer that is
    behind is normal for a moment; behind with no progress for `after` seconds is stuck (its process paused or hung,
    its server unreachable). Kept by the gateway for its life; a backlog gone is forgotten."""

    after: float
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # the supervisor's file says when a process ended in wall-clock time
    seen: dict[tuple[str, ...], tuple[int, float]] = field(default_factory=dict)

    def still_for(self, key: tuple[str, ...], done: int, behind: int) -> float | None:
        """Seconds `done` has not moved while `behind` > 0; None when nothing is behind."""
        if behind <= 0:
            self.seen.pop(key, None)
            return None
        now = self.clock()
        previous = self.seen.get(key)
        if previous is None or previous[0] != done:
            self.seen[key] = (done, now)
            return 0.0
        return now - previous[1]


def assess(answers: Mapping[str, ServiceStatus | str], stalls: Stalls,
           processes: Processes | None = None) -> dict[str, Any]:
    """The body of /health: `ok` false with a `problems` entry (code, service, Chinese message) for a service that
    does not answer, a database behind its stream, a relay or consumer stuck behind for `stalls.after` seconds, a
    process of the supervisor's down for as long (a relay with nothing to publish is missed otherwise)."""
    problems = [{"code": "SERVICE_MISSING", "service": service, "reason": why,
                 "message": f"{_name(service)}{SILENCE.get(why, f'拒绝了网关的状态查询（{why}）')}"}
                for service, why in answers.items() if isinstance(why, str)]
    body: dict[str, Any] = {"services": {service: "missing" if isinstance(answer, str) else "answering"
                                         for service, answer in answers.items()}}
    if not problems:
        status = merged({service: answer for service, answer in answers.items() if not isinstance(answer, str)})
        problems = _stuck(status, stalls)
        body["dead_letters"] = sum(c["dead_letters"] for c in status["consumers"])
        body["lag"] = sum(max(0, (c["recorded"] or 0) - c["applied"]) for c in status["consumers"])
        body["unpublished"] = sum(max(0, s["recorded"] - s["published"]) for s in status["streams"])
    problems += _down(processes, stalls)
    return {"ok": not problems, **body, "problems": problems}


def _down(processes: Processes | None, stalls: Stalls) -> list[dict[str, Any]]:
    """Processes ended and not started again for `stalls.after` seconds: dying as they start (the supervisor waits
    longer each time, up to 30 s), or waiting for their server. A job done is not down."""
    now = stalls.wall()
    return [{"code": "PROCESS_DOWN", "process": p.name, "seconds": round(now - p.down_since), "restarts": p.restarts,
             "message": f"进程 {p.name} 已停止 {round(now - p.down_since)} 秒（{p.ended or '已结束'}），"
                        f"启动后已重启 {p.restarts} 次：请查看其日志 logs/{p.name}.log"}
            for p in (processes.processes if processes else [])
            if not p.running and not p.job and p.down_since is not None and now - p.down_since >= stalls.after]


def _stuck(status: dict[str, Any], stalls: Stalls) -> list[dict[str, Any]]:
    problems = []
    for s in status["streams"]:
        service, behind = s["service"], s["recorded"] - s["published"]
        if behind < 0:  # the stream holds events its database lacks: restored from an older copy, or deleted
            problems.append({"code": "DATABASE_BEHIND_STREAM", "service": service, "events": -behind,
                             "message": f"{_name(service)}的数据库比其 JetStream 流少 {-behind} 个事件"
                                        "（数据库被恢复为较旧的副本，或事件被删除）：请运行 gongdi verify"})
        still = stalls.still_for(("relay", service), s["published"], behind)
        if still is not None and still >= stalls.after:
            problems.append({"code": "RELAY_STUCK", "service": service, "events": behind, "seconds": round(still),
                             "message": f"{_name(service)}有 {behind} 个已记录的事件 {round(still)} 秒未发布到 "
                                        "JetStream：其 relay 进程停止、卡住或连不上服务器"})
    for c in status["consumers"]:
        # Behind what its stream holds: a consumer cannot apply what the relay has not published yet.
        behind = c["published"] - c["applied"]
        still = stalls.still_for(("consumer", c["service"], c["consumer"]), c["applied"], behind)
        if still is not None and still >= stalls.after:
            problems.append({"code": "CONSUMER_STUCK", "service": c["service"], "consumer": c["consumer"],
                             "events": behind, "seconds": round(still),
                             "message": f"{_name(c['service'])}的消费者 {c['consumer']} 落后 "
                                        f"{behind} 个事件，{round(still)} 秒没有进展"})
    return problems

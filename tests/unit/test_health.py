"""/health's judgement from the services' status answers: who is missing, which backlog stands still."""
from __future__ import annotations

from contracts.queries import ConsumerStatus, ServiceStatus
from gongdi.ops.processfile import Processes, ProcessState
from services.gateway.health import Stalls, assess


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answers(recorded: int = 10, published: int = 10, applied: int = 10) -> dict[str, ServiceStatus | str]:
    """The views consume membership's stream; each writer has its own stream."""
    views = ServiceStatus(service="views", consumers=[ConsumerStatus(
        service="views", consumer="views-membership", stream="MEMBERSHIP", applied=applied, published=published,
        dead_letters=0, letters=[])])
    writers = {w: ServiceStatus(service=w, stream=w.upper(), recorded=0, published=0)
               for w in ("liaison", "activities")}
    membership = ServiceStatus(service="membership", stream="MEMBERSHIP", recorded=recorded, published=published)
    return {"views": views, **writers, "membership": membership}


def stalls() -> tuple[Stalls, Clock]:
    clock = Clock()
    return Stalls(after=60, clock=clock), clock


def test_a_platform_that_keeps_up_is_healthy():
    body = assess(answers(), stalls()[0])
    assert body["ok"] is True and body["problems"] == []
    assert body["lag"] == 0 and body["unpublished"] == 0 and body["dead_letters"] == 0
    assert set(body["services"].values()) == {"answering"}


def test_a_service_that_does_not_answer_is_named():
    given = answers() | {"activities": "NoRespondersError"}
    body = assess(given, stalls()[0])
    assert body["ok"] is False
    assert body["services"]["activities"] == "missing" and body["services"]["membership"] == "answering"
    [problem] = body["problems"]
    assert problem["code"] == "SERVICE_MISSING" and problem["service"] == "activities"
    assert "党建活动服务（activities）" in problem["message"]


def test_a_relay_behind_but_moving_is_not_stuck():
    watch, clock = stalls()
    assert assess(answers(recorded=20, published=10, applied=10), watch)["ok"]
    clock.now += 90
    body = assess(answers(recorded=25, published=18, applied=18), watch)  # it published meanwhile
    assert body["ok"] and body["unpublished"] == 7


def test_a_relay_behind_without_progress_is_stuck_until_it_moves():
    watch, clock = stalls()
    assert assess(answers(recorded=20, published=10), watch)["ok"]  # a first look cannot tell
    clock.now += 59
    assert assess(answers(recorded=21, published=10), watch)["ok"]
    clock.now += 1
    body = assess(answers(recorded=21, published=10), watch)
    assert body["ok"] is False
    [problem] = body["problems"]
    assert (problem["code"], problem["service"], problem["events"], problem["seconds"]) == \
        ("RELAY_STUCK", "membership", 11, 60)
    assert "11 个已记录的事件 60 秒未发布" in problem["message"]
    clock.now += 5
    assert assess(answers(recorded=21, published=21, applied=21), watch)["ok"]


def test_a_consumer_behind_its_stream_without_progress_is_stuck():
    watch, clock = stalls()
    assess(answers(recorded=30, published=30, applied=12), watch)
    clock.now += 61
    body = assess(answers(recorded=30, published=30, applied=12), watch)
    [problem] = body["problems"]
    assert (problem["code"], problem["consumer"], problem["events"]) == ("CONSUMER_STUCK", "views-membership", 18)


def test_a_consumer_waiting_for_a_stuck_relay_is_not_blamed():
    watch, clock = stalls()
    assess(answers(recorded=30, published=12, applied=12), watch)
    clock.now += 61
    body = assess(answers(recorded=30, published=12, applied=12), watch)
    assert [p["code"] for p in body["problems"]] == ["RELAY_STUCK"]


def test_a_backlog_cleared_and_come_again_starts_its_clock_again():
    watch, clock = stalls()
    assess(answers(recorded=20, published=10), watch)
    clock.now += 30
    assess(answers(recorded=20, published=20, applied=20), watch)  # caught up: forgotten
    assess(answers(recorded=30, published=20, applied=20), watch)
    clock.now += 40
    assert assess(answers(recorded=30, published=20, applied=20), watch)["ok"]


def test_a_database_behind_its_stream_is_said_at_once():
    body = assess(answers(recorded=8, published=10), stalls()[0])
    assert body["ok"] is False
    [problem] = body["problems"]
    assert problem["code"] == "DATABASE_BEHIND_STREAM" and problem["events"] == 2


def test_a_process_down_longer_than_the_patience_is_named_and_a_job_done_is_not():
    """A relay that died with nothing to publish left no backlog: before, /health said ok all the while."""
    watch, clock = stalls()
    watch.wall = clock
    processes = Processes(supervisor=1, processes=[
        ProcessState(name="membership-relay", running=False, restarts=4, ended="退出（exit 1）", down_since=clock.now),
        ProcessState(name="views-rebuild", running=False, job=True, down_since=0.0),
        ProcessState(name="views", running=True)])
    assert assess(answers(), watch, processes)["ok"]  # just ended: the supervisor starts it again
    clock.now += 60
    body = assess(answers(), watch, processes)
    [problem] = body["problems"]
    assert body["ok"] is False and problem["code"] == "PROCESS_DOWN" and problem["process"] == "membership-relay"
    assert problem["seconds"] == 60 and problem["restarts"] == 4
    assert "membership-relay 已停止 60 秒（退出（exit 1））" in problem["message"]
    assert "logs/membership-relay.log" in problem["message"]
    assert assess(answers(), watch, None)["ok"]  # no supervisor (compose): nothing to say

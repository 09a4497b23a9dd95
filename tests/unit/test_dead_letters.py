"""Dead letters without servers: their codes, what they show of a message, who may ask, when all is applied."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import orjson

from contracts.city import DEFAULT_CITY_FILE, load_city
from contracts.identity import PLATFORM_ACCOUNT, USERS_ACCOUNT, Identity, Role
from contracts.queries import DeadLetter, retry_subject, status_subject
from gongdi.bus.consumer import code_of, describe, error_code
from gongdi.bus.deadletters import facts
from gongdi.ops.accounts import AccountsConfig, all_users
from gongdi.ops.readiness import all_applied, dead_letter_count
from gongdi.service.kit import may_read_status

WRITERS = ["membership", "activities", "liaison"]


def raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:
        return caught


def test_an_error_code_is_its_type_and_sqlstate_never_its_text():
    poison = raised(asyncpg.exceptions.RaiseError("张三 110101199003070012"))
    assert error_code(poison) == "RaiseError[P0001]"
    assert describe(poison).startswith("RaiseError[P0001] at test_dead_letters.py:")
    assert "张三" not in describe(poison)
    assert error_code(raised(ValueError("张三"))) == "ValueError"
    # The code is read back from the stored description, rows from before codes included.
    assert code_of(describe(poison)) == "RaiseError[P0001]"
    assert code_of("ValueError at test_consumer.py:12") == "ValueError"
    assert code_of("StreamContinuityError: stream site-a version 7 at head 1") == "StreamContinuityError"


def test_a_dead_letter_shows_ids_and_type_never_values():
    event = {"event_id": str(uuid.uuid4()), "type": "MemberArrived", "stream_id": "site-a", "site_id": "a",
             "payload": {"member": {"name": "张三"}}}
    shown = facts(orjson.dumps(event))
    assert shown == {"event_id": event["event_id"], "event_type": "MemberArrived", "stream_id": "site-a",
                     "site_id": "a"}
    assert "张三" not in orjson.dumps(shown).decode()
    # Not an event: whatever it carries in those fields is shown only if it looks like an id.
    assert facts(orjson.dumps({"type": "张三 13800138000", "site_id": ["a"]})) == {
        "event_id": None, "event_type": None, "stream_id": None, "site_id": None}
    assert facts(b"\xff not json") == {"event_id": None, "event_type": None, "stream_id": None, "site_id": None}


def test_status_is_for_the_city_the_auditor_the_dashboard_and_the_platform():
    assert may_read_status(None)  # a request from inside PLATFORM: only `setup` may publish there
    assert may_read_status(Identity.parse("setup", PLATFORM_ACCOUNT))
    for who in ("city", "auditor", "dashboard"):
        assert may_read_status(Identity.parse(who))
    for who in ("township.diantou", "site.diantou.a", "department.jiaotong"):
        assert not may_read_status(Identity.parse(who))


def test_nats_lets_the_services_answer_and_only_the_platform_retry():
    users = {u.name: u for u in all_users(load_city(DEFAULT_CITY_FILE), WRITERS)}
    for w in WRITERS:
        assert status_subject(w) in users[w].subscribe and f"ops.{w}.>" in users[w].subscribe
    assert "ops.views.>" in users["views"].subscribe and "qry.views.>" in users["views"].subscribe
    assert users["setup"].everything
    people = [u for u in users.values() if u.account == USERS_ACCOUNT]
    assert not any(p.startswith("ops") or p == ">" for u in people for p in u.publish)
    assert users["dashboard"].publish == ["qry.views.city", "qry.views.township", "qry.views.department",
                                          "qry.*.status"]
    for u in people:
        if Identity.parse(u.name).role is not Role.DASHBOARD:  # the writers' status refuses a township itself
            assert [p for p in u.publish if p.startswith("qry.")] == ["qry.>"], u.name
    rendered = AccountsConfig(list(users.values())).render()
    assert '{service: "qry.>"}' in rendered and '"ops.' not in rendered.split("users: [")[0]
    assert retry_subject("views") == "ops.views.deadletters.retry"


LETTER = DeadLetter(stream_seq=5, event_type="MemberArrived", event_id=None, stream_id="site-a", site_id="a",
                    code="RaiseError[P0001]", error="RaiseError[P0001] at activities.py:3",
                    recorded_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)).model_dump(mode="json")


def status(applied: int, letters: list[dict[str, Any]], recorded: int = 5, published: int = 5) -> dict[str, Any]:
    consumer = {"service": "activities", "consumer": "activities", "stream": "EVT_MEMBERSHIP", "applied": applied,
                "published": published, "dead_letters": len(letters), "letters": letters, "recorded": recorded}
    return {"streams": [{"service": "membership", "stream": "EVT_MEMBERSHIP", "recorded": recorded,
                         "published": published}], "consumers": [consumer]}


def test_caught_up_needs_every_event_applied_and_no_dead_letter():
    assert all_applied(status(5, [])) and dead_letter_count(status(5, [])) == 0
    assert all_applied(status(5, [LETTER])) and dead_letter_count(status(5, [LETTER])) == 1  # settled, not caught up
    assert not all_applied(status(4, []))
    assert not all_applied(status(5, [], recorded=6, published=5))  # recorded, not yet published

"""Only plausible facts get in: each implausible fact found by the bad-data probes is refused, naming the field."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from contracts import activities, liaison, membership
from contracts.timeline import city_today
from gongdi.demo import samples as f

SOON = (city_today() + dt.timedelta(days=400)).isoformat()


def body(command: Any, **changes: Any) -> dict:
    out = orjson.loads(command.model_dump_json())
    for path, value in changes.items():
        target = out
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    return out


ACTIVITY = {"command_id": str(uuid.uuid4()), "site_id": "s", "kind": "night_school", "title": "夜校",
            "held_on": "2020-06-01", "headcount": 30}
BIRTHDAYS = {"command_id": str(uuid.uuid4()), "site_id": "s", "held_on": "2020-07-01", "members": ["m1"],
             "cards_sent": 1}
DISPUTE = {"command_id": str(uuid.uuid4()), "site_id": "s", "case_id": "c1", "kind": "wages",
           "reported_on": "2020-06-01", "parties": ["劳务班组"], "amount_yuan": "8000", "description": "欠薪"}
SUPPORT = {"command_id": str(uuid.uuid4()), "site_id": "s", "village": "马洋村", "kind": "donation",
           "given_on": "2020-06-01", "quantity": "1000"}
MEETING = {"command_id": str(uuid.uuid4()), "site_id": "s", "meeting_id": "q2", "held_on": "2020-06-01",
           "parties": ["owner", "township"]}

IMPLAUSIBLE = [
    (membership.RegisterSite, body(f.register("s"), cost_wan="0"), "cost_wan"),
    (membership.RegisterSite, body(f.register("s"), planned_months=3_000_000_000), "planned_months"),
    (membership.RegisterSite, body(f.register("s"), start_date="0001-01-01"), "start_date"),
    (membership.RegisterSite, body(f.register("s"), start_date="9999-12-31"), "start_date"),
    (membership.RegisterSite, body(f.register("s"), name="工地\u202e反向"), "name"),
    (membership.ReportWorkforce, body(f.workforce("s", 1), headcount=3_000_000_000), "headcount"),
    (membership.RecordArrival, body(f.arrive("s", "m1"), member__admitted_on="2099-07-01"), "member.admitted_on"),
    (membership.RecordArrival, body(f.arrive("s", "m1"), member__admitted_on="0001-07-01"), "member.admitted_on"),
    (membership.RecordArrival, body(f.arrive("s", "m1"), arrived_on="2099-01-01"), "arrived_on"),
    (membership.RecordArrival, body(f.arrive("s", "m1"), arrived_on="9999-12-31"), "arrived_on"),
    (membership.RecordArrival, body(f.arrive("s", "m1"), member__name="张三 350982199001011234"), "member.name"),
    (membership.FormBranch, body(f.form_branch("s", "m1"), committee=["m1", "m1", "m1"]), "committee"),
    (activities.RecordActivity, {**ACTIVITY, "headcount": 3_000_000_000}, "headcount"),
    (activities.RecordActivity, {**ACTIVITY, "held_on": SOON}, "held_on"),
    (activities.CelebrateBirthdays, {**BIRTHDAYS, "cards_sent": 3_000_000_000}, "cards_sent"),
    (liaison.ReportDispute, {**DISPUTE, "parties": [f"班组{i}" for i in range(10_000)]}, "parties"),
    (liaison.ReportDispute, {**DISPUTE, "amount_yuan": "0"}, None),
    (liaison.RecordVillageSupport, {**SUPPORT, "quantity": "999999999999.99"}, "quantity"),
    (liaison.RecordVillageSupport, {**SUPPORT, "kind": "transport", "quantity": "0.01"}, None),
    (liaison.HoldJointMeeting, {**MEETING, "items": [{"item_id": f"i{i}", "kind": "risk", "description": "d",
                                                      "responsible": "owner", "due_on": "2020-07-01"}
                                                     for i in range(5_000)]}, "items"),
]


@pytest.mark.parametrize(("model", "raw", "field"), IMPLAUSIBLE,
                         ids=[f"{m.__name__}-{fld or 'rule'}-{i}" for i, (m, _, fld) in enumerate(IMPLAUSIBLE)])
def test_an_implausible_fact_is_refused_naming_its_field(model: Any, raw: dict, field: str | None):
    with pytest.raises(ValidationError) as refused:
        model.model_validate(raw)
    loc = ".".join(str(p) for p in refused.value.errors()[0]["loc"])
    assert loc == (field or ""), refused.value


def test_the_plausible_version_of_each_passes():
    membership.RegisterSite.model_validate(body(f.register("s"), start_date=SOON))  # planned ahead: fine
    liaison.RecordVillageSupport.model_validate({**SUPPORT, "kind": "transport", "quantity": "40"})
    liaison.ReportDispute.model_validate(DISPUTE)
    activities.RecordActivity.model_validate(ACTIVITY)


@pytest.mark.parametrize("reason", ["工程结束\x00", "调\u202e走", "\x1b[2J", "\u061c", "x" * 201])
def test_a_departure_reason_refuses_what_no_note_may_hold(reason: str):
    """Found by the fuzz test: a NUL in the reason reached PostgreSQL, which cannot store it (INTERNAL)."""
    with pytest.raises(ValidationError) as refused:
        membership.RecordDeparture.model_validate_json(orjson.dumps(body(f.depart("s", "m1"), reason=reason)))
    assert refused.value.errors()[0]["loc"] == ("reason",)


def test_a_departure_reason_keeps_line_breaks_and_tabs():
    reason = "分项工程结束\n调往二标段\t" + "x" * 180
    assert membership.RecordDeparture.model_validate(body(f.depart("s", "m1"), reason=reason)).reason == reason


def test_the_arabic_letter_mark_is_refused_like_the_other_direction_marks():
    with pytest.raises(ValidationError) as refused:
        membership.RegisterSite.model_validate(body(f.register("s"), name="工地\u061c一号"))
    assert refused.value.errors()[0]["loc"] == ("name",)
    with pytest.raises(ValidationError) as refused:
        liaison.RecordVillageSupport.model_validate({**SUPPORT, "note": "送\u061c水泥"})
    assert refused.value.errors()[0]["loc"] == ("note",)


TOMORROW = (city_today() + dt.timedelta(days=1)).isoformat()
DONE = [(activities.RecordTalk, {"command_id": str(uuid.uuid4()), "site_id": "s", "obligation_id": str(uuid.uuid4()),
                                 "talked_by": "支部书记"}, "talked_on"),
        (activities.RecordSafetyViolation, {"command_id": str(uuid.uuid4()), "site_id": "s", "member_id": "m1",
                                            "description": "未系安全带"}, "occurred_on"),
        (activities.ReportPersonalChange, {"command_id": str(uuid.uuid4()), "site_id": "s", "member_id": "m1",
                                           "description": "家中变故"}, "reported_on"),
        (activities.AwardPoints, {"command_id": str(uuid.uuid4()), "site_id": "s", "member_id": "m1",
                                  "category": "innovation", "points": 5, "reason": "改进"}, "awarded_on")]


@pytest.mark.parametrize(("model", "raw", "field"), DONE, ids=[m.__name__ for m, _, _ in DONE])
def test_what_already_happened_is_dated_today_at_the_latest(model: Any, raw: dict, field: str):
    """A talk held, a violation seen, a change learnt of, points earned: before, a day up to a week ahead was taken
    (a talk dated next week counted as held). A meeting may still be planned this week (held_on above)."""
    model.model_validate({**raw, field: city_today().isoformat()})
    with pytest.raises(ValidationError) as refused:
        model.model_validate({**raw, field: TOMORROW})
    [error] = refused.value.errors()
    assert error["loc"] == (field,) and "已发生的事只能记到今天" in error["msg"]

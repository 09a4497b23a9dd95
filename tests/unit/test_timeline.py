"""The two clocks of an as-of view: which events a window keeps, and how a day or a moment is read."""
from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from contracts.activities import TalkHeld, TeamFormed
from contracts.errors import validation_error
from contracts.membership import ContactEscalated, MemberArrived, SiteRegistered, TransferPrompted
from contracts.queries import CityQuery, SiteQuery
from contracts.rules import LIMITS
from contracts.timeline import CITY_TZ, Basis, Window, business_day, cutoff, date_field, describe, latest_as_of
from gongdi.bus.asof import scratch_sql

RECORDED = dt.datetime(2026, 11, 24, 9, 30, tzinfo=CITY_TZ)


def test_an_events_business_day_is_its_own_first_date_field():
    assert date_field(MemberArrived) == "arrived_on"
    assert date_field(SiteRegistered) == "start_date"
    assert date_field(TalkHeld) == "talked_on"
    assert date_field(TeamFormed) == "formed_on"  # None in teams recorded before the day was kept
    assert business_day(team()) is None and business_day(team(formed_on="2020-05-01")) == dt.date(2020, 5, 1)


def test_a_prompt_counts_from_the_day_it_falls_due_not_the_stay_it_is_about_nor_when_the_timer_fired():
    """A transfer prompt for an arrival on 1 March, due 1 September, fired years later by a timer: not yet there at
    the end of June, there at the year's end (before, dated by its first date field, it showed from 1 March)."""
    prompt = TransferPrompted(site_id="s1", member_id="m1", arrived_on=dt.date(2020, 3, 1),
                              due_on=dt.date(2020, 9, 1), prompted_on=dt.date(2026, 11, 25))
    assert business_day(prompt) == dt.date(2020, 9, 1)
    assert date_field(ContactEscalated) == "due_on"
    june, december = (Window(dt.date(2020, m, 30), Basis.business) for m in (6, 12))
    assert not june.includes(RECORDED, "site-s1", lambda: prompt)
    assert december.includes(RECORDED, "site-s1", lambda: prompt)


def test_an_unreadable_moment_is_refused_on_the_field_itself_once():
    """pydantic locates the refusal in each member of the union (`as_of.datetime`, `as_of.date`)."""
    with pytest.raises(ValidationError) as caught:
        CityQuery.model_validate({"as_of": "garbage"})
    info = validation_error(caught.value)
    assert info.field == "as_of" and info.message.startswith("as_of: ") and "另有" not in info.message
    # both forms it takes, not a moment only (a plain day works too)
    assert "应为日期 YYYY-MM-DD 或时刻 YYYY-MM-DDTHH:MM" in info.message
    with pytest.raises(ValidationError) as caught:
        CityQuery.model_validate({"as_of": "2020-02-30"})
    assert "没有 2020-02-30 这一天" in validation_error(caught.value).message


@pytest.mark.parametrize("sent", ["20201231", 20201231, "1600000000", "-5", 1.5e9, " 2020 "])
def test_a_number_is_no_moment(sent):
    """pydantic reads a number as seconds since 1970: `--as-of 20201231` showed a view of August 1970."""
    with pytest.raises(ValidationError) as caught:
        CityQuery.model_validate({"as_of": sent})
    assert "不是数字" in str(caught.value) and caught.value.errors()[0]["loc"][0] == "as_of"


def test_a_day_covers_the_whole_of_it_in_city_time():
    day, until = cutoff(dt.date(2020, 12, 31))
    assert day == dt.date(2020, 12, 31)
    assert until == dt.datetime(2020, 12, 31, 23, 59, 59, 999999, tzinfo=CITY_TZ)
    assert until.astimezone(dt.UTC).date() == dt.date(2020, 12, 31)  # 15:59 UTC


def test_a_moment_without_an_offset_is_city_time_and_one_with_an_offset_is_kept():
    assert cutoff(dt.datetime(2020, 6, 1, 8, 0))[1] == dt.datetime(2020, 6, 1, 8, 0, tzinfo=CITY_TZ)
    utc = dt.datetime(2020, 6, 1, 20, 0, tzinfo=dt.UTC)
    day, until = cutoff(utc)
    assert until == utc and day == dt.date(2020, 6, 2)  # 04:00 the next morning in the city


@pytest.mark.parametrize(("sent", "read"), [
    ("2020-12-31", dt.date(2020, 12, 31)),
    ("2020-12-31T10:00", dt.datetime(2020, 12, 31, 10, 0)),
    ("2020-12-31T10:00:00+08:00", dt.datetime(2020, 12, 31, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))),
])
def test_a_day_is_read_as_a_day_and_a_moment_as_a_moment(sent, read):
    assert CityQuery.model_validate({"as_of": sent}).as_of == read
    assert type(CityQuery.model_validate({"as_of": sent}).as_of) is type(read)


@pytest.mark.parametrize("sent", ["2020-02-30", "yesterday", "2020/12/31", "31.12.2020"])
def test_an_impossible_or_unreadable_moment_is_refused_naming_the_field(sent):
    with pytest.raises(ValidationError) as caught:
        SiteQuery.model_validate({"site_id": "s1", "as_of": sent})
    assert all(e["loc"][0] == "as_of" for e in caught.value.errors())


@pytest.mark.parametrize("sent", ["9999-12-31", "9999-12-31T23:59", "9999-12-31T23:59:59-05:00", "1900-01-01",
                                  "1921-06-30", "1921-06-30T23:59", "0001-01-01T00:00+14:00"])
def test_a_moment_before_the_earliest_day_or_beyond_the_days_ahead_is_refused_naming_the_range(sent):
    before = latest_as_of()
    with pytest.raises(ValidationError) as caught:
        SiteQuery.model_validate({"site_id": "s1", "as_of": sent})
    info = validation_error(caught.value)
    assert (info.code, info.field) == ("VALIDATION_FAILED", "as_of")
    assert any(f"查询时点应在 {LIMITS.earliest_day} 至 {day} 之间" in info.message for day in (before, latest_as_of()))


def test_the_latest_day_is_the_days_ahead_or_the_years_end_whichever_is_later():
    today = dt.datetime.now(CITY_TZ).date()
    latest = latest_as_of()
    assert latest >= today + dt.timedelta(days=LIMITS.future_days) and latest >= dt.date(today.year, 12, 31)
    assert latest in (today + dt.timedelta(days=LIMITS.future_days), dt.date(today.year, 12, 31))


def test_the_earliest_day_the_days_ahead_and_this_years_end_are_still_moments_to_ask():
    today = dt.datetime.now(CITY_TZ).date()
    ahead = today + dt.timedelta(days=LIMITS.future_days)
    for sent in (LIMITS.earliest_day.isoformat(), "1921-06-30T20:00-05:00", ahead.isoformat(),
                 f"{today.year}-12-31", f"{today.year}-12-31T23:59"):
        assert CityQuery.model_validate({"as_of": sent}).as_of is not None  # 1921-07-01 09:00 in the city


def test_an_unknown_basis_is_refused():
    with pytest.raises(ValidationError) as caught:
        CityQuery.model_validate({"as_of": "2020-12-31", "as_of_basis": "someday"})
    assert caught.value.errors()[0]["loc"] == ("as_of_basis",)


def test_a_basis_without_a_moment_is_refused_not_ignored():
    """Before, `?as_of_basis=recorded` alone gave the live view, as if it had been heeded (the CLI refused it)."""
    for basis in ("recorded", "business"):
        with pytest.raises(ValidationError) as caught:
            SiteQuery.model_validate({"site_id": "s1", "as_of_basis": basis})
        [error] = caught.value.errors()
        assert error["ctx"]["field"] == "as_of_basis" and "须与 as_of 一起给出" in error["msg"], error


def test_the_default_is_the_live_view_and_the_business_sense():
    q = CityQuery.model_validate({})
    assert q.as_of is None and q.as_of_basis is Basis.business


def team(name: str = "突击队", **more: str) -> TeamFormed:
    """A team as an older release recorded it: without the day it was formed, unless `formed_on` is given."""
    return TeamFormed.model_validate({"site_id": "s1", "team_id": "t1", "kind": "assault", "name": name,
                                      "leader": "m1", "members": ["m1"], "purpose": "抢险", **more})


def arrived(on: dt.date) -> MemberArrived:
    return MemberArrived.model_validate({
        "site_id": "s1", "member_id": "m1", "arrived_on": on.isoformat(),
        "member": {"name": "李四", "gender": "male", "admitted_on": "2005-07-01", "status": "full",
                   "unit_kind": "construction", "unit_name": "施工单位", "job": "worker", "section": "一工段",
                   "home_org": "某村党支部", "relation": "mobile"}})


def test_business_basis_keeps_facts_of_the_day_and_before_whenever_recorded():
    window = Window(dt.date(2020, 6, 30), Basis.business)
    assert window.includes(RECORDED, "site-s1", lambda: arrived(dt.date(2020, 6, 30)))
    assert not window.includes(RECORDED, "site-s1", lambda: arrived(dt.date(2020, 7, 1)))


def test_a_dated_team_counts_from_its_own_day_whatever_was_recorded_before_it():
    """The auditor's case: a talk entered late for 2020, then a zone designated today. Undated, it took the talk's
    day and counted in 2020's report; dated, it counts from today."""
    window = Window(dt.date(2020, 12, 31), Basis.business)
    assert window.includes(RECORDED, "site-a", lambda: arrived(dt.date(2020, 12, 20)))
    assert not window.includes(RECORDED, "site-a", lambda: team(formed_on="2026-11-24"))


def test_an_undated_fact_takes_the_business_day_of_the_event_before_it_in_its_stream():
    window = Window(dt.date(2020, 6, 30), Basis.business)
    assert window.includes(RECORDED, "site-a", lambda: arrived(dt.date(2020, 3, 1)))
    assert not window.includes(RECORDED, "site-b", lambda: arrived(dt.date(2020, 9, 1)))
    assert window.includes(RECORDED, "site-a", team)
    assert not window.includes(RECORDED, "site-b", team)
    # First in its stream: the day it was recorded.
    assert not window.includes(RECORDED, "site-c", team)
    assert Window(dt.date(2026, 11, 24), Basis.business).includes(RECORDED, "site-c", team)


def test_recorded_basis_keeps_what_was_recorded_up_to_the_moment_whatever_day_it_speaks_of():
    window = Window(dt.datetime(2026, 11, 24, 9, 30), Basis.recorded)

    def never() -> MemberArrived:
        raise AssertionError("the recorded sense needs no payload")

    assert window.includes(RECORDED, "site-s1", never)
    assert not window.includes(RECORDED + dt.timedelta(microseconds=1), "site-s1", never)


def test_a_reply_names_the_day_and_the_sense():
    said = describe(dt.date(2020, 12, 31), Basis.business)
    assert said["title"] == "截至2020年12月31日，按业务日期（当时的实际情况，含事后补录）"
    assert said["day"] == "2020-12-31" and said["basis"] == "business"
    assert describe(dt.datetime(2020, 12, 31, 10, 5), Basis.recorded)["title"].startswith("截至2020年12月31日 10:05，")
    # a moment asked to the second is said to the second
    assert describe(dt.datetime(2020, 12, 31, 10, 5, 40), Basis.recorded)["title"].startswith(
        "截至2020年12月31日 10:05:40，")


def test_migrations_run_in_the_connections_temporary_schema():
    assert scratch_sql("CREATE SCHEMA IF NOT EXISTS pg_temp;\nCREATE TABLE pg_temp.x (a int);") == \
        "\nCREATE TABLE pg_temp.x (a int);"

"""三培两推, appraisal, 三会一课 and the application/completion policies through the real processes."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import pytest

from contracts import membership
from contracts.activities import SERVICE as ACTIVITIES
from contracts.activities import (
    AppraiseMembers,
    AwardPoints,
    DesignateZone,
    Grade,
    Grading,
    MeetingKind,
    PointsCategory,
    RecordBranchMeeting,
    RecordKind,
    RecordSafetyViolation,
    RecordTalk,
    RetractRecord,
    TrainBackbone,
)
from contracts.membership import SERVICE as MEMBERSHIP
from gongdi.demo import samples as f
from gongdi.ops.client import GongdiClient
from gongdi.ops.history import history
from gongdi.ops.readiness import settled
from tests.integration.waiting import eventually


async def site_with_branch(client: GongdiClient, site_id: str, members: list[str]) -> None:
    """A site, its members and its branch (formed on samples.DAY, 1 June 2020), once activities has learnt it."""
    assert (await client.send(MEMBERSHIP, f.register(site_id)))["ok"]
    for m in members:
        assert (await client.send(MEMBERSHIP, f.arrive(site_id, m)))["ok"]
    assert (await client.send(MEMBERSHIP, f.form_branch(site_id, members[0])))["ok"]
    probe = RecordBranchMeeting(command_id=uuid.uuid4(), site_id=site_id, kind=MeetingKind.committee,
                                held_on=f.DAY, topic="探测", attendance=1)

    async def branch_known() -> bool:  # no committee: NO_COMMITTEE once the branch is known, NO_BRANCH before
        reply = await client.send(ACTIVITIES, probe.model_copy(update={"command_id": uuid.uuid4()}))
        return reply["error"]["code"] == "NO_COMMITTEE"

    assert await eventually(branch_known), "activities did not learn the branch"


def grades(excellent: int, qualified: int, members: list[str]) -> list[Grading]:
    kinds = [Grade.excellent] * excellent + [Grade.qualified] * qualified
    return [Grading(member_id=m, grade=g) for m, g in zip(members, kinds, strict=True)]


@pytest.mark.usefixtures("platform")
async def test_the_appraisal_cap_is_refused_over_the_bus_and_one_third_accepted(client: GongdiClient):
    members = ["p1", "p2", "p3", "p4"]
    await site_with_branch(client, "ap1", members)
    over = AppraiseMembers(command_id=uuid.uuid4(), site_id="ap1", year=2020, appraised_on=dt.date(2020, 12, 28),
                           grades=grades(2, 2, members))
    reply = await client.send(ACTIVITIES, over)
    assert reply["error"]["code"] == "APPRAISAL_EXCELLENT_OVER_CAP" and reply["error"]["field"] == "grades"
    assert "appraisal_excellent_one_in" in reply["error"]["message"]
    third = over.model_copy(update={"command_id": uuid.uuid4(), "grades": grades(1, 2, members[:3])})
    assert (await client.send(ACTIVITIES, third))["ok"]
    again = await client.send(ACTIVITIES, third.model_copy(update={"command_id": uuid.uuid4()}))
    assert again["error"]["code"] == "APPRAISAL_ALREADY_HELD"
    assert (await client.send(ACTIVITIES, TrainBackbone(command_id=uuid.uuid4(), site_id="ap1", member_id="p4",
                                                        trained_on=f.DAY, skill="焊接")))["ok"]

    async def shown() -> bool:
        a = (await client.query("views", "site", {"site_id": "ap1"}))["data"]["activities"]
        return (a["appraisal"]["appraised"] == 3 and a["appraisal"]["grades"]["excellent"] == 1
                and a["talent"]["backbone_trained"] == 1)

    assert await eventually(shown)


@pytest.mark.usefixtures("platform")
async def test_meetings_due_and_overdue_in_the_views_as_of_a_day(client: GongdiClient):
    await site_with_branch(client, "mt1", ["q1", "q2", "q3"])
    for kind, on in ((MeetingKind.themed_day, dt.date(2020, 6, 5)), (MeetingKind.general_assembly,
                                                                    dt.date(2020, 6, 10))):
        meeting = RecordBranchMeeting(command_id=uuid.uuid4(), site_id="mt1", kind=kind, held_on=on, topic="学习",
                                      attendance=3, attendees=("q1",))
        assert (await client.send(ACTIVITIES, meeting))["ok"]
        # the same again, as a second browser or a retry with another key would send it: recorded, said back
        again = await client.send(ACTIVITIES, meeting.model_copy(update={"command_id": uuid.uuid4()}))
        assert [w["code"] for w in again["warnings"]] == ["MEETING_ALREADY_RECORDED"], again
    early = RecordBranchMeeting(command_id=uuid.uuid4(), site_id="mt1", kind=MeetingKind.lecture,
                                held_on=f.DAY - dt.timedelta(days=1), topic="党课", attendance=3)
    assert (await client.send(ACTIVITIES, early))["error"]["code"] == "MEETING_BEFORE_BRANCH"

    async def held() -> bool:
        m = (await client.query("views", "site", {"site_id": "mt1"}))["data"]["activities"]["meetings"]
        return m["held"] == 4

    assert await eventually(held)

    async def as_of(day: str) -> dict:
        reply = await client.query("views", "site", {"site_id": "mt1", "as_of": day, "as_of_basis": "business"})
        return {x["kind"]: x for x in reply["data"]["meetings_due"]}

    june = await as_of("2020-06-30")  # all held this period but 党课 and 组织生活会; nothing owed from before June
    assert not june["themed_day"]["due"] and not june["general_assembly"]["due"] and june["lecture"]["due"]
    assert not any(x["overdue"] for x in june.values()) and "committee" not in june
    july = await as_of("2020-07-31")  # a new month and quarter: 主题党日 due again, June's was held
    assert july["themed_day"]["due"] and not july["themed_day"]["overdue"] and july["general_assembly"]["due"]
    august = await as_of("2020-08-01")  # July's 主题党日 was missed
    assert august["themed_day"]["overdue"] and not august["general_assembly"]["overdue"]
    city = (await client.query("views", "city", {"as_of": "2020-08-01", "as_of_basis": "business"}))["data"]
    assert city["activities"]["meetings"]["overdue"] >= 1
    assert city["activities"]["meetings"]["by_kind"]["themed_day"]["overdue"] >= 1


@pytest.mark.usefixtures("platform")
async def test_an_application_obliges_a_talk_and_completion_moots_it(client: GongdiClient):
    if "SubmitApplication" not in membership.COMMANDS:
        pytest.skip("membership has no SubmitApplication command yet (ApplicationSubmitted is its event)")
    assert (await client.send(MEMBERSHIP, f.register("ap2")))["ok"]
    applied = await client.send_dict(MEMBERSHIP, "SubmitApplication", {
        "site_id": "ap2", "person_id": "w1", "name": "农民工甲", "gender": "male", "birth_date": "1990-05-01",
        "applied_on": "2020-06-15", "unit_kind": "construction", "unit_name": "施工单位", "job": "worker",
        "section": "一工段"})
    assert applied["ok"], applied

    async def obligation() -> list:
        reply = await client.query("views", "talks", {"site_id": "ap2"})  # SITE_NOT_FOUND until it reaches the views
        return [t for t in (reply["data"] or {}).get("open", []) if t["reason"] == "application"]

    assert await eventually(obligation), "no application talk obligation"
    [talk] = await obligation()
    assert talk["member_id"] == "w1" and talk["created_on"] == "2020-06-15" and talk["due_on"] == "2020-07-15"

    done = await client.send_dict(MEMBERSHIP, "CompleteSite", {"site_id": "ap2", "completed_on": "2020-09-01"})
    assert done["ok"], done

    async def mooted() -> bool:
        talks = (await client.query("views", "site", {"site_id": "ap2"}))["data"]["activities"]["talks"]
        return talks["open"] == 0 and talks["mooted"] == 1 and talks["done"] == 0

    assert await eventually(mooted)
    late = await client.send_dict(ACTIVITIES, "RecordTalk", {"site_id": "ap2", "obligation_id": talk["obligation_id"],
                                                            "talked_by": "书记", "talked_on": "2020-09-02"})
    assert late["error"]["code"] == "OBLIGATION_ALREADY_CLOSED"


@pytest.mark.usefixtures("platform")
async def test_a_completed_site_takes_nothing_dated_after_its_completion(client: GongdiClient):
    assert (await client.send(MEMBERSHIP, f.register("cx")))["ok"]
    assert (await client.send_dict(MEMBERSHIP, "CompleteSite", {"site_id": "cx", "completed_on": "2020-09-01"}))["ok"]

    def lesson(on: str) -> dict:
        return {"site_id": "cx", "kind": "night_school", "title": "安全生产法", "held_on": on, "headcount": 20}

    def support(on: str) -> dict:
        return {"site_id": "cx", "village": "马洋村", "kind": "donation", "given_on": on, "quantity": "100"}

    # activities and liaison learn the completion from membership's events, a moment after the reply
    assert await eventually(lambda: settled(None, client))
    error = (await client.send_dict(ACTIVITIES, "RecordActivity", lesson("2020-09-02")))["error"]
    assert (error["code"], error["field"]) == ("SITE_COMPLETED", "held_on") and "2020-09-01 竣工" in error["message"]
    error = (await client.send_dict("liaison", "RecordVillageSupport", support("2020-09-03")))["error"]
    assert (error["code"], error["field"]) == ("SITE_COMPLETED", "given_on"), error
    # What happened before the completion is still recorded, late
    assert (await client.send_dict(ACTIVITIES, "RecordActivity", lesson("2020-08-30")))["ok"]
    assert (await client.send_dict("liaison", "RecordVillageSupport", support("2020-09-01")))["ok"]


@pytest.mark.usefixtures("platform")
async def test_a_duplicate_meeting_is_retracted_from_the_views_and_kept_in_the_history(client: GongdiClient):
    await site_with_branch(client, "rt1", ["r1", "r2", "r3"])
    meeting = RecordBranchMeeting(command_id=uuid.uuid4(), site_id="rt1", kind=MeetingKind.themed_day,
                                  held_on=dt.date(2020, 6, 5), topic="学习党章", attendance=3)
    first = await client.send(ACTIVITIES, meeting)
    twice = await client.send(ACTIVITIES, meeting.model_copy(update={"command_id": uuid.uuid4()}))
    assert first["ok"] and [w["code"] for w in twice["warnings"]] == ["MEETING_ALREADY_RECORDED"]

    async def site() -> dict:
        return (await client.query("views", "site", {"site_id": "rt1"}))["data"]

    async def meetings_listed(n: int) -> bool:
        return [r["record"] for r in (await site())["records"]].count("meeting") == n

    assert await eventually(lambda: meetings_listed(2))
    listed = (await site())["records"][0]
    assert listed["title"] == "学习党章" and listed["kind"] == "themed_day" and listed["day"] == "2020-06-05"
    extra = twice["events"][0]["event_id"]
    retract = RetractRecord(command_id=uuid.uuid4(), site_id="rt1", record=RecordKind.meeting,
                            record_id=twice["command_id"], reason="重复提交")  # a meeting's id: its command's
    done = await client.send(ACTIVITIES, retract)
    assert done["ok"], done
    assert await eventually(lambda: meetings_listed(1))
    assert (await site())["activities"]["meetings"]["held"] == 1
    # By business time the duplicate never was: on its own day the site held one 主题党日.
    june = await client.query("views", "site", {"site_id": "rt1", "as_of": "2020-06-30", "as_of_basis": "business"})
    assert june["data"]["activities"]["meetings"]["held"] == 1
    # Once only: the same retraction again names the record and writes nothing.
    again = await client.send(ACTIVITIES, retract.model_copy(update={"command_id": uuid.uuid4()}))
    assert (again["error"]["code"], again["error"]["field"]) == ("RECORD_NOT_FOUND", "record_id")
    told = (await history(client, "site", "rt1"))["data"]
    lines = told["events"]
    said = {line["event_id"]: line["what"] for line in told["reading"]["lines"]}
    told_why = "2020-06-05 撤销记录 主题党日《学习党章》，原因：重复提交"  # its day said once
    assert any(w.startswith(told_why) for w in said.values()), said
    assert said[extra].endswith("（已撤销）")  # the record withdrawn says so; the one kept does not
    assert not said[first["events"][0]["event_id"]].endswith("（已撤销）")
    withdrawn = [e for e in lines if e["type"] == "RecordRetracted"]
    assert len(withdrawn) == 1 and withdrawn[0]["payload"]["reason"] == "重复提交"
    assert withdrawn[0]["payload"]["what"] == "2020-06-05 主题党日《学习党章》"
    assert extra in {e["event_id"] for e in lines}  # the retracted record stays in the log


@pytest.mark.usefixtures("platform")
async def test_a_talk_recorded_by_mistake_is_retracted_and_its_obligation_is_owed_again(client: GongdiClient):
    """Before, a talk recorded for the wrong member closed that member's obligation for good: the views counted a
    talk never held, and nobody could correct it."""
    await site_with_branch(client, "rt2", ["t1", "t2", "t3"])  # a branch needs three full members

    async def open_talks() -> dict[str, str]:
        listed = (await client.query("views", "talks", {"site_id": "rt2"}))["data"]["open"]
        return {t["obligation_id"]: t["member_id"] for t in listed}

    async def records() -> list[dict]:
        return (await client.query("views", "site", {"site_id": "rt2"}))["data"]["records"]

    assert await eventually(lambda: _has(open_talks, 3))
    owed = next(o for o, m in (await open_talks()).items() if m == "t1")
    talk = RecordTalk(command_id=uuid.uuid4(), site_id="rt2", obligation_id=uuid.UUID(owed), talked_by="支部书记",
                      talked_on=dt.date(2020, 6, 3))
    held = await client.send(ACTIVITIES, talk)
    assert held["ok"], held
    assert await eventually(lambda: _has(open_talks, 2))
    [listed] = [r for r in await records() if r["record"] == "talk"]
    assert (listed["record_id"], listed["kind"], listed["day"]) == (owed, "new_arrival", "2020-06-03")
    assert listed["title"] == "李四（t1）"
    retract = RetractRecord(command_id=uuid.uuid4(), site_id="rt2", record=RecordKind.talk, record_id=owed,
                            reason="谈话对象选错")
    done = await client.send(ACTIVITIES, retract)
    assert done["ok"] and [e["type"] for e in done["events"]] == ["RecordRetracted"], done
    assert await eventually(lambda: _has(open_talks, 3))  # owed again, and no longer retractable
    assert owed in await open_talks() and not [r for r in await records() if r["record"] == "talk"]
    told = (await history(client, "member", "t1"))["data"]["reading"]["lines"]
    said = {line["type"]: line["what"] for line in told}
    assert said["TalkHeld"].endswith("（已撤销）")
    assert said["RecordRetracted"] == ("2020-06-03 撤销记录 李四(t1)，谈心谈话（新来党员必谈），原因：谈话对象选错，"
                                      "谈话任务重新打开")
    again = await client.send(ACTIVITIES, talk.model_copy(update={"command_id": uuid.uuid4()}))
    assert again["ok"], again  # the talk really held can be recorded now
    assert await eventually(lambda: _has(open_talks, 2))


@pytest.mark.usefixtures("platform")
async def test_a_violation_and_a_zone_entered_by_mistake_are_retracted_with_the_talk_the_violation_caused(
        client: GongdiClient):
    """Before, neither could be withdrawn: a violation entered for the wrong member owed a talk for good."""
    await site_with_branch(client, "rt4", ["v1", "v2", "v3"])
    wrong = RecordSafetyViolation(command_id=uuid.uuid4(), site_id="rt4", member_id="v2",
                                  occurred_on=dt.date(2020, 6, 8), description="高处作业未系安全带")
    zone = DesignateZone(command_id=uuid.uuid4(), site_id="rt4", zone_id="z-rt4", name="一号工区", area="K1-K3",
                         responsible=["v1", "v3"], designated_on=dt.date(2020, 6, 9))
    recorded = await client.send(ACTIVITIES, wrong)
    assert recorded["ok"] and (await client.send(ACTIVITIES, zone))["ok"], recorded

    async def site() -> dict:
        return (await client.query("views", "site", {"site_id": "rt4"}))["data"]

    async def listed() -> dict[str, dict]:
        return {r["record"]: r for r in (await site())["records"] if r["record"] in ("violation", "zone")}

    async def owed_talks() -> dict[str, str]:
        found = (await client.query("views", "talks", {"site_id": "rt4"}))["data"]["open"]
        return {t["obligation_id"]: t["reason"] for t in found}

    assert await eventually(lambda: _has(listed, 2))
    [owed] = [o for o, reason in (await owed_talks()).items() if reason == "safety_violation"]
    shown = await listed()
    assert (shown["violation"]["record_id"], shown["violation"]["day"]) == (str(wrong.command_id), "2020-06-08")
    assert shown["violation"]["title"] == "李四（v2）：高处作业未系安全带"
    assert (shown["zone"]["record_id"], shown["zone"]["title"], shown["zone"]["count"]) == ("z-rt4", "一号工区", 2)
    assert owed in await owed_talks() and (await site())["activities"]["zones"] == 1
    of_a_kind = (await client.query("views", "records", {"site_id": "rt4", "record": "zone"}))["data"]
    assert [r["record_id"] for r in of_a_kind["records"]] == ["z-rt4"] and of_a_kind["more"] is False
    for kind, ident in ((RecordKind.violation, str(wrong.command_id)), (RecordKind.zone, "z-rt4")):
        done = await client.send(ACTIVITIES, RetractRecord(command_id=uuid.uuid4(), site_id="rt4", record=kind,
                                                           record_id=ident, reason="记错"))
        assert done["ok"], done
    assert await eventually(lambda: _has(listed, 0))
    assert owed not in await owed_talks() and (await site())["activities"]["zones"] == 0
    told = (await history(client, "member", "v2"))["data"]["reading"]["lines"]
    said = {line["type"]: line["what"] for line in told}
    assert said["SafetyViolationRecorded"].endswith("（已撤销）")
    assert "未谈的谈话任务一并撤销" in said["RecordRetracted"], said
    again = await client.send(ACTIVITIES, zone.model_copy(update={"command_id": uuid.uuid4()}))
    assert again["ok"], again  # its name is free again


async def _has(listing: Callable[[], Awaitable[dict]], n: int) -> bool:
    return len(await listing()) == n


@pytest.mark.usefixtures("platform")
async def test_points_awarded_by_mistake_are_retracted_from_the_ranking_and_the_year_has_room_again(
        client: GongdiClient):
    """Before, points entered wrong stood for good: counted in the ranking and filling the category's year."""
    await site_with_branch(client, "rt3", ["q1", "q2", "q3"])
    wrong = AwardPoints(command_id=uuid.uuid4(), site_id="rt3", member_id="q1", category=PointsCategory.innovation,
                        points=8, awarded_on=dt.date(2020, 6, 5), reason="提出模板加固改进")
    assert (await client.send(ACTIVITIES, wrong))["ok"]

    async def site() -> dict:
        return (await client.query("views", "site", {"site_id": "rt3"}))["data"]

    async def ranked(points: int) -> bool:
        return [m["points"] for m in (await site())["points_ranking"]["members"]] == [points]

    assert await eventually(lambda: ranked(8))
    [listed] = [r for r in (await site())["records"] if r["record"] == "points"]
    assert (listed["record_id"], listed["kind"], listed["count"]) == (str(wrong.command_id), "innovation", 8)
    right = wrong.model_copy(update={"command_id": uuid.uuid4(), "points": 5})
    over = await client.send(ACTIVITIES, right)
    assert over["error"]["code"] == "POINTS_OVER_WEIGHT", over  # 8 + 5 over the 10 innovation weighs
    retract = RetractRecord(command_id=uuid.uuid4(), site_id="rt3", record=RecordKind.points,
                            record_id=str(wrong.command_id), reason="分值记错")
    assert (await client.send(ACTIVITIES, retract))["ok"]
    assert (await client.send(ACTIVITIES, right.model_copy(update={"command_id": uuid.uuid4()})))["ok"]
    assert await eventually(lambda: ranked(5))
    told = (await history(client, "member", "q1"))["data"]["reading"]["lines"]
    said = [line["what"] for line in told if line["type"] in ("PointsAwarded", "RecordRetracted")]
    assert said[0].endswith("（已撤销）") and not said[-1].endswith("（已撤销）")
    assert any("撤销记录" in w and "原因：分值记错" in w for w in said), said
    # Two members on the same total share a rank (before: 1 and 2)
    other = right.model_copy(update={"command_id": uuid.uuid4(), "member_id": "q2"})
    assert (await client.send(ACTIVITIES, other))["ok"]

    async def tied() -> bool:
        return [m["rank"] for m in (await site())["points_ranking"]["members"]] == [1, 1]

    assert await eventually(tied)
    # A new year's first award is the latest year, and the year before is still given, one by one (before, the
    # summary said the latest year alone: one award turned the figure from a year's whole to a single entry)
    next_year = right.model_copy(update={"command_id": uuid.uuid4(), "member_id": "q3", "points": 4,
                                         "awarded_on": dt.date(2021, 1, 8)})
    assert (await client.send(ACTIVITIES, next_year))["ok"]

    async def by_year() -> bool:
        return (await site())["activities"]["points"]["years"] == [
            {"year": 2021, "sites": 1, "members": 1, "total": 4}, {"year": 2020, "sites": 1, "members": 2, "total": 10}]

    assert await eventually(by_year)
    assert (await site())["activities"]["points"]["total"] == 4
    ranking = (await site())["points_ranking"]  # the new year's, and the one before it still
    assert (ranking["year"], [m["points"] for m in ranking["members"]]) == (2021, [4])
    assert (ranking["earlier"]["year"], [m["rank"] for m in ranking["earlier"]["members"]]) == (2020, [1, 1])

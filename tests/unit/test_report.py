"""The yearly report rendered from fixed views: its sentences carry the views' figures, nothing else, and the same
views give the same HTML and PDF bytes, in this process and in another."""
from __future__ import annotations

import copy
import datetime as dt
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from pypdf import PdfReader

from contracts.city import City
from contracts.queries import CityQuery
from contracts.timeline import CITY_TZ
from gongdi.report import refusal, write_report
from gongdi.report.charts import Rect, layout, svg
from gongdi.report.gather import as_of_params
from gongdi.report.html import render_html
from gongdi.report.model import Report, Views, build
from gongdi.report.pdf import CANNOT_START, FONT, _line_texts, _p, _styles, render_pdf
from gongdi.report.text import charts, num, sections, support, tables

CITY = City(code="fuding", name="福鼎市", townships={"shacheng": "沙埕镇", "bailin": "白琳镇", "yushan": "嵛山镇"},
            departments={"jiaotong": "交通运输局", "shuili": "水利局"})
BY_YEAR_END = {"as_of": "2020-12-31", "as_of_basis": "business"}


def activities(zones: int, teams: tuple[int, int, int], posts: int, points: int, talks_done: int) -> dict[str, Any]:
    kinds = ("policy_consultation", "opinion_collection", "safety_patrol", "quality_supervision", "skills_mentoring",
             "epidemic_prevention")
    return {
        "zones": zones, "teams": dict(zip(("vanguard", "assault", "emergency"), teams, strict=True)),
        "posts": {k: posts for k in kinds}, "post_kinds": 6 if posts else 0, "work_points": points,
        "innovations": 6, "innovations_adopted": 5, "visits": {"section": 10, "crew": 9, "dormitory": 8},
        "talks": {"open": 100, "overdue": 37, "done": talks_done}, "talks_by_method": {"in_person": 150, "phone": 3},
        "birthdays_this_month": 21,
        "lessons": {"night_school": {"sessions": 10, "attendance": 525},
                    "micro_lesson": {"sessions": 0, "attendance": 0}},
    }


def liaison(wage_petitions: int = 0) -> dict[str, Any]:
    states = ("reported", "mediating", "resolved", "petitioned")
    return {
        "meetings": 20, "meeting_items": {"open": 4, "overdue": 4, "resolved": 26,
                                          "by_unit": {"township": {"open": 4, "overdue": 4}}},
        "compliance": {"quality": {"met": 10, "not_met": 0, "unassessed": 0},
                       "progress": {"met": 9, "not_met": 1, "unassessed": 0}},
        "cobuilding": {"agreements": 1, "items": 7, "completed": 5,
                       "by_agreement": [{"site_id": "tangyuan", "agreement_id": "a1", "village": "白琳镇棠园村",
                                         "items": 7, "completed": 5}]},
        "disputes": {"wages": dict(zip(states, (0, 0, 2, wage_petitions), strict=True)),
                     "neighbours": dict(zip(states, (0, 1, 0, 0), strict=True))},
        "petitions": wage_petitions, "wage_petitions": wage_petitions,
        "support": {"road_hardening": {"total": 200, "unit": "米"}, "donation": {"total": 30000, "unit": "元"},
                    "poverty_visit": {"total": 6000, "unit": "元"}, "transport": {"total": 0, "unit": "车次"}},
        "support_by_village": [
            {"village": "点头镇马洋村", "kind": "donation", "total": 30000, "unit": "元"},
            {"village": "点头镇马洋村", "kind": "road_hardening", "total": 200, "unit": "米"},
            {"village": "点头镇马洋村", "kind": "poverty_visit", "total": 6000, "unit": "元"}],
    }


def site(site_id: str, township: str, qualifies: bool, branch: str | None) -> dict[str, Any]:
    return {"site_id": site_id, "name": f"工地{site_id}", "township": township, "qualifies": qualifies,
            "branch": branch, "gap": qualifies and branch is None, "completed_on": None}


def city_view(**more: Any) -> dict[str, Any]:
    return {
        "city": "fuding", "city_name": "福鼎市", "projects": 82, "completed": 0, "workers": 12708, "members": 251,
        "full_members": 226, "branches": 10,
        "coverage": {"qualifying": 34, "covered": 10, "rule": "造价≥5000万元且工期≥24个月"},
        "gaps": [{"site_id": "xm-010", "name": "沙埕镇学校扩建工程10", "township": "shacheng", "full_members": 2},
                 {"site_id": "xm-001", "name": "白琳镇道路改造工程01", "township": "bailin", "full_members": 2}],
        "should_form_branch": [{"site_id": "xm-002", "name": "白琳镇安置房项目02", "township": "bailin",
                                "full_members": 3}],
        "townships": [],
        "by_month": [{"month": "2020-03", "arrivals": 251, "departures": 0, "sites_started": 82}],
        "activities": activities(60, (18, 16, 11), 10, 7, 153), "liaison": liaison(),
        "snapshot": {"seq": 1187, "at": "2026-11-24T23:56:27+00:00"}, **more,
    }


def views(city: dict[str, Any] | None = None, params: dict[str, str] | None = None) -> Views:
    shacheng = {"projects": 5, "workers": 2295, "members": 44, "branches": 1,
                "sites": [site("shachengwan", "shacheng", True, "沙埕湾支部"), site("xm-010", "shacheng", True, None)],
                "activities": activities(6, (3, 3, 2), 1, 7, 40), "liaison": liaison()}
    bailin = {"projects": 6, "workers": 844, "members": 25, "branches": 1,
              "sites": [site("tangyuan", "bailin", True, "棠园支部"), site("xm-001", "bailin", True, None)],
              "activities": activities(6, (2, 2, 1), 1, 0, 20), "liaison": liaison()}
    department = {"projects": 16, "workers": 4735, "members": 97, "branches": 4, "sites": [],
                  "activities": activities(24, (8, 7, 5), 4, 7, 70), "liaison": liaison()}
    return Views(city=city or city_view(), townships={"shacheng": shacheng, "bailin": bailin, "yushan": None},
                 departments={"jiaotong": department, "shuili": {}},
                 params=BY_YEAR_END if params is None else params)


def report(**kw: Any) -> Report:
    return build(CITY, 2020, views(**kw))


def text(r: Report) -> str:
    return "\n".join(p for s in sections(r) for p in s.paragraphs)


def test_the_sentences_carry_the_views_figures_as_the_seed_writes_them():
    said = text(report())
    for phrase in ("现有重点工程项目82个", "从业人员12708人", "党员251人", "“工地党员责任区”60个", "等45支",
                   "6类党员示范岗共60个", "“党建引领示范工点”7个（沙埕镇7个）", "已覆盖10个，覆盖率29.4%",
                   "“空白点”2个：沙埕镇学校扩建工程10（沙埕镇）、白琳镇道路改造工程01（白琳镇）",
                   "完成必谈谈话153人次", "联席会议20次", "共建清单7项，已完成5项", "捐款3万元", "慰问贫困户6000元",
                   "硬化道路200米", "没有因薪资纠纷出现上访"):
        assert phrase in said, phrase
    assert "12,708" not in said  # sentences as the seed; tables group digits
    assert num(12708) == "12708"


def test_wage_petitions_are_said_when_there_are_some():
    r = report(city=city_view(liaison=liaison(wage_petitions=2)))
    assert "其中因薪资纠纷上访2起" in text(r)


def test_figures_the_platform_does_not_record_are_never_made_up():
    said = text(report())
    assert "平台尚未记录，本报告暂不统计" in said
    for seed_figure in ("28名", "48名", "32名", "39人", "18人"):
        assert seed_figure not in said
    developed = {"developed": 28, "backbone_trained": 48, "recommended_to_management": 32, "applications": 39,
                 "activists": 18}
    said = text(report(city=city_view(development=developed)))
    for phrase in ("发展党员28名", "培养党员骨干48名", "推荐32名党员骨干进入项目管理层", "有39人向组织递交入党申请书",
                   "其中18人纳入入党积极分子培养"):
        assert phrase in said, phrase


def test_backbone_figures_come_from_the_activities_talent_keys():
    talent = {"backbone_trained": 48, "recommended_management": 32, "recommended_crew_leaders": 6,
              "promoted_management": 3}
    alone = city_view(activities={**activities(60, (18, 16, 11), 10, 7, 153), "talent": talent})
    said = text(report(city=alone))
    assert "培养党员骨干48名" in said and "推荐32名党员骨干进入项目管理层" in said and "平台尚未记录" in said
    membership = {"developed": 28, "applications": 39, "activists": 18}
    said = text(report(city={**alone, "development": membership}))
    assert "发展党员28名，培养党员骨干48名，先后推荐32名党员骨干进入项目管理层" in said and "平台尚未记录" not in said


def test_a_years_applications_activists_and_confirmations_are_that_years():
    """Before, the 2021 report said 39 applied when all 39 had applied in 2020, and said nothing of 转正."""
    talent = {"backbone_trained": 0, "recommended_management": 0}
    standing = {"developed": 28, "developed_this_year": 0, "applied": 39, "activists": 18, "applied_this_year": 0,
                "activists_this_year": 0, "confirmed_this_year": 1, "overdue": 27}
    city = city_view(activities={**activities(60, (18, 16, 11), 10, 7, 153), "talent": talent}, development=standing)
    said = text(report(city=city))
    assert "优秀农民工有0人向组织递交入党申请书，其中0人纳入入党积极分子培养" in said
    assert "本年度1名预备党员转为正式党员。" in said
    # 预备期满未转正 as of the year's end: the views asked as of that day count it against that day.
    assert "截至年末，27名预备党员预备期已满，尚未讨论转正。" in said
    live = text(build(CITY, 2020, views(city=city, params={})))
    # Asked as they are now, it depends on the day asked: left out (VOLATILE).
    assert "本年度1名预备党员转为正式党员。" in live and "预备期已满" not in live


def test_a_year_not_yet_over_is_reported_up_to_today_and_says_so():
    r = report(params={"as_of": "2026-11-26", "as_of_basis": "business"})
    assert "数据截至 2026年11月26日（按业务日期，本年度尚未结束）" in render_html(r)
    today = dt.datetime.now(CITY_TZ).date()
    assert as_of_params(CityQuery, today.year)["as_of"] == today.isoformat()
    assert as_of_params(CityQuery, 2020)["as_of"] == "2020-12-31"


def test_the_report_says_as_of_when_and_in_which_sense():
    assert "数据截至 2020年12月31日（按业务日期）" in render_html(report())
    now = render_html(report(params={}))
    assert "数据为平台当前视图" in now and "以后的记录" not in now
    later = city_view(by_month=[{"month": "2021-01", "arrivals": 1, "departures": 0, "sites_started": 0}])
    assert "视图中有2020年以后的记录" in render_html(report(city=later, params={}))


def test_what_depends_on_the_day_asked_does_not_change_the_report():
    moved = city_view()
    moved["snapshot"] = {"seq": 1187, "at": "2027-01-01T00:00:00+00:00"}
    moved["activities"] = {**moved["activities"], "birthdays_this_month": 3,
                           "talks": {**moved["activities"]["talks"], "overdue": 99}}
    moved["liaison"] = copy.deepcopy(moved["liaison"])
    moved["liaison"]["meeting_items"]["overdue"] = 0
    moved["liaison"]["meeting_items"]["by_unit"]["township"]["overdue"] = 0
    assert render_html(report(city=moved)) == render_html(report())
    assert render_pdf(report(city=moved)) == render_pdf(report())


def test_tables_per_township_and_department_add_up():
    r = report()
    townships, departments, gaps, villages = tables(r)
    assert [row[0] for row in townships.rows] == ["沙埕镇", "白琳镇", "嵛山镇"]  # the city file's order
    assert townships.rows[0][1:4] == ("5", "2,295", "44") and townships.rows[2][1:] == ("0",) * 13
    assert townships.total is not None and townships.total[1:4] == ("11", "3,139", "69")
    assert departments.rows[0][:4] == ("交通运输局", "16", "4,735", "97")
    assert [row[1] for row in gaps.rows] == ["沙埕镇学校扩建工程10", "白琳镇道路改造工程01"]
    assert ("点头镇马洋村", "捐款", "30,000元") in villages.rows


def test_the_html_is_one_self_contained_file_with_charts_and_the_same_twice():
    r = report()
    page = render_html(r)
    assert page == render_html(report())
    assert page.count("<svg") == len(charts(r)) == 4
    assert "<script" not in page and "src=" not in page and "href=" not in page and "@import" not in page
    assert "各乡镇（街道）党员人数" in page and "空白点" in page and "<td class=\"n\">3,139</td>" in page


def test_a_chart_draws_one_bar_per_value_and_says_each_total():
    coverage = charts(report())[1]
    width, _, shapes = layout(coverage)
    bars = [s for s in shapes if isinstance(s, Rect) and s.h > 9]
    assert len(bars) == 4  # 沙埕镇 covered 1 + gap 1, 白琳镇 covered 1 + gap 1, 嵛山镇 nothing
    assert all(b.x >= 0 and b.x + b.w <= width for b in bars)
    drawn = svg(coverage)
    assert ">1/2</text>" in drawn and ">0/0</text>" in drawn and "已组建党支部" in drawn


def test_the_pdf_is_the_same_twice_and_holds_the_figures():
    r = report()
    pdf = render_pdf(r)
    assert pdf.startswith(b"%PDF-") and pdf == render_pdf(report())
    words = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for phrase in ("重点工程项目82个", "从业人员12708人", "党员251人", "60个", "45支", "数据截至 2020年12月31日"):
        assert phrase in words, phrase


def test_no_line_of_the_pdf_starts_with_closing_punctuation():
    words = "".join(page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(report()))).pages)
    starts = [line.strip()[:1] for line in words.splitlines() if line.strip()]
    assert not [s for s in starts if s in CANNOT_START]


@pytest.mark.parametrize("tail", ["，后面还有一些文字，以及更多的文字。", "。」后面还有文字", "，，，，后面&<文字"])
def test_a_wrapped_sentence_moves_the_character_before_its_punctuation_down(tail: str):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    style = _styles()["body"]
    plain_bad = ours_bad = 0
    for n in range(10, 40):
        text = "全" * n + tail
        plain = Paragraph(text.replace("&", "&amp;").replace("<", "&lt;"), style)
        plain.wrap(300, 1000)
        plain_bad += any(line[0] in CANNOT_START for line in _line_texts(plain)[1:])
        ours = _p(text, style)
        ours.wrap(300, 1000)
        lines = _line_texts(ours)
        assert "".join(lines) == text
        ours_bad += any(line[0] in CANNOT_START for line in lines[1:])
    assert plain_bad and not ours_bad


def test_another_process_writes_the_same_bytes(tmp_path: Path):
    """reportlab keeps state per process (fonts, counters): a fresh process must give the very same files."""
    here = write_report(report(), tmp_path / "here")
    script = ("import sys; from pathlib import Path; from tests.unit.test_report import report; "
              "from gongdi.report import write_report; write_report(report(), Path(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "there")], check=True,
                   cwd=Path(__file__).resolve().parents[2])
    for path in here:
        assert (tmp_path / "there" / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_views_are_asked_as_of_the_years_end_when_their_contract_takes_it():
    class Live(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Past(Live):
        as_of: str | None = None
        as_of_basis: str = "business"

    assert as_of_params(Live, 2020) == {}
    assert as_of_params(Past, 2020) == BY_YEAR_END


@pytest.mark.parametrize(("who", "may"), [("city", True), ("auditor", True), ("dashboard", True),
                                          ("township.shacheng", False), ("department.jiaotong", False),
                                          ("site.shacheng.shachengwan", False), ("setup", False), ("", False)])
def test_who_may_make_the_citys_report(who: str, may: bool):
    assert (refusal(who) is None) is may


def test_a_years_report_counts_what_happened_that_year_and_what_stood_at_its_end():
    """Before, the 2021 report repeated 2020's talks, meetings and disputes as 2021's own."""
    before = city_view()  # the end of 2020
    now = city_view(activities={**activities(60, (18, 16, 11), 10, 7, 160),
                                "talks_by_reason": {"new_arrival": 150, "application": 10}},
                    liaison={**liaison(), "meetings": 23,
                             "meeting_items": {"open": 2, "resolved": 31, "by_unit": {}},
                             "disputes": {"wages": {"reported": 1, "mediating": 0, "resolved": 3, "petitioned": 0},
                                          "neighbours": {"reported": 0, "mediating": 0, "resolved": 1,
                                                         "petitioned": 0}}})
    before["activities"]["talks_by_reason"] = {"new_arrival": 150, "application": 3}
    r = build(CITY, 2021, Views(city=now, townships={}, departments={},
                                params={"as_of": "2021-12-31", "as_of_basis": "business"},
                                earlier=Views(city=before, townships={}, departments={})))
    said = text(r)
    assert "全年开展“三进三必谈”" in said
    assert "完成必谈谈话0人次，与入党申请人谈话7人次" in said and "年末尚有100人次待谈" in said
    assert "全年召开工地党建工作联席会议3次，议定事项3项，解决5项，年末尚在办理2项" in said
    assert "工地纠纷调解站全年受理矛盾纠纷2起，其中薪资纠纷2起。截至年末累计受理5起" in said
    assert "依托工地夜校" not in said  # no lesson held this year: none listed (before: 2020's, as 2021's)


def test_the_first_years_report_counts_everything_as_that_years():
    empty = {"activities": {}, "liaison": {}}
    with_earlier = build(CITY, 2020, Views(city=city_view(), townships={}, departments={}, params=BY_YEAR_END,
                                           earlier=Views(city=empty, townships={}, departments={})))
    said = text(with_earlier)
    for phrase in ("完成必谈谈话153人次", "全年召开工地党建工作联席会议20次，议定事项30项", "工地夜校10场525人次",
                   "工地纠纷调解站共受理矛盾纠纷3起", "捐款3万元", "硬化道路200米"):
        assert phrase in said, phrase


def _compliance(**targets: tuple[int, int, int, int, int]) -> dict[str, Any]:
    keys = ("met", "not_met", "unassessed", "met_this_year", "not_met_this_year")
    return {t: dict(zip(keys, counts, strict=True)) for t, counts in targets.items()}


def test_the_double_targets_are_those_assessed_in_the_year():
    """Before, the 2021 report gave each target's latest assessment, 2020's included, as 2021's result."""
    li = {**liaison(), "compliance": _compliance(quality=(10, 0, 1, 4, 0), progress=(9, 1, 1, 2, 1))}
    said = text(report(city=city_view(liaison=li)))
    assert "本年度考核结果：质量达标4个、待考核1个；进度达标2个、未达标1个、待考核1个。" in said, said


def test_a_year_without_new_assessments_says_so():
    li = {**liaison(), "compliance": _compliance(quality=(10, 0, 0, 0, 0), progress=(9, 1, 0, 0, 0))}
    said = text(report(city=city_view(liaison=li)))
    assert "“双达标”责任书本年度没有新的考核（此前已考核20个目标）。" in said
    assert "考核结果" not in said


def test_a_year_not_yet_over_says_its_disputes_up_to_today():
    """Before, a report of the current year said 全年受理 and 截至年末 in November."""
    before = city_view()
    now = city_view(liaison={**liaison(), "disputes": {
        "wages": {"reported": 1, "mediating": 0, "resolved": 3, "petitioned": 0},
        "neighbours": {"reported": 0, "mediating": 0, "resolved": 1, "petitioned": 0}}})
    r = build(CITY, 2026, Views(city=now, townships={}, departments={},
                                params={"as_of": "2026-11-26", "as_of_basis": "business"},
                                earlier=Views(city=before, townships={}, departments={})))
    said = text(r)
    assert "工地纠纷调解站本年以来受理矛盾纠纷2起，其中薪资纠纷2起。截至目前累计受理5起" in said, said
    assert "全年" not in said and "年末" not in said


def test_a_year_without_village_support_is_said_in_the_years_own_words():
    """Before, a year not over said 本年度 here while every other section said 本年以来."""
    assert support({}, "本年以来") == "本年以来平台没有记录工地对驻地村的帮扶。"
    assert support({}, "全年") == "全年平台没有记录工地对驻地村的帮扶。"

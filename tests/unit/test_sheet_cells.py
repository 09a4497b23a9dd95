"""One messy cell at a time: each form people type becomes the value a command wants, and each form that cannot be
understood is refused with its machine code and the column's Chinese name, never echoing the value."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from contracts.city import DEFAULT_CITY_FILE, load_city
from contracts.membership import Gender, Job, MemberStatus, Relation, UnitKind
from gongdi.sheets import cells
from gongdi.sheets.cells import CellRefusal
from gongdi.sheets.columns import ALSO, GENDER, JOB, RELATION, STATUS, UNIT_KIND

CITY = load_city(DEFAULT_CITY_FILE)
JUNE_FIRST = dt.date(2020, 6, 1)


def refused(read, value, *args) -> CellRefusal:
    with pytest.raises(CellRefusal) as caught:
        read(value, "某列", *args)
    assert caught.value.column == "某列"
    assert "某列" in caught.value.text()
    return caught.value


# ---- dates ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "2020-06-01", "2020-6-1", "2020/6/1", "2020/06/01", "2020.6.1", "2020.06.01", "2020年6月1日", "2020年06月01日",
    "2020年6月1号", "20200601", "２０２０-０６-０１", "２０２０年６月１日", " 2020-06-01 ", "2020 年 6 月 1 日",
    "\u30002020-06-01\u3000", "2020-06-01 00:00:00", "2020-06-01T08:30", "2020/6/1 8:30",
])
def test_a_day_written_as_text_in_a_common_form(value):
    assert cells.day(value, "入党日期") == JUNE_FIRST


def test_a_real_date_cell_and_a_datetime_cell():
    assert cells.day(JUNE_FIRST, "入党日期") == JUNE_FIRST
    assert cells.day(dt.datetime(2020, 6, 1, 14, 5), "入党日期") == JUNE_FIRST


@pytest.mark.parametrize("value", [43983, 43983.0, 43983.75, "43983", "４３９８３"])
def test_an_excel_serial_number(value):
    assert cells.day(value, "进场日期") == JUNE_FIRST


def test_an_early_serial_allows_for_excels_29_february_1900():
    assert cells.day(1, "进场日期") == dt.date(1900, 1, 1)
    assert cells.day(61, "进场日期") == dt.date(1900, 3, 1)


def test_eight_digits_typed_into_a_number_cell_are_a_day():
    assert cells.day(20200601, "进场日期") == JUNE_FIRST


@pytest.mark.parametrize("value", ["2020-02-30", "2020-13-01", "2021年2月29日", "20201301"])
def test_a_day_that_does_not_exist_is_refused(value):
    error = refused(cells.day, value)
    assert error.code == cells.INVALID_DATE and "不是有效的日期" in error.message


@pytest.mark.parametrize("value", ["明年", "6/1/2020", "20-6-1", "2020年6月", "2020.06", "abc", "2020-06-01x"])
def test_a_day_in_no_known_form_is_refused_with_the_forms_it_takes(value):
    error = refused(cells.day, value)
    assert error.code == cells.INVALID_DATE
    assert error.message == f"无法识别的日期，应写作 {cells.DATE_FORMS}"  # the forms it takes, never the value


@pytest.mark.parametrize("value", [2020, 2020.0])
def test_a_bare_year_is_refused_as_such(value):
    error = refused(cells.day, value)
    assert error.code == cells.INVALID_DATE and "只有年份" in error.message


@pytest.mark.parametrize("value", [True, dt.time(8, 30), -5, 3_000_000])
def test_a_time_a_bool_or_an_impossible_serial_is_no_day(value):
    assert refused(cells.day, value).code == cells.INVALID_DATE


@pytest.mark.parametrize("value", [None, "", "   ", "\u3000\u3000"])
def test_a_blank_day_is_missing(value):
    assert refused(cells.day, value).code == cells.MISSING_VALUE


# ---- numbers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "wan"), [
    (9000, "9000"), (9000.0, "9000"), (9000.5, "9000.5"), ("9000", "9000"), ("9,000", "9000"),
    ("１２，０００", "12000"),
    ("9000万元", "9000"), ("9000 万元", "9000"), ("9,000万", "9000"), ("0.9亿", "9000"), ("1.2亿元", "12000"),
    ("90,000,000元", "9000"), ("¥9000", "9000"), ("￥9,000万元", "9000"), (" 9000 ", "9000"), ("1,234.5", "1234.5"),
    (Decimal("9000.00"), "9000.00"),
])
def test_a_cost_in_wan_yuan_however_written(value, wan):
    assert cells.amount_wan(value, "总投资(万元)") == Decimal(wan)


def test_a_cost_with_a_unit_has_no_exponent_nor_trailing_zeros():
    assert str(cells.amount_wan("0.9亿", "总投资(万元)")) == "9000"
    assert str(cells.amount_wan("90,000,000元", "总投资(万元)")) == "9000"


@pytest.mark.parametrize("value", ["九千万", "9,00", "12,3456", "9000美元", "约9000", "9.000.000", "1e5", True,
                                   dt.date(2020, 1, 1)])
def test_a_number_that_cannot_be_read_is_refused(value):
    error = refused(cells.amount_wan, value)
    assert error.code == cells.INVALID_NUMBER


def test_a_plain_number():
    assert cells.number("1,000", "人数") == Decimal(1000)
    assert cells.number(12, "人数") == 12
    assert refused(cells.number, "十二").code == cells.INVALID_NUMBER
    assert refused(cells.number, None).code == cells.MISSING_VALUE


@pytest.mark.parametrize(("value", "months"), [
    (30, 30), (30.0, 30), ("30", 30), ("30个月", 30), ("30月", 30), ("３０", 30), ("2.5年", 30), ("3年", 36),
    (" 24 个月 ", 24),
])
def test_a_duration_in_months(value, months):
    assert cells.months(value, "计划工期(月)") == months


@pytest.mark.parametrize("value", ["30.5", 30.5, "2.45年", "两年", "半年多"])
def test_a_duration_that_is_no_whole_number_of_months_is_refused(value):
    assert refused(cells.months, value).code == cells.INVALID_NUMBER


# ---- coded values ---------------------------------------------------------------------------------------------

GENDERS = cells.words(GENDER, ALSO)
STATUSES = cells.words(STATUS, ALSO)
RELATIONS = cells.words(RELATION, ALSO)
JOBS = cells.words(JOB, ALSO)
UNITS = cells.words(UNIT_KIND, ALSO)


@pytest.mark.parametrize(("value", "gender"), [("男", Gender.male), ("女", Gender.female), (" 男 ", Gender.male),
                                               ("男性", Gender.male), ("female", Gender.female), ("MALE", Gender.male)])
def test_gender(value, gender):
    assert cells.choice(value, "性别", GENDERS, GENDER) is gender


@pytest.mark.parametrize(("value", "status"), [
    ("正式", MemberStatus.full), ("正式党员", MemberStatus.full), ("预备", MemberStatus.probationary),
    ("预备党员", MemberStatus.probationary), ("预 备", MemberStatus.probationary), ("full", MemberStatus.full)])
def test_member_status(value, status):
    assert cells.choice(value, "党员状态", STATUSES, STATUS) is status


@pytest.mark.parametrize(("value", "relation"), [
    ("转入", Relation.transferred), ("组织关系转入", Relation.transferred), ("流动", Relation.mobile),
    ("流动党员", Relation.mobile), ("mobile", Relation.mobile)])
def test_relation(value, relation):
    assert cells.choice(value, "组织关系", RELATIONS, RELATION) is relation


@pytest.mark.parametrize(("value", "job"), [("农民工", Job.worker), ("工人", Job.worker), ("技术人员", Job.technician),
                                            ("技术员", Job.technician), ("管理人员", Job.manager)])
def test_job(value, job):
    assert cells.choice(value, "岗位", JOBS, JOB) is job


@pytest.mark.parametrize(("value", "unit"), [
    ("建设单位", UnitKind.owner), ("业主", UnitKind.owner), ("业主单位", UnitKind.owner), ("设计单位", UnitKind.design),
    ("设计", UnitKind.design), ("施工单位", UnitKind.construction), ("施工", UnitKind.construction),
    ("监理单位", UnitKind.supervision), ("监理", UnitKind.supervision), ("主管部门", UnitKind.department),
    ("驻地乡镇/村", UnitKind.township), ("驻地乡镇／村", UnitKind.township), ("村", UnitKind.township)])
def test_unit_kind_with_the_common_variants(value, unit):
    assert cells.choice(value, "单位类别", UNITS, UNIT_KIND) is unit


def test_an_unknown_word_is_refused_listing_the_words_it_takes():
    error = refused(cells.choice, "男生女生", GENDERS, GENDER)
    assert error.code == cells.INVALID_CHOICE and "男、女" in error.message and "男生女生" not in error.message
    assert refused(cells.choice, None, GENDERS, GENDER).code == cells.MISSING_VALUE


@pytest.mark.parametrize(("value", "yes"), [("是", True), ("否", False), ("Y", True), ("n", False), (True, True),
                                            (False, False), ("√", True), ("×", False), (1, True), ("0", False)])
def test_yes_or_no(value, yes):
    assert cells.yes_no(value, "是否转入") is yes


def test_yes_or_no_refuses_anything_else():
    assert refused(cells.yes_no, "也许").code == cells.INVALID_CHOICE
    assert refused(cells.yes_no, "").code == cells.MISSING_VALUE


# ---- text and ids -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    ("张三", "张三"), ("  张三  ", "张三"), ("张\u3000三", "张三"), ("张 三", "张三"), ("\u3000张三\u3000", "张三"),
    ("中交三航局（福建）", "中交三航局（福建）"), ("China  Railway 三局", "China Railway 三局"), ("一工段\n", "一工段"),
    ("ＡＢＣ工段", "ABC工段"), ("第１工段", "第1工段"), ("张\u200b三", "张三"), (1001, "1001"), (1001.0, "1001"),
])
def test_text_is_trimmed_and_folded_but_keeps_chinese_punctuation(value, text):
    assert cells.text(value, "姓名") == text


def test_blank_text_is_missing_unless_optional():
    assert refused(cells.text, "\u3000").code == cells.MISSING_VALUE
    assert cells.text(None, "备注", required=False) == ""
    assert refused(cells.text, dt.time(8, 0)).code == cells.INVALID_TEXT


@pytest.mark.parametrize(("value", "ident"), [("xm-002", "xm-002"), ("XM-002", "xm-002"), (" xm-002 ", "xm-002"),
                                              ("ｘｍ－００２", "xm-002"), (1001, "1001"), (1001.0, "1001"),
                                              ("m_41", "m_41")])
def test_an_id_is_folded_and_lower_cased(value, ident):
    assert cells.ident(value, "党员编号") == ident


@pytest.mark.parametrize("value", ["沙埕湾", "-xm", "xm 002!", "a" * 64])
def test_an_id_with_other_characters_is_refused(value):
    assert refused(cells.ident, value).code == cells.INVALID_ID


def test_a_blank_id_is_none_so_one_is_derived():
    assert cells.ident(None, "党员编号") is None
    assert cells.ident("  ", "党员编号") is None


def test_an_id_and_a_name_are_told_apart():
    assert cells.looks_like_id("XM-002") and not cells.looks_like_id("宝龙世家") and not cells.looks_like_id("")


# ---- the city's townships and departments -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["bailin", "BAILIN", "白琳镇", "白琳", " 白 琳 镇 ", "福鼎市白琳镇", "白琳镇党委",
                                   "ｂａｉｌｉｎ"])
def test_a_township_by_its_code_or_its_chinese_name(value):
    assert cells.township(value, "所属乡镇", CITY.townships, CITY.name) == "bailin"


def test_a_street_and_an_ethnic_township_by_their_short_names():
    assert cells.township("桐山", "所属乡镇", CITY.townships, CITY.name) == "tongshan"
    assert cells.township("硖门", "所属乡镇", CITY.townships, CITY.name) == "xiamen"


def test_a_township_of_no_configured_name_is_refused():
    error = refused(cells.township, "宁德市蕉城区", CITY.townships, CITY.name)
    assert error.code == cells.UNKNOWN_TOWNSHIP and "桐山街道" in error.message


@pytest.mark.parametrize("value", ["交通运输局", "jiaotong", "福鼎市交通运输局", " 交通运输局 "])
def test_a_department_by_its_name_or_code(value):
    assert cells.department(value, "主管部门", CITY.departments, CITY.name) == "交通运输局"


def test_a_department_not_configured_is_refused_listing_the_configured_ones():
    error = refused(cells.department, "交通局", CITY.departments, CITY.name)
    assert error.code == cells.UNKNOWN_DEPARTMENT and "交通运输局" in error.message

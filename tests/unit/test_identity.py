"""Identities and their rights as pure rules: names parse, each role may write and read what it should."""
from __future__ import annotations

import pytest

from contracts.city import DEFAULT_CITY_FILE, load_city
from contracts.identity import PLATFORM_ACCOUNT, ForbiddenError, Identity, Role
from gongdi.ops.credentials import Credentials


@pytest.mark.parametrize("name", ["city", "auditor", "dashboard", "township.diantou", "site.diantou.binhai-2",
                                  "department.shuili"])
def test_names_round_trip(name: str):
    assert Identity.parse(name).name == name


@pytest.mark.parametrize("name", ["", "admin", "township.", "township.Diantou", "site.diantou", "township.a.b",
                                  "policy:新来党员必谈"])
def test_names_no_role_has_are_refused(name: str):
    with pytest.raises(ValueError):
        Identity.parse(name)


def test_users_of_another_account_are_not_people():
    assert Identity.parse("membership", PLATFORM_ACCOUNT).role is Role.PLATFORM
    with pytest.raises(ValueError):
        Identity.parse("city", "SOMEONE_ELSES")


def test_scope_is_the_token_of_the_command_subject():
    assert Identity(Role.CITY).scope == "city"
    assert Identity(Role.TOWNSHIP, township="bailin").scope == "bailin"
    assert Identity(Role.SITE, township="bailin", site="x").scope == "bailin"
    assert Identity(Role.AUDITOR).scope is None and Identity(Role.DASHBOARD).scope is None


def test_a_secretary_may_not_register_a_site_even_its_own():
    secretary = Identity(Role.SITE, township="bailin", site="x")
    with pytest.raises(ForbiddenError) as denied:
        secretary.check_write("bailin", "bailin", "x", registering=True)
    assert denied.value.rule == "OTHER_SITE"
    assert "不能登记工地" in str(denied.value) and "不能记录 x" not in str(denied.value)  # not "only x, not x"
    Identity(Role.TOWNSHIP, township="bailin").check_write("bailin", "bailin", "x", registering=True)


def test_a_secretary_is_refused_any_other_site_alike_existing_or_not():
    """Before, another township's site was OTHER_TOWNSHIP and a made-up id went on to SITE_NOT_FOUND: a secretary
    could tell which site ids exist and whose they are."""
    secretary = Identity(Role.SITE, township="bailin", site="x")
    refusals = set()
    for township, site_id in (("diantou", "far"), ("bailin", "near"), (None, "made-up")):
        with pytest.raises(ForbiddenError) as denied:
            secretary.check_write("bailin", township, site_id)
        refusals.add((denied.value.rule, str(denied.value).replace(site_id, "…")))
    assert refusals == {("OTHER_SITE", "site.bailin.x 只能记录本工地 x，不能记录 …")}


def test_reading_a_site():
    assert Identity(Role.TOWNSHIP, township="bailin").may_read_site("bailin", None, "x")
    assert not Identity(Role.TOWNSHIP, township="bailin").may_read_site("diantou", None, "x")
    assert Identity(Role.DEPARTMENT, department="shuili").may_read_site("diantou", "shuili", "x")
    assert not Identity(Role.DEPARTMENT, department="shuili").may_read_site("diantou", "jiaotong", "x")
    assert not Identity(Role.DASHBOARD).may_read_site("diantou", "shuili", "x")
    assert Identity(Role.AUDITOR).may_read_site("diantou", "shuili", "x")
    assert not Identity(Role.SITE, township="diantou", site="y").may_read_site("diantou", None, "x")


def test_a_secretary_is_added_only_for_a_known_township_and_a_slug_site(tmp_path):
    city = load_city(DEFAULT_CITY_FILE)
    creds = Credentials.ensure(tmp_path, city, ["membership"])
    before = (tmp_path / "credentials.json").read_text()
    for site, township in (("Bad Site", "diantou"), ("x", "atlantis"), ("a.b", "diantou")):
        with pytest.raises(ValueError):
            creds.add_secretary(city, site, township)
    assert (tmp_path / "credentials.json").read_text() == before and creds.secretaries == {}
    assert creds.add_secretary(city, "binhai-2", "diantou").name == "site.diantou.binhai-2"
    assert "site.diantou.binhai-2" in Credentials.load(tmp_path / "credentials.json").nats
    # one secretary a site: a mistyped township no longer replaces the real one
    with pytest.raises(ValueError, match=r"已有工地书记身份 site\.diantou\.binhai-2"):
        creds.add_secretary(city, "binhai-2", "bailin")
    assert creds.secretaries == {"binhai-2": "diantou"}
    assert creds.add_secretary(city, "binhai-2", "diantou").name == "site.diantou.binhai-2"  # again: the same one


def test_reading_a_department():
    for everything in (Identity(Role.CITY), Identity(Role.AUDITOR), Identity(Role.DASHBOARD),
                       Identity.parse("views", PLATFORM_ACCOUNT)):
        assert everything.may_read_department("jiaotong") and everything.may_read_department("shuili")
    shuili = Identity.parse("department.shuili")
    assert shuili.may_read_department("shuili") and not shuili.may_read_department("jiaotong")
    assert not Identity(Role.TOWNSHIP, township="diantou").may_read_department("shuili")
    assert not Identity(Role.SITE, township="diantou", site="x").may_read_department("shuili")


def test_another_townships_site_is_refused_naming_both_townships_by_name_when_known():
    township = Identity(Role.TOWNSHIP, township="bailin", name="township.bailin")
    with pytest.raises(ForbiddenError) as named:
        township.check_write("bailin", "diantou", "far-1", names={"bailin": "白琳镇", "diantou": "点头镇"})
    assert named.value.rule == "OTHER_TOWNSHIP"
    assert named.value.message == "工地 far-1 属于 点头镇，township.bailin（白琳镇）只能记录本乡镇的工地"
    with pytest.raises(ForbiddenError) as coded:
        township.check_write("bailin", "diantou", "far-1")
    assert coded.value.message == "工地 far-1 属于 diantou，township.bailin 只能记录本乡镇的工地"

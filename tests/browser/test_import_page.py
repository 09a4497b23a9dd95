"""The upload page (导入) in chromium against a fresh platform: a township logs in, downloads the template, checks a
small roster (dry run), imports it and sees each row's result (成功, the refusal with its code, FORBIDDEN for another
township's site), and gets the file back with its 导入结果 column; importing it again shows 已导入."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from gongdi.sheets.columns import MEMBER_COLUMNS
from tests.browser.conftest import launched
from tests.conftest import Servers
from tests.integration.gateway import Gateway, eventually, post, running_gateway, site

TOWNSHIP = "township.bailin"
HEADERS = [h for h, _ in MEMBER_COLUMNS]


@pytest.fixture(scope="module")
def gw(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A fresh platform with two sites: up-own in 白琳镇 (the township's) and up-far in 点头镇."""
    with running_gateway(servers, tmp_path_factory.mktemp("import-page")) as gateway:
        with gateway.client("city") as city:
            for site_id, township in (("up-own", "bailin"), ("up-far", "diantou")):
                reply = post(city, "membership", "RegisterSite", site(site_id, township))
                assert reply.status_code == 200, reply.text
            # the page's dry run finds sites through the views: wait until they show both
            assert eventually(lambda: all(city.get("/api/views/site", params={"site_id": s}).status_code == 200
                                          for s in ("up-own", "up-far")), timeout=30)
        yield gateway


@pytest.fixture(scope="module")
def chrome(chromium: str, gw: Gateway) -> Iterator[Any]:
    with launched(chromium) as browser:
        yield browser


def roster(path: Path) -> Path:
    rows = [
        ["工地编号", "党员编号", "姓名", "性别", "入党日期", "党员状态", "单位类别", "单位名称", "岗位", "工段/班组",
         "原党组织", "组织关系", "进场日期"],
        ["up-own", "up-1", "林晓燕", "女", "2010年7月1日", "正式党员", "施工", "中交三航局", "农民工", "一工段",
         "某村党支部", "流动", "2020/7/1"],
        ["up-own", "up-2", "陈海", "男", "2010-07-01", "预备", "监理", "某监理公司", "技术员", "二工段", "某村党支部",
         "转入", "2020-13-01"],
        ["up-far", "up-3", "郑波", "男", "2010-07-01", "正式", "业主", "某公司", "管理人员", "一工段", "某村党支部",
         "流动", "2020-07-01"],
    ]
    rows.append(rows[1])  # row 5 repeats row 2: sent once
    assert rows[0] == HEADERS
    path.write_bytes(("\ufeff" + "\r\n".join(",".join(r) for r in rows) + "\r\n").encode())
    return path


def log_in(chrome: Any, gw: Gateway, user: str, path: str) -> Any:
    context = chrome.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN", base_url=gw.url,
                                 accept_downloads=True)
    page = context.new_page()
    page.goto(path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#user", user)
    page.fill("#password", gw.password(user))
    page.click("#login-submit")
    page.wait_for_url(re.compile(re.escape(path) + r"$"))
    return page


def statuses(page: Any) -> dict[str, tuple[str, str]]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#import-rows tbody tr')]
        .map((tr) => [tr.dataset.row, [tr.dataset.status, tr.dataset.code || '']]))""")


def test_a_township_checks_imports_and_reimports_a_roster_and_sees_each_rows_result(
        chrome: Any, gw: Gateway, tmp_path: Path, artefacts: Path):
    page = log_in(chrome, gw, TOWNSHIP, "/import")
    try:
        page.wait_for_selector('#nav-import[aria-current="page"]', timeout=10_000)
        assert "本乡镇" in page.locator("#write-note").inner_text()
        with page.expect_download() as got:
            page.click("#template-xlsx")
        template = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()))  # saved without its extension
        assert [c.value for c in template.active[1]] == HEADERS
        assert got.value.suggested_filename == "党员花名册模板.xlsx"

        file = roster(tmp_path / "花名册.csv")
        page.set_input_files("#import-file", str(file))
        page.check("#import-dry-run")
        assert page.locator("#import-submit").inner_text() == "开始校验"
        page.click("#import-submit")
        page.wait_for_selector('#import-result:not([hidden]) #import-rows tbody tr', timeout=15_000)
        # Row 4 is another township's site: the dry run already says it is out of this identity's reach.
        assert statuses(page) == {"2": ["valid", ""], "3": ["refused", "INVALID_DATE"],
                                  "4": ["refused", "UNKNOWN_SITE"], "5": ["already", ""]}
        # A repeated row in a check is a repeat, not 已导入 (nothing was imported).
        repeated = page.locator('#import-rows tr[data-row="5"]').inner_text()
        assert "重复行" in repeated and "与第 2 行相同" in repeated and "已导入" not in repeated
        assert "与前面的行重复 1" in page.locator("#import-summary").inner_text()
        assert page.locator("#import-progress").is_hidden()  # a dry run sends nothing
        with gw.client("city") as city:
            assert city.get("/api/views/site", params={"site_id": "up-own"}).json()["data"]["members_present"] == 0

        page.uncheck("#import-dry-run")
        page.click("#import-submit")
        page.wait_for_function("() => document.querySelector('#import-rows tr[data-status=\"recorded\"]')",
                               timeout=15_000)
        assert statuses(page) == {"2": ["recorded", ""], "3": ["refused", "INVALID_DATE"],
                                  "4": ["refused", "FORBIDDEN"], "5": ["already", ""]}
        # the progress the page was sent as rows went out: rows 2 and 4 (row 3 is refused before sending)
        assert page.evaluate("window.__importProgress") == [{"done": 1, "total": 2}, {"done": 2, "total": 2}]
        bar = page.locator("#import-progress")
        assert bar.is_visible() and bar.evaluate("b => [b.value, b.max]") == [2, 2]
        refused = page.locator('#import-rows tr[data-row="3"]').inner_text()
        assert "进场日期" in refused and "不是有效的日期" in refused
        assert "OTHER_TOWNSHIP" in page.locator('#import-rows tr[data-row="4"]').inner_text()
        assert page.locator('[data-figure="recorded"]').inner_text() == "1"
        page.screenshot(path=str(artefacts / "import-results.png"), full_page=True)

        with page.expect_download() as got:
            page.click("#result-file")
        assert got.value.suggested_filename == "花名册-导入结果.csv"
        lines = Path(got.value.path()).read_bytes().decode("utf-8-sig").splitlines()
        assert lines[0].endswith(",导入结果") and lines[1].endswith(",成功") and "FORBIDDEN" in lines[3]

        page.check("#only-refused")
        assert page.locator('#import-rows tr[data-row="2"]').is_hidden()
        page.uncheck("#only-refused")
        page.click("#import-submit")
        # row 2 itself: row 5, its repeat, was 'already' in the last result too
        page.wait_for_function(
            "() => document.querySelector('#import-rows tr[data-row=\"2\"][data-status=\"already\"]')", timeout=15_000)
        assert statuses(page)["2"] == ["already", ""] and page.locator('[data-figure="already"]').inner_text() == "2"
    finally:
        page.context.close()


def test_a_file_that_is_no_spreadsheet_is_refused_on_the_page(chrome: Any, gw: Gateway, tmp_path: Path):
    page = log_in(chrome, gw, "city", "/import")
    try:
        junk = tmp_path / "名册.xlsx"
        junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
        page.set_input_files("#import-file", str(junk))
        page.click("#import-submit")
        error = page.locator("#import-error")
        error.wait_for(timeout=30_000)
        assert "NOT_A_SPREADSHEET" in error.inner_text() and "Excel" in error.inner_text()
        assert page.locator("#import-result").is_hidden()
    finally:
        page.context.close()



def test_a_reading_login_is_not_offered_an_import_the_server_would_refuse(chrome: Any, gw: Gateway):
    """Before, a dashboard login was offered 开始校验, which the server answers 403 READ_ONLY_ROLE."""
    page = log_in(chrome, gw, "dashboard", "/import")
    try:
        page.wait_for_function("() => document.getElementById('import-submit')?.disabled", timeout=10_000)
        assert "不能导入或校验表格" in page.locator("#write-note").inner_text()
        assert page.evaluate("() => [...document.querySelectorAll('#import-form input, #import-form button')]"
                             ".every((el) => el.disabled)")
    finally:
        page.context.close()

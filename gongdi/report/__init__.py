"""The yearly report: ask the views (gather), make plain data (model), write it in Chinese as HTML and PDF."""
from __future__ import annotations

from pathlib import Path

from contracts.identity import LABELS, Identity, Role
from contracts.rules import LIMITS
from contracts.timeline import city_today
from gongdi.ops.client import GongdiClient
from gongdi.report.gather import ReportError, gather
from gongdi.report.html import render_html
from gongdi.report.model import Report, build
from gongdi.report.pdf import render_pdf
from gongdi.service.settings import Settings

__all__ = ["Report", "ReportError", "file_names", "make_report", "refusal", "write_report", "year_refusal"]

# The report is the city's: whoever sees every township and department. It names projects and villages, never a
# person, so the dashboard (aggregates, no names) may make it too; a township, department or site may not.
REPORT_ROLES = (Role.CITY, Role.AUDITOR, Role.DASHBOARD)
# An as-of view replays the log up to the year's end for each of the ~30 queries: allow it time.
QUERY_TIMEOUT = 120.0


def year_refusal(year: int) -> str | None:
    """Why there is no report of `year`, or None: the years from the one after the earliest plausible day (a report
    sets each figure beside the year before's) to the city's current year (a year to come has none). The CLI and
    the HTTP API both ask this: before, one took 1921 to fail on an `as_of` nobody gave, the other refused < 2000."""
    first, last = LIMITS.earliest_day.year + 1, city_today().year
    if first <= year <= last:
        return None
    return f"年度应在 {first} 至 {last} 之间，不是 {year} (a year with a report)"


def refusal(user: str) -> str | None:
    """Why `user` may not make the city's report, or None when it may."""
    try:
        role = Identity.parse(user).role
    except ValueError:
        return f"{user or '匿名'} 不是平台的身份，不能生成年度报告 (not a person's identity)"
    if role in REPORT_ROLES:
        return None
    allowed = "、".join(LABELS[r] for r in REPORT_ROLES)
    return f"{user} 无权生成全市年度报告：只有{allowed}可以 (the report covers the whole city) [NOT_YOURS]"


async def make_report(settings: Settings, year: int) -> Report:
    """Asks the views as the settings' identity and builds the report of `year`."""
    city = settings.city()
    client = await GongdiClient.connect(settings, timeout=QUERY_TIMEOUT)
    try:
        views = await gather(client, city, year)
    finally:
        await client.close()
    return build(city, year, views)


def file_names(year: int) -> tuple[str, str]:
    return f"report-{year}.html", f"report-{year}.pdf"


def write_report(report: Report, folder: Path) -> tuple[Path, Path]:
    """Writes report-<year>.html and report-<year>.pdf into `folder` (made if missing); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html_name, pdf_name = file_names(report.year)
    html_path, pdf_path = folder / html_name, folder / pdf_name
    html_path.write_bytes(render_html(report).encode("utf-8"))
    pdf_path.write_bytes(render_pdf(report))
    return html_path, pdf_path

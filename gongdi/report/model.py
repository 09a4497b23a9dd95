"""The yearly report as plain data: built from the views' answers (city, townships, departments), nothing else."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.city import City

# The views' figures that depend on the day a view is asked, not on the log: they would make two reports of the
# same log differ, so the report drops them (a talk "overdue" today was not overdue at the year's end).
VOLATILE = (("snapshot",), ("activities", "birthdays_this_month"), ("activities", "talks", "overdue"),
            ("liaison", "meeting_items", "overdue"), ("development", "overdue"))
# What a view asked as of a day (the year's end) computes against that day, not the day it was asked: kept then.
AS_OF_THE_DAY = (("development", "overdue"),)

# 三培两推 and membership development: what the seed report quotes (发展党员, 培养骨干, 推荐进入管理层, 入党申请,
# 入党积极分子). The views do not record these yet; a later issue adds them under `development` with these keys,
# and the report then prints them. Until then it says they are not recorded: a figure is never made up.
DEVELOPMENT = "development"
DEVELOPMENT_FIGURES: tuple[tuple[str, str], ...] = (
    ("developed", "在项目工地发展党员{}名"),
    ("backbone_trained", "培养党员骨干{}名"),
    ("recommended_to_management", "先后推荐{}名党员骨干进入项目管理层"),
    ("applications", "优秀农民工有{}人向组织递交入党申请书"),
    ("activists", "其中{}人纳入入党积极分子培养"),
)

# The report's keys read from the activities summary's `talent` (its key there).
TALENT_FIGURES = {"backbone_trained": "backbone_trained", "recommended_to_management": "recommended_management"}

BASIS_LABELS = {"business": "按业务日期", "recorded": "按平台记录时间"}

# The city view's running totals of what happens (talks held, lessons given, disputes received, …): the report of a
# year gives them as the year-end figure less the year before's, so 2021 does not repeat 2020's work as its own.
# Everything else (projects, members, zones, open items, …) is what stood at the year's end.
FLOWS: tuple[tuple[str, ...], ...] = (
    ("activities", "visits"), ("activities", "talks", "done"), ("activities", "talks_by_method"),
    ("activities", "talks_by_reason"), ("activities", "lessons"), ("activities", "innovations"),
    ("activities", "innovations_adopted"), ("activities", "talent"),
    ("liaison", "meetings"), ("liaison", "meeting_items", "resolved"), ("liaison", "petitions"),
    ("liaison", "wage_petitions"), ("liaison", "support"),
)


@dataclass(frozen=True)
class Area:
    """One township's or department's row: its figures from its own view (zero when it has no site yet)."""

    code: str
    name: str
    projects: int = 0
    workers: int = 0
    members: int = 0
    branches: int = 0
    qualifying: int = 0
    covered: int = 0
    gaps: int = 0
    zones: int = 0
    teams: int = 0
    posts: int = 0
    work_points: int = 0
    talks_done: int = 0
    disputes: int = 0
    petitions: int = 0
    support: dict[str, int | float] = field(default_factory=dict)


@dataclass(frozen=True)
class SiteBrief:
    name: str
    township: str  # its name
    full_members: int


@dataclass(frozen=True)
class Report:
    year: int
    city_code: str
    city_name: str
    as_of: str | None  # the day the views were asked as of (YYYY-MM-DD), None: asked as they are now
    basis: str | None  # "business" or "recorded", with as_of
    later_records: bool  # the views hold records dated after the year (only possible without as_of)
    yearly: bool  # FLOWS are the year's (the views as of the year before's end were asked too)
    city: dict[str, Any]  # the city view without its volatile figures
    gaps: tuple[SiteBrief, ...]
    should_form: tuple[SiteBrief, ...]
    townships: tuple[Area, ...]
    departments: tuple[Area, ...]

    @property
    def activities(self) -> dict[str, Any]:
        return self.city.get("activities", {})

    @property
    def liaison(self) -> dict[str, Any]:
        """The liaison figures, with each 双达标 target's met and not met as assessed in the year (the views'
        `*_this_year`): a target's latest assessment may be an earlier year's, which is not this year's result."""
        li = self.city.get("liaison", {})
        compliance = li.get("compliance")
        if not isinstance(compliance, dict):
            return li
        yearly = {target: {**counts, "met": counts["met_this_year"], "not_met": counts["not_met_this_year"],
                           "assessed_earlier": counts["met"] + counts["not_met"] - counts["met_this_year"]
                           - counts["not_met_this_year"]}
                  if "met_this_year" in counts else counts for target, counts in compliance.items()}
        return {**li, "compliance": yearly}

    @property
    def development(self) -> dict[str, int] | None:
        """The 三培两推 figures, when the views record them: membership's development path under `development`,
        activities' 培养骨干 and 推荐进入管理层 under `activities.talent` (TALENT_FIGURES)."""
        found = self.city.get(DEVELOPMENT)
        out = dict(found) if isinstance(found, dict) else {}
        if "applied" in out:  # the views' key for applicants not yet development targets (services/views/development)
            out.setdefault("applications", out["applied"])
        # The year's admissions, applications and activists, not all of them up to its end: before, the 2021
        # report said 39 applied, all of them in 2020.
        for key, yearly in (("developed", "developed_this_year"), ("applications", "applied_this_year"),
                            ("activists", "activists_this_year")):
            if yearly in out:
                out[key] = out[yearly]
        talent = self.activities.get("talent")
        if isinstance(talent, dict):
            out.update({key: talent[src] for key, src in TALENT_FIGURES.items() if src in talent})
        return out or None


def stable(view: dict[str, Any], dated: bool = False) -> dict[str, Any]:
    """A copy of a view without the figures that depend on the day it was asked (VOLATILE); `dated`: the view was
    asked as of a day, so those of AS_OF_THE_DAY depend on that day only and stay."""
    out = _copy(view)
    for path in VOLATILE:
        if dated and path in AS_OF_THE_DAY:
            continue
        node = out
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    for unit in out.get("liaison", {}).get("meeting_items", {}).get("by_unit", {}).values():
        unit.pop("overdue", None)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _get(view: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = view
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _less(now: Any, before: Any) -> Any:
    """`now` less `before`, figure by figure (a dict's figures by key; text such as a unit stays)."""
    if isinstance(now, dict):
        return {k: _less(v, before.get(k) if isinstance(before, dict) else None) for k, v in now.items()}
    if isinstance(now, int | float) and not isinstance(now, bool) and isinstance(before, int | float):
        return now - before
    return now


def _disputes_received(view: dict[str, Any]) -> dict[str, int]:
    return {kind: sum(states.values()) for kind, states in (_get(view, ("liaison", "disputes")) or {}).items()}


def during(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The city (or an area's) view of the year: its FLOWS less those of `before`, the view as of the year before's
    end; and `liaison.disputes_received` (by kind) and `liaison.meeting_items.raised`, which the views keep only as
    totals by present state."""
    out = _copy(now)
    items_now, items_before = _get(now, ("liaison", "meeting_items")) or {}, _get(before, ("liaison", "meeting_items"))
    for path in FLOWS:
        node = _get(out, path[:-1])
        if isinstance(node, dict) and path[-1] in node:
            node[path[-1]] = _less(node[path[-1]], _get(before, path))
    li = out.get("liaison")
    if isinstance(li, dict):
        received, earlier = _disputes_received(now), _disputes_received(before)
        li["disputes_received"] = {k: n - earlier.get(k, 0) for k, n in received.items()}
        if isinstance(li.get("meeting_items"), dict):
            items_before = items_before or {}
            li["meeting_items"]["raised"] = (items_now.get("open", 0) + items_now.get("resolved", 0)
                                            - items_before.get("open", 0) - items_before.get("resolved", 0))
        given = {(x["village"], x["kind"]): x["total"] for x in before.get("liaison", {}).get("support_by_village", [])}
        li["support_by_village"] = [{**x, "total": x["total"] - given.get((x["village"], x["kind"]), 0)}
                                    for x in li.get("support_by_village", [])
                                    if x["total"] - given.get((x["village"], x["kind"]), 0)]
    return out


def area(code: str, name: str, view: dict[str, Any] | None, earlier: dict[str, Any] | None = None) -> Area:
    """A township's or department's row from its view (None: the views know no site of it); what happens during
    the year (talks, disputes, petitions) less `earlier`, its view as of the year before's end, when given."""
    if view is None:
        return Area(code, name)
    if earlier is not None:
        view = during(view, earlier)
    sites = [s for s in view.get("sites", []) if s.get("building", not s.get("completed_on"))]
    qualifying = [s for s in sites if s.get("qualifies")]
    a, li = view.get("activities", {}), view.get("liaison", {})
    disputes = li.get("disputes", {})
    return Area(
        code=code, name=name,
        projects=view.get("projects", 0), workers=view.get("workers", 0), members=view.get("members", 0),
        branches=view.get("branches", 0),
        qualifying=len(qualifying), covered=sum(1 for s in qualifying if s.get("branch")),
        gaps=sum(1 for s in sites if s.get("gap")),
        zones=a.get("zones", 0), teams=sum(a.get("teams", {}).values()), posts=sum(a.get("posts", {}).values()),
        work_points=a.get("work_points", 0), talks_done=a.get("talks", {}).get("done", 0),
        disputes=sum(li["disputes_received"].values()) if "disputes_received" in li
        else sum(sum(states.values()) for states in disputes.values()),
        petitions=li.get("petitions", 0),
        support={k: v["total"] for k, v in sorted(li.get("support", {}).items()) if v.get("total")},
    )


def build(city: City, year: int, views: Views) -> Report:
    """The report of `year` from the views' answers; pure, and the same answers give the same report."""
    c = stable(views.city, dated=bool(views.params.get("as_of")))
    before = views.earlier
    if before is not None:
        c = during(c, stable(before.city))
    names = city.townships
    order = {code: i for i, code in enumerate(names)}

    def brief(s: dict[str, Any]) -> SiteBrief:
        return SiteBrief(s["name"], city.township_name(s["township"]), s.get("full_members", 0))

    def by_place(sites: list[dict[str, Any]]) -> tuple[SiteBrief, ...]:
        ordered = sorted(sites, key=lambda s: (order.get(s["township"], len(order)), s["township"], s["name"],
                                               s["site_id"]))
        return tuple(brief(s) for s in ordered)

    last_month = f"{year}-12"
    later = any(m["month"] > last_month and (m["arrivals"] or m["departures"] or m["sites_started"])
                for m in c.get("by_month", []))
    return Report(
        year=year, city_code=c.get("city", city.code), city_name=c.get("city_name", city.name),
        as_of=views.params.get("as_of"), basis=views.params.get("as_of_basis"), later_records=later,
        yearly=before is not None, city=c,
        gaps=by_place(c.get("gaps", [])), should_form=by_place(c.get("should_form_branch", [])),
        townships=tuple(area(code, name, views.townships.get(code), _earlier(before, "townships", code))
                        for code, name in names.items()),
        departments=tuple(area(code, name, views.departments.get(code), _earlier(before, "departments", code))
                          for code, name in city.departments.items()),
    )


def _earlier(before: Views | None, kind: str, code: str) -> dict[str, Any] | None:
    """An area's view as of the year before's end: zeros (an empty view) when it had no site then."""
    if before is None:
        return None
    return getattr(before, kind).get(code) or {}


@dataclass(frozen=True)
class Views:
    """What the views answered: the city, each township (None: no site there) and department, and the parameters
    every query was asked with (`as_of`, `as_of_basis` when the views take them)."""

    city: dict[str, Any]
    townships: dict[str, dict[str, Any] | None]
    departments: dict[str, dict[str, Any]]
    params: dict[str, str] = field(default_factory=dict)
    earlier: Views | None = None  # the same as of the year before's end (what the year's flows are counted from)

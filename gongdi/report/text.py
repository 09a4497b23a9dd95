"""The report's words: its statistics sentences in the seed report's style, its tables and its charts, as data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.activities import LABELS as ACTIVITY_LABELS
from contracts.activities import split_talks_done
from contracts.liaison import LABELS as LIAISON_LABELS
from gongdi.report.model import BASIS_LABELS, DEVELOPMENT_FIGURES, TALENT_FIGURES, Area, Report, SiteBrief

RED, GOLD, GREY, BLUE, GREEN = "#b71c1c", "#d4a017", "#9e9e9e", "#1f5f8b", "#2e7d32"


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]  # more than one: stacked, in this order, with a legend
    unit: str
    ends: tuple[str, ...] | None = None  # what each bar's end says; None: its total and unit


# ---- numbers ----------------------------------------------------------------------------------------------------


def num(value: int | float) -> str:
    """A figure in a sentence as the seed writes it: 12708, not 12,708; a fraction only when there is one."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(int(value))


def grouped(value: int | float) -> str:
    """A figure in a table: 12,708."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{int(value):,}"


def amount(value: int | float, unit: str) -> str:
    """Yuan in round ten-thousands as the seed writes them (捐款3万元, 6000元); other units as they are."""
    if unit == "元" and value >= 10_000 and value % 1_000 == 0:
        return f"{num(value / 10_000)}万元"
    return f"{num(value)}{unit}"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _listed(parts: list[str]) -> str:
    return "、".join(parts)


def _site(s: SiteBrief) -> str:
    return f"{s.name}（{s.township}）"


# ---- the as-of line ---------------------------------------------------------------------------------------------


def as_of_line(r: Report) -> str:
    """Which state of the log the figures are: the year's end by a named basis, or the views as they are now."""
    if r.as_of:
        y, m, d = (int(x) for x in r.as_of.split("-"))
        basis = BASIS_LABELS.get(r.basis or "", r.basis or "")
        unfinished = "，本年度尚未结束" if (m, d) != (12, 31) else ""
        return f"数据截至 {y}年{m}月{d}日" + (f"（{basis}{unfinished}）" if basis or unfinished else "")
    return f"数据为平台当前视图（视图尚不能按日期截取，未截至{r.year}年12月31日）"


def warnings(r: Report) -> list[str]:
    if r.later_records and not r.as_of:
        return [f"注意：视图中有{r.year}年以后的记录，本报告的数字包含这些记录。"]
    return []


def colophon(r: Report) -> str:
    return (f"本报告由工地党建共享记录平台依据{r.city_name}各乡镇、各项目工地记录的事实生成，同一事件日志生成的报告"
            "完全相同；不含随查询日期变化的数字（如逾期待办、本月政治生日），不含任何个人姓名。")


# ---- sentences --------------------------------------------------------------------------------------------------


def sections(r: Report) -> list[Section]:
    c, a, li = r.city, r.activities, r.liaison
    unfinished = bool(r.as_of) and not r.as_of.endswith("-12-31")
    during, at_end = (("本年以来", "目前") if unfinished else ("全年", "年末")) if r.yearly else ("", "")
    out = []

    members, full = c.get("members", 0), c.get("full_members", 0)
    overview = (f"{r.year}年，{r.city_name}现有重点工程项目{num(c.get('projects', 0))}个，"
                f"从业人员{num(c.get('workers', 0))}人，党员{num(members)}人"
                f"（其中正式党员{num(full)}人、预备党员{num(members - full)}人）。")
    if c.get("completed"):
        overview += f"其中已竣工项目{num(c['completed'])}个。"
    out.append(Section("一、基本情况", (overview,)))

    cov = c.get("coverage", {})
    coverage = (f"全市已在{num(c.get('branches', 0))}个项目工地组建工地兼合党支部。按照“{cov.get('rule', '')}”的标准，"
                f"应建立党组织的重点项目工地{num(cov.get('qualifying', 0))}个，已覆盖{num(cov.get('covered', 0))}个，"
                f"覆盖率{percent(cov.get('covered', 0), cov.get('qualifying', 0))}。")
    paragraphs = [coverage]
    if not cov.get("qualifying"):
        paragraphs.append("平台没有记录应覆盖的项目工地。")
    elif r.gaps:
        paragraphs.append(f"尚未覆盖的“空白点”{num(len(r.gaps))}个：{_listed([_site(s) for s in r.gaps])}。")
    else:
        paragraphs.append("应覆盖的项目工地已全部组建党组织，没有“空白点”。")
    if r.should_form:
        paragraphs.append(f"另有{num(len(r.should_form))}个工地在场正式党员已达到组建党支部的人数、尚未组建党支部，应尽快组建："
                          + _listed([f"{s.name}（{s.township}，正式党员{num(s.full_members)}名）"
                                     for s in r.should_form]) + "。")
    out.append(Section("二、组织覆盖", tuple(paragraphs)))

    if a:
        teams = {k: n for k, n in a.get("teams", {}).items() if n}
        posts = {k: n for k, n in a.get("posts", {}).items() if n}
        platform = (f"设置“工地党员责任区”{num(a.get('zones', 0))}个，"
                    + (f"组建{_listed([ACTIVITY_LABELS[k] for k in teams])}等{num(sum(teams.values()))}支"
                       f"（{_listed([f'{ACTIVITY_LABELS[k]}{num(n)}支' for k, n in teams.items()])}）"
                       if teams else "组建党员队伍0支")
                    + (f"，在关键工点设立{_listed([ACTIVITY_LABELS[k] for k in posts])}等"
                       f"{num(a.get('post_kinds', 0))}类党员示范岗共{num(sum(posts.values()))}个。"
                       if posts else "，设立党员示范岗0个。"))
        paragraphs = [platform]
        points = [f"{t.name}{num(t.work_points)}个" for t in r.townships if t.work_points]
        paragraphs.append(f"在施工一线设立“党建引领示范工点”{num(a.get('work_points', 0))}个"
                          + (f"（{_listed(points)}）" if points else "") + "。")
        if a.get("innovations"):
            paragraphs.append(f"开展小发明小革新小改良活动，取得创新成果{num(a['innovations'])}项，"
                              f"其中{num(a.get('innovations_adopted', 0))}项在全项目推广运用。")
        out.append(Section("三、党员作用发挥", tuple(paragraphs)))

        visits = a.get("visits", {})
        talks, methods = a.get("talks", {}), a.get("talks_by_method", {})
        # 三必谈 are the three talks owed to members; an applicant's talk (入党申请人谈话) is said apart.
        reasons = a.get("talks_by_reason")
        required, applicants = (split_talks_done(reasons) if isinstance(reasons, dict)
                                else (talks.get("done", 0), 0))
        care = (f"{during}开展“三进三必谈”，"
                + _listed([f"{ACTIVITY_LABELS[k]}{num(n)}次" for k, n in visits.items()])
                + f"；完成必谈谈话{num(required)}人次"
                + (f"，与入党申请人谈话{num(applicants)}人次" if applicants else "")
                + (f"（以上合计{num(sum(methods.values()))}人次，其中"
                   f"{_listed([f'{ACTIVITY_LABELS[k]}{num(n)}人次' for k, n in methods.items() if n])}）"
                   if any(methods.values()) else "")
                + f"，{at_end}尚有{num(talks.get('open', 0))}人次待谈。")
        lessons = [f"{ACTIVITY_LABELS[k]}{num(v['sessions'])}场{num(v['attendance'])}人次"
                   for k, v in a.get("lessons", {}).items() if v.get("sessions")]
        paragraphs = [care]
        if lessons:
            paragraphs.append(f"依托工地夜校、微党课进工地等阵地，{during}共开展{_listed(lessons)}。")
        out.append(Section("四、组织关爱与教育培训", tuple(paragraphs)))

    out.append(Section("五、“三培两推”人才培养", (development(r, at_end or "年末"),)))

    if li:
        items = li.get("meeting_items", {})
        raised = items.get("raised", items.get("open", 0) + items.get("resolved", 0))
        paragraphs = [f"{during}召开工地党建工作联席会议{num(li.get('meetings', 0))}次，议定事项{num(raised)}项，"
                      f"解决{num(items.get('resolved', 0))}项，{at_end}尚在办理{num(items.get('open', 0))}项。"]
        compliance = li.get("compliance", {})
        targets = []
        for key, v in compliance.items():
            part = f"{LIAISON_LABELS[key]}达标{num(v.get('met', 0))}个"
            if v.get("not_met"):
                part += f"、未达标{num(v['not_met'])}个"
            if v.get("unassessed"):
                part += f"、待考核{num(v['unassessed'])}个"
            targets.append(part)
        shown, year = ("met", "not_met", "unassessed"), during or "本年度"
        if any(v.get(k) for v in compliance.values() for k in shown):
            paragraphs.append(f"制定党建工作和工程建设“双达标”责任书，{year}考核结果：{'；'.join(targets)}。")
        elif earlier := sum(v.get("assessed_earlier", 0) for v in compliance.values()):
            paragraphs.append(f"党建工作和工程建设“双达标”责任书{year}没有新的考核"
                              f"（此前已考核{num(earlier)}个目标）。")
        cb = li.get("cobuilding", {})
        if cb.get("agreements"):
            villages = [f"{x['village']}{num(x['items'])}项、已完成{num(x['completed'])}项"
                        for x in cb.get("by_agreement", [])]
            paragraphs.append(f"工地党支部与驻地村签订《党建联创协议》{num(cb['agreements'])}份，创建共建清单"
                              f"{num(cb.get('items', 0))}项，已完成{num(cb.get('completed', 0))}项"
                              f"（{_listed(villages)}）。")
        out.append(Section("六、联席会议、双达标与党建联创", tuple(paragraphs)))
        out.append(Section("七、矛盾纠纷调解与信访", tuple(disputes(li, during or "全年", at_end or "年末"))))
        out.append(Section("八、融入地方社会治理", (support(li, during or "本年度"),)))
    return out


def development(r: Report, at_end: str = "年末") -> str:
    """The 三培两推 figures when the views have them; otherwise that they are not recorded (none is invented)."""
    figures = r.development
    if figures and all(key in figures for key, _ in DEVELOPMENT_FIGURES):
        parts = [text.format(num(figures[key])) for key, text in DEVELOPMENT_FIGURES]
        said = f"实施工地党员人才“三培两推”工程，共{'，'.join(parts[:3])}。{parts[3]}，{parts[4]}。"
        if figures.get("confirmed_this_year"):
            said += f"本年度{num(figures['confirmed_this_year'])}名预备党员转为正式党员。"
        if figures.get("overdue"):  # only in a view asked as of the year's end (model.AS_OF_THE_DAY)
            said += f"截至{at_end}，{num(figures['overdue'])}名预备党员预备期已满，尚未讨论转正。"
        return said
    if figures and all(key in figures for key in TALENT_FIGURES):  # activities' part without membership's
        parts = [text.format(num(figures[key])) for key, text in DEVELOPMENT_FIGURES if key in TALENT_FIGURES]
        return (f"实施工地党员人才“三培两推”工程，共{'，'.join(parts)}。"
                "发展党员、递交入党申请书和入党积极分子的人数，平台尚未记录，本报告暂不统计。")
    return ("发展党员、培养党员骨干、推荐党员骨干进入项目管理层、递交入党申请书和入党积极分子的人数，"
            "平台尚未记录，本报告暂不统计。")


def disputes(li: dict[str, Any], during: str = "全年", at_end: str = "年末") -> list[str]:
    """The disputes paragraph; `during` and `at_end` say the year's stretch (本年以来 and 目前 for a year not over)."""
    by_kind = li.get("disputes", {})
    total = sum(sum(states.values()) for states in by_kind.values())
    received = li.get("disputes_received")
    if isinstance(received, dict) and sum(received.values()) != total:
        # Cases of earlier years are still in the totals by state: the year's cases are said first, by kind, then
        # where all cases stand at its end.
        year = sum(received.values())
        first = (f"工地纠纷调解站{during}受理矛盾纠纷{num(year)}起，其中"
                 + _listed([f"{LIAISON_LABELS[k]}纠纷{num(n)}起" for k, n in received.items() if n]) + "。"
                 if year else f"工地纠纷调解站{during}未受理矛盾纠纷。")
        standing = {s: sum(per[s] for per in by_kind.values()) for s in next(iter(by_kind.values()), {})}
        first += (f"截至{at_end}累计受理{num(total)}起：" + _listed([f"{LIAISON_LABELS[s]}{num(n)}起"
                                                             for s, n in standing.items() if n]) + "。")
        return [first, _petitions(li, during)]
    states: dict[str, int] = {}
    for per_state in by_kind.values():
        for state, n in per_state.items():
            states[state] = states.get(state, 0) + n
    if total:
        kinds = _listed([f"{LIAISON_LABELS[k]}纠纷{num(sum(v.values()))}起" for k, v in by_kind.items()
                         if sum(v.values())])
        outcome = _listed([f"{LIAISON_LABELS[s]}{num(n)}起" for s, n in states.items() if n])
        first = f"工地纠纷调解站共受理矛盾纠纷{num(total)}起，其中{kinds}；{outcome}。"
    else:
        first = f"工地纠纷调解站{during}未受理矛盾纠纷。"
    return [first, _petitions(li, during)]


def _petitions(li: dict[str, Any], during: str) -> str:
    petitions, wages = li.get("petitions", 0), li.get("wage_petitions", 0)
    if petitions:
        second = f"因矛盾纠纷上访{num(petitions)}起，" + (f"其中因薪资纠纷上访{num(wages)}起。" if wages
                                                   else "没有因薪资纠纷出现上访。")
    else:
        second = f"{during}未发生因矛盾纠纷引发的上访，没有因薪资纠纷出现上访。"
    return second


def support(li: dict[str, Any], during: str = "本年度") -> str:
    """The support paragraph; `during` as the other sections say the year (本年以来 for a year not over)."""
    given = [(LIAISON_LABELS[k], v["total"], v["unit"]) for k, v in li.get("support", {}).items() if v.get("total")]
    if not given:
        return f"{during}平台没有记录工地对驻地村的帮扶。"
    villages: dict[str, list[str]] = {}
    for x in li.get("support_by_village", []):
        villages.setdefault(x["village"], []).append(f"{LIAISON_LABELS[x['kind']]}{amount(x['total'], x['unit'])}")
    detail = "；".join(f"{v}：{_listed(parts)}" for v, parts in sorted(villages.items()))
    return (f"工地党组织积极参与驻地镇村建设，{_listed([f'{label}{amount(t, u)}' for label, t, u in given])}"
            + (f"。其中{detail}" if detail else "") + "。")


# ---- tables -----------------------------------------------------------------------------------------------------

AREA_COLUMNS = ("重点工程项目", "从业人员", "党员", "兼合党支部", "应覆盖工地", "已覆盖", "空白点", "党员责任区",
                "党员队伍", "示范岗", "示范工点", "全年受理纠纷", "全年上访")


def _area_values(a: Area) -> tuple[int, ...]:
    return (a.projects, a.workers, a.members, a.branches, a.qualifying, a.covered, a.gaps, a.zones, a.teams,
            a.posts, a.work_points, a.disputes, a.petitions)


def area_table(title: str, first: str, areas: tuple[Area, ...]) -> Table:
    rows = tuple((a.name, *(grouped(v) for v in _area_values(a))) for a in areas)
    sums = [sum(col) for col in zip(*(_area_values(a) for a in areas), strict=True)] if areas else []
    return Table(title, (first, *AREA_COLUMNS), rows, ("合计", *(grouped(v) for v in sums)) if areas else None)


def tables(r: Report) -> list[Table]:
    out = [area_table("各乡镇（街道）工地党建情况", "乡镇（街道）", r.townships),
           area_table("各项目主管部门工地党建情况", "主管部门", r.departments)]
    out.append(Table("空白点（应覆盖而未组建党支部的工地）", ("序号", "工地", "乡镇（街道）", "在场正式党员"),
                     tuple((str(i), s.name, s.township, grouped(s.full_members)) for i, s in enumerate(r.gaps, 1))))
    villages = tuple((x["village"], LIAISON_LABELS[x["kind"]], f"{grouped(x['total'])}{x['unit']}")
                     for x in r.liaison.get("support_by_village", []))
    if villages:
        out.append(Table("帮扶驻地村情况", ("村（镇）", "帮扶内容", "数量"), villages))
    return out


# ---- charts -----------------------------------------------------------------------------------------------------


def charts(r: Report) -> list[Chart]:
    townships = tuple(t.name for t in r.townships)
    out = [
        Chart("各乡镇（街道）党员人数", townships, (Series("党员", RED, tuple(t.members for t in r.townships)),), "人"),
        Chart("各乡镇（街道）应覆盖工地的覆盖情况", townships,
              (Series("已组建党支部", RED, tuple(t.covered for t in r.townships)),
               Series("空白点", GREY, tuple(t.gaps for t in r.townships))), "个",
              tuple(f"{t.covered}/{t.qualifying}" for t in r.townships)),
        Chart("各项目主管部门党员人数", tuple(d.name for d in r.departments),
              (Series("党员", GOLD, tuple(d.members for d in r.departments)),), "人"),
    ]
    by_kind = r.liaison.get("disputes", {})
    if any(sum(v.values()) for v in by_kind.values()):
        states = list(next(iter(by_kind.values())).keys())
        colors = {"reported": GOLD, "mediating": BLUE, "resolved": GREEN, "petitioned": RED}
        out.append(Chart("矛盾纠纷调解情况（按纠纷类型）", tuple(f"{LIAISON_LABELS[k]}纠纷" for k in by_kind),
                         tuple(Series(LIAISON_LABELS[s], colors.get(s, GREY), tuple(v[s] for v in by_kind.values()))
                               for s in states), "起"))
    return out

"""How the CLI prints each view in Chinese."""
from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from contracts.activities import LABELS, split_talks_done
from contracts.city import City
from contracts.identity import LABELS as ROLE_LABELS
from contracts.identity import Identity, Role
from contracts.liaison import LABELS as LIAISON_LABELS
from gongdi.ops.history import Names, actor_label
from gongdi.sheets.columns import UNIT_KIND

# As the site page says them (services/gateway/web/static/app.js, relationLong).
RELATION_LONG = {"transferred": "组织关系转入", "mobile": "流动党员"}


def format_city(d: dict[str, Any]) -> str:
    cov = d["coverage"]
    lines = [
        f"{d['city_name']} 工地党建 · 全市视图",
        f"  重点工程项目 {d['projects']:>8,}" + (f"   (已竣工 {d['completed']})" if d["completed"] else ""),
        f"  从业人员     {d['workers']:>8,}",
        f"  党员         {d['members']:>8,}   (正式党员 {d['full_members']:,})",
        f"  工地党支部   {d['branches']:>8,}",
        f"  应覆盖工地   {cov['qualifying']:>8,}   已覆盖 {cov['covered']}，空白点 {len(d['gaps'])}  ({cov['rule']})",
    ]
    if d["gaps"]:
        lines.append("  空白点: " + "、".join(g["name"] for g in d["gaps"][:8]) + (" …" if len(d["gaps"]) > 8 else ""))
    if d["should_form_branch"]:
        names = "、".join(f"{g['name']}({g['full_members']}名正式党员)" for g in d["should_form_branch"][:6])
        more = " …" if len(d["should_form_branch"]) > 6 else ""
        lines.append(f"  应组建党支部 ({len(d['should_form_branch'])}): {names}{more}")
    lines += format_development(d)
    if "activities" in d:
        lines += format_activities(d["activities"])
    if "liaison" in d:
        lines += format_liaison(d["liaison"])
    if "mobility" in d:
        lines += format_mobility(d["mobility"])
    return "\n".join(lines)


STAGE_LABELS = {"applicant": "入党申请人", "activist": "入党积极分子", "target": "发展对象", "probationary": "预备党员",
                "full": "已转正"}


def format_development(d: dict[str, Any]) -> list[str]:
    """发展党员 figures of a city, township or department, and its branches over the size thresholds."""
    lines = []
    if "development" in d:
        v = d["development"]
        overdue = f"，预备期满未转正 {v['overdue']}" if v.get("overdue") else ""
        lines.append(f"  发展党员 {v['developed']}，入党申请 {v['applied']}，积极分子 {v['activists']}；"
                     f"发展对象 {v['targets']}，预备党员 {v['probationary']}，已转正 {v['full_confirmed']}{overdue}")
    lines += [f"  !! {w['name']} [{w['site_id']}]: {w['warning']}" for w in d.get("branch_warnings", [])]
    return lines


def format_site_development(d: dict[str, Any]) -> list[str]:
    """A site's development path by stage, with names and the day each reached it."""
    lines = []
    day_of = {"applicant": "applied_on", "activist": "activist_on", "target": "target_on",
              "probationary": "admitted_on", "full": "confirmed_on"}
    for stage, people in (d.get("development_candidates") or {}).items():
        if people:
            names = "、".join(f"{x['name']}({x[day_of[stage]]})" for x in people[:12])
            lines.append(f"  {STAGE_LABELS[stage]} {len(people)}: {names}" + (" …" if len(people) > 12 else ""))
    return lines


def format_mobility(mo: dict[str, Any]) -> list[str]:
    """The mobility to-dos of a city, township or department: counts, and the sites with open items."""
    lines = [f"  流动党员     应转接组织关系 {mo['transfer_prompts_open']}，失联党员上报 {mo['escalated']}"
             f"（失联登记 {mo['contact_lost']}）"]
    for x in mo.get("sites", []):
        lines.append(f"    · {x['name']} [{x['site_id']}]：应转接组织关系 {x['transfer_prompts_open']}，"
                     f"失联党员上报 {x['escalated']}")
    return lines


def format_site_mobility(mo: dict[str, Any]) -> list[str]:
    """A site's mobility to-dos by member."""
    lines = [f"  !! 应转接组织关系: {p['name'] or p['member_id']}（{p['arrived_on']} 进场，{p['due_on']} 到期，"
             f"{p['prompted_on']} 提醒）" for p in mo["transfer_prompts"]]
    lines += [f"  !! 失联党员上报: {x['name'] or x['member_id']}（最后联系 {x['last_contact_on']}，"
              f"{x['escalated_on']} 上报）" for x in mo["escalated"]]
    lines += [f"  失联党员: {x['name'] or x['member_id']}（最后联系 {x['last_contact_on']}）"
              for x in mo["contact_lost"]]
    return lines


def _held(h: dict[str, Any]) -> str:
    """What a departed holder held, by its name as the site page says it (`kind` carries the name, or a post's
    kind): before, `group g2` and `secretary shachengwan`."""
    name = h.get("kind") or h["id"]
    held = {"post": f"示范岗「{LABELS.get(name, name)}」上岗党员", "team": f"队组「{name}」组长",
            "zone": f"责任区「{name}」负责人", "secretary": f"党支部「{name}」书记", "group": f"党小组「{name}」组长"}
    return held.get(h["what"], f"{h['what']} {name} 负责人")


def talks_done_split(a: dict) -> str:
    """The talks done said as what they were: the three 必谈 owed to members, and applicants' talks, which are
    counted with them in `talks` but are no 必谈 (the yearly report says them apart)."""
    reasons = a.get("talks_by_reason")
    if not isinstance(reasons, dict) or not reasons.get("application"):
        return ""
    required, applicants = split_talks_done(reasons)
    return f"（其中三必谈 {required}，入党申请人谈话 {applicants}）"


def format_activities(a: dict[str, Any]) -> list[str]:
    teams = "，".join(f"{LABELS[k]} {n}" for k, n in a["teams"].items())
    posts = "，".join(f"{LABELS[k]} {n}" for k, n in a["posts"].items())
    lessons = "，".join(f"{LABELS[k]} {v['sessions']}场/{v['attendance']}人次"
                       for k, v in a["lessons"].items() if v["sessions"])
    visits = "，".join(f"{LABELS[k]} {n}" for k, n in a["visits"].items())
    t = a["talks"]
    return [
        f"  党员责任区   {a['zones']:>8,}",
        f"  党员队伍     {sum(a['teams'].values()):>8,}   ({teams})",
        f"  党员示范岗   {sum(a['posts'].values()):>8,}   ({a['post_kinds']}类: {posts})",
        f"  示范工点     {a['work_points']:>8,}",
        f"  三进三必谈   待谈 {t['open']}（逾期 {t['overdue']}），已谈 {t['done']}{talks_done_split(a)}"
        + (f"，关闭未谈（竣工或离场） {t['mooted']}" if t.get("mooted") else "") + f"；走访: {visits}",
        f"  本月政治生日 {a['birthdays_this_month']:>8,}",
        f"  创新成果     {a['innovations']:>8,}   (全项目推广 {a['innovations_adopted']})",
        f"  活动         {lessons or '无'}",
        *_talent_points_meetings(a),
    ]


def _talent_points_meetings(a: dict[str, Any]) -> list[str]:
    """三培两推, 党员积分, 民主评议 and 三会一课 lines, when the view has them."""
    lines = []
    if "talent" in a:
        tl = a["talent"]
        lines.append(f"  三培两推     培养骨干 {tl['backbone_trained']}，"
                     f"推荐进入管理层 {tl['recommended_management']}，"
                     f"骨干培养成管理人员 {tl['promoted_management']}，推荐为班组长 {tl['recommended_crew_leaders']}")
    if a.get("points", {}).get("year"):
        p = a["points"]
        cats = "，".join(f"{LABELS[k]} {n}" for k, n in p["by_category"].items())
        sites = f"{p['sites']}个工地 " if p.get("sites") else ""
        lines.append(f"  党员积分     {p['year']}年 {sites}{p['members']}名党员共 {p['total']} 分（{cats}）")
        lines.extend(f"               {y['year']}年 {y['sites']}个工地 {y['members']}名党员共 {y['total']} 分"
                     for y in p.get("years", [])[1:])
    if a.get("appraisal", {}).get("year"):
        ap = a["appraisal"]
        grades = "，".join(f"{LABELS[k]} {n}" for k, n in ap["grades"].items())
        lines.append(f"  民主评议     {ap['year']}年度 {ap['branches']}个支部评议 {ap['appraised']}名党员（{grades}）")
        lines.extend(f"               {y['year']}年度 {y['branches']}个支部评议 {y['appraised']}名党员"
                     for y in ap.get("years", [])[1:])
    if "meetings" in a:
        m = a["meetings"]
        held = "，".join(f"{LABELS[k]} {v['held']}" for k, v in m["by_kind"].items() if v["held"])
        late = "，".join(f"{LABELS[k]} {v['overdue']}" for k, v in m["by_kind"].items() if v["overdue"])
        lines.append(f"  三会一课     本期待开 {m['due']}，上期未开 {m['overdue']}" + (f"（{late}）" if late else "")
                     + f"；已开: {held or '无'}")
    return lines


def format_liaison(li: dict[str, Any]) -> list[str]:
    mi, cb = li["meeting_items"], li["cobuilding"]
    units = "，".join(f"{LIAISON_LABELS[u]} {v['open']}" for u, v in mi["by_unit"].items() if v["open"])
    compliance = "，".join(f"{LIAISON_LABELS[t]} 达标{v['met']}/未达标{v['not_met']}"
                           for t, v in li["compliance"].items())
    disputes = "，".join(
        f"{LIAISON_LABELS[k]} " + "/".join(f"{LIAISON_LABELS[st]}{n}" for st, n in v.items() if n)
        for k, v in li["disputes"].items() if any(v.values())
    )
    support = "，".join(f"{LIAISON_LABELS[k]} {v['total']:,}{v['unit']}"
                       for k, v in li["support"].items() if v["total"])
    return [
        f"  联席会议     {li['meetings']:>8,}   议题待办 {mi['open']}（逾期 {mi['overdue']}），已解决 {mi['resolved']}"
        + (f"；待办单位: {units}" if units else ""),
        f"  双达标       {compliance}",
        f"  党建联创     协议 {cb['agreements']}，共建清单 {cb['completed']}/{cb['items']} 项完成",
        f"  纠纷调解     {disputes or '无'}",
        f"  上访         {li['petitions']} 起，其中薪资纠纷上访 {li['wage_petitions']} 起",
        f"  帮扶驻地     {support or '无'}",
    ]


def format_township(d: dict[str, Any]) -> str:
    lines = [f"{d['name']} [{d['township']}] 工地 {d['projects']}，从业人员 {d['workers']:,}，党员 {d['members']}，"
             f"党支部 {d['branches']}"]
    lines += [_site_line(x, x["department"]) for x in d.get("sites", [])]
    lines += format_development(d)
    if "activities" in d:
        lines += format_activities(d["activities"])
    if "mobility" in d:
        lines += format_mobility(d["mobility"])
    return "\n".join(lines + format_liaison(d["liaison"]))


def format_department(d: dict[str, Any]) -> str:
    lines = [f"{d['name']} [{d['department']}] 主管工地 {d['projects']}，从业人员 {d['workers']:,}，"
             f"党员 {d['members']}，党支部 {d['branches']}"]
    lines += [_site_line(x, x.get("township_name") or x["township"]) for x in d["sites"]]
    lines += format_development(d)
    if "activities" in d:
        lines += format_activities(d["activities"])
    if "mobility" in d:
        lines += format_mobility(d["mobility"])
    return "\n".join(lines + format_liaison(d["liaison"]))


def _site_line(x: dict[str, Any], where: str) -> str:
    """One site of a township's or a department's list: figures, branch and what it lacks."""
    flags = ("，空白点" if x["gap"] else "") + ("，应组建党支部" if x["should_form_branch"] else "")
    done = f"，{x['completed_on']} 竣工" if x["completed_on"] else ""
    return (f"  · {x['name']} [{x['site_id']}] {where}：从业人员 {x['workforce']:,}，在场党员 {x['members_present']}"
            f"（正式 {x['full_members']}），党支部 {x['branch'] or '未成立'}{flags}{done}")


def plain_number(value: str | int | float) -> str:
    """A decimal as people write it: 20000, 1.5, never 2E+4."""
    text = format(Decimal(str(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_site(d: dict[str, Any]) -> str:
    b = d["branch"]
    lines = [
        f"{d['name']}  [{d['site_id']}]  {d['township_name']} · {d['department']}",
        f"  造价 {plain_number(d['cost_wan'])}万元，工期 {d['planned_months']}个月，开工 {d['start_date']}"
        + (f"，{d['completed_on']} 竣工" if d["completed_on"] else ""),
        f"  业主 {d['units']['owner']} / 设计 {d['units']['design']} / 施工 {d['units']['construction']}"
        f" / 监理 {d['units']['supervision']}",
        f"  从业人员 {d['workforce']:,}，在场党员 {d['members_present']}（正式 {d['full_members']}）",
        f"  按单位: {_counts(d['by_unit_kind'], UNIT_KIND)}；按关系: {_counts(d['by_relation'], RELATION_LONG)}",
        f"  按工段/班组: {_counts(d['by_section'])}",
    ]
    if b:
        secretary = b.get("secretary_name") or b["secretary"]
        gone = f"（{b['dissolved_on']} 撤销）" if b.get("dissolved_on") else ""
        lines.append(f"  党支部: {b['name']}{gone}，书记 {secretary}，指导员 {b['instructor']}，联络员 {b['liaison']}")
        if d.get("branch_warning"):
            lines.append(f"  !! {d['branch_warning']}")
    else:
        flags = ("（空白点）" if d["gap"] else "") + ("，应组建" if d["should_form_branch"] else "")
        lines.append("  党支部: 未成立" + flags)
    for g in d["groups"]:
        left = set(g.get("departed") or [])  # as the site page says it: named, marked, counted apart
        names = [(n or m) + ("（已离场）" if m in left else "")
                 for m, n in zip(g["members"], g.get("member_names") or g["members"], strict=True)]
        closed = f"，{g['closed_on']} 撤销" if g.get("closed_on") else ""
        gone = f"，其中 {len(left)} 人已离场" if left else ""
        leader = (g.get("leader_name") or g["leader"]) + ("（已离场）" if g["leader"] in left else "")
        lines.append(f"  党小组 {g['name']}: 组长 {leader}，{len(g['members'])}名党员{gone}"
                     f"（{'、'.join(names)}）{closed}")
    lines += format_site_development(d)
    if "activities" in d:
        lines += format_activities(d["activities"])
    if "liaison" in d:
        lines += format_liaison(d["liaison"])
    # Who recorded a departure, by role and name (市工委, 乡镇 沙埕镇), as the history says it; before, `city`.
    places = Names(sites={d["site_id"]: d["name"]})
    townships = {f"township.{d['township']}": d["township_name"]} if d.get("township_name") else {}
    for m in d.get("recent_departures", []):
        moved = f"，转至 {m.get('moved_to_name') or m['moved_to_site']}" if m["moved_to_site"] else ""
        who = actor_label(m["recorded_by"], places, townships) if m.get("recorded_by") else "平台"
        why = f"，{m['reason']}" if m.get("reason") else ""
        lines.append(f"  离场 {m['departed_on']} {m['name'] or m['member_id']}{moved}{why}（{who} 记录）")
    for h in d.get("departed_holders", []):
        who = f"{h['name']}({h['member_id']})" if h.get("name") else h["member_id"]
        lines.append(f"  !! {_held(h)} {who} 已离场，请重新指定")
    ranking = d.get("points_ranking") or {}
    for year in (ranking, ranking.get("earlier") or {}):  # the latest year with points, and the one before it
        if year.get("members"):
            top = "，".join(f"{r['rank']}.{r['name'] or r['member_id']} {r['points']}分" for r in year["members"][:10])
            lines.append(f"  积分排名({year['year']}年) {top}")
    for mt in d.get("meetings_due", []):
        if mt["due"] or mt["overdue"]:
            state = "，".join(x for x, on in (("本期待开", mt["due"]), ("上期未开", mt["overdue"])) if on)
            lines.append(f"  三会一课 {LABELS[mt['kind']]}: {state}（最近 {mt['last_held_on'] or '未开过'}）")
    if "mobility" in d:
        lines += format_site_mobility(d["mobility"])
    return "\n".join(lines)


def _counts(counts: dict[str, int], labels: dict[Any, str] | None = None) -> str:
    """`{'construction': 15, …}` as people read it: 施工单位 15，… (a code with no word yet as itself)."""
    if not counts:
        return "无"
    return "，".join(f"{(labels or {}).get(k, k)} {n}" for k, n in counts.items())


def _site_title(d: dict[str, Any]) -> str:
    """A site by its project name, its id after it (the id alone when the site is not registered)."""
    return f"{d['site_name']} [{d['site_id']}]" if d.get("site_name") else d["site_id"]


def format_birthdays(d: dict[str, Any]) -> str:
    lines = [f"{_site_title(d)} · {d['month']} 政治生日"]
    for m in d["members"]:
        done = f"已过 ({m['celebrated_on']})" if m["celebrated_on"] else "未过"
        lines.append(f"  {m['name']}（{m['member_id']}）  入党 {m['admitted_on']}  {done}")
    if not d["members"]:
        lines[0] += "：本月无"
    lines.append(f"  {d['month'][:4]}年尚未过政治生日: {len(d['not_celebrated_this_year'])}名")
    return "\n".join(lines)


def format_talks(d: dict[str, Any]) -> str:
    lines = [f"{_site_title(d)} · 待谈话 {len(d['open'])}"]
    for t in d["open"]:
        late = "，逾期" if t["overdue"] else ""
        who = f"{t['name']}（{t['member_id']}）" if t.get("name") else t["member_id"]
        # The task's number last: RecordTalk names it (gongdi send activities RecordTalk '{"obligation_id": …}').
        lines.append(f"  {who}  {LABELS[t['reason']]}，应于 {t['due_on']} 前{late}  任务编号 {t['obligation_id']}")
    return "\n".join(lines)


def format_records(d: dict[str, Any]) -> str:
    """What 撤销记录 may withdraw, latest first, each with the kind and id `RetractRecord` names it by."""
    lines = [f"{_site_title(d)} · 可撤销的记录 {len(d['records'])}" + ("（只列出最近的）" if d.get("more") else "")]
    for r in d["records"]:
        kind = LABELS.get(r["kind"], r["kind"]) if r["kind"] != r["record"] else ""
        lines.append(f"  {r['day']}  {LABELS[r['record']]}{f'（{kind}）' if kind else ''}  {r['title']}  {r['count']}"
                     f"  record {r['record']} record_id {r['record_id']}")
    return "\n".join(lines)


def format_status(d: dict[str, Any]) -> str:
    """Per stream: recorded and published; per consumer of it (views and policies): applied of recorded and
    published, how far behind, and its dead letters with event type and error code."""
    lines = []
    for s in d["streams"]:
        waiting = s["recorded"] - s["published"]
        lines.append(f"  {s['stream']} ({s['service']}): 已记录 {s['recorded']}，已发布 {s['published']}"
                     + (f"，待发布 {waiting}（若一直不减，{s['service']}-relay 停了或卡住了：见其日志）" if waiting > 0
                        else ""))
        if s["published"] > s["recorded"]:
            lines.append(f"    !! 已发布的事件比 {s['service']} 数据库中记录的多 {s['published'] - s['recorded']} 条："
                         "数据库中的事件可能已被删除或改动（或从较旧的备份恢复），请运行 `gongdi verify`")
        for c in (c for c in d["consumers"] if c["stream"] == s["stream"]):
            recorded = c["recorded"] if c["recorded"] is not None else c["published"]
            behind = f"落后 {recorded - c['applied']}" if c["applied"] <= recorded else \
                f"已处理的比记录的多 {c['applied'] - recorded}"
            lines.append(f"    {c['service']:<11} 已处理/已记录/已发布 {c['applied']}/{recorded}/{c['published']}，"
                         f"{behind}，死信 {c['dead_letters']}")
            lines += [f"      !! {_letter(letter)}" for letter in c["letters"]]
            if c["dead_letters"] > len(c["letters"]):
                lines.append(f"      … 另有 {c['dead_letters'] - len(c['letters'])} 个")
    dead = sum(c["dead_letters"] for c in d["consumers"])
    if dead:
        lines.append(f"  !! {dead} 个事件未能处理 (dead letters)：相应的视图或策略不完整；排除原因后运行"
                     " `gongdi deadletters retry`")
    return "\n".join(lines)


def _letter(letter: dict[str, Any]) -> str:
    site = f" 工地 {letter['site_id']}" if letter.get("site_id") else ""
    retried = f"，已重试 {letter['retries']} 次" if letter.get("retries") else ""
    return (f"#{letter['stream_seq']} {letter.get('event_type') or '(不是事件)'}{site} 错误 {letter['code']}"
            f"{retried}")


def format_dead_letters(d: dict[str, Any]) -> str:
    """Every consumer's dead letters, one line each: service, consumer, stream, sequence, event, site, error, when."""
    rows = [(c["service"], c["consumer"], c["stream"], str(letter["stream_seq"]), letter.get("event_type") or "-",
             letter.get("site_id") or "-", letter["code"] + (f" (重试 {letter['retries']} 次)" if letter["retries"]
                                                            else ""), _when(letter["recorded_at"]))
            for c in d["consumers"] for letter in c["letters"]]
    total = sum(c["dead_letters"] for c in d["consumers"])
    if not total:
        return "没有死信 (no dead letters)"
    head = ("服务", "消费者", "流", "序号", "事件", "工地", "错误", "时间")
    widths = [max(_width(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in [head, *rows]]
    if total > len(rows):
        lines.append(f"… 另有 {total - len(rows)} 个未列出 (listed: the first of each consumer)")
    lines.append(f"共 {total} 个死信；排除原因后运行 `gongdi deadletters retry [--service 服务]` 重新处理")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Columns a terminal gives `text`: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _when(stamp: str) -> str:
    """An ISO timestamp in this computer's time zone, to the second."""
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


OUTCOMES = {"applied": "已重新处理", "failed": "仍失败", "refused": "不能重新处理", "gone": "已由另一次重试处理"}


def format_retry(results: list[dict[str, Any]]) -> str:
    """What became of each dead letter retried."""
    if not results:
        return "没有死信需要重新处理 (nothing to retry)"
    lines = []
    for r in results:
        site = f" 工地 {r['site_id']}" if r.get("site_id") else ""
        code = f" 错误 {r['code']}" if r.get("code") else ""
        lines.append(f"  {r['service']} {r['consumer']} {r['stream']} #{r['stream_seq']} {r.get('event_type') or '-'}"
                     f"{site}: {OUTCOMES[r['outcome']]}{code}")
    applied = sum(r["outcome"] == "applied" for r in results)
    lines.append(f"重新处理 {applied}/{len(results)} 个")
    return "\n".join(lines)


def format_identities(city: City, identities: list[Identity], where: Path,
                      site_names: dict[str, str] | None = None) -> str:
    """The identities of the installation, by role, with the names people know them by (a secretary by their site's
    name in `site_names`, else its id)."""
    order = list(Role)
    lines = [f"身份 ({len(identities)} 个; 用法 gongdi --as <身份> …; 密码在 {where}，仅本用户可读):"]
    for identity in sorted(identities, key=lambda i: (order.index(i.role), i.name)):
        if identity.role is Role.TOWNSHIP:
            label = f"{city.township_name(identity.township or '')}党委"
        elif identity.role is Role.DEPARTMENT:
            label = city.departments.get(identity.department or "", identity.department or "")
        elif identity.role is Role.SITE:
            site = (site_names or {}).get(identity.site or "")
            label = f"{city.township_name(identity.township or '')} {site or f'工地 {identity.site}'} 支部书记"
        else:
            label = ROLE_LABELS[identity.role]
        lines.append(f"  {identity.name:<28} {ROLE_LABELS[identity.role]:<6} {label}")
    return "\n".join(lines)

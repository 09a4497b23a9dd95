"""A history across the writing services: ask each its events on the subject, follow what they caused, merge by
recorded time and link each event to its cause (the CLI's `gongdi history`, the gateway's `/api/history`); and how
it reads in Chinese.

Causes, in the order they are looked for: the event named by `causation_id` (an arrival → the talk obligation the
activities policy created for it); the event opening what this one closes (an obligation → the talk held for it,
contracts.history.OPENS/CLOSES); for an obligation recorded by a command, the event recorded before it by the same
command (a safety violation → its talk obligation).
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from contracts import activities, liaison, membership
from contracts.activities import LABELS as ACTIVITY_LABELS
from contracts.city import City
from contracts.history import (
    CLOSES,
    EVENT_LABELS,
    MAX_IDS,
    MEMBER_ENTRIES,
    MEMBER_FIELDS,
    NAMED_BY,
    OPENS,
    RETRACTABLE,
    RETRACTION,
    SERVICES,
    SUBJECTS,
    History,
    history_subject,
)
from contracts.identity import LABELS as ROLE_LABELS
from contracts.identity import Identity, Role
from contracts.liaison import LABELS as LIAISON_LABELS
from contracts.queries import SERVICE_NAMES
from contracts.timeline import date_field
from gongdi.ops.client import GongdiClient

Reply = dict[str, Any]
ROUNDS = 4  # follow-ups: an arrival → its obligation → its talk is two; more would be a chain no rule makes yet
# The refusal of a subject no service has recorded anything of, by kind: named as the commands' SITE_NOT_FOUND and
# CASE_NOT_FOUND are (the gateway answers any *_NOT_FOUND with 404).
NOT_FOUND = {"site": "SITE_NOT_FOUND", "member": "MEMBER_NOT_FOUND", "case": "CASE_NOT_FOUND",
             "branch": "BRANCH_NOT_FOUND"}


class Refused(Exception):
    def __init__(self, reply: Reply):
        super().__init__(str(reply.get("error")))
        self.reply = reply


async def _ask(client: GongdiClient, body: dict[str, Any]) -> list[Reply]:
    """Every writing service's page for `body`; a refusal by any of them refuses the whole history."""
    raw = orjson.dumps(body)
    replies = await asyncio.gather(*(client.request(history_subject(s), raw) for s in SERVICES))
    for reply in replies:
        if not reply.get("ok"):
            raise Refused(reply)
    return [r["data"] for r in replies]


SITE_NAMES = 50  # sites named by asking the views: a member rarely works on more
MEMBER_NAMES = 2 * MAX_IDS  # members named by asking for their arrivals: a branch's appraisal names its members


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), MAX_IDS):
        yield ids[i:i + MAX_IDS]


ORDERS = {"recorded": "按记录时间", "newest": "最新在前", "day": "按发生日期"}
# How the notes say the order: `newest` is the recorded order turned round, each cause still above its effects.
ORDER_NOTES = {"recorded": "按记录时间排列", "newest": "按记录时间排列，最新的在前", "day": "按发生日期排列"}


async def history(client: GongdiClient, kind: str, ident: str, order: str = "recorded",
                  city: City | None = None) -> Reply:
    """`{"ok": true, "data": History}` for `kind` (site, member, case, branch) `ident`, as the client's identity
    may read it, or the first refusal (typed like every query's); its `reading` lists the lines in `order`
    (ORDERS), and names the townships and departments that acted by their names in `city`."""
    try:
        return {"ok": True, "data": await _history(client, kind, ident, order, city)}
    except Refused as exc:
        return exc.reply


async def _history(client: GongdiClient, kind: str, ident: str, order: str, city: City | None) -> dict[str, Any]:
    pages = await _ask(client, {"kind": kind, "id": ident})
    events: dict[str, dict[str, Any]] = {}
    withheld, truncated = 0, False

    def take(pages: list[Reply], followed: bool) -> list[dict[str, Any]]:
        nonlocal withheld, truncated
        new = []
        for page in pages:
            if not followed:  # a follow-up's withheld events may be counted already: it lists, never counts
                withheld += page["withheld"]
            truncated |= page["truncated"]
            for e in page["events"]:
                if e["event_id"] not in events:
                    events[e["event_id"]] = {**e, "followed": followed}
                    new.append(e)
        return new

    fresh = take(pages, False)
    for _ in range(ROUNDS):
        if not fresh:
            break
        asks = [{"kind": "caused_by", "ids": ids} for ids in _chunks([e["event_id"] for e in fresh])]
        opened = sorted({str(e["payload"][OPENS[e["type"]]]) for e in fresh if e["type"] in OPENS})
        asks += [{"kind": "closing", "ids": ids} for ids in _chunks(opened)]
        found = await asyncio.gather(*(_ask(client, body) for body in asks))
        fresh = take([page for pages in found for page in pages], True)
    if not events:
        # Nothing the reader may read: a mistyped id, or one whose records all lie outside their area. A reader of
        # part of the city gets one answer for both, so that asking never tells which ids exist elsewhere (a
        # member's id stands for a person).
        outside = "" if _sees_all(client.user) else f"，或其记录不在 {client.user} 的辖区内"
        raise Refused({"ok": False, "error": {
            "code": NOT_FOUND[kind], "field": "id",
            "message": f"没有{SUBJECTS[kind]} {ident} 的任何记录{outside}，请检查编号 (no such {kind})"}})
    listed = sorted(events.values(), key=lambda e: (datetime.fromisoformat(e["recorded_at"]),
                                                    SERVICES.index(e["service"]), e["position"]))
    link(listed)
    data = History.model_validate({"kind": kind, "id": ident, "events": listed, "withheld": withheld,
                                   "truncated": truncated, "site_names": await _site_names(client, listed),
                                   "member_names": await _member_names(client, listed),
                                   "actor_names": actor_names(listed, city)}).model_dump(mode="json")
    return {**data, "reading": reading(data, order)}  # the lines people read, the same for the CLI and the pages


def _sees_all(user: str) -> bool:
    try:
        return Identity.parse(user).role in (Role.CITY, Role.AUDITOR)
    except ValueError:  # a platform user (the CLI's own): reads what its account lets it
        return True


async def _site_names(client: GongdiClient, events: list[dict[str, Any]]) -> dict[str, str]:
    """The names of the sites the events are on and do not name themselves (a member's history has no site's
    registration), from the views, as the reader may read them; a site it may not read stays an id."""
    named = Names.of(events).sites
    wanted = sorted({e["site_id"] for e in events if e.get("site_id")} - named.keys())[:SITE_NAMES]
    replies = await asyncio.gather(*(client.query("views", "talks", {"site_id": s}) for s in wanted),
                                   return_exceptions=True)
    for site_id, reply in zip(wanted, replies, strict=True):
        if isinstance(reply, dict) and reply.get("ok") and (reply.get("data") or {}).get("site_name"):
            named[site_id] = reply["data"]["site_name"]
        elif isinstance(reply, BaseException) and not isinstance(reply, Exception):
            raise reply  # a cancellation or an interrupt is not a missing name
    return named


def named_members(events: list[dict[str, Any]]) -> list[str]:
    """The ids of the members (and applicants) the events' lines name one by one (not those a list only counts)."""
    ids: set[str] = set()
    for e in events:
        p = e["payload"]
        ids.update(v for f in MEMBER_FIELDS if isinstance(v := p.get(f), str))
        for f in MEMBER_ENTRIES:
            if isinstance(p.get(f), list):
                ids.update(v for x in p[f] if isinstance(x, dict) and isinstance(v := x.get("member_id"), str))
    return sorted(ids)


async def _member_names(client: GongdiClient, events: list[dict[str, Any]]) -> dict[str, str]:
    """The names of the members the events name and do not name themselves (a branch's appraisal lists its members'
    ids), from their arrivals and applications, as far as the reader may read those."""
    named = Names.of(events).members
    wanted = [m for m in named_members(events) if m not in named][:MEMBER_NAMES]
    found = await asyncio.gather(*(client.request(history_subject(NAMED_BY),
                                                  orjson.dumps({"kind": "naming", "members": ids}))
                                   for ids in _chunks(wanted)))
    # Names only adorn the lines: a membership service that does not take this request yet (an older release, while
    # a server install is upgraded service by service) leaves the ids as they are, not the history unanswered.
    names = Names.of([e for reply in found if reply.get("ok") for e in reply["data"]["events"]]).members
    return {m: names[m] for m in wanted if m in names}


def link(events: list[dict[str, Any]]) -> None:
    """Set each event's `cause` to the event of the list it follows from (see the module's doc), or None."""
    by_id = {e["event_id"]: e for e in events}
    opener = {(field, str(e["payload"].get(field))): e["event_id"] for e in events
              if (field := OPENS.get(e["type"])) is not None}
    first_of_command: dict[tuple[str, str], str] = {}
    for e in events:
        cause = None
        if e.get("causation_id") in by_id:
            cause = e["causation_id"]
        elif e["type"] in CLOSES:
            cause = opener.get((CLOSES[e["type"]], str(e["payload"].get(CLOSES[e["type"]]))))
        elif e["type"] in OPENS and e.get("command_id"):
            cause = first_of_command.get((e["service"], e["command_id"]))
        if e.get("command_id"):
            first_of_command.setdefault((e["service"], e["command_id"]), e["event_id"])
        e["cause"] = cause if cause != e["event_id"] else None


# ---- in Chinese ------------------------------------------------------------------------------------------------

LOCAL = ZoneInfo("Asia/Shanghai")
# ... and why a talk obligation was closed without a talk (TalkObligationMooted.reason)
PAYLOAD_LABELS = {**ACTIVITY_LABELS, **LIAISON_LABELS, "site_completed": "因工地竣工", "member_departed": "因党员离场"}


def local_time(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")


def actor_names(events: list[dict[str, Any]], city: City | None) -> dict[str, str]:
    """The townships and departments that acted, by the names the city gives them (`township.bailin` → 白琳镇);
    a site's secretary is named by the site (`actor_label`), the city, an auditor by their role alone."""
    if city is None:
        return {}
    names = {}
    for actor in {e["actor"] for e in events}:
        try:
            who = Identity.parse(actor)
        except ValueError:
            continue
        if who.role is Role.TOWNSHIP and who.township in city.townships:
            names[actor] = city.townships[who.township]
        elif who.role is Role.DEPARTMENT and who.department in city.departments:
            names[actor] = city.departments[who.department]
    return names


def actor_label(actor: str, names: Names | None = None, named: dict[str, str] | None = None) -> str:
    """Who acted, by role and name: `township.bailin` → `乡镇 白琳镇` (by `named`, else `乡镇 township.bailin`),
    `site.bailin.h1` → `工地书记 沙埕湾大桥(h1)` (the site by `names`), `city` → `市工委`; a policy's actor →
    `平台规则 新来党员必谈`; a timer's → `平台定时提醒 流动党员`."""
    if actor.startswith("policy:"):
        return f"平台规则 {actor.removeprefix('policy:')}"
    if actor.startswith("timer:"):  # a prompt the platform's timer recorded when it fell due
        return f"平台定时提醒 {actor.removeprefix('timer:')}"
    try:
        who = Identity.parse(actor)
    except ValueError:
        return actor
    role = ROLE_LABELS[who.role]
    if who.role in (Role.CITY, Role.AUDITOR, Role.DASHBOARD):
        return role  # one login each: the role names it
    if who.role is Role.SITE and who.site is not None and names is not None and who.site in names.sites:
        return f"{role} {names.site(who.site)}"
    return f"{role} {(named or {}).get(actor, actor)}"


EVENT_MODELS = {**membership.EVENTS, **activities.EVENTS, **liaison.EVENTS}


def business_day(kind: str, payload: dict[str, Any]) -> str | None:
    """The day the fact itself names (arrived_on, talked_on, a prompt's due_on: `contracts.timeline`), if any."""
    model = EVENT_MODELS.get(kind)
    named = date_field(model) if model is not None else None
    if named is not None and isinstance(payload.get(named), str):
        return payload[named]
    for key, value in payload.items():  # an event type this release does not know
        if (key.endswith("_on") or key == "as_of") and isinstance(value, str) and key != "due_on":
            return value
    return None


@dataclass
class Names:
    """Members' and sites' names as the history's own events give them (an arrival names its member, a
    registration its site), so that lines read 李立新(m0005) rather than m0005."""

    members: dict[str, str] = field(default_factory=dict)
    sites: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, events: list[dict[str, Any]]) -> Names:
        names = cls()
        for e in events:
            p = e["payload"]
            if isinstance(p.get("member"), dict) and p["member"].get("name") and p.get("member_id"):
                names.members[p["member_id"]] = p["member"]["name"]
            if isinstance(p.get("person_id"), str) and isinstance(p.get("name"), str) and p["name"]:
                names.members.setdefault(p["person_id"], p["name"])  # an application names its person
            if e["type"] == "SiteRegistered" and p.get("name") and p.get("site_id"):
                names.sites[p["site_id"]] = p["name"]
        return names

    def member(self, member_id: str) -> str:
        name = self.members.get(member_id)
        return f"{name}({member_id})" if name else f"党员 {member_id}"

    def site(self, site_id: str) -> str:
        name = self.sites.get(site_id)
        return f"{name}({site_id})" if name else site_id


OBLIGATION_CREATED = activities.TalkObligationCreated.__name__
NAMED_IN_LIST = 5  # members of a list named one by one up to this many; more are counted

# Amounts and counts worth a word, with their unit.
FIGURES = (("year", "{} 年度"), ("headcount", "从业人员 {} 人"), ("amount_yuan", "金额 {} 元"),
           ("amount_settled_yuan", "兑付 {} 元"), ("points", "{} 分"),
           ("attendance", "到会 {} 人"), ("months", "{} 个月"), ("approved_by", "批准：{}"))


def summary(e: dict[str, Any], names: Names | None = None, member: str | None = None) -> str:
    """A few words of the payload: whom or what it is about (in a member's history, `member`: their own grade of an
    appraisal, not everyone's)."""
    names = names or Names()
    p = e["payload"]
    parts = []
    if isinstance(p.get("member"), dict) and p["member"].get("name"):
        parts.append(f"{p['member']['name']}({p.get('member_id')})")
    elif p.get("member_id"):
        parts.append(names.member(p["member_id"]))
    elif isinstance(p.get("person_id"), str):
        parts.append(f"{p['name']}({p['person_id']})" if isinstance(p.get("name"), str) and p["name"]
                     else names.member(p["person_id"]).removeprefix("党员 "))
    for key, label in (("name", ""), ("title", ""), ("what", ""), ("case_id", "案件 "), ("reason", ""), ("kind", ""),
                       ("category", ""), ("description", ""), ("place", "地点 "), ("area", "范围 "),
                       ("talked_by", "谈话人 "), ("mediator", "调解 "), ("outcome", "结果 "), ("due_on", "应于 ")):
        value = p.get(key)
        if key == "name" and isinstance(p.get("person_id"), str):
            continue  # said with the person's id above
        if value and isinstance(value, str):
            text = PAYLOAD_LABELS.get(value, value) if key in ("reason", "kind", "category") else value
            if key == "what" and e["type"] == RETRACTION and isinstance(p.get("record_day"), str):
                text = text.removeprefix(f"{p['record_day']} ")  # the line's own day already
            if key == "reason" and e["type"] == RETRACTION:
                label = "原因："
            parts.append(f"{label}{text}" + (" 前" if key == "due_on" else ""))
    for key, label in (("secretary", "书记 "), ("leader", "组长 " if e["type"] == "PartyGroupFormed" else "负责人 "),
                       ("holder", "上岗党员 ")):
        if isinstance(p.get(key), str):
            parts.append(f"{label}{names.member(p[key]).removeprefix('党员 ')}")
    for key, shown in FIGURES:
        if isinstance(p.get(key), (int, float, str)) and not isinstance(p.get(key), bool) and p.get(key) != "":
            parts.append(shown.format(p[key]))
    if isinstance(p.get("grades"), list):
        grades = [g for g in p["grades"] if isinstance(g, dict)]
        own = [g for g in grades if g.get("member_id") == member]
        parts.append("，".join(f"{names.member(str(g.get('member_id')))} {PAYLOAD_LABELS.get(g.get('grade'), '')}"
                              for g in (own or grades)) + (f"（共评议 {len(grades)} 人）" if own else ""))
    if e["type"] == RETRACTION and p.get("obligation_id"):
        parts.append("未谈的谈话任务一并撤销")
    if e["type"] == RETRACTION and p.get("record") == activities.RecordKind.talk.value:
        parts.append("谈话任务重新打开")
    if isinstance(p.get("moved_to_site"), str) and p["moved_to_site"]:
        parts.append(f"转至 {names.site(p['moved_to_site'])}")
    for key in ("members", "attendees", "members_met", "responsible"):
        if isinstance(p.get(key), list) and p[key]:
            # A few also by name when the history knows every name (a birthday party's two members); a crowd, or
            # members whose arrival is elsewhere, by count alone.
            who = p[key]
            named = len(who) <= NAMED_IN_LIST and all(isinstance(x, str) and x in names.members for x in who)
            parts.append(f"{len(who)}名党员" + ("：" + "、".join(names.member(x) for x in who) if named else ""))
            break
    return "，".join(parts)


def people(p: dict[str, Any], names: Names, mine: str | None) -> list[dict[str, str]]:
    """Whom a line names besides the reader's own subject, for a page to link their histories: a post's holder, a
    team's leader, a branch's secretary, and a short list's members (a zone's, a party's) by name when known."""
    ids = [p[key] for key in ("holder", "leader", "secretary") if isinstance(p.get(key), str)]
    for key in ("members", "attendees", "members_met", "responsible"):
        if isinstance(p.get(key), list) and len(p[key]) <= NAMED_IN_LIST:
            ids += [x for x in p[key] if isinstance(x, str)]
    seen = dict.fromkeys(x for x in ids if x != mine)
    return [{"id": x, "name": names.members.get(x, x)} for x in seen]


def happened(events: list[dict[str, Any]]) -> dict[str, str]:
    """Each event's day for ordering by when things happened: the fact's own day; for a fact that names none (a
    zone designated, a team formed), the day of the fact recorded before it, as the views as of a day count it;
    for the first of those, the day it was recorded (Beijing time)."""
    days, last = {}, None
    for e in events:
        last = business_day(e["type"], e["payload"]) or last or local_time(e["recorded_at"])[:10]
        days[e["event_id"]] = last
    return days


def record_of(e: dict[str, Any]) -> str | None:
    """The record an event made that a retraction may name (site, kind, id), or None."""
    kind_field = RETRACTABLE.get(e["type"])
    if kind_field is None:
        return None
    return f"{e.get('site_id')}/{kind_field[0]}/{e['payload'].get(kind_field[1])}"


def withdrawn(events: list[dict[str, Any]]) -> set[str]:
    """The events the history's own retractions withdrew, by event id, from `events` in recorded order: for each
    retraction the latest record of its kind and id before it (an id used again after a retraction, a year appraised
    again, names a record that stands), and the talk obligation a retracted violation or change withdrew with it.
    A retraction on a site the reader may not read is not among them, and neither is its record."""
    latest: dict[str, str] = {}
    obligations: dict[str, str] = {}
    out = set()
    for e in events:
        p = e["payload"]
        if (key := record_of(e)) is not None:
            latest[key] = e["event_id"]
        if e["type"] == OBLIGATION_CREATED:
            obligations[str(p.get("obligation_id"))] = e["event_id"]
        if e["type"] == RETRACTION:
            if (record := latest.pop(f"{e.get('site_id')}/{p.get('record')}/{p.get('record_id')}", None)) is not None:
                out.add(record)
            if p.get("obligation_id") and str(p["obligation_id"]) in obligations:
                out.add(obligations.pop(str(p["obligation_id"])))
    return out


def reading(d: dict[str, Any], order: str = "recorded") -> dict[str, Any]:
    """The history as people read it, for the CLI and the pages alike: a title, warnings, and one line per event at
    its cause's depth + 1 (原因 → 结果), siblings in recorded order or (`order="day"`) by the day they happened,
    saying when it happened (the fact's own day), what and whom, where, when it was done (操作: the time the command
    or rule acted) and recorded, by whom, by which command (its first 8 characters); then notes."""
    if order not in ORDERS:
        raise ValueError(f"order: {order} (one of {', '.join(ORDERS)})")
    events = d["events"]
    gone = withdrawn(events)
    if order == "day":  # stable: a day's events stay in recorded order
        days = happened(events)
        events = sorted(events, key=lambda e: days[e["event_id"]])
    names = Names.of(events)
    names.sites = {**d.get("site_names", {}), **names.sites}
    names.members = {**d.get("member_names", {}), **names.members}
    subject = {"site": names.site, "branch": names.site, "member": names.member}.get(d["kind"], str)(d["id"])
    title = f"{SUBJECTS.get(d['kind'], d['kind'])} {subject.removeprefix('党员 ')} 的历史记录：{len(events)} 条"
    if any(e["followed"] for e in events):
        title += "（含因果关联的其他事件）"
    warnings = []
    if d["kind"] == "case" and len(sites := sorted({e["site_id"] for e in events if e.get("site_id")})) > 1:
        # A case id is the site's own: two sites may each have a case-1. Their events are told apart by site.
        warnings.append(f"编号 {d['id']} 在 {len(sites)} 个工地上各有一起案件（"
                        + "、".join(names.site(x) for x in sites) + "），下面每条都标出所在工地")
    if changed := sum(1 for e in events if e.get("intact") is False):
        warnings.append(f"其中 {changed} 条记录写入后被改动过（下方标出）：请运行 `gongdi verify` 查明")
    children: dict[str | None, list[dict[str, Any]]] = {}
    for e in events:
        children.setdefault(e.get("cause"), []).append(e)
    lines: list[dict[str, Any]] = []
    shown: set[str] = set()

    named = d.get("actor_names", {})

    def show(e: dict[str, Any], depth: int) -> None:
        shown.add(e["event_id"])
        day = business_day(e["type"], e["payload"])
        mine = d["id"] if d["kind"] == "member" else None
        what = " ".join(x for x in (day, EVENT_LABELS.get(e["type"], e["type"]), summary(e, names, mine)) if x)
        if e["event_id"] in gone:
            what += "（已撤销）"
        where = f"工地 {names.site(e['site_id'])}" if e.get("site_id") and d["kind"] not in ("site", "branch") else ""
        command = f" · 命令 {e['command_id'][:8]}" if e.get("command_id") else ""
        done, kept = local_time(e["occurred_at"]), local_time(e["recorded_at"])
        # 操作: when the command or rule acted; 记录: when it was stored, said apart only when it differs (an
        # import's rows, a policy acting later).
        when = f"操作 {done} · 记录 {kept}" if done != kept else f"操作并记录 {done}"
        p = e["payload"]
        about = p.get("member_id") or p.get("person_id")  # whom it is about, for a page to link their history
        lines.append({"depth": depth, "what": what, "where": where, "event_id": e["event_id"], "type": e["type"],
                      "member": about if isinstance(about, str) and about != mine else None,
                      "people": [] if isinstance(about, str) else people(p, names, mine),
                      "when": f"{when} · {actor_label(e['actor'], names, named)}{command}"
                              f" · {SERVICE_NAMES.get(e['service'], e['service'])}",
                      "intact": e.get("intact") is not False})
        for child in children.get(e["event_id"], []):
            if child["event_id"] not in shown:
                show(child, depth + 1)

    roots = children.get(None, [])
    for e in reversed(roots) if order == "newest" else roots:  # each with what it caused beneath it
        show(e, 0)
    for e in events:  # a cause that is itself caused by its effect: none is, but nothing goes unshown
        if e["event_id"] not in shown:
            show(e, 0)
    notes = []
    if d.get("truncated"):
        notes.append("记录过多，只列出每个服务最早的一部分 (truncated)")
    if d.get("withheld"):
        notes.append(f"另有 {d['withheld']} 条记录在您无权查看的工地上，未列出")
    notes.append(f"{ORDER_NOTES[order]}；时间为北京时间；→ 表示由上一条引起")
    return {"title": title, "warnings": warnings, "lines": lines, "notes": notes, "order": order}


def format_history(d: dict[str, Any]) -> str:
    """The history as the CLI prints it: `reading(d)` as text, indented by depth."""
    r = d.get("reading") or reading(d)
    out = [r["title"]]
    if not r["lines"]:
        out.append("  （没有记录）")
    out += [f"  !! {w}" for w in r["warnings"]]
    for line in r["lines"]:
        depth = line["depth"]
        indent = "  " + "    " * depth
        where = f"  [{line['where']}]" if line["where"] else ""
        out.append(f"{indent}{'→ ' if depth else ''}{line['what']}{where}")
        if not line["intact"]:
            out.append(f"{indent}{'  ' if depth else ''}  !! 此条记录写入后被改动过（哈希与内容不符），以上内容不可信")
        out.append(f"{indent}{'  ' if depth else ''}  {line['when']}")
    notes = r["notes"]
    out += [f"  … {n}" if n.startswith("记录过多") else f"  {n}" for n in notes[:-1]]
    out.append(f"  ({notes[-1]})")
    return "\n".join(out)

"""Demo membership development (发展党员): 28 members developed on pilot sites in 2020, 39 applicants, 18 activists."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from contracts.base import Command
from contracts.membership import (
    AdmitProbationary,
    CompleteSite,
    DesignateActivist,
    DesignateDevelopmentTarget,
    Gender,
    Job,
    MemberFacts,
    MemberStatus,
    Relation,
    SubmitApplication,
    UnitKind,
)
from contracts.rules import months_after

# How the seed's figures are read (docs/architecture.md, "Membership development"): "28 members developed on sites"
# are 28 of the 251 members present, admitted as probationary on the pilot sites between March and June 2020 (their
# path began in 2018: application, activist, a year's cultivation, development target); "39 workers applied to join,
# 18 of them activists" are 39 other workers whose applications (March to October 2020) are on record and who are
# not yet development targets, 18 of them designated activists. The 28 are the roster's members with a number
# divisible by 5 (their arrival talks are the ones the demo leaves open), the last ones of each pilot site.
DEVELOPED_PER_PILOT = {"shachengwan": 7, "baolong": 5, "binhai-2": 4, "dingsheng": 4, "tangyuan-500kv": 3,
                       "wenhua-center": 1, "taimu-road": 1, "qianqi-port": 1, "guanling-park": 1,
                       "shanqian-hospital": 1}
APPLICANTS, ACTIVISTS = 39, 18
# A small project completed before the year's end, with no member present so the 251 stay: it shows the lifecycle
# (已竣工, out of the coverage figures, still one of the 82 projects).
COMPLETED = ("xm-038", dt.date(2020, 11, 30))

Roster = dict[str, list[tuple[str, MemberFacts]]]
Cid = Callable[..., uuid.UUID]
SURNAMES = "郑陈林黄吴蔡施苏许洪游翁缪"
GIVEN = ["志华", "建平", "小燕", "金水", "春生", "秀兰", "海波", "永强", "丽萍", "文龙", "国华", "美玲"]
FEMALE_GIVEN = {"小燕", "秀兰", "丽萍", "美玲"}  # an applicant's gender goes with the given name


@dataclass(frozen=True)
class Path:
    """One developed member's dated steps."""

    site_id: str
    person_id: str
    base: MemberFacts  # the roster's facts before the admission (name, unit, job, section)
    born: dt.date
    applied_on: dt.date
    activist_on: dt.date
    target_on: dt.date
    admitted_on: dt.date


def developed(base: Roster) -> list[Path]:
    """The 28, with plausible dates: admitted March–June 2020 (before the activities of July), a target 3–5 months
    earlier, an activist 12–15 months before that (the rule asks 12), the application 2–6 months before that."""
    out: list[Path] = []
    for site_id, count in DEVELOPED_PER_PILOT.items():
        chosen = [(m, f) for m, f in base[site_id] if int(m[1:]) % 5 == 0][-count:]
        for member_id, facts in chosen:
            i = len(out)
            admitted = dt.date(2020, 3 + i % 4, 2 + (i * 5) % 26)
            target = months_after(admitted, -(3 + i % 3))
            activist = months_after(target, -(12 + i % 4))
            out.append(Path(site_id, member_id, facts, dt.date(1980 + i % 18, 1 + i % 12, 1 + i % 28),
                            months_after(activist, -(2 + i % 5)), activist, target, admitted))
    return out


def approver(township_name: str) -> str:
    """Who approves: the host township's party committee (乡镇党委), never the site's joint branch."""
    return f"{township_name}党委"


def admitted_roster(base: Roster, township_of: dict[str, str]) -> Roster:
    """The roster as it stands after the admissions: the 28 are probationary members admitted in 2020."""
    paths = {p.person_id: p for p in developed(base)}
    return {site_id: [(m, _admitted(paths[m], township_of[site_id]) if m in paths else f) for m, f in members]
            for site_id, members in base.items()}


def _admitted(p: Path, township_name: str) -> MemberFacts:
    return p.base.model_copy(update={"admitted_on": p.admitted_on, "status": MemberStatus.probationary,
                                     "home_org": approver(township_name), "relation": Relation.mobile})


def phases(base: Roster, names: dict[str, str], township_of: dict[str, str], cid: Cid) -> list[list[Command]]:
    """Applications, activists, targets, admissions (each phase after the one before), then the completed site.
    `names`: site names, `township_of`: each site's township name."""
    paths = developed(base)
    applications: list[Command] = []
    activists: list[Command] = []
    targets: list[Command] = []
    admissions: list[Command] = []
    for p in paths:
        by = approver(township_of[p.site_id])
        applications.append(SubmitApplication(
            command_id=cid("apply", p.person_id), site_id=p.site_id, person_id=p.person_id, name=p.base.name,
            gender=p.base.gender, birth_date=p.born, applied_on=p.applied_on, unit_kind=p.base.unit_kind,
            unit_name=p.base.unit_name, job=p.base.job, section=p.base.section))
        activists.append(DesignateActivist(command_id=cid("activist", p.person_id), site_id=p.site_id,
                                           person_id=p.person_id, designated_on=p.activist_on, approved_by=by))
        targets.append(DesignateDevelopmentTarget(command_id=cid("target", p.person_id), site_id=p.site_id,
                                                  person_id=p.person_id, designated_on=p.target_on, approved_by=by))
        admissions.append(AdmitProbationary(command_id=cid("admit", p.person_id), site_id=p.site_id,
                                            person_id=p.person_id, admitted_on=p.admitted_on, approved_by=by))
    pilots = list(DEVELOPED_PER_PILOT)
    for i in range(APPLICANTS):
        site_id, person_id = pilots[i % len(pilots)], f"a{i + 1:03d}"
        applied = dt.date(2020, 3 + i % 8, 3 + (i * 7) % 25)
        given = GIVEN[(i * 5) % len(GIVEN)]
        applications.append(SubmitApplication(
            command_id=cid("apply", person_id), site_id=site_id, person_id=person_id,
            name=SURNAMES[i % len(SURNAMES)] + given,
            gender=Gender.female if given in FEMALE_GIVEN else Gender.male,
            birth_date=dt.date(1978 + i % 20, 1 + i % 12, 10),
            applied_on=applied, unit_kind=UnitKind.construction, unit_name=f"{names[site_id]}施工单位",
            job=Job.worker if i % 3 else Job.technician, section=["一工段", "二工段", "钢筋班组"][i % 3]))
        if i < ACTIVISTS:
            activists.append(DesignateActivist(
                command_id=cid("activist", person_id), site_id=site_id, person_id=person_id,
                designated_on=applied + dt.timedelta(days=45), approved_by=approver(township_of[site_id])))
    site_id, on = COMPLETED
    completion: list[Command] = [CompleteSite(command_id=cid("complete", site_id), site_id=site_id, completed_on=on)]
    return [applications, activists, targets, admissions, completion]

"""Demo liaison facts from the report: 棠园村's 7-item agreement, support to 马洋村, mediated disputes, no petitions."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from contracts.base import Command
from contracts.liaison import (
    AgreementItem,
    AssessCompliance,
    CompleteCoBuildingItem,
    DisputeKind,
    HoldJointMeeting,
    ItemKind,
    MeetingItem,
    Party,
    RecordVillageSupport,
    ReportDispute,
    ResolveMediation,
    SignCoBuildingAgreement,
    SignComplianceLetter,
    StartMediation,
    SupportKind,
    Target,
    TargetResult,
)
from gongdi.demo.city import PILOTS, cid

TANGYUAN_ITEMS = ["主题党日共建", "项目安征迁协调", "村道修缮", "农田灌溉设施修复", "困难党员慰问", "就业岗位推荐",
                  "人居环境整治"]
SUPPORT = [  # (site, village, kind, quantity, note)
    ("binhai-2", "点头镇马洋村", SupportKind.road_hardening, 200, "帮助硬化道路200多米"),
    ("binhai-2", "点头镇马洋村", SupportKind.donation, 30000, "捐款支持美丽乡村建设"),
    ("binhai-2", "点头镇马洋村", SupportKind.transport, 40, "免费运送土石方"),
    ("binhai-2", "点头镇马洋村", SupportKind.poverty_visit, 6000, "慰问贫困户"),
    ("shachengwan", "佳阳乡安仁村", SupportKind.road_hardening, 150, "为安仁村修整便道（长度为演示数据）"),
    ("shachengwan", "沙埕镇", SupportKind.joint_patrol, 12, "与镇村联建群防群治队伍，治安巡逻"),
    ("wenhua-center", "桐城街道", SupportKind.epidemic_help, 1, "党员志愿者为返岗工人测量体温"),
]
DISPUTES = [  # (site, case, kind, amount, resolved?, what it is about)
    ("baolong", "wage-2020-01", DisputeKind.wages, Decimal(48000), True, "劳务分包拖欠钢筋班组工资"),
    ("shachengwan", "wage-2020-02", DisputeKind.wages, Decimal(26500), True, "春节前工资结算不清"),
    ("dingsheng", "land-2020-01", DisputeKind.land_acquisition, Decimal(120000), True, "临时用地青苗补偿争议"),
    ("binhai-2", "block-2020-01", DisputeKind.work_obstruction, None, True, "村民以道路损坏为由阻挠运料车辆"),
    ("tangyuan-500kv", "noise-2020-01", DisputeKind.neighbours, None, False, "夜间施工噪音扰民"),
]
ALL_PARTIES = [Party.owner, Party.department, Party.township, Party.village, Party.construction, Party.supervision]


def _d(month: int, day: int) -> dt.date:
    return dt.date(2020, month, day)


def liaison_phases() -> list[list[Command]]:
    first: list[Command] = []
    second: list[Command] = []
    third: list[Command] = []
    for p, (site_id, *_rest) in enumerate(PILOTS):
        first.append(SignComplianceLetter(
            command_id=cid("letter", site_id), site_id=site_id, letter_id="2020", signed_on=_d(4, 1),
            signatories=["项目业主单位", "工地兼合党支部", "项目主管部门"],
            targets={Target.quality: "分项工程合格率100%", Target.safety: "杜绝较大及以上安全事故",
                     Target.progress: "按节点工期完成", Target.civilised_site: "创建市级文明工地"},
        ))
        second.append(AssessCompliance(
            command_id=cid("assess", site_id), site_id=site_id, letter_id="2020", assessed_on=_d(7, 31),
            results=[TargetResult(target=t, met=not (site_id == "dingsheng" and t is Target.progress),
                                  note="半年考核") for t in Target],
        ))
        first.append(HoldJointMeeting(
            command_id=cid("meeting", site_id, 1), site_id=site_id, meeting_id="2020-q2",
            held_on=_d(5, 10), parties=ALL_PARTIES,
            items=(
                MeetingItem(item_id="tech-1", kind=ItemKind.technical_bottleneck, description="关键工序施工难题攻关",
                            responsible=Party.construction, due_on=_d(6, 30)),
                MeetingItem(item_id="risk-1", kind=ItemKind.risk, description="汛期安全风险防控",
                            responsible=Party.supervision, due_on=_d(6, 15)),
                MeetingItem(item_id="edu-1", kind=ItemKind.member_education, description="流动党员组织关系转接",
                            responsible=Party.township, due_on=_d(8, 31)),
            ),
        ))
        # Items resolved at the next meeting; at every third site the education item stays open.
        resolves = ("tech-1", "risk-1") if p % 3 == 0 else ("tech-1", "risk-1", "edu-1")
        second.append(HoldJointMeeting(
            command_id=cid("meeting", site_id, 2), site_id=site_id, meeting_id="2020-q3",
            held_on=_d(7, 10), parties=[Party.owner, Party.township, Party.construction], resolves=resolves,
        ))
    first.append(SignCoBuildingAgreement(
        command_id=cid("agreement", "tangyuan"), site_id="tangyuan-500kv", agreement_id="tangyuan-2020",
        village="白琳镇棠园村", signed_on=_d(5, 20),
        items=[AgreementItem(item_id=f"t{i + 1}", title=title) for i, title in enumerate(TANGYUAN_ITEMS)],
    ))
    second += [CompleteCoBuildingItem(command_id=cid("cobuild", i), site_id="tangyuan-500kv",
                                      agreement_id="tangyuan-2020", item_id=f"t{i + 1}", completed_on=_d(8, 1))
               for i in range(5)]
    for site_id, village, kind, quantity, note in SUPPORT:
        first.append(RecordVillageSupport(command_id=cid("support", site_id, kind.value),
                                          site_id=site_id, village=village, kind=kind, given_on=_d(4, 15),
                                          quantity=Decimal(quantity), note=note))
    for site_id, case_id, kind, amount, resolved, about in DISPUTES:
        first.append(ReportDispute(command_id=cid("dispute", case_id), site_id=site_id,
                                   case_id=case_id, kind=kind, reported_on=_d(6, 1), parties=["当事双方"],
                                   amount_yuan=amount, description=about))
        second.append(StartMediation(command_id=cid("mediate", case_id), site_id=site_id,
                                     case_id=case_id, mediator="工地纠纷调解站", started_on=_d(6, 2)))
        if resolved:
            third.append(ResolveMediation(command_id=cid("resolve", case_id), site_id=site_id,
                                          case_id=case_id, resolved_on=_d(6, 5), outcome="调解成功，双方签订协议",
                                          amount_settled_yuan=amount))
    return [first, second, third]

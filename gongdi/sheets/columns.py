"""The Chinese column headers of the two lists people keep in Excel, and the Chinese words for the coded values.

The member roster (党员花名册) and the key-project list (重点项目清单) are both what `gongdi import` reads and what
`gongdi export members|sites` writes, so a list exported from one platform imports into another unchanged.
"""
from __future__ import annotations

from contracts.membership import Gender, Job, MemberStatus, Relation, UnitKind

# (header, the command field it fills): the order is the template's column order.
MEMBER_COLUMNS: list[tuple[str, str]] = [
    ("工地编号", "site_id"),
    ("党员编号", "member_id"),
    ("姓名", "name"),
    ("性别", "gender"),
    ("入党日期", "admitted_on"),
    ("党员状态", "status"),
    ("单位类别", "unit_kind"),
    ("单位名称", "unit_name"),
    ("岗位", "job"),
    ("工段/班组", "section"),
    ("原党组织", "home_org"),
    ("组织关系", "relation"),
    ("进场日期", "arrived_on"),
]

SITE_COLUMNS: list[tuple[str, str]] = [
    ("工地编号", "site_id"),
    ("项目名称", "name"),
    ("所属乡镇", "township"),
    ("主管部门", "department"),
    ("总投资(万元)", "cost_wan"),
    ("计划工期(月)", "planned_months"),
    ("开工日期", "start_date"),
    ("建设单位", "owner"),
    ("设计单位", "design"),
    ("施工单位", "construction"),
    ("监理单位", "supervision"),
]

GENDER = {Gender.male: "男", Gender.female: "女"}
STATUS = {MemberStatus.full: "正式", MemberStatus.probationary: "预备"}
RELATION = {Relation.transferred: "转入", Relation.mobile: "流动"}
JOB = {Job.worker: "农民工", Job.technician: "技术人员", Job.manager: "管理人员"}
UNIT_KIND = {UnitKind.owner: "建设单位", UnitKind.design: "设计单位", UnitKind.construction: "施工单位",
             UnitKind.supervision: "监理单位", UnitKind.department: "主管部门", UnitKind.township: "驻地乡镇/村"}

"""The Chinese column headers of the two lists people keep in Excel, and the Chinese words for the coded values.

The member roster (党员花名册) and the key-project list (重点项目清单) are both what `gongdi import` reads and what
`gongdi export members|sites` writes, so a list exported from one platform imports into another unchanged.
"""
from __future__ import annotations

from contracts.membership import Gender, Job, MemberStatus, Relation, UnitKind

# A CSV text cell beginning like a formula would be run by Excel when it opens the file (CSV injection): the export
# writes it after a ' (as Excel itself marks text), and the import drops that mark again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

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

# ---- what people also type (read by `gongdi import`; an export writes the words above) -------------------------

# Other words for the coded values, besides the word above and the code itself (正式党员 for 正式, 业主 for 建设单位).
ALSO: dict[Gender | MemberStatus | Relation | Job | UnitKind, tuple[str, ...]] = {
    Gender.male: ("男性", "男士", "m"),
    Gender.female: ("女性", "女士", "f"),
    MemberStatus.full: ("正式党员",),
    MemberStatus.probationary: ("预备党员",),
    Relation.transferred: ("组织关系转入", "已转入", "关系转入", "转入党员"),
    Relation.mobile: ("流动党员", "未转入", "关系未转入"),
    Job.worker: ("工人", "民工", "务工人员", "一线工人", "作业人员"),
    Job.technician: ("技术员", "技术", "技术骨干", "工程技术人员"),
    Job.manager: ("管理", "管理者", "项目管理人员", "管理岗"),
    UnitKind.owner: ("业主", "业主单位", "建设方", "建设"),
    UnitKind.design: ("设计", "设计院", "设计方"),
    UnitKind.construction: ("施工", "施工方", "总包", "施工总承包单位", "分包单位", "劳务分包"),
    UnitKind.supervision: ("监理", "监理方", "监理公司"),
    UnitKind.department: ("项目主管部门", "行业主管部门", "主管单位"),
    UnitKind.township: ("驻地乡镇", "驻地村", "乡镇", "村", "乡镇/村", "驻地乡镇村"),
}

# Other headers for the same column (an older roster, the record form's words); compared without spaces and with
# full-width brackets and slashes folded, so 总投资（万元） and 工段／班组 need no entry here.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "工地编号": ("项目编号", "工地代码", "项目代码", "工地"),
    "党员编号": ("编号",),
    "姓名": ("党员姓名",),
    "入党日期": ("入党时间", "政治生日"),
    "党员状态": ("党员类别", "党员身份"),
    "单位类别": ("单位类型",),
    "单位名称": ("所在单位", "工作单位"),
    "岗位": ("岗位类别",),
    "工段/班组": ("工段", "班组", "所在工段", "所在班组"),
    "原党组织": ("原所在党组织", "所在党组织", "原党支部"),
    "组织关系": ("组织关系情况",),
    "进场日期": ("进场时间", "到岗日期"),
    "项目名称": ("工程名称", "工地名称"),
    "所属乡镇": ("乡镇", "所在乡镇", "乡镇(街道)", "所属乡镇(街道)"),
    "主管部门": ("项目主管部门", "行业主管部门"),
    "总投资(万元)": ("总投资", "投资额(万元)", "总投资额(万元)", "项目总投资(万元)", "造价(万元)"),
    "计划工期(月)": ("计划工期", "工期(月)", "工期"),
    "开工日期": ("开工时间", "计划开工日期"),
    "建设单位": ("业主单位", "业主"),
}

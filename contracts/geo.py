"""Townships (乡镇/街道) of the pilot city; the code is the subject token, the name is what users read."""

CITY = "fuding"
CITY_NAME = "福鼎市"

TOWNSHIPS: dict[str, str] = {
    "tongshan": "桐山街道",
    "tongcheng": "桐城街道",
    "shanqian": "山前街道",
    "guanling": "贯岭镇",
    "qianqi": "前岐镇",
    "shacheng": "沙埕镇",
    "dianxia": "店下镇",
    "taimushan": "太姥山镇",
    "panxi": "磻溪镇",
    "bailin": "白琳镇",
    "diantou": "点头镇",
    "guanyang": "管阳镇",
    "yushan": "嵛山镇",
    "xiamen": "硖门畲族乡",
    "jiayang": "佳阳畲族乡",
    "dieshi": "叠石乡",
}

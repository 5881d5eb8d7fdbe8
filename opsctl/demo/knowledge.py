"""The demo hospital's knowledge base and talk-script library (written for the demo; no real patient data)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from opsctl.demo.context import CUSTOMER_SERVICE, OPERATOR

if TYPE_CHECKING:
    from opsctl.demo.context import DemoContext

KB_DOCS = {
    "心血管内科-高血压用药问答.md": """---
specialty: 心血管内科
type: faq
owner: 心内科 王芳
source: 心内科患者教育手册（演示）
review_by: 2027-06-30
---
# 高血压用药问答

## 降压药
问：降压药吃了头晕还能停吗？
答：服药后头晕多与血压下降过快或过低有关。请不要自行停药，先在安静状态下测量血压并记录，然后在互联网医院复诊，由医生调整剂量或换药。突然停药可能导致血压反跳。

问：血压正常了，降压药可以减量吗？
答：血压达标是药物控制的结果，大多数原发性高血压需要长期服药。是否减量需由医生结合家庭血压记录评估，不要自行减药。

问：降压药早上吃还是晚上吃？
答：多数长效降压药每天早上服用一次即可。夜间血压高的患者，医生可能建议调整服药时间，请按处方执行。

## 家庭血压测量
测量前安静休息5分钟，坐位，上臂与心脏同高。每天早晚各测两次，取平均值记录。血压计建议使用经过认证的上臂式电子血压计。
""",
    "内分泌科-糖尿病饮食.md": """---
specialty: 内分泌科
type: education
owner: 内分泌科 李强
source: 糖尿病健康教育讲义（演示）
review_by: 2026-10-31
---
# 糖尿病饮食指导

## 主食与水果
控制总热量，主食定时定量，粗细搭配。血糖控制平稳时，可以在两餐之间少量吃低糖水果，如苹果、柚子、草莓，并相应减少主食。

问：血糖高可以吃水果吗？
答：空腹血糖和餐后血糖控制平稳时可以适量吃水果，每天不超过200克，放在两餐之间吃；血糖波动大时暂时不吃，可用黄瓜、西红柿代替。

## 胰岛素保存
未开封的胰岛素放在2至8摄氏度冰箱冷藏，不能冷冻。开封后的胰岛素可在室温（不超过25摄氏度）下保存，一般28天内用完。
""",
    "互联网医院-复诊开药流程.txt": """互联网医院复诊开药流程
问：网上复诊怎么开药？
答：在公众号菜单进入互联网医院，选择“复诊开方”，上传近期在本院的就诊记录，医生审核后开具处方，药师审方后药品配送到家。
问：哪些情况不能在网上开药？
答：首诊患者、病情变化或出现新症状的患者，需要到医院线下就诊。麻醉药品、精神药品等特殊管理药品不能在互联网医院开具。
""",
}

# title, channel, specialty, tags, alternatives, body
SCRIPTS = [
    ("降压药能否自行停药", "私聊", "心血管内科", "高血压,用药", "降压药能停吗|血压正常了还要吃药吗|吃降压药头晕怎么办",
     "{{患者称呼}}您好，降压药请不要自行停药。如果出现头晕，请先测量血压并记录，可以在互联网医院预约{{医生}}复诊调整用药。"),
    ("胰岛素怎么保存", "私聊", "内分泌科", "糖尿病,胰岛素", "胰岛素要放冰箱吗|胰岛素开封后能放多久",
     "{{患者称呼}}您好，未开封的胰岛素请冷藏在2至8摄氏度，开封后室温保存、28天内用完。如有疑问可咨询{{科室}}药师。"),
    ("网上复诊开药", "私聊", "全科", "互联网医院,复诊", "网上怎么开药|能不能在线配药",
     "{{患者称呼}}您好，复诊开药请在公众号菜单进入互联网医院选择“复诊开方”，{{医生}}审核后药品可配送到家。"),
    ("世界高血压日科普", "朋友圈", "心血管内科", "科普,高血压", "",
     "5月17日是世界高血压日。建议成年人每年至少测量一次血压，家庭自测血压请坐位休息5分钟后测量。"),
    ("控糖训练营招募", "社群", "内分泌科", "活动,糖尿病", "",
     "控糖训练营开营啦！名医推荐的饮食方案，参加即可根治糖尿病，有效率高达95%！"),
]

AGENT_QUERIES = ["降压药吃了头晕还能停吗", "血压正常了还要一直吃药吗", "胰岛素开封了能放多久", "在网上怎么配药",
                 "糖尿病能吃苹果吗"]


def write_kb(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in KB_DOCS.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def write_scripts_xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["标题", "渠道", "专科", "标签", "相似问法", "正文"])
    for row in SCRIPTS:
        ws.append(list(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def step_knowledge_base(ctx: DemoContext) -> None:
    """Knowledge base and talk scripts: ingest, import, medical review, agents' searches."""
    from content.scripts import services as scripts
    from knowledge_base.services import kb

    c = ctx.container
    work = c.settings.data_dir / "demo_kb"
    report = kb.ingest(c.uow(), OPERATOR, c.kb_index, [write_kb(work / "docs")],
                       kb.MetaDefaults(specialty="全科", doc_type="faq", owner="客服中心"))
    stale = [d.title for d in kb.list_documents(c.uow(), CUSTOMER_SERVICE, stale_only=True)]
    ctx.add("知识库文档", report.added + report.updated + report.unchanged,
            f"{report.index_size} 个段落；待复核：{'、'.join(stale) or '无'}")
    imported = scripts.import_xlsx(c.uow(), OPERATOR, write_scripts_xlsx(work / "话术库.xlsx"))
    approved = 0
    doctor = Principal(account_id="demo:doctor", username="demo-doctor", role=Role.DOCTOR)
    for row in imported:
        if row.blocked:
            continue
        scripts.submit_for_review(c.uow(), OPERATOR, row.public_id)
        scripts.approve(c.uow(), doctor, row.public_id)
        approved += 1
    scripts.sync_index(c.uow(), c.scripts_index)
    ctx.add("话术导入", len(imported), f"审核通过 {approved} 条；{sum(r.blocked for r in imported)} 条含广告法禁用语被拦下")
    found = 0
    examples = []
    for query in AGENT_QUERIES:
        ctx.clock.advance(timedelta(minutes=7))
        hits = scripts.search(c.uow(), CUSTOMER_SERVICE, c.scripts_index, query, k=1, weights=c.search_weights,
                              rrf_k=c.settings.search.rrf_k)
        kb_hits = kb.search(c.uow(), CUSTOMER_SERVICE, c.kb_index, query, k=1, weights=c.search_weights,
                            rrf_k=c.settings.search.rrf_k)
        if hits:
            found += 1
            scripts.record_use(c.uow(), CUSTOMER_SERVICE, hits[0].public_id, "copied")
        examples.append(f"「{query}」→ {hits[0].title if hits else '（无话术）'} / "
                        f"{kb_hits[0].question or kb_hits[0].heading if kb_hits else '（无）'}")
    ctx.add("客服检索", f"{found}/{len(AGENT_QUERIES)}", "；".join(examples))

"""Talk-script library on both databases: lint on save, review workflow, only approved scripts reach agents."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from clinical_core.domain.access import SYSTEM, Principal
from clinical_core.domain.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, RuleViolation
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import AuditRow, DrugRow
from content.scripts import services as scripts
from content.scripts.models import ScriptUsageRow
from opsctl.wiring import Container
from tests.support.kb_model import shared_embedder

OPS = Principal(account_id="acc_ops", username="ops1", role=Role.OPERATIONS)
DOCTOR = Principal(account_id="acc_dr", username="dr.li", role=Role.DOCTOR)
AGENT = Principal(account_id="acc_cs", username="cs1", role=Role.CUSTOMER_SERVICE)
BODY = "{{患者称呼}}您好，降压药请不要自行停药。头晕请先测血压，{{医生}}会根据情况调整剂量。"


def _new(body: str = BODY, channel: str = "私聊", title: str = "降压药能否停药") -> scripts.NewScript:
    return scripts.NewScript(title, channel, "心血管内科", body, ("高血压",), ("血压正常了还要吃药吗", "降压药能停吗"))


def test_review_workflow_and_versions(container: Container) -> None:
    draft = scripts.add_script(container.uow(), OPS, _new())
    assert draft.status == "草稿" and draft.version == 1 and draft.variables == ["患者称呼", "医生"]
    with pytest.raises(Forbidden):
        scripts.approve(container.uow(), AGENT, draft.public_id)
    with pytest.raises(IllegalTransition):
        scripts.approve(container.uow(), DOCTOR, draft.public_id)
    scripts.submit_for_review(container.uow(), OPS, draft.public_id)
    rejected = scripts.reject(container.uow(), DOCTOR, draft.public_id, "请补充就医指征")
    assert rejected.status == "草稿" and rejected.reviewer == "doctor:acc_dr"
    scripts.submit_for_review(container.uow(), OPS, draft.public_id)
    with pytest.raises(InvalidInput, match="审核医生"):
        scripts.approve(container.uow(), SYSTEM, draft.public_id)
    approved = scripts.approve(container.uow(), DOCTOR, draft.public_id)
    assert approved.status == "已通过" and approved.approved_version == 1

    # An edit is a new draft version; agents keep getting version 1 until it is approved.
    v2 = scripts.edit_script(container.uow(), OPS, draft.public_id, body=BODY + "如有胸闷请立即就医。")
    assert (v2.version, v2.approved_version, v2.status) == (2, 1, "草稿")
    text = scripts.render_script(container.uow(), AGENT, draft.public_id, {"患者称呼": "张先生", "医生": "李医生"})
    assert text.startswith("张先生您好") and "胸闷" not in text
    with pytest.raises(InvalidInput, match="缺少变量：医生"):
        scripts.render_script(container.uow(), AGENT, draft.public_id, {"患者称呼": "张先生"})

    assert scripts.record_use(container.uow(), AGENT, draft.public_id, "copied") == 1
    assert scripts.record_use(container.uow(), AGENT, draft.public_id, "sent") == 2
    scripts.retire(container.uow(), OPS, draft.public_id)
    with pytest.raises(Conflict):
        scripts.render_script(container.uow(), AGENT, draft.public_id, {"患者称呼": "张先生", "医生": "李医生"})
    with container.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ScriptUsageRow)) == 2
        actions = set(uow.session.scalars(select(AuditRow.action).where(AuditRow.entity_id == draft.public_id)))
    assert actions == {"script.add", "script.submit", "script.reject", "script.approve", "script.edit",
                       "script.retire"}


def test_public_copy_with_banned_terms_cannot_be_submitted_but_a_private_answer_can(container: Container) -> None:
    with container.uow() as uow:
        uow.session.add(DrugRow(public_id="drg_test", code="T001", generic_name="氨氯地平", trade_name="络活喜",
                                specification="5mg", dosage_form="片剂", unit="盒", price_fen=3000, category="western",
                                prescription_only=True))
        uow.commit()
    moments = scripts.add_script(container.uow(), OPS, _new("我院心内科全国第一，络活喜根治高血压！", "朋友圈", "科普"))
    assert moments.blocked
    rules = {f.rule: f for f in moments.findings}
    assert {"A", "B", "RX"} <= set(rules) and rules["RX"].term == "络活喜" and "第十五条" in rules["RX"].source
    with pytest.raises(RuleViolation):
        scripts.submit_for_review(container.uow(), OPS, moments.public_id)

    private = scripts.add_script(container.uow(), OPS, _new("您好，络活喜最好早上吃。", "私聊", "服药时间"))
    assert private.findings and not private.blocked
    assert scripts.submit_for_review(container.uow(), OPS, private.public_id).status == "医学审核中"


def test_unknown_variables_and_bad_channels_are_refused(container: Container) -> None:
    with pytest.raises(InvalidInput, match="未知的变量"):
        scripts.add_script(container.uow(), OPS, _new("{{患者姓名}}您好"))
    with pytest.raises(InvalidInput, match="渠道"):
        scripts.add_script(container.uow(), OPS, _new(channel="微博"))
    with pytest.raises(Forbidden):
        scripts.add_script(container.uow(), AGENT, _new())


def test_excel_import_and_export_round_trip(container: Container, tmp_path: Path) -> None:
    scripts.add_script(container.uow(), OPS, _new())
    out = tmp_path / "scripts.xlsx"
    assert scripts.export_xlsx(container.uow(), OPS, out) == 1
    ws = load_workbook(out).active
    assert [c.value for c in ws[1]][:6] == list(scripts.HEADERS)
    ws.append(["新活动", "活动", "内分泌科", "糖尿病", "", "糖尿病义诊，名医推荐，免费治疗"])
    ws.parent.save(out)
    rows = scripts.import_xlsx(container.uow(), OPS, out)
    assert [r.row for r in rows] == [2, 3]
    assert rows[1].blocked and rows[1].findings == 2  # 名医推荐 blocks, 免费治疗 warns
    assert len(scripts.list_scripts(container.uow(), AGENT, status="draft")) == 3


@pytest.mark.slow
def test_agents_search_only_approved_scripts(container: Container) -> None:
    container.__dict__["embedder"] = shared_embedder()
    index = container.scripts_index
    live = scripts.add_script(container.uow(), OPS, _new())
    scripts.submit_for_review(container.uow(), OPS, live.public_id)
    scripts.approve(container.uow(), DOCTOR, live.public_id, index=index)
    hidden = scripts.add_script(container.uow(), OPS, _new("{{患者称呼}}您好，降压药停药前请咨询医生。", title="降压药停药草稿"))
    scripts.sync_index(container.uow(), index)

    hits = scripts.search(container.uow(), AGENT, index, "患者问降压药能不能停", k=5)
    assert [h.public_id for h in hits] == [live.public_id]
    assert hits[0].variables == ["患者称呼", "医生"] and "降压药" in hits[0].matched_terms
    assert scripts.search(container.uow(), AGENT, index, "降压药", channel="朋友圈") == []
    scripts.retire(container.uow(), OPS, live.public_id, index=index)
    assert scripts.search(container.uow(), AGENT, index, "患者问降压药能不能停") == []
    assert hidden.public_id not in {h.public_id for h in hits}

"""Questionnaires and follow-up plans on SQLite and PostgreSQL: definitions, versioning once
answered, validation naming the question, care-team access, Excel export; plans started by a
doctor and by a dispensed prescription; delivery states, quiet hours, never sent twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from campaigns.services import followup, questionnaires
from clinical_core.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
)
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import PatientRow
from clinical_core.services import rx_circulation
from opsctl.wiring import Container
from tests.integration.test_prescriptions import pharmacist, setup  # noqa: F401  (fixture)
from tests.integration.test_rx_circulation import approved  # noqa: F401  (fixture)
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic

BP = {"title": "高血压随访问卷", "questions": [
    {"key": "sbp", "kind": "number", "title": "收缩压", "min": 60, "max": 260, "unit": "mmHg"},
    {"key": "dizzy", "kind": "single", "title": "近一周是否头晕", "options": ["否", "偶尔", "经常"]},
    {"key": "drugs", "kind": "multiple", "title": "在服药物", "options": ["氨氯地平", "缬沙坦", "其他"],
     "required": False},
    {"key": "note", "kind": "text", "title": "其他情况", "required": False, "max_length": 50},
]}


@pytest.fixture
def clinic(container: Container) -> Clinic:
    return build_clinic(container)


def _steps(template_qid: str) -> list[dict[str, object]]:
    return [
        {"day": 3, "at": "10:00", "kind": "questionnaire", "title": "血压随访问卷", "questionnaire_id": template_qid},
        {"day": 7, "at": "09:30", "kind": "text", "title": "用药提醒", "body": "请按时服药，每日早晨测量血压"},
        {"day": 14, "at": "22:30", "kind": "course", "title": "高血压饮食课", "url": "https://example.org/c/1"},
        {"day": 30, "at": "10:00", "kind": "schedule", "title": "请预约复诊", "url": "/h5/booking?dept=CARD"},
    ]


def _bind_openid(c: Container, patient_id: str, openid: str) -> None:
    with c.uow() as uow:
        uow.session.execute(update(PatientRow).where(PatientRow.public_id == patient_id).values(openid=openid))
        uow.commit()


# -- questionnaires --------------------------------------------------------------------------

def test_define_answer_validate_and_version(container: Container, clinic: Clinic, clock: FixedClock) -> None:
    q = questionnaires.create(container.uow(), clinic.doctor_a, BP)
    assert (q.version, q.responses, q.owner) == (1, 0, "医生A")
    with pytest.raises(Forbidden):
        questionnaires.create(container.uow(), clinic.patient, BP)
    with pytest.raises(InvalidInput) as bad_def:
        questionnaires.create(container.uow(), clinic.doctor_a, {"title": "x", "questions": [
            {"key": "a", "kind": "single", "title": "选择", "options": ["是"]}]})
    assert bad_def.value.field == "questions[0].options"

    # unanswered: revised in place
    revised = questionnaires.revise(container.uow(), clinic.doctor_a, q.questionnaire_id, BP)
    assert revised.version == 1
    with pytest.raises(Forbidden):
        questionnaires.revise(container.uow(), clinic.doctor_b, q.questionnaire_id, BP)

    cases = [({"sbp": 300, "dizzy": "否"}, "answers.sbp", "收缩压"),
             ({"sbp": "高", "dizzy": "否"}, "answers.sbp", "数字"),
             ({"sbp": 120}, "answers.dizzy", "必答题"),
             ({"sbp": 120, "dizzy": "有时"}, "answers.dizzy", "近一周是否头晕"),
             ({"sbp": 120, "dizzy": "否", "drugs": ["缬沙坦", "缬沙坦"]}, "answers.drugs", "在服药物"),
             ({"sbp": 120, "dizzy": "否", "note": "很" * 51}, "answers.note", "50"),
             ({"sbp": 120, "dizzy": "否", "extra": 1}, "answers.extra", "extra")]
    for answers, where, words in cases:
        with pytest.raises(InvalidInput) as bad:
            questionnaires.submit(container.uow(), clinic.patient, q.questionnaire_id, answers)
        assert bad.value.field == where and words in bad.value.message, answers
    answered = questionnaires.submit(container.uow(), clinic.patient, q.questionnaire_id,
                                     {"sbp": 135.5, "dizzy": "偶尔", "drugs": ["缬沙坦", "氨氯地平"], "note": "夜里多梦"})
    assert answered.answers["drugs"] == ["氨氯地平", "缬沙坦"]  # in the questionnaire's order
    assert answered.patient_name == "张*" and answered.version == 1
    with pytest.raises(Forbidden):
        questionnaires.submit(container.uow(), clinic.doctor_a, q.questionnaire_id, {"sbp": 1})

    # answered: a revision is a new version; the old answer stays with version 1
    changed = {**BP, "questions": [*BP["questions"], {"key": "hr", "kind": "number", "title": "心率",  # type: ignore[list-item]
                                                     "min": 30, "max": 220}]}
    v2 = questionnaires.revise(container.uow(), clinic.doctor_a, q.questionnaire_id, changed)
    assert v2.version == 2
    questionnaires.submit(container.uow(), clinic.other_patient, q.questionnaire_id,
                          {"sbp": 118, "dizzy": "否", "hr": 72})
    views = questionnaires.list_responses(container.uow(), clinic.doctor_a, q.questionnaire_id)
    assert [(v.version, v.patient_name) for v in views] == [(1, "张*"), (2, "王*")]


def test_care_team_access_to_answers(container: Container, clinic: Clinic, clock: FixedClock) -> None:
    q = questionnaires.create(container.uow(), clinic.doctor_a, BP)
    for patient in (clinic.patient, clinic.other_patient):
        questionnaires.submit(container.uow(), patient, q.questionnaire_id, {"sbp": 120, "dizzy": "否"})
    assert len(questionnaires.list_responses(container.uow(), ADMIN, q.questionnaire_id)) == 2
    own = questionnaires.list_responses(container.uow(), clinic.patient, q.questionnaire_id)
    assert [v.patient_id for v in own] == [clinic.patient.patient_id]
    with pytest.raises(Forbidden):  # doctor B: not the author, responsible for none of them
        questionnaires.list_responses(container.uow(), clinic.doctor_b, q.questionnaire_id)
    with pytest.raises(Forbidden):
        questionnaires.list_responses(container.uow(), OPS, q.questionnaire_id)
    # doctor B becomes responsible for one patient's plan: sees that patient's answers only
    followup.create_template(container.uow(), clinic.doctor_a, "bp", "高血压随访", _steps(q.questionnaire_id))
    followup.start_plans(container.uow(), ADMIN, "bp", [clinic.other_patient.patient_id or ""])
    with container.uow() as uow:  # admin started it: make doctor B responsible
        from campaigns.persistence.followup import FollowupPlanRow
        from clinical_core.persistence.models import StaffRow

        b = uow.session.scalar(select(StaffRow.id).where(StaffRow.public_id == clinic.doctor_b.staff_id))
        uow.session.execute(update(FollowupPlanRow).values(doctor_id=b))
        uow.commit()
    seen = questionnaires.list_responses(container.uow(), clinic.doctor_b, q.questionnaire_id)
    assert [v.patient_id for v in seen] == [clinic.other_patient.patient_id]


def test_excel_export_is_masked_and_complete(container: Container, clinic: Clinic, tmp_path: Path) -> None:
    q = questionnaires.create(container.uow(), clinic.doctor_a, BP)
    questionnaires.submit(container.uow(), clinic.patient, q.questionnaire_id,
                          {"sbp": 140, "dizzy": "经常", "drugs": ["氨氯地平", "其他"]})
    questionnaires.revise(container.uow(), clinic.doctor_a, q.questionnaire_id,
                          {**BP, "questions": [*BP["questions"], {"key": "hr", "kind": "number", "title": "心率"}]})
    questionnaires.submit(container.uow(), clinic.other_patient, q.questionnaire_id,
                          {"sbp": 118, "dizzy": "否", "hr": 66})
    out = tmp_path / "bp.xlsx"
    result = questionnaires.export_xlsx(container.uow(), clinic.doctor_a, q.questionnaire_id, out)
    assert (result.responses, result.versions) == (2, 2)
    rows = list(load_workbook(out, read_only=True).active.iter_rows(values_only=True))
    assert rows[0][:5] == ("答卷编号", "版本", "患者编号", "患者", "提交时间（北京时间）")
    assert rows[0][5:] == ("收缩压（sbp）", "近一周是否头晕（dizzy）", "在服药物（drugs）", "其他情况（note）", "心率（hr）")
    assert rows[1][3:8] == ("张*", rows[1][4], 140, "经常", "氨氯地平；其他")
    assert isinstance(rows[1][4], datetime) and rows[1][1] == 1
    assert rows[2][3] == "王*" and rows[2][9] == 66
    text = repr(rows)
    assert "张伟" not in text and "王芳" not in text and "13812345678" not in text
    with pytest.raises(Forbidden):
        questionnaires.export_xlsx(container.uow(), clinic.doctor_b, q.questionnaire_id, tmp_path / "no.xlsx")


# -- follow-up plans -------------------------------------------------------------------------

def test_doctor_starts_plans_and_steps_are_scheduled_out_of_quiet_hours(
        container: Container, clinic: Clinic, clock: FixedClock) -> None:
    q = questionnaires.create(container.uow(), clinic.doctor_a, BP)
    followup.create_template(container.uow(), clinic.doctor_a, "bp", "高血压随访", _steps(q.questionnaire_id))
    with pytest.raises(Conflict):
        followup.create_template(container.uow(), clinic.doctor_a, "bp", "again", _steps(q.questionnaire_id))
    with pytest.raises(InvalidInput):
        followup.create_template(container.uow(), clinic.doctor_a, "x", "x", [{"day": 1, "kind": "text",
                                                                             "title": "超过二十个字的标题超过二十个字的标题啊"}])
    with pytest.raises(Forbidden):  # not doctor A's patients yet
        followup.start_plans(container.uow(), clinic.doctor_a, "bp", [clinic.patient.patient_id or ""])
    plans = followup.start_plans(container.uow(), ADMIN, "bp", [clinic.patient.patient_id or "",
                                                              clinic.other_patient.patient_id or ""])
    assert len(plans) == 2 and all(p.status == "active" and len(p.steps) == 4 for p in plans)
    start = clock.now()  # 2026-11-02 10:00 Shanghai
    due = [s.due_at for s in plans[0].steps]
    assert due[0] == datetime(2026, 11, 5, 2, 0, tzinfo=UTC)  # day 3, 10:00 Shanghai
    assert due[1] == datetime(2026, 11, 9, 1, 30, tzinfo=UTC)
    assert due[2] == datetime(2026, 11, 17, 0, 0, tzinfo=UTC)  # 22:30 is quiet: moved to 08:00 the next day
    assert due[3] > start + timedelta(days=29)


def test_a_dispensed_prescription_starts_the_matching_plan_once(
        container: Container, approved: tuple[Clinic, str], clock: FixedClock) -> None:  # noqa: F811
    clinic, rx_id = approved
    followup.create_template(container.uow(), ADMIN, "bp-rx", "高血压发药随访", [
        {"day": 7, "kind": "text", "title": "用药提醒", "body": "请按时服药"}],
        trigger_event="rx_dispensed", trigger_match=["I10"])
    followup.create_template(container.uow(), ADMIN, "dm-rx", "糖尿病发药随访", [
        {"day": 7, "kind": "text", "title": "血糖提醒", "body": "请测血糖"}],
        trigger_event="rx_dispensed", trigger_match=["E11", "糖尿病"])
    assert followup.start_from_events(container.uow(), clock.now()).started == 0
    order = rx_circulation.pay_for_drugs(container.uow(), clinic.patient, container.payments, rx_id)
    rx_circulation.handle_paid_notification(container.uow(), container.payments,
                                            *container.payments.simulate_payment(order.out_trade_no))
    rx_circulation.add_store(container.uow(), ADMIN, "ph-02", "药房", "深圳市", phone="0755-1", agreement_no="A")
    rx_circulation.choose_store(container.uow(), clinic.patient, rx_id, "ph-02")
    rx_circulation.dispense(container.uow(), pharmacist(container, "ph.d", "主管药师", date(2012, 1, 1)),
                            container.signer, rx_id)
    clock.advance(timedelta(minutes=15))
    assert followup.start_from_events(container.uow(), clock.now()) == followup.StartResult(1, 1)
    assert followup.start_from_events(container.uow(), clock.now()) == followup.StartResult(0, 0)
    (plan,) = followup.list_plans(container.uow(), clinic.doctor_a)  # doctor A prescribed: responsible
    assert (plan.template, plan.source, plan.patient_id) == ("bp-rx", "rx_dispensed", clinic.patient.patient_id)
    # doctor A now cares for the patient: may start another plan himself
    assert followup.start_plans(container.uow(), clinic.doctor_a, "bp-rx", [clinic.patient.patient_id or ""])
    # the cursor re-read from scratch still starts nothing twice (unique template/source/event)
    from campaigns.persistence.followup import FollowupCursorRow

    with container.uow() as uow:
        uow.session.execute(update(FollowupCursorRow).values(position_at=clock.now() - timedelta(days=1),
                                                             position_id=0))
        uow.commit()
    assert followup.start_from_events(container.uow(), clock.now()).started == 0

"""Demo step: the integrated (HIS) mode of prescriptions (集成模式, RX-5), at the end of the month.

The hospital's HIS (the fake, in its own file under the data directory) holds
the drug dictionary the pharmacy used this month, with one price changed, one
controlled drug withdrawn and one new drug; its diagnosis library holds the
diagnoses of the offline visits. The catalogue is synced (dry run, then for
real). Then one follow-up prescription goes the integrated way: the same rules,
signature and pharmacist review, then register and charge at the HIS, whose
answer is lost once (an injected timeout): nothing changes locally, the
reconciliation job finds the charge at the HIS and settles it, once; the
hospital pharmacy dispenses through the HIS.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.errors import ServiceUnavailable
from clinical_core.domain.staff import Role
from clinical_core.persistence import models as m
from clinical_core.persistence.prescription import (
    PrescriptionReviewRow,
    PrescriptionRow,
)
from clinical_core.ports.his import HisDrug
from clinical_core.services import (
    consult_settings,
    consultation,
    prescriptions,
    rx_circulation,
    rx_his,
)
from clinical_core.services.consult_settings import ServiceSettings

if TYPE_CHECKING:
    from opsctl.demo.context import DemoContext

ADMIN = Principal(account_id="demo:admin", username="demo-admin", role=Role.ADMIN)
OPERATOR = Principal(account_id="demo:operations", username="demo", role=Role.OPERATIONS)
NEW_DRUG = HisDrug("HIS-ATV20", "阿托伐他汀钙片", "立普妥", "20mg*7片", "片剂", "盒", 6120, "western", "none", True, True)


def step_his_integration(ctx: DemoContext) -> None:
    """Integrated (HIS) mode: catalogue sync with its difference, and one prescription through the HIS."""
    c, his = ctx.container, ctx.container.his_rx
    with c.uow() as u:
        drugs = [HisDrug(d.code, d.generic_name, d.trade_name, d.specification, d.dosage_form, d.unit, d.price_fen,
                         d.category, d.control_class, d.prescription_only, True)
                 for d in u.session.scalars(select(m.DrugRow).where(m.DrugRow.active.is_(True)).order_by(m.DrugRow.code))]
        dx = {d["icd10"]: d["name"] for visit in u.session.scalars(select(m.HisVisitRow.diagnoses)) for d in visit}
        done = u.session.execute(
            select(PrescriptionRow.doctor_id, PrescriptionRow.patient_id, PrescriptionRow.diagnoses,
                   PrescriptionReviewRow.pharmacist_id)
            .join(PrescriptionReviewRow, PrescriptionReviewRow.prescription_id == PrescriptionRow.id)
            .where(PrescriptionRow.status == "delivered", PrescriptionRow.consultation_id.is_not(None),
                   PrescriptionReviewRow.decision == "approve")
            .order_by(PrescriptionRow.id).limit(1)).first()
        people = None
        if done is not None:
            doctor = u.session.get(m.StaffRow, done[0])
            patient = u.session.get(m.PatientRow, done[1])
            pharmacist = u.session.get(m.StaffRow, done[3])
            assert doctor is not None and patient is not None and pharmacist is not None
            dept = u.session.get(m.DepartmentRow, doctor.department_id)
            people = (doctor.public_id, patient.public_id, pharmacist.public_id, dept.code if dept else "",
                      done[2][0]["icd10"])
    ordinary = [d for d in drugs if d.control_class == "none" and d.category == "western"]
    controlled = [d for d in drugs if d.control_class != "none"]
    if not ordinary:
        ctx.add("集成模式（HIS）", 0, "演示数据中没有药品目录")
        return
    changed = ordinary[-1]
    for d in drugs:  # the HIS's dictionary: this month's catalogue, one price up, one controlled drug withdrawn
        his.put_drug(replace(d, price_fen=d.price_fen + (100 if d is changed else 0),
                             active=not (controlled and d is controlled[0])))
    his.put_drug(NEW_DRUG)
    for code, name in dx.items():
        his.put_diagnosis(code, name)
    dry = rx_his.sync_catalogue(c.uow(), ADMIN, his, dry_run=True)
    report = rx_his.sync_catalogue(c.uow(), ADMIN, his)
    assert (dry.added, dry.withdrawn) == (report.added, report.withdrawn)
    ctx.add("HIS 药品目录同步", len(report.added) + len(report.changed) + len(report.withdrawn),
            f"新增 {len(report.added)}，变更 {len(report.changed)}，停用 {len(report.withdrawn)}（先预演，全部成功才生效）")
    if people is None:
        ctx.add("集成模式处方（HIS）", 0, "本月没有已签收的处方可作参照")
        return
    doctor_id, patient_id, pharmacist_id, dept, icd10 = people
    doctor = Principal(f"demo:{doctor_id}", doctor_id, Role.DOCTOR, staff_id=doctor_id)
    patient = Principal(f"demo:{patient_id}", "demo-patient", Role.PATIENT, patient_id=patient_id)
    pharmacist = Principal(f"demo:{pharmacist_id}", pharmacist_id, Role.PHARMACIST, staff_id=pharmacist_id)
    service = consult_settings.configure_service(c.uow(), OPERATOR, ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code=dept, time_limit_minutes=24 * 60)).public_id
    oid = consultation.create_consultation(c.uow(), patient, c.payments, service,
                                           "慢病复诊，想续开常用药").consultation.public_id
    consultation.claim_consultation(c.uow(), doctor, oid)
    consultation.post_message(c.uow(), doctor, c.attachments, oid, MessageKind.TEXT, "近期病情稳定吗？")
    issued = prescriptions.issue_prescription(c.uow(), doctor, c.his, c.signer, prescriptions.NewPrescription(
        oid, (icd10,), (prescriptions.NewItem(ordinary[0].code, 1, 7, "每日一次，每次 1 片，口服"),)), his_rx=his)
    prescriptions.review_prescription(c.uow(), pharmacist, c.signer, issued.public_id, approve=True)
    rx_circulation.choose_store(c.uow(), patient, issued.public_id, "PH-MAIN")
    his.inject("charge", "timeout")  # the HIS charges, but its answer is lost
    try:
        rx_circulation.pay_for_drugs(c.uow(), patient, c.payments, issued.public_id, his=his)
    except ServiceUnavailable:
        pass
    unchanged = rx_circulation.track(c.uow(), patient, issued.public_id).status
    ctx.clock.advance(timedelta(minutes=3))
    settled = rx_his.reconcile(c.uow(), ctx.clock.now(), his=his)
    rx_circulation.dispense(c.uow(), pharmacist, c.signer, issued.public_id, his=his)
    final = rx_circulation.track(c.uow(), patient, issued.public_id)
    ctx.add("集成模式处方（HIS）", final.status_label,
            f"同样的规则、签名与药师审方；HIS 收费应答丢失后本地仍为「{unchanged}」，核对任务找回 "
            f"{settled.settled} 笔并只记账一次（实收 ¥{final.paid_fen / 100:.2f}），院内药房经 HIS 发药")
    consultation.reply_consultation(c.uow(), doctor, oid, "已开具处方，请按时服药")

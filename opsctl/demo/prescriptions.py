"""Demo step: a month of online follow-up prescriptions.

Each day a few patients with offline diagnoses book a consultation; the doctor
prescribes for one of those diagnoses. Some drafts break a rule (a controlled
drug, 14 days without a reason, a diagnosis never made offline) and are
refused; pharmacists work the review queue in the evening and reject some with
a structured reason; the doctor revises and the pharmacist reviews again.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.errors import DomainError, RuleViolation
from clinical_core.domain.prescription import RejectReason, ensure_may_review_online
from clinical_core.domain.staff import Role, ensure_may_prescribe
from clinical_core.domain.time import SHANGHAI, local_date
from clinical_core.persistence import models as m
from clinical_core.services import consult_settings, consultation, prescriptions, signatures
from clinical_core.services.consult_settings import ServiceSettings
from clinical_core.services.organisation import qualification_of

if TYPE_CHECKING:
    from opsctl.demo.context import DemoContext

OPERATOR = Principal(account_id="demo:operations", username="demo", role=Role.OPERATIONS)
ADMIN = Principal(account_id="demo:admin", username="demo-admin", role=Role.ADMIN)
USAGE = "每日一次，每次 1 片，口服"


def step_prescriptions(ctx: DemoContext) -> None:
    """A month of follow-up prescriptions: rules refuse some, pharmacists reject and re-review some."""
    c, rng, clock = ctx.container, ctx.rng, ctx.clock
    clock.current = datetime.combine(ctx.plan.start, time(9), tzinfo=SHANGHAI).astimezone(UTC)
    today = local_date(clock.now())
    with c.uow() as u:
        staff = [(qualification_of(s), s.public_id, s.role, code) for s, code in u.session.execute(
            select(m.StaffRow, m.DepartmentRow.code).join(m.DepartmentRow, m.DepartmentRow.id == m.StaffRow.department_id)
            .where(m.StaffRow.role.in_(["doctor", "pharmacist"]), m.StaffRow.active.is_(True)).order_by(m.StaffRow.id))]
        ordinary = list(u.session.scalars(select(m.DrugRow.code).where(
            m.DrugRow.control_class == "none", m.DrugRow.category == "western", m.DrugRow.active.is_(True))))
        controlled = list(u.session.scalars(select(m.DrugRow.code).where(m.DrugRow.control_class != "none")))
        visits = u.session.execute(select(m.PatientRow.public_id, m.HisVisitRow.diagnoses).join(
            m.HisVisitRow, m.HisVisitRow.patient_id == m.PatientRow.id).order_by(m.HisVisitRow.id).limit(600)).all()
    prescribers: dict[str, list[Principal]] = {}
    reviewers: list[Principal] = []
    for q, sid, role, code in staff:
        try:
            if role == "doctor":
                ensure_may_prescribe(q, today)
                prescribers.setdefault(code, []).append(Principal(f"demo:{sid}", sid, Role.DOCTOR, staff_id=sid))
            else:
                ensure_may_review_online(q, today)
                reviewers.append(Principal(f"demo:{sid}", sid, Role.PHARMACIST, staff_id=sid))
        except DomainError:
            continue
    dept = max(prescribers, key=lambda d: len(prescribers[d]), default=None)
    if dept is None or not reviewers or not ordinary or not visits:
        ctx.add("在线处方", 0, "演示数据中没有足够的有处方权医生、审方药师、药品或就诊记录")
        return
    if not (c.settings.data_dir / "ca" / "ca.crt").exists():  # the CA outlives demo resets
        signatures.init_authority(c.uow(), ADMIN, c.signer, "演示医院")
    for clinician in (*prescribers[dept], *reviewers):
        signatures.issue_certificate(c.uow(), ADMIN, c.signer, clinician.staff_id or "")
    service = consult_settings.configure_service(c.uow(), OPERATOR, ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code=dept, time_limit_minutes=24 * 60)).public_id
    diagnoses = {pid: [d["icd10"] for d in dx] for pid, dx in visits}
    n = Counter[str]()
    for _ in range(ctx.plan.days):
        day = clock.current
        for _ in range(rng.randint(2, 4)):
            pid = rng.choice(sorted(diagnoses))
            patient = Principal(f"demo:{pid}", "demo-patient", Role.PATIENT, patient_id=pid)
            doctor = rng.choice(prescribers[dept])
            clock.advance(timedelta(minutes=rng.randint(10, 40)))
            oid = consultation.create_consultation(c.uow(), patient, c.payments, service,
                                                   "慢病复诊，想续开常用药").consultation.public_id
            consultation.claim_consultation(c.uow(), doctor, oid)
            consultation.post_message(c.uow(), doctor, c.attachments, oid, MessageKind.TEXT, "近期病情稳定吗？")
            dx = (rng.choice(diagnoses[pid]),)
            items = tuple(prescriptions.NewItem(code, 1, 7, USAGE) for code in rng.sample(ordinary, rng.randint(1, 3)))
            reason, roll = None, rng.random()
            if roll < 0.06 and controlled:  # a controlled drug: R04 refuses
                items = (prescriptions.NewItem(rng.choice(controlled), 1, 3, USAGE),)
            elif roll < 0.12:  # two weeks without a written reason: R26 refuses
                items = (prescriptions.NewItem(items[0].drug_code, 2, 14, USAGE),)
            elif roll < 0.16:  # a diagnosis never made offline: R02 refuses
                dx = ("Z99.9",)
            elif roll < 0.35:
                items = (prescriptions.NewItem(items[0].drug_code, 4, 28, USAGE),)
                reason = "慢性病病情稳定，长期处方"
            try:
                prescriptions.issue_prescription(c.uow(), doctor, c.his, c.signer, prescriptions.NewPrescription(
                    oid, dx, items, long_term_reason=reason))
                n["issued"] += 1
            except RuleViolation as refused:
                n[f"refused:{refused.rule}"] += 1
            consultation.reply_consultation(c.uow(), doctor, oid, "已开具处方，请按时服药")
            consultation.close_consultation(c.uow(), patient, oid)
        clock.current = day + timedelta(hours=9)  # the pharmacists' evening queue
        for _ in range(2):  # a second pass reviews what doctors revised after a rejection
            for rx in prescriptions.review_queue(c.uow(), rng.choice(reviewers)):
                pharmacist = rng.choice(reviewers)
                if rx.version == 1 and rng.random() < 0.15:
                    prescriptions.review_prescription(c.uow(), pharmacist, c.signer, rx.public_id, approve=False,
                                                      reasons=(RejectReason.DOSAGE,), comment="请核对用量")
                    n["rejected"] += 1
                    doctor = next(d for d in prescribers[dept] if d.staff_id == rx.doctor_id)
                    prescriptions.revise_prescription(c.uow(), doctor, c.his, c.signer, rx.public_id, prescriptions.NewPrescription(
                        rx.consultation_id, rx.diagnoses,
                        (prescriptions.NewItem(next(iter(ordinary)), 1, 7, "每日两次，每次 1 片"),)))
                    n["revised"] += 1
                else:
                    prescriptions.review_prescription(c.uow(), pharmacist, c.signer, rx.public_id, approve=True)
                    n["approved"] += 1
        clock.current = day + timedelta(days=1)
    refused = {k.split(":")[1]: v for k, v in n.items() if k.startswith("refused:")}
    ctx.add("在线处方开具", n["issued"], "规则拦截：" + ("，".join(f"{k} {v} 张" for k, v in sorted(refused.items()))
                                                   or "无"))
    ctx.add("药师审方", n["approved"] + n["rejected"], f"通过 {n['approved']}，驳回 {n['rejected']}（医生修改后重审 "
            f"{n['revised']}）；无自动通过")
    approved = prescriptions.list_prescriptions(c.uow(), ADMIN, limit=1_000)
    checked = [signatures.verify_prescription(c.uow(), ADMIN, c.signer, p.public_id)
               for p in approved[:20] if p.status == "approved"]
    ok = sum(all(x.valid for x in checks if x.version == max(y.version for y in checks)) for checks in checked)
    ctx.add("处方签名验证", f"{ok}/{len(checked)}", "医生签名 + 药师复核签名（内部 CA，X.509）")

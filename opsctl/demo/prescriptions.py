"""Demo step: a month of online follow-up prescriptions.

Each day a few patients with offline diagnoses book a consultation; the doctor
prescribes for one of those diagnoses. Some drafts break a rule (a controlled
drug, 14 days without a reason, a diagnosis never made offline) and are
refused; pharmacists work the review queue in the evening and reject some with
a structured reason; the doctor revises and the pharmacist reviews again.

After approval the patient pays the same evening (sandbox payment, the signed
notification delivered twice), chooses a dispensing store; the store pharmacist
dispenses (both signatures verified again) and ships with a tracking number;
delivery is confirmed the next day. One paid prescription is refunded before
dispensing; one attempt to dispense a used prescription again is refused (R54).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.errors import Conflict, DomainError, RuleViolation
from clinical_core.domain.prescription import RejectReason, ensure_may_review_online
from clinical_core.domain.staff import Role, ensure_may_prescribe
from clinical_core.domain.time import SHANGHAI, local_date
from clinical_core.persistence import models as m
from clinical_core.services import (
    consult_settings,
    consultation,
    prescriptions,
    rx_circulation,
    rx_renewals,
    signatures,
)
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
    stores = [("PH-MAIN", "院本部门诊药房", "门诊楼一层西侧", None), ("PH-PARTNER", "合作药店（福田店）",
                                                              "福田区某路 88 号", "HT-2026-017")]
    for code, name, address, agreement in stores:
        try:
            rx_circulation.add_store(c.uow(), ADMIN, code, name, address, agreement_no=agreement)
        except Conflict:
            pass
    n = Counter[str]()
    shipped: list[tuple[str, Principal]] = []
    for _ in range(ctx.plan.days):
        day = clock.current
        for rx_id, owner in shipped:  # yesterday's parcels arrive
            rx_circulation.confirm_delivery(c.uow(), owner, rx_id)
            n["delivered"] += 1
        shipped = []
        approved_today: list[tuple[str, str]] = []
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
                    approved_today.append((rx.public_id, rx.patient_id))
        clock.advance(timedelta(minutes=30))
        for rx_id, pid in approved_today:  # 流转: pay, choose a store, dispense, ship
            _circulate(ctx, rx_id, Principal(f"demo:{pid}", "demo-patient", Role.PATIENT, patient_id=pid),
                       rng.choice(reviewers), stores[rng.randrange(len(stores))][0], n, shipped)
        clock.current = day + timedelta(days=1)
    refused = {k.split(":")[1]: v for k, v in n.items() if k.startswith("refused:")}
    ctx.add("在线处方开具", n["issued"], "规则拦截：" + ("，".join(f"{k} {v} 张" for k, v in sorted(refused.items()))
                                                   or "无"))
    ctx.add("药师审方", n["approved"] + n["rejected"], f"通过 {n['approved']}，驳回 {n['rejected']}（医生修改后重审 "
            f"{n['revised']}）；无自动通过")
    for rx_id, owner in shipped:  # the last day's parcels
        clock.advance(timedelta(days=1))
        rx_circulation.confirm_delivery(c.uow(), owner, rx_id)
        n["delivered"] += 1
    ctx.add("处方流转", n["paid"], f"支付 {n['paid']}（重复通知 {n['repeat_notice']} 次未重复记账），调配 "
            f"{n['dispensed']}，发货 {n['shipped']}，签收 {n['delivered']}，调配前退款 {n['refunded']}")
    ctx.add("已用处方再次调配", n["reuse_blocked"], "R54 拦截：已调配的处方不能再次使用")
    _renewals(ctx, {d.staff_id: d for d in prescribers[dept]}, reviewers)
    approved = prescriptions.list_prescriptions(c.uow(), ADMIN, limit=1_000)
    checked = [signatures.verify_prescription(c.uow(), ADMIN, c.signer, p.public_id)
               for p in approved[:20] if p.status in ("approved", "paid", "dispensed", "shipped", "delivered")]
    ok = sum(all(x.valid for x in checks if x.version == max(y.version for y in checks)) for checks in checked)
    ctx.add("处方签名验证", f"{ok}/{len(checked)}", "医生签名 + 药师复核签名（内部 CA，X.509）")


def _circulate(ctx: DemoContext, rx_id: str, patient: Principal, store_pharmacist: Principal, store: str,
               n: Counter[str], shipped: list[tuple[str, Principal]]) -> None:
    """The patient pays and chooses a store; the store dispenses and ships (first one refunded instead;
    the first dispensed one is tried again and refused)."""
    c, clock = ctx.container, ctx.clock
    rx_circulation.choose_store(c.uow(), patient, rx_id, store)
    order = rx_circulation.pay_for_drugs(c.uow(), patient, c.payments, rx_id)
    notice = c.payments.simulate_payment(order.out_trade_no)
    rx_circulation.handle_paid_notification(c.uow(), c.payments, *notice)
    rx_circulation.handle_paid_notification(c.uow(), c.payments, *notice)  # the provider repeats itself
    n["paid"] += 1
    n["repeat_notice"] += 1
    if n["refunded"] == 0:
        rx_circulation.refund_drugs(c.uow(), patient, c.payments, rx_id, "患者已在线下购药")
        n["refunded"] += 1
        return
    clock.advance(timedelta(minutes=5))
    rx_circulation.dispense(c.uow(), store_pharmacist, c.signer, rx_id)
    n["dispensed"] += 1
    if n["reuse_blocked"] == 0:
        try:
            rx_circulation.dispense(c.uow(), store_pharmacist, c.signer, rx_id)
        except RuleViolation as refused:
            assert refused.rule == "R54"
            n["reuse_blocked"] += 1
    rx_circulation.ship(c.uow(), store_pharmacist, rx_id, "顺丰速运", f"SF{ctx.rng.randrange(10**11, 10**12)}")
    n["shipped"] += 1
    shipped.append((rx_id, patient))


def _renewals(ctx: DemoContext, doctors: dict[str | None, Principal], reviewers: list[Principal]) -> None:
    """快速续方 at the month's end: patients of delivered chronic prescriptions ask to renew; the
    prescriber renews the first ones (new prescription → pharmacist review) and declines the last."""
    from clinical_core.persistence.prescription import PrescriptionRow

    c = ctx.container
    with c.uow() as u:
        chronic = u.session.execute(
            select(PrescriptionRow.public_id, m.PatientRow.public_id, m.StaffRow.public_id)
            .join(m.PatientRow, m.PatientRow.id == PrescriptionRow.patient_id)
            .join(m.StaffRow, m.StaffRow.id == PrescriptionRow.doctor_id)
            .where(PrescriptionRow.status == "delivered", PrescriptionRow.long_term_reason.is_not(None))
            .order_by(PrescriptionRow.id).limit(3)).all()
    n = Counter[str]()
    for i, (rx_id, pid, doctor_id) in enumerate(chronic):
        ctx.clock.advance(timedelta(hours=1))
        patient = Principal(f"demo:{pid}", "demo-patient", Role.PATIENT, patient_id=pid)
        asked = rx_renewals.request_renewal(c.uow(), patient, rx_id)
        doctor = doctors[doctor_id]
        n["duplicates"] += len(rx_renewals.get_renewal(c.uow(), doctor, asked.public_id).duplicates)
        if i < len(chronic) - 1:
            renewed = rx_renewals.decide_renewal(c.uow(), doctor, c.his, c.signer, asked.public_id, approve=True)
            prescriptions.review_prescription(c.uow(), reviewers[0], c.signer, renewed.new_prescription_id or "",
                                              approve=True)
            n["renewed"] += 1
        else:
            rx_renewals.decide_renewal(c.uow(), doctor, c.his, c.signer, asked.public_id, approve=False,
                                       reason="请先预约复诊，复查血压后再开药")
            n["declined"] += 1
    ctx.add("快速续方", len(chronic), f"续方 {n['renewed']}（新处方重新签名并经药师审核），拒绝 {n['declined']}"
            f"（请先复诊）；提示重复用药 {n['duplicates']} 次")

"""Demo step: a month of online consultations over the seeded hospital.

Patients order 科室咨询, doctors' 图文 and the free 定点保障 line; most pay
through the sandbox's signed notification, some never pay; doctors claim from
the department pool, converse (sometimes with a picture), reply and close;
patients review; a few questions are transferred; some nobody answers in time,
which the evening expiry job closes and refunds; the refund job then settles
refunds with the payment provider.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.errors import DomainError
from clinical_core.domain.money import format_fen
from clinical_core.domain.staff import Role, ensure_may_consult_online
from clinical_core.domain.time import SHANGHAI, local_date
from clinical_core.persistence import models as m
from clinical_core.services import consult_jobs, consult_ledger, consult_settings, consultation
from clinical_core.services.consult_settings import ServiceSettings
from clinical_core.services.organisation import qualification_of

if TYPE_CHECKING:
    from opsctl.demo.context import DemoContext

OPERATOR = Principal(account_id="demo:operations", username="demo", role=Role.OPERATIONS)
PNG = b"\x89PNG\r\n\x1a\n" + b"demo-image" * 20
QUESTIONS = ("最近血压偏高，药量需要调整吗", "孩子咳嗽三天，夜间加重，需要复诊吗", "血糖控制不理想，想咨询饮食",
             "复查结果出来了，请帮忙看看", "胃部不适反复发作，是否需要调整用药")


def step_consultations(ctx: DemoContext) -> None:
    """A month of online consultations: pay, claim, reply, review; unanswered ones refunded."""
    c, rng, clock = ctx.container, ctx.rng, ctx.clock
    clock.current = datetime.combine(ctx.plan.start, time(8), tzinfo=SHANGHAI).astimezone(UTC)
    today = local_date(clock.now())
    with c.uow() as u:
        staff = [(qualification_of(row), row.public_id, row.employee_no, code) for row, code in u.session.execute(
            select(m.StaffRow, m.DepartmentRow.code).join(m.DepartmentRow, m.DepartmentRow.id == m.StaffRow.department_id)
            .where(m.StaffRow.role == "doctor", m.StaffRow.active.is_(True)).order_by(m.StaffRow.id))]
        patient_ids = list(u.session.scalars(select(m.PatientRow.public_id).order_by(m.PatientRow.id).limit(400)))
    by_dept: dict[str, list[Principal]] = {}
    for qualification, staff_id, employee_no, code in staff:
        try:
            ensure_may_consult_online(qualification, today)
        except DomainError:
            continue
        by_dept.setdefault(code, []).append(Principal(f"demo:{staff_id}", employee_no, Role.DOCTOR,
                                                      staff_id=staff_id))
    depts = sorted((d for d, ds in by_dept.items() if len(ds) >= 2), key=lambda d: -len(by_dept[d]))[:4]
    if not depts or not patient_ids:
        ctx.add("在线咨询", 0, "演示数据中没有足够的合格医生或患者")
        return
    services: list[tuple[str, str]] = []  # (service id, department code)
    for code in depts:
        sid = consult_settings.configure_service(c.uow(), OPERATOR, ServiceSettings(
            kind=ServiceKind.DEPARTMENT, price_fen=rng.choice((900, 1500, 2000)), department_code=code,
            time_limit_minutes=12 * 60)).public_id
        services.append((sid, code))
        star = by_dept[code][0]
        text = consult_settings.configure_service(c.uow(), star, ServiceSettings(
            kind=ServiceKind.TEXT, price_fen=3000, time_limit_minutes=24 * 60)).public_id
        services.append((text, code))
    team = [by_dept[d][-1] for d in depts[:2]]
    line = consult_settings.configure_service(c.uow(), OPERATOR, ServiceSettings(
        kind=ServiceKind.DESIGNATED, price_fen=0, name="流感季定点保障", time_limit_minutes=6 * 60)).public_id
    consult_settings.appoint_team(c.uow(), OPERATOR, line, [d.staff_id or "" for d in team])
    services.append((line, "*"))

    n = Counter[str]()
    for _ in range(ctx.plan.days):
        day_start = clock.current
        for _ in range(rng.randint(4, 9)):
            sid, code = rng.choice(services)
            pid = rng.choice(patient_ids)
            patient = Principal(f"demo:{pid}", "demo-patient", Role.PATIENT, patient_id=pid)
            clock.advance(timedelta(minutes=rng.randint(10, 60)))
            created = consultation.create_consultation(c.uow(), patient, c.payments, sid, rng.choice(QUESTIONS))
            oid = created.consultation.public_id
            n["orders"] += 1
            if created.out_trade_no:
                if rng.random() < 0.08:
                    n["never_paid"] += 1
                    continue
                headers, body = c.payments.simulate_payment(created.out_trade_no)
                consultation.handle_paid_notification(c.uow(), c.payments, headers, body)
                if rng.random() < 0.2:  # the provider delivers the notification again
                    consultation.handle_paid_notification(c.uow(), c.payments, headers, body)
            if rng.random() < 0.12:
                n["left_unanswered"] += 1
                continue
            pool = team if code == "*" else by_dept[code]
            addressed = created.consultation.doctor_id
            doctor = next((d for d in pool if d.staff_id == addressed), None) or rng.choice(pool)
            clock.advance(timedelta(minutes=rng.randint(5, 90)))
            try:
                consultation.claim_consultation(c.uow(), doctor, oid)
            except DomainError:
                n["claim_refused"] += 1
                continue
            if code != "*" and not addressed and rng.random() < 0.06 and len(depts) > 1:
                target = rng.choice([d for d in depts if d != code])
                consultation.transfer_consultation(c.uow(), doctor, oid, target)
                doctor = by_dept[target][0]
                consultation.claim_consultation(c.uow(), doctor, oid)
                n["transferred"] += 1
            if rng.random() < 0.3:
                consultation.post_message(c.uow(), patient, c.attachments, oid, MessageKind.IMAGE, "检查单", PNG)
            consultation.post_message(c.uow(), doctor, c.attachments, oid, MessageKind.TEXT, "您好，请补充近期用药情况")
            consultation.post_message(c.uow(), patient, c.attachments, oid, MessageKind.TEXT, "每天一次，按时服用")
            consultation.reply_consultation(c.uow(), doctor, oid, "目前方案可继续，建议两周后线下复诊")
            consultation.close_consultation(c.uow(), patient, oid)
            n["completed"] += 1
            if rng.random() < 0.7:
                consultation.review_consultation(c.uow(), patient, oid, rng.choice((3, 4, 5, 5, 5)))
                n["reviewed"] += 1
        clock.current = day_start + timedelta(hours=14)  # evening jobs
        expired = consult_jobs.expire_unanswered(c.uow(), clock.now())
        n["expired"] += len(expired.closed_unanswered)
        n["cancelled"] += len(expired.cancelled_unpaid)
        settled = consult_ledger.settle_refunds(c.uow(), c.payments)
        n["refunds_settled"] += settled.succeeded
        clock.current = day_start + timedelta(days=1)
    clock.advance(timedelta(days=1))
    final = consult_jobs.expire_unanswered(c.uow(), clock.now())
    n["expired"] += len(final.closed_unanswered)
    n["refunds_settled"] += consult_ledger.settle_refunds(c.uow(), c.payments).succeeded
    stats = consult_ledger.doctor_statistics(c.uow(), OPERATOR)
    paid, refunded = sum(s.paid_fen for s in stats), sum(s.refunded_fen for s in stats)
    ratings = [s.avg_rating * s.reviews for s in stats if s.avg_rating is not None]
    reviews = sum(s.reviews for s in stats)
    ctx.add("在线咨询订单", n["orders"], f"{len(depts)} 个科室咨询、{len(depts)} 个医生图文、1 条定点保障（免费）")
    ctx.add("咨询完成", n["completed"], f"转科 {n['transferred']} 单；评价 {n['reviewed']} 条，"
            f"平均 {sum(ratings) / reviews:.2f} 星" if reviews else "")
    ctx.add("超时未回复→关闭退款", n["expired"], f"退款已提交支付平台 {n['refunds_settled']} 笔")
    ctx.add("超时未支付→取消", n["cancelled"], "")
    ctx.add("咨询收支", format_fen(paid - refunded), f"支付 {format_fen(paid)} − 退款 {format_fen(refunded)}（按记录计算）")

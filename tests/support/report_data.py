"""A small hand-computed dataset for the metrics registry (October 2026, Shanghai time).

Every row is written directly, so each metric's expected value can be worked out by hand; the
expected values live in ``EXPECTED`` with the arithmetic beside them. Rows just outside the month
(30 Sep 23:00 and 1 Nov 00:10 Shanghai, i.e. inside the UTC month) check the time-zone bounds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import count

from campaigns.persistence.models import CardBatchRow, ChannelRow, QrCodeRow
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence.consultation import (
    ConsultationRow,
    ConsultMessageRow,
    ConsultPaymentRow,
    ConsultRefundRow,
    ConsultServiceRow,
)
from clinical_core.persistence.models import (
    DepartmentRow,
    FollowerRow,
    HospitalRow,
    PatientRow,
    StaffRow,
)
from clinical_core.persistence.prescription import (
    PrescriptionReviewRow,
    PrescriptionRow,
    RxPaymentRow,
    RxRefundRow,
)
from content.persistence.models import LectureRow
from content.scripts.models import ScriptRow, ScriptUsageRow
from opsctl.wiring import Container


def sh(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


# metric -> value for October 2026 (whole hospital), and some breakdowns
EXPECTED: dict[str, object] = {
    "consultations": 6,  # c1 c2 c3 c4 c5(定点保障, free) c8 (31 Oct 23:30); not c6 (unpaid), c7 (Sep), c9 (1 Nov 00:10)
    "first_response_minutes": 30,  # c1 10, c5 20, c2 30, c8 40, c3 60 -> 30
    "unanswered_consultations": 1,  # c4
    "unanswered_rate": 1 / 6,
    "refunded_consultations": 2,  # c4 (full), c2 (two partial refunds; a pending one ignored)
    "prescriptions_issued": 3,  # rx1 rx2 rx3; rx4 issued 30 Sep 23:00
    "review_pass_rate": 4 / 5,  # rx1 ok, rx2 v1 reject, rx2 v2 ok, rx3 ok, rx4 ok (reviewed 1 Oct 00:30)
    "review_minutes": 50,  # first reviews: rx1 20, rx2 40, rx3 60, rx4 90 -> (40+60)/2
    "payment_to_delivery_hours": 30,  # rx1 24 h, rx2 36 h
    "payments_fen": 41000,  # consult 3000+5000+2000+3000+3000, rx 12000+8000+5000
    "refunds_fen": 9000,  # consult 3000 + 500 + 500, rx 5000
    "income_net_fen": 32000,
    "followers_gained": 6,  # f1 f2 f3 f4 f5 f7
    "followers_lost": 2,  # f5 (direct), f6 (followed in Sep)
    "channel_conversion": 3 / 5,  # scene followers f1 ok, f2, f3 ok, f4 ok, f7
    "reviews": 3,  # c1 5, c2 2, c7 4 (paid in Sep, reviewed 1 Oct)
    "review_rating": 11 / 3,
    "low_rating_share": 1 / 3,
    "lectures_published": 1,
    "script_uses": 3,
}
BY = {
    ("consultations", "service_type"): {"text": 3, "phone": 1, "department": 1, "designated": 1},
    ("consultations", "department"): {"CARD": 4, "ENDO": 2},
    ("first_response_minutes", "department"): {"CARD": 20, "ENDO": 45},
    ("review_pass_rate", "department"): {"CARD": 1.0, "ENDO": 2 / 3},
    ("income_net_fen", "service_type"): {"text": 6000, "phone": 4000, "department": 2000, "prescription": 20000},
    ("followers_gained", "channel"): {"dept-cardio": 2, "pc-2026": 2, "qr_legacy": 1, "直接关注": 1},
    ("followers_lost", "channel"): {"dept-cardio": 1, "直接关注": 1},
    ("channel_conversion", "channel"): {"dept-cardio": 0.5, "pc-2026": 0.5, "qr_legacy": 1.0},
    ("script_uses", "channel"): {"私聊": 2, "社群": 1},
    ("script_uses", "department"): {"CARD": 3},
    ("prescriptions_issued", "doctor"): {"李明": 1, "王芳": 2},
}


def seed(c: Container) -> None:
    n = count(1)

    def pid(kind: str) -> str:
        return f"{kind}_{next(n):024x}"

    with c.uow() as uow:
        s = uow.session
        h = HospitalRow(public_id=pid("hos"), name="示例大学附属医院", short_name="示例医院", city="深圳",
                        hotline="0755-00000000", created_at=sh(1, 1))
        s.add(h)
        s.flush()
        card = DepartmentRow(public_id=pid("dep"), hospital_id=h.id, code="CARD", name="心血管内科", kind="clinical")
        endo = DepartmentRow(public_id=pid("dep"), hospital_id=h.id, code="ENDO", name="内分泌科", kind="clinical")
        s.add_all([card, endo])
        s.flush()

        def staff(no: str, name: str, role: str, dept: DepartmentRow | None) -> StaffRow:
            row = StaffRow(public_id=pid("stf"), employee_no=no, name=name, role=role,
                           department_id=dept.id if dept else None, created_at=sh(1, 1))
            s.add(row)
            return row

        li, wang, zhao = staff("D001", "李明", "doctor", card), staff("D002", "王芳", "doctor", endo), staff("P001", "赵敏", "pharmacist", None)
        patients = []
        for i in range(1, 5):
            patients.append(PatientRow(public_id=pid("pat"), name_enc="x", phone_enc="x", phone_hash=f"h{i}", id_card_enc="x",
                                       id_card_hash=f"id{i}", sex="F", birth_date=date(1980, 1, 1),
                                       openid="o3" if i == 2 else None, created_at=sh(9, 1)))
        s.add_all(patients)
        s.flush()
        p1, p2, p3, p4 = patients

        def service(kind: str, price: int, doctor: StaffRow | None, dept: DepartmentRow | None) -> ConsultServiceRow:
            row = ConsultServiceRow(public_id=pid("csv"), kind=kind, name=kind, price_fen=price, time_limit_minutes=1440,
                                    doctor_id=doctor.id if doctor else None, department_id=dept.id if dept else None,
                                    created_at=sh(1, 1), updated_at=sh(1, 1))
            s.add(row)
            return row

        text, phone, dept_svc, designated = (service("text", 3000, li, None), service("phone", 5000, wang, None),
                                             service("department", 2000, None, endo), service("designated", 0, None, card))
        s.flush()

        def consult(svc: ConsultServiceRow, patient: PatientRow, doctor: StaffRow, dept: DepartmentRow | None,
                    paid: datetime | None, *, status: str = "closed", first_reply_min: float | None = None,
                    rating: int | None = None, reviewed: datetime | None = None, pay: bool = True,
                    close_reason: str | None = "completed", closed: datetime | None = None) -> ConsultationRow:
            row = ConsultationRow(public_id=pid("con"), service_id=svc.id, kind=svc.kind, patient_id=patient.id,
                                  department_id=dept.id if dept else None, doctor_id=doctor.id, status=status,
                                  price_fen=svc.price_fen, question_enc="x", created_at=paid or sh(10, 20), paid_at=paid,
                                  transfer_count=0, review_rating=rating, reviewed_at=reviewed,
                                  close_reason=close_reason if paid else None, closed_at=closed)
            s.add(row)
            s.flush()
            if first_reply_min is not None and paid:
                at = paid + timedelta(minutes=first_reply_min)
                s.add_all([ConsultMessageRow(public_id=pid("msg"), consultation_id=row.id, sender="patient", kind="text",
                                             created_at=paid + timedelta(minutes=1)),
                           ConsultMessageRow(public_id=pid("msg"), consultation_id=row.id, sender="doctor", staff_id=doctor.id,
                                             kind="text", created_at=at),
                           ConsultMessageRow(public_id=pid("msg"), consultation_id=row.id, sender="doctor", staff_id=doctor.id,
                                             kind="text", created_at=at + timedelta(minutes=5))])
            if pay and paid and svc.price_fen:
                s.add(ConsultPaymentRow(public_id=pid("pay"), out_trade_no=pid("o")[:32], amount_fen=svc.price_fen,
                                        status="succeeded", created_at=paid, paid_at=paid, consultation_id=row.id))
            return row

        c1 = consult(text, p1, li, None, sh(10, 2, 9), first_reply_min=10, rating=5, reviewed=sh(10, 3))
        c2 = consult(phone, p2, wang, None, sh(10, 5, 10), first_reply_min=30, rating=2, reviewed=sh(10, 6))
        consult(dept_svc, p3, wang, endo, sh(10, 8, 8), first_reply_min=60)
        c4 = consult(text, p1, li, None, sh(10, 10, 12), status="closed", close_reason="unanswered", closed=sh(10, 11, 12))
        consult(designated, p3, li, card, sh(10, 12, 9), first_reply_min=20)
        c6 = consult(text, p4, li, None, None, status="created", pay=False)
        consult(text, p1, li, None, sh(9, 28, 9), first_reply_min=5, rating=4, reviewed=sh(10, 1, 10))  # c7
        consult(text, p1, li, None, sh(10, 31, 23, 30), first_reply_min=40)  # c8
        consult(text, p1, li, None, sh(11, 1, 0, 10), first_reply_min=1)  # c9
        s.add(ConsultPaymentRow(public_id=pid("pay"), out_trade_no=pid("o")[:32], amount_fen=3000, status="pending",
                                created_at=sh(10, 20), consultation_id=c6.id))
        pay2 = s.query(ConsultPaymentRow).filter_by(consultation_id=c2.id).one()
        pay4 = s.query(ConsultPaymentRow).filter_by(consultation_id=c4.id).one()

        def refund(record: type, payment: object, order_field: str, order_id: int, amount: int, status: str,
                   settled: datetime | None) -> None:
            s.add(record(public_id=pid("ref"), out_refund_no=pid("r")[:32], amount_fen=amount, reason="test", status=status,
                         attempts=1, requested_by="test", created_at=settled or sh(10, 20), settled_at=settled,
                         payment_id=payment.id, **{order_field: order_id}))  # type: ignore[attr-defined]

        refund(ConsultRefundRow, pay4, "consultation_id", c4.id, 3000, "succeeded", sh(10, 11, 12, 5))
        refund(ConsultRefundRow, pay2, "consultation_id", c2.id, 500, "succeeded", sh(10, 7))
        refund(ConsultRefundRow, pay2, "consultation_id", c2.id, 500, "succeeded", sh(10, 8))
        refund(ConsultRefundRow, pay2, "consultation_id", c2.id, 700, "pending", None)

        def rx(doctor: StaffRow, patient: PatientRow, consultation: ConsultationRow, issued: datetime,
               reviews: list[tuple[int, str, float]], paid: tuple[datetime, int] | None = None,
               delivered: datetime | None = None) -> tuple[PrescriptionRow, RxPaymentRow | None]:
            row = PrescriptionRow(public_id=pid("rx"), consultation_id=consultation.id, patient_id=patient.id,
                                  doctor_id=doctor.id, status="delivered" if delivered else "approved", version=len(reviews),
                                  diagnoses=[], valid_days=3, warnings=[], issued_at=issued,
                                  paid_at=paid[0] if paid else None, delivered_at=delivered)
            s.add(row)
            s.flush()
            for version, decision, minutes in reviews:
                s.add(PrescriptionReviewRow(public_id=pid("rvw"), prescription_id=row.id, version=version,
                                            pharmacist_id=zhao.id, decision=decision, reasons=[],
                                            reviewed_at=issued + timedelta(minutes=minutes)))
            payment = None
            if paid:
                payment = RxPaymentRow(public_id=pid("pay"), out_trade_no=pid("o")[:32], amount_fen=paid[1],
                                       status="succeeded", created_at=paid[0], paid_at=paid[0], prescription_id=row.id)
                s.add(payment)
                s.flush()
            return row, payment

        rx(li, p1, c1, sh(10, 2, 9, 30), [(1, "approve", 20)], (sh(10, 2, 10), 12000), sh(10, 3, 10))
        rx(wang, p2, c2, sh(10, 5, 11), [(1, "reject", 40), (2, "approve", 60)], (sh(10, 5, 13), 8000), sh(10, 7, 1))
        rx3, pay3 = rx(wang, p2, c2, sh(10, 9, 9), [(1, "approve", 60)], (sh(10, 9, 10), 5000))
        rx(li, p1, c1, sh(9, 30, 23), [(1, "approve", 90)])
        refund(RxRefundRow, pay3, "prescription_id", rx3.id, 5000, "succeeded", sh(10, 10))

        cardio = ChannelRow(public_id=pid("chn"), code="dept-cardio", kind="department_poster", name="心内科海报",
                            created_at=sh(9, 1), created_by="test")
        pc = ChannelRow(public_id=pid("chn"), code="pc-2026", kind="package_card", name="包裹卡 2026",
                        created_at=sh(9, 1), created_by="test")
        s.add_all([cardio, pc])
        s.flush()
        batch = CardBatchRow(public_id=pid("cbt"), code="pc-2026", channel_id=pc.id, size=1, copy_text="扫码关注",
                             created_at=sh(9, 1))
        s.add(batch)
        s.flush()
        s.add_all([QrCodeRow(public_id=pid("qr"), channel_id=cardio.id, scene="ch:dept-cardio:1", permanent=True, created_at=sh(9, 1)),
                   QrCodeRow(public_id=pid("qr"), channel_id=pc.id, batch_id=batch.id, scene="pc:pc-2026:00001",
                             permanent=True, created_at=sh(9, 1))])
        s.add_all([
            FollowerRow(openid="o1", scene="ch:dept-cardio:1", subscribed_at=sh(10, 1, 8), patient_id=p1.id),
            FollowerRow(openid="o2", scene="ch:dept-cardio:1", subscribed_at=sh(10, 3)),
            FollowerRow(openid="o3", scene="pc:pc-2026:00001", subscribed_at=sh(10, 4)),
            FollowerRow(openid="o4", scene="qr_legacy", subscribed_at=sh(10, 6), patient_id=p3.id),
            FollowerRow(openid="o5", scene=None, subscribed_at=sh(10, 7), unsubscribed_at=sh(10, 20)),
            FollowerRow(openid="o6", scene="ch:dept-cardio:1", subscribed_at=sh(9, 15), unsubscribed_at=sh(10, 9)),
            FollowerRow(openid="o7", scene="pc:pc-2026:00001", subscribed_at=sh(10, 15), patient_id=p4.id),
        ])

        def lecture(author: StaffRow, published: datetime | None) -> None:
            s.add(LectureRow(public_id=pid("lec"), author_staff_id=author.id, category="慢病", kind="text",
                             status="published" if published else "draft", latest_version=1,
                             published_version=1 if published else None, created_at=sh(9, 1), updated_at=sh(9, 1),
                             published_at=published))

        lecture(li, sh(10, 10))
        lecture(wang, sh(9, 1))
        lecture(wang, None)
        s1 = ScriptRow(public_id=pid("scr"), title="t", channel="私聊", specialty="心血管内科", tags=[], status="approved",
                       latest_version=1, approved_version=1, usage_count=3, created_by="t", created_at=sh(9, 1), updated_at=sh(9, 1))
        s2 = ScriptRow(public_id=pid("scr"), title="t2", channel="社群", specialty="心血管内科", tags=[], status="approved",
                       latest_version=1, approved_version=1, usage_count=1, created_by="t", created_at=sh(9, 1), updated_at=sh(9, 1))
        s.add_all([s1, s2])
        s.flush()
        for script, at, action in ((s1, sh(10, 3), "copied"), (s1, sh(10, 4), "sent"), (s1, sh(9, 30, 10), "sent"),
                                   (s2, sh(10, 31, 23, 59), "sent")):
            s.add(ScriptUsageRow(script_id=script.id, version=1, action=action, actor="cs:1", at=at))
        uow.commit()

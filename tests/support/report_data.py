"""A small hand-computed dataset for the metrics registry (October 2026, Shanghai time).

Every row is written directly, so each metric's expected value can be worked out by hand; the
expected values live in ``EXPECTED`` with the arithmetic beside them. Rows just outside the month
(30 Sep 23:00 and 1 Nov 00:10 Shanghai, i.e. inside the UTC month) check the time-zone bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from itertools import count

from sqlalchemy.orm import Session

from campaigns.persistence.followup import (
    FollowupPlanRow,
    FollowupStepRow,
    FollowupTemplateRow,
    QuestionnaireResponseRow,
    QuestionnaireRow,
    QuestionnaireVersionRow,
)
from campaigns.persistence.models import CardBatchRow, ChannelRow, QrCodeRow
from campaigns.persistence.pushes import (
    DeliveryRow,
    LinkClickRow,
    PushRow,
    ShortLinkRow,
)
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
from clinical_core.persistence.nursing import (
    NursingAlarmRow,
    NursingItemRow,
    NursingOrderRow,
)
from clinical_core.persistence.prescription import (
    PrescriptionReviewRow,
    PrescriptionRow,
    RxPaymentRow,
    RxRefundRow,
)
from clinical_core.persistence.video import (
    VideoPaymentRow,
    VideoRefundRow,
    VideoSessionRow,
    VideoSlotRow,
    VideoVisitRow,
)
from content.persistence.models import (
    EpisodeRow,
    LectureRow,
    LectureTipRefundRow,
    LectureTipRow,
    LiveStatRow,
    PostRow,
    SeriesRow,
    StatImportRow,
    VideoStatRow,
)
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

        def lecture(author: StaffRow, published: datetime | None) -> LectureRow:
            row = LectureRow(public_id=pid("lec"), author_staff_id=author.id, category="慢病", kind="text",
                             status="published" if published else "draft", latest_version=1,
                             published_version=1 if published else None, created_at=sh(9, 1), updated_at=sh(9, 1),
                             published_at=published)
            s.add(row)
            return row

        lectures = (lecture(li, sh(10, 10)), lecture(wang, sh(9, 1)))
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
        s.flush()
        World = tuple[StaffRow, StaffRow, DepartmentRow, DepartmentRow, list[PatientRow], tuple[LectureRow, LectureRow]]
        world: World = (li, wang, card, endo, patients, lectures)
        for seeder in (_seed_pushes, _seed_video, _seed_nursing, _seed_followup, _seed_content):
            seeder(s, pid, world)
        uow.commit()


# ---- the families added later: pushes, video visits, home nursing, follow-up, content platforms ----

EXPECTED.update({
    # pushes: P1 (template, planned 5 Oct) o1 sent, o2 sent, o3 failed, o4 unknown, o5 skipped, o6 pending;
    # P2 (mass) o1 planned 30 Sep 23:00 (September), o2 and o3 planned 20 Oct, both sent
    "push_deliveries_planned": 8,
    "push_deliveries_sent": 4,
    "push_deliveries_failed": 1,
    "push_deliveries_unknown": 1,
    "push_delivery_rate": 4 / 6,  # skipped and pending rows are no attempt
    "push_clicks": 6,  # P1: o1 twice, o3 (failed delivery, forwarded link); P2: o2, o3, one anonymous; a preview ignored
    "push_click_through": 3 / 4,  # sent in October: P1 o1 clicked, o2 not; P2 o2 and o3 clicked
    # video: v1 CARD completed (wait 5), v2 ENDO completed (wait 15), v3 CARD first-visit stop (wait 10),
    # v4 ENDO no-show, v5 CARD call 1 Nov 00:05 (November), v6 CARD cancelled (paid Sep, refunded 2 Oct)
    "video_visits_completed": 2,
    "video_no_shows": 1,
    "video_first_visit_stops": 1,
    "video_wait_minutes": 10,  # 5, 10, 15
    "video_income_net_fen": 17000,  # paid v1 5000 v2 6000 v3 5000 v4 6000 v5 5000; refunded v3 5000, v6 5000
    # nursing (nurses 孙丽 of CARD and 周敏 of ENDO): n1 孙丽 (grab 10 min) and n2 周敏 (grab 30) completed,
    # n3 孙丽 assigned after 60 min, n4 cancelled before any nurse took it, n5 周敏 in September;
    # alarms a1 a3 孙丽, a2 a4 周敏
    "nursing_orders_completed": 2,
    "nursing_grab_minutes": 30,
    "nursing_cancellations": 1,
    "nursing_sos_alarms": 3,  # a1 a2 a3; a4 raised 30 Sep 23:58
    "nursing_sos_ack_minutes": 8,  # a1 4, a2 12; a3 never acknowledged
    "nursing_sos_escalations": 2,  # a2 a3
    # follow-up: plans A (李明, 2 Oct) and B (王芳, 10 Oct); C (李明) in September
    "followup_plans_started": 2,
    "followup_steps_sent": 4,  # A1 text, A2 and A3 questionnaires, B1 questionnaire; C1 in September
    "followup_steps_failed": 1,  # A4
    "questionnaire_responses": 3,  # A2's (10 Oct), C1's (1 Oct), one outside a plan (15 Oct); A3's on 2 Nov
    "questionnaire_response_rate": 2 / 3,  # A2 answered, A3 answered in November, B1 not
    # content: posts E1 douyin, E1 channels, E2 douyin; E2 channels on 30 Sep 20:00; E3 only planned
    "content_posts_published": 3,
    "content_episodes_published": 2,
    "platform_plays": 430,  # w1 latest export 300 (an earlier one 100), w2 50, w3 80 (exported 3 Nov); w4 September
    "platform_likes": 38,  # 25 + 5 + 8
    "live_viewers": 350,  # 200 + 150; a September broadcast ignored
    "lecture_tips_net_fen": 1100,  # tips 1000 + 500 + 300 − refunds 500 (of the 500) − 200 (of a September tip)
})
BY.update({
    ("push_deliveries_planned", "channel"): {"template": 6, "mass": 2},
    ("push_delivery_rate", "channel"): {"template": 2 / 4, "mass": 1.0},
    ("push_clicks", "channel"): {"template": 3, "mass": 2, "other": 1},
    ("push_click_through", "push"): {"十月慢病提醒": 0.5, "国庆后复诊群发": 1.0},
    ("video_income_net_fen", "department"): {"CARD": 5000, "ENDO": 12000},
    ("video_wait_minutes", "department"): {"CARD": 7.5, "ENDO": 15},
    ("nursing_orders_completed", "service_type"): {"PICC维护": 2},
    ("nursing_orders_completed", "department"): {"CARD": 1, "ENDO": 1},
    ("nursing_grab_minutes", "department"): {"CARD": 35, "ENDO": 30},  # CARD: 10 and 60
    ("nursing_cancellations", "department"): {None: 1},  # no nurse, no department
    ("nursing_sos_alarms", "department"): {"CARD": 2, "ENDO": 1},  # a4 (周敏) in September
    ("nursing_sos_ack_minutes", "department"): {"CARD": 4, "ENDO": 12},  # a3 never acknowledged
    ("nursing_sos_escalations", "department"): {"CARD": 1, "ENDO": 1},
    ("questionnaire_responses", "doctor"): {"李明": 2, "王芳": 1},
    ("questionnaire_response_rate", "department"): {"CARD": 1.0, "ENDO": 0.0},
    ("content_posts_published", "platform"): {"douyin": 2, "channels": 1},
    ("platform_plays", "platform"): {"douyin": 350, "channels": 80},
    ("lecture_tips_net_fen", "doctor"): {"李明": 800, "王芳": 300},
})

Pid = Callable[[str], str]


def _seed_pushes(s: Session, pid: Pid, world: tuple) -> None:
    def push(name: str, kind: str) -> PushRow:
        row = PushRow(public_id=pid("psh"), name=name, kind=kind, status="done", variants={}, weights={},
                      created_at=sh(9, 1), created_by="ops")
        s.add(row)
        s.flush()
        return row

    p1, p2 = push("十月慢病提醒", "template"), push("国庆后复诊群发", "mass")

    def delivery(p: PushRow, openid: str, state: str, planned: datetime) -> None:
        s.add(DeliveryRow(push_id=p.id, openid=openid, state=state, next_attempt_at=planned, created_at=planned,
                          sent_at=planned + timedelta(minutes=1) if state == "sent" else None))

    for openid, state in (("o1", "sent"), ("o2", "sent"), ("o3", "failed"), ("o4", "unknown"), ("o5", "skipped"),
                          ("o6", "pending")):
        delivery(p1, openid, state, sh(10, 5, 9))
    delivery(p2, "o1", "sent", sh(9, 30, 23))
    delivery(p2, "o2", "sent", sh(10, 20))
    delivery(p2, "o3", "sent", sh(10, 20))
    l1 = ShortLinkRow(code="aaaa1", push_id=p1.id, variant="A", target="https://example.org/1", created_at=sh(9, 1))
    l2 = ShortLinkRow(code="aaaa2", push_id=p2.id, variant="A", target="https://example.org/2", created_at=sh(9, 1))
    s.add_all([l1, l2])
    s.flush()
    for link, openid, channel, at in ((l1, "o1", "template", sh(10, 5, 10)), (l1, "o1", "template", sh(10, 6)),
                                      (l1, None, "preview", sh(10, 4)), (l1, "o3", "template", sh(10, 5, 11)),
                                      (l2, "o2", "mass", sh(10, 21)), (l2, "o3", "mass", sh(10, 21, 5)),
                                      (l2, None, "other", sh(10, 22))):
        s.add(LinkClickRow(link_id=link.id, openid=openid, channel=channel, at=at))


def _payment(record: type, pid: Pid, amount: int, paid: datetime, status: str = "succeeded", **ref: int) -> object:
    return record(public_id=pid("pay"), out_trade_no=pid("o")[:32], amount_fen=amount, status=status, created_at=paid,
                  paid_at=paid if status == "succeeded" else None, **ref)


def _refund(record: type, pid: Pid, amount: int, settled: datetime, **ref: int) -> object:
    return record(public_id=pid("ref"), out_refund_no=pid("r")[:32], amount_fen=amount, reason="test", status="succeeded",
                  attempts=1, requested_by="test", created_at=settled, settled_at=settled, **ref)


def _seed_video(s: Session, pid: Pid, world: tuple) -> None:
    li, wang, card, endo, patients, _ = world
    visits = []
    for doctor, dept, status, reason, checked_in, call, ended, paid in (
        (li, card, "ended", "completed", sh(10, 3, 9, 55), sh(10, 3, 10), sh(10, 3, 10, 30), sh(10, 1)),
        (wang, endo, "ended", "completed", sh(10, 4, 10), sh(10, 4, 10, 15), sh(10, 4, 11), sh(10, 2)),
        (li, card, "terminated", "first_visit", sh(10, 6, 9), sh(10, 6, 9, 10), sh(10, 6, 9, 20), sh(10, 5)),
        (wang, endo, "no_show", "no_show", None, None, sh(10, 8, 9, 15), sh(10, 7)),
        (li, card, "ended", "completed", sh(10, 31, 23, 50), sh(11, 1, 0, 5), sh(11, 1, 0, 30), sh(10, 30)),
        (li, card, "cancelled", "hospital_cancelled", None, None, sh(10, 1), sh(9, 29)),
    ):
        start = (call or ended) - timedelta(minutes=5)
        session = VideoSessionRow(public_id=pid("vss"), doctor_id=doctor.id, department_id=dept.id, starts_at=start,
                                  ends_at=start + timedelta(hours=1), slot_minutes=15, price_fen=5000, status="open",
                                  source="manual", created_at=sh(9, 1))
        s.add(session)
        s.flush()
        slot = VideoSlotRow(public_id=pid("vsl"), session_id=session.id, doctor_id=doctor.id, starts_at=start,
                            ends_at=start + timedelta(minutes=15), status="booked")
        s.add(slot)
        s.flush()
        price = 6000 if dept is endo else 5000
        visit = VideoVisitRow(public_id=pid("vvi"), slot_id=slot.id, patient_id=patients[0].id, doctor_id=doctor.id,
                              department_id=dept.id, status=status, price_fen=price, starts_at=start,
                              ends_at=start + timedelta(minutes=15), complaint_enc="x", check_mode="off",
                              followup_diagnoses=[], his_holds=[], created_at=paid, paid_at=paid,
                              checked_in_at=checked_in, call_started_at=call, ended_at=ended, end_reason=reason)
        s.add(visit)
        s.flush()
        payment = _payment(VideoPaymentRow, pid, price, paid, visit_id=visit.id)
        s.add(payment)
        s.flush()
        visits.append((visit, payment))
    for index, settled in ((2, sh(10, 6, 10)), (5, sh(10, 2))):
        visit, payment = visits[index]
        s.add(_refund(VideoRefundRow, pid, 5000, settled, visit_id=visit.id, payment_id=payment.id))  # type: ignore[attr-defined]


def _seed_nursing(s: Session, pid: Pid, world: tuple) -> None:
    card, endo, patients = world[2], world[3], world[4]
    sun = StaffRow(public_id=pid("stf"), employee_no="N001", name="孙丽", role="nurse", department_id=card.id,
                   created_at=sh(1, 1))
    zhou = StaffRow(public_id=pid("stf"), employee_no="N002", name="周敏", role="nurse", department_id=endo.id,
                    created_at=sh(1, 1))
    s.add_all([sun, zhou])

    def item(code: str, name: str) -> NursingItemRow:
        row = NursingItemRow(public_id=pid("nit"), code=code, name=name, price_fen=20000, duration_minutes=60,
                             min_title="护师", required_skills=[], districts=[], polygons=[], created_at=sh(1, 1),
                             updated_at=sh(1, 1))
        s.add(row)
        return row

    picc, sore = item("PICC", "PICC维护"), item("SORE", "压疮护理")
    s.flush()
    for it, nurse, status, approved, assigned, checked_out, closed in (
        (picc, sun, "completed", sh(10, 2, 9), sh(10, 2, 9, 10), sh(10, 3, 11), None),
        (picc, zhou, "reviewed", sh(10, 4, 9), sh(10, 4, 9, 30), sh(10, 5), None),
        (sore, sun, "assigned", sh(10, 6, 9), sh(10, 6, 10), None, None),
        (sore, None, "cancelled", sh(10, 7, 8), None, None, sh(10, 7)),
        (picc, zhou, "completed", sh(9, 29), sh(9, 30, 8), sh(9, 30, 22), None),
    ):
        s.add(NursingOrderRow(public_id=pid("nor"), item_id=it.id, patient_id=patients[0].id,
                              nurse_id=nurse.id if nurse else None, status=status, price_fen=20000, address_enc="x",
                              district_code="440305", lat=22.5, lon=113.9, window_start=approved + timedelta(days=1),
                              window_end=approved + timedelta(days=1, hours=2), condition_enc="x", created_at=approved,
                              paid_at=approved, approved_at=approved, assigned_at=assigned,
                              assigned_by="grab" if assigned else None, checked_out_at=checked_out, closed_at=closed))
    for nurse, raised, escalated, acked in ((sun, sh(10, 3, 10), None, sh(10, 3, 10, 4)),
                                            (zhou, sh(10, 9, 10), sh(10, 9, 10, 5), sh(10, 9, 10, 12)),
                                            (sun, sh(10, 15), sh(10, 15, 0, 5), None),
                                            (zhou, sh(9, 30, 23, 58), None, sh(10, 1, 0, 2))):
        s.add(NursingAlarmRow(public_id=pid("nal"), staff_id=nurse.id, status="acknowledged" if acked else "escalated",
                              lat=22.5, lon=113.9, raised_at=raised, escalated_at=escalated, acknowledged_at=acked))


def _seed_followup(s: Session, pid: Pid, world: tuple) -> None:
    li, wang, _card, _endo, patients, _ = world
    q1 = QuestionnaireRow(public_id=pid("qnr"), title="术后随访", owner_id=li.id, current_version=1, created_at=sh(9, 1),
                          updated_at=sh(9, 1))
    q2 = QuestionnaireRow(public_id=pid("qnr"), title="血糖自评", owner_id=wang.id, current_version=1, created_at=sh(9, 1),
                          updated_at=sh(9, 1))
    s.add_all([q1, q2])
    s.flush()
    v1 = QuestionnaireVersionRow(questionnaire_id=q1.id, version=1, definition={}, created_at=sh(9, 1))
    v2 = QuestionnaireVersionRow(questionnaire_id=q2.id, version=1, definition={}, created_at=sh(9, 1))
    template = FollowupTemplateRow(public_id=pid("fut"), code="post-op", name="术后随访", steps=[], trigger_match=[],
                                   created_at=sh(9, 1))
    s.add_all([v1, v2, template])
    s.flush()

    def plan(doctor: StaffRow, started: datetime) -> FollowupPlanRow:
        row = FollowupPlanRow(public_id=pid("fup"), template_id=template.id, patient_id=patients[0].id, doctor_id=doctor.id,
                              source="doctor", source_ref=pid("ref"), status="active", started_at=started)
        s.add(row)
        s.flush()
        return row

    a, b, c = plan(li, sh(10, 2)), plan(wang, sh(10, 10)), plan(li, sh(9, 20))
    for p, seq, kind, status, due, answered in (
        (a, 1, "text", "sent", sh(10, 2, 10), None),
        (a, 2, "questionnaire", "sent", sh(10, 9), sh(10, 10)),
        (a, 3, "questionnaire", "sent", sh(10, 30), sh(11, 2)),
        (a, 4, "text", "failed", sh(10, 20), None),
        (b, 1, "questionnaire", "sent", sh(10, 11), None),
        (b, 2, "text", "pending", sh(11, 10), None),
        (c, 1, "questionnaire", "sent", sh(9, 25), sh(10, 1)),
    ):
        questionnaire = q1 if kind == "questionnaire" else None
        step = FollowupStepRow(public_id=pid("fus"), plan_id=p.id, seq=seq, kind=kind, title="随访", body="",
                               questionnaire_id=questionnaire.id if questionnaire else None, due_at=due, status=status,
                               sent_at=due if status == "sent" else None, answered_at=answered)
        s.add(step)
        s.flush()
        if answered:
            s.add(QuestionnaireResponseRow(public_id=pid("qrs"), version_id=v1.id, questionnaire_id=q1.id,
                                           patient_id=patients[0].id, step_id=step.id, answers_enc="x",
                                           submitted_at=answered))
    s.add(QuestionnaireResponseRow(public_id=pid("qrs"), version_id=v2.id, questionnaire_id=q2.id,
                                   patient_id=patients[1].id, answers_enc="x", submitted_at=sh(10, 15)))


def _seed_content(s: Session, pid: Pid, world: tuple) -> None:
    patients, (lec_li, lec_wang) = world[4], world[5]
    series = SeriesRow(public_id=pid("ser"), title="心血管健康", department="心血管内科", description="",
                       created_by="ops", created_at=sh(9, 1))
    s.add(series)
    s.flush()
    episodes = [EpisodeRow(public_id=pid("epi"), series_id=series.id, number=i, title=f"第{i}集", status="published",
                           created_at=sh(9, 1), updated_at=sh(9, 1)) for i in (1, 2, 3)]
    s.add_all(episodes)
    s.flush()
    e1, e2, e3 = episodes
    for episode, platform, published in ((e1, "douyin", sh(10, 5)), (e1, "channels", sh(10, 6)), (e2, "douyin", sh(10, 20)),
                                         (e2, "channels", sh(9, 30, 20)), (e3, "douyin", None)):
        s.add(PostRow(public_id=pid("pst"), episode_id=episode.id, platform=platform, planned_at=published or sh(11, 5),
                      published_at=published, created_at=sh(9, 1)))
    imported = StatImportRow(public_id=pid("imp"), kind="video", source="douyin", file_name="x.xlsx", digest="d" * 64,
                             as_of=date(2026, 11, 3), rows=1, inserted=1, updated=0, matched=0, imported_by="ops",
                             imported_at=sh(11, 3))
    s.add(imported)
    s.flush()
    for platform, work, published, as_of, plays, likes in (
        ("douyin", "w1", sh(10, 5), date(2026, 10, 10), 100, 10), ("douyin", "w1", sh(10, 5), date(2026, 10, 20), 300, 25),
        ("douyin", "w2", sh(10, 20), date(2026, 10, 25), 50, 5), ("channels", "w3", sh(10, 6), date(2026, 11, 3), 80, 8),
        ("douyin", "w4", sh(9, 28), date(2026, 10, 10), 1000, 100),
    ):
        s.add(VideoStatRow(platform=platform, work_key=work, title=work, published_at=published, as_of=as_of, plays=plays,
                           likes=likes, comments=0, shares=0, followers=0, import_id=imported.id))
    for platform, started, viewers in (("douyin", sh(10, 12, 19), 200), ("channels", sh(10, 26, 19), 150),
                                       ("douyin", sh(9, 30, 19), 999)):
        s.add(LiveStatRow(platform=platform, title="直播", started_at=started, minutes=60, viewers=viewers, views=viewers,
                          peak_online=10, likes=0, comments=0, shares=0, followers=0, import_id=imported.id))
    tips = []
    for lecture, amount, paid, status in ((lec_li, 1000, sh(10, 10), "succeeded"), (lec_li, 500, sh(10, 11), "succeeded"),
                                          (lec_li, 800, sh(10, 12), "pending"), (lec_li, 200, sh(9, 30, 10), "succeeded"),
                                          (lec_wang, 300, sh(10, 15), "succeeded")):
        tip = _payment(LectureTipRow, pid, amount, paid, status, lecture_id=lecture.id, patient_id=patients[1].id,
                       author_staff_id=lecture.author_staff_id)
        s.add(tip)
        s.flush()
        tips.append(tip)
    for index, settled in ((1, sh(10, 12)), (3, sh(10, 2))):
        tip = tips[index]
        s.add(_refund(LectureTipRefundRow, pid, tip.amount_fen, settled, tip_id=tip.id, payment_id=tip.id))  # type: ignore[attr-defined]

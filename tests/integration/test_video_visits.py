"""网络门诊 services on SQLite and PostgreSQL: follow-up check in three modes,
the visit's lifecycle, refunds, rooms and tokens, records (R38), prescribing
limited by the snapshotted diagnoses, and the jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from clinical_core.domain.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    RuleViolation,
    Unauthenticated,
)
from clinical_core.domain.time import FixedClock
from clinical_core.domain.video_visit import CheckMode, Diagnosis, EndReason
from clinical_core.persistence.video import VideoRefundRow, VideoSlotRow, VideoVisitRow
from clinical_core.ports.reminders import VisitReminder
from clinical_core.services import (
    prescriptions,
    video_booking,
    video_jobs,
    video_ledger,
    video_records,
    video_settings,
    video_visits,
)
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, certify
from tests.support.video import (
    SESSION_START,
    VideoClinic,
    add_his_visit,
    book,
    build_video_clinic,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def vc(container: Container, clock: FixedClock) -> VideoClinic:
    return build_video_clinic(container, clock)


def _status(c: Container, visit_id: str) -> str:
    with c.uow() as uow:
        return video_visits.load(uow, visit_id).status


def _to_call(c: Container, clock: FixedClock, vc: VideoClinic, visit_id: str) -> None:
    clock.current = SESSION_START - timedelta(minutes=10)
    video_visits.check_in(c.uow(), vc.clinic.patient, c.video_rooms, visit_id)
    video_visits.start_call(c.uow(), vc.clinic.doctor_a, c.video_rooms, visit_id)


# --- follow-up check (VC-2, VC-5, R02, R17) ---


def test_strict_booking_snapshots_the_offline_visit(container: Container, vc: VideoClinic) -> None:
    visit_id = book(container, vc, vc.clinic.patient)
    view = video_visits.get_visit(container.uow(), vc.clinic.patient, visit_id)
    assert view.status == "paid" and view.payment_state == "paid" and view.paid_fen == 3000
    assert view.check_mode == "strict" and view.his_visit_no == "MZ-pt.zhang"
    assert view.followup_department == "心血管内科" and view.followup_confirmed
    assert view.followup_diagnoses == ("I10 原发性高血压", "E78.5 高脂血症")
    assert view.patient_name == "张*"


def test_strict_mode_refuses_missing_foreign_or_unsuitable_evidence(
        container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    patient = vc.clinic.patient
    with pytest.raises(RuleViolation, match="VC-2"):
        book(container, vc, patient, his_visit_no=None)
    with pytest.raises(RuleViolation, match="VC-2"):
        book(container, vc, patient, his_visit_no="MZ-pt.wang")  # another patient's visit
    add_his_visit(container, patient, "MZ-gast", "GAST", clock.now() - timedelta(days=3),
                  [{"icd10": "K29.7", "name": "胃炎"}])
    with pytest.raises(RuleViolation, match="科室"):
        book(container, vc, patient, his_visit_no="MZ-gast")
    add_his_visit(container, patient, "MZ-old", "CARD", clock.now() - timedelta(days=400),
                  [{"icd10": "I10", "name": "原发性高血压"}])
    with pytest.raises(RuleViolation, match="R02"):
        book(container, vc, patient, his_visit_no="MZ-old")
    add_his_visit(container, patient, "MZ-nodx", "CARD", clock.now() - timedelta(days=3), [])
    with pytest.raises(RuleViolation, match="R02"):
        book(container, vc, patient, his_visit_no="MZ-nodx")
    with container.uow() as uow:  # nothing was taken by the refusals
        assert uow.session.scalar(select(VideoVisitRow.id)) is None
        assert set(uow.session.scalars(select(VideoSlotRow.status))) == {"open"}


def test_declared_mode_needs_records_and_a_doctors_confirmation(
        container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    video_settings.set_check_mode(container.uow(), ADMIN, CheckMode.DECLARED, department_code="CARD")
    with pytest.raises(RuleViolation, match="R17"):
        book(container, vc, vc.clinic.patient, his_visit_no=None)
    visit_id = book(container, vc, vc.clinic.patient, his_visit_no=None, documents=(PNG,))
    view = video_visits.get_visit(container.uow(), vc.clinic.doctor_a, visit_id)
    assert view.check_mode == "declared" and view.documents == 1 and not view.followup_confirmed
    assert video_records.read_document(container.uow(), vc.clinic.doctor_a, container.attachments, visit_id, 1) == (
        "image/png", PNG)
    assert [d.mime for d in video_records.list_documents(container.uow(), vc.clinic.patient, visit_id)] == ["image/png"]
    with pytest.raises(Forbidden):
        video_records.read_document(container.uow(), vc.clinic.doctor_c, container.attachments, visit_id, 1)
    clock.current = SESSION_START - timedelta(minutes=10)
    video_visits.check_in(container.uow(), vc.clinic.patient, container.video_rooms, visit_id)
    with pytest.raises(RuleViolation, match="R17"):
        video_visits.start_call(container.uow(), vc.clinic.doctor_a, container.video_rooms, visit_id)
    with pytest.raises(Forbidden):
        video_visits.confirm_followup(container.uow(), vc.clinic.doctor_b, visit_id, [Diagnosis("I10", "高血压")])
    video_visits.confirm_followup(container.uow(), vc.clinic.doctor_a, visit_id, [Diagnosis("J45", "哮喘")])
    video_visits.start_call(container.uow(), vc.clinic.doctor_a, container.video_rooms, visit_id)
    assert _status(container, visit_id) == "in_call"


def test_off_mode_books_without_evidence(container: Container, vc: VideoClinic) -> None:
    video_settings.set_check_mode(container.uow(), ADMIN, CheckMode.OFF)
    visit_id = book(container, vc, vc.clinic.patient, his_visit_no=None)
    view = video_visits.get_visit(container.uow(), ADMIN, visit_id)
    assert view.check_mode == "off" and view.followup_diagnoses == () and view.his_visit_no is None
    settings = {s.scope: s.check_mode for s in video_settings.list_settings(container.uow(), ADMIN)}
    assert settings["*"] == "off"
    with pytest.raises(Forbidden):
        video_settings.set_check_mode(container.uow(), vc.clinic.doctor_a, CheckMode.STRICT)


# --- the lifecycle, rooms, records and prescribing ---


def test_full_visit_with_guest_record_versions_and_prescription(
        container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    clinic, rooms = vc.clinic, container.video_rooms
    visit_id = book(container, vc, clinic.patient)
    clock.current = SESSION_START - timedelta(hours=2)
    with pytest.raises(RuleViolation, match="候诊室"):
        video_visits.check_in(container.uow(), clinic.patient, rooms, visit_id)
    with pytest.raises(IllegalTransition):  # the patient is not in the waiting room yet
        video_visits.start_call(container.uow(), clinic.doctor_a, rooms, visit_id)
    clock.current = SESSION_START - timedelta(minutes=5)
    patient_token = video_visits.check_in(container.uow(), clinic.patient, rooms, visit_id)
    doctor_token = video_visits.start_call(container.uow(), clinic.doctor_a, rooms, visit_id)
    guest = video_visits.invite_guest(container.uow(), clinic.patient, rooms, visit_id, "家属")
    for token, role in ((patient_token, "patient"), (doctor_token, "doctor"), (guest.token, "guest")):
        claims = rooms.verify_token(token.token)
        assert claims.room_id == patient_token.room_id and claims.role == role
    with pytest.raises(InvalidInput):
        video_visits.invite_guest(container.uow(), clinic.patient, rooms, visit_id, "朋友")
    with pytest.raises(Forbidden):
        video_visits.join_room(container.uow(), clinic.other_patient, rooms, visit_id)

    video_records.write_record(container.uow(), clinic.doctor_a, visit_id, "主诉：头晕一周。血压 150/95。")
    video_records.write_record(container.uow(), clinic.doctor_a, visit_id, "主诉：头晕一周。血压 150/95。调整降压药。")
    history = video_records.record_history(container.uow(), clinic.patient, visit_id)
    assert [h.version for h in history] == [1, 2] and "调整" in history[1].text and "调整" not in history[0].text
    with pytest.raises(Forbidden):
        video_records.write_record(container.uow(), clinic.doctor_b, visit_id, "不是本人的病人。")

    certify(container, clinic.doctor_a)
    item = prescriptions.NewItem("D001", 1, 7, "每日一次，每次 1 片，口服")
    _add_drug(container)
    with pytest.raises(RuleViolation, match="R02"):  # hypertension was the offline diagnosis, not diabetes
        video_records.prescribe(container.uow(), clinic.doctor_a, container.his, container.signer, visit_id,
                                prescriptions.NewPrescription("", ("E11",), (item,)))
    rx = video_records.prescribe(container.uow(), clinic.doctor_a, container.his, container.signer, visit_id,
                                 prescriptions.NewPrescription("", ("I10",), (item,)))
    assert rx.video_visit_id == visit_id and rx.consultation_id == "" and rx.status == "pending_review"

    ended = video_visits.end_visit(container.uow(), clinic.doctor_a, rooms, visit_id)
    assert ended.status == "ended" and ended.end_reason == "completed" and ended.guests == 1
    with pytest.raises(Unauthenticated, match="关闭"):  # the room is dismissed after the visit
        rooms.verify_token(guest.token.token)
    clock.advance(timedelta(hours=4))
    with pytest.raises(Unauthenticated):
        rooms.verify_token(doctor_token.token)


def _add_drug(c: Container) -> None:
    from clinical_core.persistence.models import DrugRow

    with c.uow() as uow:
        uow.session.add(DrugRow(public_id="drg_1", code="D001", generic_name="氨氯地平片", specification="5mg*28片",
                                dosage_form="片剂", unit="盒", price_fen=2500, category="western",
                                control_class="none", prescription_only=True, active=True))
        uow.commit()


def test_doctor_judges_a_first_visit_and_the_patient_is_refunded(
        container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    """R18: stopped at once, the whole fee refunded automatically, the patient guided offline."""
    visit_id = book(container, vc, vc.clinic.patient)
    _to_call(container, clock, vc, visit_id)
    with pytest.raises(InvalidInput):
        video_visits.terminate_visit(container.uow(), vc.clinic.doctor_a, container.video_rooms, visit_id,
                                     EndReason.COMPLETED, "无")
    view = video_visits.terminate_visit(container.uow(), vc.clinic.doctor_a, container.video_rooms, visit_id,
                                        EndReason.FIRST_VISIT, "新发胸痛，属首诊，请到心内科门诊就诊")
    assert view.status == "terminated" and view.end_reason == "first_visit"
    assert view.payment_state == "paid"  # the refund is pending until the provider confirms it
    assert video_ledger.settle_refunds(container.uow(), vc.gateway).succeeded == 1
    after = video_visits.get_visit(container.uow(), vc.clinic.patient, visit_id)
    assert after.payment_state == "refunded" and after.refunded_fen == 3000
    assert video_ledger.settle_refunds(container.uow(), vc.gateway).succeeded == 0  # idempotent


@pytest.mark.parametrize(("notice", "refunded"), [(timedelta(hours=30), 3000), (timedelta(hours=5), 1500),
                                                  (timedelta(minutes=30), 0)])
def test_patient_cancellation_refunds_by_notice(container: Container, clock: FixedClock, vc: VideoClinic,
                                                notice: timedelta, refunded: int) -> None:
    clock.current = SESSION_START - timedelta(hours=40)
    visit_id = book(container, vc, vc.clinic.patient)
    clock.current = SESSION_START - notice
    view = video_booking.cancel_visit(container.uow(), vc.clinic.patient, container.his_schedule, visit_id)
    assert view.status == "cancelled" and view.end_reason == "patient_cancelled"
    video_ledger.settle_refunds(container.uow(), vc.gateway)
    assert video_visits.get_visit(container.uow(), ADMIN, visit_id).refunded_fen == refunded
    with container.uow() as uow:  # the slot is offered again
        assert uow.session.scalar(select(VideoSlotRow.status).where(VideoSlotRow.public_id == vc.slot_ids[0])) == "open"
    book(container, vc, vc.clinic.other_patient)


def test_hospital_cancellation_refunds_in_full_and_no_cancel_after_the_start(
        container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    first = book(container, vc, vc.clinic.patient, 0)
    second = book(container, vc, vc.clinic.other_patient, 1)
    clock.current = SESSION_START - timedelta(minutes=30)
    view = video_booking.cancel_visit(container.uow(), vc.clinic.doctor_a, container.his_schedule, first)
    assert view.end_reason == "hospital_cancelled"
    clock.current = SESSION_START + timedelta(minutes=20)
    with pytest.raises(RuleViolation, match="不能取消"):
        video_booking.cancel_visit(container.uow(), vc.clinic.other_patient, container.his_schedule, second)
    video_ledger.settle_refunds(container.uow(), vc.gateway)
    assert video_visits.get_visit(container.uow(), ADMIN, first).refunded_fen == 3000


def test_access_is_by_ownership(container: Container, vc: VideoClinic) -> None:
    visit_id = book(container, vc, vc.clinic.patient)
    with pytest.raises(Forbidden):
        video_visits.get_visit(container.uow(), vc.clinic.other_patient, visit_id)
    with pytest.raises(Forbidden):
        video_visits.get_visit(container.uow(), vc.clinic.doctor_c, visit_id)
    assert video_visits.complaint_of(container.uow(), vc.clinic.doctor_a, visit_id) == "高血压复诊，血压控制不佳"
    assert [v.public_id for v in video_visits.list_visits(container.uow(), vc.clinic.other_patient)] == []
    assert [v.public_id for v in video_visits.list_visits(container.uow(), vc.clinic.doctor_a)] == [visit_id]


def test_one_patient_cannot_hold_two_overlapping_visits(container: Container, vc: VideoClinic) -> None:
    book(container, vc, vc.clinic.patient, 0)
    with pytest.raises(Conflict):
        book(container, vc, vc.clinic.patient, 0)  # the same slot
    book(container, vc, vc.clinic.patient, 1)  # the next slot does not overlap


# --- jobs ---


def test_unpaid_bookings_release_their_slot(container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    visit_id = book(container, vc, vc.clinic.patient, pay=False)
    assert _status(container, visit_id) == "booked"
    assert video_jobs.release_unpaid(container.uow(), clock.now(), his_schedule=container.his_schedule).processed == 0
    clock.advance(timedelta(minutes=16))
    assert video_jobs.release_unpaid(container.uow(), clock.now(), his_schedule=container.his_schedule).processed == 1
    assert video_jobs.release_unpaid(container.uow(), clock.now(), his_schedule=container.his_schedule).processed == 0
    assert _status(container, visit_id) == "cancelled"
    book(container, vc, vc.clinic.other_patient)


def test_no_shows_are_marked_after_the_slot(container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    absent = book(container, vc, vc.clinic.patient, 0)
    present = book(container, vc, vc.clinic.other_patient, 1)
    clock.current = SESSION_START + timedelta(minutes=14)
    video_visits.check_in(container.uow(), vc.clinic.other_patient, container.video_rooms, present)
    clock.current = SESSION_START + timedelta(minutes=29)
    assert video_jobs.mark_no_shows(container.uow(), clock.now()).processed == 0
    clock.current = SESSION_START + timedelta(minutes=31)
    assert video_jobs.mark_no_shows(container.uow(), clock.now()).processed == 1
    assert _status(container, absent) == "no_show" and _status(container, present) == "waiting"


class _Sender:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[VisitReminder] = []
        self.fail = fail

    def send_visit_reminder(self, reminder: VisitReminder) -> None:
        from clinical_core.domain.errors import ExternalServiceError

        if self.fail:
            self.fail -= 1
            raise ExternalServiceError("微信：发送失败")
        self.sent.append(reminder)


def test_reminders_once_per_visit_and_retried_after_a_failure(
        container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    from clinical_core.persistence.models import PatientRow

    visit_id = book(container, vc, vc.clinic.patient)
    with container.uow() as uow:
        for p in uow.session.scalars(select(PatientRow)):
            p.openid = f"o{p.id}"
        uow.commit()
    sender = _Sender(fail=1)
    clock.current = SESSION_START - timedelta(hours=2)
    assert video_jobs.send_reminders(container.uow(), clock.now(), sender=sender).processed == 0
    clock.current = SESSION_START - timedelta(minutes=50)
    assert video_jobs.send_reminders(container.uow(), clock.now(), sender=sender) == video_jobs.JobCounts(0, 1)
    assert video_jobs.send_reminders(container.uow(), clock.now(), sender=sender) == video_jobs.JobCounts(1, 0)
    assert video_jobs.send_reminders(container.uow(), clock.now(), sender=sender) == video_jobs.JobCounts(0, 0)
    assert [r.visit_id for r in sender.sent] == [visit_id] and sender.sent[0].department == "心血管内科"


def test_money_after_release_is_refunded(container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    booked = video_booking.book_visit(container.uow(), vc.clinic.patient, vc.gateway, container.his,
                                      container.his_schedule, container.attachments, vc.slot_ids[0],
                                      "高血压复诊，血压控制不佳", his_visit_no="MZ-pt.zhang")
    clock.advance(timedelta(minutes=20))
    video_jobs.release_unpaid(container.uow(), clock.now(), his_schedule=container.his_schedule)
    assert booked.out_trade_no
    headers, body = vc.gateway.simulate_payment(booked.out_trade_no)
    view = video_booking.handle_paid_notification(container.uow(), vc.gateway, headers, body)
    video_booking.handle_paid_notification(container.uow(), vc.gateway, headers, body)  # repeated: no change
    assert view.status == "cancelled"
    with container.uow() as uow:
        assert [r.reason for r in uow.session.scalars(select(VideoRefundRow))] == ["paid_after_cancel"]

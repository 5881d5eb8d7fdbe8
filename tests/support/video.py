"""A video clinic on top of the test clinic: offline HIS visits for the patient,
a published online session of doctor A tomorrow morning, and helpers to book
and pay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.access import Principal
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import (
    DepartmentRow,
    HisVisitRow,
    PatientRow,
    StaffRow,
)
from clinical_core.services import video_booking, video_schedule
from opsctl.wiring import Container
from tests.support.clinic import OPS, Clinic, build_clinic

# 2026-11-03 09:00–10:00 in Shanghai, four 15-minute slots
SESSION_START = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
SESSION_END = SESSION_START + timedelta(hours=1)


@dataclass
class VideoClinic:
    clinic: Clinic
    gateway: SandboxPaymentGateway
    session_id: str
    slot_ids: list[str]


def add_his_visit(c: Container, patient: Principal, visit_no: str, dept_code: str, when: datetime,
                  diagnoses: list[dict[str, str]], visit_type: str = "outpatient") -> None:
    with c.uow() as uow:
        patient_pk = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == patient.patient_id))
        dept_pk = uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == dept_code))
        uow.session.add(HisVisitRow(visit_no=visit_no, patient_id=patient_pk, department_id=dept_pk,
                                    visit_type=visit_type, visited_at=when, diagnoses=diagnoses))
        uow.commit()


def build_video_clinic(c: Container, clock: FixedClock, *, price_fen: int = 3000) -> VideoClinic:
    clinic = build_clinic(c)
    for who in (clinic.patient, clinic.other_patient):
        add_his_visit(c, who, f"MZ-{who.username}", "CARD", clock.now() - timedelta(days=40),
                      [{"icd10": "I10", "name": "原发性高血压"}, {"icd10": "E78.5", "name": "高脂血症"}])
    session = video_schedule.create_session(c.uow(), OPS, video_schedule.NewSession(
        doctor_id=clinic.doctor_a.staff_id or "", starts_at=SESSION_START, ends_at=SESSION_END, slot_minutes=15,
        price_fen=price_fen))
    slots = [s.online_slot_id for s in video_schedule.fused_schedule(
        c.uow(), OPS, c.his_schedule, start=SESSION_START, end=SESSION_END, doctor_id=clinic.doctor_a.staff_id)
        if s.online_slot_id]
    return VideoClinic(clinic, SandboxPaymentGateway(clock), session.public_id, slots)


def book(c: Container, vc: VideoClinic, patient: Principal, slot: int = 0, *,
         his_visit_no: str | None = "default", documents: tuple[bytes, ...] = (),
         pay: bool = True) -> str:
    if his_visit_no == "default":
        his_visit_no = f"MZ-{patient.username}"
    booked = video_booking.book_visit(c.uow(), patient, vc.gateway, c.his, c.his_schedule, c.attachments,
                                      vc.slot_ids[slot], "高血压复诊，血压控制不佳", his_visit_no=his_visit_no,
                                      documents=documents)
    if pay and booked.out_trade_no:
        headers, body = vc.gateway.simulate_payment(booked.out_trade_no)
        video_booking.handle_paid_notification(c.uow(), vc.gateway, headers, body)
    return booked.visit.public_id


def doctor_pk(c: Container, doctor: Principal) -> int:
    with c.uow() as uow:
        pk = uow.session.scalar(select(StaffRow.id).where(StaffRow.public_id == doctor.staff_id))
        assert pk is not None
        return pk

"""Tables of 网络门诊 (video follow-up clinic): settings, online sessions and
their slots, visits, participants, the doctor's record (every version kept,
R38), declared records, payments and refunds.

The visit's status moves only through ``clinical_core.domain.video_visit``.
A slot is taken by one conditional UPDATE (``status = 'open'``), so of two
patients booking the last slot exactly one wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType, PublicIdMixin, fk
from clinical_core.persistence.payments import PaymentRecordMixin, RefundRecordMixin


class VideoClinicSettingRow(IdMixin, Base):
    """网络门诊设置 (VC-5): the follow-up check mode, hospital-wide (scope ``*``) or per department code."""

    __tablename__ = "video_clinic_settings"
    scope: Mapped[str] = mapped_column(String(20), unique=True)
    check_mode: Mapped[str] = mapped_column(String(10))  # strict | declared | off
    lookback_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(80))


class VideoSessionRow(PublicIdMixin, Base):
    """网络门诊出诊: one doctor online from ``starts_at`` to ``ends_at``, cut into slots."""

    __tablename__ = "video_sessions"
    doctor_id: Mapped[int] = mapped_column(fk("staff.id"))
    department_id: Mapped[int] = mapped_column(fk("departments.id"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    slot_minutes: Mapped[int] = mapped_column(Integer)
    price_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))  # open | cancelled
    source: Mapped[str] = mapped_column(String(12))  # manual | import
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_video_sessions_doctor_start", "doctor_id", "starts_at"),)


class VideoSlotRow(PublicIdMixin, Base):
    """号源 of an online session: open, booked (by one visit) or closed (session cancelled / taken offline)."""

    __tablename__ = "video_slots"
    session_id: Mapped[int] = mapped_column(fk("video_sessions.id"), index=True)
    doctor_id: Mapped[int] = mapped_column(fk("staff.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))  # open | booked | closed

    __table_args__ = (
        Index("ix_video_slots_doctor_start", "doctor_id", "starts_at"),
        Index("ix_video_slots_status_start", "status", "starts_at"),
    )


class VideoVisitRow(PublicIdMixin, Base):
    """视频复诊 (one booking of one slot)."""

    __tablename__ = "video_visits"
    slot_id: Mapped[int] = mapped_column(fk("video_slots.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    doctor_id: Mapped[int] = mapped_column(fk("staff.id"))
    department_id: Mapped[int] = mapped_column(fk("departments.id"))
    status: Mapped[str] = mapped_column(String(12))
    price_fen: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    complaint_enc: Mapped[str] = mapped_column(Text)  # 病情描述, encrypted
    check_mode: Mapped[str] = mapped_column(String(10))
    # 复诊依据 snapshotted at booking (strict) or on the doctor's confirmation (declared)
    his_visit_no: Mapped[str | None] = mapped_column(String(30))
    followup_department: Mapped[str | None] = mapped_column(String(60))
    followup_diagnoses: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)  # [{"icd10", "name"}]
    followup_confirmed_at: Mapped[datetime | None]
    followup_confirmed_by: Mapped[int | None] = mapped_column(fk("staff.id"))
    his_holds: Mapped[list[str]] = mapped_column(JsonType)  # HIS outpatient slots held for this visit
    room_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    call_started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(20))
    end_note: Mapped[str | None] = mapped_column(String(200))
    reminded_at: Mapped[datetime | None]
    reminder_error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_video_visits_doctor_start", "doctor_id", "starts_at"),
        Index("ix_video_visits_status_start", "status", "starts_at"),
    )


class VideoDocumentRow(IdMixin, Base):
    """申报复诊的病历资料 (declared mode, R17): files by content hash in the attachment store."""

    __tablename__ = "video_documents"
    visit_id: Mapped[int] = mapped_column(fk("video_visits.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime]


class VideoParticipantRow(PublicIdMixin, Base):
    """A participant of the visit's room: the patient, the doctor, or an invited third party."""

    __tablename__ = "video_participants"
    visit_id: Mapped[int] = mapped_column(fk("video_visits.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # patient | doctor | guest
    relation: Mapped[str | None] = mapped_column(String(10))  # 家属, 翻译 ... (guests)
    invited_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class VideoRecordRow(IdMixin, Base):
    """门诊病历 of a video visit: every version kept, with author and time (R38); text encrypted."""

    __tablename__ = "video_records"
    visit_id: Mapped[int] = mapped_column(fk("video_visits.id"))
    version: Mapped[int] = mapped_column(Integer)
    staff_id: Mapped[int] = mapped_column(fk("staff.id"))
    text_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("visit_id", "version", name="uq_video_records_visit_version"),)


class VideoPaymentRow(PaymentRecordMixin, Base):
    """挂号费支付记录 (one per prepay)."""

    __tablename__ = "video_payments"
    visit_id: Mapped[int] = mapped_column(fk("video_visits.id"), index=True)


class VideoRefundRow(RefundRecordMixin, Base):
    """挂号费退款记录: pending → succeeded, sent to the provider after the commit."""

    __tablename__ = "video_refunds"
    visit_id: Mapped[int] = mapped_column(fk("video_visits.id"), index=True)
    payment_id: Mapped[int] = mapped_column(fk("video_payments.id"), index=True)

"""Tables of 在线咨询: services, orders, payments, refunds and messages.

The order's status moves only through ``clinical_core.domain.consultation``.
Money lives in ``consult_payments`` and ``consult_refunds``; income is their
difference, computed, never stored as a balance.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, PublicIdMixin, fk
from clinical_core.persistence.payments import PaymentRecordMixin, RefundRecordMixin


class ConsultServiceRow(PublicIdMixin, Base):
    """咨询服务设置: a doctor's 图文/电话, a department's 科室咨询, or a 定点保障 line."""

    __tablename__ = "consult_services"
    kind: Mapped[str] = mapped_column(String(20))
    doctor_id: Mapped[int | None] = mapped_column(fk("staff.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(fk("departments.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    price_fen: Mapped[int] = mapped_column(Integer)
    time_limit_minutes: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("doctor_id", "kind", name="uq_consult_services_doctor_kind"),
        UniqueConstraint("department_id", "kind", name="uq_consult_services_department_kind"),
    )


class ConsultTeamMemberRow(IdMixin, Base):
    """定点保障 team: the doctors the hospital appoints to answer a designated line."""

    __tablename__ = "consult_team_members"
    service_id: Mapped[int] = mapped_column(fk("consult_services.id"))
    staff_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)

    __table_args__ = (UniqueConstraint("service_id", "staff_id", name="uq_consult_team_members_service_staff"),)


class ConsultationRow(PublicIdMixin, Base):
    """咨询订单."""

    __tablename__ = "consultations"
    service_id: Mapped[int] = mapped_column(fk("consult_services.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(fk("departments.id"))  # current pool
    doctor_id: Mapped[int | None] = mapped_column(fk("staff.id"))  # addressed or claiming doctor
    status: Mapped[str] = mapped_column(String(20))
    price_fen: Mapped[int] = mapped_column(Integer)
    question_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    answer_deadline: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(20))
    transfer_count: Mapped[int] = mapped_column(Integer, default=0)
    review_rating: Mapped[int | None] = mapped_column(Integer)
    review_comment_enc: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_consultations_status_department", "status", "department_id"),
        Index("ix_consultations_doctor_status", "doctor_id", "status"),
        Index("ix_consultations_status_deadline", "status", "answer_deadline"),
    )


class ConsultPaymentRow(PaymentRecordMixin, Base):
    """支付记录 (one per prepay). Settled by the provider's paid notification."""

    __tablename__ = "consult_payments"
    consultation_id: Mapped[int] = mapped_column(fk("consultations.id"), index=True)


class ConsultRefundRow(RefundRecordMixin, Base):
    """退款记录: its own life (pending → succeeded), sent to the provider outside the order's transaction."""

    __tablename__ = "consult_refunds"
    consultation_id: Mapped[int] = mapped_column(fk("consultations.id"), index=True)
    payment_id: Mapped[int] = mapped_column(fk("consult_payments.id"), index=True)


class ConsultMessageRow(PublicIdMixin, Base):
    """咨询消息: text encrypted; attachments by content hash in the attachment store."""

    __tablename__ = "consult_messages"
    consultation_id: Mapped[int] = mapped_column(fk("consultations.id"))
    sender: Mapped[str] = mapped_column(String(10))  # patient | doctor
    staff_id: Mapped[int | None] = mapped_column(fk("staff.id"))
    kind: Mapped[str] = mapped_column(String(10))
    text_enc: Mapped[str | None] = mapped_column(Text)
    attachment_sha256: Mapped[str | None] = mapped_column(String(64))
    attachment_mime: Mapped[str | None] = mapped_column(String(40))
    attachment_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_consult_messages_consultation", "consultation_id", "id"),)


class PrivacyBindingRow(PublicIdMixin, Base):
    """隐号绑定 (AXB) of one consultation: patient and doctor meet on ``x_number`` until it expires."""

    __tablename__ = "privacy_bindings"
    consultation_id: Mapped[int] = mapped_column(fk("consultations.id"), index=True)
    staff_id: Mapped[int] = mapped_column(fk("staff.id"))
    provider_binding_id: Mapped[str] = mapped_column(String(64), unique=True)
    x_number: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class PrivacyCallRow(IdMixin, Base):
    """话单: one call through a binding, as the provider reported it (kept ≥3 years, R19)."""

    __tablename__ = "privacy_calls"
    binding_id: Mapped[int] = mapped_column(fk("privacy_bindings.id"), index=True)
    caller: Mapped[str] = mapped_column(String(10))  # patient | doctor
    started_at: Mapped[datetime]
    duration_seconds: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("binding_id", "started_at", "caller", name="uq_privacy_calls_call"),)

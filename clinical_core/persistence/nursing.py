"""Tables of 互联网+护理服务: items, home nurses, orders, payments, refunds,
assessments, the chained visit record, trajectory points, SOS alarms and the
recipients' blacklist.

The order's status moves only through ``clinical_core.domain.nursing``; an
alarm's through ``clinical_core.domain.nursing_alarm``. Addresses and free
text are stored encrypted; coordinates are kept in clear for the geofence and
the service hall (a point without the text address identifies no one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType, PublicIdMixin, fk
from clinical_core.persistence.payments import PaymentRecordMixin, RefundRecordMixin


class NursingItemRow(PublicIdMixin, Base):
    """护理项目: price, duration, qualifications required, and where it is offered."""

    __tablename__ = "nursing_items"
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(400), default="")
    price_fen: Mapped[int] = mapped_column(Integer)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    min_title: Mapped[str] = mapped_column(String(20))
    required_skills: Mapped[Any] = mapped_column(JsonType)  # list of 专项资质, e.g. ["PICC维护"]
    districts: Mapped[Any] = mapped_column(JsonType)  # list of district codes
    polygons: Mapped[Any] = mapped_column(JsonType)  # list of [[lon, lat], ...]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class HomeNurseRow(IdMixin, Base):
    """上门护士: a nurse registered for home nursing (R44 checked), with base and reach."""

    __tablename__ = "home_nurses"
    staff_id: Mapped[int] = mapped_column(fk("staff.id"), unique=True)
    base_lat: Mapped[float] = mapped_column(Float)
    base_lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
    skills: Mapped[Any] = mapped_column(JsonType)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[datetime]


class NursingOrderRow(PublicIdMixin, Base):
    """护理订单."""

    __tablename__ = "nursing_orders"
    item_id: Mapped[int] = mapped_column(fk("nursing_items.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    nurse_id: Mapped[int | None] = mapped_column(fk("staff.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    price_fen: Mapped[int] = mapped_column(Integer)
    address_enc: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str] = mapped_column(String(12))
    street: Mapped[str | None] = mapped_column(String(30))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    condition_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(80))  # admin who approved or rejected
    approved_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    assigned_by: Mapped[str | None] = mapped_column(String(80))  # grab | admin actor
    checked_in_at: Mapped[datetime | None]
    checked_out_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(200))
    review_rating: Mapped[int | None] = mapped_column(Integer)
    review_comment_enc: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_nursing_orders_status_window", "status", "window_start"),
        Index("ix_nursing_orders_nurse_status", "nurse_id", "status"),
    )


class NursingPaymentRow(PaymentRecordMixin, Base):
    __tablename__ = "nursing_payments"
    order_id: Mapped[int] = mapped_column(fk("nursing_orders.id"), index=True)


class NursingRefundRow(RefundRecordMixin, Base):
    __tablename__ = "nursing_refunds"
    order_id: Mapped[int] = mapped_column(fk("nursing_orders.id"), index=True)
    payment_id: Mapped[int] = mapped_column(fk("nursing_payments.id"), index=True)


class NursingAssessmentRow(PublicIdMixin, Base):
    """首诊评估 (R46): the institution's assessment of the recipient's condition and needs."""

    __tablename__ = "nursing_assessments"
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(fk("nursing_orders.id"))
    assessor_id: Mapped[int] = mapped_column(fk("staff.id"))
    suitable: Mapped[bool] = mapped_column(Boolean)
    findings_enc: Mapped[str] = mapped_column(Text)
    assessed_at: Mapped[datetime]


class NursingVisitEventRow(IdMixin, Base):
    """服务记录: check-in, check-out, overrides and notes of one order, each entry
    chained to the previous one by its hash (R48: later edits are evident)."""

    __tablename__ = "nursing_visit_events"
    order_id: Mapped[int] = mapped_column(fk("nursing_orders.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # check_in | check_out | override | note
    actor: Mapped[str] = mapped_column(String(80))
    payload: Mapped[Any] = mapped_column(JsonType)  # no personal data in clear: notes are *_enc
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("order_id", "seq", name="uq_nursing_visit_events_order_seq"),)


class NursingTrackPointRow(IdMixin, Base):
    """轨迹点 the nurse's app reports while on duty (R47 location tracking)."""

    __tablename__ = "nursing_track_points"
    order_id: Mapped[int] = mapped_column(fk("nursing_orders.id"))
    staff_id: Mapped[int] = mapped_column(fk("staff.id"))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[datetime]
    received_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("order_id", "staff_id", "recorded_at", name="uq_nursing_track_points_point"),
        Index("ix_nursing_track_points_order_time", "order_id", "recorded_at"),
    )


class NursingAlarmRow(PublicIdMixin, Base):
    """一键呼叫报警 (R48)."""

    __tablename__ = "nursing_alarms"
    staff_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(fk("nursing_orders.id"))
    status: Mapped[str] = mapped_column(String(20))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime]
    escalated_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(80))
    notes_enc: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_nursing_alarms_status_raised", "status", "raised_at"),)


class NursingBlacklistRow(IdMixin, Base):
    """服务对象黑名单 (R49). Removal keeps the row (``removed_at``) for the trace."""

    __tablename__ = "nursing_blacklist"
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    reason_enc: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(80))
    added_at: Mapped[datetime]
    removed_by: Mapped[str | None] = mapped_column(String(80))
    removed_at: Mapped[datetime | None]

"""Tables of 处方 and 审方. A prescription belongs to a consultation or a video
visit (the follow-up encounter: exactly one of the two is set); each revision bumps ``version``; each review is its own
record naming the version it judged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType, PublicIdMixin, fk
from clinical_core.persistence.payments import PaymentRecordMixin, RefundRecordMixin


class PrescriptionRow(PublicIdMixin, Base):
    """处方."""

    __tablename__ = "prescriptions"
    consultation_id: Mapped[int | None] = mapped_column(fk("consultations.id"), index=True)
    video_visit_id: Mapped[int | None] = mapped_column(fk("video_visits.id"), index=True)  # 网络门诊 encounter
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    doctor_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    diagnoses: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)  # [{"icd10", "name"}]
    valid_days: Mapped[int] = mapped_column(Integer)
    long_term_reason: Mapped[str | None] = mapped_column(String(200))
    guardian_present: Mapped[bool] = mapped_column(Boolean, default=False)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)  # rule findings that did not block
    issued_at: Mapped[datetime]
    revised_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(200))
    # circulation (流转), after approval only
    store_id: Mapped[int | None] = mapped_column(fk("dispensing_stores.id"))
    paid_at: Mapped[datetime | None]
    dispensed_at: Mapped[datetime | None]  # R54: the electronic "used" mark
    dispensed_by_id: Mapped[int | None] = mapped_column(fk("staff.id"))
    shipped_at: Mapped[datetime | None]
    carrier: Mapped[str | None] = mapped_column(String(40))
    tracking_no: Mapped[str | None] = mapped_column(String(40))
    delivered_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    renewal_of_id: Mapped[int | None] = mapped_column(fk("prescriptions.id"))  # 快速续方: the earlier prescription


class PrescriptionItemRow(IdMixin, Base):
    """处方明细 (a snapshot of the drug as prescribed)."""

    __tablename__ = "prescription_items"
    prescription_id: Mapped[int] = mapped_column(fk("prescriptions.id"))
    drug_id: Mapped[int] = mapped_column(fk("drugs.id"))
    generic_name: Mapped[str] = mapped_column(String(80))
    specification: Mapped[str] = mapped_column(String(80))
    quantity: Mapped[int] = mapped_column(Integer)
    days_supply: Mapped[int] = mapped_column(Integer)
    usage: Mapped[str] = mapped_column(String(200))
    price_fen: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_prescription_items_prescription", "prescription_id"),)


class PrescriptionReviewRow(PublicIdMixin, Base):
    """审方记录: who judged which version, how and why."""

    __tablename__ = "prescription_reviews"
    prescription_id: Mapped[int] = mapped_column(fk("prescriptions.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    pharmacist_id: Mapped[int] = mapped_column(fk("staff.id"))
    decision: Mapped[str] = mapped_column(String(10))  # approve | reject
    reasons: Mapped[list[str]] = mapped_column(JsonType)
    comment: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime]


class StaffCertificateRow(PublicIdMixin, Base):
    """医务人员数字证书 issued by the hospital CA (the certificate is public; the key is not stored here)."""

    __tablename__ = "staff_certificates"
    staff_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_pem: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    issued_at: Mapped[datetime]
    superseded_at: Mapped[datetime | None]


class PrescriptionSignatureRow(IdMixin, Base):
    """处方签名: the doctor signs each version's canonical form; the pharmacist countersigns an approval."""

    __tablename__ = "prescription_signatures"
    prescription_id: Mapped[int] = mapped_column(fk("prescriptions.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))  # doctor | pharmacist
    staff_id: Mapped[int] = mapped_column(fk("staff.id"))
    certificate_id: Mapped[int] = mapped_column(fk("staff_certificates.id"))
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of what was signed
    signature: Mapped[str] = mapped_column(Text)  # base64
    signed_at: Mapped[datetime]


class DispensingStoreRow(PublicIdMixin, Base):
    """药房（调配门店）: the hospital pharmacy or a contracted retail pharmacy (R23: written agreement)."""

    __tablename__ = "dispensing_stores"
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))
    agreement_no: Mapped[str | None] = mapped_column(String(60))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class RxPaymentRow(PaymentRecordMixin, Base):
    """药费支付记录 (one per prepay), settled by the provider's paid notification."""

    __tablename__ = "rx_payments"
    prescription_id: Mapped[int] = mapped_column(fk("prescriptions.id"), index=True)


class RxRefundRow(RefundRecordMixin, Base):
    """药费退款记录: pending → succeeded | failed, sent to the provider after the commit."""

    __tablename__ = "rx_refunds"
    prescription_id: Mapped[int] = mapped_column(fk("prescriptions.id"), index=True)
    payment_id: Mapped[int] = mapped_column(fk("rx_payments.id"), index=True)


class RxRenewalRow(PublicIdMixin, Base):
    """快速续方申请: the patient asks the earlier prescriber to renew a chronic prescription."""

    __tablename__ = "rx_renewals"
    source_id: Mapped[int] = mapped_column(fk("prescriptions.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    doctor_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # requested | approved | declined
    decline_reason: Mapped[str | None] = mapped_column(String(200))
    new_prescription_id: Mapped[int | None] = mapped_column(fk("prescriptions.id"))
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]

"""Tables of the clinical core: reference data, people, accounts and audit.

Personal data (name, phone, ID-card number, address, health card) is stored
only encrypted (``*_enc``, AES-GCM) with a keyed hash (``*_hash``, HMAC) for
lookups; see ``clinical_core.adapters.vault``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, BigId, IdMixin, JsonType, PublicIdMixin, fk


class HospitalRow(PublicIdMixin, Base):
    """医院."""

    __tablename__ = "hospitals"
    name: Mapped[str] = mapped_column(String(100))
    short_name: Mapped[str] = mapped_column(String(40))
    city: Mapped[str] = mapped_column(String(40))
    hotline: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime]


class DepartmentRow(PublicIdMixin, Base):
    """科室."""

    __tablename__ = "departments"
    hospital_id: Mapped[int] = mapped_column(fk("hospitals.id"))
    code: Mapped[str] = mapped_column(String(20), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(30))  # clinical | medical_technology | pharmacy | nursing | administrative
    parent_id: Mapped[int | None] = mapped_column(fk("departments.id"))
    online: Mapped[bool] = mapped_column(Boolean, default=True)


class StaffRow(PublicIdMixin, Base):
    """医务人员与职能人员, with the qualifications the rules need."""

    __tablename__ = "staff"
    employee_no: Mapped[str] = mapped_column(String(20), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(40))  # staff names are public (doctor home pages)
    role: Mapped[str] = mapped_column(String(30), index=True)
    title: Mapped[str | None] = mapped_column(String(20))
    department_id: Mapped[int | None] = mapped_column(fk("departments.id"), index=True)
    licence_no: Mapped[str | None] = mapped_column(String(40))
    practising_since: Mapped[date | None] = mapped_column(Date)
    filing_status: Mapped[str] = mapped_column(String(20), default="none")
    may_prescribe: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class PatientRow(PublicIdMixin, Base):
    """患者 (实名). Only encrypted personal data and keyed hashes are stored."""

    __tablename__ = "patients"
    name_enc: Mapped[str] = mapped_column(Text)
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    id_card_enc: Mapped[str] = mapped_column(Text)
    id_card_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    health_card_enc: Mapped[str | None] = mapped_column(Text)
    health_card_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    address_enc: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(String(20), index=True)
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    openid: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime]


class FollowerRow(IdMixin, Base):
    """公众号关注者. ``patient_id`` is set once the follower binds a real name."""

    __tablename__ = "followers"
    openid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    patient_id: Mapped[int | None] = mapped_column(fk("patients.id"), index=True)
    subscribed_at: Mapped[datetime] = mapped_column(index=True)
    unsubscribed_at: Mapped[datetime | None]
    scene: Mapped[str | None] = mapped_column(String(64))  # qrscene_ of the channel QR code


class HisVisitRow(IdMixin, Base):
    """线下就诊记录 held by the fake HIS (the real HIS answers through a port)."""

    __tablename__ = "his_visits"
    visit_no: Mapped[str] = mapped_column(String(30), unique=True, index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"))
    department_id: Mapped[int] = mapped_column(fk("departments.id"))
    doctor_id: Mapped[int | None] = mapped_column(fk("staff.id"))
    visit_type: Mapped[str] = mapped_column(String(20))  # outpatient | inpatient | emergency
    visited_at: Mapped[datetime]
    diagnoses: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)

    __table_args__ = (Index("ix_his_visits_patient_visited", "patient_id", "visited_at"),)


class DrugRow(PublicIdMixin, Base):
    """药品目录."""

    __tablename__ = "drugs"
    code: Mapped[str] = mapped_column(String(30), unique=True, index=True)
    generic_name: Mapped[str] = mapped_column(String(80), index=True)
    trade_name: Mapped[str | None] = mapped_column(String(80))
    specification: Mapped[str] = mapped_column(String(80))
    dosage_form: Mapped[str] = mapped_column(String(30))
    unit: Mapped[str] = mapped_column(String(10))
    price_fen: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(20))  # western | chinese_patent | herbal_pieces
    control_class: Mapped[str] = mapped_column(String(20), default="none")
    prescription_only: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AccountRow(PublicIdMixin, Base):
    """An account that signs in to the API: a staff member or a patient."""

    __tablename__ = "accounts"
    username: Mapped[str] = mapped_column(String(60), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(30))
    staff_id: Mapped[int | None] = mapped_column(fk("staff.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(fk("patients.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class ApiTokenRow(PublicIdMixin, Base):
    """Bearer token. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"
    account_id: Mapped[int] = mapped_column(fk("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    label: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditRow(Base):
    """审计日志: append-only (database triggers refuse UPDATE and DELETE).

    ``details`` never holds personal data in clear: public ids and field names only.
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(60))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

"""患者: real-name registration, lookup by phone or ID number, masked views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from clinical_core.domain import masking
from clinical_core.domain.access import Principal, ensure_patient_access, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound
from clinical_core.domain.identity import normalise_phone, parse_id_card
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import STAFF_ROLES, Role
from clinical_core.domain.time import local_date
from clinical_core.persistence.models import PatientRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

# Staff roles that may see a patient's (masked) identity.
PATIENT_READERS = frozenset(STAFF_ROLES)
PATIENT_REGISTRARS = frozenset({Role.ADMIN, Role.OPERATIONS, Role.CUSTOMER_SERVICE})


@dataclass(frozen=True, slots=True)
class NewPatient:
    name: str
    id_card: str
    phone: str
    address: str | None = None
    district_code: str | None = None
    health_card: str | None = None
    openid: str | None = None


@dataclass(frozen=True, slots=True)
class PatientView:
    """A patient as every output shows them: masked."""

    public_id: str
    name: str
    phone: str
    id_card: str
    sex: str
    age: int
    district_code: str | None
    address: str
    has_wechat: bool


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _view(uow: UnitOfWork, row: PatientRow) -> PatientView:
    v = uow.vault
    return PatientView(
        public_id=row.public_id,
        name=masking.mask_name(v.decrypt(row.name_enc)),
        phone=masking.mask_phone(v.decrypt(row.phone_enc)),
        id_card=masking.mask_id_card(v.decrypt(row.id_card_enc)),
        sex=row.sex,
        age=_age(row.birth_date, local_date(uow.clock.now())),
        district_code=row.district_code,
        address=masking.mask_address(v.decrypt(row.address_enc) if row.address_enc else None),
        has_wechat=row.openid is not None,
    )


def register_patient(uow: UnitOfWork, principal: Principal, new: NewPatient) -> PatientView:
    """实名登记. Idempotent refusal: one record per ID-card number."""
    ensure_role(principal, PATIENT_REGISTRARS)
    name = (new.name or "").strip()
    if not 2 <= len(name) <= 30:
        raise InvalidInput("姓名应为 2 到 30 个字符", field="name")
    card = parse_id_card(new.id_card)
    phone = normalise_phone(new.phone)
    v = uow.vault
    with uow:
        card_hash = v.lookup_hash("id_card", card.number)
        if uow.session.scalar(select(PatientRow.id).where(PatientRow.id_card_hash == card_hash)):
            raise Conflict("该身份证号已登记为患者，请直接查找")
        row = PatientRow(
            public_id=new_public_id("pat"),
            name_enc=v.encrypt(name),
            phone_enc=v.encrypt(phone),
            phone_hash=v.lookup_hash("phone", phone),
            id_card_enc=v.encrypt(card.number),
            id_card_hash=card_hash,
            health_card_enc=v.encrypt(new.health_card) if new.health_card else None,
            health_card_hash=v.lookup_hash("health_card", new.health_card) if new.health_card else None,
            address_enc=v.encrypt(new.address) if new.address else None,
            district_code=new.district_code,
            sex=card.sex,
            birth_date=card.birth_date,
            openid=new.openid,
            created_at=uow.clock.now(),
        )
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "patient.register", "patient", row.public_id)
        view = _view(uow, row)
        uow.commit()
    return view


def find_patients(
    uow: UnitOfWork, principal: Principal, *, phone: str | None = None, id_card: str | None = None
) -> list[PatientView]:
    """Look patients up by phone or ID-card number through the keyed hash."""
    ensure_role(principal, PATIENT_READERS)
    if bool(phone) == bool(id_card):
        raise InvalidInput("请提供手机号或身份证号之一进行查找")
    v = uow.vault
    with uow:
        if phone:
            query = select(PatientRow).where(PatientRow.phone_hash == v.lookup_hash("phone", normalise_phone(phone)))
            by = "phone"
        else:
            number = parse_id_card(id_card or "").number
            query = select(PatientRow).where(PatientRow.id_card_hash == v.lookup_hash("id_card", number))
            by = "id_card"
        rows = list(uow.session.scalars(query.order_by(PatientRow.id)))
        audit.record(uow, principal.actor, "patient.lookup", "patient", "*", by=by, matches=[r.public_id for r in rows])
        views = [_view(uow, r) for r in rows]
        uow.commit()
    return views


def get_patient(uow: UnitOfWork, principal: Principal, public_id: str) -> PatientView:
    """One patient, masked. Patients may read only themselves. Audited (R06)."""
    ensure_patient_access(principal, public_id, PATIENT_READERS)
    with uow:
        row = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == public_id))
        if row is None:
            raise NotFound(f"未找到患者 {public_id}")
        audit.record(uow, principal.actor, "patient.read", "patient", public_id)
        view = _view(uow, row)
        uow.commit()
    return view


def list_patients(uow: UnitOfWork, principal: Principal, *, limit: int = 50, offset: int = 0) -> list[PatientView]:
    ensure_role(principal, PATIENT_READERS)
    with uow:
        rows = uow.session.scalars(select(PatientRow).order_by(PatientRow.id).limit(limit).offset(offset))
        views = [_view(uow, r) for r in rows]
        audit.record(uow, principal.actor, "patient.list", "patient", "*", count=len(views), offset=offset)
        uow.commit()
    return views

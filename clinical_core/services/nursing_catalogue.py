"""护理项目、上门护士与黑名单 (NUR-1, NUR-3, R44, R49).

- Items: price, duration, required title and 专项资质, and the area (district
  codes and/or polygons) where each is offered. ``offered_items`` geocodes the
  patient's address and keeps the items offered there whose duration fits the
  chosen window.
- Home nurses: a nurse account registered for home visits, checked against
  R44 (≥5 years, 护师 or above), with a base point and a reach.
- Blacklist of recipients (R49).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound
from clinical_core.domain.geo import GeoPoint
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_address, mask_name
from clinical_core.domain.nursing import check_item, check_time_window, offered_at
from clinical_core.domain.staff import Role, ensure_may_nurse_at_home
from clinical_core.domain.time import local_date
from clinical_core.persistence.models import PatientRow, StaffRow
from clinical_core.persistence.nursing import (
    HomeNurseRow,
    NursingBlacklistRow,
    NursingItemRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.geocoder import Geocoder
from clinical_core.services import audit
from clinical_core.services.organisation import qualification_of

MANAGERS = frozenset({Role.ADMIN, Role.OPERATIONS})
MAX_RADIUS_KM = 50.0


@dataclass(frozen=True, slots=True)
class ItemSettings:
    code: str
    name: str
    price_fen: int
    duration_minutes: int
    min_title: str = "护师"
    required_skills: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ItemView:
    public_id: str
    code: str
    name: str
    description: str
    price_fen: int
    duration_minutes: int
    min_title: str
    required_skills: list[str]
    districts: list[str]
    polygon_count: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class OfferedItems:
    """What the patient sees for one address and window (NUR-1)."""

    address: str  # masked
    district_code: str
    district: str
    street: str | None
    items: list[ItemView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HomeNurseView:
    staff_id: str
    name: str
    title: str | None
    years: int
    base_lat: float
    base_lon: float
    radius_km: float
    skills: list[str]
    active: bool


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    patient_id: str
    patient_name: str  # masked
    reason: str
    added_by: str
    added_at: datetime


def _item_view(row: NursingItemRow) -> ItemView:
    return ItemView(row.public_id, row.code, row.name, row.description, row.price_fen, row.duration_minutes,
                    row.min_title, list(row.required_skills or []), list(row.districts or []),
                    len(row.polygons or []), row.enabled)


def configure_item(uow: UnitOfWork, principal: Principal, settings: ItemSettings) -> ItemView:
    """新建或修改护理项目 (by its code)."""
    ensure_role(principal, MANAGERS)
    code = settings.code.strip().upper()
    if not code or len(code) > 20 or not settings.name.strip():
        raise InvalidInput("项目编码（最多 20 位）和名称不能为空", field="code")
    polygons = check_item(settings.price_fen, timedelta(minutes=settings.duration_minutes), settings.min_title,
                          settings.districts, [list(p) for p in settings.polygons])
    now = uow.clock.now()
    with uow:
        row = uow.session.scalar(select(NursingItemRow).where(NursingItemRow.code == code).with_for_update())
        if row is None:
            row = NursingItemRow(public_id=new_public_id("nit"), code=code, created_at=now)
            uow.session.add(row)
        row.name, row.description = settings.name.strip()[:60], settings.description.strip()[:400]
        row.price_fen, row.duration_minutes, row.min_title = settings.price_fen, settings.duration_minutes, \
            settings.min_title
        row.required_skills = sorted({s.strip() for s in settings.required_skills if s.strip()})
        row.districts = sorted(set(settings.districts))
        row.polygons = [[list(v) for v in p] for p in polygons]
        row.enabled, row.updated_at = settings.enabled, now
        uow.session.flush()
        audit.record(uow, principal.actor, "nursing_item.configure", "nursing_item", row.public_id,
                     code=code, price_fen=row.price_fen, enabled=row.enabled)
        view = _item_view(row)
        uow.commit()
    return view


def list_items(uow: UnitOfWork, principal: Principal, *, include_disabled: bool = False) -> list[ItemView]:
    with uow:
        query = select(NursingItemRow).order_by(NursingItemRow.code)
        if not include_disabled or principal.role not in MANAGERS:
            query = query.where(NursingItemRow.enabled.is_(True))
        return [_item_view(r) for r in uow.session.scalars(query)]


def items_at(rows: list[NursingItemRow], point: GeoPoint, district_code: str) -> list[NursingItemRow]:
    return [r for r in rows if offered_at(r.districts or [], [[tuple(v) for v in p] for p in r.polygons or []],
                                          point, district_code)]


def offered_items(uow: UnitOfWork, principal: Principal, geocoder: Geocoder, address: str,
                  window_start: datetime, window_end: datetime) -> OfferedItems:
    """NUR-1: only the items offered at this address whose duration fits the window."""
    ensure_role(principal, {Role.PATIENT} | MANAGERS | {Role.CUSTOMER_SERVICE})
    located = geocoder.geocode(address)
    now = uow.clock.now()
    with uow:
        rows = list(uow.session.scalars(select(NursingItemRow).where(NursingItemRow.enabled.is_(True))
                                        .order_by(NursingItemRow.code)))
        found = []
        for row in items_at(rows, located.point, located.district_code):
            try:
                check_time_window(window_start, window_end, now, timedelta(minutes=row.duration_minutes))
            except InvalidInput:
                continue
            found.append(_item_view(row))
    return OfferedItems(mask_address(address), located.district_code, located.district, located.street, found)


# --- home nurses (R44) ---


def _staff(uow: UnitOfWork, staff_id: str) -> StaffRow:
    row = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == staff_id))
    if row is None or not row.active:
        raise NotFound(f"未找到在职人员 {staff_id}")
    return row


def _nurse_view(uow: UnitOfWork, staff: StaffRow, nurse: HomeNurseRow) -> HomeNurseView:
    years = qualification_of(staff).years_of_practice(local_date(uow.clock.now()))
    return HomeNurseView(staff.public_id, staff.name, staff.title, years, nurse.base_lat, nurse.base_lon,
                         nurse.radius_km, list(nurse.skills or []), nurse.active)


def register_home_nurse(uow: UnitOfWork, principal: Principal, staff_id: str, base_lat: float, base_lon: float,
                        radius_km: float = 10.0, skills: tuple[str, ...] = ()) -> HomeNurseView:
    """护士准入: R44 (≥5 years, 护师 or above) is checked here and again on every order."""
    ensure_role(principal, MANAGERS)
    base = GeoPoint(base_lat, base_lon)
    if not 0 < radius_km <= MAX_RADIUS_KM:
        raise InvalidInput(f"服务半径应在 0 到 {MAX_RADIUS_KM:.0f} 公里之间", field="radius_km")
    with uow:
        staff = _staff(uow, staff_id)
        ensure_may_nurse_at_home(qualification_of(staff), local_date(uow.clock.now()))
        nurse = uow.session.scalar(select(HomeNurseRow).where(HomeNurseRow.staff_id == staff.id).with_for_update())
        if nurse is None:
            nurse = HomeNurseRow(staff_id=staff.id, registered_at=uow.clock.now())
            uow.session.add(nurse)
        nurse.base_lat, nurse.base_lon, nurse.radius_km = base.lat, base.lon, radius_km
        nurse.skills, nurse.active = sorted({s.strip() for s in skills if s.strip()}), True
        uow.session.flush()
        audit.record(uow, principal.actor, "home_nurse.register", "staff", staff.public_id,
                     radius_km=radius_km, skills=nurse.skills)
        view = _nurse_view(uow, staff, nurse)
        uow.commit()
    return view


def deactivate_home_nurse(uow: UnitOfWork, principal: Principal, staff_id: str, reason: str) -> HomeNurseView:
    """护士退出 (R49's exit mechanism): no more orders from the hall."""
    ensure_role(principal, MANAGERS)
    with uow:
        staff = _staff(uow, staff_id)
        nurse = uow.session.scalar(select(HomeNurseRow).where(HomeNurseRow.staff_id == staff.id).with_for_update())
        if nurse is None:
            raise NotFound(f"{staff_id} 不是上门护士")
        nurse.active = False
        audit.record(uow, principal.actor, "home_nurse.deactivate", "staff", staff.public_id, reason=reason[:100])
        view = _nurse_view(uow, staff, nurse)
        uow.commit()
    return view


def list_home_nurses(uow: UnitOfWork, principal: Principal) -> list[HomeNurseView]:
    ensure_role(principal, MANAGERS | {Role.CUSTOMER_SERVICE})
    with uow:
        rows = uow.session.execute(select(StaffRow, HomeNurseRow).join(HomeNurseRow, HomeNurseRow.staff_id == StaffRow.id)
                                   .order_by(StaffRow.public_id))
        return [_nurse_view(uow, s, n) for s, n in rows]


# --- blacklist (R49) ---


def _patient(uow: UnitOfWork, patient_id: str) -> PatientRow:
    row = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == patient_id))
    if row is None:
        raise NotFound(f"未找到患者 {patient_id}")
    return row


def is_blacklisted(uow: UnitOfWork, patient_pk: int) -> bool:
    return uow.session.scalar(select(NursingBlacklistRow.id).where(
        NursingBlacklistRow.patient_id == patient_pk, NursingBlacklistRow.removed_at.is_(None))) is not None


def blacklist_add(uow: UnitOfWork, principal: Principal, patient_id: str, reason: str) -> BlacklistEntry:
    ensure_role(principal, MANAGERS)
    if len(reason.strip()) < 4:
        raise InvalidInput("请填写列入黑名单的原因（至少 4 个字）", field="reason")
    with uow:
        patient = _patient(uow, patient_id)
        if is_blacklisted(uow, patient.id):
            raise Conflict(f"患者 {patient_id} 已在黑名单中")
        row = NursingBlacklistRow(patient_id=patient.id, reason_enc=uow.vault.encrypt(reason.strip()),
                                  added_by=principal.actor, added_at=uow.clock.now())
        uow.session.add(row)
        audit.record(uow, principal.actor, "nursing_blacklist.add", "patient", patient_id)
        entry = BlacklistEntry(patient_id, mask_name(uow.vault.decrypt(patient.name_enc)), reason.strip(),
                               row.added_by, row.added_at)
        uow.commit()
    return entry


def blacklist_remove(uow: UnitOfWork, principal: Principal, patient_id: str) -> None:
    ensure_role(principal, MANAGERS)
    with uow:
        patient = _patient(uow, patient_id)
        row = uow.session.scalar(select(NursingBlacklistRow).where(
            NursingBlacklistRow.patient_id == patient.id, NursingBlacklistRow.removed_at.is_(None)).with_for_update())
        if row is None:
            raise NotFound(f"患者 {patient_id} 不在黑名单中")
        row.removed_by, row.removed_at = principal.actor, uow.clock.now()
        audit.record(uow, principal.actor, "nursing_blacklist.remove", "patient", patient_id)
        uow.commit()


def blacklist_list(uow: UnitOfWork, principal: Principal) -> list[BlacklistEntry]:
    ensure_role(principal, MANAGERS | {Role.CUSTOMER_SERVICE})
    with uow:
        rows = uow.session.execute(select(NursingBlacklistRow, PatientRow).join(
            PatientRow, PatientRow.id == NursingBlacklistRow.patient_id).where(
            NursingBlacklistRow.removed_at.is_(None)).order_by(NursingBlacklistRow.id))
        return [BlacklistEntry(p.public_id, mask_name(uow.vault.decrypt(p.name_enc)), uow.vault.decrypt(b.reason_enc),
                               b.added_by, b.added_at) for b, p in rows]

"""咨询服务设置 (CON-4, PC-2): a doctor's 图文/电话 services, a department's
科室咨询 and the free 定点保障 line with its appointed team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import (
    DEFAULT_TIME_LIMIT,
    PERSONAL_KINDS,
    ServiceKind,
    check_service_settings,
)
from clinical_core.domain.errors import Forbidden, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import STAFF_ROLES, Role, ensure_may_consult_online
from clinical_core.domain.time import local_date
from clinical_core.persistence.consultation import ConsultServiceRow, ConsultTeamMemberRow
from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from clinical_core.services.organisation import qualification_of

SERVICE_ADMINS = frozenset({Role.ADMIN, Role.OPERATIONS})


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What an admin (or the doctor, for their own 图文/电话) sets."""

    kind: ServiceKind
    price_fen: int
    enabled: bool = True
    doctor_id: str | None = None  # staff public id, for 图文/电话
    department_code: str | None = None  # for 科室咨询
    name: str | None = None  # for 定点保障 (e.g. "新冠定点保障")
    time_limit_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceView:
    public_id: str
    kind: str
    kind_label: str
    name: str
    doctor_id: str | None
    doctor_name: str | None
    department: str | None
    price_fen: int
    time_limit_minutes: int
    enabled: bool
    team: tuple[str, ...]  # staff public ids (定点保障)
    updated_at: datetime


def _staff_by_public_id(uow: UnitOfWork, public_id: str) -> StaffRow:
    row = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == public_id))
    if row is None or not row.active:
        raise NotFound(f"未找到在职员工 {public_id}")
    return row


def _view(uow: UnitOfWork, row: ConsultServiceRow) -> ServiceView:
    doctor = uow.session.get(StaffRow, row.doctor_id) if row.doctor_id else None
    dept = uow.session.get(DepartmentRow, row.department_id) if row.department_id else None
    team = tuple(uow.session.scalars(
        select(StaffRow.public_id).join(ConsultTeamMemberRow, ConsultTeamMemberRow.staff_id == StaffRow.id)
        .where(ConsultTeamMemberRow.service_id == row.id).order_by(StaffRow.public_id)
    ))
    return ServiceView(row.public_id, row.kind, ServiceKind(row.kind).label, row.name,
                       doctor.public_id if doctor else None, doctor.name if doctor else None,
                       dept.name if dept else None, row.price_fen, row.time_limit_minutes, row.enabled, team,
                       row.updated_at)


def configure_service(uow: UnitOfWork, principal: Principal, settings: ServiceSettings) -> ServiceView:
    """Create or change one service. Admins set any; a doctor sets only their own 图文/电话 (PC-2)."""
    kind = settings.kind
    if principal.role is Role.DOCTOR:
        if kind not in PERSONAL_KINDS or settings.doctor_id not in (None, principal.staff_id):
            raise Forbidden("医生只能设置本人的图文、电话咨询服务")
        settings = ServiceSettings(**{**_asdict(settings), "doctor_id": principal.staff_id})
    else:
        ensure_role(principal, SERVICE_ADMINS)
    limit = timedelta(minutes=settings.time_limit_minutes) if settings.time_limit_minutes else DEFAULT_TIME_LIMIT[kind]
    check_service_settings(kind, settings.price_fen, limit)
    now = uow.clock.now()
    with uow:
        doctor_id = department_id = None
        if kind in PERSONAL_KINDS:
            if not settings.doctor_id:
                raise InvalidInput(f"{kind.label}需要指定医生", field="doctor_id")
            doctor = _staff_by_public_id(uow, settings.doctor_id)
            if doctor.role != Role.DOCTOR:
                raise InvalidInput(f"{kind.label}只能由医生提供", field="doctor_id")
            if settings.enabled:  # R07: only a qualified, filed doctor offers online services
                ensure_may_consult_online(qualification_of(doctor), local_date(now))
            doctor_id, name = doctor.id, f"{doctor.name} {kind.label}"
            existing = uow.session.scalar(select(ConsultServiceRow).where(
                ConsultServiceRow.doctor_id == doctor_id, ConsultServiceRow.kind == kind.value))
        elif kind is ServiceKind.DEPARTMENT:
            dept = uow.session.scalar(select(DepartmentRow).where(DepartmentRow.code == settings.department_code))
            if dept is None:
                raise NotFound(f"未找到科室编码 {settings.department_code}", hint="用 opsctl org departments 查看科室编码")
            department_id, name = dept.id, f"{dept.name} {kind.label}"
            existing = uow.session.scalar(select(ConsultServiceRow).where(
                ConsultServiceRow.department_id == department_id, ConsultServiceRow.kind == kind.value))
        else:
            name = (settings.name or "").strip()
            if not 2 <= len(name) <= 60:
                raise InvalidInput("定点保障服务需要 2 到 60 字的名称", field="name")
            existing = uow.session.scalar(select(ConsultServiceRow).where(
                ConsultServiceRow.kind == kind.value, ConsultServiceRow.name == name))
        if existing is None:
            existing = ConsultServiceRow(public_id=new_public_id("svc"), kind=kind.value, doctor_id=doctor_id,
                                         department_id=department_id, name=name, created_at=now)
            uow.session.add(existing)
            action = "consult_service.create"
        else:
            action = "consult_service.update"
        existing.price_fen = settings.price_fen
        existing.time_limit_minutes = int(limit.total_seconds() // 60)
        existing.enabled = settings.enabled
        existing.updated_at = now
        uow.session.flush()
        audit.record(uow, principal.actor, action, "consult_service", existing.public_id, kind=kind.value,
                     price_fen=settings.price_fen, enabled=settings.enabled,
                     time_limit_minutes=existing.time_limit_minutes)
        view = _view(uow, existing)
        uow.commit()
    return view


def _asdict(s: ServiceSettings) -> dict[str, object]:
    return {f: getattr(s, f) for f in ServiceSettings.__dataclass_fields__}


def appoint_team(uow: UnitOfWork, principal: Principal, service_id: str, staff_ids: list[str]) -> ServiceView:
    """定点保障: the hospital appoints the doctors who answer the line (replaces the team)."""
    ensure_role(principal, SERVICE_ADMINS)
    if not staff_ids:
        raise InvalidInput("定点保障团队至少需要一名医生", field="staff_ids")
    today = local_date(uow.clock.now())
    with uow:
        service = uow.session.scalar(select(ConsultServiceRow).where(ConsultServiceRow.public_id == service_id))
        if service is None:
            raise NotFound(f"未找到咨询服务 {service_id}")
        if service.kind != ServiceKind.DESIGNATED:
            raise InvalidInput("只有定点保障服务有指定团队", field="service_id")
        members = [_staff_by_public_id(uow, s) for s in dict.fromkeys(staff_ids)]
        for member in members:
            ensure_may_consult_online(qualification_of(member), today)  # R07
        for old in uow.session.scalars(select(ConsultTeamMemberRow).where(
                ConsultTeamMemberRow.service_id == service.id)):
            uow.session.delete(old)
        uow.session.flush()
        uow.session.add_all(ConsultTeamMemberRow(service_id=service.id, staff_id=m.id) for m in members)
        uow.session.flush()
        audit.record(uow, principal.actor, "consult_service.appoint_team", "consult_service", service_id,
                     staff=[m.public_id for m in members])
        view = _view(uow, service)
        uow.commit()
    return view


def list_services(
    uow: UnitOfWork, principal: Principal, *, kind: ServiceKind | None = None, doctor_id: str | None = None,
    enabled_only: bool = False,
) -> list[ServiceView]:
    """Patients see enabled services (to choose one); staff see all."""
    if principal.role is Role.PATIENT:
        enabled_only = True
    else:
        ensure_role(principal, STAFF_ROLES)
    with uow:
        query = select(ConsultServiceRow).order_by(ConsultServiceRow.kind, ConsultServiceRow.id)
        if kind:
            query = query.where(ConsultServiceRow.kind == kind.value)
        if doctor_id:
            query = query.join(StaffRow, StaffRow.id == ConsultServiceRow.doctor_id).where(
                StaffRow.public_id == doctor_id)
        if enabled_only:
            query = query.where(ConsultServiceRow.enabled.is_(True))
        return [_view(uow, row) for row in uow.session.scalars(query)]

"""网络门诊设置 (VC-5): the follow-up check mode (复诊判定), hospital-wide or per
department, set by an administrator and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import NotFound
from clinical_core.domain.staff import Role
from clinical_core.domain.video_visit import (
    DEFAULT_CHECK_MODE,
    DEFAULT_LOOKBACK_DAYS,
    CheckMode,
    check_lookback,
)
from clinical_core.persistence.models import DepartmentRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import VideoClinicSettingRow
from clinical_core.services import audit

HOSPITAL = "*"
READERS = frozenset({Role.ADMIN, Role.OPERATIONS, Role.CUSTOMER_SERVICE, Role.DOCTOR})


@dataclass(frozen=True, slots=True)
class CheckSetting:
    scope: str  # "*" (hospital) or a department code
    check_mode: str
    check_mode_label: str
    lookback_days: int
    updated_at: datetime | None
    updated_by: str | None


def effective(uow: UnitOfWork, department_code: str) -> tuple[CheckMode, int]:
    """The department's own setting, else the hospital's, else strict with one year of look-back."""
    rows = {r.scope: r for r in uow.session.scalars(select(VideoClinicSettingRow).where(
        VideoClinicSettingRow.scope.in_([department_code, HOSPITAL])))}
    row = rows.get(department_code) or rows.get(HOSPITAL)
    if row is None:
        return DEFAULT_CHECK_MODE, DEFAULT_LOOKBACK_DAYS
    return CheckMode(row.check_mode), row.lookback_days


def set_check_mode(uow: UnitOfWork, principal: Principal, mode: CheckMode, *, department_code: str | None = None,
                   lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> CheckSetting:
    """设置复诊判定模式 (admin only)."""
    ensure_role(principal, {Role.ADMIN})
    check_lookback(lookback_days)
    scope = department_code or HOSPITAL
    with uow:
        if department_code and uow.session.scalar(select(DepartmentRow.id).where(
                DepartmentRow.code == department_code)) is None:
            raise NotFound(f"未找到科室 {department_code}")
        row = uow.session.scalar(select(VideoClinicSettingRow).where(VideoClinicSettingRow.scope == scope)
                                 .with_for_update())
        before = row.check_mode if row else None
        if row is None:
            row = VideoClinicSettingRow(scope=scope, check_mode=mode.value, lookback_days=lookback_days,
                                        updated_at=uow.clock.now(), updated_by=principal.actor)
            uow.session.add(row)
        row.check_mode, row.lookback_days = mode.value, lookback_days
        row.updated_at, row.updated_by = uow.clock.now(), principal.actor
        audit.record(uow, principal.actor, "video_settings.check_mode", "video_settings", scope,
                     **{"from": before, "to": mode.value}, lookback_days=lookback_days)
        uow.session.flush()
        view = _view(row)
        uow.commit()
    return view


def list_settings(uow: UnitOfWork, principal: Principal) -> list[CheckSetting]:
    ensure_role(principal, READERS)
    with uow:
        rows = list(uow.session.scalars(select(VideoClinicSettingRow).order_by(VideoClinicSettingRow.scope)))
        if not any(r.scope == HOSPITAL for r in rows):
            return [CheckSetting(HOSPITAL, DEFAULT_CHECK_MODE.value, DEFAULT_CHECK_MODE.label, DEFAULT_LOOKBACK_DAYS,
                                 None, None), *map(_view, rows)]
        return [_view(r) for r in rows]


def _view(row: VideoClinicSettingRow) -> CheckSetting:
    mode = CheckMode(row.check_mode)
    return CheckSetting(row.scope, mode.value, mode.label, row.lookback_days, row.updated_at, row.updated_by)

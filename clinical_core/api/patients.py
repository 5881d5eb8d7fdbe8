"""Patients over HTTP: the caller's own account and patient records (masked)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from clinical_core.api.security import PrincipalDep, UowDep
from clinical_core.services import patients as service

router = APIRouter(prefix="/api/v1", tags=["patients"])


class Me(BaseModel):
    account_id: str
    username: str
    role: str
    staff_id: str | None
    patient_id: str | None


@router.get("/me", response_model=Me, summary="当前登录账号")
def me(principal: PrincipalDep) -> Me:
    return Me(account_id=principal.account_id, username=principal.username, role=principal.role.value,
              staff_id=principal.staff_id, patient_id=principal.patient_id)


@router.get("/patients/{patient_id}", response_model=service.PatientView, summary="患者信息（脱敏）")
def get_patient(patient_id: str, principal: PrincipalDep, uow: UowDep) -> service.PatientView:
    """Staff see any patient; a patient sees only themselves. Every read is audited."""
    return service.get_patient(uow, principal, patient_id)

"""A small clinic for consultation tests: two departments, doctors (qualified
and not), patients with accounts, and the principals that act for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.persistence.models import DepartmentRow, HospitalRow
from clinical_core.services import accounts, patients
from opsctl.wiring import Container

ADMIN = Principal("acc_admin", "root", Role.ADMIN)
OPS = Principal("acc_ops", "ops", Role.OPERATIONS)


@dataclass(frozen=True)
class Clinic:
    doctor_a: Principal  # 心内科, qualified
    doctor_b: Principal  # 心内科, qualified
    doctor_c: Principal  # 消化内科, qualified
    junior: Principal  # 心内科, only 2 years of practice (R07 refuses)
    patient: Principal
    other_patient: Principal


def _doctor(c: Container, username: str, dept: str, since: date = date(2015, 7, 1)) -> Principal:
    view = accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username=username, role=Role.DOCTOR, name=f"医生{username[-1].upper()}", title="主治医师",
        licence_no=f"1104403{sum(map(ord, username)):08d}", practising_since=since, filing=FilingStatus.FILED,
        may_prescribe=True, phone=None, department_code=dept))
    return Principal(view.public_id, username, Role.DOCTOR, staff_id=view.staff_id)


def _patient(c: Container, username: str, name: str, id_card: str, phone: str) -> Principal:
    p = patients.register_patient(c.uow(), OPS, patients.NewPatient(name=name, id_card=id_card, phone=phone))
    acc = accounts.add_patient_account(c.uow(), ADMIN, username, p.public_id)
    return Principal(acc.public_id, username, Role.PATIENT, patient_id=p.public_id)


def build_clinic(c: Container) -> Clinic:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with c.uow() as uow:
        hospital = HospitalRow(public_id="hos_test", name="测试医院", short_name="测试", city="深圳",
                               hotline="0755-00000000", created_at=now)
        uow.session.add(hospital)
        uow.session.flush()
        for code, name in (("CARD", "心血管内科"), ("GAST", "消化内科")):
            uow.session.add(DepartmentRow(public_id=f"dep_{code.lower()}", hospital_id=hospital.id, code=code,
                                          name=name, kind="clinical", online=True))
        uow.commit()
    return Clinic(
        doctor_a=_doctor(c, "dr.a", "CARD"), doctor_b=_doctor(c, "dr.b", "CARD"),
        doctor_c=_doctor(c, "dr.c", "GAST"), junior=_doctor(c, "dr.j", "CARD", since=date(2024, 9, 1)),
        patient=_patient(c, "pt.zhang", "张伟", "11010519491231002X", "13812345678"),
        other_patient=_patient(c, "pt.wang", "王芳", "44030519900101123X", "13912345678"),
    )


def certify(c: Container, *staff: Principal) -> None:
    """The hospital CA (once) and a signing certificate for each clinician."""
    from clinical_core.services import signatures

    if not (c.settings.data_dir / "ca" / "ca.crt").exists():
        signatures.init_authority(c.uow(), ADMIN, c.signer, "测试医院")
    for p in staff:
        signatures.issue_certificate(c.uow(), ADMIN, c.signer, p.staff_id or "")

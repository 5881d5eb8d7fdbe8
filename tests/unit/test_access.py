import pytest

from clinical_core.domain.access import Principal, ensure_patient_access, ensure_role
from clinical_core.domain.errors import Forbidden
from clinical_core.domain.staff import Role

PATIENT = Principal("acc_p", "p", Role.PATIENT, patient_id="pat_me")
DOCTOR = Principal("acc_d", "d", Role.DOCTOR, staff_id="stf_d")


def test_patient_sees_only_their_own_record() -> None:
    ensure_patient_access(PATIENT, "pat_me", {Role.DOCTOR})
    with pytest.raises(Forbidden, match="本人"):
        ensure_patient_access(PATIENT, "pat_other", {Role.DOCTOR})


def test_staff_need_an_allowed_role() -> None:
    ensure_patient_access(DOCTOR, "pat_other", {Role.DOCTOR})
    with pytest.raises(Forbidden, match="需要"):
        ensure_patient_access(DOCTOR, "pat_other", {Role.PHARMACIST})
    with pytest.raises(Forbidden):
        ensure_role(PATIENT, {Role.ADMIN})

"""Patients: encrypted at rest, found by keyed hash, masked, audited, owned."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import AuditRow
from clinical_core.services import patients
from opsctl.wiring import Container

OPS = Principal("acc_ops", "ops", Role.OPERATIONS)
CS = Principal("acc_cs", "cs", Role.CUSTOMER_SERVICE)
NEW = patients.NewPatient(name="张伟", id_card="11010519491231002X", phone="13812345678",
                          address="广东省深圳市南山区粤海街道科技园路1号", district_code="440305")


def test_register_then_find_by_phone_and_id_card(container: Container) -> None:
    view = patients.register_patient(container.uow(), OPS, NEW)
    assert (view.name, view.phone, view.id_card) == ("张*", "138****5678", "110***********002X")
    assert view.age == 76 and view.sex == "F"
    by_phone = patients.find_patients(container.uow(), CS, phone="138 1234 5678")
    by_card = patients.find_patients(container.uow(), CS, id_card="11010519491231002x")
    assert [p.public_id for p in by_phone] == [p.public_id for p in by_card] == [view.public_id]
    assert patients.find_patients(container.uow(), CS, phone="13900000000") == []


def test_nothing_personal_is_stored_in_clear(container: Container) -> None:
    patients.register_patient(container.uow(), OPS, NEW)
    with container.engine.connect() as c:
        dump = " ".join(str(v) for row in c.execute(text("SELECT * FROM patients")) for v in row)
        dump += " ".join(str(v) for row in c.execute(text("SELECT * FROM audit_log")) for v in row)
    for secret in ("13812345678", "11010519491231002X", "张伟", "科技园路"):
        assert secret not in dump


def test_duplicate_id_card_is_refused(container: Container) -> None:
    patients.register_patient(container.uow(), OPS, NEW)
    with pytest.raises(Conflict, match="已登记"):
        patients.register_patient(container.uow(), OPS, NEW)


def test_bad_input_names_the_field(container: Container) -> None:
    with pytest.raises(InvalidInput) as err:
        patients.register_patient(container.uow(), OPS, patients.NewPatient("张伟", "123", "13812345678"))
    assert err.value.field == "id_card"


def test_reads_and_lookups_are_audited(container: Container) -> None:
    view = patients.register_patient(container.uow(), OPS, NEW)
    patients.get_patient(container.uow(), CS, view.public_id)
    patients.find_patients(container.uow(), CS, phone="13812345678")
    with container.uow() as uow:
        actions = [(r.actor, r.action, r.entity_id) for r in uow.session.scalars(select(AuditRow).order_by(AuditRow.id))]
    assert actions == [
        ("operations:acc_ops", "patient.register", view.public_id),
        ("customer_service:acc_cs", "patient.read", view.public_id),
        ("customer_service:acc_cs", "patient.lookup", "*"),
    ]


def test_patient_reads_only_themselves(container: Container) -> None:
    mine = patients.register_patient(container.uow(), OPS, NEW)
    other = patients.register_patient(container.uow(), OPS, patients.NewPatient(
        name="李娜", id_card="44030519900101123X", phone="13912345678"))
    me = Principal("acc_me", "me", Role.PATIENT, patient_id=mine.public_id)
    assert patients.get_patient(container.uow(), me, mine.public_id).public_id == mine.public_id
    with pytest.raises(Forbidden):
        patients.get_patient(container.uow(), me, other.public_id)
    with pytest.raises(NotFound):
        patients.get_patient(container.uow(), CS, "pat_missing")


def test_registration_needs_a_front_desk_role(container: Container) -> None:
    with pytest.raises(Forbidden):
        patients.register_patient(container.uow(), Principal("acc_d", "d", Role.DOCTOR), NEW)

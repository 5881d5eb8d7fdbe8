"""The demo hospital: deterministic, realistic, encrypted, all-or-nothing, on both databases."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict
from clinical_core.domain.identity import parse_id_card
from clinical_core.domain.staff import Role
from clinical_core.persistence import models as m
from clinical_core.persistence.base import Base
from clinical_core.services import patients
from opsctl.demo.seed import Generator, SeedPlan, prepared, write
from opsctl.demo.service import seed_demo
from opsctl.wiring import Container

PLAN = SeedPlan(patients=300, days=10, seed=7, until=date(2026, 10, 31))
CS = Principal("acc_cs", "cs", Role.CUSTOMER_SERVICE)


def plaintext_patients(container: Container) -> list[tuple[str, ...]]:
    v = container.vault
    with container.uow() as uow:
        rows = uow.session.scalars(select(m.PatientRow).order_by(m.PatientRow.id))
        return [(r.public_id, v.decrypt(r.name_enc), v.decrypt(r.phone_enc), v.decrypt(r.id_card_enc),
                 v.decrypt(r.address_enc or ""), r.sex, r.birth_date.isoformat(), r.openid or "") for r in rows]


def visits(container: Container) -> list[tuple[object, ...]]:
    with container.engine.connect() as c:
        return [tuple(r) for r in c.execute(text(
            "SELECT visit_no, patient_id, department_id, doctor_id, visited_at FROM his_visits ORDER BY id"))]


def test_counts_and_realism(container: Container) -> None:
    result = seed_demo(container, PLAN)
    counts = result.counts
    assert counts["patients"] == 300 and counts["hospitals"] == 1
    assert counts["his_visits"] >= 300 and counts["followers"] >= 300 * 0.6
    with container.engine.connect() as c:
        classes = set(c.execute(text("SELECT DISTINCT control_class FROM drugs")).scalars())
        kinds = set(c.execute(text("SELECT DISTINCT kind FROM departments")).scalars())
        roles = set(c.execute(text("SELECT DISTINCT role FROM staff")).scalars())
        orphan_visits = c.execute(text(
            "SELECT count(*) FROM his_visits v LEFT JOIN patients p ON p.id = v.patient_id WHERE p.id IS NULL"
        )).scalar()
    assert {"narcotic", "psychotropic_1", "psychotropic_2", "none"} <= classes
    assert {"clinical", "pharmacy", "nursing"} <= kinds
    assert roles == {"doctor", "pharmacist", "nurse", "admin", "operations", "customer_service"}
    assert orphan_visits == 0
    people = plaintext_patients(container)
    ages = [parse_id_card(p[3]).age_on(PLAN.until) for p in people]
    assert any(a < 6 for a in ages) and any(a >= 60 for a in ages)  # R04 needs children; chronic care needs elders
    assert all(p[4].startswith("广东省深圳市") for p in people)
    assert len({p[2] for p in people}) == 300 and len({p[3] for p in people}) == 300


def test_same_seed_same_data(container: Container, tmp_path: Path) -> None:
    seed_demo(container, PLAN)
    first_people, first_visits = plaintext_patients(container), visits(container)
    seed_demo(container, PLAN, reset=True)
    assert plaintext_patients(container) == first_people
    assert visits(container) == first_visits
    seed_demo(container, SeedPlan(300, 10, 8, PLAN.until), reset=True)
    assert plaintext_patients(container) != first_people


def test_parallel_and_sequential_generation_agree(container: Container) -> None:
    seed_demo(container, PLAN)  # child processes
    parallel = plaintext_patients(container), visits(container)
    from opsctl import db

    db.reset(container.engine)
    generator = Generator(PLAN, container.vault)
    write(container.engine, (b for part in generator.parts() for b in prepared(part, container.engine.dialect)))
    assert (plaintext_patients(container), visits(container)) == parallel


def test_seeded_patients_are_found_by_phone(container: Container) -> None:
    seed_demo(container, PLAN)
    public_id, _name, phone, *_ = plaintext_patients(container)[42]
    found = patients.find_patients(container.uow(), CS, phone=phone)
    assert [p.public_id for p in found] == [public_id]
    assert found[0].phone == phone[:3] + "****" + phone[-4:]


def test_refuses_a_database_with_data(container: Container) -> None:
    seed_demo(container, PLAN)
    with pytest.raises(Conflict, match="--reset"):
        seed_demo(container, PLAN)


def test_indexes_are_rebuilt_after_the_load(container: Container) -> None:
    seed_demo(container, PLAN)
    inspector = inspect(container.engine)
    for table in ("patients", "his_visits", "followers", "staff"):
        expected = {i.name for i in Base.metadata.tables[table].indexes}
        assert expected <= {i["name"] for i in inspector.get_indexes(table)}
    if container.engine.dialect.name == "postgresql":
        assert inspector.get_foreign_keys("his_visits")


def test_a_failed_load_leaves_nothing(container: Container) -> None:
    generator = Generator(PLAN, container.vault)
    batches = list(prepared(generator.organisation_and_patients, container.engine.dialect))
    patients_batch = next(b for b in batches if b.table == "patients")
    duplicate = type(patients_batch)(patients_batch.table, patients_batch.columns, patients_batch.count,
                                     patients_batch.rows, patients_batch.copy_text)
    # The same patients twice: the primary key (SQLite) or the rebuilt unique index refuses.
    with pytest.raises(Exception):  # noqa: B017 - driver-specific integrity error
        write(container.engine, [*batches, duplicate])
    with container.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(m.PatientRow)).scalar() == 0
        assert c.execute(select(func.count()).select_from(m.StaffRow)).scalar() == 0
    assert {i.name for i in Base.metadata.tables["patients"].indexes} <= {
        i["name"] for i in inspect(container.engine).get_indexes("patients")}


def test_no_plaintext_personal_data_in_the_sqlite_file(sqlite_container: Container) -> None:
    container = sqlite_container
    seed_demo(container, PLAN)
    people = plaintext_patients(container)
    container.engine.dispose()  # checkpoint and close the WAL
    path = Path(make_url(container.settings.effective_database_url).database or "")
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert len(raw) > 100_000
    for _pid, name, phone, id_card, address, *_ in people[:100]:
        for secret in (phone, id_card, address):
            assert secret.encode() not in raw
    assert people[0][2][:3].encode() + b"****" not in raw  # nor even masked forms


def test_reset_refuses_a_database_that_is_not_a_demo(container: Container) -> None:
    from clinical_core.services.patients import NewPatient, register_patient

    register_patient(container.uow(), Principal("acc_ops", "ops", Role.OPERATIONS),
                     NewPatient(name="张伟", id_card="11010519491231002X", phone="13812345678"))
    with pytest.raises(Conflict, match="非演示数据"):
        seed_demo(container, PLAN, reset=True)
    with container.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(m.PatientRow)).scalar() == 1


def test_foreign_keys_are_enforced_again_after_a_load(sqlite_container: Container) -> None:
    container = sqlite_container
    seed_demo(container, PLAN)
    with container.engine.connect() as c:  # the pool hands back the loader's connection
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

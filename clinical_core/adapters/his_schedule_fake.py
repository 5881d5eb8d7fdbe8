"""The fake HIS's outpatient schedule: answers from ``his_outpatient_slots``.

Like ``his_fake.FakeHis`` it uses its own connection, as a real HIS client
would use its own channel, and never joins the caller's transaction. Holding
is one conditional UPDATE per slot inside one transaction of its own
(``taken_by IS NULL``), so of an online booking and a window registration of
the same time exactly one succeeds. ``publish`` and ``register_at_window``
play the hospital's side (schedule office, registration window) for the demo
and the tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from clinical_core.domain.errors import Conflict, NotFound
from clinical_core.domain.time import Clock
from clinical_core.persistence.his_schedule import HisOutpatientSlotRow
from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.ports.his_schedule import HisOutpatientSlot


class FakeHisSchedule:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def outpatient_slots(self, *, start: datetime, end: datetime, doctor_id: str | None = None,
                         department_code: str | None = None) -> list[HisOutpatientSlot]:
        with Session(self.engine) as session:
            query = (select(HisOutpatientSlotRow, StaffRow.public_id, DepartmentRow.code)
                     .join(StaffRow, StaffRow.id == HisOutpatientSlotRow.doctor_id)
                     .join(DepartmentRow, DepartmentRow.id == HisOutpatientSlotRow.department_id)
                     .where(HisOutpatientSlotRow.starts_at >= start, HisOutpatientSlotRow.starts_at < end)
                     .order_by(HisOutpatientSlotRow.starts_at, HisOutpatientSlotRow.slot_no))
            if doctor_id:
                query = query.where(StaffRow.public_id == doctor_id)
            if department_code:
                query = query.where(DepartmentRow.code == department_code)
            return [HisOutpatientSlot(s.slot_no, doctor, dept, s.starts_at, s.ends_at, s.taken_by is not None)
                    for s, doctor, dept in session.execute(query)]

    def _take(self, slot_nos: list[str], taker: str) -> None:
        with Session(self.engine) as session, session.begin():
            for slot_no in slot_nos:
                result = session.execute(
                    update(HisOutpatientSlotRow)
                    .where(HisOutpatientSlotRow.slot_no == slot_no, HisOutpatientSlotRow.taken_by.is_(None))
                    .values(taken_by=taker, taken_at=self.clock.now())
                    .execution_options(synchronize_session=False))
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    raise Conflict(f"HIS：号源 {slot_no} 已被占用")  # rolls back every hold of this call

    def hold(self, slot_nos: list[str], reference: str) -> None:
        self._take(slot_nos, f"online:{reference}")

    def release(self, slot_nos: list[str], reference: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(HisOutpatientSlotRow)
                .where(HisOutpatientSlotRow.slot_no.in_(slot_nos),
                       HisOutpatientSlotRow.taken_by == f"online:{reference}")
                .values(taken_by=None, taken_at=None).execution_options(synchronize_session=False))

    # --- the hospital's side (schedule office, registration window) ---

    def publish(self, doctor_id: str, starts_at: datetime, ends_at: datetime, slot_minutes: int) -> list[str]:
        """排班: the outpatient office publishes a doctor's offline session, cut into slots."""
        with Session(self.engine) as session, session.begin():
            doctor = session.scalar(select(StaffRow).where(StaffRow.public_id == doctor_id))
            if doctor is None or doctor.department_id is None:
                raise NotFound(f"HIS：未找到医生 {doctor_id}")
            numbers, at, step = [], starts_at, timedelta(minutes=slot_minutes)
            while at + step <= ends_at:
                slot_no = f"H{doctor.employee_no}-{at.strftime('%y%m%d%H%M')}"
                session.add(HisOutpatientSlotRow(slot_no=slot_no, doctor_id=doctor.id,
                                                 department_id=doctor.department_id, starts_at=at, ends_at=at + step))
                numbers.append(slot_no)
                at += step
            return numbers

    def register_at_window(self, slot_no: str, reference: str) -> None:
        """线下挂号: the window sells one slot; ``Conflict`` if it is taken (online or offline)."""
        self._take([slot_no], f"offline:{reference}")

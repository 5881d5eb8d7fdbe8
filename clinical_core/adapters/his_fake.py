"""The fake HIS: answers from the seeded ``his_visits`` table in our own database.

It opens its own connection, as a real HIS client would use its own channel;
it never joins the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from clinical_core.persistence.models import DepartmentRow, HisVisitRow, PatientRow, StaffRow
from clinical_core.persistence.his import HisResultRow
from clinical_core.ports.his import HisDiagnosis, HisLabItem, HisResult, HisVisit


class FakeHis:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def visits(self, patient_id: str, *, limit: int = 50) -> list[HisVisit]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(HisVisitRow, DepartmentRow.name, StaffRow.name)
                .join(PatientRow, PatientRow.id == HisVisitRow.patient_id)
                .join(DepartmentRow, DepartmentRow.id == HisVisitRow.department_id)
                .outerjoin(StaffRow, StaffRow.id == HisVisitRow.doctor_id)
                .where(PatientRow.public_id == patient_id)
                .order_by(HisVisitRow.visited_at.desc())
                .limit(limit)
            )
            return [
                HisVisit(v.visit_no, v.visited_at, v.visit_type, dept, doctor,
                         tuple(HisDiagnosis(str(d.get("icd10") or d.get("code", "")), str(d.get("name", ""))) for d in v.diagnoses or []))
                for v, dept, doctor in rows
            ]

    def results(self, patient_id: str, *, limit: int = 50) -> list[HisResult]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(HisResultRow, HisVisitRow.visit_no)
                .join(HisVisitRow, HisVisitRow.id == HisResultRow.visit_id)
                .join(PatientRow, PatientRow.id == HisResultRow.patient_id)
                .where(PatientRow.public_id == patient_id)
                .order_by(HisResultRow.reported_at.desc(), HisResultRow.id.desc())
                .limit(limit)
            )
            return [
                HisResult(r.report_no, visit_no, r.kind, r.name, r.reported_at,
                          tuple(HisLabItem(str(i["code"]), str(i["name"]), str(i["value"]), str(i.get("unit", "")),
                                           str(i.get("range", "")), str(i.get("flag", ""))) for i in r.items or []),
                          r.findings, r.conclusion)
                for r, visit_no in rows
            ]

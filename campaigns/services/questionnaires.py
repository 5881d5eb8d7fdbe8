"""Questionnaires: doctors define them, patients answer them, the care team reads and exports them.

Versioning: revising a questionnaire nobody has answered replaces its current version; once a
version has answers it is frozen and a revision becomes a new version, so every answer is read
against the questions the patient actually saw.

Who sees answers (the care team): the doctor who owns the questionnaire, the responsible doctor
of a follow-up plan the patient is on, and administrators; a patient sees only their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select

from campaigns.domain.questionnaire import (
    Definition,
    QuestionKind,
    parse_definition,
    validate_answers,
)
from campaigns.persistence.followup import (
    FollowupPlanRow,
    FollowupStepRow,
    QuestionnaireResponseRow,
    QuestionnaireRow,
    QuestionnaireVersionRow,
)
from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_name
from clinical_core.domain.staff import Role
from clinical_core.domain.time import to_local
from clinical_core.persistence.models import PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

AUTHORS = frozenset({Role.DOCTOR, Role.NURSE, Role.ADMIN})
CARE_TEAM = frozenset({Role.DOCTOR, Role.NURSE, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class QuestionnaireView:
    questionnaire_id: str
    title: str
    version: int
    owner: str
    definition: dict[str, Any]
    responses: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ResponseView:
    response_id: str
    questionnaire_id: str
    version: int
    patient_id: str
    patient_name: str  # masked
    answers: dict[str, Any]
    submitted_at: datetime
    step_id: str | None


def _staff(uow: UnitOfWork, principal: Principal) -> StaffRow | None:
    if principal.staff_id is None:
        return None
    return uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))


def _load(uow: UnitOfWork, questionnaire_id: str) -> QuestionnaireRow:
    row = uow.session.scalar(select(QuestionnaireRow).where(QuestionnaireRow.public_id == questionnaire_id))
    if row is None:
        raise NotFound(f"问卷 {questionnaire_id} 不存在")
    return row


def _version(uow: UnitOfWork, row: QuestionnaireRow, version: int | None = None) -> QuestionnaireVersionRow:
    wanted = row.current_version if version is None else version
    found = uow.session.scalar(select(QuestionnaireVersionRow).where(
        QuestionnaireVersionRow.questionnaire_id == row.id, QuestionnaireVersionRow.version == wanted))
    if found is None:
        raise NotFound(f"问卷 {row.public_id} 没有第 {wanted} 版")
    return found


def _view(uow: UnitOfWork, row: QuestionnaireRow) -> QuestionnaireView:
    version = _version(uow, row)
    owner = uow.session.get_one(StaffRow, row.owner_id)
    count = uow.session.scalar(select(func.count()).select_from(QuestionnaireResponseRow).where(
        QuestionnaireResponseRow.questionnaire_id == row.id)) or 0
    return QuestionnaireView(row.public_id, row.title, row.current_version, owner.name, dict(version.definition),
                             count, row.updated_at)


def _owner_or_admin(principal: Principal, staff: StaffRow | None, row: QuestionnaireRow) -> None:
    if principal.role is Role.ADMIN:
        return
    if staff is None or staff.id != row.owner_id:
        raise Forbidden("只有问卷的创建医生或管理员可以修改它")


def create(uow: UnitOfWork, principal: Principal, definition: Mapping[str, Any], *,
           owner: str | None = None) -> QuestionnaireView:
    """A doctor or nurse defines a questionnaire; an administrator may enter one for a named
    doctor (``owner``: staff public id or employee number), who then owns it."""
    ensure_role(principal, AUTHORS)
    parsed = parse_definition(definition)
    with uow:
        staff = _staff(uow, principal)
        if owner is not None:
            if principal.role is not Role.ADMIN:
                raise Forbidden("只有管理员可以替医生录入问卷")
            staff = uow.session.scalar(select(StaffRow).where(
                (StaffRow.public_id == owner) | (StaffRow.employee_no == owner)))
            if staff is None or staff.role not in (Role.DOCTOR.value, Role.NURSE.value):
                raise NotFound(f"医务人员 {owner} 不存在")
        if staff is None:
            raise Forbidden("问卷须属于一位医务人员", hint="管理员请用 --owner 指定医生")
        now = uow.clock.now()
        row = QuestionnaireRow(public_id=new_public_id("qnr"), title=parsed.title, owner_id=staff.id,
                               current_version=1, created_at=now, updated_at=now)
        uow.session.add(row)
        uow.session.flush()
        uow.session.add(QuestionnaireVersionRow(questionnaire_id=row.id, version=1, definition=parsed.as_dict(),
                                                created_at=now))
        audit.record(uow, principal.actor, "questionnaire.create", "questionnaire", row.public_id,
                     questions=len(parsed.questions))
        uow.session.flush()
        view = _view(uow, row)
        uow.commit()
    return view


def revise(uow: UnitOfWork, principal: Principal, questionnaire_id: str,
           definition: Mapping[str, Any]) -> QuestionnaireView:
    """Change the questions: in place while unanswered, as a new version once answered."""
    ensure_role(principal, AUTHORS)
    parsed = parse_definition(definition)
    with uow:
        row = _load(uow, questionnaire_id)
        _owner_or_admin(principal, _staff(uow, principal), row)
        current = _version(uow, row)
        answered = uow.session.scalar(select(exists().where(QuestionnaireResponseRow.version_id == current.id)))
        now = uow.clock.now()
        if answered:
            row.current_version += 1
            uow.session.add(QuestionnaireVersionRow(questionnaire_id=row.id, version=row.current_version,
                                                    definition=parsed.as_dict(), created_at=now))
        else:
            current.definition = parsed.as_dict()
        row.title, row.updated_at = parsed.title, now
        audit.record(uow, principal.actor, "questionnaire.revise", "questionnaire", row.public_id,
                     version=row.current_version, new_version=bool(answered))
        uow.session.flush()
        view = _view(uow, row)
        uow.commit()
    return view


def get(uow: UnitOfWork, principal: Principal, questionnaire_id: str) -> QuestionnaireView:
    """The current questions (patients read them to answer)."""
    with uow:
        return _view(uow, _load(uow, questionnaire_id))


def list_questionnaires(uow: UnitOfWork, principal: Principal) -> list[QuestionnaireView]:
    ensure_role(principal, CARE_TEAM | {Role.OPERATIONS})
    with uow:
        rows = uow.session.scalars(select(QuestionnaireRow).order_by(QuestionnaireRow.id))
        return [_view(uow, r) for r in rows]


def submit(uow: UnitOfWork, principal: Principal, questionnaire_id: str, answers: Mapping[str, Any], *,
           step_id: str | None = None) -> ResponseView:
    """A patient answers the current version (or the one their follow-up step was sent for)."""
    ensure_role(principal, {Role.PATIENT})
    with uow:
        row = _load(uow, questionnaire_id)
        patient = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == principal.patient_id))
        if patient is None:
            raise Forbidden("患者账号未关联患者档案")
        step = None
        if step_id is not None:
            step = uow.session.scalar(select(FollowupStepRow).where(FollowupStepRow.public_id == step_id))
            plan = uow.session.get(FollowupPlanRow, step.plan_id) if step else None
            if step is None or plan is None or plan.patient_id != patient.id:
                raise NotFound(f"随访步骤 {step_id} 不存在")
            if step.questionnaire_id != row.id:
                raise InvalidInput("该随访步骤不是这份问卷", field="step_id")
            if step.answered_at is not None:
                raise Conflict(f"随访步骤 {step_id} 的问卷已提交")
        version = _version(uow, row)
        clean = validate_answers(parse_definition(version.definition), answers)
        now = uow.clock.now()
        response = QuestionnaireResponseRow(
            public_id=new_public_id("qrs"), version_id=version.id, questionnaire_id=row.id, patient_id=patient.id,
            step_id=step.id if step else None, answers_enc=uow.vault.encrypt(json.dumps(clean, ensure_ascii=False)),
            submitted_at=now)
        uow.session.add(response)
        if step is not None:
            step.answered_at = now
        audit.record(uow, principal.actor, "questionnaire.answer", "questionnaire", row.public_id,
                     response=response.public_id, version=version.version)
        uow.session.flush()
        view = _response_view(uow, response, row, version.version, patient)
        uow.commit()
    return view


def _response_view(uow: UnitOfWork, r: QuestionnaireResponseRow, q: QuestionnaireRow, version: int,
                   patient: PatientRow) -> ResponseView:
    step_public = None
    if r.step_id is not None:
        step_public = uow.session.get_one(FollowupStepRow, r.step_id).public_id
    return ResponseView(r.public_id, q.public_id, version, patient.public_id,
                        mask_name(uow.vault.decrypt(patient.name_enc)), json.loads(uow.vault.decrypt(r.answers_enc)),
                        r.submitted_at, step_public)


def _visible_patient_ids(uow: UnitOfWork, principal: Principal, q: QuestionnaireRow) -> set[int] | None:
    """None: every response; otherwise the patients whose answers this caller may read."""
    if principal.role is Role.ADMIN:
        return None
    if principal.role is Role.PATIENT:
        patient = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == principal.patient_id))
        return {patient} if patient is not None else set()
    ensure_role(principal, CARE_TEAM)
    staff = _staff(uow, principal)
    if staff is None:
        return set()
    if staff.id == q.owner_id:
        return None
    return set(uow.session.scalars(select(FollowupPlanRow.patient_id).where(FollowupPlanRow.doctor_id == staff.id)))


def _readable(uow: UnitOfWork, principal: Principal, q: QuestionnaireRow) -> set[int] | None:
    visible = _visible_patient_ids(uow, principal, q)
    if visible is not None and not visible and principal.role is not Role.PATIENT:
        raise Forbidden("只有问卷的创建医生、患者的随访责任医生或管理员可以查看答卷")
    return visible


def _iter_responses(uow: UnitOfWork, principal: Principal, questionnaire_id: str, *,
                    limit: int | None = None) -> Iterator[tuple[QuestionnaireResponseRow, int, PatientRow]]:
    q = _load(uow, questionnaire_id)
    visible = _readable(uow, principal, q)
    if visible is not None and not visible:
        return
    query = (select(QuestionnaireResponseRow, QuestionnaireVersionRow.version, PatientRow)
             .join(QuestionnaireVersionRow, QuestionnaireVersionRow.id == QuestionnaireResponseRow.version_id)
             .join(PatientRow, PatientRow.id == QuestionnaireResponseRow.patient_id)
             .where(QuestionnaireResponseRow.questionnaire_id == q.id)
             .order_by(QuestionnaireResponseRow.submitted_at, QuestionnaireResponseRow.id))
    if visible is not None:
        query = query.where(QuestionnaireResponseRow.patient_id.in_(visible))
    if limit is not None:
        query = query.limit(limit)
    yield from uow.session.execute(query.execution_options(yield_per=500)).tuples()


def list_responses(uow: UnitOfWork, principal: Principal, questionnaire_id: str, *,
                   limit: int = 200) -> list[ResponseView]:
    with uow:
        q = _load(uow, questionnaire_id)
        views = [_response_view(uow, r, q, v, p) for r, v, p in
                 _iter_responses(uow, principal, questionnaire_id, limit=limit)]
        audit.record(uow, principal.actor, "questionnaire.responses.read", "questionnaire", q.public_id,
                     count=len(views))
        uow.commit()
    return views


@dataclass(frozen=True, slots=True)
class ExportResult:
    questionnaire_id: str
    path: str
    responses: int
    versions: int


def _cell(question_kind: str, value: Any) -> Any:
    if value is None:
        return None
    if question_kind == QuestionKind.MULTIPLE.value:
        return "；".join(value)
    return value


def export_xlsx(uow: UnitOfWork, principal: Principal, questionnaire_id: str, path: Path) -> ExportResult:
    """Every visible answer in one sheet (openpyxl write-only, streamed): one row per response, one
    column per question of every version (questions matched by key); patient names masked."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    with uow:
        q = _load(uow, questionnaire_id)
        _readable(uow, principal, q)  # before the workbook exists
        versions = list(uow.session.scalars(select(QuestionnaireVersionRow).where(
            QuestionnaireVersionRow.questionnaire_id == q.id).order_by(QuestionnaireVersionRow.version)))
        columns: dict[str, tuple[str, str]] = {}  # key → (title, kind), the latest title wins
        for v in versions:
            for question in parse_definition(v.definition).questions:
                columns[question.key] = (question.title, question.kind.value)
        book = Workbook(write_only=True)
        sheet = book.create_sheet(q.title[:31] or "问卷")
        header = ["答卷编号", "版本", "患者编号", "患者", "提交时间（北京时间）"] + [
            f"{title}（{key}）" for key, (title, _) in columns.items()]
        from openpyxl.styles import Font

        bold = Font(bold=True)
        cells = []
        for text in header:
            cell = WriteOnlyCell(sheet, value=text)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)
        count = 0
        for response, version, patient in _iter_responses(uow, principal, questionnaire_id):
            answers = json.loads(uow.vault.decrypt(response.answers_enc))
            sheet.append([response.public_id, version, patient.public_id, mask_name(uow.vault.decrypt(patient.name_enc)),
                          to_local(response.submitted_at).replace(tzinfo=None)]
                         + [_cell(kind, answers.get(key)) for key, (_, kind) in columns.items()])
            count += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        book.save(path)
        audit.record(uow, principal.actor, "questionnaire.export", "questionnaire", q.public_id, responses=count)
        uow.commit()
    return ExportResult(q.public_id, str(path), count, len(versions))


def definition_of(view: QuestionnaireView) -> Definition:
    return parse_definition(view.definition)

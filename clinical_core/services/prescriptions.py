"""处方 (RX-2) and 审方 (RX-3).

A doctor prescribes only inside a follow-up consultation they hold (R01, R17),
for a diagnosis the HIS shows from an offline visit (R02); every rule in
``prescription_rules.RULES`` runs on issue and on each revision. A pharmacist
(R33) approves, or rejects with structured reasons; the doctor revises and it
is reviewed again (R35). Nothing approves a prescription automatically (R32,
R36): approval needs a pharmacist principal and writes their review record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import CONVERSATION, ConsultStatus
from clinical_core.domain.errors import Forbidden, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.prescription import (
    RejectReason,
    countersign_form,
    RxAction,
    RxStatus,
    check_rejection,
    ensure_may_review_online,
    rx_transition,
)
from clinical_core.domain.prescription_rules import RxDraft, RxLine, ensure_acceptable, evaluate
from clinical_core.domain.staff import Role
from clinical_core.domain.time import local_date
from clinical_core.domain.video_visit import PRESCRIBABLE, VisitStatus
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.models import DrugRow, PatientRow, StaffRow
from clinical_core.persistence.prescription import PrescriptionItemRow, PrescriptionReviewRow, PrescriptionRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import VideoVisitRow
from clinical_core.ports.his import HisPort, HisRxPort
from clinical_core.ports.signer import Signer
from clinical_core.services import audit
from clinical_core.services.signatures import canonical_of, doctor_signature_in_tx, sign_in_tx
from clinical_core.services.organisation import qualification_of

MAX_QUANTITY = 100


@dataclass(frozen=True, slots=True)
class NewItem:
    drug_code: str
    quantity: int
    days_supply: int
    usage: str  # 用法用量, e.g. "每日一次，每次 1 片，口服"


@dataclass(frozen=True, slots=True)
class NewPrescription:
    consultation_id: str
    diagnosis_codes: tuple[str, ...]
    items: tuple[NewItem, ...]
    valid_days: int = 1
    long_term_reason: str | None = None
    guardian_present: bool = False
    video_visit_id: str | None = None  # set (with consultation_id "") for a prescription from a video visit


@dataclass(frozen=True, slots=True)
class ItemView:
    generic_name: str
    specification: str
    quantity: int
    days_supply: int
    usage: str
    price_fen: int


@dataclass(frozen=True, slots=True)
class ReviewView:
    version: int
    decision: str
    reasons: tuple[str, ...]
    comment: str | None
    pharmacist_id: str
    reviewed_at: datetime


@dataclass(frozen=True, slots=True)
class PrescriptionView:
    public_id: str
    consultation_id: str
    patient_id: str
    doctor_id: str
    doctor_name: str
    status: str
    status_label: str
    version: int
    diagnoses: tuple[str, ...]
    valid_days: int
    items: tuple[ItemView, ...]
    warnings: tuple[str, ...]
    reviews: tuple[ReviewView, ...]
    issued_at: datetime
    video_visit_id: str | None = None  # a prescription from a video visit (网络门诊) has no consultation


def _me(uow: UnitOfWork, principal: Principal) -> StaffRow:
    row = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
    if row is None or not row.active:
        raise Forbidden("当前账号未关联在职员工")
    return row


def _load(uow: UnitOfWork, rx_id: str) -> PrescriptionRow:
    row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id).with_for_update())
    if row is None:
        raise NotFound(f"未找到处方 {rx_id}")
    return row


def _move(uow: UnitOfWork, row: PrescriptionRow, action: RxAction, actor: str, **details: object) -> None:
    before = RxStatus(row.status)
    row.status = rx_transition(row.public_id, before, action).value
    audit.record(uow, actor, f"prescription.{action.value}", "prescription", row.public_id,
                 **{"from": before.value, "to": row.status, "version": row.version}, **details)


def _age(born: datetime | object, today: object) -> int:
    b, t = born, today
    return t.year - b.year - ((t.month, t.day) < (b.month, b.day))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Encounter:
    """The follow-up contact a prescription belongs to: an online consultation or a video visit (网络门诊).

    ``diagnoses``: the diagnoses snapshotted on the encounter (a video visit's 复诊依据), which then limit
    what the prescription may carry; ``None`` means the patient's offline diagnoses from the HIS (R02)."""

    patient_pk: int
    consultation_pk: int | None = None
    video_visit_pk: int | None = None
    diagnoses: dict[str, str] | None = None


def _consultation_encounter(consultation: ConsultationRow) -> Encounter:
    return Encounter(consultation.patient_id, consultation_pk=consultation.id)


def encounter_of(uow: UnitOfWork, row: PrescriptionRow) -> Encounter:
    """The encounter of an existing prescription (for revisions and renewals)."""
    if row.video_visit_id is not None:
        visit = uow.session.get(VideoVisitRow, row.video_visit_id)
        assert visit is not None
        return video_encounter(visit)
    consultation = uow.session.get(ConsultationRow, row.consultation_id)
    assert consultation is not None
    return _consultation_encounter(consultation)


def video_encounter(visit: VideoVisitRow) -> Encounter:
    """A video visit: its snapshotted follow-up diagnoses (strict or declared mode) limit the prescription;
    a visit without a check (mode off) falls back to the HIS's offline diagnoses."""
    snapshot = visit.followup_diagnoses or []
    return Encounter(visit.patient_id, video_visit_pk=visit.id,
                     diagnoses={d["icd10"]: d["name"] for d in snapshot} or None)


def _apply(uow: UnitOfWork, his: HisPort, doctor: StaffRow, encounter: Encounter | ConsultationRow,
           cmd: NewPrescription, row: PrescriptionRow | None, his_rx: HisRxPort | None = None) -> PrescriptionRow:
    """Run every rule on the draft and write it (new, or replacing a rejected version)."""
    if not cmd.items:
        raise InvalidInput("处方至少需要一种药品", field="items")
    for item in cmd.items:
        if not 1 <= item.quantity <= MAX_QUANTITY or not 1 <= item.days_supply <= 366:
            raise InvalidInput("数量或用药天数超出范围", field="items")
        if not item.usage.strip() or len(item.usage) > 200:
            raise InvalidInput("每种药品须填写用法用量（最多 200 字）", field="usage")
    codes = [i.drug_code for i in cmd.items]
    drugs = {d.code: d for d in uow.session.scalars(select(DrugRow).where(DrugRow.code.in_(codes)))}
    missing = [c for c in codes if c not in drugs or not drugs[c].active]
    if missing:
        raise NotFound(f"药品目录中没有在用的药品：{'、'.join(missing)}")
    if len(set(codes)) != len(codes):
        raise InvalidInput("同一药品在处方中重复出现", field="items")
    if isinstance(encounter, ConsultationRow):
        encounter = _consultation_encounter(encounter)
    patient = uow.session.get(PatientRow, encounter.patient_pk)
    assert patient is not None
    if encounter.diagnoses is not None:
        offline = dict(encounter.diagnoses)
    else:
        visits = his.visits(patient.public_id, limit=200)
        offline = {dx.code: dx.name for v in visits for dx in v.diagnoses}
    if his_rx is not None:  # 集成模式 (RX-5): the diagnoses must be in the HIS's library, by its standard names
        from clinical_core.services.rx_his import check_diagnoses

        library = check_diagnoses(his_rx, tuple(cmd.diagnosis_codes))
        offline = {code: library.get(code, name) for code, name in offline.items()}
    today = local_date(uow.clock.now())
    draft = RxDraft(
        lines=tuple(RxLine(c, drugs[c].generic_name, drugs[c].category, drugs[c].control_class, i.quantity,
                           i.days_supply) for c, i in zip(codes, cmd.items, strict=True)),
        diagnosis_codes=tuple(cmd.diagnosis_codes), offline_diagnoses=frozenset(offline),
        patient_age=_age(patient.birth_date, today), guardian_present=cmd.guardian_present,
        valid_days=cmd.valid_days, long_term_reason=cmd.long_term_reason,
        prescriber=qualification_of(doctor), today=today,
    )
    findings = evaluate(draft)
    ensure_acceptable(findings)
    now = uow.clock.now()
    if row is None:
        row = PrescriptionRow(public_id=new_public_id("rx"), consultation_id=encounter.consultation_pk,
                              video_visit_id=encounter.video_visit_pk, patient_id=encounter.patient_pk,
                              doctor_id=doctor.id,
                              status=RxStatus.PENDING_REVIEW.value, version=1, issued_at=now)
        uow.session.add(row)
    else:
        row.version += 1
        row.revised_at = now
        for old in uow.session.scalars(select(PrescriptionItemRow).where(
                PrescriptionItemRow.prescription_id == row.id)):
            uow.session.delete(old)
    row.diagnoses = [{"icd10": c, "name": offline[c]} for c in cmd.diagnosis_codes]
    row.valid_days, row.long_term_reason = cmd.valid_days, cmd.long_term_reason
    row.guardian_present = cmd.guardian_present
    row.warnings = [{"code": f.code, "message": f.message} for f in findings]
    uow.session.flush()
    uow.session.add_all(PrescriptionItemRow(
        prescription_id=row.id, drug_id=drugs[c].id, generic_name=drugs[c].generic_name,
        specification=drugs[c].specification, quantity=i.quantity, days_supply=i.days_supply, usage=i.usage.strip(),
        price_fen=drugs[c].price_fen) for c, i in zip(codes, cmd.items, strict=True))
    uow.session.flush()
    return row


def _encounter(uow: UnitOfWork, doctor: StaffRow, consultation_id: str) -> ConsultationRow:
    """R01/R17: only inside a follow-up consultation this doctor is conducting."""
    consultation = uow.session.scalar(select(ConsultationRow).where(ConsultationRow.public_id == consultation_id))
    if consultation is None:
        raise NotFound(f"未找到咨询订单 {consultation_id}")
    if consultation.doctor_id != doctor.id:
        raise Forbidden("只能在本人接诊的咨询中开具处方")
    status = ConsultStatus(consultation.status)
    if status not in CONVERSATION:
        raise InvalidInput(f"咨询当前状态为「{status.label}」，不能开具处方", field="consultation_id")
    return consultation


def _video_visit_encounter(uow: UnitOfWork, doctor: StaffRow, visit_id: str) -> Encounter:
    """R01/R17 for 网络门诊: only in a video visit this doctor holds, during or after the call; the
    visit's snapshotted follow-up diagnoses limit the prescription (R02)."""
    visit = uow.session.scalar(select(VideoVisitRow).where(VideoVisitRow.public_id == visit_id))
    if visit is None:
        raise NotFound(f"未找到视频复诊 {visit_id}")
    if visit.doctor_id != doctor.id:
        raise Forbidden("只能在本人接诊的视频复诊中开具处方")
    status = VisitStatus(visit.status)
    if status not in PRESCRIBABLE:
        raise InvalidInput(f"视频复诊当前状态为「{status.label}」，不能开具处方", field="video_visit_id")
    return video_encounter(visit)


def issue_prescription(uow: UnitOfWork, principal: Principal, his: HisPort, signer: Signer,
                       cmd: NewPrescription, *, his_rx: HisRxPort | None = None) -> PrescriptionView:
    """开具处方 → signed by the doctor (R03) → 待审核."""
    ensure_role(principal, {Role.DOCTOR})
    with uow:
        doctor = _me(uow, principal)
        if cmd.video_visit_id:
            encounter: Encounter | ConsultationRow = _video_visit_encounter(uow, doctor, cmd.video_visit_id)
        else:
            encounter = _encounter(uow, doctor, cmd.consultation_id)
        row = _apply(uow, his, doctor, encounter, cmd, None, his_rx)
        sign_in_tx(uow, signer, row, doctor, "doctor", canonical_of(uow, row))
        audit.record(uow, principal.actor, "prescription.issue", "prescription", row.public_id,
                     consultation=cmd.consultation_id or None, video_visit=cmd.video_visit_id, items=len(cmd.items),
                     warnings=[w["code"] for w in row.warnings])
        view = _view(uow, row)
        uow.commit()
    return view


def issue_renewal_in_tx(uow: UnitOfWork, his: HisPort, signer: Signer, doctor: StaffRow, source: PrescriptionRow,
                        cmd: NewPrescription, actor: str, his_rx: HisRxPort | None = None) -> PrescriptionRow:
    """快速续方: a new prescription on the encounter of the earlier one (the renewal request is the
    follow-up contact), through every rule (R02 against the HIS again, R24–R26, R04, R07/R14), newly
    signed by the doctor, and pending the pharmacist's review like any other (R32)."""
    row = _apply(uow, his, doctor, encounter_of(uow, source), cmd, None, his_rx)
    row.renewal_of_id = source.id
    sign_in_tx(uow, signer, row, doctor, "doctor", canonical_of(uow, row))
    audit.record(uow, actor, "prescription.issue", "prescription", row.public_id, renewal_of=source.public_id,
                 items=len(cmd.items), warnings=[w["code"] for w in row.warnings])
    return row


def revise_prescription(uow: UnitOfWork, principal: Principal, his: HisPort, signer: Signer, rx_id: str,
                        cmd: NewPrescription, *, his_rx: HisRxPort | None = None) -> PrescriptionView:
    """R35: the prescriber revises (and re-signs) a rejected prescription; it goes back to review."""
    ensure_role(principal, {Role.DOCTOR})
    with uow:
        doctor = _me(uow, principal)
        row = _load(uow, rx_id)
        if row.doctor_id != doctor.id:
            raise Forbidden("只有开方医生可以修改处方")
        rx_transition(row.public_id, RxStatus(row.status), RxAction.REVISE)
        encounter = encounter_of(uow, row)
        if encounter.consultation_pk is not None:
            consultation = uow.session.get(ConsultationRow, encounter.consultation_pk)
            assert consultation is not None
            if consultation.public_id != cmd.consultation_id:
                raise InvalidInput("修改处方不能更换咨询", field="consultation_id")
        _apply(uow, his, doctor, encounter, cmd, row, his_rx)
        sign_in_tx(uow, signer, row, doctor, "doctor", canonical_of(uow, row))
        _move(uow, row, RxAction.REVISE, principal.actor)
        view = _view(uow, row)
        uow.commit()
    return view


def review_queue(uow: UnitOfWork, principal: Principal, *, limit: int = 50) -> list[PrescriptionView]:
    """审方队列: oldest first."""
    ensure_role(principal, {Role.PHARMACIST})
    with uow:
        rows = uow.session.scalars(select(PrescriptionRow).where(
            PrescriptionRow.status == RxStatus.PENDING_REVIEW.value).order_by(PrescriptionRow.id).limit(limit))
        return [_view(uow, r) for r in rows]


def review_prescription(
    uow: UnitOfWork, principal: Principal, signer: Signer, rx_id: str, *, approve: bool,
    reasons: tuple[RejectReason, ...] = (), comment: str | None = None,
) -> PrescriptionView:
    """审核: a qualified pharmacist (R33) approves, or rejects with reasons (R35). The row is locked,
    so of two pharmacists reviewing at once the second finds it already decided."""
    ensure_role(principal, {Role.PHARMACIST})
    if not approve:
        check_rejection(reasons, comment)
    with uow:
        pharmacist = _me(uow, principal)
        ensure_may_review_online(qualification_of(pharmacist), local_date(uow.clock.now()))
        row = _load(uow, rx_id)
        action = RxAction.APPROVE if approve else RxAction.REJECT
        rx_transition(row.public_id, RxStatus(row.status), action)
        doctor_signature = doctor_signature_in_tx(uow, signer, row)  # R41: changed after signing → blocked
        _move(uow, row, action, principal.actor, reasons=[r.value for r in reasons])
        if approve:  # R23/R37: the pharmacist countersigns the approval
            sign_in_tx(uow, signer, row, pharmacist, "pharmacist",
                       countersign_form(canonical_of(uow, row), doctor_signature))
        now = uow.clock.now()
        row.reviewed_at = now
        uow.session.add(PrescriptionReviewRow(
            public_id=new_public_id("rvw"), prescription_id=row.id, version=row.version, pharmacist_id=pharmacist.id,
            decision=action.value, reasons=[r.value for r in reasons], comment=(comment or "").strip() or None,
            reviewed_at=now))
        uow.session.flush()
        view = _view(uow, row)
        uow.commit()
    return view


def void_prescription(uow: UnitOfWork, principal: Principal, rx_id: str, reason: str, *,
                      his_rx: HisRxPort | None = None) -> PrescriptionView:
    """作废: the prescriber or an administrator. Integrated mode (``his_rx``): a prescription the HIS
    holds is voided there first; one it never registered is voided locally."""
    ensure_role(principal, {Role.DOCTOR, Role.ADMIN})
    if not reason.strip() or len(reason) > 200:
        raise InvalidInput("作废须填写原因（最多 200 字）", field="reason")

    def guard(uow: UnitOfWork, row: PrescriptionRow) -> None:
        if principal.role is Role.DOCTOR and row.doctor_id != _me(uow, principal).id:
            raise Forbidden("只有开方医生可以作废处方")
        rx_transition(row.public_id, RxStatus(row.status), RxAction.VOID)

    if his_rx is not None:
        from clinical_core.services import rx_his

        if rx_his.void(uow, his_rx, rx_id, principal.actor, reason.strip(), guard):
            with uow:
                return _view(uow, _load(uow, rx_id))
    with uow:
        row = _load(uow, rx_id)
        guard(uow, row)
        _move(uow, row, RxAction.VOID, principal.actor)
        row.voided_at, row.void_reason = uow.clock.now(), reason.strip()
        view = _view(uow, row)
        uow.commit()
    return view


def get_prescription(uow: UnitOfWork, principal: Principal, rx_id: str) -> PrescriptionView:
    """The patient (own), the prescriber, pharmacists and administrators. Audited."""
    with uow:
        row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id))
        if row is None:
            raise NotFound(f"未找到处方 {rx_id}")
        if principal.role is Role.PATIENT:
            patient = uow.session.get(PatientRow, row.patient_id)
            if patient is None or patient.public_id != principal.patient_id:
                raise Forbidden("患者只能查看本人的处方")
        elif principal.role is Role.DOCTOR:
            if row.doctor_id != _me(uow, principal).id:
                raise Forbidden("医生只能查看本人开具的处方")
        else:
            ensure_role(principal, {Role.PHARMACIST, Role.ADMIN})
        audit.record(uow, principal.actor, "prescription.read", "prescription", rx_id)
        view = _view(uow, row)
        uow.commit()
    return view


def list_prescriptions(uow: UnitOfWork, principal: Principal, *, status: RxStatus | None = None,
                       limit: int = 100) -> list[PrescriptionView]:
    ensure_role(principal, {Role.ADMIN, Role.PHARMACIST})
    with uow:
        query = select(PrescriptionRow).order_by(PrescriptionRow.id.desc()).limit(limit)
        if status:
            query = query.where(PrescriptionRow.status == status.value)
        return [_view(uow, r) for r in uow.session.scalars(query)]


def _view(uow: UnitOfWork, row: PrescriptionRow) -> PrescriptionView:
    consultation = uow.session.get(ConsultationRow, row.consultation_id) if row.consultation_id else None
    patient = uow.session.get(PatientRow, row.patient_id)
    doctor = uow.session.get(StaffRow, row.doctor_id)
    assert patient is not None and doctor is not None
    items = uow.session.scalars(select(PrescriptionItemRow).where(
        PrescriptionItemRow.prescription_id == row.id).order_by(PrescriptionItemRow.id))
    reviews = uow.session.execute(
        select(PrescriptionReviewRow, StaffRow.public_id).join(StaffRow, StaffRow.id == PrescriptionReviewRow.pharmacist_id)
        .where(PrescriptionReviewRow.prescription_id == row.id).order_by(PrescriptionReviewRow.id))
    status = RxStatus(row.status)
    return PrescriptionView(
        row.public_id, consultation.public_id if consultation else "", patient.public_id, doctor.public_id, doctor.name, status.value,
        status.label, row.version, tuple(d["icd10"] for d in row.diagnoses), row.valid_days,
        tuple(ItemView(i.generic_name, i.specification, i.quantity, i.days_supply, i.usage, i.price_fen)
              for i in items),
        tuple(w["code"] for w in row.warnings or []),
        tuple(ReviewView(r.version, r.decision, tuple(r.reasons or []), r.comment, pid, r.reviewed_at)
              for r, pid in reviews),
        row.issued_at,
        _video_visit_public_id(uow, row),
    )


def _video_visit_public_id(uow: UnitOfWork, row: PrescriptionRow) -> str | None:
    if row.video_visit_id is None:
        return None
    return uow.session.scalar(select(VideoVisitRow.public_id).where(VideoVisitRow.id == row.video_visit_id))

"""Time-driven work of the video clinic, for the scheduler (``jobs/``).

Each is ``fn(uow, now, **options) -> counts``: idempotent, and safe to run
concurrently on several machines. Rows are claimed with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL and re-checked under the lock, so two workers never act
on the same visit; each visit is its own short transaction, so one failure
never holds back the others.

- ``release_unpaid``: a booking unpaid after 15 minutes is cancelled and its
  slot offered again on both sides.
- ``mark_no_shows``: a paid visit whose patient never checked in by 15 minutes
  after the slot is a no-show (no refund).
- ``send_reminders``: one reminder per visit, ``lead_minutes`` before the slot;
  the send happens after the claim commits, and a refused send is recorded
  and retried on the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from clinical_core.domain.errors import DomainError
from clinical_core.domain.video_visit import (
    NO_SHOW_GRACE,
    PAYMENT_WINDOW,
    EndReason,
    VisitAction,
    VisitStatus,
)
from clinical_core.persistence.models import DepartmentRow, PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import VideoVisitRow
from clinical_core.ports.his_schedule import HisSchedulePort
from clinical_core.ports.reminders import ReminderSender, VisitReminder
from clinical_core.services.video_booking import cancel_in_tx
from clinical_core.services.video_visits import move

UNPAID_ACTOR = "job:release_unpaid_video_visits"
NO_SHOW_ACTOR = "job:mark_video_no_shows"
REMINDER_ACTOR = "job:video_visit_reminders"


@dataclass(frozen=True, slots=True)
class JobCounts:
    processed: int
    failed: int = 0


def _due(uow: UnitOfWork, condition: object, limit: int) -> list[int]:
    with uow:
        return list(uow.session.scalars(select(VideoVisitRow.id).where(condition)  # type: ignore[arg-type]
                                        .order_by(VideoVisitRow.starts_at, VideoVisitRow.id).limit(limit)))


def _claim(uow: UnitOfWork, pk: int, condition: object) -> VideoVisitRow | None:
    return uow.session.scalar(select(VideoVisitRow).where(VideoVisitRow.id == pk, condition)  # type: ignore[arg-type]
                              .with_for_update(skip_locked=True))


def release_unpaid(uow: UnitOfWork, now: datetime, *, his_schedule: HisSchedulePort,
                   limit: int = 200) -> JobCounts:
    """Suggested: every minute; misfire: run once (coalesce)."""
    condition = (VideoVisitRow.status == VisitStatus.BOOKED.value) & (VideoVisitRow.created_at <= now - PAYMENT_WINDOW)
    done = 0
    for pk in _due(uow, condition, limit):
        with uow:
            row = _claim(uow, pk, condition)
            if row is None:
                continue
            cancel_in_tx(uow, his_schedule, row, EndReason.UNPAID, UNPAID_ACTOR, 0)
            uow.commit()
            done += 1
    return JobCounts(done)


def mark_no_shows(uow: UnitOfWork, now: datetime, *, limit: int = 200) -> JobCounts:
    """Suggested: every 5 minutes; misfire: run once (coalesce)."""
    condition = (VideoVisitRow.status == VisitStatus.PAID.value) & (VideoVisitRow.ends_at <= now - NO_SHOW_GRACE)
    done = 0
    for pk in _due(uow, condition, limit):
        with uow:
            row = _claim(uow, pk, condition)
            if row is None:
                continue
            move(uow, row, VisitAction.NO_SHOW, NO_SHOW_ACTOR)
            row.ended_at, row.end_reason = now, EndReason.NO_SHOW.value
            uow.commit()
            done += 1
    return JobCounts(done)


def _reminder_condition(now: datetime, lead_minutes: int) -> object:
    return ((VideoVisitRow.status == VisitStatus.PAID.value) & VideoVisitRow.reminded_at.is_(None)
            & (VideoVisitRow.starts_at <= now + timedelta(minutes=lead_minutes))
            & (VideoVisitRow.starts_at > now))


def reminders_due(uow: UnitOfWork, now: datetime, *, lead_minutes: int = 60, limit: int = 200) -> list[str]:
    """The visits the next reminder run would remind (for ``--dry-run``): public ids only."""
    with uow:
        return list(uow.session.scalars(select(VideoVisitRow.public_id).where(
            _reminder_condition(now, lead_minutes)).order_by(VideoVisitRow.starts_at).limit(limit)))  # type: ignore[arg-type]


def send_reminders(uow: UnitOfWork, now: datetime, *, sender: ReminderSender, lead_minutes: int = 60,
                   limit: int = 200) -> JobCounts:
    """就诊提醒. Suggested: every 5 minutes; misfire: run once (coalesce) — a late run still reminds
    visits that have not started."""
    condition = _reminder_condition(now, lead_minutes)
    sent = failed = 0
    for pk in _due(uow, condition, limit):
        with uow:
            row = _claim(uow, pk, condition)
            if row is None:
                continue
            patient = uow.session.get(PatientRow, row.patient_id)
            doctor = uow.session.get(StaffRow, row.doctor_id)
            dept = uow.session.get(DepartmentRow, row.department_id)
            assert patient is not None and doctor is not None and dept is not None
            row.reminded_at, row.reminder_error = now, None  # claimed: no other worker sends it
            if not patient.openid:
                row.reminder_error = "患者未绑定微信"
                uow.commit()
                failed += 1
                continue
            reminder = VisitReminder(row.public_id, patient.openid, doctor.name, dept.name, row.starts_at)
            uow.commit()
        try:
            sender.send_visit_reminder(reminder)
        except DomainError as exc:
            with uow:  # give the claim back, with the reason, for the next run
                again = uow.session.get(VideoVisitRow, pk, with_for_update=True)
                assert again is not None
                again.reminded_at, again.reminder_error = None, str(exc)[:200]
                uow.commit()
            failed += 1
        else:
            sent += 1
    return JobCounts(sent, failed)

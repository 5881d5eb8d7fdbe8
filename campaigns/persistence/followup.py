"""Questionnaires, their versions and responses; follow-up plan templates, plans and steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType, PublicIdMixin, fk


class QuestionnaireRow(PublicIdMixin, Base):
    """随访问卷. Its definition lives in versions; a version with answers is never changed."""

    __tablename__ = "questionnaires"
    title: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)  # the doctor who defined it
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class QuestionnaireVersionRow(IdMixin, Base):
    __tablename__ = "questionnaire_versions"
    questionnaire_id: Mapped[int] = mapped_column(fk("questionnaires.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("questionnaire_id", "version", name="uq_questionnaire_versions_version"),)


class QuestionnaireResponseRow(PublicIdMixin, Base):
    """一份答卷. Answers may hold personal data (free text): stored encrypted."""

    __tablename__ = "questionnaire_responses"
    version_id: Mapped[int] = mapped_column(fk("questionnaire_versions.id"), index=True)
    questionnaire_id: Mapped[int] = mapped_column(fk("questionnaires.id"))
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    step_id: Mapped[int | None] = mapped_column(fk("followup_steps.id"), unique=True)  # one answer per step
    answers_enc: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    __table_args__ = (Index("ix_questionnaire_responses_q_submitted", "questionnaire_id", "submitted_at"),)


class FollowupTemplateRow(PublicIdMixin, Base):
    """随访计划模板: steps by day offset; optionally started by a clinical event."""

    __tablename__ = "followup_templates"
    code: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(100))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    trigger_event: Mapped[str | None] = mapped_column(String(20), index=True)  # rx_dispensed | consult_closed
    trigger_match: Mapped[list[str]] = mapped_column(JsonType)  # diagnosis names / ICD-10 prefixes ([]: any)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(fk("staff.id"))
    created_at: Mapped[datetime]


class FollowupPlanRow(PublicIdMixin, Base):
    """One patient's follow-up plan, copied from a template when it starts."""

    __tablename__ = "followup_plans"
    template_id: Mapped[int] = mapped_column(fk("followup_templates.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"), index=True)
    doctor_id: Mapped[int | None] = mapped_column(fk("staff.id"), index=True)  # the responsible doctor
    source: Mapped[str] = mapped_column(String(20))  # doctor | rx_dispensed | consult_closed
    source_ref: Mapped[str] = mapped_column(String(60))  # the event's public id, or the plan's own for doctor starts
    status: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    __table_args__ = (
        # an event starts a template's plan once, however often the job scans it
        UniqueConstraint("template_id", "source", "source_ref", name="uq_followup_plans_source"),
    )


class FollowupStepRow(PublicIdMixin, Base):
    """A step of a plan; its status is written before the send (sending) and after it."""

    __tablename__ = "followup_steps"
    plan_id: Mapped[int] = mapped_column(fk("followup_plans.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(500))
    questionnaire_id: Mapped[int | None] = mapped_column(fk("questionnaires.id"))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("plan_id", "seq", name="uq_followup_steps_plan_seq"),
        Index("ix_followup_steps_status_due", "status", "due_at"),
    )


class FollowupCursorRow(Base):
    """How far the event scan has read each clinical source (instant, then row id)."""

    __tablename__ = "followup_cursors"
    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    position_at: Mapped[datetime]
    position_id: Mapped[int] = mapped_column(Integer)

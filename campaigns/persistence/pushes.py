"""Tables of pushes: synced templates, saved audiences, pushes, the delivery ledger, opt-outs,
tracked short links and their clicks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType, PublicIdMixin, fk


class WeChatTemplateRow(IdMixin, Base):
    """A template message template as WeChat lists it (``template/get_all_private_template``)."""

    __tablename__ = "wechat_templates"
    template_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(80))
    content: Mapped[str] = mapped_column(Text)
    fields: Mapped[list[str]] = mapped_column(JsonType, default=list)  # keys of the {{key.DATA}} placeholders
    synced_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: no longer on WeChat


class SegmentRow(PublicIdMixin, Base):
    """A saved audience: rules over followers (tags, department or doctor, last consultation,
    channel, funnel stage). Opt-outs are always excluded."""

    __tablename__ = "push_segments"
    name: Mapped[str] = mapped_column(String(80), unique=True)
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))


class PushRow(PublicIdMixin, Base):
    """A template message or mass send to a segment, with optional A/B variants."""

    __tablename__ = "pushes"
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(12))  # template | mass
    status: Mapped[str] = mapped_column(String(12), index=True)
    segment_id: Mapped[int | None] = mapped_column(fk("push_segments.id"))
    # variant name -> {"template_id", "fields": {key: jinja}, "url"} or {"msgtype", "text"|"media_id"}
    variants: Mapped[dict[str, Any]] = mapped_column(default=dict)
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ab_test_share: Mapped[int] = mapped_column(Integer, default=100)  # % of the audience in the test
    ab_metric: Mapped[str | None] = mapped_column(String(20))  # ctr | conversion
    ab_decide_after_hours: Mapped[int | None] = mapped_column(Integer)
    winner: Mapped[str | None] = mapped_column(String(8))
    scheduled_at: Mapped[datetime | None] = mapped_column(index=True)
    dispatched_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    audience_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))
    purpose: Mapped[str | None] = mapped_column(String(12))  # None: a marketing push; "followup": one plan step


class DeliveryRow(IdMixin, Base):
    """One (push, recipient): the delivery ledger. ``(push_id, openid)`` is unique, so a recipient
    can be planned once per push; only the ``claim`` UPDATE moves a row to ``sending``."""

    __tablename__ = "push_deliveries"
    push_id: Mapped[int] = mapped_column(fk("pushes.id"))
    openid: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(fk("patients.id"))
    variant: Mapped[str] = mapped_column(String(8), default="A")
    batch_no: Mapped[int] = mapped_column(Integer, default=0)  # mass sends: one call per batch
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claim: Mapped[str | None] = mapped_column(String(40))
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    msgid: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime]
    # a follow-up plan step delivered through the ledger: at most one row per step, ever
    followup_step_id: Mapped[int | None] = mapped_column(fk("followup_steps.id"), unique=True)

    __table_args__ = (
        UniqueConstraint("push_id", "openid", name="uq_push_deliveries_push_openid"),
        Index("ix_push_deliveries_state_next", "state", "next_attempt_at"),
        Index("ix_push_deliveries_openid_created", "openid", "created_at"),
        Index("ix_push_deliveries_push_state", "push_id", "state"),
    )


class OptOutRow(IdMixin, Base):
    """退订: this follower receives no marketing pushes."""

    __tablename__ = "push_opt_outs"
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(40))  # staff username, "menu", "reply TD"


class ShortLinkRow(IdMixin, Base):
    """A tracked short link of one push variant: ``/l/<code>`` redirects to ``target``."""

    __tablename__ = "push_links"
    code: Mapped[str] = mapped_column(String(16), unique=True)
    push_id: Mapped[int] = mapped_column(fk("pushes.id"), index=True)
    variant: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime]


class LinkClickRow(IdMixin, Base):
    """One click on a short link (the openid when the link carried the recipient's token)."""

    __tablename__ = "push_clicks"
    link_id: Mapped[int] = mapped_column(fk("push_links.id"), index=True)
    openid: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))  # template | mass | preview | other
    at: Mapped[datetime]


class RateBucketRow(Base):
    """WeChat's call rate is per official account, so the token bucket is one row per account,
    shared by every ``opsctl push worker`` process on every machine. Only one conditional UPDATE
    takes tokens (``campaigns.services.ratelimit``)."""

    __tablename__ = "push_rate_buckets"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the official account's app id
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float)  # epoch seconds of the last refill

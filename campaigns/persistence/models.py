"""Tables of WeChat operations: the shared access token, the callback inbox, channels, their
QR codes, package-card batches and the funnel events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, PublicIdMixin, fk


class WeChatTokenRow(IdMixin, Base):
    """The one access token of the deployment, shared by every process (中控).

    A process refreshes only after taking the lease with a conditional UPDATE
    (``lease_until`` empty or past), so one process refreshes at a time.
    """

    __tablename__ = "wechat_tokens"
    app_id: Mapped[str] = mapped_column(String(40), unique=True)
    access_token: Mapped[str | None] = mapped_column(Text)  # WeChat: store at least 512 characters
    expires_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None]
    refreshed_at: Mapped[datetime | None]
    refresh_count: Mapped[int] = mapped_column(Integer, default=0)


class WeChatInboxRow(IdMixin, Base):
    """Callback queue: acknowledged at once, processed by ``campaigns.services.callback.process_inbox``.

    ``dedupe_key`` (MsgId, or FromUserName+CreateTime for events) is unique, so WeChat's
    retries of one event are stored and counted once.
    """

    __tablename__ = "wechat_inbox"
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    msg_type: Mapped[str] = mapped_column(String(20))
    event: Mapped[str | None] = mapped_column(String(40))
    openid: Mapped[str] = mapped_column(String(64))
    created_time: Mapped[datetime]  # WeChat's CreateTime
    received_at: Mapped[datetime]
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | done | failed
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_wechat_inbox_status_id", "status", "id"),)


class ChannelRow(PublicIdMixin, Base):
    """推广渠道: a department poster, a doctor's card, a package-card batch, an article, an event."""

    __tablename__ = "channels"
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))


class QrCodeRow(PublicIdMixin, Base):
    """A parametric QR code owned by a channel. ``scene`` is what WeChat sends back on a scan."""

    __tablename__ = "qr_codes"
    channel_id: Mapped[int] = mapped_column(fk("channels.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(fk("card_batches.id"), index=True)
    scene: Mapped[str] = mapped_column(String(64), unique=True)
    permanent: Mapped[bool] = mapped_column(Boolean)
    ticket: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class CardBatchRow(PublicIdMixin, Base):
    """包裹卡批次: cards printed for drug parcels, each with its own QR scene."""

    __tablename__ = "card_batches"
    code: Mapped[str] = mapped_column(String(40), unique=True)
    channel_id: Mapped[int] = mapped_column(fk("channels.id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    copy_text: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class FunnelEventRow(IdMixin, Base):
    """One processed WeChat event (scan, subscribe, unsubscribe, job finish), attributed to a channel."""

    __tablename__ = "funnel_events"
    openid: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(40))
    scene: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[int | None] = mapped_column(fk("channels.id"))
    at: Mapped[datetime]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_funnel_events_channel_event", "channel_id", "event"),)


class CardBatchPrescriptionRow(IdMixin, Base):
    """A package-card batch tied to a prescription whose parcel carries its cards. One parcel
    carries one batch (``prescription_id`` unique); the funnel counts a batch's parcels from here."""

    __tablename__ = "card_batch_prescriptions"
    batch_id: Mapped[int] = mapped_column(fk("card_batches.id"), index=True)
    prescription_id: Mapped[int] = mapped_column(fk("prescriptions.id"), unique=True)
    linked_at: Mapped[datetime]
    linked_by: Mapped[str] = mapped_column(String(80))

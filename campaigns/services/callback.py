"""WeChat callback events: acknowledged into the inbox at once, then processed by a worker.

``enqueue`` runs inside the 5-second budget: one INSERT keyed by the event's dedupe key, so
WeChat's retries of one event are stored once. ``process_inbox`` applies pending rows:
subscribe/unsubscribe/SCAN update the followers table and become funnel events attributed to
the channel that owns the QR scene; message job results are kept as events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from campaigns.domain.channels import InboundKey, scene_from_event_key
from campaigns.persistence.models import FunnelEventRow, QrCodeRow, WeChatInboxRow
from clinical_core.domain.errors import InvalidInput
from clinical_core.persistence.models import FollowerRow, PatientRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

MAX_FIELD_CHARS = 2000
KEPT_EVENTS = frozenset({"subscribe", "unsubscribe", "SCAN", "TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH",
                         "CLICK", "VIEW"})


@dataclass(frozen=True, slots=True)
class Enqueued:
    key: str
    new: bool  # False: a retry of an event already received


@dataclass(frozen=True, slots=True)
class Processed:
    processed: int
    failed: int


def enqueue(uow: UnitOfWork, fields: dict[str, str]) -> Enqueued:
    """Store one callback message or event, once. Raises InvalidInput for a malformed one."""
    key = InboundKey.of(fields).value
    created = fields.get("CreateTime", "")
    if not created.isdigit():
        raise InvalidInput("回调消息的 CreateTime 无效")
    msg_type = (fields.get("MsgType") or "")[:20]
    event = (fields.get("Event") or "")[:40] or None
    kept = {k: v[:MAX_FIELD_CHARS] for k, v in fields.items() if k != "Content"}  # no free text kept
    with uow:
        if uow.session.scalar(select(WeChatInboxRow.id).where(WeChatInboxRow.dedupe_key == key)) is not None:
            return Enqueued(key, False)
        uow.session.add(WeChatInboxRow(
            dedupe_key=key, msg_type=msg_type, event=event, openid=(fields.get("FromUserName") or "")[:64],
            created_time=datetime.fromtimestamp(int(created), UTC), received_at=uow.clock.now(),
            fields=kept, status="pending"))
        try:
            uow.commit()
        except IntegrityError:  # the same retry arrived in parallel
            return Enqueued(key, False)
    return Enqueued(key, True)


def process_inbox(uow: UnitOfWork, *, limit: int = 500) -> Processed:
    """Apply up to ``limit`` pending events in arrival order, in one transaction. Safe to run in
    several workers: rows are claimed with SKIP LOCKED on PostgreSQL."""
    processed = failed = 0
    with uow:
        query = (select(WeChatInboxRow).where(WeChatInboxRow.status == "pending")
                 .order_by(WeChatInboxRow.id).limit(limit))
        if uow.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(uow.session.scalars(query))
        for row in rows:
            try:
                with uow.session.begin_nested():
                    _apply(uow, row)
                row.status, row.processed_at = "done", uow.clock.now()
                processed += 1
            except Exception as exc:  # noqa: BLE001 - one bad event must not block the queue
                row.status, row.processed_at = "failed", uow.clock.now()
                row.error = type(exc).__name__[:200]
                failed += 1
        if rows:
            audit.record(uow, "system:wechat-worker", "wechat.inbox.process", "wechat_inbox", "*",
                         processed=processed, failed=failed)
        uow.commit()
    return Processed(processed, failed)


def _channel_of(uow: UnitOfWork, scene: str | None) -> int | None:
    if not scene:
        return None
    return uow.session.scalar(select(QrCodeRow.channel_id).where(QrCodeRow.scene == scene))


def _apply(uow: UnitOfWork, row: WeChatInboxRow) -> None:
    fields = row.fields or {}
    event = row.event or ""
    if row.msg_type != "event" or event not in KEPT_EVENTS:
        return
    openid, at = row.openid, row.created_time
    scene = scene_from_event_key(event, fields.get("EventKey")) if event in ("subscribe", "SCAN") else None
    channel_id = _channel_of(uow, scene)
    if event == "subscribe":
        follower = uow.session.scalar(select(FollowerRow).where(FollowerRow.openid == openid))
        patient_id = uow.session.scalar(select(PatientRow.id).where(PatientRow.openid == openid))
        if follower is None:
            uow.session.add(FollowerRow(openid=openid, patient_id=patient_id, subscribed_at=at, scene=scene))
        else:  # a returning follower: first-touch attribution keeps the original scene
            follower.subscribed_at, follower.unsubscribed_at = at, None
            follower.scene = follower.scene or scene
            follower.patient_id = follower.patient_id or patient_id
    elif event == "unsubscribe":
        uow.session.execute(update(FollowerRow).where(FollowerRow.openid == openid)
                            .values(unsubscribed_at=at))
    details = {k: fields[k] for k in ("MsgID", "Status", "TotalCount", "FilterCount", "SentCount", "ErrorCount")
               if k in fields}
    uow.session.add(FunnelEventRow(openid=openid, event=event.lower(), scene=scene, channel_id=channel_id,
                                   at=at, details=details))

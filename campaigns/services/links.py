"""Tracked short links and A/B winners.

Each variant of a push with a link gets ``/l/<code>``; in a template message the link carries the
recipient's token (``?u=<delivery id>.<keyed hash>``), so a click counts per push, variant and
channel, and — for a known recipient — becomes a ``push_click`` funnel event of that openid.
A forged or missing token still redirects but counts as anonymous.

``pick_winners`` (scheduled job): once an A/B push has been out for its stated hours, the variant
with the best click-through (clicks by distinct recipients / sent) or funnel conversion
(recipients who started a consultation after the push / sent) wins; ties go to the earlier
variant. The held-back rest of the audience (``variant = '*'``) gets the winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from campaigns.domain import pushes as P
from campaigns.persistence.models import FunnelEventRow
from campaigns.persistence.pushes import DeliveryRow, LinkClickRow, PushRow, ShortLinkRow
from clinical_core.domain.errors import NotFound
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit


@dataclass(frozen=True, slots=True)
class Clicked:
    target: str
    counted_for_recipient: bool


@dataclass(frozen=True, slots=True)
class VariantScore:
    variant: str
    sent: int
    clicks: int
    conversions: int
    rate: float


@dataclass(frozen=True, slots=True)
class Winners:
    decided: int
    rows_released: int


def recipient_token(uow: UnitOfWork, delivery_id: int) -> str:
    return f"{delivery_id}.{uow.vault.lookup_hash('push_link', str(delivery_id))[:12]}"


def click(uow: UnitOfWork, code: str, token: str | None) -> Clicked:
    with uow:
        link = uow.session.scalar(select(ShortLinkRow).where(ShortLinkRow.code == code))
        if link is None:
            raise NotFound("链接不存在")
        push = uow.session.get(PushRow, link.push_id)
        openid = None
        if token and "." in token:
            raw_id, _, _sig = token.partition(".")
            if raw_id.isdigit() and recipient_token(uow, int(raw_id)) == token:
                row = uow.session.get(DeliveryRow, int(raw_id))
                if row is not None and row.push_id == link.push_id:
                    openid = row.openid
        now = uow.clock.now()
        uow.session.add(LinkClickRow(link_id=link.id, openid=openid, channel=push.kind if openid else "other", at=now))
        if openid:
            uow.session.add(FunnelEventRow(openid=openid, event="push_click", scene=None, channel_id=None, at=now,
                                           details={"push": push.public_id, "variant": link.variant}))
        uow.commit()
        return Clicked(link.target, openid is not None)


def scores(uow: UnitOfWork, push: PushRow) -> list[VariantScore]:
    out: list[VariantScore] = []
    since = push.dispatched_at or push.created_at
    for variant in sorted(push.variants):
        sent_rows = select(DeliveryRow.openid).where(DeliveryRow.push_id == push.id, DeliveryRow.variant == variant,
                                                      DeliveryRow.state == P.DeliveryState.SENT)
        sent = uow.session.scalar(select(func.count()).select_from(sent_rows.subquery())) or 0
        clicks = uow.session.scalar(
            select(func.count(func.distinct(LinkClickRow.openid))).join(ShortLinkRow, ShortLinkRow.id == LinkClickRow.link_id)
            .where(ShortLinkRow.push_id == push.id, ShortLinkRow.variant == variant,
                   LinkClickRow.openid.in_(sent_rows))) or 0
        conversions = uow.session.scalar(
            select(func.count(func.distinct(DeliveryRow.patient_id))).join(
                ConsultationRow, ConsultationRow.patient_id == DeliveryRow.patient_id)
            .where(DeliveryRow.push_id == push.id, DeliveryRow.variant == variant,
                   DeliveryRow.state == P.DeliveryState.SENT, ConsultationRow.created_at >= since)) or 0
        hits = clicks if push.ab_metric == "ctr" else conversions
        out.append(VariantScore(variant, sent, clicks, conversions, hits / sent if sent else 0.0))
    return out


def pick_winners(uow: UnitOfWork, now: datetime) -> Winners:
    """Scheduled job: decide due A/B tests and release the held-back audience to the winner.
    Idempotent: the push row is claimed with a conditional UPDATE (winner IS NULL)."""
    from campaigns.services.pushes import _assign_batches

    decided = released = 0
    with uow:
        candidates = list(uow.session.scalars(select(PushRow).where(
            PushRow.status == P.PushStatus.SENDING, PushRow.ab_metric.is_not(None), PushRow.winner.is_(None))))
        due = [p.id for p in candidates if p.dispatched_at is not None and p.ab_decide_after_hours is not None
               and p.dispatched_at + timedelta(hours=p.ab_decide_after_hours) <= now]
    for push_id in due:
        with uow:
            push = uow.session.get(PushRow, push_id)
            ranked = scores(uow, push)
            best = max(ranked, key=lambda s: (s.rate, -ord(s.variant[0])))
            taken = uow.session.execute(update(PushRow).where(PushRow.id == push_id, PushRow.winner.is_(None))
                                        .values(winner=best.variant).execution_options(synchronize_session=False))
            if taken.rowcount != 1:
                continue
            held = list(uow.session.scalars(select(DeliveryRow).where(
                DeliveryRow.push_id == push_id, DeliveryRow.variant == "*", DeliveryRow.state == P.DeliveryState.PENDING)
                .order_by(DeliveryRow.id)))
            for row in held:
                row.variant, row.next_attempt_at = best.variant, now
            if push.kind == P.PushKind.MASS and held:
                first = uow.session.scalar(select(func.max(DeliveryRow.batch_no)).where(DeliveryRow.push_id == push_id)) or 0
                _assign_batches(held, first=first)
            audit.record(uow, "system:push-ab", "push.ab.winner", "pushes", push.public_id, winner=best.variant,
                         scores={s.variant: round(s.rate, 4) for s in ranked}, released=len(held))
            uow.commit()
            decided += 1
            released += len(held)
    return Winners(decided, released)

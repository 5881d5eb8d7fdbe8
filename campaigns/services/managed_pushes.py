"""Pushes that another use case creates, cancels and follows inside its own transaction (a live
stream's announcement: the session, its announcement and the push commit together, or none).

The same rules as an operator's push: the variant is checked as ``create_push`` checks it
(template fields exist and render within 20 characters), the audience is a saved segment (found
by its rules, or created), the send time moves out of quiet hours as ``schedule`` moves it, and
the per-recipient rules — opt-outs, the frequency cap, WeChat's 4 mass sends per month — apply
when ``dispatch_due`` plans the push into the ledger, where the workers deliver it. These
functions never commit: the caller's unit of work does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from campaigns.domain import pushes as P
from campaigns.persistence.pushes import DeliveryRow, PushRow, SegmentRow
from campaigns.services.pushes import (
    PushView,
    SendingRules,
    _audience,
    _check_rules,
    _check_variant,
    _view,
)
from clinical_core.domain.errors import InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit


def audience_size(uow: UnitOfWork, rules: dict[str, Any]) -> int:
    """How many followers the rules reach now (opt-outs excluded), for a dry run."""
    return len(_audience(uow, _check_rules(rules), None))


def _segment_for(uow: UnitOfWork, rules: dict[str, Any], label: str, actor: str) -> SegmentRow:
    for row in uow.session.scalars(select(SegmentRow).order_by(SegmentRow.id)):
        if dict(row.rules) == rules:
            return row
    base = label.strip()[:70] or "人群"
    name, n = base, 1
    while uow.session.scalar(select(SegmentRow.id).where(SegmentRow.name == name)) is not None:
        n += 1
        name = f"{base}（{n}）"
    row = SegmentRow(public_id=new_public_id("seg"), name=name, rules=rules, created_at=uow.clock.now(),
                     created_by=actor[:80])
    uow.session.add(row)
    uow.session.flush()
    audit.record(uow, actor, "push.segment.create", "push_segments", row.public_id)
    return row


def plan(uow: UnitOfWork, *, actor: str, name: str, kind: str, audience_rules: dict[str, Any],
         audience_label: str, content: dict[str, Any], at: datetime | None,
         rules: SendingRules = SendingRules()) -> PushView:
    """Create a push and schedule it at ``at`` (now when None; moved out of quiet hours)."""
    try:
        push_kind = P.PushKind(kind)
    except ValueError:
        raise InvalidInput("推送类型应为 template（模板消息）或 mass（群发）", field="kind") from None
    name = name.strip()[:80]
    if not name:
        raise InvalidInput("推送名称不能为空", field="name")
    audience_rules = _check_rules(audience_rules)
    variant = _check_variant(uow, push_kind, content)
    segment = _segment_for(uow, audience_rules, audience_label, actor)
    now = uow.clock.now()
    when = rules.quiet.next_allowed(max(at or now, now), rules.tz)
    row = PushRow(public_id=new_public_id("push"), name=name, kind=push_kind,
                  status=P.push_transition(P.PushStatus.DRAFT, "schedule"), segment_id=segment.id,
                  variants={"A": variant}, weights={"A": 1}, ab_test_share=100, scheduled_at=when, created_at=now,
                  created_by=actor[:80])
    uow.session.add(row)
    uow.session.flush()
    audit.record(uow, actor, "push.create", "pushes", row.public_id, kind=push_kind.value, variants=1)
    audit.record(uow, actor, "push.schedule", "pushes", row.public_id, at=when.isoformat())
    return _view(uow, row, segment.name)


def _row(uow: UnitOfWork, ref: str) -> PushRow:
    q = select(PushRow).where(PushRow.public_id == ref)
    if uow.dialect == "postgresql":
        q = q.with_for_update()
    row = uow.session.scalar(q)
    if row is None:
        raise NotFound("推送不存在")
    return row


def cancel(uow: UnitOfWork, ref: str, *, actor: str) -> PushView:
    """Cancel unless already done or cancelled: rows not yet claimed are cancelled; rows in
    flight finish (a call already made cannot be recalled)."""
    push = _row(uow, ref)
    if push.status in (P.PushStatus.DONE, P.PushStatus.CANCELLED):
        return _view(uow, push)
    push.status = P.push_transition(push.status, "cancel", push.public_id)
    push.cancelled_at = uow.clock.now()
    result = uow.session.execute(update(DeliveryRow).where(
        DeliveryRow.push_id == push.id, DeliveryRow.state.in_(list(P.delivery_from("cancel")))
    ).values(state=P.delivery_to("cancel")).execution_options(synchronize_session=False))
    audit.record(uow, actor, "push.cancel", "pushes", push.public_id, rows=result.rowcount or 0)
    return _view(uow, push)


def views(uow: UnitOfWork, refs: list[str]) -> dict[str, PushView]:
    """The pushes' status and ledger counts by public id (unknown ids are left out)."""
    if not refs:
        return {}
    rows = uow.session.scalars(select(PushRow).where(PushRow.public_id.in_(refs)))
    return {r.public_id: _view(uow, r) for r in rows}

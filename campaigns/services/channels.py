"""Channels, their QR codes, and package-card batches (包裹卡).

WeChat calls happen before the rows are written (the ticket is needed) and only after every
limit has been checked locally: the permanent-code quota (100,000) is counted in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select

from campaigns.domain import limits as L
from campaigns.domain.channels import ChannelKind, card_scene, channel_scene, check_code
from campaigns.persistence.models import CardBatchPrescriptionRow, CardBatchRow, ChannelRow, QrCodeRow
from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import DrugRow
from clinical_core.persistence.prescription import PrescriptionRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

OPERATORS = frozenset({Role.ADMIN, Role.OPERATIONS})
CARD_BATCH_MAX = 5000


class QrApi(Protocol):
    """What this module needs from the WeChat client (wechatpy's ``qrcode.create``)."""

    qrcode: Any


@dataclass(frozen=True, slots=True)
class ChannelView:
    public_id: str
    code: str
    kind: str
    kind_label: str
    name: str
    qr_codes: int


@dataclass(frozen=True, slots=True)
class QrView:
    public_id: str
    channel: str
    scene: str
    permanent: bool
    ticket: str
    url: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class BatchView:
    public_id: str
    code: str
    channel: str
    size: int
    copy_text: str
    cards: list[QrView]


def _kind(kind: str) -> ChannelKind:
    try:
        return ChannelKind(kind)
    except ValueError:
        allowed = "、".join(k.value for k in ChannelKind)
        raise InvalidInput(f"渠道类型应为：{allowed}", field="kind") from None


def create_channel(uow: UnitOfWork, principal: Principal, code: str, kind: str, name: str) -> ChannelView:
    ensure_role(principal, OPERATORS)
    code, channel_kind = check_code(code), _kind(kind)
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise InvalidInput("渠道名称应为 1 到 80 个字", field="name")
    with uow:
        if uow.session.scalar(select(ChannelRow.id).where(ChannelRow.code == code)) is not None:
            raise Conflict(f"渠道编码 {code} 已存在")
        row = ChannelRow(public_id=new_public_id("chn"), code=code, kind=channel_kind.value, name=name,
                         created_at=uow.clock.now(), created_by=principal.actor)
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "channel.create", "channel", row.public_id, code=code, kind=kind)
        uow.commit()
    return ChannelView(row.public_id, code, channel_kind.value, channel_kind.label, name, 0)


def list_channels(uow: UnitOfWork, principal: Principal) -> list[ChannelView]:
    ensure_role(principal, OPERATORS)
    with uow:
        counts = (select(QrCodeRow.channel_id, func.count().label("n")).group_by(QrCodeRow.channel_id).subquery())
        rows = uow.session.execute(
            select(ChannelRow, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.channel_id == ChannelRow.id)
            .order_by(ChannelRow.code)).all()
        return [ChannelView(r.public_id, r.code, r.kind, ChannelKind(r.kind).label, r.name, int(n)) for r, n in rows]


def _channel(uow: UnitOfWork, code: str) -> ChannelRow:
    row = uow.session.scalar(select(ChannelRow).where(ChannelRow.code == code))
    if row is None:
        raise NotFound(f"未找到渠道 {code}", hint="先用 opsctl channels add 创建渠道")
    return row


def _permanent_room(uow: UnitOfWork, wanted: int) -> None:
    used = uow.session.scalar(select(func.count()).select_from(QrCodeRow).where(QrCodeRow.permanent)) or 0
    if used + wanted > L.QR_PERMANENT_MAX:
        raise RuleViolation("WX-QR-100K", f"永久二维码最多 {L.QR_PERMANENT_MAX} 个，已用 {used} 个，不足 {wanted} 个",
                            hint="改用临时二维码（--temporary 天数，最长 30 天）")


def _ask_wechat(wechat: QrApi, scene: str, temporary_days: int | None) -> dict[str, Any]:
    """One qrcode/create call. Called with no transaction open: the token store writes on its own."""
    permanent = temporary_days is None
    seconds = None if permanent else temporary_days * 86400
    L.check_qr_request(permanent=permanent, expire_seconds=seconds, scene=scene)
    body: dict[str, Any] = {"action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
                            "action_info": {"scene": {"scene_str": scene}}}
    if seconds is not None:
        body["expire_seconds"] = seconds
    result = dict(wechat.qrcode.create(body))
    result.setdefault("expire_seconds", seconds)
    return result


def _qr_row(uow: UnitOfWork, channel_id: int, scene: str, result: dict[str, Any], permanent: bool,
            batch_id: int | None = None) -> QrCodeRow:
    expires = None if permanent else uow.clock.now() + timedelta(seconds=int(result["expire_seconds"]))
    row = QrCodeRow(public_id=new_public_id("qr"), channel_id=channel_id, batch_id=batch_id, scene=scene,
                    permanent=permanent, ticket=result["ticket"], url=result.get("url"), expires_at=expires,
                    created_at=uow.clock.now())
    uow.session.add(row)
    return row


def _qr_view(row: QrCodeRow, channel_code: str) -> QrView:
    return QrView(row.public_id, channel_code, row.scene, row.permanent, row.ticket or "", row.url or "",
                  row.expires_at)


def create_qr(uow: UnitOfWork, principal: Principal, wechat: QrApi, channel_code: str,
              temporary_days: int | None = None) -> QrView:
    """A channel QR code: permanent (quota-checked) or temporary (1..30 days)."""
    ensure_role(principal, OPERATORS)
    if temporary_days is not None and not 1 <= temporary_days <= 30:
        raise InvalidInput("临时二维码有效期应为 1 到 30 天", field="temporary")
    code = check_code(channel_code)
    with uow:  # check first, with nothing written: WeChat is called outside any transaction
        channel = _channel(uow, code)
        if temporary_days is None:
            _permanent_room(uow, 1)
        n = (uow.session.scalar(select(func.count()).select_from(QrCodeRow)
                                .where(QrCodeRow.channel_id == channel.id)) or 0) + 1
    scene = channel_scene(code, n)
    result = _ask_wechat(wechat, scene, temporary_days)
    with uow:
        channel = _channel(uow, code)
        if temporary_days is None:
            _permanent_room(uow, 1)
        if uow.session.scalar(select(QrCodeRow.id).where(QrCodeRow.scene == scene)) is not None:
            raise Conflict(f"场景值 {scene} 已被并发创建，请重试")
        row = _qr_row(uow, channel.id, scene, result, temporary_days is None)
        uow.session.flush()
        audit.record(uow, principal.actor, "qr.create", "qr_code", row.public_id, channel=channel.code,
                     permanent=row.permanent)
        uow.commit()
    return _qr_view(row, channel.code)


def prescription_drugs_named(uow: UnitOfWork, text: str) -> list[str]:
    """Prescription drugs (generic or trade name) that ``text`` names: 广告法 §15 forbids promoting them."""
    rows = uow.session.execute(select(DrugRow.generic_name, DrugRow.trade_name).where(DrugRow.prescription_only)).all()
    found = {name for g, t in rows for name in (g, t) if name and len(name) >= 2 and name in text}
    return sorted(found)


def create_card_batch(uow: UnitOfWork, principal: Principal, wechat: QrApi, code: str, size: int,
                      copy_text: str, name: str | None = None) -> BatchView:
    """包裹卡批次: a package-card channel with one permanent QR code per card (scene ``pc:<batch>:<seq>``).
    The printed copy may not promote prescription drugs."""
    ensure_role(principal, OPERATORS)
    code = check_code(code)
    if not 1 <= size <= CARD_BATCH_MAX:
        raise InvalidInput(f"每批包裹卡数量应为 1 到 {CARD_BATCH_MAX} 张", field="size")
    copy_text = (copy_text or "").strip()
    if not 1 <= len(copy_text) <= 200:
        raise InvalidInput("包裹卡文案应为 1 到 200 个字", field="copy")
    def check(uow: UnitOfWork) -> None:
        drugs = prescription_drugs_named(uow, copy_text)
        if drugs:
            raise RuleViolation("ADV-15", f"包裹卡文案不得宣传处方药：{'、'.join(drugs)}")
        if uow.session.scalar(select(ChannelRow.id).where(ChannelRow.code == code)) is not None:
            raise Conflict(f"渠道编码 {code} 已存在")
        _permanent_room(uow, size)

    with uow:  # every rule before any call
        check(uow)
    scenes = [card_scene(code, seq) for seq in range(1, size + 1)]
    results = [_ask_wechat(wechat, scene, None) for scene in scenes]
    with uow:
        check(uow)
        now = uow.clock.now()
        channel = ChannelRow(public_id=new_public_id("chn"), code=code, kind=ChannelKind.PACKAGE_CARD.value,
                             name=name or f"包裹卡 {code}", created_at=now, created_by=principal.actor)
        uow.session.add(channel)
        uow.session.flush()
        batch = CardBatchRow(public_id=new_public_id("pcb"), code=code, channel_id=channel.id, size=size,
                             copy_text=copy_text, created_at=now)
        uow.session.add(batch)
        uow.session.flush()
        cards = [_qr_row(uow, channel.id, scene, result, True, batch.id) for scene, result in zip(scenes, results)]
        uow.session.flush()
        audit.record(uow, principal.actor, "card_batch.create", "card_batch", batch.public_id, size=size)
        uow.commit()
    return BatchView(batch.public_id, code, code, size, copy_text, [_qr_view(c, code) for c in cards])


def get_card_batch(uow: UnitOfWork, principal: Principal, code: str) -> BatchView:
    ensure_role(principal, OPERATORS)
    with uow:
        batch = uow.session.scalar(select(CardBatchRow).where(CardBatchRow.code == check_code(code)))
        if batch is None:
            raise NotFound(f"未找到包裹卡批次 {code}")
        cards = uow.session.scalars(select(QrCodeRow).where(QrCodeRow.batch_id == batch.id).order_by(QrCodeRow.scene))
        return BatchView(batch.public_id, batch.code, batch.code, batch.size, batch.copy_text,
                         [_qr_view(c, batch.code) for c in cards])


def find_qr(uow: UnitOfWork, principal: Principal, scene_or_id: str) -> QrView:
    ensure_role(principal, OPERATORS)
    with uow:
        row = uow.session.execute(
            select(QrCodeRow, ChannelRow.code).join(ChannelRow, ChannelRow.id == QrCodeRow.channel_id)
            .where(or_(QrCodeRow.scene == scene_or_id, QrCodeRow.public_id == scene_or_id))).first()
        if row is None:
            raise NotFound(f"未找到二维码 {scene_or_id}")
        return _qr_view(row[0], row[1])


@dataclass(frozen=True, slots=True)
class BatchLinkView:
    batch: str
    prescription: str
    linked_at: datetime
    parcels: int  # prescriptions now linked to the batch


def link_prescription(uow: UnitOfWork, principal: Principal, batch_code: str, prescription_public_id: str) -> BatchLinkView:
    """Tie a package-card batch to a prescription whose parcel carries its cards. A parcel carries
    one batch: linking it again to the same batch is a no-op, to another batch a conflict."""
    ensure_role(principal, OPERATORS)
    with uow:
        batch = uow.session.scalar(select(CardBatchRow).where(CardBatchRow.code == check_code(batch_code)))
        if batch is None:
            raise NotFound(f"未找到包裹卡批次 {batch_code}")
        rx = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == prescription_public_id))
        if rx is None:
            raise NotFound(f"未找到处方 {prescription_public_id}")
        if rx.status != "approved":
            raise RuleViolation("CARD-RX", "只有审方通过的处方才会配送，才能关联包裹卡批次")
        existing = uow.session.scalar(select(CardBatchPrescriptionRow)
                                      .where(CardBatchPrescriptionRow.prescription_id == rx.id))
        if existing is not None and existing.batch_id != batch.id:
            raise Conflict("该处方的包裹已关联其他包裹卡批次")
        linked_at = existing.linked_at if existing is not None else uow.clock.now()
        if existing is None:
            uow.session.add(CardBatchPrescriptionRow(batch_id=batch.id, prescription_id=rx.id, linked_at=linked_at,
                                                     linked_by=principal.actor))
            uow.session.flush()
            audit.record(uow, principal.actor, "card_batch.link", "card_batch", batch.public_id,
                         prescription=rx.public_id)
        parcels = uow.session.scalar(select(func.count()).select_from(CardBatchPrescriptionRow)
                                     .where(CardBatchPrescriptionRow.batch_id == batch.id)) or 0
        uow.commit()
    return BatchLinkView(batch.code, rx.public_id, linked_at, int(parcels))

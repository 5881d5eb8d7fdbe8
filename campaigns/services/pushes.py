"""Pushes: synced templates, saved audiences (segments), opt-outs, create / preview / schedule /
cancel / status, and the scheduled job that plans due pushes into the delivery ledger.

Planning (``dispatch_due``) is where the per-recipient rules apply, counted in the ledger itself
(rows pending, sending, sent or unknown count as "allocated", so two pushes planned one after the
other cannot both pass a cap): opt-outs, the frequency cap (N per D days, template and mass
together), and WeChat's 4 mass sends per user per natural month (Beijing time) — a recipient over
a limit is planned as ``skipped`` with the rule as its reason, so ``push status`` shows why.
Quiet hours hold the workers (``delivery.claim``) and shift a schedule that falls inside them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from campaigns.domain import pushes as P
from campaigns.persistence.models import ChannelRow, QrCodeRow
from campaigns.persistence.pushes import (
    DeliveryRow, OptOutRow, PushRow, SegmentRow, ShortLinkRow, WeChatTemplateRow,
)
from campaigns.services.render import SAMPLE, check_fields, render_fields
from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_identifier
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.models import DepartmentRow, FollowerRow, HisVisitRow, PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

OPERATORS = frozenset({Role.ADMIN, Role.OPERATIONS})
RULE_KEYS = frozenset({"tag", "department", "doctor", "consulted_within_days", "channel", "stage", "openids"})
STAGES = ("followed", "registered", "consulted")
ALLOCATED = [P.DeliveryState.PENDING, P.DeliveryState.SENDING, P.DeliveryState.SENT, P.DeliveryState.UNKNOWN]


class PushApi(Protocol):
    def templates(self) -> list[dict[str, Any]]: ...
    def tag_members(self, tag_id: int) -> list[str]: ...
    def template(self, openid: str, template_id: str, data: dict[str, str], *, url: str | None,
                 client_msg_id: str) -> Any: ...
    def preview(self, openid: str, message: dict[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class SendingRules:
    quiet: P.QuietHours = P.QuietHours()
    cap: P.FrequencyCap = P.FrequencyCap()
    tz: tzinfo = SHANGHAI
    mass_chunk_max: int = P.MASS_CHUNK_MAX


@dataclass(frozen=True, slots=True)
class TemplateView:
    template_id: str
    title: str
    fields: list[str]
    active: bool


@dataclass(frozen=True, slots=True)
class SegmentView:
    public_id: str
    name: str
    rules: dict[str, Any]
    size: int


@dataclass(frozen=True, slots=True)
class PushView:
    public_id: str
    name: str
    kind: str
    status: str
    status_label: str
    segment: str | None
    scheduled_at: datetime | None
    audience_size: int | None
    variants: list[str]
    winner: str | None
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Planned:
    pushes: int
    rows: int
    skipped: int


@dataclass(frozen=True, slots=True)
class PreviewResult:
    recipients: list[str]  # masked openids
    rendered: dict[str, str]
    sent: int
    dry_run: bool


# -- templates ----------------------------------------------------------------------------------------
_FIELD = re.compile(r"\{\{\s*(\w+)\.DATA\s*\}\}")


def sync_templates(uow: UnitOfWork, principal: Principal, api: PushApi) -> list[TemplateView]:
    ensure_role(principal, OPERATORS)
    listed = api.templates()
    with uow:
        now = uow.clock.now()
        existing = {t.template_id: t for t in uow.session.scalars(select(WeChatTemplateRow))}
        seen = set()
        for item in listed:
            tid = str(item["template_id"])
            seen.add(tid)
            fields = _FIELD.findall(str(item.get("content") or ""))
            row = existing.get(tid)
            if row is None:
                row = WeChatTemplateRow(template_id=tid, title=str(item.get("title") or "")[:80],
                                        content=str(item.get("content") or ""), fields=fields, synced_at=now)
                uow.session.add(row)
            row.title, row.content, row.fields, row.synced_at, row.active = (
                str(item.get("title") or "")[:80], str(item.get("content") or ""), fields, now, True)
        for tid, row in existing.items():
            if tid not in seen:
                row.active = False
        audit.record(uow, principal.username, "push.templates.sync", "wechat_templates", "*", count=len(listed))
        uow.commit()
        rows = list(uow.session.scalars(select(WeChatTemplateRow).order_by(WeChatTemplateRow.template_id)))
        return [TemplateView(r.template_id, r.title, list(r.fields), r.active) for r in rows]


# -- segments -----------------------------------------------------------------------------------------
def _check_rules(rules: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(rules) - RULE_KEYS)
    if unknown:
        raise InvalidInput(f"不支持的人群条件：{'、'.join(unknown)}", field="rules")
    if "stage" in rules and rules["stage"] not in STAGES:
        raise InvalidInput(f"漏斗阶段应为：{'、'.join(STAGES)}", field="stage")
    if "consulted_within_days" in rules:
        days = rules["consulted_within_days"]
        if not isinstance(days, int) or not 1 <= days <= 3650:
            raise InvalidInput("最近问诊天数应为 1 到 3650", field="consulted_within_days")
    if "tag" in rules and not isinstance(rules["tag"], int):
        raise InvalidInput("微信标签应为标签 id（整数）", field="tag")
    if "openids" in rules and not (isinstance(rules["openids"], list) and all(isinstance(o, str) for o in rules["openids"])):
        raise InvalidInput("openids 应为 openid 列表", field="openids")
    return dict(rules)


def create_segment(uow: UnitOfWork, principal: Principal, name: str, rules: dict[str, Any],
                   api: PushApi | None = None) -> SegmentView:
    ensure_role(principal, OPERATORS)
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise InvalidInput("人群名称应为 1 到 80 个字", field="name")
    rules = _check_rules(rules)
    with uow:
        if uow.session.scalar(select(SegmentRow.id).where(SegmentRow.name == name)) is not None:
            raise Conflict("已有同名人群")
        row = SegmentRow(public_id=new_public_id("seg"), name=name, rules=rules, created_at=uow.clock.now(),
                         created_by=principal.username)
        uow.session.add(row)
        size = len(_audience(uow, rules, api))
        audit.record(uow, principal.username, "push.segment.create", "push_segments", row.public_id, size=size)
        uow.commit()
        return SegmentView(row.public_id, name, rules, size)


def list_segments(uow: UnitOfWork, principal: Principal, api: PushApi | None = None) -> list[SegmentView]:
    ensure_role(principal, OPERATORS)
    with uow:
        rows = list(uow.session.scalars(select(SegmentRow).order_by(SegmentRow.id)))
        return [SegmentView(r.public_id, r.name, dict(r.rules), len(_audience(uow, r.rules, api))) for r in rows]


def _segment(uow: UnitOfWork, ref: str) -> SegmentRow:
    row = uow.session.scalar(select(SegmentRow).where(or_(SegmentRow.public_id == ref, SegmentRow.name == ref)))
    if row is None:
        raise NotFound("人群不存在")
    return row


def _audience(uow: UnitOfWork, rules: dict[str, Any], api: PushApi | None) -> dict[str, int | None]:
    """openid -> patient id of the segment's current followers, opt-outs excluded. One SQL query
    (plus the tag's members from WeChat when the segment names a WeChat tag)."""
    now = uow.clock.now()
    patient_id = func.coalesce(FollowerRow.patient_id, PatientRow.id)
    q = (select(FollowerRow.openid, patient_id)
         .outerjoin(PatientRow, PatientRow.openid == FollowerRow.openid)
         .where(FollowerRow.unsubscribed_at.is_(None), ~FollowerRow.openid.in_(select(OptOutRow.openid))))
    if "openids" in rules:
        q = q.where(FollowerRow.openid.in_(rules["openids"]))
    if "channel" in rules:
        q = q.where(FollowerRow.scene.in_(select(QrCodeRow.scene).join(ChannelRow, ChannelRow.id == QrCodeRow.channel_id)
                                          .where(ChannelRow.code == rules["channel"])))
    consulted = select(ConsultationRow.patient_id)
    if "department" in rules:
        dept = select(DepartmentRow.id).where(DepartmentRow.code == rules["department"]).scalar_subquery()
        q = q.where(or_(patient_id.in_(consulted.where(ConsultationRow.department_id == dept)),
                        patient_id.in_(select(HisVisitRow.patient_id).where(HisVisitRow.department_id == dept)),
                        patient_id.in_(consulted.join(StaffRow, StaffRow.id == ConsultationRow.doctor_id)
                                       .where(StaffRow.department_id == dept))))
    if "doctor" in rules:
        doctor = select(StaffRow.id).where(or_(StaffRow.employee_no == rules["doctor"],
                                               StaffRow.public_id == rules["doctor"])).scalar_subquery()
        q = q.where(patient_id.in_(consulted.where(ConsultationRow.doctor_id == doctor)))
    if "consulted_within_days" in rules:
        since = now - timedelta(days=int(rules["consulted_within_days"]))
        q = q.where(patient_id.in_(consulted.where(ConsultationRow.created_at >= since)))
    if "stage" in rules:
        has_consult = patient_id.in_(consulted)
        q = q.where({"followed": patient_id.is_(None),
                     "registered": and_(patient_id.is_not(None), ~has_consult),
                     "consulted": has_consult}[rules["stage"]])
    found = {openid: pid for openid, pid in uow.session.execute(q)}
    if "tag" in rules:
        if api is None:
            raise InvalidInput("按微信标签圈人需要连接微信接口", field="tag")
        members = set(api.tag_members(int(rules["tag"])))
        found = {o: p for o, p in found.items() if o in members}
    return found


# -- opt-outs -----------------------------------------------------------------------------------------
def opt_out(uow: UnitOfWork, principal: Principal, openid: str, source: str | None = None) -> bool:
    ensure_role(principal, OPERATORS | {Role.CUSTOMER_SERVICE})
    with uow:
        if uow.session.scalar(select(OptOutRow.id).where(OptOutRow.openid == openid)) is not None:
            return False
        uow.session.add(OptOutRow(openid=openid, at=uow.clock.now(), source=(source or principal.username)[:40]))
        audit.record(uow, principal.username, "push.opt_out", "push_opt_outs", mask_identifier(openid))
        uow.commit()
        return True


def opt_in(uow: UnitOfWork, principal: Principal, openid: str) -> bool:
    ensure_role(principal, OPERATORS | {Role.CUSTOMER_SERVICE})
    with uow:
        row = uow.session.scalar(select(OptOutRow).where(OptOutRow.openid == openid))
        if row is None:
            return False
        uow.session.delete(row)
        audit.record(uow, principal.username, "push.opt_in", "push_opt_outs", mask_identifier(openid))
        uow.commit()
        return True


# -- pushes -------------------------------------------------------------------------------------------
def _check_variant(uow: UnitOfWork, kind: P.PushKind, content: dict[str, Any]) -> dict[str, Any]:
    if kind is P.PushKind.TEMPLATE:
        tid = content.get("template_id")
        template = uow.session.scalar(select(WeChatTemplateRow).where(WeChatTemplateRow.template_id == tid,
                                                                      WeChatTemplateRow.active.is_(True)))
        if template is None:
            raise NotFound("模板不存在或已从微信删除，请先 opsctl push templates sync")
        fields = {str(k): str(v) for k, v in (content.get("fields") or {}).items()}
        check_fields(fields, list(template.fields))
        url = content.get("url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise InvalidInput("链接应以 http:// 或 https:// 开头", field="url")
        return {"template_id": tid, "fields": fields, "url": url}
    try:
        msgtype = P.MassType(content.get("msgtype") or "text")
    except ValueError:
        raise InvalidInput("群发类型应为 text、image 或 mpnews（图文）", field="msgtype") from None
    if msgtype is P.MassType.TEXT:
        text = str(content.get("text") or "").strip()
        if not 1 <= len(text) <= 600:
            raise InvalidInput("群发文字应为 1 到 600 个字", field="text")
        return {"msgtype": "text", "text": text}
    media = str(content.get("media_id") or "").strip()
    if not media:
        raise InvalidInput("图片或图文群发需要素材 media_id", field="media_id")
    return {"msgtype": msgtype.value, "media_id": media}


def create_push(uow: UnitOfWork, principal: Principal, *, name: str, kind: str, segment: str,
                variants: dict[str, dict[str, Any]], weights: dict[str, int] | None = None,
                ab_test_share: int = 100, ab_metric: str | None = None, ab_decide_after_hours: int | None = None,
                link: str | None = None) -> PushView:
    """A draft push. Several variants make an A/B test (``ab_test_share`` % of the audience split by
    ``weights``; the rest waits for the winner)."""
    ensure_role(principal, OPERATORS)
    try:
        push_kind = P.PushKind(kind)
    except ValueError:
        raise InvalidInput("推送类型应为 template（模板消息）或 mass（群发）", field="kind") from None
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise InvalidInput("推送名称应为 1 到 80 个字", field="name")
    if not variants or len(variants) > 4 or any(not re.fullmatch(r"[A-D]", v) for v in variants):
        raise InvalidInput("变体名称应为 A 到 D，最多 4 个", field="variants")
    weights = {v: int((weights or {}).get(v, 1)) for v in variants}
    if len(variants) > 1:
        if ab_metric not in ("ctr", "conversion"):
            raise InvalidInput("A/B 测试需要胜出指标：ctr（点击率）或 conversion（转化）", field="ab_metric")
        if not ab_decide_after_hours or not 1 <= ab_decide_after_hours <= 24 * 14:
            raise InvalidInput("A/B 测试需要判定时间（1 到 336 小时）", field="ab_decide_after_hours")
        if not 1 <= ab_test_share <= 100:
            raise InvalidInput("A/B 测试人群比例应为 1 到 100", field="ab_test_share")
    with uow:
        checked = {v: _check_variant(uow, push_kind, c) for v, c in sorted(variants.items())}
        segment_row = _segment(uow, segment)
        now = uow.clock.now()
        row = PushRow(public_id=new_public_id("push"), name=name, kind=push_kind, status=P.PushStatus.DRAFT,
                      segment_id=segment_row.id, variants=checked, weights=weights,
                      ab_test_share=ab_test_share if len(variants) > 1 else 100,
                      ab_metric=ab_metric if len(variants) > 1 else None,
                      ab_decide_after_hours=ab_decide_after_hours if len(variants) > 1 else None,
                      created_at=now, created_by=principal.username)
        uow.session.add(row)
        uow.session.flush()
        if link:
            if not link.startswith(("http://", "https://")):
                raise InvalidInput("链接应以 http:// 或 https:// 开头", field="link")
            for v in checked:
                uow.session.add(ShortLinkRow(code=secrets.token_urlsafe(6)[:8], push_id=row.id, variant=v,
                                             target=link[:1000], created_at=now))
        audit.record(uow, principal.username, "push.create", "pushes", row.public_id, kind=push_kind.value,
                     variants=len(checked))
        uow.commit()
        return _view(uow, row, segment_row.name)


def _push(uow: UnitOfWork, ref: str, *, lock: bool = False) -> PushRow:
    q = select(PushRow).where(PushRow.public_id == ref)
    if lock and uow.dialect == "postgresql":
        q = q.with_for_update()
    row = uow.session.scalar(q)
    if row is None:
        raise NotFound("推送不存在")
    return row


def _view(uow: UnitOfWork, row: PushRow, segment: str | None = None) -> PushView:
    counts = {state: n for state, n in uow.session.execute(
        select(DeliveryRow.state, func.count()).where(DeliveryRow.push_id == row.id).group_by(DeliveryRow.state))}
    if segment is None and row.segment_id:
        segment = uow.session.scalar(select(SegmentRow.name).where(SegmentRow.id == row.segment_id))
    return PushView(row.public_id, row.name, row.kind, row.status, P.PUSH_LABELS[P.PushStatus(row.status)], segment,
                    row.scheduled_at, row.audience_size, sorted(row.variants), row.winner,
                    {s.value: int(counts.get(s.value, 0)) for s in P.DeliveryState})


def status(uow: UnitOfWork, principal: Principal, ref: str | None = None) -> list[PushView]:
    ensure_role(principal, OPERATORS)
    with uow:
        rows = [_push(uow, ref)] if ref else list(uow.session.scalars(
            select(PushRow).where(PushRow.purpose.is_(None)).order_by(PushRow.id)))  # not follow-up steps' pushes
        return [_view(uow, r) for r in rows]


def preview(uow: UnitOfWork, principal: Principal, api: PushApi, ref: str, openids: list[str], *,
            variant: str | None = None, dry_run: bool = False) -> PreviewResult:
    """Send the push to named test openids (template: a real template message rendered with sample
    variables; mass: WeChat's preview API). Previews are not in the ledger and not counted."""
    ensure_role(principal, OPERATORS)
    if not openids:
        raise InvalidInput("请用 --to 指定至少一个测试 openid", field="to")
    with uow:
        push = _push(uow, ref)
        name = variant or sorted(push.variants)[0]
        content = push.variants.get(name)
        if content is None:
            raise NotFound("变体不存在")
        kind = push.kind
        audit.record(uow, principal.username, "push.preview", "pushes", push.public_id, to=len(openids),
                     dry_run=dry_run)
        uow.commit()
    rendered = render_fields(content["fields"], SAMPLE) if kind == P.PushKind.TEMPLATE else \
        {"text": content.get("text") or content.get("media_id", "")}
    sent = 0
    if not dry_run:
        for i, openid in enumerate(openids):
            if kind == P.PushKind.TEMPLATE:
                result = api.template(openid, content["template_id"], rendered, url=content.get("url"),
                                      client_msg_id=f"preview:{ref}:{i}:{secrets.token_hex(3)}")
            else:
                result = api.preview(openid, content)
            sent += getattr(result, "errcode", None) == 0
    return PreviewResult([mask_identifier(o) for o in openids], rendered, sent, dry_run)


def schedule(uow: UnitOfWork, principal: Principal, ref: str, at: datetime | None,
             rules: SendingRules = SendingRules()) -> PushView:
    """Schedule (or re-schedule) a draft; a time inside quiet hours moves to their end."""
    ensure_role(principal, OPERATORS)
    with uow:
        push = _push(uow, ref, lock=True)
        now = uow.clock.now()
        when = max(at or now, now)
        when = rules.quiet.next_allowed(when, rules.tz)
        push.status = P.push_transition(push.status, "schedule", push.public_id)
        push.scheduled_at = when
        audit.record(uow, principal.username, "push.schedule", "pushes", push.public_id, at=when.isoformat())
        uow.commit()
        return _view(uow, push)


def cancel(uow: UnitOfWork, principal: Principal, ref: str) -> PushView:
    """Cancel: rows not yet claimed are cancelled; rows in flight finish (they cannot be recalled)."""
    ensure_role(principal, OPERATORS)
    with uow:
        push = _push(uow, ref, lock=True)
        push.status = P.push_transition(push.status, "cancel", push.public_id)
        push.cancelled_at = uow.clock.now()
        result = uow.session.execute(update(DeliveryRow).where(
            DeliveryRow.push_id == push.id, DeliveryRow.state.in_(list(P.delivery_from("cancel")))
        ).values(state=P.delivery_to("cancel")).execution_options(synchronize_session=False))
        audit.record(uow, principal.username, "push.cancel", "pushes", push.public_id, rows=result.rowcount or 0)
        uow.commit()
        return _view(uow, push)


def count_audience(uow: UnitOfWork, principal: Principal, segment: str, api: PushApi | None = None) -> int:
    ensure_role(principal, OPERATORS)
    with uow:
        return len(_audience(uow, _segment(uow, segment).rules, api))


# -- planning (scheduled job) -------------------------------------------------------------------------
def dispatch_due(uow: UnitOfWork, now: datetime, *, api: PushApi | None = None,
                 rules: SendingRules = SendingRules(), limit: int = 20) -> Planned:
    """Scheduled job: plan every push due by ``now`` into the ledger (one transaction per push).
    Idempotent and safe concurrently: the push row moves scheduled → sending with a conditional
    UPDATE, so one run plans it; the ledger's unique (push, openid) forbids a second row."""
    pushes = planned = skipped = 0
    with uow:
        due = list(uow.session.scalars(select(PushRow.id).where(
            PushRow.status == P.PushStatus.SCHEDULED, PushRow.scheduled_at <= now).order_by(PushRow.scheduled_at)
            .limit(limit)))
    for push_id in due:
        with uow:
            taken = uow.session.execute(update(PushRow).where(
                PushRow.id == push_id, PushRow.status == P.PushStatus.SCHEDULED
            ).values(status=P.push_transition(P.PushStatus.SCHEDULED, "dispatch"), dispatched_at=now)
                .execution_options(synchronize_session=False))
            if taken.rowcount != 1:
                continue
            push = uow.session.get(PushRow, push_id)
            segment = uow.session.get(SegmentRow, push.segment_id)
            audience = _audience(uow, segment.rules if segment else {}, api)
            rows, n_skipped = _plan(uow, push, audience, now, rules)
            push.audience_size = len(audience)
            try:
                uow.session.add_all(rows)
                audit.record(uow, "system:push-dispatch", "push.dispatch", "pushes", push.public_id,
                             planned=len(rows) - n_skipped, skipped=n_skipped)
                uow.commit()
            except IntegrityError:  # planned concurrently by another run: theirs stands
                continue
            pushes += 1
            planned += len(rows) - n_skipped
            skipped += n_skipped
    return Planned(pushes, planned, skipped)


def allocated_counts(uow: UnitOfWork, openids: list[str], since: datetime, kind: str | None) -> dict[str, int]:
    """Ledger rows planned for each openid since since (the frequency cap and the monthly mass rule;
    follow-up steps delivered through the ledger count too)."""
    out: dict[str, int] = {}
    for start in range(0, len(openids), 5000):
        chunk = openids[start:start + 5000]
        q = (select(DeliveryRow.openid, func.count()).join(PushRow, PushRow.id == DeliveryRow.push_id)
             .where(DeliveryRow.openid.in_(chunk), DeliveryRow.state.in_([s.value for s in ALLOCATED]),
                    DeliveryRow.created_at >= since).group_by(DeliveryRow.openid))
        if kind is not None:
            q = q.where(PushRow.kind == kind)
        out.update({o: int(n) for o, n in uow.session.execute(q)})
    return out


def _plan(uow: UnitOfWork, push: PushRow, audience: dict[str, int | None], now: datetime,
          rules: SendingRules) -> tuple[list[DeliveryRow], int]:
    openids = sorted(audience)
    recent = allocated_counts(uow, openids, now - timedelta(days=rules.cap.days), None)
    monthly = allocated_counts(uow, openids, P.month_start(now, rules.tz), P.PushKind.MASS) if push.kind == P.PushKind.MASS \
        else {}
    variants = sorted(push.variants)
    ab = len(variants) > 1
    rows: list[DeliveryRow] = []
    skipped = 0
    eligible: list[DeliveryRow] = []
    for openid in openids:
        reason = None
        if not rules.cap.allows(recent.get(openid, 0)):
            reason = "frequency_cap"
        elif push.kind == P.PushKind.MASS and not P.mass_month_allows(monthly.get(openid, 0)):
            reason = "mass_monthly_4"
        variant = variants[0]
        if ab:
            in_test = P.variant_of(openid, {"t": push.ab_test_share, "h": 100 - push.ab_test_share},
                                   push.public_id + ":test") == "t" if push.ab_test_share < 100 else True
            variant = P.variant_of(openid, dict(push.weights), push.public_id) if in_test else "*"
        row = DeliveryRow(push_id=push.id, openid=openid, patient_id=audience[openid], variant=variant,
                          state=P.DeliveryState.SKIPPED if reason else P.DeliveryState.PENDING, error=reason,
                          attempts=0, next_attempt_at=now, created_at=now)
        rows.append(row)
        if reason:
            skipped += 1
        else:
            eligible.append(row)
    if push.kind == P.PushKind.MASS:
        _assign_batches(eligible, rules.mass_chunk_max)
        skipped = sum(r.state == P.DeliveryState.SKIPPED for r in rows)
    return rows, skipped


def _assign_batches(rows: list[DeliveryRow], chunk_max: int = P.MASS_CHUNK_MAX, first: int = 0) -> None:
    """Mass sends: per variant, chunks of 2..10,000 openids (WeChat's limits); a lone recipient
    cannot be sent by openid list, so it is skipped with the reason."""
    by_variant: dict[str, list[DeliveryRow]] = {}
    for row in rows:
        by_variant.setdefault(row.variant, []).append(row)
    batch_no = first
    for variant in sorted(by_variant):
        group = by_variant[variant]
        if variant == "*":
            continue  # batches are assigned when the winner is known
        if len(group) < P.MASS_CHUNK_MIN:
            for row in group:
                row.state, row.error = P.DeliveryState.SKIPPED, "mass_needs_2"
            continue
        start = 0
        for size in P.chunk_sizes(len(group), maximum=chunk_max):
            batch_no += 1
            for row in group[start:start + size]:
                row.batch_no = batch_no
            start += size

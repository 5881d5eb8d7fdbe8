"""消息推送: the push delivery ledger and the tracked short links (``campaigns.persistence.pushes``).

A delivery row is one (push, recipient). Its outcome counts in the period the push planned it
(``created_at``): a push sent late on the 31st is judged with its own month even when some of its
rows settle after midnight, and failed or unknown rows carry no settling instant of their own.
Delivery rate = sent / (sent + failed + unknown): rows still pending, skipped by a rule or
cancelled are no delivery attempt. Clicks are the short links' hits, staff previews excluded.
Click-through = distinct recipients of a sent delivery who clicked one of that push's links,
over the sent deliveries. ``channel`` is the push kind (template / mass) for deliveries and
the click's channel for clicks; ``push`` is the push's name.
"""

from __future__ import annotations

from sqlalchemy import Integer, Select, case, cast, literal, select

from campaigns.persistence.pushes import (
    DeliveryRow,
    LinkClickRow,
    PushRow,
    ShortLinkRow,
)
from reports.metrics.registry import Agg, Metric, Unit, register

PUSH = "消息推送"
ATTEMPTED = ("sent", "failed", "unknown")
PREVIEW = "preview"  # staff checking a link before sending


def _deliveries(*extra: object) -> Select:
    return (select(DeliveryRow.created_at.label("at"), PushRow.kind.label("channel"), PushRow.name.label("push"), *extra)
            .select_from(DeliveryRow).join(PushRow, PushRow.id == DeliveryRow.push_id)
            .where(PushRow.purpose.is_(None)))  # follow-up steps' rows are counted by the follow-up metrics


def _in_state(*states: str) -> Select:
    return _deliveries(literal(1).label("value")).where(DeliveryRow.state.in_(states))


register(Metric(
    "push_deliveries_planned", "推送计划人次", Unit.COUNT, PUSH, Agg.COUNT, lambda: _deliveries(literal(1).label("value")),
    ("channel", "push"), unit_label="人次",
    action="按科室和病种细分推送人群，避免对同一批患者重复群发"))

register(Metric(
    "push_deliveries_sent", "推送送达人次", Unit.COUNT, PUSH, Agg.COUNT, lambda: _in_state("sent"),
    ("channel", "push"), better="up", unit_label="人次",
    action="把随访提醒、续方提醒等服务通知改为模板消息按时推送，扩大有效触达"))

register(Metric(
    "push_deliveries_failed", "推送失败人次", Unit.COUNT, PUSH, Agg.COUNT, lambda: _in_state("failed"),
    ("channel", "push"), better="down", unit_label="人次",
    action="核对失败原因（已取关、拒收、模板失效），清理无效 openid 并重新同步模板"))

register(Metric(
    "push_deliveries_unknown", "推送结果待核对人次", Unit.COUNT, PUSH, Agg.COUNT, lambda: _in_state("unknown"),
    ("channel", "push"), better="down", unit_label="人次",
    action="对超时未应答的投递逐条与微信发送记录核对，并检查推送高峰时段的网络和接口限流"))

register(Metric(
    "push_delivery_rate", "推送送达率", Unit.RATIO, PUSH, Agg.RATIO,
    lambda: _deliveries(cast(case((DeliveryRow.state == "sent", 1), else_=0), Integer).label("value"),
                        literal(1).label("den")).where(DeliveryRow.state.in_(ATTEMPTED)),
    ("channel", "push"), better="up", min_base=20,
    action="送达率低的推送先排查模板和受众：剔除已取关用户，群发改在白天非高峰时段发送"))


def _clicks() -> Select:
    return (select(LinkClickRow.at.label("at"), literal(1).label("value"), LinkClickRow.channel.label("channel"),
                   PushRow.name.label("push"))
            .select_from(LinkClickRow).join(ShortLinkRow, ShortLinkRow.id == LinkClickRow.link_id)
            .join(PushRow, PushRow.id == ShortLinkRow.push_id).where(LinkClickRow.channel != PREVIEW))


register(Metric(
    "push_clicks", "推送链接点击", Unit.COUNT, PUSH, Agg.COUNT, _clicks, ("channel", "push"), better="up",
    action="推送标题写明患者能得到的服务（如“复诊提醒·点此预约”），链接直达问诊或预约页"))


def _click_through() -> Select:
    clicked = (select(ShortLinkRow.push_id.label("push_id"), LinkClickRow.openid.label("openid"))
               .join(LinkClickRow, LinkClickRow.link_id == ShortLinkRow.id)
               .where(LinkClickRow.channel != PREVIEW, LinkClickRow.openid.is_not(None))
               .distinct().subquery("clicked"))
    value = cast(case((clicked.c.openid.is_not(None), 1), else_=0), Integer)
    return (_deliveries(value.label("value"), literal(1).label("den"))
            .outerjoin(clicked, (clicked.c.push_id == DeliveryRow.push_id) & (clicked.c.openid == DeliveryRow.openid))
            .where(DeliveryRow.state == "sent"))


register(Metric(
    "push_click_through", "推送点击率（点击人数/送达人数）", Unit.RATIO, PUSH, Agg.RATIO, _click_through,
    ("channel", "push"), better="up", min_base=20,
    action="对点击率低的推送做 A/B 测试：比较标题和首段文案，两周后保留点击率高的版本"))

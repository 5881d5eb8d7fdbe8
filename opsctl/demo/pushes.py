"""Demo step: the month's pushes scheduled and delivered through the sandbox WeChat server, by the
delivery ledger's worker, with faults (10 % of calls answered -1) and the real callback."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from clinical_core.domain.time import SHANGHAI
from opsctl.demo.context import OPERATOR, DemoContext


def step_pushes(ctx: DemoContext) -> None:
    """A month of pushes: weekly health-education mass sends, follow-up reminders by template message."""
    from fastapi.testclient import TestClient

    from campaigns.adapters.push_sender import WeChatPushSender
    from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat
    from campaigns.adapters.wechat_client import OpsWeChatClient, SharedTokenStore
    from campaigns.domain import pushes as P
    from campaigns.persistence.pushes import DeliveryRow
    from campaigns.services import delivery, pushes
    from campaigns.services.render import make_renderer
    from clinical_core.persistence.models import FollowerRow
    from opsctl.http.app import create_app

    settings = ctx.container.settings
    wx = settings.wechat
    uow = ctx.container.uow
    rng = random.Random(ctx.plan.seed + 5)
    rules = pushes.SendingRules(quiet=P.QuietHours.parse(settings.push.quiet_hours),
                                cap=P.FrequencyCap(settings.push.cap_count, settings.push.cap_days))
    worker_rules = delivery.Rules(quiet=rules.quiet, retry_delays=(0, 0, 0, 0, 0))
    app = create_app(settings, ctx.container)
    with TestClient(app, base_url="http://demo") as http:
        sandbox = SandboxWeChat(wx.app_id, wx.app_secret.get_secret_value(), now=ctx.clock.now, seed=ctx.plan.seed + 5)
        server = SandboxServer(
            sandbox, callback_url="/wechat/callback", callback_token=wx.callback_token.get_secret_value(),
            encoding_aes_key=wx.encoding_aes_key.get_secret_value() if wx.encoding_aes_key else None,
            deliver=lambda url, body: http.post(url, content=body, headers={"Content-Type": "text/xml"}).status_code)
        with server:
            with uow() as u:  # the account's current followers, as WeChat knows them
                openids = list(u.session.scalars(select(FollowerRow.openid).where(FollowerRow.unsubscribed_at.is_(None))
                                                 .order_by(FollowerRow.id)))
            for openid in openids:
                sandbox.user_follows(openid)
            sandbox.pending_events.clear()
            sender = WeChatPushSender(OpsWeChatClient(wx.app_id, wx.app_secret.get_secret_value(),
                                                      SharedTokenStore(uow, wx.app_id), base_url=server.base_url,
                                                      sleep=lambda _s: None))
            start = datetime.combine(ctx.plan.start, time(9), tzinfo=SHANGHAI).astimezone(UTC)
            ctx.clock.current = start
            pushes.sync_templates(uow(), OPERATOR, sender)
            everyone = pushes.create_segment(uow(), OPERATOR, "全部关注者", {})
            patients = pushes.create_segment(uow(), OPERATOR, "已问诊患者", {"stage": "consulted"})
            if len(openids) > 3:
                pushes.opt_out(uow(), OPERATOR, rng.choice(openids), "menu")
            planned: list[tuple[str, datetime]] = []
            for week in range(5):  # Monday-morning health education (the 5th meets WeChat's 4-a-month rule)
                view = pushes.create_push(uow(), OPERATOR, name=f"第{week + 1}周健康科普", kind="mass",
                                          segment=everyone.name,
                                          variants={"A": {"msgtype": "text", "text": "本周健康科普：秋冬季心血管保健"}})
                planned.append((view.public_id, start + timedelta(days=7 * week)))
            for week in range(4):  # follow-up reminders for patients, one asked for 22:30 (quiet hours)
                view = pushes.create_push(uow(), OPERATOR, name=f"复诊提醒{week + 1}", kind="template",
                                          segment=patients.name, variants={"A": {
                                              "template_id": "tpl_sandbox_followup",
                                              "fields": {"first": "{{ patient.salutation }}，请按时复诊",
                                                         "keyword1": "{{ doctor.name if doctor is defined else '主诊医生' }}",
                                                         "keyword2": "复诊与用药评估"}}})
                hour = 22 if week == 1 else 10
                planned.append((view.public_id, start + timedelta(days=7 * week + 2, hours=hour - 9, minutes=30)))
            for push_id, at in planned:
                pushes.schedule(uow(), OPERATOR, push_id, at, rules)
            deferred = sum(1 for v in pushes.status(uow(), OPERATOR) if v.scheduled_at is not None
                           and v.scheduled_at.astimezone(SHANGHAI).hour == 8)
            sandbox.failure_share = 0.10
            render = make_renderer(settings.http.public_base_url)
            totals = Counter[str]()
            for hour in range(ctx.plan.days * 24):  # the scheduler's ticks, hourly, over the month
                ctx.clock.current = start + timedelta(hours=hour)
                pushes.dispatch_due(uow(), ctx.clock.now(), api=sender, rules=rules)
                counts = delivery.run_worker(uow, sender, render, rules=worker_rules, until_idle=True, concurrency=2,
                                             sleep=lambda _s: None)
                totals.update(sent=counts.sent, retried=counts.retried, failed=counts.failed)
                server.flush_events()
                if hour % 6 == 0:
                    delivery.settle_unknown(uow(), ctx.clock.now(), sender=sender, render=render)
            sandbox.failure_share = 0.0
            received = Counter(m["touser"] for m in sandbox.template_sent)
            received.update(o for job in sandbox.mass_sent for o in job["sent"])
    with uow() as u:
        states = dict(u.session.execute(select(DeliveryRow.state, func.count()).group_by(DeliveryRow.state)).all())
        reasons = dict(u.session.execute(select(DeliveryRow.error, func.count())
                                         .where(DeliveryRow.state == "skipped").group_by(DeliveryRow.error)).all())
    views = pushes.status(uow(), OPERATOR)
    ctx.add("推送", len(views), f"群发 5 条（每周一）、模板消息 4 条；{deferred} 条排在免打扰时段，顺延到 08:00")
    ctx.add("推送送达（台账）", states.get("sent", 0),
            f"微信侧收到 {sum(received.values())} 条；故障注入 10%，稍后重试 {totals['retried']} 次，无重复")
    ctx.add("按规则跳过", sum(reasons.values()),
            "；".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: str(kv[0]))) or "无")
    ctx.add("模板消息失败", states.get("failed", 0), "变量缺失或 20 字规则：不发送，不截断")

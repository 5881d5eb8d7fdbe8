"""Demo step: the month's live streams announced through the sandbox WeChat server — a push to
each stream's department followers through the push engine and its delivery ledger, a task per
community group that the operators post and mark, one stream moved and one cancelled."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from clinical_core.domain.errors import RuleViolation
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence import models as m
from opsctl.demo.context import OPERATOR, DemoContext

TOPICS = ("冬季血压管理直播答疑", "胃肠镜检查前后注意事项", "儿童秋冬季呼吸道感染防治", "糖尿病足的早期识别", "孕期营养直播课")
PLAN = "一、常见误区；二、居家自我管理方法；三、何时需要就医；四、观众提问答疑"


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI).astimezone(UTC)


def step_live_announcements(ctx: DemoContext) -> None:
    """直播预告：本月直播经推送引擎发给科室关注者（台账投递、免打扰、频次上限、每月 4 次群发），社群发布任务，改期与取消"""
    from fastapi.testclient import TestClient

    from campaigns.adapters.push_sender import WeChatPushSender
    from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat
    from campaigns.adapters.wechat_client import OpsWeChatClient, SharedTokenStore
    from campaigns.services import delivery, pushes
    from campaigns.services.render import make_renderer
    from content.domain.calendar import Platform
    from content.domain.live import Audience
    from content.services import live
    from opsctl.http.app import create_app
    from opsctl.live_pushes import CampaignAnnouncementPushes
    from opsctl.wiring import delivery_rules, rules_from

    c, uow = ctx.container, ctx.container.uow
    settings = c.settings
    wx = settings.wechat
    rules = rules_from(settings)
    worker_rules = delivery.Rules(quiet=delivery_rules(settings).quiet, retry_delays=(0, 0, 0, 0, 0))
    port = CampaignAnnouncementPushes(rules, settings.push.live_template_id)
    with uow() as u:  # a host per department that has followers' visits: the first doctors of the first departments
        hosts = list(u.session.execute(
            select(m.StaffRow.public_id, m.DepartmentRow.code).join(m.DepartmentRow,
                                                                     m.DepartmentRow.id == m.StaffRow.department_id)
            .where(m.StaffRow.role == Role.DOCTOR.value).order_by(m.DepartmentRow.id, m.StaffRow.id)).all())
        openids = list(u.session.scalars(select(m.FollowerRow.openid).where(m.FollowerRow.unsubscribed_at.is_(None))
                                         .order_by(m.FollowerRow.id)))
    by_dept: dict[str, str] = {}
    for staff_id, code in hosts:
        by_dept.setdefault(code, staff_id)
    hosts_cycle: list[tuple[str | None, str | None]] = [(staff, code) for code, staff in by_dept.items()][:len(TOPICS)]
    hosts_cycle = hosts_cycle or [(None, None)]
    groups = {g.name: g for g in live.list_groups(uow(), OPERATOR)}
    for name, dept, owner in (("心内科高血压患者群1", "心血管内科", "王护士"), ("慢病管理患者群", "全院", "陈护士")):
        if name not in groups:
            groups[name] = live.add_group(uow(), OPERATOR, name, dept, owner)
    group_ids = tuple(g.public_id for g in groups.values() if g.active)

    start = _at(ctx.plan.start, 9)
    ctx.clock.current = start
    app = create_app(settings, c)
    with TestClient(app, base_url="http://demo") as http:
        sandbox = SandboxWeChat(wx.app_id, wx.app_secret.get_secret_value(), now=ctx.clock.now, seed=ctx.plan.seed + 9)
        server = SandboxServer(
            sandbox, callback_url="/wechat/callback", callback_token=wx.callback_token.get_secret_value(),
            encoding_aes_key=wx.encoding_aes_key.get_secret_value() if wx.encoding_aes_key else None,
            deliver=lambda url, body: http.post(url, content=body, headers={"Content-Type": "text/xml"}).status_code)
        with server:
            for openid in openids:
                sandbox.user_follows(openid)
            sandbox.pending_events.clear()
            sender = WeChatPushSender(OpsWeChatClient(wx.app_id, wx.app_secret.get_secret_value(),
                                                      SharedTokenStore(uow, wx.app_id), base_url=server.base_url,
                                                      sleep=lambda _s: None))
            pushes.sync_templates(uow(), OPERATOR, sender)
            # Weekly Thursday-evening streams, each scheduled and announced five days ahead; the push goes
            # the evening before at 19:00 (template messages; the second stream a mass send). The second
            # moves a day later before its push went out; the third is cancelled after the groups were told.
            first_thursday = ctx.plan.start + timedelta(days=(3 - ctx.plan.start.weekday()) % 7)
            days = [first_thursday + timedelta(days=7 * w) for w in range(5)]
            days = [d for d in days if d <= ctx.plan.until and d - timedelta(days=5) >= ctx.plan.start]
            events: list[tuple[datetime, str, int]] = []
            for index, day in enumerate(days):
                events.append((_at(day - timedelta(days=5), 10), "announce", index))
            if len(days) >= 2:
                events.append((_at(days[1] - timedelta(days=4), 10), "reschedule", 1))
            if len(days) >= 3:
                events.append((_at(days[2] - timedelta(days=3), 10), "cancel", 2))
            events.sort()
            sessions: dict[int, str] = {}
            refused = withdrawn = posted = 0
            render = make_renderer(settings.http.public_base_url)
            # the scheduler's ticks that matter: every morning at 11:00 (events, the operators' group
            # tasks) and each push's send time and the hour after it (retries)
            ticks = {_at(ctx.plan.start + timedelta(days=d), 11) for d in range(ctx.plan.days)}
            ticks |= {_at(day - timedelta(days=1), h) for day in days for h in (19, 20)}
            ticks |= {_at(day, h) for day in days for h in (19, 20)}  # the rescheduled stream's new eve
            for tick in sorted(t for t in ticks if t >= start):
                ctx.clock.current = tick
                while events and events[0][0] <= ctx.clock.current:
                    _when, action, index = events.pop(0)
                    day = days[index]
                    if action == "announce":
                        staff_id, code = hosts_cycle[index % len(hosts_cycle)]
                        view = live.schedule(uow(), OPERATOR, account="深大附院健康直播间",
                                             platform=Platform.DOUYIN if index % 2 == 0 else Platform.CHANNELS,
                                             title=TOPICS[index % len(TOPICS)], planned_start=_at(day, 20), minutes=60,
                                             plan=PLAN, host_staff_id=staff_id, department=None if staff_id else code)
                        sessions[index] = view.public_id
                        audience = Audience.DEPARTMENT if view.department else Audience.ALL
                        kind = "mass" if index == 1 else "template"
                        try:
                            live.announce(uow(), OPERATOR, view.public_id, pushes=port, kind=kind, audience=audience,
                                          send_at=_at(day - timedelta(days=1), 19), group_ids=group_ids)
                        except RuleViolation:  # a title over the template's 20 characters: refused, not truncated
                            refused += 1
                            live.announce(uow(), OPERATOR, view.public_id, pushes=port, kind="mass", audience=audience,
                                          send_at=_at(day - timedelta(days=1), 19), group_ids=group_ids)
                    elif action == "reschedule":
                        live.reschedule(uow(), OPERATOR, sessions[index], _at(day + timedelta(days=1), 20), pushes=port)
                    else:
                        live.cancel(uow(), OPERATOR, sessions[index], "主讲医生临时手术", pushes=port)
                withdrawn += live.withdraw_stale(uow(), ctx.clock.now(), pushes=port).announcements
                pushes.dispatch_due(uow(), ctx.clock.now(), api=sender, rules=rules)
                delivery.run_worker(uow, sender, render, rules=worker_rules, until_idle=True, sleep=lambda _s: None)
                server.flush_events()
                if ctx.clock.now().astimezone(SHANGHAI).hour == 11:  # operators work the group tasks in the morning
                    for task in live.group_tasks(uow(), OPERATOR):
                        live.mark_posted(uow(), OPERATOR, task.public_id or "")
                        posted += 1
            moved, cancelled = min(1, max(0, len(days) - 1)), min(1, max(0, len(days) - 2))
    views = [a for sid in sessions.values() for a in live.announcements(uow(), OPERATOR, sid, pushes=port)]
    pushed = [a for a in views if a.target == "followers"]
    states = Counter(a.state for a in pushed)
    from campaigns.persistence.pushes import DeliveryRow, PushRow

    refs = [a.push_id for a in pushed if a.push_id]
    with uow() as u:
        reasons = dict(u.session.execute(
            select(DeliveryRow.error, func.count()).join(PushRow, PushRow.id == DeliveryRow.push_id)
            .where(PushRow.public_id.in_(refs), DeliveryRow.state == "skipped").group_by(DeliveryRow.error)).all())
    ctx.add("直播排期（本月）", len(sessions), f"每周四 20:00；改期 {moved} 场，取消 {cancelled} 场")
    ctx.add("直播预告推送", len(pushed),
            "；".join(f"{k} {v}" for k, v in sorted(states.items()))
            + (f"（模板消息标题超 20 字改群发 {refused} 条）" if refused else "（模板消息 4 条、群发 1 条）"))
    ctx.add("直播预告送达（台账）", sum(a.sent for a in pushed),
            f"按规则跳过 {sum(a.skipped for a in pushed)}："
            + ("；".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: str(kv[0]))) or "无"))
    ctx.add("社群发布任务", sum(1 for a in views if a.target != "followers"),
            f"运营已发到群 {posted}；其中改期通知 "
            f"{sum(1 for a in views if a.target != 'followers' and a.purpose == 'reschedule')}、取消通知 "
            f"{sum(1 for a in views if a.purpose == 'cancel')}")
    ctx.add("撤回的预告", sum(1 for a in views if a.state == "withdrawn"),
            f"改期、取消时撤回并取消推送；开播前未发出而由定时任务撤回 {withdrawn} 条")

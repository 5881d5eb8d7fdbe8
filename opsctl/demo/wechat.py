"""Demo step: a month on the WeChat official account, through the sandbox server and the real callback."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, time, timedelta

from clinical_core.domain.errors import Conflict, DomainError
from clinical_core.domain.identity import id_card_check_digit
from clinical_core.domain.time import SHANGHAI
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.services import consultation, patients
from opsctl.demo.context import OPERATOR, DemoContext


def _consult(ctx: DemoContext, patient: Principal, service_id: str) -> bool:
    """The follower-turned-patient buys a consultation (the free 定点保障 line settles at once)."""
    c = ctx.container
    try:
        created = consultation.create_consultation(c.uow(), patient, c.payments, service_id, "想咨询一下近期用药")
    except DomainError:
        return False
    if created.out_trade_no:
        headers, body = c.payments.simulate_payment(created.out_trade_no)
        consultation.handle_paid_notification(c.uow(), c.payments, headers, body)
    return True


def step_wechat(ctx: DemoContext) -> None:
    """A month on the official account: channels, QR codes, package cards, follows and scans through the callback."""
    from fastapi.testclient import TestClient

    from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat
    from campaigns.adapters.wechat_client import OpsWeChatClient, SharedTokenStore
    from sqlalchemy import select

    from campaigns.services import channels, funnels, menus
    from clinical_core.persistence.consultation import ConsultServiceRow
    from clinical_core.persistence.prescription import PrescriptionRow
    from opsctl.http.app import create_app

    settings = ctx.container.settings
    wx = settings.wechat
    uow = ctx.container.uow
    rng = random.Random(ctx.plan.seed + 4)
    with uow() as u:  # the consultation services step_consultations configured
        service_ids = list(u.session.scalars(select(ConsultServiceRow.public_id)
                                             .where(ConsultServiceRow.enabled.is_(True)).order_by(ConsultServiceRow.id)))
    consulted: list[Principal] = []
    consultations = 0
    app = create_app(settings, ctx.container)
    with TestClient(app, base_url="http://demo") as http:
        sandbox = SandboxWeChat(wx.app_id, wx.app_secret.get_secret_value(), now=ctx.clock.now, seed=ctx.plan.seed)
        server = SandboxServer(
            sandbox, callback_url="/wechat/callback", callback_token=wx.callback_token.get_secret_value(),
            encoding_aes_key=wx.encoding_aes_key.get_secret_value() if wx.encoding_aes_key else None,
            deliver=lambda url, body: http.post(url, content=body, headers={"Content-Type": "text/xml"}).status_code)
        with server:
            client = OpsWeChatClient(wx.app_id, wx.app_secret.get_secret_value(), SharedTokenStore(uow, wx.app_id),
                                     base_url=server.base_url, sleep=lambda _s: None)
            ctx.clock.current = datetime.combine(ctx.plan.start, time(8), tzinfo=SHANGHAI).astimezone(UTC)
            menus.publish(uow(), OPERATOR, client, menus.parse_menu_set({"button": [
                {"type": "view", "name": "预约挂号", "url": "https://hospital.example/book"},
                {"name": "在线服务", "sub_button": [
                    {"type": "click", "name": "图文咨询", "key": "CONSULT"},
                    {"type": "click", "name": "快速续方", "key": "RENEW"},
                    {"type": "click", "name": "安心护理", "key": "NURSING"}]},
                {"type": "click", "name": "我的", "key": "ME"}]}), dry_run=False)
            scenes: list[str] = []
            for code, kind, name in (("lobby-poster", "department_poster", "门诊大厅海报"),
                                     ("cardio-doctor", "doctor_card", "心内科医生名片"),
                                     ("flu-article", "article", "流感防治推文")):
                channels.create_channel(uow(), OPERATOR, code, kind, name)
                scenes.append(channels.create_qr(uow(), OPERATOR, client, code).scene)
            batch = channels.create_card_batch(uow(), OPERATOR, client, "pc-demo", 20,
                                               "扫码关注，复诊续方、用药咨询在线办理")
            scenes += [c.scene for c in batch.cards]
            weights = [5, 3, 2] + [0.4] * len(batch.cards)
            follows = scans = unfollows = registered = 0
            followed: list[str] = []
            for offset in range(ctx.plan.days):
                day = ctx.plan.start + timedelta(days=offset)
                ctx.clock.current = datetime.combine(day, time(10), tzinfo=SHANGHAI).astimezone(UTC)
                for _ in range(rng.randint(3, 9)):
                    openid = "o" + base64.b64encode(rng.randbytes(21), b"-_").decode()[:27]
                    sandbox.user_follows(openid, scene=rng.choices(scenes, weights)[0] if rng.random() < 0.85 else None)
                    followed.append(openid)
                    follows += 1
                    ctx.clock.advance(timedelta(minutes=rng.randint(1, 30)))
                    if rng.random() < 0.25:  # binds a real name: a registered patient
                        first17 = f"440305{rng.randint(1950, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randrange(1000):03d}"
                        try:
                            view = patients.register_patient(uow(), OPERATOR, patients.NewPatient(
                                name="王芳", id_card=first17 + id_card_check_digit(first17),
                                phone=f"137{rng.randrange(10**8):08d}", openid=openid))
                            registered += 1
                        except Conflict:
                            continue
                        patient = Principal(f"demo:{view.public_id}", "demo-patient", Role.PATIENT,
                                            patient_id=view.public_id)
                        if service_ids and rng.random() < 0.5 and _consult(ctx, patient, rng.choice(service_ids)):
                            consulted.append(patient)
                            consultations += 1
                for patient in rng.sample(consulted, min(len(consulted), rng.randint(0, 2))):  # 复诊
                    if _consult(ctx, patient, rng.choice(service_ids)):
                        consultations += 1
                for openid in rng.sample(followed, min(len(followed), rng.randint(0, 3))):
                    if sandbox.followers[openid].subscribed:
                        sandbox.user_scans(openid, rng.choice(scenes))
                        scans += 1
                        ctx.clock.advance(timedelta(minutes=5))
                if followed and rng.random() < 0.3:
                    openid = rng.choice(followed)
                    if sandbox.followers[openid].subscribed:
                        sandbox.user_unfollows(openid)
                        unfollows += 1
                if day.weekday() == 0 and len(followed) >= 2:  # Monday: a health-education push
                    client.post("message/mass/send", data={"touser": followed[-200:], "msgtype": "text",
                                                           "text": {"content": "本周健康科普：秋冬季心血管保健"}})
                server.flush_events()
            statuses = [status for _, status in sandbox.callback_log]
    with uow() as u:  # parcels of approved prescriptions carried the package cards
        shipped = list(u.session.scalars(select(PrescriptionRow.public_id).where(PrescriptionRow.status == "approved")
                                         .order_by(PrescriptionRow.id).limit(15)))
    for rx_id in shipped:
        channels.link_prescription(uow(), OPERATOR, "pc-demo", rx_id)
    start = datetime.combine(ctx.plan.start, time(0), tzinfo=SHANGHAI).astimezone(UTC)
    end = ctx.clock.now() + timedelta(days=1)
    result = funnels.funnel(uow(), OPERATOR, start, end)
    ctx.add("公众号菜单", "已发布", "3 个一级菜单，发布前按微信字节限制校验")
    ctx.add("渠道二维码", len(scenes), f"3 个渠道码 + 包裹卡批次 pc-demo 的 {len(batch.cards)} 张卡")
    ctx.add("回调事件", len(statuses), f"关注 {follows}、再次扫码 {scans}、取关 {unfollows}、群发结果等；"
                                       f"HTTP 200 共 {statuses.count(200)} 次")
    ctx.add("关注后实名注册", registered, "注册时绑定 openid，漏斗「绑定健康卡」阶段")
    ctx.add("关注者发起问诊", consultations, f"{len(consulted)} 人首次问诊，其余为复诊；包裹卡批次 pc-demo 关联 "
                                          f"{len(shipped)} 张处方的包裹")
    cohorts = funnels.weekly_retention(uow(), OPERATOR, start, end, weeks=2)
    if cohorts:
        first = cohorts[0]
        ctx.add("首周关注队列留存", " / ".join("—" if r is None else f"{r:.0%}" for r in first.retained),
                f"{first.cohort} 当周关注 {first.size} 人：第 0/1/2 周仍关注的比例")
    for f in result[:5]:
        counts = {s.stage: s for s in f.stages}
        keys = ("scanned", "followed", "registered", "consulted", "prescribed", "repeat")
        median = counts["consulted"].median_days
        extra = "" if median is None else f"，关注到首次问诊中位 {median} 天"
        parcels = "" if f.parcels is None else f"，{f.parcels} 个包裹"
        ctx.add(f"漏斗 {f.channel}", "→".join(str(counts[k].count) for k in keys),
                f"{f.name}：扫码→关注→绑卡→问诊→处方→30 天内复诊{extra}{parcels}（视频问诊、护理尚未上线）")

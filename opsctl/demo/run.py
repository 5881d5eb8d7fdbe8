"""``opsctl demo run``: seed an empty database, then drive every capability
that exists over a simulated month, as its users would, and summarise.

Each later capability adds a step here. A step gets the context and returns
summary rows (指标, 数值, 说明).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict
from clinical_core.domain.identity import id_card_check_digit
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI, FixedClock
from clinical_core.persistence import models as m
from clinical_core.services import accounts, patients
from opsctl.demo.seed import SeedPlan
from opsctl.demo.service import seed_demo
from opsctl.wiring import Container

SummaryRow = dict[str, object]
OPERATOR = Principal(account_id="demo:operations", username="demo", role=Role.OPERATIONS)
CUSTOMER_SERVICE = Principal(account_id="demo:customer_service", username="demo-cs", role=Role.CUSTOMER_SERVICE)
ADMIN = Principal(account_id="demo:admin", username="demo-admin", role=Role.ADMIN)


@dataclass
class DemoContext:
    container: Container
    clock: FixedClock
    plan: SeedPlan
    rng: random.Random
    summary: list[SummaryRow] = field(default_factory=list)

    def add(self, metric: str, value: object, note: str = "") -> None:
        self.summary.append({"metric": metric, "value": value, "note": note})


Step = Callable[[DemoContext], None]


def step_seed(ctx: DemoContext) -> None:
    result = seed_demo(ctx.container, ctx.plan, reset=True)
    ctx.add("演示数据行数", result.rows, f"{result.plan.patients} 名患者，{result.plan.days} 天，种子 {result.plan.seed}")
    ctx.add("生成用时（秒）", round(result.seconds, 2), "批量写入；大数据量的速度见 docs/BENCHMARKS.md")


def step_registrations_and_lookups(ctx: DemoContext) -> None:
    """A month at the front desk: walk-in real-name registrations and customer-service lookups."""
    uow = ctx.container.uow
    registered = lookups = hits = duplicates = 0
    with uow() as u:
        phones = [u.vault.decrypt(p) for p in u.session.scalars(select(m.PatientRow.phone_enc).limit(500))]
    for offset in range(ctx.plan.days):
        day = ctx.plan.start + timedelta(days=offset)
        ctx.clock.current = datetime.combine(day, time(9), tzinfo=SHANGHAI).astimezone(UTC)
        for _ in range(ctx.rng.randint(1, 4)):
            first17 = f"440305{ctx.rng.randint(1940, 2015)}{ctx.rng.randint(1, 12):02d}{ctx.rng.randint(1, 28):02d}{ctx.rng.randrange(1000):03d}"
            try:
                patients.register_patient(uow(), OPERATOR, patients.NewPatient(
                    name=f"{'王李张刘陈杨'[ctx.rng.randrange(6)]}{'伟芳娜敏静丽强磊军洋'[ctx.rng.randrange(10)]}",
                    id_card=first17 + id_card_check_digit(first17),
                    phone=f"139{ctx.rng.randrange(10**8):08d}", address="广东省深圳市南山区粤海街道",
                    district_code="440305"))
                registered += 1
            except Conflict:
                duplicates += 1
        for _ in range(ctx.rng.randint(3, 8)):
            phone = ctx.rng.choice(phones)
            lookups += 1
            hits += bool(patients.find_patients(uow(), CUSTOMER_SERVICE, phone=phone))
        ctx.clock.advance(timedelta(hours=9))
    ctx.add("新登记患者", registered, f"前台实名登记（重复身份证被拒 {duplicates} 次）")
    ctx.add("客服按手机号查找", lookups, f"命中 {hits} 次（经加密索引，不存明文）")


def step_api(ctx: DemoContext) -> None:
    """The apps' view: a doctor and a patient call the HTTP API with their tokens."""
    from fastapi.testclient import TestClient

    from opsctl.http.app import create_app

    uow = ctx.container.uow
    with uow() as u:
        doctor = u.session.scalar(select(m.AccountRow.username).where(m.AccountRow.role == "doctor").limit(1))
        own, other = u.session.scalars(select(m.PatientRow.public_id).order_by(m.PatientRow.id).limit(2)).all()
    patients_account = accounts.add_patient_account(uow(), ADMIN, "demo.patient", own)
    doctor_token = accounts.issue_token(uow(), ADMIN, doctor, label="演示-医生App").token
    patient_token = accounts.issue_token(uow(), ADMIN, patients_account.username, label="演示-患者端").token
    app = create_app(ctx.container.settings, ctx.container)
    calls: list[tuple[str, str, int]] = []
    with TestClient(app, base_url="http://demo") as client:  # in-process, the real ASGI stack
        for who, token, path in (
            ("匿名", None, f"/api/v1/patients/{own}"),
            ("医生", doctor_token, f"/api/v1/patients/{own}"),
            ("患者本人", patient_token, f"/api/v1/patients/{own}"),
            ("患者查他人", patient_token, f"/api/v1/patients/{other}"),
        ):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            calls.append((who, path, client.get(path, headers=headers).status_code))
    expected = [401, 200, 200, 403]
    ok = [status for _, _, status in calls] == expected
    ctx.add("API 鉴权检查", "通过" if ok else "失败",
            "；".join(f"{who}→{status}" for who, _, status in calls))


def step_wechat(ctx: DemoContext) -> None:
    """A month on the official account: channels, QR codes, package cards, follows and scans through the callback."""
    import base64

    from fastapi.testclient import TestClient

    from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat
    from campaigns.adapters.wechat_client import OpsWeChatClient, SharedTokenStore
    from campaigns.services import channels, funnels, menus
    from opsctl.http.app import create_app

    settings = ctx.container.settings
    wx = settings.wechat
    uow = ctx.container.uow
    rng = random.Random(ctx.plan.seed + 4)
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
                            patients.register_patient(uow(), OPERATOR, patients.NewPatient(
                                name="王芳", id_card=first17 + id_card_check_digit(first17),
                                phone=f"137{rng.randrange(10**8):08d}", openid=openid))
                            registered += 1
                        except Conflict:
                            pass
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
    start = datetime.combine(ctx.plan.start, time(0), tzinfo=SHANGHAI).astimezone(UTC)
    end = ctx.clock.now() + timedelta(days=1)
    result = funnels.funnel(uow(), OPERATOR, start, end)
    ctx.add("公众号菜单", "已发布", "3 个一级菜单，发布前按微信字节限制校验")
    ctx.add("渠道二维码", len(scenes), f"3 个渠道码 + 包裹卡批次 pc-demo 的 {len(batch.cards)} 张卡")
    ctx.add("回调事件", len(statuses), f"关注 {follows}、再次扫码 {scans}、取关 {unfollows}、群发结果等；"
                                       f"HTTP 200 共 {statuses.count(200)} 次")
    ctx.add("关注后实名注册", registered, "注册时绑定 openid，漏斗「注册为患者」阶段")
    cohorts = funnels.weekly_retention(uow(), OPERATOR, start, end, weeks=2)
    if cohorts:
        first = cohorts[0]
        ctx.add("首周关注队列留存", " / ".join("—" if r is None else f"{r:.0%}" for r in first.retained),
                f"{first.cohort} 当周关注 {first.size} 人：第 0/1/2 周仍关注的比例")
    for f in result[:5]:
        counts = {s.stage: s for s in f.stages}
        median = "" if f.median_days_to_register is None else f"，关注到注册中位 {f.median_days_to_register} 天"
        ctx.add(f"漏斗 {f.channel}", f"{counts['scanned'].count}→{counts['followed'].count}→{counts['registered'].count}",
                f"{f.name}：扫码→关注→注册{median}（问诊、购药等阶段尚未上线）")


def step_short_video(ctx: DemoContext) -> None:
    """短视频：用合成素材按配方渲染一条科普视频（9:16 与 16:9）"""
    from content.services.demo_studio import write_demo_studio
    from content.services.video import render_recipe

    recipe = write_demo_studio(ctx.container.settings.data_dir / "demo-video")
    for video in render_recipe(recipe, timeout=300):
        ctx.add(f"短视频（{video.format}）", str(video.path),
                f"{video.width}x{video.height}，{video.duration:.1f} 秒，原响度 {video.loudness_before} LUFS → -16，"
                f"封面 {video.cover.name if video.cover else '无'}")


def step_lectures(ctx: DemoContext) -> None:
    """名医讲堂：医生发布图文与音频讲堂，修改后重新发布，运营停用一条"""
    from content.adapters import ffmpeg
    from content.domain.lectures import DoctorTab, LectureKind
    from content.services import lectures

    uow = ctx.container.uow
    with uow() as u:
        doctors = list(u.session.execute(
            select(m.StaffRow.public_id, m.StaffRow.name).where(m.StaffRow.role == Role.DOCTOR.value)
            .order_by(m.StaffRow.id).limit(3)))
    folder = ctx.container.settings.data_dir / "demo-lectures"
    folder.mkdir(parents=True, exist_ok=True)
    audio = folder / "hypertension.mp3"
    ffmpeg.run(["-hide_banner", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "sine=f=220:d=15",
                "-c:a", "libmp3lame", "-b:a", "32k", str(audio)], timeout=60, what="生成演示音频")
    topics = [("高血压的三个误区", "心血管"), ("糖尿病饮食怎么吃", "内分泌"), ("儿童发热何时就医", "儿科")]
    body = "这是演示用的科普正文：请遵医嘱用药，定期复查，有疑问可在互联网医院咨询医生。"
    made = []
    for (staff_id, _name), (title, category) in zip(doctors, topics, strict=False):
        doctor = Principal(account_id=f"demo:{staff_id}", username=staff_id, role=Role.DOCTOR, staff_id=staff_id)
        made.append(lectures.create_lecture(uow(), doctor, lectures.LectureInput(title, category, LectureKind.TEXT, body),
                                            publish=True))
        lectures.create_lecture(uow(), doctor, lectures.LectureInput(f"{title}（音频）", category, LectureKind.AUDIO,
                                                                     audio_file=audio), publish=False)
        ctx.clock.advance(timedelta(days=3))
    if made:
        first = made[0]
        doctor = Principal(account_id="demo:author", username="author", role=Role.DOCTOR, staff_id=doctors[0][0])
        lectures.edit_lecture(uow(), doctor, first.public_id, lectures.LectureInput(
            first.title + "（修订）", first.category, LectureKind.TEXT, body + "补充：每天同一时间服药。"), publish=True)
        drafts = lectures.list_for_doctor(uow(), doctor, DoctorTab.DRAFTS)
        lectures.disable_lecture(uow(), OPERATOR, made[-1].public_id)
        patient = Principal(account_id="demo:patient", username="patient", role=Role.PATIENT, patient_id="demo")
        visible = lectures.list_lectures(uow(), patient)
        ctx.add("名医讲堂", len(lectures.list_lectures(uow(), OPERATOR)),
                f"患者可见 {len(visible)} 条；首位医生草稿 {len(drafts)} 条；1 条修订后重新发布（版本 2），1 条被运营停用")


def step_totals(ctx: DemoContext) -> None:
    with ctx.container.uow() as u:
        for label, model in (("科室", m.DepartmentRow), ("医务及职能人员", m.StaffRow), ("药品目录", m.DrugRow),
                             ("患者", m.PatientRow), ("公众号关注者", m.FollowerRow), ("线下就诊记录（HIS）", m.HisVisitRow),
                             ("账号", m.AccountRow), ("审计日志", m.AuditRow)):
            ctx.add(label, u.session.scalar(select(func.count()).select_from(model)), "")


def _step_consultations(ctx: DemoContext) -> None:
    """A month of online consultations: pay, claim, reply, review; unanswered ones refunded."""
    from opsctl.demo.consultations import step_consultations

    step_consultations(ctx)


def _step_prescriptions(ctx: DemoContext) -> None:
    """A month of follow-up prescriptions: rules refuse some, pharmacists reject and re-review some."""
    from opsctl.demo.prescriptions import step_prescriptions

    step_prescriptions(ctx)


STEPS: list[Step] = [step_seed, step_registrations_and_lookups, step_api, _step_consultations, _step_prescriptions,
                     step_wechat, step_short_video, step_lectures, step_totals]


def run_demo(container: Container, clock: FixedClock, plan: SeedPlan, advance: Callable[..., None]) -> list[SummaryRow]:
    ctx = DemoContext(container, clock, plan, random.Random(plan.seed))
    for step in STEPS:
        advance(0, description=step.__doc__.splitlines()[0] if step.__doc__ else step.__name__)
        step(ctx)
        advance(1)
    return ctx.summary

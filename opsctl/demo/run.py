"""``opsctl demo run``: seed an empty database, then drive every capability
that exists over a simulated month, as its users would, and summarise.

Each later capability adds a step here. A step gets the context and returns
summary rows (指标, 数值, 说明).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from clinical_core.domain.errors import Conflict
from clinical_core.domain.identity import id_card_check_digit
from clinical_core.domain.time import SHANGHAI, FixedClock
from clinical_core.persistence import models as m
from clinical_core.persistence.his import HisResultRow
from clinical_core.services import accounts, patients
from opsctl.demo.consultations import step_consultations
from opsctl.demo.content import step_content_calendar, step_lecture_engagement, step_lectures, step_short_video
from opsctl.demo.followup import step_followup
from opsctl.demo.his_mode import step_his_integration
from opsctl.demo.knowledge import step_knowledge_base
from opsctl.demo.live_streams import step_live_announcements
from opsctl.demo.nursing import step_nursing
from opsctl.demo.context import ADMIN, CUSTOMER_SERVICE, OPERATOR, DemoContext, Step, SummaryRow
from opsctl.demo.prescriptions import step_prescriptions
from opsctl.demo.pushes import step_pushes
from opsctl.demo.reports import step_monthly_report
from opsctl.demo.seed import SeedPlan
from opsctl.demo.service import seed_demo
from opsctl.demo.video_visits import step_video_visits
from opsctl.demo.wechat import step_wechat
from opsctl.wiring import Container

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


def step_totals(ctx: DemoContext) -> None:
    with ctx.container.uow() as u:
        for label, model in (("科室", m.DepartmentRow), ("医务及职能人员", m.StaffRow), ("药品目录", m.DrugRow),
                             ("患者", m.PatientRow), ("公众号关注者", m.FollowerRow), ("线下就诊记录（HIS）", m.HisVisitRow),
                             ("检验检查报告（HIS）", HisResultRow),
                             ("账号", m.AccountRow), ("审计日志", m.AuditRow)):
            ctx.add(label, u.session.scalar(select(func.count()).select_from(model)), "")


STEPS: list[Step] = [step_seed, step_registrations_and_lookups, step_api, step_consultations, step_prescriptions,
                     step_nursing,
                     step_wechat, step_pushes, step_video_visits, step_short_video, step_lectures,
                     step_lecture_engagement, step_content_calendar, step_live_announcements, step_knowledge_base, step_followup,
                     step_his_integration, step_totals, step_monthly_report]


def run_demo(container: Container, clock: FixedClock, plan: SeedPlan, advance: Callable[..., None]) -> list[SummaryRow]:
    ctx = DemoContext(container, clock, plan, random.Random(plan.seed))
    for step in STEPS:
        advance(0, description=step.__doc__.splitlines()[0] if step.__doc__ else step.__name__)
        step(ctx)
        advance(1)
    return ctx.summary

"""Demo step: a month of home nursing (互联网+护理服务) over the seeded hospital.

Operations set up four nursing items with their areas; the seeded nurses who
meet R44 are admitted (the others are refused); one recipient is blacklisted
(R49). Every morning patients look up what is offered at their address
(NUR-1), book for the next day and pay; an administrator approves (or
rejects) each order; qualified nurses nearby grab them from the service hall —
once a month every eligible nurse grabs the same order at the same moment and
exactly one wins. The next day the nurse does the first-visit assessment
(R46) where needed, travels (trajectory points), checks in inside the
geofence (an admin overrides a few GPS drifts), writes the record and checks
out; patients review. Some patients cancel (refunded by the rule). Now and
then a nurse presses the SOS button; the desk responds, one alarm waits long
enough to be escalated by the job. Refunds are settled in the evening.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from clinical_core.adapters.geocoder_sandbox import GAZETTEER
from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, RuleViolation
from clinical_core.domain.money import format_fen
from clinical_core.domain.staff import Role, ensure_may_nurse_at_home
from clinical_core.domain.time import SHANGHAI, local_date
from clinical_core.persistence import models as m
from clinical_core.services import (
    nursing_alarms,
    nursing_catalogue,
    nursing_hall,
    nursing_orders,
    nursing_visits,
)
from clinical_core.services.nursing_catalogue import ItemSettings
from clinical_core.services.nursing_visits import TrackPoint
from clinical_core.services.organisation import qualification_of

if TYPE_CHECKING:
    from opsctl.demo.context import DemoContext

ADMIN = Principal(account_id="demo:nursing-admin", username="demo-nursing", role=Role.ADMIN)
DESK = Principal(account_id="demo:security-desk", username="demo-desk", role=Role.CUSTOMER_SERVICE)
CONDITIONS = ("术后伤口需要换药，行动不便", "长期卧床，需要更换导尿管", "PICC 置管后需每周维护",
              "糖尿病足伤口护理，家属无法处理", "高龄独居，需要上门采血复查")
AREA = ("440303", "440304", "440305", "440306")  # 罗湖、福田、南山、宝安; 光明 (440311) is offered nowhere
# 上门采血 is offered by polygon: the 南山—福田 coastal strip.
STRIP = ((113.90, 22.48), (114.10, 22.48), (114.10, 22.56), (113.90, 22.56))


def _streets(rng: random.Random) -> list[tuple[str, str, tuple[float, float]]]:
    return [(name, street, point) for code, name, _, streets in GAZETTEER
            if code in AREA + ("440311",) for street, point in streets.items()]


def _address(rng: random.Random, streets: list[tuple[str, str, tuple[float, float]]]) -> str:
    district, street, _ = rng.choice(streets)
    return f"深圳市{district}{street}{rng.choice(('建设路', '学府路', '滨海大道', '新安六路', '红荔路'))}" \
           f"{rng.randint(1, 300)}号{rng.randint(1, 20)}栋{rng.randint(1, 30)}0{rng.randint(1, 8)}"


def _local(day: datetime, hour: float) -> datetime:
    return datetime.combine(local_date(day), time(), SHANGHAI).astimezone(UTC) + timedelta(hours=hour)


def step_nursing(ctx: DemoContext) -> None:
    """A month of home nursing: book, review, grab (one contest), visit in the geofence, SOS, review."""
    c, rng, clock = ctx.container, ctx.rng, ctx.clock
    clock.current = datetime.combine(ctx.plan.start, time(7), tzinfo=SHANGHAI).astimezone(UTC)
    day_start = clock.current
    n = Counter[str]()
    streets = _streets(rng)
    items = {
        "WOUND": nursing_catalogue.configure_item(c.uow(), ADMIN, ItemSettings(
            "WOUND", "伤口换药", 15000, 45, districts=AREA)).public_id,
        "CATHETER": nursing_catalogue.configure_item(c.uow(), ADMIN, ItemSettings(
            "CATHETER", "留置导尿管护理", 18000, 60, districts=("440303", "440304", "440306"))).public_id,
        "PICC": nursing_catalogue.configure_item(c.uow(), ADMIN, ItemSettings(
            "PICC", "PICC 维护", 26000, 60, min_title="主管护师", required_skills=("PICC维护",),
            districts=("440304", "440305"))).public_id,
        "BLOOD": nursing_catalogue.configure_item(c.uow(), ADMIN, ItemSettings(
            "BLOOD", "上门采血", 8000, 30, polygons=(STRIP,))).public_id,
    }
    # Nurses: the seeded ones who meet R44 are admitted, based at a street of the area.
    today = local_date(clock.now())
    with c.uow() as u:
        staff = [(r.public_id, r.employee_no, qualification_of(r)) for r in u.session.scalars(
            select(m.StaffRow).where(m.StaffRow.role == "nurse", m.StaffRow.active.is_(True)).order_by(m.StaffRow.id))]
        patient_ids = list(u.session.scalars(select(m.PatientRow.public_id).order_by(m.PatientRow.id).limit(300)))
    nurses: list[Principal] = []
    area_streets = [s for s in streets if s[0] != "光明区"]
    for staff_id, employee_no, q in staff:
        try:
            ensure_may_nurse_at_home(q, today)
        except RuleViolation:
            n["r44_refused"] += 1
            continue
        if len(nurses) >= 14:
            continue
        _, _, (lat, lon) = rng.choice(area_streets)
        skills = ("PICC维护",) if q.title in ("主管护师", "副主任护师", "主任护师") and rng.random() < 0.6 else ()
        nursing_catalogue.register_home_nurse(c.uow(), ADMIN, staff_id, lat, lon, rng.choice((10.0, 12.0, 15.0)), skills)
        nurses.append(Principal(f"demo:{staff_id}", employee_no, Role.NURSE, staff_id=staff_id))
    if not nurses or len(patient_ids) < 10:
        ctx.add("上门护理", 0, "演示数据中没有符合 R44 的护士或患者")
        return
    by_staff = {p.staff_id: p for p in nurses}
    banned = patient_ids[-1]
    nursing_catalogue.blacklist_add(c.uow(), ADMIN, banned, "多次辱骂上门护士，经核实")
    patient_ids = patient_ids[:-1]

    pending_visits: list[str] = []  # orders to serve the next day
    response: list[float] = []
    contest_day = ctx.plan.days // 2
    for day in range(ctx.plan.days + 1):  # one more morning: the last day's bookings are served too
        morning = _local(day_start + timedelta(days=day), 0)
        booked: list[str] = []
        if day < ctx.plan.days:
            # 07:30 patients book for tomorrow and pay; 08:00 review; 08:30 the hall.
            for _ in range(rng.randint(2, 4)):
                clock.current = max(clock.current, _local(morning, 7.5)) + timedelta(minutes=rng.randint(1, 6))
                oid = _book(ctx, rng.choice(patient_ids), streets, items, n)
                if oid:
                    booked.append(oid)
            if day == 0:  # the blacklisted recipient tries too
                try:
                    _book(ctx, banned, streets, items, n)
                except RuleViolation:
                    n["blacklist_refused"] += 1
        visits, pending_visits = pending_visits, []
        clock.current = max(clock.current, _local(morning, 8))
        for oid in booked:
            clock.advance(timedelta(minutes=2))
            if rng.random() < 0.05:
                nursing_orders.reject_order(c.uow(), ADMIN, oid, "服务对象病情超出居家护理范围")
                n["rejected"] += 1
                continue
            nursing_orders.approve_order(c.uow(), ADMIN, oid)
            if rng.random() < 0.06:
                nursing_orders.cancel_order(c.uow(), Principal("demo:p", "p", Role.PATIENT, patient_id=_owner(ctx, oid)),
                                            oid, "家属已安排就医")
                n["cancelled_early"] += 1
                continue
            clock.current = max(clock.current, _local(morning, 8.5)) + timedelta(minutes=1)
            if _grab(ctx, oid, nurses, n, contest=(day >= contest_day and not n["contests"])):
                pending_visits.append(oid)
        # From 09:00: the visits booked yesterday.
        for i, oid in enumerate(visits):
            clock.current = max(clock.current, _local(morning, 9 + i * 0.75))
            _visit(ctx, oid, by_staff, n, response)
        clock.current = max(clock.current, _local(morning, 20))
        n["refunds_settled"] += nursing_orders.settle_refunds(c.uow(), c.payments).succeeded
    _summary(ctx, n, response, len(nurses))


def _owner(ctx: DemoContext, oid: str) -> str:
    return nursing_orders.get_order(ctx.container.uow(), ADMIN, oid).order.patient_id


def _book(ctx: DemoContext, pid: str, streets: list[tuple[str, str, tuple[float, float]]], items: dict[str, str],
          n: Counter[str]) -> str | None:
    c, rng = ctx.container, ctx.rng
    patient = Principal(f"demo:{pid}", "demo-patient", Role.PATIENT, patient_id=pid)
    address = _address(rng, streets)
    start = _local(ctx.clock.now() + timedelta(days=1), rng.choice((9.0, 14.0)))
    end = start + timedelta(hours=3)
    offered = nursing_catalogue.offered_items(c.uow(), patient, c.geocoder, address, start, end)
    if not offered.items:
        n["not_offered"] += 1  # e.g. 光明区: the patient sees an empty list
        return None
    item = rng.choice(offered.items)
    created = nursing_orders.book_order(c.uow(), patient, c.payments, c.geocoder, item.public_id, address, start, end,
                                        rng.choice(CONDITIONS))
    n["booked"] += 1
    n[f"item:{item.code}"] += 1
    headers, body = c.payments.simulate_payment(created.out_trade_no)
    nursing_orders.handle_paid_notification(c.uow(), c.payments, headers, body)
    return created.order.public_id


def _grab(ctx: DemoContext, oid: str, nurses: list[Principal], n: Counter[str], contest: bool) -> bool:
    c, rng = ctx.container, ctx.rng
    eligible = [p for p in nurses if oid in {h.public_id for h in nursing_hall.service_hall(c.uow(), p)}]
    if not eligible:
        n["nobody_in_reach"] += 1
        nursing_orders.cancel_order(c.uow(), ADMIN, oid, "附近暂无符合资质的护士")
        return False
    if contest or len(eligible) > 1 and rng.random() < 0.3:
        rng.shuffle(eligible)  # all of them press "grab" at the same moment
        winners = losers = 0
        for nurse in eligible:
            try:
                nursing_hall.grab_order(c.uow(), nurse, oid)
                winners += 1
            except Conflict:
                losers += 1
        if contest:
            n["contests"] += 1
            n["contest_nurses"], n["contest_winners"] = len(eligible), winners
        n["grab_conflicts"] += losers
    else:
        nursing_hall.grab_order(c.uow(), rng.choice(eligible), oid)
    n["grabbed"] += 1
    return True


def _visit(ctx: DemoContext, oid: str, by_staff: dict[str | None, Principal], n: Counter[str],
           response: list[float]) -> None:
    c, rng, clock = ctx.container, ctx.rng, ctx.clock
    with c.uow() as u:
        row = nursing_orders.load(u, oid)
        lat, lon, status, nurse_pk = row.lat, row.lon, row.status, row.nurse_id
        nurse_id = u.session.scalar(select(m.StaffRow.public_id).where(m.StaffRow.id == nurse_pk))
    if status != "assigned":
        return
    nurse = by_staff[nurse_id]
    patient = Principal("demo:p", "p", Role.PATIENT, patient_id=_owner(ctx, oid))
    if rng.random() < 0.03:  # cancelled on the day: refunded by the rule (half when under 2 hours)
        nursing_orders.cancel_order(c.uow(), patient, oid, "老人临时住院")
        n["cancelled_late"] += 1
        return
    detail = nursing_orders.get_order(c.uow(), nurse, oid)
    if not detail.assessed:
        nursing_orders.record_assessment(c.uow(), nurse, oid, True, "生命体征平稳，居家环境安全，适合上门护理")
        n["assessments"] += 1
    now = clock.now()
    trail = [TrackPoint(lat + 0.004 * k, lon + 0.003 * k, now - timedelta(minutes=5 * k)) for k in (3, 2, 1)]
    nursing_visits.record_track(c.uow(), nurse, oid, trail)
    n["track_points"] += len(trail)
    if n["checked_in"] == 4 or rng.random() < 0.05:  # GPS drift in a tower block: refused, then let through
        try:
            nursing_visits.check_in(c.uow(), nurse, oid, lat + 0.006, lon)
        except RuleViolation:
            n["geofence_refused"] += 1
            nursing_visits.override_geofence(c.uow(), ADMIN, oid, "check_in", "高层小区定位漂移，已电话核实到达")
            nursing_visits.check_in(c.uow(), nurse, oid, lat + 0.006, lon)
            n["overrides"] += 1
    else:
        nursing_visits.check_in(c.uow(), nurse, oid, lat + rng.uniform(-0.001, 0.001), lon)
    if n["checked_in"] in (2, 6) or rng.random() < 0.03:
        _sos(ctx, nurse, oid, lat, lon, n, response)
    n["checked_in"] += 1
    clock.advance(timedelta(minutes=rng.randint(35, 70)))
    nursing_visits.add_note(c.uow(), nurse, oid, "测量生命体征平稳，完成操作，宣教居家注意事项")
    nursing_visits.check_out(c.uow(), nurse, oid, lat, lon + rng.uniform(-0.001, 0.001), "护理操作完成，患者无不适")
    n["completed"] += 1
    if rng.random() < 0.75:
        clock.advance(timedelta(hours=2))
        nursing_orders.review_order(c.uow(), patient, oid, rng.choice((4, 5, 5, 5, 3)), "护士专业耐心")
        n["reviewed"] += 1
    if nursing_visits.visit_record(c.uow(), ADMIN, oid).intact:
        n["records_intact"] += 1


def _sos(ctx: DemoContext, nurse: Principal, oid: str, lat: float, lon: float, n: Counter[str],
         response: list[float]) -> None:
    c, rng, clock = ctx.container, ctx.rng, ctx.clock
    alarm = nursing_alarms.raise_sos(c.uow(), nurse, lat, lon, oid).public_id
    n["sos"] += 1
    slow = n["sos"] == 1  # the first alarm of the month waits past the escalation limit
    for _ in range(5 if slow else rng.randint(1, 2)):  # the scheduler runs the escalation job every minute
        clock.advance(timedelta(minutes=1))
        n["escalated"] += len(nursing_alarms.escalate_unacknowledged(c.uow(), clock.now()).escalated)
    acked = nursing_alarms.acknowledge_alarm(c.uow(), DESK, alarm)
    response.append(acked.response_seconds or 0.0)
    clock.advance(timedelta(minutes=rng.randint(5, 20)))
    nursing_alarms.close_alarm(c.uow(), DESK, alarm, "保安室电话联系护士并通知社区民警，护士安全，服务继续")


def _summary(ctx: DemoContext, n: Counter[str], response: list[float], nurses: int) -> None:
    c = ctx.container
    counts = nursing_orders.count_by_status(c.uow(), ADMIN)
    orders = nursing_orders.list_orders(c.uow(), ADMIN, limit=10_000)
    paid, refunded = sum(o.paid_fen for o in orders), sum(o.refunded_fen for o in orders)
    items = "、".join(f"{k[5:]} {v}" for k, v in sorted(n.items()) if k.startswith("item:"))
    ctx.add("上门护士准入", nurses, f"符合 R44（≥5 年且护师及以上）；不符合被拒 {n['r44_refused']} 人")
    ctx.add("护理订单", n["booked"], f"{items}；地址不在服务区 {n['not_offered']} 次；黑名单拒绝 {n['blacklist_refused']} 次")
    ctx.add("护理完成", n["completed"], f"评价 {n['reviewed']} 条；首诊评估 {n['assessments']} 次；"
            f"服务记录哈希链完整 {n['records_intact']}/{n['completed']}")
    ctx.add("抢单竞争", f"{n['contest_winners']}/{n['contest_nurses']}",
            f"{n['contest_nurses']} 名护士同时抢 1 单，{n['contest_winners']} 人成功；全月抢单冲突 {n['grab_conflicts']} 次")
    ctx.add("电子围栏", n["geofence_refused"], f"超出 300 米被拒后管理员放行 {n['overrides']} 次；轨迹点 {n['track_points']} 个")
    median = statistics.median(response) if response else 0
    ctx.add("一键呼叫报警", n["sos"], f"响应中位数 {median:.0f} 秒，最长 {max(response, default=0):.0f} 秒；"
            f"超时升级 {n['escalated']} 次")
    ctx.add("护理审核与取消", counts.get("rejected", 0) + counts.get("cancelled", 0),
            f"驳回 {n['rejected']}、提前取消 {n['cancelled_early']}、当天取消 {n['cancelled_late']}、"
            f"无人可接 {n['nobody_in_reach']}；退款提交 {n['refunds_settled']} 笔")
    ctx.add("护理收支", format_fen(paid - refunded), f"支付 {format_fen(paid)} − 退款 {format_fen(refunded)}（按记录计算）")


"""Demo step: a month of the video follow-up clinic (网络门诊) over the seeded hospital.

The administrator sets the follow-up check: strict (HIS) for the hospital,
declared (uploaded records) for one department. Each evening the schedule
office publishes the next day's online sessions of two departments' doctors;
the HIS publishes the same doctors' offline clinic overlapping half of them,
and the registration window sells some of it, so those times disappear from
the online side too (VC-3). Patients with an earlier offline visit book (the
HIS visit snapshotted), pay through the sandbox's signed notification (some
never pay), some cancel (refund by notice), some never show; the rest check
in, the doctor confirms declared records, starts the call, sometimes a family
member joins, writes the record (sometimes twice: versions kept) and
prescribes within the snapshotted diagnoses. A few visits are judged first
visits and stopped with an automatic refund (R18). Each day ends with the
jobs: release unpaid, no-shows, reminders, refund settlement.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, DomainError, RuleViolation
from clinical_core.domain.money import format_fen
from clinical_core.domain.staff import Role, ensure_may_prescribe
from clinical_core.domain.time import SHANGHAI, local_date
from clinical_core.domain.video_visit import CheckMode, Diagnosis, EndReason
from clinical_core.persistence import models as m
from clinical_core.persistence.video import VideoPaymentRow, VideoRefundRow
from clinical_core.services import (
    prescriptions,
    signatures,
    video_booking,
    video_jobs,
    video_ledger,
    video_records,
    video_schedule,
    video_settings,
    video_visits,
)
from clinical_core.services.organisation import qualification_of
from opsctl.demo.context import ADMIN, OPERATOR

if TYPE_CHECKING:
    from opsctl.demo.context import DemoContext

PDF = b"%PDF-1.4\n% demo discharge summary\n" + b"0" * 200
COMPLAINTS = ("血压控制不理想，想调整用药", "复查结果出来了，请医生看看", "血糖波动，想咨询用药", "症状反复，想复诊")
FIRST_VISITS = 2  # visits the doctor judges first visits over the month (R18)


def _local(day: object, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[arg-type]


def _follow_in_wechat(ctx: DemoContext, patient_id: str) -> None:
    """Booking happens in the official account's H5 pages: a patient bound to WeChat follows the account
    (in the sandbox WeChat, so template reminders reach them); one in ten has unfollowed since."""
    if ctx.container.settings.wechat.mode != "sandbox" or ctx.rng.random() < 0.1:
        return
    with ctx.container.uow() as u:
        openid = u.session.scalar(select(m.PatientRow.openid).where(m.PatientRow.public_id == patient_id))
    if openid:
        ctx.container.sandbox.wechat.user_follows(openid)


def step_video_visits(ctx: DemoContext) -> None:
    """A month of the video clinic: fused schedules, bookings, calls, one judged a first visit (refunded)."""
    c, rng, clock = ctx.container, ctx.rng, ctx.clock
    clock.current = _local(ctx.plan.start, 8)
    today = local_date(clock.now())
    with c.uow() as u:
        doctors = [(qualification_of(s), s.public_id, s.employee_no, code) for s, code, _ in u.session.execute(
            select(m.StaffRow, m.DepartmentRow.code, m.DepartmentRow.name)
            .join(m.DepartmentRow, m.DepartmentRow.id == m.StaffRow.department_id)
            .where(m.StaffRow.role == "doctor", m.StaffRow.active.is_(True)).order_by(m.StaffRow.id))]
        visits = u.session.execute(
            select(m.PatientRow.public_id, m.HisVisitRow.visit_no, m.DepartmentRow.code, m.HisVisitRow.diagnoses)
            .join(m.HisVisitRow, m.HisVisitRow.patient_id == m.PatientRow.id)
            .join(m.DepartmentRow, m.DepartmentRow.id == m.HisVisitRow.department_id)
            .where(m.HisVisitRow.visited_at >= clock.now() - timedelta(days=300),
                   m.HisVisitRow.visited_at < clock.now())
            .order_by(m.HisVisitRow.id)).all()
        drugs = list(u.session.scalars(select(m.DrugRow.code).where(
            m.DrugRow.control_class == "none", m.DrugRow.category == "western", m.DrugRow.active.is_(True))))
    qualified: dict[str, list[Principal]] = {}
    for qualification, staff_id, employee_no, code in doctors:
        try:
            ensure_may_prescribe(qualification, today)
        except DomainError:
            continue
        qualified.setdefault(code, []).append(Principal(f"demo:{staff_id}", employee_no, Role.DOCTOR,
                                                        staff_id=staff_id))
    candidates: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {}
    for pid, visit_no, code, dx in visits:
        if dx and code in qualified:
            candidates.setdefault(code, []).append(
                (pid, visit_no, [(str(d.get("icd10") or d.get("code")), str(d.get("name", ""))) for d in dx]))
    depts = sorted(candidates, key=lambda d: (-len(candidates[d]), d))[:2]
    if not depts:
        ctx.add("视频复诊", 0, "演示数据中没有可复诊的患者或合格医生")
        return
    video_settings.set_check_mode(c.uow(), ADMIN, CheckMode.STRICT)
    declared_dept = depts[-1] if len(depts) > 1 else None
    if declared_dept:
        video_settings.set_check_mode(c.uow(), ADMIN, CheckMode.DECLARED, department_code=declared_dept)
    if not (c.settings.data_dir / "ca" / "ca.crt").exists():
        signatures.init_authority(c.uow(), ADMIN, c.signer, "演示医院")
    for code in depts:
        for doctor in qualified[code][:2]:
            signatures.issue_certificate(c.uow(), ADMIN, c.signer, doctor.staff_id or "")

    n = Counter[str]()
    first_visit_note = ""
    for offset in range(ctx.plan.days):
        day = ctx.plan.start + timedelta(days=offset)
        clock.current = _local(day, 8)
        tomorrow = day + timedelta(days=1)
        # The schedule office publishes tomorrow; the HIS's offline clinic overlaps half of it.
        slots: list[tuple[str, str]] = []  # (slot id, department)
        for code in depts:
            for doctor in qualified[code][:2]:
                start = _local(tomorrow, 14)
                video_schedule.create_session(c.uow(), OPERATOR, video_schedule.NewSession(
                    doctor.staff_id or "", start, start + timedelta(hours=2), 20, rng.choice((2500, 3000, 5000))))
                n["sessions"] += 1
                offline = c.his_schedule.publish(doctor.staff_id or "", start + timedelta(hours=1),
                                                 start + timedelta(hours=3), 10)
                for slot_no in rng.sample(offline, 2):  # the window sells two offline numbers
                    try:
                        c.his_schedule.register_at_window(slot_no, f"win-{slot_no}")
                        n["window"] += 1
                    except Conflict:
                        pass
                fused = video_schedule.fused_schedule(c.uow(), OPERATOR, c.his_schedule, start=start,
                                                      end=start + timedelta(hours=2), doctor_id=doctor.staff_id)
                n["gone_both_sides"] += sum(1 for f in fused if f.online_slot_id and not f.available)
                slots += [(f.online_slot_id or "", code) for f in fused if f.online_slot_id and f.available]
        # Patients book today for tomorrow afternoon.
        booked: list[tuple[str, Principal, str]] = []
        for slot_id, code in rng.sample(slots, min(len(slots), rng.randint(3, 6))):
            pid, visit_no, _dx = rng.choice(candidates[code])
            patient = Principal(f"demo:{pid}", "demo-patient", Role.PATIENT, patient_id=pid)
            clock.advance(timedelta(minutes=rng.randint(5, 40)))
            try:
                result = video_booking.book_visit(
                    c.uow(), patient, c.payments, c.his, c.his_schedule, c.attachments, slot_id,
                    rng.choice(COMPLAINTS), his_visit_no=None if code == declared_dept else visit_no,
                    documents=(PDF,) if code == declared_dept else ())
            except (Conflict, RuleViolation):
                n["booking_refused"] += 1
                continue
            n["booked"] += 1
            _follow_in_wechat(ctx, pid)
            if result.out_trade_no and rng.random() < 0.08:
                n["never_paid"] += 1
                continue
            if result.out_trade_no:
                video_booking.handle_paid_notification(c.uow(), c.payments,
                                                       *c.payments.simulate_payment(result.out_trade_no))
            booked.append((result.visit.public_id, patient, code))
        clock.current = _local(day, 20)
        n["released_unpaid"] += video_jobs.release_unpaid(c.uow(), clock.now(), his_schedule=c.his_schedule).processed
        for visit_id, patient, _ in [b for b in booked if rng.random() < 0.1]:  # plans change
            video_booking.cancel_visit(c.uow(), patient, c.his_schedule, visit_id)
            booked.remove(next(b for b in booked if b[0] == visit_id))
            n["cancelled"] += 1
        # Tomorrow afternoon: reminders, the waiting room, the calls.
        clock.current = _local(tomorrow, 13, 10)
        reminded = video_jobs.send_reminders(c.uow(), clock.now(), sender=c.video_reminders, lead_minutes=120)
        n["reminded"] += reminded.processed
        n["reminder_failed"] += reminded.failed
        for visit_id, patient, code in booked:
            view = video_visits.get_visit(c.uow(), OPERATOR, visit_id)
            doctor = Principal(f"demo:{view.doctor_id}", "demo-doctor", Role.DOCTOR, staff_id=view.doctor_id)
            if rng.random() < 0.07:
                n["no_show_planned"] += 1
                continue
            clock.current = view.starts_at - timedelta(minutes=5)
            video_visits.check_in(c.uow(), patient, c.video_rooms, visit_id)
            if code == declared_dept:
                shown = rng.choice(candidates[code])[2][0]  # what the uploaded discharge summary says
                video_visits.confirm_followup(c.uow(), doctor, visit_id, [Diagnosis(*shown)])
            clock.current = view.starts_at
            video_visits.start_call(c.uow(), doctor, c.video_rooms, visit_id)
            judged_first = rng.random() < 0.15 or (n["first_visit"] == 0 and offset >= ctx.plan.days // 3)
            if n["first_visit"] < FIRST_VISITS and judged_first:
                stopped = video_visits.terminate_visit(c.uow(), doctor, c.video_rooms, visit_id,
                                                       EndReason.FIRST_VISIT, "新发症状，与线下诊断不同，属首诊，请到门诊就诊")
                n["first_visit"] += 1
                first_visit_note = f"{stopped.public_id}：{format_fen(stopped.paid_fen)} 自动退款"
                continue
            if rng.random() < 0.2:
                video_visits.invite_guest(c.uow(), patient, c.video_rooms, visit_id, "家属")
                n["guests"] += 1
            clock.advance(timedelta(minutes=8))
            video_records.write_record(c.uow(), doctor, visit_id, "主诉：复诊。查体及既往检查结果已阅，病情稳定。")
            n["record_versions"] += 1
            if rng.random() < 0.3:
                video_records.write_record(c.uow(), doctor, visit_id,
                                           "主诉：复诊。查体及既往检查结果已阅，病情稳定。补充：建议两周后复查。")
                n["record_versions"] += 1
            snapshot = [d.split(" ")[0] for d in view.followup_diagnoses]
            if code == declared_dept:
                snapshot = [d.split(" ")[0] for d in video_visits.get_visit(
                    c.uow(), OPERATOR, visit_id).followup_diagnoses]
            if drugs and snapshot and rng.random() < 0.5:
                try:
                    video_records.prescribe(c.uow(), doctor, c.his, c.signer, visit_id, prescriptions.NewPrescription(
                        "", (snapshot[0],), (prescriptions.NewItem(rng.choice(drugs), 1, 7, "每日一次，口服"),)))
                    n["prescriptions"] += 1
                except RuleViolation as refused:
                    n[f"rx_refused:{refused.rule}"] += 1
            video_visits.end_visit(c.uow(), doctor, c.video_rooms, visit_id)
            n["ended"] += 1
        clock.current = _local(tomorrow, 18)
        n["no_show"] += video_jobs.mark_no_shows(c.uow(), clock.now()).processed
        n["refunds_settled"] += video_ledger.settle_refunds(c.uow(), c.payments).succeeded
    with c.uow() as u:
        paid = sum(u.session.scalars(select(VideoPaymentRow.amount_fen).where(VideoPaymentRow.status == "succeeded")))
        refunded = sum(u.session.scalars(select(VideoRefundRow.amount_fen).where(VideoRefundRow.status == "succeeded")))
    modes = f"严格（HIS）：{', '.join(d for d in depts if d != declared_dept)}" + (
        f"；申报（上传病历）：{declared_dept}" if declared_dept else "")
    ctx.add("网络门诊出诊", n["sessions"], f"每次 2 小时、20 分钟一号；复诊判定 {modes}")
    ctx.add("线下窗口售出→线上同时不可约", n["gone_both_sides"], f"HIS 窗口挂号 {n['window']} 个（号源共享，VC-3）")
    ctx.add("视频复诊预约", n["booked"], f"未支付释放 {n['released_unpaid']}；患者取消 {n['cancelled']}；"
            f"爽约 {n['no_show']}；预约被拒 {n['booking_refused']}")
    ctx.add("视频复诊完成", n["ended"], f"病历版本 {n['record_versions']}（每版保留，R38）；处方 {n['prescriptions']}；"
            f"第三方加入 {n['guests']}")
    ctx.add("判定首诊→终止并退款", n["first_visit"], first_visit_note or "本月没有")
    ctx.add("就诊提醒", n["reminded"], f"微信模板消息（就诊前 2 小时内）；未送达 {n['reminder_failed']}"
            "（未绑定微信或已取关，原因记在预约上）")
    ctx.add("挂号费收支", format_fen(paid - refunded), f"支付 {format_fen(paid)} − 退款 {format_fen(refunded)}"
            f"（退款已结算 {n['refunds_settled']} 笔）")

"""视频复诊: the video follow-up clinic's visits and money (``clinical_core.persistence.video``).

A visit belongs to its department and doctor (snapshotted on the visit). Outcomes count at the
instant the visit ended (``ended_at``): completed = ended with reason ``completed``; no-show =
marked ``no_show`` by the job; first-visit stop = stopped by the doctor as a first visit (首诊,
R18, refunded). Waiting time is check-in to the call's start, at the call's start. Income is
the succeeded payment records at ``paid_at`` minus succeeded refund records at ``settled_at``,
like the other income metrics.
"""

from __future__ import annotations

from sqlalchemy import Select, literal, select, union_all
from sqlalchemy.orm import aliased

from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.video import (
    VideoPaymentRow,
    VideoRefundRow,
    VideoVisitRow,
)
from reports.metrics.registry import Agg, Metric, Unit, register
from reports.metrics.sql import minutes_between

VIDEO = "视频复诊"
DIMS = ("department", "doctor")


def _visits(*extra: object) -> Select:
    doctor, dept = aliased(StaffRow), aliased(DepartmentRow)
    return (select(dept.code.label("department"), doctor.name.label("doctor"), *extra)
            .select_from(VideoVisitRow)
            .join(doctor, doctor.id == VideoVisitRow.doctor_id)
            .join(dept, dept.id == VideoVisitRow.department_id))


def _ended(reason: str) -> Select:
    return (_visits(VideoVisitRow.ended_at.label("at"), literal(1).label("value"))
            .where(VideoVisitRow.end_reason == reason, VideoVisitRow.ended_at.is_not(None)))


register(Metric(
    "video_visits_completed", "视频复诊完成", Unit.COUNT, VIDEO, Agg.COUNT, lambda: _ended("completed"), DIMS,
    better="up",
    action="在出院随访和慢病续方提醒中加入视频复诊预约入口，并为预约满额的医生增开视频号源"))

register(Metric(
    "video_no_shows", "视频复诊爽约", Unit.COUNT, VIDEO, Agg.COUNT, lambda: _ended("no_show"), DIMS, better="down",
    action="就诊前 1 小时和 15 分钟各推送一次候诊提醒，连续爽约的患者由客服电话回访"))

register(Metric(
    "video_first_visit_stops", "判定首诊终止", Unit.COUNT, VIDEO, Agg.COUNT, lambda: _ended("first_visit"), DIMS,
    better="down",
    action="在预约页写明“仅限线下就诊过的复诊患者”，把复诊资格核验改为严格模式（HIS 线下就诊记录）"))

register(Metric(
    "video_wait_minutes", "签到到接诊等候时间中位数", Unit.MINUTES, VIDEO, Agg.MEDIAN,
    lambda: (_visits(VideoVisitRow.call_started_at.label("at"),
                     minutes_between(VideoVisitRow.call_started_at, VideoVisitRow.checked_in_at).label("value"))
             .where(VideoVisitRow.call_started_at.is_not(None), VideoVisitRow.checked_in_at.is_not(None))),
    DIMS, better="down",
    action="按实际接诊用时调整号源时长，医生开诊前 5 分钟推送开诊提醒，避免患者签到后久等"))


def _money() -> Select:
    doctor, dept, rdoctor, rdept = aliased(StaffRow), aliased(DepartmentRow), aliased(StaffRow), aliased(DepartmentRow)
    paid = (select(VideoPaymentRow.paid_at.label("at"), VideoPaymentRow.amount_fen.label("value"),
                   dept.code.label("department"), doctor.name.label("doctor"))
            .select_from(VideoPaymentRow).join(VideoVisitRow, VideoVisitRow.id == VideoPaymentRow.visit_id)
            .join(doctor, doctor.id == VideoVisitRow.doctor_id).join(dept, dept.id == VideoVisitRow.department_id)
            .where(VideoPaymentRow.status == "succeeded"))
    refunded = (select(VideoRefundRow.settled_at.label("at"), (-VideoRefundRow.amount_fen).label("value"),
                       rdept.code.label("department"), rdoctor.name.label("doctor"))
                .select_from(VideoRefundRow).join(VideoVisitRow, VideoVisitRow.id == VideoRefundRow.visit_id)
                .join(rdoctor, rdoctor.id == VideoVisitRow.doctor_id).join(rdept, rdept.id == VideoVisitRow.department_id)
                .where(VideoRefundRow.status == "succeeded"))
    return select(union_all(paid, refunded).subquery("video_money"))


register(Metric(
    "video_income_net_fen", "视频复诊净收入", Unit.FEN, VIDEO, Agg.SUM, _money, DIMS, better="up",
    action="核对首诊终止和医院取消造成的退款，减少可避免的退款；对收入下降的科室检查号源和价格"))

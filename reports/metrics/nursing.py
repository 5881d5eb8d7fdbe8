"""上门护理: home nursing orders and the nurses' SOS alarms (``clinical_core.persistence.nursing``).

Completed = the nurse checked out (status completed or reviewed), at the check-out. Grab time =
from the order entering the service hall (审核通过, ``approved_at``) to a nurse holding it
(``assigned_at``, by grabbing or by an administrator's assignment), at the assignment.
Cancellations at their closing instant. Alarms count at the instant they were raised, like
``clinical_core.services.nursing_alarms.response_times``: acknowledgement time and escalations
belong to the alarm's period. ``service_type`` is the nursing item's name.

``department`` (科室分析) is the department of the nurse who holds the order (``nurse_id``) or
raised the alarm (``staff_id``), as a prescription belongs to its prescriber's department: an
order cancelled before any nurse took it has no department (it appears as 未归属 in the
hospital's breakdown and in no department's report).
"""

from __future__ import annotations

from sqlalchemy import Select, literal, select
from sqlalchemy.orm import aliased

from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.nursing import (
    NursingAlarmRow,
    NursingItemRow,
    NursingOrderRow,
)
from reports.metrics.registry import Agg, Metric, Unit, register
from reports.metrics.sql import minutes_between

NURSING = "上门护理"


def _orders(*extra: object) -> Select:
    nurse, dept = aliased(StaffRow), aliased(DepartmentRow)
    return (select(NursingItemRow.name.label("service_type"), dept.code.label("department"), *extra)
            .select_from(NursingOrderRow).join(NursingItemRow, NursingItemRow.id == NursingOrderRow.item_id)
            .outerjoin(nurse, nurse.id == NursingOrderRow.nurse_id)
            .outerjoin(dept, dept.id == nurse.department_id))


def _alarms(*extra: object) -> Select:
    nurse, dept = aliased(StaffRow), aliased(DepartmentRow)
    return (select(NursingAlarmRow.raised_at.label("at"), dept.code.label("department"), *extra)
            .select_from(NursingAlarmRow).join(nurse, nurse.id == NursingAlarmRow.staff_id)
            .outerjoin(dept, dept.id == nurse.department_id))


register(Metric(
    "nursing_orders_completed", "上门护理完成", Unit.COUNT, NURSING, Agg.COUNT,
    lambda: (_orders(NursingOrderRow.checked_out_at.label("at"), literal(1).label("value"))
             .where(NursingOrderRow.checked_out_at.is_not(None), NursingOrderRow.status.in_(("completed", "reviewed")))),
    ("service_type", "department"), better="up", unit_label="单",
    action="向出院患者和慢病随访患者推送上门护理项目介绍，并为需求集中的片区招募签约护士"))

register(Metric(
    "nursing_grab_minutes", "审核到接单用时中位数", Unit.MINUTES, NURSING, Agg.MEDIAN,
    lambda: (_orders(NursingOrderRow.assigned_at.label("at"),
                     minutes_between(NursingOrderRow.assigned_at, NursingOrderRow.approved_at).label("value"))
             .where(NursingOrderRow.assigned_at.is_not(None), NursingOrderRow.approved_at.is_not(None))),
    ("service_type", "department"), better="down",
    action="对 30 分钟无人接单的订单由护理部直接派单，并在接单少的片区扩大护士服务半径"))

register(Metric(
    "nursing_cancellations", "上门护理取消", Unit.COUNT, NURSING, Agg.COUNT,
    lambda: (_orders(NursingOrderRow.closed_at.label("at"), literal(1).label("value"))
             .where(NursingOrderRow.status == "cancelled", NursingOrderRow.closed_at.is_not(None))),
    ("service_type", "department"), better="down", unit_label="单",
    action="逐单回访取消原因：无人接单的增加护士排班，评估不适合的在下单页补充适应症说明"))

register(Metric(
    "nursing_sos_alarms", "护士一键报警", Unit.COUNT, NURSING, Agg.COUNT,
    lambda: _alarms(literal(1).label("value")), ("department",), better="down",
    action="逐条复盘报警经过，对涉及的患者和地址做风险标记，必要时安排两名护士同行"))

register(Metric(
    "nursing_sos_ack_minutes", "报警响应时间中位数", Unit.MINUTES, NURSING, Agg.MEDIAN,
    lambda: (_alarms(minutes_between(NursingAlarmRow.acknowledged_at, NursingAlarmRow.raised_at).label("value"))
             .where(NursingAlarmRow.acknowledged_at.is_not(None))), ("department",), better="down",
    action="安排护理部 24 小时报警值守，值守手机开启强提醒，并每月做一次报警演练"))

register(Metric(
    "nursing_sos_escalations", "报警超时升级", Unit.COUNT, NURSING, Agg.COUNT,
    lambda: _alarms(literal(1).label("value")).where(NursingAlarmRow.escalated_at.is_not(None)), ("department",),
    better="down",
    action="检查升级报警的值守排班空档，补充备班人员并缩短首次响应要求"))

"""网络门诊排班 on SQLite and PostgreSQL: publishing, the Excel import (all or
nothing, per-row Chinese errors), the fused schedule with the HIS (VC-3: a
time taken on either side is gone from both), and stopping a session."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from clinical_core.adapters.video_schedule_excel import read_schedule
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from clinical_core.domain.time import FixedClock
from clinical_core.domain.video_schedule import ScheduleRejected
from clinical_core.persistence.his_schedule import HisOutpatientSlotRow
from clinical_core.persistence.models import StaffRow
from clinical_core.persistence.video import VideoSessionRow
from clinical_core.services import (
    video_booking,
    video_ledger,
    video_schedule,
    video_visits,
)
from opsctl.wiring import Container
from tests.support.clinic import OPS
from tests.support.video import (
    SESSION_END,
    SESSION_START,
    VideoClinic,
    book,
    build_video_clinic,
)


@pytest.fixture
def vc(container: Container, clock: FixedClock) -> VideoClinic:
    return build_video_clinic(container, clock)


def _fused(c: Container, vc: VideoClinic) -> list[video_schedule.FusedSlotView]:
    return video_schedule.fused_schedule(c.uow(), vc.clinic.patient, c.his_schedule, start=SESSION_START,
                                         end=SESSION_END, doctor_id=vc.clinic.doctor_a.staff_id)


def test_publishing_cuts_slots_and_refuses_overlaps_and_unqualified_doctors(
        container: Container, vc: VideoClinic) -> None:
    assert len(vc.slot_ids) == 4
    with pytest.raises(Conflict, match="重叠"):
        video_schedule.create_session(container.uow(), OPS, video_schedule.NewSession(
            vc.clinic.doctor_a.staff_id or "", SESSION_START + timedelta(minutes=30), SESSION_END + timedelta(hours=1),
            15, 3000))
    with pytest.raises(RuleViolation, match="R07"):
        video_schedule.create_session(container.uow(), OPS, video_schedule.NewSession(
            vc.clinic.junior.staff_id or "", SESSION_START, SESSION_END, 15, 3000))
    with pytest.raises(Forbidden):
        video_schedule.create_session(container.uow(), vc.clinic.doctor_b, video_schedule.NewSession(
            vc.clinic.doctor_b.staff_id or "", SESSION_START, SESSION_END, 15, 3000))
    with pytest.raises(InvalidInput, match="每号时长"):
        video_schedule.create_session(container.uow(), OPS, video_schedule.NewSession(
            vc.clinic.doctor_b.staff_id or "", SESSION_START, SESSION_END, 3, 3000))


def test_fused_view_shares_slots_with_the_his(container: Container, clock: FixedClock, vc: VideoClinic) -> None:
    """VC-3: the doctor also sits offline from 09:30 (10-minute slots) and 10:00–10:30 offline only."""
    his = container.his_schedule
    numbers = his.publish(vc.clinic.doctor_a.staff_id or "", SESSION_START + timedelta(minutes=30),
                          SESSION_END + timedelta(minutes=30), 10)
    fused = _fused(container, vc)
    assert [f.channels for f in fused] == ["online", "online", "both", "both"]  # 10:00–10:30 is after `end`
    assert all(f.available for f in fused)
    # The window sells the 09:30 offline slot: the online 09:30 slot is gone too.
    his.register_at_window(numbers[0], "window-1")
    fused = _fused(container, vc)
    assert [f.available for f in fused] == [True, True, False, True]
    with pytest.raises(Conflict, match="线下"):
        book(container, vc, vc.clinic.patient, 2)
    # An online booking of 09:45 holds the offline 09:40 and 09:50 slots: the window cannot sell them.
    visit_id = book(container, vc, vc.clinic.patient, 3)
    with pytest.raises(Conflict):
        his.register_at_window(numbers[1], "window-2")
    held = {s.slot_no: s.taken for s in his.outpatient_slots(start=SESSION_START, end=SESSION_END + timedelta(hours=1))}
    assert held[numbers[1]] and held[numbers[2]] and not held[numbers[3]]
    assert [f.available for f in _fused(container, vc)] == [True, True, False, False]
    # Cancelling gives the time back on both sides.
    video_booking.cancel_visit(container.uow(), vc.clinic.patient, his, visit_id)
    assert [f.available for f in _fused(container, vc)] == [True, True, False, True]
    his.register_at_window(numbers[1], "window-2")
    assert [f.available for f in _fused(container, vc)] == [True, True, False, False]


def test_a_failed_online_booking_gives_the_his_holds_back(container: Container, vc: VideoClinic) -> None:
    his = container.his_schedule
    numbers = his.publish(vc.clinic.doctor_a.staff_id or "", SESSION_START, SESSION_START + timedelta(minutes=15), 15)
    book(container, vc, vc.clinic.patient, 0)
    with pytest.raises(Conflict):
        book(container, vc, vc.clinic.other_patient, 0)
    with container.uow() as uow:
        assert uow.session.scalar(select(HisOutpatientSlotRow.taken_by).where(
            HisOutpatientSlotRow.slot_no == numbers[0])).startswith("online:vv_")


def test_department_view_lists_offline_only_doctors(container: Container, vc: VideoClinic) -> None:
    container.his_schedule.publish(vc.clinic.doctor_b.staff_id or "", SESSION_START, SESSION_START + timedelta(minutes=20),
                                   10)
    fused = video_schedule.fused_schedule(container.uow(), vc.clinic.patient, container.his_schedule,
                                          start=SESSION_START, end=SESSION_END, department_code="CARD")
    assert {(f.doctor_name, f.channels) for f in fused} == {("医生A", "online"), ("医生B", "offline")}
    with pytest.raises(InvalidInput):
        video_schedule.fused_schedule(container.uow(), vc.clinic.patient, container.his_schedule,
                                      start=SESSION_START, end=SESSION_END)


def test_stopping_a_session_cancels_and_refunds_its_visits(container: Container, vc: VideoClinic) -> None:
    visit_id = book(container, vc, vc.clinic.patient)
    view = video_schedule.cancel_session(container.uow(), OPS, container.his_schedule, vc.session_id)
    assert view.status == "cancelled" and view.open_slots == 0
    assert video_visits.get_visit(container.uow(), OPS, visit_id).end_reason == "hospital_cancelled"
    video_ledger.settle_refunds(container.uow(), vc.gateway)
    assert video_visits.get_visit(container.uow(), OPS, visit_id).refunded_fen == 3000
    assert all(not f.available for f in _fused(container, vc))


def _workbook(path: Path, rows: list[list[object]]) -> Path:
    book_ = Workbook()
    sheet = book_.active
    assert sheet is not None
    sheet.append(["医生工号", "日期", "开始时间", "结束时间", "每号分钟", "挂号费（元）"])
    for row in rows:
        sheet.append(row)
    book_.save(path)
    return path


def _employee_no(c: Container, staff_id: str | None) -> str:
    with c.uow() as uow:
        return uow.session.scalar(select(StaffRow.employee_no).where(StaffRow.public_id == staff_id)) or ""


def test_excel_import_is_all_or_nothing_with_row_errors(container: Container, tmp_path: Path,
                                                        vc: VideoClinic) -> None:
    a, b = _employee_no(container, vc.clinic.doctor_a.staff_id), _employee_no(container, vc.clinic.doctor_b.staff_id)
    junior = _employee_no(container, vc.clinic.junior.staff_id)
    day = date(2026, 11, 5)
    bad = _workbook(tmp_path / "bad.xlsx", [
        [b, day, time(8, 0), time(11, 0), 15, 30],
        [b, "2026/11/5", "10:00", "12:00", 15, 30],  # overlaps row 2
        ["E-nobody", day, "08:00", "09:00", 15, 30],
        [junior, day, "08:00", "09:00", 15, 30],  # R07
        [a, "2026-13-01", "08:00", "09:00", 15, 30],
        [a, day, "08:00", "07:00", 15, 30],
        [a, day, "08:00", "09:00", "十五", 30],
        [a, day, "08:00", "09:00", 15, "3.001"],
        [a, datetime(2026, 11, 3, 0, 0), "09:00", "09:30", 15, 30],  # overlaps the published session
    ])
    with pytest.raises(ScheduleRejected) as caught:
        video_schedule.import_schedule(container.uow(), OPS, read_schedule(bad), source="bad.xlsx")
    errors = caught.value.row_errors
    assert [e.split("：")[0] for e in errors] == [f"第 {n} 行" for n in (3, 4, 5, 6, 7, 8, 9, 10)]
    assert "重叠" in errors[0] and "未找到" in errors[1] and "R07" in errors[2] and "日期" in errors[3]
    assert "整数" in errors[5] and "分" in errors[6] and "重叠" in errors[7]
    with container.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(VideoSessionRow)) == 1  # nothing imported

    good = _workbook(tmp_path / "good.xlsx", [[b, day, "08:00", "11:00", 15, 30],
                                              [a, "2026-11-06", "14:00", "16:00", 20, "25.5"]])
    result = video_schedule.import_schedule(container.uow(), OPS, read_schedule(good), source="good.xlsx")
    assert (result.rows, result.sessions, result.slots) == (2, 2, 18)
    sessions = video_schedule.list_sessions(container.uow(), vc.clinic.patient, start=SESSION_START,
                                            end=SESSION_START + timedelta(days=7))
    assert sorted(s.price_fen for s in sessions) == [2550, 3000, 3000]


def test_excel_header_and_file_errors(tmp_path: Path) -> None:
    book_ = Workbook()
    sheet = book_.active
    assert sheet is not None
    sheet.append(["医生工号", "日期"])
    book_.save(tmp_path / "h.xlsx")
    with pytest.raises(ScheduleRejected, match="错误") as caught:
        read_schedule(tmp_path / "h.xlsx")
    assert "开始时间" in caught.value.row_errors[0]
    (tmp_path / "x.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(InvalidInput, match="xlsx"):
        read_schedule(tmp_path / "x.xlsx")

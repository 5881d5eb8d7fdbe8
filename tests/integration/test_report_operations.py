"""The metric families added for pushes, video visits, home nursing, follow-up and the content
platforms, as managers see them: their sections in the monthly report (collected on SQLite and
PostgreSQL), their own workbook sheets and PDF sections, the per-platform and per-push
breakdowns, department scoping and the suggestions they drive."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from opsctl.wiring import Container
from reports.domain.periods import Period
from reports.services.build import build
from reports.services.collect import ReportKind, ReportSpec, collect
from tests.support import report_data

OPS = Principal("ops:test", "ops", Role.OPERATIONS)
OCTOBER = Period.parse("2026-10")
NEW_MODULES = ("视频复诊", "上门护理", "随访管理", "消息推送")


@pytest.fixture
def seeded(container: Container) -> Container:
    report_data.seed(container)
    return container


def test_monthly_report_has_the_new_sections_and_breakdowns(seeded: Container) -> None:
    data = collect(seeded.uow(), OPS, ReportSpec(ReportKind.MONTHLY, OCTOBER), targets={"nursing_sos_ack_minutes": 5})
    assert set(NEW_MODULES) <= set(data.modules)
    assert [line.key for line in data.in_module("视频复诊")][:2] == ["video_visits_completed", "video_no_shows"]
    assert data.line("video_income_net_fen").value == 17000 and data.line("platform_plays").value == 430
    platforms = next(b for b in data.breakdowns if b.dimension == "platform")
    assert {label: values[0] for label, values in platforms.rows} == {"抖音": 2, "视频号": 1}  # posts, labelled
    pushes = next(b for b in data.breakdowns if b.dimension == "push")
    assert [c.key for c in pushes.metrics][:2] == ["push_deliveries_planned", "push_deliveries_sent"]
    assert {label: values[0] for label, values in pushes.rows} == {"十月慢病提醒": 6, "国庆后复诊群发": 2}
    target = next(s for s in data.suggestions if s.metric == "nursing_sos_ack_minutes")
    assert target.rule == "target" and "报警值守" in target.sentence  # the family's own action


def test_department_report_keeps_the_department_metrics_only(seeded: Container) -> None:
    data = collect(seeded.uow(), OPS, ReportSpec(ReportKind.DEPARTMENT, OCTOBER, "ENDO"))
    assert data.line("video_visits_completed").value == 1 and data.line("video_income_net_fen").value == 12000
    assert data.line("questionnaire_response_rate").value == 0.0 and data.line("followup_plans_started").value == 1
    # home nursing by the nurse's department: 周敏 (ENDO) completed n2 (grab 30 min) and raised a2 (ack 12 min)
    assert data.line("nursing_orders_completed").value == 1 and data.line("nursing_grab_minutes").value == 30
    assert data.line("nursing_sos_alarms").value == 1 and data.line("nursing_sos_ack_minutes").value == 12
    assert data.line("nursing_cancellations").value == 0  # n4 was cancelled before any nurse took it
    assert "上门护理" in data.modules
    keys = {line.key for line in data.lines}
    assert not keys & {"push_deliveries_sent", "platform_plays"}  # no department dimension


def test_workbook_sheets_and_pdf_sections(sqlite_container: Container, tmp_path: Path) -> None:
    report_data.seed(sqlite_container)
    built = build(sqlite_container.uow(), OPS, ReportSpec(ReportKind.MONTHLY, OCTOBER), tmp_path / "out")
    wb = load_workbook(built.xlsx)
    assert {*NEW_MODULES, "按平台", "按推送"} <= set(wb.sheetnames)
    def value(sheet: str, label: str) -> object:  # the label cell carries the unit: 报警响应时间中位数（分钟）
        return next(row[1] for row in wb[sheet].iter_rows(min_row=2, values_only=True) if str(row[0]).startswith(label))

    assert value("上门护理", "上门护理完成") == 2 and value("上门护理", "报警响应时间中位数") == 8
    assert value("消息推送", "推送送达率") == pytest.approx(4 / 6)
    assert value("视频复诊", "视频复诊净收入") == 170  # yuan
    assert wb["消息推送"]["B6"].number_format == "0.0%"  # the delivery rate shown as a percentage
    text = subprocess.run(["pdftotext", "-layout", str(built.pdf), "-"], check=True, capture_output=True, text=True).stdout
    flat = text.replace(" ", "")
    for heading in (*NEW_MODULES, "报警响应时间中位数", "推送点击率", "平台播放量"):
        assert heading in flat, heading


def test_thin_ratios_drive_no_suggestion(seeded: Container) -> None:
    """September's delivery rate is 1 of 1 and October's 4 of 6, far below the 20 rows the metric
    needs: the fall from 100 % to 66.7 % is no evidence. Counts have no such threshold."""
    data = collect(seeded.uow(), OPS, ReportSpec(ReportKind.MONTHLY, OCTOBER), targets={"push_delivery_rate": 0.9})
    line = data.line("push_delivery_rate")
    assert (line.previous, line.value) == (1.0, 4 / 6)
    assert "push_delivery_rate" not in {s.metric for s in data.suggestions}
    assert "platform_plays" in {s.metric for s in data.suggestions}  # 1000 → 430 plays: a drop


def test_department_report_files_show_home_nursing(sqlite_container: Container, tmp_path: Path) -> None:
    """The department report carries the department's home nursing (its nurses' orders and alarms) in
    its workbook sheet and its PDF section."""
    report_data.seed(sqlite_container)
    built = build(sqlite_container.uow(), OPS, ReportSpec(ReportKind.DEPARTMENT, OCTOBER, "CARD"), tmp_path / "out")
    wb = load_workbook(built.xlsx)
    rows = {str(row[0]): row[1] for row in wb["上门护理"].iter_rows(min_row=2, values_only=True)}
    assert rows["上门护理完成"] == 1 and rows["审核到接单用时中位数（分钟）"] == 35
    assert rows["护士一键报警"] == 2 and rows["报警超时升级"] == 1
    text = subprocess.run(["pdftotext", "-layout", str(built.pdf), "-"], check=True, capture_output=True, text=True).stdout
    flat = text.replace(" ", "")
    assert "上门护理" in flat and "护士一键报警" in flat

"""Builds one report: collects the figures, writes the Excel workbook (with streamed detail sheets),
the PDF and the CSV extract of the metric values, and returns the paths and headline figures."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.prescription import PrescriptionRow
from clinical_core.persistence.uow import UnitOfWork
from reports.adapters.excel import (
    DetailSheet,
    StagedDetails,
    stage_details,
    write_workbook,
)
from reports.adapters.pdf import TrendCharts, warm_up, write_pdf
from reports.domain.formatting import fmt_change
from reports.domain.suggestions import DEFAULT_RULES, Rules
from reports.metrics.catalogue import REGISTRY
from reports.metrics.registry import DIMENSIONS, Registry
from reports.services.collect import (
    READERS,
    SERVICE_TYPE_LABELS,
    ReportData,
    ReportSpec,
    collect,
    step_count,
)

OUTPUT_STEPS = 3  # workbook, PDF, extract
STATUS_LABELS = {"created": "待支付", "paid": "已支付", "waiting": "待接诊", "claimed": "已接诊", "in_progress": "问诊中",
                 "replied": "已回复", "closed": "已结束", "reviewed": "已评价", "cancelled": "已取消",
                 "pending_review": "待审方", "approved": "审方通过", "rejected": "审方驳回", "voided": "已作废",
                 "dispensed": "已调配", "shipped": "已发货", "delivered": "已送达", "refunded": "已退款"}


@dataclass(frozen=True, slots=True)
class Headline:
    key: str
    label: str
    value: float | int | None
    display: str
    mom: str
    yoy: str


@dataclass(frozen=True, slots=True)
class BuiltReport:
    kind: str
    period: str
    department: str | None
    title: str
    pdf: Path
    xlsx: Path
    csv: Path
    pages: int
    headlines: tuple[Headline, ...]
    suggestions: tuple[str, ...]


def file_stem(spec: ReportSpec) -> str:
    return f"{spec.kind.value}-{spec.period.code}" + (f"-{spec.department}" if spec.department else "")


def total_steps(spec: ReportSpec, registry: Registry = REGISTRY) -> int:
    return step_count(spec, registry) + OUTPUT_STEPS


def build(uow: UnitOfWork, principal: Principal, spec: ReportSpec, out_dir: Path, *,
          targets: Mapping[str, float] | None = None, rules: Rules = DEFAULT_RULES,
          advance: Callable[[str], None] | None = None, registry: Registry = REGISTRY) -> BuiltReport:
    """Figures, PDF, extract and workbook. The workbook's detail sheets (a year of consultations and
    prescriptions) do not depend on the figures: a worker thread streams them into the workbook's
    file over its own connection while this thread runs the metric statements and draws the PDF
    (the statements wait on the database, the PDF on the CPU the detail rows leave), and the
    workbook's other sheets are added at the end. Likewise each trend chart of the PDF is drawn by a
    second worker as soon as its metric line is computed."""
    ensure_role(principal, READERS)  # before the worker reads anything
    step = advance or (lambda _label: None)
    stem = file_stem(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".{stem}.{os.getpid()}.{threading.get_ident()}.xlsx.details"  # one per build
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="report-details") as pool, \
                ThreadPoolExecutor(1, thread_name_prefix="report-charts") as drawing:
            staged = pool.submit(_stage_details, uow, spec, staging, stop.is_set)
            warmed = drawing.submit(warm_up)  # before the first chart: WeasyPrint's fonts, while the statements run
            charts = TrendCharts(drawing.submit)
            try:
                report = collect(uow, principal, spec, targets=targets, rules=rules, advance=step, registry=registry,
                                 on_line=charts.offer)
                step("PDF 报告")
                warmed.result()  # WeasyPrint on one thread at a time
                pages = write_pdf(report, out_dir / f"{stem}.pdf", rules, charts)
                step("指标数据 CSV")
                extract = write_extract(report, out_dir / f"{stem}-metrics.csv", uow, registry)
                step("Excel 工作簿")
                xlsx = write_workbook(report, out_dir / f"{stem}.xlsx", staged.result())
            except BaseException:
                stop.set()  # the worker stops at its next block of rows
                drawing.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        staging.unlink(missing_ok=True)
    return BuiltReport(spec.kind.value, spec.period.code, spec.department, report.title, out_dir / f"{stem}.pdf", xlsx,
                       extract, pages, tuple(Headline(m.key, m.label, m.value, m.display, fmt_change(m.mom), fmt_change(m.yoy))
                                             for m in (report.headlines or report.lines[:6])),
                       tuple(s.sentence for s in report.suggestions))


def _stage_details(uow: UnitOfWork, spec: ReportSpec, path: Path, cancelled: Callable[[], bool]) -> StagedDetails:
    """The worker: the detail sheets over a read-only unit of work of its own (its own connection)."""
    reader = UnitOfWork(uow.engine, uow.clock, uow.vault)
    with reader.read_only():
        return stage_details(path, _details(reader.session, spec), cancelled)


def write_extract(report: ReportData, path: Path, uow: UnitOfWork, registry: Registry = REGISTRY) -> Path:
    """The data extract: one row per metric and period of the history, then the breakdowns."""
    with path.open("w", newline="", encoding="utf-8-sig") as f:  # BOM: Excel opens Chinese CSV correctly
        w = csv.writer(f)
        w.writerow(["period", "metric", "label", "unit", "dimension", "dimension_value", "value"])
        for m in report.lines:
            codes = [p.code for p in report.spec.period.history(len(m.history))]
            for code, (_, value) in zip(codes, m.history, strict=True):
                w.writerow([code, m.key, m.label, m.unit, "", "", "" if value is None else value])
        for b in report.breakdowns:
            for label, values in b.rows:
                for m, value in zip(b.metrics, values, strict=True):
                    w.writerow([report.spec.period.code, m.key, m.label, m.unit, DIMENSIONS[b.dimension], label,
                                "" if value is None else value])
        for c in report.channels:
            w.writerow([report.spec.period.code, "channel_conversion", "扫码关注→首次问诊转化率", "ratio", "渠道", c.channel,
                        "" if c.rate is None else c.rate])
    return path


def _local(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(SHANGHAI).replace(tzinfo=None)


def _details(session: Session, spec: ReportSpec) -> list[DetailSheet]:
    start, end = spec.period.bounds()
    doctor, dept = aliased(StaffRow), aliased(DepartmentRow)
    consult: Select = (select(ConsultationRow.public_id, ConsultationRow.paid_at, ConsultationRow.kind, dept.name, doctor.name,
                              ConsultationRow.price_fen, ConsultationRow.status, ConsultationRow.close_reason,
                              ConsultationRow.review_rating)
                       .select_from(ConsultationRow).outerjoin(doctor, doctor.id == ConsultationRow.doctor_id)
                       .outerjoin(dept, dept.id == func.coalesce(ConsultationRow.department_id, doctor.department_id))
                       .where(ConsultationRow.paid_at >= start, ConsultationRow.paid_at < end)
                       .order_by(ConsultationRow.paid_at))
    pdoc, pdept = aliased(StaffRow), aliased(DepartmentRow)
    rx: Select = (select(PrescriptionRow.public_id, PrescriptionRow.issued_at, pdept.name, pdoc.name, PrescriptionRow.status,
                         PrescriptionRow.reviewed_at, PrescriptionRow.paid_at, PrescriptionRow.delivered_at)
                  .select_from(PrescriptionRow).join(pdoc, pdoc.id == PrescriptionRow.doctor_id)
                  .outerjoin(pdept, pdept.id == pdoc.department_id)
                  .where(PrescriptionRow.issued_at >= start, PrescriptionRow.issued_at < end)
                  .order_by(PrescriptionRow.issued_at))
    if spec.department:
        consult = consult.where(dept.code == spec.department)
        rx = rx.where(pdept.code == spec.department)

    def consult_rows() -> Iterator[list[Any]]:
        for r in session.connection().execute(consult.execution_options(yield_per=2000)):
            yield [r[0], _local(r[1]), SERVICE_TYPE_LABELS.get(r[2], r[2]), r[3], r[4], r[5] / 100,
                   STATUS_LABELS.get(r[6], r[6]), "超时未回复" if r[7] == "unanswered" else "", r[8]]

    def rx_rows() -> Iterator[list[Any]]:
        for r in session.connection().execute(rx.execution_options(yield_per=2000)):
            yield [r[0], _local(r[1]), r[2], r[3], STATUS_LABELS.get(r[4], r[4]), _local(r[5]), _local(r[6]), _local(r[7])]

    when = ("yyyy-mm-dd hh:mm", 18)
    return [
        DetailSheet("问诊明细", [("订单号", None, 30), ("支付时间", "datetime", when[1]), ("服务类型", None, 12), ("科室", None, 14),
                             ("医生", None, 10), ("金额（元）", "fen_yuan", 12), ("状态", None, 10), ("关闭原因", None, 12),
                             ("评分", None, 8)], consult_rows()),
        DetailSheet("处方明细", [("处方号", None, 30), ("开具时间", "datetime", when[1]), ("科室", None, 14), ("医生", None, 10),
                             ("状态", None, 10), ("审方时间", "datetime", when[1]), ("付款时间", "datetime", when[1]),
                             ("送达时间", "datetime", when[1])], rx_rows()),
    ]

"""Reports built from the hand-computed dataset: the PDF (page 1 rendered with pdftoppm, the
Chinese title in the text layer), the workbook (reloaded: sheets, number formats, frozen headers,
native charts), the CSV extract, department and specialty scopes, and the archive job."""

from __future__ import annotations

import csv
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image, ImageStat

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Forbidden, InvalidInput, NotFound
from clinical_core.domain.staff import Role
from opsctl.wiring import Container
from reports.domain.periods import Period
from reports.services import archive
from reports.services.build import build
from reports.services.collect import ReportKind, ReportSpec, collect
from tests.support import report_data

OPS = Principal("ops:test", "ops", Role.OPERATIONS)
OCTOBER = Period.parse("2026-10")
TARGETS = {"first_response_minutes": 20, "review_pass_rate": 0.9, "income_net_fen": 100}  # money in yuan


@pytest.fixture
def seeded(container: Container) -> Container:
    """SQLite and PostgreSQL: for what the database computes."""
    report_data.seed(container)
    return container


@pytest.fixture
def seeded_files(sqlite_container: Container) -> Container:
    """SQLite only: for the files written from the figures (they do not depend on the database)."""
    report_data.seed(sqlite_container)
    return sqlite_container


def _page_one(pdf: Path, tmp: Path) -> Image.Image:
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp / "page")], check=True)
    return Image.open(next(tmp.glob("page*.png"))).convert("L")


def _text(pdf: Path, first: int = 1, last: int = 2) -> str:
    return subprocess.run(["pdftotext", "-f", str(first), "-l", str(last), "-layout", str(pdf), "-"],
                          check=True, capture_output=True, text=True).stdout


def test_monthly_report_figures_comparisons_and_suggestions(seeded: Container) -> None:
    data = collect(seeded.uow(), OPS, ReportSpec(ReportKind.MONTHLY, OCTOBER), targets=TARGETS)
    consult = data.line("consultations")
    assert (consult.value, consult.previous, consult.year_ago) == (6, 1, 0)
    assert consult.mom == pytest.approx(5.0) and consult.yoy is None  # a year ago: nothing, so no ratio
    assert [label for label, _ in consult.series][-2:] == ["9月", "10月"] and len(consult.series) == 12
    assert data.line("income_net_fen").target == 10000 and data.line("income_net_fen").target_met is True
    assert data.line("first_response_minutes").target_met is False
    rules = {(s.rule, s.metric) for s in data.suggestions}
    assert ("target", "first_response_minutes") in rules and ("target", "review_pass_rate") in rules
    assert ("target", "income_net_fen") not in rules
    for s in data.suggestions:  # every sentence carries its evidence and an action
        assert "本期为" in s.evidence or "仅" in s.evidence or "连续" in s.evidence
        assert s.sentence.endswith("。") and "建议：" in s.sentence
    by_dept = next(b for b in data.breakdowns if b.dimension == "department")
    assert {label: values[0] for label, values in by_dept.rows} == {"心血管内科": 4, "内分泌科": 2}
    assert {c.channel: (c.converted, c.base) for c in data.channels} == {"dept-cardio": (1, 2), "pc-2026": (1, 2), "qr_legacy": (1, 1)}


def test_monthly_pdf_excel_and_extract(seeded_files: Container, tmp_path: Path) -> None:
    built = build(seeded_files.uow(), OPS, ReportSpec(ReportKind.MONTHLY, OCTOBER), tmp_path / "out", targets=TARGETS)
    assert built.title == "示例医院互联网医院2026年10月运营月报"
    page = _page_one(built.pdf, tmp_path)
    assert ImageStat.Stat(page).stddev[0] > 20  # the cover is drawn, not blank
    text = _text(built.pdf)
    assert "示例医院互联网医院2026年10月运营" in text.replace(" ", "").replace("\n", "")
    assert "管理摘要" in text and "第 2 页 / 共" in text  # page numbers in the margin boxes, CJK font
    fonts = subprocess.run(["pdffonts", str(built.pdf)], check=True, capture_output=True, text=True).stdout
    assert "CJK" in fonts or "WenQuanYi" in fonts
    assert built.pages >= 5

    wb = load_workbook(built.xlsx)
    assert wb.sheetnames[:2] == ["摘要", "问诊服务"] and {"按科室", "渠道转化", "各渠道转化", "问诊明细", "处方明细"} <= set(wb.sheetnames)
    money = wb["收入"]
    assert money["A2"].value.startswith("净收入") and money["B2"].value == 320 and money["B2"].number_format == '"¥"#,##0.00'
    assert money.freeze_panes == "B2" and wb["问诊明细"].freeze_panes == "A2"
    assert wb["问诊明细"].column_dimensions["A"].width == 30
    rows = list(wb["问诊明细"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == 6 and {r[2] for r in rows} == {"图文咨询", "电话咨询", "科室咨询", "定点保障"}
    assert wb["问诊服务"]["B5"].number_format == "0.0%"  # unanswered rate as a percentage
    with zipfile.ZipFile(built.xlsx) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) >= 4  # native charts on the summary sheet
        assert b"barChart" in z.read(charts[0]) or b"lineChart" in z.read(charts[0])

    with built.csv.open(encoding="utf-8-sig") as f:
        extract = list(csv.DictReader(f))
    total = next(r for r in extract if r["metric"] == "income_net_fen" and r["period"] == "2026-10" and not r["dimension"])
    assert total["value"] == "32000"
    assert any(r["dimension"] == "渠道" and r["dimension_value"] == "pc-2026" for r in extract)


def test_department_and_specialty_reports_are_scoped(seeded: Container, tmp_path: Path) -> None:
    data = collect(seeded.uow(), OPS, ReportSpec(ReportKind.DEPARTMENT, OCTOBER, "ENDO"))
    assert data.title == "内分泌科2026年10月科室运营分析"
    assert data.line("consultations").value == 2 and data.line("prescriptions_issued").value == 2
    assert "followers_gained" not in {m.key for m in data.lines}  # no department dimension: not in scope
    doctors = next(b for b in data.breakdowns if b.dimension == "doctor")
    assert [label for label, _ in doctors.rows] == ["王芳"]
    specialty = collect(seeded.uow(), OPS, ReportSpec(ReportKind.SPECIALTY, OCTOBER, "CARD"))
    assert specialty.modules[0] == "内容运营"
    assert specialty.line("script_uses").value == 3 and specialty.line("lectures_published").value == 1
    with pytest.raises(InvalidInput):
        collect(seeded.uow(), OPS, ReportSpec(ReportKind.DEPARTMENT, OCTOBER))
    with pytest.raises(NotFound):
        collect(seeded.uow(), OPS, ReportSpec(ReportKind.DEPARTMENT, OCTOBER, "NOPE"))
    with pytest.raises(Forbidden):
        collect(seeded.uow(), Principal("doc:1", "doc", Role.DOCTOR), ReportSpec(ReportKind.MONTHLY, OCTOBER))
    with pytest.raises(NotFound):  # a target for a metric that does not exist is refused, not ignored
        collect(seeded.uow(), OPS, ReportSpec(ReportKind.MONTHLY, OCTOBER), targets={"no_such_metric": 1})


def test_a_failed_build_leaves_no_files_and_reads_no_detail_for_a_stranger(seeded_files: Container, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(Forbidden):  # refused before the detail worker starts reading
        build(seeded_files.uow(), Principal("doc:1", "doc", Role.DOCTOR), ReportSpec(ReportKind.MONTHLY, OCTOBER), out)
    assert not out.exists()
    with pytest.raises(NotFound):  # collect fails while the detail worker runs: it stops and its file goes
        build(seeded_files.uow(), OPS, ReportSpec(ReportKind.DEPARTMENT, OCTOBER, "NOPE"), out)
    assert list(out.iterdir()) == []


def test_quarterly_and_annual_compare_like_with_like(seeded: Container) -> None:
    q4 = collect(seeded.uow(), OPS, ReportSpec(ReportKind.QUARTERLY, Period.parse("2026Q4")))
    line = q4.line("consultations")
    assert (line.value, line.previous) == (7, 1)  # Oct 6 + Nov 1 / Q3: c7 on 28 Sep
    assert q4.previous_label == "2026年第三季度" and q4.year_ago_label == "2025年第四季度"
    year = collect(seeded.uow(), OPS, ReportSpec(ReportKind.ANNUAL, Period.parse("2026")))
    assert year.line("consultations").value == 8 and [v for _, v in year.line("consultations").series][8:11] == [1, 6, 1]
    assert year.line("income_net_fen").value == 32000 + 3000 + 3000  # c7 in Sep, c9 on 1 Nov


def test_archive_writes_manifest_replaces_atomically_and_keeps_previous(seeded_files: Container, tmp_path: Path) -> None:
    seeded = seeded_files
    root = tmp_path / "archive"
    now = seeded.clock.now()  # 2 Nov 2026: last month is October
    first = archive.archive_last_month(seeded.uow(), now, archive_root=root, targets=TARGETS)
    folder = root / "2026" / "10"
    assert (first.period, first.files, first.replaced, first.skipped) == ("2026-10", 3, False, False)
    manifest = archive.verify(folder)
    assert {f["name"] for f in manifest["files"]} == {"monthly-2026-10.pdf", "monthly-2026-10.xlsx", "monthly-2026-10-metrics.csv"}
    assert manifest["headlines"]["income_net_fen"]["value"] == 32000
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])

    seeded.clock.current = now.replace(hour=3)
    second = archive.archive_last_month(seeded.uow(), seeded.clock.now(), archive_root=root, targets=TARGETS)
    assert second.replaced and not second.skipped
    previous = json.loads((folder / "manifest.previous.json").read_text(encoding="utf-8"))
    assert previous["generated_at"] == manifest["generated_at"]
    assert len(list((folder / "history").iterdir())) == 1
    archive.verify(folder)
    assert not [p for p in root.joinpath("2026").iterdir() if p.name.startswith(".")]  # no staging or lock left

    (folder / "monthly-2026-10-metrics.csv").write_text("tampered", encoding="utf-8")
    with pytest.raises(RuntimeError):
        archive.verify(folder)

    lock = root / "2026" / ".10.lock"
    lock.write_text(seeded.clock.now().isoformat(), encoding="utf-8")  # another run holds the period
    assert archive.archive_last_month(seeded.uow(), seeded.clock.now(), archive_root=root).skipped
    lock.unlink()

"""``opsctl report`` as a user drives it: build with --json, targets from opsctl.toml, archive,
the metrics listing, one-line errors; and the workbook opened by LibreOffice when it is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support import report_data


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "opsctl.toml").write_text(
        '[reports]\narchive_dir = "archive"\nchannel_min_base = 1\n[reports.targets]\nreview_pass_rate = 0.95\n',
        encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    c = Container(load_settings())
    report_data.seed(c)
    c.close()
    return tmp_path


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), prog_name="opsctl")
    assert result.exit_code == code, result.output
    return result.stdout


def test_build_monthly_json_then_archive(env: Path) -> None:
    out = json.loads(run("report", "build", "monthly", "--period", "2026-10", "--out", "out", "--json"))
    assert out["title"] == "示例医院互联网医院2026年10月运营月报" and out["period"] == "2026-10"
    assert all(Path(out[k]).is_file() for k in ("pdf", "xlsx", "csv")) and out["pages"] >= 5
    headlines = {h["key"]: h for h in out["headlines"]}
    assert headlines["income_net_fen"]["display"] == "320.00 元" and headlines["consultations"]["value"] == 6
    # targets come from opsctl.toml: 80 % approval misses the configured 95 %
    assert any("「审方通过率」本期为 80.0%，低于目标 95.0%" in s for s in out["suggestions"])
    archived = json.loads(run("report", "archive", "monthly", "--period", "2026-10", "--json"))
    assert archived["directory"] == str(Path("archive") / "2026" / "10") and archived["files"] == 3
    manifest = json.loads((env / "archive" / "2026" / "10" / "manifest.json").read_text(encoding="utf-8"))
    assert {f["name"] for f in manifest["files"]} >= {"monthly-2026-10.pdf"}

    if shutil.which("soffice"):  # LibreOffice reads every sheet without a repair (make setup installs it)
        result = subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{env}/lo",
                                 "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
                                 "--outdir", str(env / "lo-out"), out["xlsx"]], capture_output=True, text=True, timeout=240, check=False)
        assert result.returncode == 0, result.stderr
        sheets = {p.name.removeprefix("monthly-2026-10-").removesuffix(".csv") for p in (env / "lo-out").glob("*.csv")}
        assert {"摘要", "收入", "问诊明细", "各渠道转化"} <= sheets
        income = (env / "lo-out" / "monthly-2026-10-收入.csv").read_text(encoding="utf-8")
        assert "净收入（收款－退款）（元）,320," in income


def test_metrics_listing_and_errors(env: Path) -> None:
    listed = json.loads(run("report", "metrics", "--json"))
    assert {"key": "income_net_fen", "label": "净收入（收款－退款）"}.items() <= next(m for m in listed if m["key"] == "income_net_fen").items()
    result = CliRunner().invoke(app, ["report", "build", "department", "--period", "2026-10"])
    assert result.exit_code != 0 and result.output.strip().splitlines()[-1] == "错误：科室报告和专科报告需要 --dept 科室编码"
    result = CliRunner().invoke(app, ["report", "build", "quarterly", "--period", "2026-10"])
    assert result.exit_code != 0 and result.output.strip().splitlines()[-1] == "错误：报表期间格式不正确：应为 2026Q4"

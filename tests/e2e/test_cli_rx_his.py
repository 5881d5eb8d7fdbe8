"""opsctl rx his: the catalogue sync and status of the integrated (HIS) mode, end to end through the
CLI (the fake HIS keeps its state in the data directory, as a real HIS would across processes)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from openpyxl import Workbook

from clinical_core.ports.his import HisDrug
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.e2e.test_cli_rx import run

AMLO = HisDrug("XY001", "苯磺酸氨氯地平片", "络活喜", "5mg*28片", "片剂", "盒", 2750, "western", "none", True, True)
ZOLP = HisDrug("XY002", "唑吡坦片", None, "10mg*7片", "片剂", "盒", 3000, "western", "psychotropic_2", True, True)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.conftest import TEST_SECRET_KEY

    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("OPSCTL_PRESCRIPTION_MODE", "integrated")
    monkeypatch.chdir(tmp_path)
    run("db", "upgrade")
    return tmp_path


def _his(*drugs: HisDrug) -> None:
    c = Container(load_settings())
    for drug in drugs:
        c.his_rx.put_drug(drug)
    c.close()


def test_sync_dry_run_then_sync_then_withdraw_and_status(env: Path) -> None:
    _his(AMLO, ZOLP)
    dry = json.loads(run("rx", "his", "sync-catalogue", "--dry-run", "--json").stdout)
    assert (dry["dry_run"], dry["added"], dry["run_id"]) == (True, ["XY001", "XY002"], None)
    status = json.loads(run("rx", "his", "status", "--json").stdout)
    assert (status["mode"], status["last_sync_at"], status["drugs_active"]) == ("integrated", None, 0)

    done = run("rx", "his", "sync-catalogue")
    assert "药品目录已同步" in done.stdout and "│ 新增 │ XY002" in done.stdout
    _his(replace(AMLO, price_fen=2990), replace(ZOLP, active=False))  # the HIS changes a price, withdraws one
    second = json.loads(run("rx", "his", "sync-catalogue", "--json").stdout)
    assert second["changed"] == [{"code": "XY001", "fields": ["price_fen"]}] and second["withdrawn"] == ["XY002"]
    table = run("rx", "his", "sync-catalogue", "--dry-run").stdout
    assert "与 HIS 一致" in table
    status = json.loads(run("rx", "his", "status", "--json").stdout)
    assert (status["last_sync_status"], status["last_sync_withdrawn"], status["drugs_active"], status["pending"]) == (
        "succeeded", 1, 1, 0)
    assert "集成模式" in run("rx", "his", "status").stdout


def test_excel_import_is_refused_in_integrated_mode_sync_in_standalone(env: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    wb = Workbook()
    wb.active.append(["药品编码", "通用名", "商品名", "规格", "剂型", "单位", "价格(元)", "类别", "管制类别", "处方药"])
    wb.active.append(["XY001", "苯磺酸氨氯地平片", None, "5mg*28片", "片剂", "盒", 27.5, "西药", "普通药品", "是"])
    wb.save(env / "目录.xlsx")
    result = run("rx", "catalogue", "import", str(env / "目录.xlsx"), expect=5)
    assert "集成模式下药品目录由 HIS 同步" in result.stderr
    monkeypatch.setenv("OPSCTL_PRESCRIPTION_MODE", "standalone")
    assert "单机模式" in run("rx", "his", "sync-catalogue", expect=5).stderr
    assert json.loads(run("rx", "his", "status", "--json").stdout)["mode"] == "standalone"
    monkeypatch.setenv("OPSCTL_PRESCRIPTION_MODE", "his-only")
    result = run("rx", "his", "status", expect=8)
    assert "prescription_mode" in result.stderr and "integrated（集成 HIS 模式）" in result.stderr

"""集成模式 (RX-5), pure parts: the prescription mode setting, the catalogue difference, the HIS
dictionary check and the idempotency keys."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from clinical_core.domain.drug_catalogue import CatalogueRejected
from clinical_core.domain.errors import ConfigurationError
from clinical_core.domain.his_sync import (
    Change,
    DrugEntry,
    HisOp,
    check_his_catalogue,
    diff_catalogue,
    idempotency_key,
)
from opsctl.config import Settings, load_settings

AMLO = DrugEntry("XY001", "苯磺酸氨氯地平片", None, "5mg*28片", "片剂", "盒", 2750, "western", "none", True, True)
ZOLP = DrugEntry("XY002", "唑吡坦片", None, "10mg*7片", "片剂", "盒", 3000, "western", "psychotropic_2", True, True)
VALS = DrugEntry("XY003", "缬沙坦胶囊", None, "80mg*28粒", "胶囊剂", "盒", 1990, "western", "none", True, True)


def test_mode_defaults_to_standalone_and_accepts_integrated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPSCTL_PRESCRIPTION_MODE", raising=False)
    assert load_settings().prescription_mode == "standalone"
    monkeypatch.setenv("OPSCTL_PRESCRIPTION_MODE", "Integrated")
    assert load_settings().prescription_mode == "integrated"
    (tmp_path / "opsctl.toml").write_text('prescription_mode = "standalone"\n', encoding="utf-8")
    assert load_settings().prescription_mode == "integrated"  # the environment wins over the file


def test_a_bad_mode_is_refused_with_a_chinese_message_naming_the_key(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPSCTL_PRESCRIPTION_MODE", raising=False)
    (tmp_path / "opsctl.toml").write_text('prescription_mode = "his"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "prescription_mode" in message and "standalone（单机模式）或 integrated（集成 HIS 模式）" in message
    assert "Value error" not in message and "OPSCTL_PRESCRIPTION_MODE" in message
    with pytest.raises(ValueError):
        Settings(prescription_mode="both")


def test_diff_names_added_changed_withdrawn_and_unchanged() -> None:
    local = [AMLO, ZOLP, VALS, replace(VALS, code="XY009", active=False)]
    his = [AMLO,  # unchanged
           replace(ZOLP, active=False),  # withdrawn by the HIS
           replace(VALS, price_fen=2100, control_class="antimicrobial"),  # price and regulatory class changed
           replace(AMLO, code="XY004", generic_name="阿托伐他汀钙片"),  # new
           replace(AMLO, code="XY005", active=False)]  # new but already withdrawn: not added
    diff = diff_catalogue(local, his)
    assert diff.added == ("XY004",)
    assert diff.changed == (Change("XY003", ("price_fen", "control_class")),)
    assert diff.withdrawn == ("XY002",)
    assert diff.unchanged == 2  # XY001, and XY009 (inactive locally, gone from the HIS)
    assert not diff.empty


def test_a_drug_gone_from_the_his_is_withdrawn_and_one_back_in_use_is_a_change() -> None:
    diff = diff_catalogue([AMLO, replace(ZOLP, active=False)], [ZOLP])
    assert diff.withdrawn == ("XY001",)
    assert diff.changed == (Change("XY002", ("active",)),)
    assert diff_catalogue([AMLO], [AMLO]).empty


def test_an_invalid_his_dictionary_is_refused_as_a_whole_with_every_problem() -> None:
    check_his_catalogue([AMLO, ZOLP])
    with pytest.raises(CatalogueRejected) as caught:
        check_his_catalogue([AMLO, replace(AMLO, generic_name=""), replace(ZOLP, control_class="opioid"),
                             replace(VALS, price_fen=-1)])
    errors = caught.value.row_errors
    assert any("重复" in e for e in errors) and any("opioid" in e for e in errors)
    assert any("价格" in e for e in errors) and len(errors) == 4


def test_one_key_per_prescription_version_and_operation() -> None:
    keys = {idempotency_key("rx_1", v, op) for v in (1, 2) for op in HisOp}
    assert len(keys) == 2 * len(HisOp)
    assert idempotency_key("rx_1", 1, HisOp.CHARGE) == idempotency_key("rx_1", 1, HisOp.CHARGE)


def test_only_register_void_and_refund_are_resent_when_the_his_has_no_record() -> None:
    assert {op for op in HisOp if op.resend_when_missing} == {HisOp.REGISTER, HisOp.VOID, HisOp.REFUND}

from pathlib import Path

import pytest

from clinical_core.domain.errors import ConfigurationError
from opsctl.config import describe, load_settings


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("OPSCTL_") and key != "OPSCTL_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


def test_defaults_run_the_embedded_demo() -> None:
    s = load_settings()
    assert s.data_dir == Path("var")
    assert s.effective_database_url == "sqlite:///var/opsctl.db"
    assert s.wechat.mode == "sandbox"


def test_environment_beats_file_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "opsctl.toml").write_text('data_dir = "/srv/ops"\n[http]\nport = 9100\n[wechat]\napp_id = "wxfile"\n')
    monkeypatch.setenv("OPSCTL_WECHAT__APP_ID", "wxenv")
    s = load_settings()
    assert (s.data_dir, s.http.port, s.wechat.app_id) == (Path("/srv/ops"), 9100, "wxenv")
    sources = {r["key"]: r["source"] for r in describe(s)}
    assert sources["wechat.app_id"] == "环境变量"
    assert sources["http.port"] == "配置文件"
    assert sources["timezone"] == "默认"


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_WECHAT__APP_SECRET", "very-secret-value")
    monkeypatch.setenv("OPSCTL_SECRET_KEY", "another-secret")
    text = repr(describe(load_settings()))
    assert "very-secret-value" not in text and "another-secret" not in text


def test_bad_values_name_the_key_in_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_HTTP__PORT", "eighty")
    with pytest.raises(ConfigurationError, match=r"配置项 http\.port 无效：应为整数"):
        load_settings()
    monkeypatch.delenv("OPSCTL_HTTP__PORT")
    (tmp_path / "opsctl.toml").write_text("typo_key = 1\n")
    with pytest.raises(ConfigurationError, match="typo_key.*没有这个配置项"):
        load_settings()
    (tmp_path / "opsctl.toml").write_text("not toml [\n")
    with pytest.raises(ConfigurationError, match="无法读取配置文件"):
        load_settings()


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="配置文件不存在"):
        load_settings(tmp_path / "nope.toml")


def test_unknown_database_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigurationError, match="database_url"):
        load_settings()

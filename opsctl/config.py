"""Configuration: ``opsctl.toml`` plus ``OPSCTL_*`` environment variables.

Read when a command runs (``load_settings``), never at import. Precedence:
environment > ``opsctl.toml`` > defaults. Nested keys use ``__`` in the
environment (``OPSCTL_WECHAT__APP_ID``). With nothing configured, the product
runs the embedded demo: ``./var``, SQLite inside it, sandbox WeChat, offline
models.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource
from sqlalchemy.engine import make_url

from clinical_core.domain.errors import ConfigurationError
from clinical_core.domain.his_sync import PRESCRIPTION_MODES

CONFIG_ENV = "OPSCTL_CONFIG"
DEFAULT_CONFIG_FILE = "opsctl.toml"


class WeChatSettings(BaseModel):
    mode: Literal["sandbox", "live"] = "sandbox"
    app_id: str = "wxsandbox0000000001"
    app_secret: SecretStr = SecretStr("sandbox-app-secret")
    api_base_url: str | None = None  # None: the in-process sandbox in sandbox mode, api.weixin.qq.com live
    callback_token: SecretStr = SecretStr("sandbox-callback-token")
    encoding_aes_key: SecretStr | None = None


class FollowupSettings(BaseModel):
    template_id: str = "tpl_sandbox_notice"  # the WeChat template message follow-up steps are sent as
    quiet_hours: str = "21:00-08:00"  # Asia/Shanghai; no follow-up message inside this range


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8700"
    # Worker threads per ``opsctl serve`` process for blocking work (database use cases); anyio's
    # default is 40. More threads than the database can use at once only queue inside it: on
    # SQLite 40 writers polling the write lock cost 1.5x the CPU per request and seconds of p99
    # latency against 12 (docs/BENCHMARKS.md, "Consultation API throughput").
    threads: int = Field(default=12, ge=1, le=200)
    # Worker threads of the consultation hot routes (``clinical_core.api.fast_path``), per process.
    # None: 1 on SQLite (every hot request writes, and SQLite has one writer at a time: one thread
    # queues them without polling the write lock; 12 threads cost ~15 % more CPU per request and
    # twice the closed-loop p99), ``threads`` on PostgreSQL (row locks; threads overlap waits).
    hot_threads: int | None = Field(default=None, ge=1, le=200)
    # Group commit of the hot routes (``clinical_core.persistence.group_commit``): the requests
    # waiting for the one hot thread share a transaction, each in a savepoint of its own, and are
    # answered after its commit. None: on with SQLite (one writer; every commit rewrites the same
    # pages), off with PostgreSQL (its threads overlap their waits). SQLite only.
    group_commit: bool | None = None


class SearchSettings(BaseModel):
    embedding_model: str = "multilingual-e5-small"  # built offline by `make` into the data directory
    bm25_weight: float = Field(default=0.05, ge=0)  # RRF weights, tuned on train splits: docs/BENCHMARKS.md
    dense_weight: float = Field(default=1.0, ge=0)
    rrf_k: int = Field(default=10, ge=1)  # reciprocal-rank constant: score = w / (rrf_k + rank)
    scan_float16: bool = False  # approximate: float16 scores only, no rescoring (may swap near-ties)
    dense_candidates: int = Field(default=400, ge=0)  # float16 first pass, exact float32 rescoring; 0: float32 scan
    query_backend: Literal["onnx", "torch"] = "onnx"  # ONNX Runtime for queries when exported (`make`)
    # ONNX query graph: int8 (smoothed dynamic quantisation, FFN outputs float32; nDCG@10 within 0.003) or fp32
    query_precision: Literal["int8", "fp32"] = "int8"
    query_threads: int | None = Field(default=1, ge=1)  # torch threads per query encode (None: one per core)
    quantize_queries: bool = False  # int8 query encoding: faster, but lost ~0.02 nDCG@10 on KUAKE-QQR (BENCHMARKS)


class ReportSettings(BaseModel):
    """运营报表: archive location, targets (money in yuan, ratios as fractions) and suggestion rules."""

    archive_dir: Path | None = None  # the designated location; default <data_dir>/reports/archive
    targets: dict[str, float] = Field(default_factory=lambda: {
        "first_response_minutes": 30, "unanswered_rate": 0.05, "review_pass_rate": 0.9, "review_minutes": 30,
        "payment_to_delivery_hours": 48, "review_rating": 4.5, "low_rating_share": 0.05})
    drop_share: float = Field(default=0.2, gt=0, lt=1)  # a period-on-period change worse than this is flagged
    far_below: float = Field(default=0.5, gt=0, lt=1)  # a channel below this share of the others' median
    channel_min_base: int = Field(default=20, ge=1)  # followers a channel needs before it is judged


class PushSettings(BaseModel):
    """Sending rules of pushes (campaigns.services.pushes / delivery)."""

    quiet_hours: str = "21:00-08:00"  # Asia/Shanghai; "off" for none
    cap_count: int = Field(default=3, ge=1)  # at most cap_count pushes per patient ...
    cap_days: int = Field(default=7, ge=1)  # ... within cap_days
    rate_per_second: float = Field(default=50.0, ge=0)  # per official account, shared by all workers; 0: unlimited
    retry_delays: list[float] = [5, 30, 120, 600]  # seconds; attempts = len + 1
    live_template_id: str = "tpl_sandbox_live"  # 直播预告 template for live announcements sent as template messages


class Settings(BaseSettings):
    """Effective settings of one run of opsctl."""

    model_config = SettingsConfigDict(env_prefix="OPSCTL_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path("var")
    database_url: str | None = None  # default: SQLite file inside data_dir
    secret_key: SecretStr | None = None  # default (embedded SQLite only): generated into data_dir
    timezone: str = "Asia/Shanghai"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http: HttpSettings = HttpSettings()
    wechat: WeChatSettings = WeChatSettings()
    search: SearchSettings = SearchSettings()
    followup: FollowupSettings = FollowupSettings()
    reports: ReportSettings = ReportSettings()
    push: PushSettings = PushSettings()
    # 处方模式 (RX-5): standalone (单机: Excel catalogue, local billing and dispensing) or integrated
    # (集成: catalogue, diagnoses, create/void, pay/refund and dispense through the HIS)
    prescription_mode: str = "standalone"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("仅支持 sqlite:/// 或 postgresql+psycopg:// 开头的地址")
        return value

    @field_validator("prescription_mode")
    @classmethod
    def _known_prescription_mode(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in PRESCRIPTION_MODES:
            raise ValueError("应为 standalone（单机模式）或 integrated（集成 HIS 模式）")
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'opsctl.db').as_posix()}"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def report_archive_dir(self) -> Path:
        return self.reports.archive_dir or self.data_dir / "reports" / "archive"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file is chosen per run: load_settings() subclasses with toml_file set.
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def config_file(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The TOML file in use: ``--config``, then ``$OPSCTL_CONFIG``, then ``./opsctl.toml`` if present."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigurationError(f"配置文件不存在：{explicit}")
        return explicit
    if environ.get(CONFIG_ENV):
        path = Path(environ[CONFIG_ENV])
        if not path.is_file():
            raise ConfigurationError(f"环境变量 {CONFIG_ENV} 指向的配置文件不存在：{path}")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


_REASONS = {
    "extra_forbidden": "没有这个配置项",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "literal_error": "取值不在允许范围内",
    "greater_than_equal": "取值过小",
    "less_than_equal": "取值过大",
    "string_type": "应为字符串",
}


def load_settings(explicit: Path | None = None, **overrides: Any) -> Settings:
    """Read the configuration now. Errors become one Chinese line naming the key."""
    path = config_file(explicit)
    bound = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}})
    try:
        return bound(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        where = f"（{path}）" if path else ""
        reason = _REASONS.get(first["type"], first["msg"])
        if first["type"] == "value_error":  # our own validators' Chinese message, without pydantic's prefix
            reason = str(first.get("ctx", {}).get("error", reason))
        raise ConfigurationError(
            f"配置项 {key} 无效{where}：{reason}",
            hint=f"检查 opsctl.toml 或环境变量 OPSCTL_{key.upper().replace('.', '__')}",
        ) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigurationError(f"无法读取配置文件 {path}：{exc}") from None


def _hide_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as nothing rather than leaked
        return "<无法解析的地址>"


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Flattened effective settings with secrets masked, and where each came from."""
    environ = os.environ if environ is None else environ
    rows: list[dict[str, str]] = []

    def walk(model: BaseModel, prefix: str) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            key = f"{prefix}{name}"
            if isinstance(value, BaseModel):
                walk(value, key + ".")
                continue
            env_key = "OPSCTL_" + key.upper().replace(".", "__")
            if isinstance(value, SecretStr):
                shown = "******（已设置）" if value.get_secret_value() else ""
            elif name == "database_url" and value:
                shown = _hide_password(value)
            elif value is None:
                shown = ""
            else:
                shown = str(value)
            source = "环境变量" if env_key in environ else ("配置文件" if name in model.model_fields_set else "默认")
            rows.append({"key": key, "value": shown, "source": source, "env": env_key})

    walk(settings, "")
    by_key = {r["key"]: r for r in rows}
    if not settings.database_url:
        by_key["database_url"]["value"] = f"{settings.effective_database_url}（内置 SQLite）"
    if settings.secret_key is None:
        by_key["secret_key"]["value"] = f"（使用数据目录中的密钥文件 {settings.secret_key_file}）"
    return rows

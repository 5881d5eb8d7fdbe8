"""Wiring: builds the engine, vault, clock and units of work from settings.

Everything is created lazily on first use, so ``opsctl --help`` or
``opsctl config show`` never touch the database or the key.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from clinical_core.adapters.attachments import FileAttachmentStore
from clinical_core.adapters.geocoder_sandbox import SandboxGeocoder
from clinical_core.adapters.his_fake import FakeHis
from clinical_core.adapters.his_rx_fake import FakeHisRx
from clinical_core.adapters.his_schedule_fake import FakeHisSchedule
from clinical_core.adapters.internal_ca import InternalCa
from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.adapters.privacy_number_sandbox import SandboxPrivacyNumbers
from clinical_core.adapters.vault import AesGcmVault, decode_master_key, generate_master_key
from clinical_core.adapters.video_room_sandbox import SandboxVideoRooms
from clinical_core.domain.errors import ConfigurationError
from clinical_core.domain.time import Clock, SystemClock
from clinical_core.persistence.engine import make_engine
from clinical_core.persistence.uow import UnitOfWork
from knowledge_base.adapters.embedder import Embedder
from knowledge_base.adapters.index import HybridIndex
from opsctl.config import Settings

if TYPE_CHECKING:
    from campaigns.adapters.sandbox_server import SandboxServer
    from campaigns.adapters.wechat_client import OpsWeChatClient
    from campaigns.services.delivery import Rules as DeliveryRules
    from campaigns.services.followup import Channel as FollowupChannel
    from campaigns.services.pushes import SendingRules
    from opsctl.live_pushes import CampaignAnnouncementPushes
    from opsctl.video_reminders import WeChatVisitReminders


def rules_from(settings: Settings) -> SendingRules:
    """The push planning rules (quiet hours, frequency cap) from configuration."""
    from campaigns.domain import pushes as P
    from campaigns.services.pushes import SendingRules

    return SendingRules(quiet=P.QuietHours.parse(settings.push.quiet_hours),
                        cap=P.FrequencyCap(settings.push.cap_count, settings.push.cap_days))


def delivery_rules(settings: Settings) -> DeliveryRules:
    """The push workers' rules (quiet hours, retry delays) from configuration."""
    from campaigns.domain import pushes as P
    from campaigns.services.delivery import Rules

    return Rules(quiet=P.QuietHours.parse(settings.push.quiet_hours), retry_delays=tuple(settings.push.retry_delays))


class Container:
    """The object graph of one opsctl process."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._schema_checked = False

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def vault(self) -> AesGcmVault:
        return AesGcmVault(decode_master_key(load_or_create_secret_key(self.settings)))

    @cached_property
    def attachments(self) -> FileAttachmentStore:
        return FileAttachmentStore(self.settings.data_dir / "attachments")

    @cached_property
    def payments(self) -> SandboxPaymentGateway:
        # The WeChat Pay adapter replaces the sandbox when the merchant is configured (not yet built).
        # The sandbox keeps its state in the database; its merchant key is derived from the master
        # key, so every process (CLI, scheduler, serve) verifies the same notifications.
        key = hashlib.sha256(b"opsctl payment sandbox\0" + load_or_create_secret_key(self.settings).encode()).digest()
        return SandboxPaymentGateway(self.clock, key, path=self.settings.data_dir / "payment_sandbox" / "provider.db")

    @cached_property
    def his(self) -> FakeHis:
        return FakeHis(self.engine)

    @cached_property
    def his_rx(self) -> FakeHisRx:
        """The HIS's pharmacy and billing (集成模式, RX-5). The fake keeps the HIS's state in its own file
        under the data directory, shared by every process (a real HIS client replaces it when configured)."""
        return FakeHisRx(self.clock, path=self.settings.data_dir / "his_sandbox" / "his.db")

    @property
    def his_rx_port(self) -> FakeHisRx | None:
        """What the prescription services get: the HIS in integrated mode, ``None`` in standalone mode."""
        return self.his_rx if self.settings.prescription_mode == "integrated" else None

    @cached_property
    def his_schedule(self) -> FakeHisSchedule:
        """The HIS's outpatient schedule (号源); the fake answers from ``his_outpatient_slots``."""
        return FakeHisSchedule(self.engine, self.clock)

    @cached_property
    def video_rooms(self) -> SandboxVideoRooms:
        """Video rooms and participant tokens. The signing key is derived from the master key, so every
        process verifies every other's tokens (a real RTC provider's key would come from configuration)."""
        master = decode_master_key(load_or_create_secret_key(self.settings))
        return SandboxVideoRooms(self.clock, hashlib.blake2b(master, person=b"opsctl-video-rtc").digest())

    @cached_property
    def video_reminders(self) -> WeChatVisitReminders:
        """就诊提醒 as WeChat template messages (the sandbox server in sandbox mode)."""
        from opsctl.video_reminders import WeChatVisitReminders

        return WeChatVisitReminders(self.wechat)

    @cached_property
    def signer(self) -> InternalCa:
        return InternalCa(self.settings.data_dir / "ca")

    @cached_property
    def geocoder(self) -> SandboxGeocoder:
        # A map provider's geocoding adapter (高德/腾讯) replaces the gazetteer sandbox when configured.
        return SandboxGeocoder()

    @cached_property
    def privacy_numbers(self) -> SandboxPrivacyNumbers:
        return SandboxPrivacyNumbers(self.clock)

    @cached_property
    def embedder(self) -> Embedder:
        """The dense model; nothing is loaded until the first encode."""
        s = self.settings.search
        return Embedder(s.embedding_model, quantize_queries=s.quantize_queries, query_threads=s.query_threads,
                        query_backend=s.query_backend, query_precision=s.query_precision)

    @cached_property
    def kb_index(self) -> HybridIndex:
        return HybridIndex(self.settings.data_dir / "kb_index" / "passages", self.embedder,
                           scan_float16=self.settings.search.scan_float16,
                           candidates=self.settings.search.dense_candidates)

    @cached_property
    def scripts_index(self) -> HybridIndex:
        return HybridIndex(self.settings.data_dir / "kb_index" / "scripts", self.embedder,
                           scan_float16=self.settings.search.scan_float16,
                           candidates=self.settings.search.dense_candidates)

    @property
    def search_weights(self) -> dict[str, float]:
        return {"bm25": self.settings.search.bm25_weight, "dense": self.settings.search.dense_weight}

    def uow(self) -> UnitOfWork:
        if not self._schema_checked:
            self.check_schema()
        return UnitOfWork(self.engine, self.clock, self.vault, self.session_factory)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        """One session factory per process (a unit of work per request need not build its own)."""
        return sessionmaker(bind=self.engine, expire_on_commit=False)

    def check_schema(self) -> None:
        """Once per process: the database must be at the code's migration head."""
        from opsctl import db

        current, head = db.current_revision(self.engine), db.head_revision(self.engine)
        if current != head:
            state = "尚未初始化" if current is None else f"版本为 {current}，程序需要 {head}"
            raise ConfigurationError(f"数据库{state}", hint="请先运行 opsctl db upgrade")
        self._schema_checked = True

    @cached_property
    def wechat(self) -> OpsWeChatClient:
        """The WeChat client. Sandbox mode without ``wechat.api_base_url`` starts an in-process
        sandbox server for this process (``opsctl wechat sandbox`` runs a shared one)."""
        from campaigns.adapters.wechat_client import (
            LIVE_BASE_URL,
            OpsWeChatClient,
            SharedTokenStore,
        )

        wx = self.settings.wechat
        base_url = wx.api_base_url
        if base_url is None and wx.mode == "sandbox":
            base_url = self.sandbox.base_url
        return OpsWeChatClient(wx.app_id, wx.app_secret.get_secret_value(), SharedTokenStore(self.uow, wx.app_id),
                               base_url=base_url or LIVE_BASE_URL)

    @cached_property
    def sandbox(self) -> SandboxServer:
        from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat

        wx = self.settings.wechat
        server = SandboxServer(SandboxWeChat(wx.app_id, wx.app_secret.get_secret_value(), now=self.clock.now),
                               callback_url=f"{self.settings.http.public_base_url}/wechat/callback",
                               callback_token=wx.callback_token.get_secret_value(),
                               encoding_aes_key=wx.encoding_aes_key.get_secret_value() if wx.encoding_aes_key else None)
        return server.start()

    @cached_property
    def followup_channel(self) -> FollowupChannel:
        """Follow-up steps go into the push delivery ledger as WeChat template messages, under the
        push frequency cap (see campaigns.services.followup)."""
        from campaigns.domain.pushes import FrequencyCap
        from campaigns.services.followup import Channel

        return Channel(self.settings.followup.template_id, self.settings.http.public_base_url,
                       FrequencyCap(self.settings.push.cap_count, self.settings.push.cap_days))

    @property
    def followup_quiet_hours(self) -> str:
        return self.settings.followup.quiet_hours

    @property
    def push_job_options(self) -> dict[str, object]:
        """What the push jobs need: the WeChat sender, planning rules and the link renderer."""
        from campaigns.adapters.push_sender import WeChatPushSender
        from campaigns.services.render import make_renderer

        return {"sender": WeChatPushSender(self.wechat), "rules": rules_from(self.settings),
                "render": make_renderer(self.settings.http.public_base_url)}

    @property
    def live_pushes(self) -> CampaignAnnouncementPushes:
        """Live announcements to followers go out as pushes of the campaigns engine (the
        ``AnnouncementPushes`` port of content), with the configured sending rules."""
        from opsctl.live_pushes import CampaignAnnouncementPushes

        return CampaignAnnouncementPushes(rules_from(self.settings), self.settings.push.live_template_id)

    @property
    def report_archive_options(self) -> dict[str, object]:
        """Where the scheduled report archive goes, with the targets and suggestion rules."""
        from reports.domain.suggestions import Rules

        r = self.settings.reports
        return {"archive_root": self.settings.report_archive_dir, "targets": r.targets,
                "rules": Rules(drop_share=r.drop_share, far_below=r.far_below, channel_min_base=r.channel_min_base)}

    def close(self) -> None:
        if "sandbox" in self.__dict__:
            self.sandbox.stop()
        if "his_rx" in self.__dict__:
            self.his_rx.engine.dispose()
        if "engine" in self.__dict__:
            self.engine.dispose()


def load_or_create_secret_key(settings: Settings) -> str:
    """The master key: configured, or (embedded SQLite only) generated once into the data directory."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path: Path = settings.secret_key_file
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    if not settings.embedded:
        raise ConfigurationError(
            "使用外部数据库时必须配置数据加密密钥",
            hint="设置环境变量 OPSCTL_SECRET_KEY（所有机器使用同一密钥）",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_master_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key

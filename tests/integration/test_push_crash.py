"""A large push delivered by real ``opsctl push worker`` processes against the sandbox server with
faults (10 % of calls answered -1, latency). One worker is killed with SIGKILL mid-way and
restarted; the rows it left in ``sending`` become ``unknown`` and are settled from WeChat's
TEMPLATESENDJOBFINISH events. Counted from what the sandbox received: every follower got the
push exactly once. PostgreSQL runs two workers side by side (SKIP LOCKED); SQLite runs one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat
from campaigns.persistence.pushes import DeliveryRow
from campaigns.services import delivery, pushes
from campaigns.services.render import make_renderer
from opsctl.config import Settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support.pushes import add_followers, inbox_deliver, received_templates
from tests.support.wechat import APP_ID, APP_SECRET, client
from tests.integration.test_pushes import NOTICE, OPS

ROOT = Path(__file__).resolve().parents[2]
N = 400


def _worker(settings: Settings, server: SandboxServer) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPSCTL_DATABASE_URL=settings.effective_database_url,
               OPSCTL_SECRET_KEY=TEST_SECRET_KEY, OPSCTL_DATA_DIR=str(settings.data_dir),
               OPSCTL_WECHAT__APP_ID=APP_ID, OPSCTL_WECHAT__APP_SECRET=APP_SECRET,
               OPSCTL_WECHAT__API_BASE_URL=server.base_url, OPSCTL_PUSH__QUIET_HOURS="off",
               OPSCTL_PUSH__RETRY_DELAYS=json.dumps([0] * 12))
    return subprocess.Popen([sys.executable, "-m", "opsctl", "push", "worker", "--rate", "0", "--until-idle",
                             "--lease", "0", "--batch", "50", "--json"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_mid_push_loses_nothing_and_duplicates_nothing(container: Container, settings: Settings) -> None:
    container.clock.current = datetime.now(UTC)  # the workers run on the wall clock
    wechat = SandboxWeChat(APP_ID, APP_SECRET, seed=7)  # the sandbox too
    with SandboxServer(wechat, deliver=inbox_deliver(container)) as server:
        sender = WeChatPushSender(client(container, server))
        pushes.sync_templates(container.uow(), OPS, sender)
        openids = add_followers(container, server, N)
        seg = pushes.create_segment(container.uow(), OPS, "全部", {})
        push_id = pushes.create_push(container.uow(), OPS, name="大推送", kind="template", segment=seg.name,
                                     variants={"A": NOTICE}).public_id
        pushes.schedule(container.uow(), OPS, push_id, None, pushes.SendingRules(quiet=pushes.P.QuietHours.parse("off")))
        pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
        wechat.failure_share, wechat.latency_seconds = 0.10, 0.001

        postgres = container.engine.dialect.name == "postgresql"
        victim = _worker(settings, server)
        peer = _worker(settings, server) if postgres else None
        deadline = time.monotonic() + 60
        while len(wechat.template_sent) < N // 4 and time.monotonic() < deadline and victim.poll() is None:
            time.sleep(0.05)
        assert victim.poll() is None, "the worker finished before it could be killed"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        with container.uow() as uow:
            in_flight = uow.session.scalar(select(func.count()).select_from(DeliveryRow)
                                           .where(DeliveryRow.state == "sending"))
        restarted = _worker(settings, server)  # recovers the killed worker's claims as unknown
        for proc in (restarted, peer):
            if proc is not None:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err.decode()[-2000:]
        server.flush_events()  # WeChat's TEMPLATESENDJOBFINISH events reach the callback inbox
        container.clock.current = datetime.now(UTC)
        wechat.failure_share = 0.0
        settled = delivery.settle_unknown(container.uow(), container.clock.now(), sender=sender,
                                          render=make_renderer("http://127.0.0.1:8700"))

        got = received_templates(server)
        assert sum(got.values()) == N and set(got) == set(openids), "lost or duplicated"
        assert max(got.values()) == 1
        with container.uow() as uow:
            states = dict(uow.session.execute(select(DeliveryRow.state, func.count()).group_by(DeliveryRow.state)).all())
        assert states == {"sent": N}
        assert in_flight >= 0 and settled.failed == 0
        assert pushes.status(container.uow(), OPS, push_id)[0].status == "done"

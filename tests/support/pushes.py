"""Helpers for push tests: followers in the database and the sandbox, the sandbox's job-finished
events delivered straight into the callback inbox, and counts of what the sandbox received."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.sandbox_server import SandboxServer
from campaigns.services import callback, pushes
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import FollowerRow
from opsctl.wiring import Container
from tests.support.wechat import client, sandbox


def inbox_deliver(container: Container):  # noqa: ANN201
    """A ``deliver`` hook for SandboxServer: parse the event XML and enqueue it as the HTTP callback does."""

    def deliver(_url: str, body: bytes) -> int:
        fields = {child.tag: (child.text or "") for child in ET.fromstring(body)}
        callback.enqueue(container.uow(), fields)
        return 200

    return deliver


def add_followers(container: Container, server: SandboxServer, n: int, *, prefix: str = "o") -> list[str]:
    openids = [f"{prefix}{i:06d}" for i in range(n)]
    now = container.clock.now()
    with container.uow() as uow:
        uow.session.add_all(FollowerRow(openid=o, subscribed_at=now - timedelta(days=1)) for o in openids)
        uow.commit()
    for openid in openids:
        server.wechat.user_follows(openid)
    with server.wechat.lock:
        server.wechat.pending_events.clear()  # the follows are already in the table
    return openids


def received_templates(server: SandboxServer) -> Counter[str]:
    with server.wechat.lock:
        return Counter(m["touser"] for m in server.wechat.template_sent)


def received_mass(server: SandboxServer) -> Counter[str]:
    with server.wechat.lock:
        return Counter(o for job in server.wechat.mass_sent for o in job["sent"])


@contextmanager
def synced_sandbox(container: Container) -> Iterator[tuple[SandboxServer, WeChatPushSender]]:
    """The WeChat sandbox delivering into followers' inboxes, and a push sender whose message
    templates are synced from it."""
    with sandbox(container, deliver=inbox_deliver(container)) as server:
        sender = WeChatPushSender(client(container, server))
        pushes.sync_templates(container.uow(), Principal("ops:test", "ops", Role.OPERATIONS), sender)
        yield server, sender

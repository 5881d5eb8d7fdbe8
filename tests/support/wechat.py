"""The sandbox WeChat server for tests: in-process, on a free port, sharing the test clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat
from campaigns.adapters.wechat_client import OpsWeChatClient, SharedTokenStore
from opsctl.wiring import Container

APP_ID, APP_SECRET = "wxtest0000000001", "test-app-secret"


@contextmanager
def sandbox(container: Container, **server_args: object) -> Iterator[SandboxServer]:
    wechat = SandboxWeChat(APP_ID, APP_SECRET, now=container.clock.now)
    with SandboxServer(wechat, **server_args) as server:  # type: ignore[arg-type]
        yield server


def client(container: Container, server: SandboxServer, *, owner: str | None = None,
           sleeps: list[float] | None = None) -> OpsWeChatClient:
    record = sleeps if sleeps is not None else []
    return OpsWeChatClient(APP_ID, APP_SECRET, SharedTokenStore(container.uow, APP_ID, owner),
                           base_url=server.base_url, sleep=record.append, timeout=5)

"""``/wechat/callback`` end to end, with the sandbox server pushing events like WeChat: access
check, signatures, safe mode, dedupe of WeChat's retries, follower updates and channel
attribution; forged, replayed, oversized and XXE requests refused and stored nowhere."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns.adapters.sandbox_server import SandboxServer
from campaigns.persistence.models import ChannelRow, FunnelEventRow, QrCodeRow, WeChatInboxRow
from clinical_core.persistence.models import FollowerRow
from opsctl.config import Settings, WeChatSettings
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.wechat import APP_ID, APP_SECRET, sandbox

TOKEN = "callback-token-for-tests"
AES_KEY = base64.b64encode(b"k" * 32).decode().rstrip("=")  # 43 characters
OPENID = "oTEST0000000000000000000001"


@dataclass
class World:
    http: TestClient
    server: SandboxServer
    container: Container

    def count(self, model: type) -> int:
        with self.container.uow() as uow:
            return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _world(container: Container, aes: bool) -> Iterator[World]:
    wechat = WeChatSettings(app_id=APP_ID, app_secret=APP_SECRET, callback_token=TOKEN,
                            encoding_aes_key=AES_KEY if aes else None)
    settings: Settings = container.settings.model_copy(update={"wechat": wechat})
    with TestClient(create_app(settings, container), base_url="http://opsctl") as http:
        def deliver(url: str, body: bytes) -> int:
            return http.post(url, content=body, headers={"Content-Type": "text/xml"}).status_code

        with sandbox(container, callback_url="/wechat/callback", callback_token=TOKEN,
                     encoding_aes_key=AES_KEY if aes else None, deliver=deliver) as server:
            with container.uow() as uow:
                channel = ChannelRow(public_id="chn_test", code="dept-cardio", kind="department_poster",
                                     name="心内科海报", created_at=container.clock.now(), created_by="test")
                uow.session.add(channel)
                uow.session.flush()
                uow.session.add(QrCodeRow(public_id="qr_test", channel_id=channel.id, scene="ch:dept-cardio:1",
                                          permanent=True, created_at=container.clock.now()))
                uow.commit()
            yield World(http, server, container)


@pytest.fixture
def world(container: Container) -> Iterator[World]:
    yield from _world(container, aes=False)


@pytest.fixture
def safe_world(sqlite_container: Container) -> Iterator[World]:
    yield from _world(sqlite_container, aes=True)


def _xml(event: str, created: int, key: str = "") -> str:
    return (f"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>")


def test_access_check_echoes_only_when_signed(world: World) -> None:
    url, _ = world.server.signed_request(_xml("subscribe", 1))
    assert world.http.get(url + "&echostr=hello").text == "hello"
    forged = world.http.get("/wechat/callback?signature=bad&timestamp=1&nonce=2&echostr=hello")
    assert forged.status_code == 403 and "hello" not in forged.text


def test_follow_by_channel_qr_scan_and_unfollow(world: World) -> None:
    sb = world.server.wechat
    sb.user_follows(OPENID, scene="ch:dept-cardio:1")
    world.container.clock.advance(timedelta(minutes=1))
    sb.user_scans(OPENID, "ch:dept-cardio:1")
    world.container.clock.advance(timedelta(minutes=1))
    sb.user_unfollows(OPENID)
    assert world.server.flush_events() == [200, 200, 200]
    with world.container.uow() as uow:
        follower = uow.session.scalar(select(FollowerRow).where(FollowerRow.openid == OPENID))
        assert follower.scene == "ch:dept-cardio:1" and follower.unsubscribed_at is not None
        events = uow.session.execute(select(FunnelEventRow.event, FunnelEventRow.channel_id)
                                     .order_by(FunnelEventRow.id)).all()
        channel = uow.session.scalar(select(ChannelRow.id))
        assert events == [("subscribe", channel), ("scan", channel), ("unsubscribe", None)]
        assert set(uow.session.scalars(select(WeChatInboxRow.status))) == {"done"}


def test_wechats_retries_of_one_event_are_counted_once(world: World) -> None:
    xml = _xml("subscribe", int(world.container.clock.now().timestamp()), "qrscene_ch:dept-cardio:1")
    assert [world.server.deliver(xml) for _ in range(3)] == [200, 200, 200]
    assert world.count(WeChatInboxRow) == 1 and world.count(FunnelEventRow) == 1 and world.count(FollowerRow) == 1


def test_job_finish_events_are_kept(world: World) -> None:
    sb = world.server.wechat
    sb.user_follows(OPENID)
    sb._queue_event(OPENID, "TEMPLATESENDJOBFINISH", {"MsgID": "7", "Status": "failed:user block"})
    world.server.flush_events()
    with world.container.uow() as uow:
        details = uow.session.scalar(select(FunnelEventRow.details).where(FunnelEventRow.event == "templatesendjobfinish"))
    assert details == {"MsgID": "7", "Status": "failed:user block"}


def test_forged_replayed_oversized_and_xxe_requests_are_refused_and_stored_nowhere(world: World) -> None:
    now = int(world.container.clock.now().timestamp())
    xml = _xml("subscribe", now)
    url, body = world.server.signed_request(xml)
    forged = world.http.post(url.replace("signature=", "signature=0"), content=body)
    assert forged.status_code == 403
    old_url, old_body = world.server.signed_request(xml, timestamp=now - 3600)
    assert world.http.post(old_url, content=old_body).status_code == 403  # replay outside the window
    big = ("<xml>" + "<A>x</A>" * 20000 + "</xml>").encode()
    big_url, _ = world.server.signed_request(xml)
    assert world.http.post(big_url, content=big).status_code == 413
    xxe = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           b"<xml><FromUserName>&e;</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>")
    assert world.http.post(url, content=xxe).status_code == 422
    bomb = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b"<xml><FromUserName>&b;</FromUserName><CreateTime>1</CreateTime></xml>")
    assert world.http.post(url, content=bomb).status_code == 422
    assert world.count(WeChatInboxRow) == 0 and world.count(FollowerRow) == 0


def test_safe_mode_decrypts_and_refuses_plaintext(safe_world: World) -> None:
    sb = safe_world.server.wechat
    sb.user_follows(OPENID, scene="ch:dept-cardio:1")
    assert safe_world.server.flush_events() == [200]
    assert safe_world.count(FollowerRow) == 1
    _, body = safe_world.server.signed_request(_xml("SCAN", 5))
    assert b"<Encrypt>" in body and OPENID.encode() not in body
    plain_url = safe_world.server.signed_request(_xml("SCAN", 5))[0].split("&encrypt_type")[0]
    assert safe_world.http.post(plain_url, content=_xml("SCAN", 5).encode()).status_code == 403
    url, body = safe_world.server.signed_request(_xml("SCAN", 6))
    tampered = url.replace("msg_signature=", "msg_signature=0")
    assert safe_world.http.post(tampered, content=body).status_code == 403
    assert safe_world.count(WeChatInboxRow) == 1



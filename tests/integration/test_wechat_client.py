"""The WeChat client against the sandbox server: the shared token, bounded retries, back-off,
quota errors, and the sandbox's enforcement of WeChat's limits. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.adapters.wechat_client import SharedTokenStore
from campaigns.domain.errors import WeChatApiError, WeChatQuotaError
from campaigns.persistence.models import WeChatTokenRow
from opsctl.wiring import Container
from tests.support.wechat import APP_ID, client, sandbox

MENU = {"button": [{"type": "click", "name": "预约挂号", "key": "BOOK"}]}


def openids(n: int) -> list[str]:
    return [f"oTEST{i:023d}" for i in range(n)]


def test_token_is_shared_through_the_database(container: Container) -> None:
    with sandbox(container) as server:
        first, second = client(container, server, owner="a"), client(container, server, owner="b")
        first.menu.create(MENU)
        assert second.menu.get()["menu"] == MENU
        assert first.token_fetches + second.token_fetches == 1
        assert server.wechat.token_calls == 1
        with container.uow() as uow:
            row = uow.session.scalar(select(WeChatTokenRow).where(WeChatTokenRow.app_id == APP_ID))
            assert row.refresh_count == 1 and row.lease_owner is None
        container.clock.advance(timedelta(seconds=7200 - 200))  # inside the 5-minute renewal margin
        second.menu.get()
        assert server.wechat.token_calls == 2


def test_refresh_lease_is_taken_by_one_process(container: Container) -> None:
    a, b = SharedTokenStore(container.uow, APP_ID, "a"), SharedTokenStore(container.uow, APP_ID, "b")
    assert a.take_lease() is True
    assert b.take_lease() is False
    container.clock.advance(timedelta(seconds=31))  # a holder that died releases by expiry
    assert b.take_lease() is True


def test_invalid_token_is_retried_exactly_once(container: Container) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        wx.menu.create(MENU)
        server.wechat.expire_all_tokens()
        assert wx.menu.get()["menu"] == MENU  # 40001 → refresh → retried once
        server.wechat.inject(40001, times=10)
        before = len(server.wechat.received)
        with pytest.raises(WeChatApiError) as raised:
            wx.menu.get()
        assert raised.value.errcode == 40001
        api_calls = [r for r in server.wechat.received[before:] if r.path.endswith("menu/get")]
        assert len(api_calls) == 2  # the call and one retry, never a loop


def test_busy_and_frequency_errors_back_off_then_give_up(container: Container) -> None:
    with sandbox(container) as server:
        sleeps: list[float] = []
        wx = client(container, server, sleeps=sleeps)
        wx.menu.create(MENU)
        server.wechat.inject(-1, times=2)
        assert wx.menu.get()["menu"] == MENU
        assert sleeps == [0.5, 1.0]
        sleeps.clear()
        server.wechat.inject(45011, times=10)
        with pytest.raises(WeChatApiError) as raised:
            wx.menu.get()
        assert raised.value.errcode == 45011 and sleeps == [0.5, 1.0, 2.0]


def test_daily_quota_surfaces_with_its_chinese_meaning(container: Container) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        server.wechat.inject(45009, path="menu/create")
        with pytest.raises(WeChatQuotaError) as raised:
            wx.menu.create(MENU)
        assert "每日调用次数已用完" in str(raised.value)


def test_share_of_failures_and_latency_faults(container: Container) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        wx.menu.create(MENU)
        server.wechat.failure_share = 1.0
        with pytest.raises(WeChatApiError) as raised:
            wx.menu.get()
        assert raised.value.errcode == -1
        server.wechat.failure_share, server.wechat.latency_seconds = 0.0, 0.05
        assert wx.menu.get()["menu"] == MENU


def test_sandbox_enforces_menu_limits_and_conditional_rules(container: Container) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        with pytest.raises(WeChatApiError) as raised:
            wx.menu.add_conditional({**MENU, "matchrule": {"tag_id": "100"}})
        assert raised.value.errcode == 65303  # the default menu must exist first
        with pytest.raises(WeChatApiError) as raised:
            wx.menu.create({"button": [{"type": "click", "name": "六个汉字名称", "key": "k"}]})
        assert raised.value.errcode == 40018
        wx.menu.create(MENU)
        menuid = wx.menu.add_conditional({**MENU, "matchrule": {"tag_id": "100"}})["menuid"]
        with pytest.raises(WeChatApiError) as raised:
            wx.menu.add_conditional({**MENU, "matchrule": {"province": "广东"}})
        assert raised.value.errcode == 65320
        assert len(wx.menu.get()["conditionalmenu"]) == 1
        wx.menu.delete()
        assert wx.menu.get() is None and menuid


def test_sandbox_qr_codes_and_images(container: Container) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        temp = wx.qrcode.create({"expire_seconds": 9_999_999, "action_name": "QR_STR_SCENE",
                                 "action_info": {"scene": {"scene_str": "ch:x:1"}}})
        assert temp["expire_seconds"] == 2_592_000  # capped at 30 days
        assert wx.qrcode_image(temp["ticket"]).startswith(b"\x89PNG")
        container.clock.advance(timedelta(days=31))
        with pytest.raises(WeChatApiError):
            wx.qrcode_image(temp["ticket"])  # expired
        server.wechat.permanent_scenes.update(str(i) for i in range(100_000))
        with pytest.raises(WeChatApiError):
            wx.qrcode.create({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "new"}}})
        with pytest.raises(WeChatApiError) as raised:
            wx.qrcode.create({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene_id": 5}})  # no scene wrapper
        assert raised.value.errcode == 40053


def test_sandbox_messages_enforce_wechats_rules(container: Container) -> None:
    with sandbox(container) as server:
        wx, sb = client(container, server), server.wechat
        users = openids(3)
        for openid in users:
            sb.user_follows(openid)
        with pytest.raises(WeChatApiError) as raised:
            wx.post("message/mass/send", data={"touser": users[:1], "msgtype": "text", "text": {"content": "x"}})
        assert raised.value.errcode == 40130
        for _ in range(5):
            wx.post("message/mass/send", data={"touser": users, "msgtype": "text", "text": {"content": "x"}})
        assert [len(m["sent"]) for m in sb.mass_sent] == [3, 3, 3, 3, 0]  # 4 per user per month
        tag = wx.tag.create("高血压随访")["id"]
        wx.tag.tag_user(tag, users[:2])
        result = wx.post("message/mass/sendall", data={"filter": {"is_to_all": False, "tag_id": tag},
                                                        "msgtype": "text", "text": {"content": "x"}})
        assert result["msg_id"] and sb.mass_sent[-1]["how"] == "tag"
        wx.message.send_template(users[0], "tpl_sandbox_notice", {"thing1": {"value": "字" * 25}})
        assert sb.template_sent[-1]["data"]["thing1"]["value"] == "字" * 20  # WeChat truncates silently
        assert wx.message.send_mass_text(users[0], "预览", preview=True)["errmsg"] == "preview success"
        for _ in range(3):
            wx.message.send_text(users[1], "欢迎关注")
        with pytest.raises(WeChatApiError) as raised:
            wx.message.send_text(users[1], "第四条")
        assert raised.value.errcode == 45047
        container.clock.advance(timedelta(minutes=2))
        with pytest.raises(WeChatApiError) as raised:
            wx.message.send_text(users[2], "窗口外")
        assert raised.value.errcode == 45015
        assert wx.user.get(users[0])["subscribe"] == 1
        events = [x for x in sb.pending_events if "JOBFINISH" in x]
        assert any("TEMPLATESENDJOBFINISH" in x for x in events) and any("MASSSENDJOBFINISH" in x for x in events)
        assert any(r.path.endswith("message/custom/send") for r in sb.received)


def test_sandbox_answers_raw_http_with_wechats_shapes(container: Container) -> None:
    import httpx

    with sandbox(container) as server:
        base = server.base_url
        assert httpx.get(base + "menu/get").json() == {"errcode": 41001, "errmsg": "缺少 access_token 参数"}
        assert httpx.get(base + "menu/get", params={"access_token": "forged"}).json()["errcode"] == 40001
        bad = httpx.get(base + "token", params={"grant_type": "client_credential", "appid": APP_ID, "secret": "x"})
        assert bad.json()["errcode"] == 40001
        token = httpx.get(base + "token", params={"grant_type": "client_credential", "appid": APP_ID,
                                                  "secret": "test-app-secret"}).json()
        assert token["expires_in"] == 7200 and len(token["access_token"]) >= 100
        broken = httpx.post(base + "menu/create", params={"access_token": token["access_token"]}, content=b"{no json")
        assert broken.json()["errcode"] == 47001
        second = httpx.get(base + "token", params={"grant_type": "client_credential", "appid": APP_ID,
                                                   "secret": "test-app-secret"}).json()
        ok = httpx.get(base + "menu/get", params={"access_token": token["access_token"]}).json()
        assert ok["errcode"] == 46003  # the old token still works for 5 minutes after a new one
        container.clock.advance(timedelta(minutes=6))
        assert httpx.get(base + "menu/get", params={"access_token": token["access_token"]}).json()["errcode"] == 42001
        assert httpx.get(base + "menu/get", params={"access_token": second["access_token"]}).json()["errcode"] == 46003
        assert [r.path for r in server.wechat.received][:2] == ["/cgi-bin/menu/get", "/cgi-bin/menu/get"]

"""Sends one template message or one mass-send call, and reports WeChat's answer as a code.

The WeChat client's own back-off is switched off here: the delivery ledger decides about
retries (a row goes back to ``pending`` with a delay), so a busy WeChat never holds a worker.
``errcode None`` means there was no answer: the call may have reached WeChat.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from campaigns.adapters.keepalive_http import KeepAliveConnection
from campaigns.adapters.wechat_client import TOKEN_ERRORS, OpsWeChatClient
from campaigns.domain.errors import WeChatApiError

IDLE_RECONNECT_SECONDS = 4.0  # reopen a keep-alive connection idle this long instead of risking a stale one


@dataclass(frozen=True, slots=True)
class CallResult:
    errcode: int | None
    msgid: str | None = None


class WeChatPushSender:
    def __init__(self, client: OpsWeChatClient) -> None:
        client.backoff = ()
        client.token_cache_seconds = 30.0  # one DB read of the shared token per 30 s, not per message
        self.client = client
        base = urlsplit(client.API_BASE_URL)
        self._https = base.scheme == "https"
        self._host, self._port, self._path = base.hostname or "", base.port, base.path
        self._local = threading.local()
        self._token_lock = threading.Lock()  # this process's call threads refresh one at a time

    def _token(self, bad: str | None = None) -> str:
        with self._token_lock:
            if bad is not None:
                cached = self.client._cached
                if cached is None or cached[0] == bad:  # nobody here has replaced it yet
                    fresh = self.client._refresh(bad)
                    self.client._cached = (fresh, time.monotonic() + self.client.token_cache_seconds)
                    return fresh
            return self.client.access_token

    # -- the hot path: one keep-alive connection per thread, WeChat's token from the shared row ---
    def _connection(self) -> KeepAliveConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - getattr(self._local, "used", 0.0) > IDLE_RECONNECT_SECONDS:
            conn.close()
            conn = None
        if conn is None:
            conn = KeepAliveConnection(self._host, self._port, https=self._https, timeout=self.client.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _send(self, endpoint: str, data: dict[str, Any], id_key: str) -> CallResult:
        """POST a message. Token errors (the call was refused) refresh once and retry; anything
        without a WeChat answer is ``CallResult(None)``: it may have been delivered."""
        body = json.dumps(data, ensure_ascii=False).encode()
        try:
            token = self._token()
        except WeChatApiError as exc:  # no token, nothing sent: WeChat's code decides retry or fail
            return CallResult(exc.errcode or -1)
        for attempt in range(2):
            try:
                status, raw = self._connection().post(f"{self._path}{endpoint}?access_token={token}", body)
                self._local.used = time.monotonic()
            except (OSError, http.client.HTTPException):
                self._drop()
                return CallResult(None)
            if status != 200:
                return CallResult(None)
            try:
                result = json.loads(raw)
            except ValueError:
                return CallResult(None)
            code = int(result.get("errcode") or 0)
            if code in TOKEN_ERRORS and attempt == 0:
                try:
                    token = self._token(bad=token)
                except WeChatApiError as exc:  # the refused call was not delivered; retry later
                    return CallResult(exc.errcode or -1)
                continue
            if code == 45065:  # the same clientmsgid was sent before: that job stands
                return CallResult(0, None if result.get("msg_id") is None else str(result["msg_id"]))
            if code:
                return CallResult(code)
            value = result.get(id_key)
            return CallResult(0, None if value is None else str(value))
        return CallResult(40001)

    def _post(self, endpoint: str, data: dict[str, Any], id_key: str) -> CallResult:
        try:
            result = self.client.post(endpoint, data=data)
        except WeChatApiError as exc:
            if exc.errcode == 45065:  # the same clientmsgid was sent before: that job stands
                return CallResult(0, None)
            return CallResult(exc.errcode)
        except Exception:  # noqa: BLE001 - anything else (socket, decode) is "no answer"
            return CallResult(None)
        value = result.get(id_key) if isinstance(result, dict) else None
        return CallResult(0, None if value is None else str(value))

    def template(self, openid: str, template_id: str, data: dict[str, str], *, url: str | None,
                 client_msg_id: str) -> CallResult:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "client_msg_id": client_msg_id,
                                "data": {k: {"value": v} for k, v in data.items()}}
        if url:
            body["url"] = url
        return self._send("message/template/send", body, "msgid")

    def mass(self, openids: list[str], message: dict[str, Any], *, clientmsgid: str) -> CallResult:
        body = {"touser": openids, "clientmsgid": clientmsgid, "send_ignore_reprint": 0, **mass_body(message)}
        return self._send("message/mass/send", body, "msg_id")

    def preview(self, openid: str, message: dict[str, Any]) -> CallResult:
        return self._post("message/mass/preview", {"touser": openid, **mass_body(message)}, "msg_id")

    def templates(self) -> list[dict[str, Any]]:
        result = self.client.get("template/get_all_private_template")
        return list(result.get("template_list") or [])

    def tag_members(self, tag_id: int) -> list[str]:
        openids: list[str] = []
        next_openid = ""
        while True:
            result = self.client.post("user/tag/get", data={"tagid": tag_id, "next_openid": next_openid})
            openids += list((result.get("data") or {}).get("openid") or [])
            next_openid = result.get("next_openid") or ""
            if not next_openid or not result.get("count"):
                return openids


def mass_body(message: dict[str, Any]) -> dict[str, Any]:
    """WeChat's body for a mass message: text, image (media_id) or article (mpnews media_id)."""
    kind = message["msgtype"]
    if kind == "text":
        return {"msgtype": "text", "text": {"content": message["text"]}}
    return {"msgtype": kind, kind: {"media_id": message["media_id"]}}

"""Sends one template message or one mass-send call, and reports WeChat's answer as a code.

The WeChat client's own back-off is switched off here: the delivery ledger decides about
retries (a row goes back to ``pending`` with a delay), so a busy WeChat never holds a worker.
``errcode None`` means there was no answer: the call may have reached WeChat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaigns.adapters.wechat_client import OpsWeChatClient
from campaigns.domain.errors import WeChatApiError


@dataclass(frozen=True, slots=True)
class CallResult:
    errcode: int | None
    msgid: str | None = None


class WeChatPushSender:
    def __init__(self, client: OpsWeChatClient) -> None:
        client.backoff = ()
        client.token_cache_seconds = 30.0  # one DB read of the shared token per 30 s, not per message
        self.client = client

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
        return self._post("message/template/send", body, "msgid")

    def mass(self, openids: list[str], message: dict[str, Any], *, clientmsgid: str) -> CallResult:
        body = {"touser": openids, "clientmsgid": clientmsgid, "send_ignore_reprint": 0, **mass_body(message)}
        return self._post("message/mass/send", body, "msg_id")

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

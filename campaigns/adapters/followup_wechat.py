"""The follow-up sender over the WeChat client: one template message per step.

Template messages are the channel WeChat allows for service notices outside the 48-hour
customer-service window. Each field is at most 20 characters without line breaks (checked
before the call, as WeChat truncates silently); the step's content (questionnaire, image,
voice, course, booking page) is behind the message's link.

Outcomes: an answer from WeChat with an error code means *not delivered* (``DeliveryRefused``,
retryable for busy / quota codes); no answer at all (timeout, connection lost) means the
message *may* have been delivered (``DeliveryUnknown``): the caller never resends it blindly.
"""

from __future__ import annotations

from typing import Any

from campaigns.domain import limits as L
from campaigns.domain.errors import WeChatApiError
from campaigns.domain.followup import (
    DeliveryRefused,
    DeliveryUnknown,
    OutboundMessage,
    SendReceipt,
    template_data,
)

RETRYABLE = frozenset({-1, 45009, 45011, 45047})


class WeChatFollowupSender:
    """``FollowupSender`` over ``OpsWeChatClient`` (sandbox or live)."""

    def __init__(self, client: Any, template_id: str, public_base_url: str) -> None:
        self.client = client
        self.template_id = template_id
        self.public_base_url = public_base_url.rstrip("/")

    def data(self, message: OutboundMessage) -> dict[str, dict[str, str]]:
        data = template_data(message)
        L.check_template_data(data)
        return data

    def send(self, message: OutboundMessage) -> SendReceipt:
        url = message.url
        if url and url.startswith("/"):
            url = self.public_base_url + url
        try:
            result = self.client.message.send_template(message.openid, self.template_id, self.data(message), url=url)
        except WeChatApiError as exc:
            if exc.errcode is None:
                raise DeliveryUnknown("微信无应答，消息可能已送达") from None
            raise DeliveryRefused(f"微信拒绝发送（{exc.errcode}）：{L.meaning(exc.errcode)}"[:200],
                                  retryable=exc.errcode in RETRYABLE) from None
        msgid = (result or {}).get("msgid")
        return SendReceipt(str(msgid) if msgid is not None else None)

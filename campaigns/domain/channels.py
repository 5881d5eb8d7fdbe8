"""Channels and the QR scene strings that encode them (shared/research/wechat.md §1.4).

A channel (department poster, doctor card, package-card batch, article, event) owns its QR
codes. Scene strings (≤64 characters) encode the channel: ``ch:<code>`` for a channel's own
codes, ``pc:<batch>:<seq>`` for one package card of a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from clinical_core.domain.errors import InvalidInput

from campaigns.domain.limits import QR_SCENE_STR_MAX


class ChannelKind(StrEnum):
    DEPARTMENT_POSTER = "department_poster"
    DOCTOR_CARD = "doctor_card"
    PACKAGE_CARD = "package_card"
    ARTICLE = "article"
    EVENT = "event"

    @property
    def label(self) -> str:
        return {"department_poster": "科室海报", "doctor_card": "医生名片", "package_card": "包裹卡",
                "article": "公众号文章", "event": "线下活动"}[self.value]


CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")
SUBSCRIBE_PREFIX = "qrscene_"


def check_code(code: str) -> str:
    code = (code or "").strip().lower()
    if not CODE_RE.match(code):
        raise InvalidInput("渠道编码应为 2 到 40 位小写字母、数字、-、_，以字母或数字开头", field="code")
    return code


def channel_scene(code: str, n: int) -> str:
    scene = f"ch:{code}:{n}"
    if len(scene) > QR_SCENE_STR_MAX:
        raise InvalidInput("场景值超过 64 个字符", field="code")
    return scene


def card_scene(batch_code: str, seq: int) -> str:
    scene = f"pc:{batch_code}:{seq:05d}"
    if len(scene) > QR_SCENE_STR_MAX:
        raise InvalidInput("场景值超过 64 个字符", field="batch")
    return scene


def scene_from_event_key(event: str, event_key: str | None) -> str | None:
    """The scene of a follow or scan: subscribe carries ``qrscene_`` + scene, SCAN the bare scene,
    a plain follow none."""
    key = (event_key or "").strip()
    if not key:
        return None
    if event == "subscribe":
        return key[len(SUBSCRIBE_PREFIX):] or None if key.startswith(SUBSCRIBE_PREFIX) else None
    return key


@dataclass(frozen=True, slots=True)
class InboundKey:
    """How WeChat's retries of one message or event are recognised: MsgId for messages,
    FromUserName + CreateTime for events (§1.9). The event name and a job's MsgID are added,
    because a follow and a template job result can share the sender and the second; a retry
    repeats all of them."""

    value: str

    @classmethod
    def of(cls, fields: dict[str, str]) -> InboundKey:
        msg_id = fields.get("MsgId") or ""
        if msg_id and fields.get("MsgType") != "event":
            return cls(f"msg:{msg_id}")
        sender, created = fields.get("FromUserName") or "", fields.get("CreateTime") or ""
        if not sender or not created.isdigit():
            raise InvalidInput("回调消息缺少 FromUserName 或 CreateTime")
        extra = ":".join(x for x in (fields.get("Event") or "", fields.get("MsgID") or "") if x)
        return cls(f"evt:{sender}:{created}" + (f":{extra}" if extra else ""))

"""``/wechat/callback``: WeChat's server-to-server push (shared/research/wechat.md §1.9, §1.10).

- GET: access check; the echostr is echoed only when the signature matches.
- POST: the signature (constant-time), a replay window on the timestamp, a body size limit, XML
  parsed with defusedxml (no DTDs, no entities), AES safe mode with wechatpy's crypto. A valid
  event is stored in the inbox (once per MsgId or FromUserName+CreateTime) and answered
  ``success`` at once; processing runs after the response. Forged, replayed, oversized and
  XXE requests are refused before anything is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from campaigns.services import callback as service
from clinical_core.domain.errors import Forbidden, InvalidInput
from clinical_core.persistence.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallbackConfig:
    token: str
    app_id: str
    encoding_aes_key: str | None = None
    max_body_bytes: int = 64 * 1024
    replay_window_seconds: int = 300


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, *extra])).encode()).hexdigest()


def _verify(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected, given):
        raise Forbidden("微信回调签名无效")


def parse_xml(body: bytes) -> dict[str, str]:
    """Flat ``<xml>`` children as a dict; DTDs, entities and external references refused."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError):
        raise InvalidInput("回调消息不是合法的 XML") from None
    if root.tag != "xml":
        raise InvalidInput("回调消息的根元素应为 xml")
    return {child.tag: (child.text or "").strip() for child in root if len(child) == 0}


def make_router(config: CallbackConfig) -> APIRouter:
    router = APIRouter(prefix="/wechat", tags=["wechat"])

    def check(request: Request, timestamp: str, nonce: str, sig: str | None) -> UnitOfWork:
        _verify(signature(config.token, timestamp, nonce), sig)
        uow: UnitOfWork = request.app.state.uow_factory()
        if not timestamp.isdigit() or abs(uow.clock.now().timestamp() - int(timestamp)) > config.replay_window_seconds:
            raise Forbidden("微信回调时间戳超出允许范围（疑似重放）")
        return uow

    @router.get("/callback", response_class=PlainTextResponse, summary="微信服务器接入验证")
    def verify(request: Request, signature_: Annotated[str, Query(alias="signature")] = "",
               timestamp: str = "", nonce: str = "", echostr: str = "") -> str:
        check(request, timestamp, nonce, signature_)
        return echostr

    @router.post("/callback", response_class=PlainTextResponse, summary="微信事件推送")
    async def receive(request: Request, background: BackgroundTasks,
                      signature_: Annotated[str, Query(alias="signature")] = "", timestamp: str = "",
                      nonce: str = "", encrypt_type: str = "", msg_signature: str = "") -> str:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise HTTPException(413, f"回调消息超过 {config.max_body_bytes} 字节")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_body_bytes:
                raise HTTPException(413, f"回调消息超过 {config.max_body_bytes} 字节")
        uow = check(request, timestamp, nonce, signature_)
        fields = parse_xml(body)
        if encrypt_type == "aes":
            fields = _decrypt(config, fields, msg_signature, timestamp, nonce)
        elif config.encoding_aes_key:
            raise Forbidden("已启用安全模式，拒绝明文回调")
        result = await run_in_threadpool(service.enqueue, uow, fields)
        if result.new:
            factory: Callable[[], UnitOfWork] = request.app.state.uow_factory
            background.add_task(lambda: service.process_inbox(factory()))
        return "success"

    return router


def _decrypt(config: CallbackConfig, envelope: dict[str, str], msg_signature: str, timestamp: str,
             nonce: str) -> dict[str, str]:
    if not config.encoding_aes_key:
        raise InvalidInput("未配置 EncodingAESKey，不能解密安全模式消息")
    encrypt = envelope.get("Encrypt") or ""
    _verify(signature(config.token, timestamp, nonce, encrypt), msg_signature)
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

    crypto = WeChatCrypto(config.token, config.encoding_aes_key, config.app_id)
    try:
        plain = crypto.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce)
    except (InvalidSignatureException, InvalidAppIdException):
        raise Forbidden("微信回调解密失败") from None
    except Exception:  # noqa: BLE001 - malformed ciphertext
        raise InvalidInput("微信回调密文无效") from None
    return parse_xml(plain.encode() if isinstance(plain, str) else plain)

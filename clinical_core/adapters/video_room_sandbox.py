"""A video-room sandbox that signs tokens as Tencent TRTC signs UserSig.

The token is TRTC's format: a JSON document (``TLS.ver``, ``TLS.identifier``,
``TLS.sdkappid``, ``TLS.expire``, ``TLS.time``, ``TLS.sig``) deflated with
zlib and base64-encoded with TRTC's URL-safe substitutions (``+``→``*``,
``/``→``-``, ``=``→``_``). ``TLS.sig`` is HMAC-SHA256 over the identifier,
app id, time and lifetime, extended with the room (TRTC's *privilege map*
binding a signature to one ``strRoomId``), so a token joins only its room and
only until it expires. Rooms are remembered in memory; a closed room refuses
every token. The key comes from configuration, so every process verifies the
tokens of every other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from datetime import UTC, datetime

from clinical_core.domain.errors import InvalidInput, Unauthenticated
from clinical_core.domain.time import Clock
from clinical_core.ports.video_room import RoomToken, TokenClaims

SDK_APP_ID = 1400000000  # the sandbox's application id


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode().replace("+", "*").replace("/", "-").replace("=", "_")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.replace("*", "+").replace("-", "/").replace("_", "="), validate=True)


class SandboxVideoRooms:
    def __init__(self, clock: Clock, key: bytes, app_id: int = SDK_APP_ID) -> None:
        if len(key) < 16:
            raise InvalidInput("视频房间签名密钥过短")
        self.clock, self._key, self.app_id = clock, key, app_id
        self.rooms: dict[str, datetime] = {}  # room id → closes at
        self.closed: set[str] = set()

    def room_id_for(self, visit_id: str) -> str:
        digest = hmac.new(self._key, f"room:{visit_id}".encode(), hashlib.sha256).hexdigest()[:20]
        return f"vc_{digest}"

    def open_room(self, visit_id: str, closes_at: datetime) -> str:
        room_id = self.room_id_for(visit_id)
        self.rooms.setdefault(room_id, closes_at)
        return room_id

    def _sig(self, identifier: str, issued: int, lifetime: int, room_id: str) -> str:
        content = (f"TLS.identifier:{identifier}\nTLS.sdkappid:{self.app_id}\nTLS.time:{issued}\n"
                   f"TLS.expire:{lifetime}\nTLS.strRoomId:{room_id}\n")
        return base64.b64encode(hmac.new(self._key, content.encode(), hashlib.sha256).digest()).decode()

    def issue_token(self, room_id: str, participant_id: str, role: str, expires_at: datetime) -> RoomToken:
        if room_id in self.closed:
            raise Unauthenticated(f"视频房间 {room_id} 已关闭")
        issued = int(self.clock.now().timestamp())
        lifetime = int(expires_at.timestamp()) - issued
        if lifetime <= 0:
            raise InvalidInput("令牌的到期时间必须晚于现在", field="expires_at")
        document = {"TLS.ver": "2.0", "TLS.identifier": participant_id, "TLS.sdkappid": self.app_id,
                    "TLS.expire": lifetime, "TLS.time": issued, "TLS.strRoomId": room_id, "TLS.role": role,
                    "TLS.sig": self._sig(f"{participant_id}|{role}", issued, lifetime, room_id)}
        token = _b64encode(zlib.compress(json.dumps(document, separators=(",", ":")).encode()))
        return RoomToken(room_id, participant_id, role, datetime.fromtimestamp(issued + lifetime, UTC), token)

    def verify_token(self, token: str) -> TokenClaims:
        try:
            document = json.loads(zlib.decompress(_b64decode(token)))
            identifier, role = str(document["TLS.identifier"]), str(document["TLS.role"])
            issued, lifetime = int(document["TLS.time"]), int(document["TLS.expire"])
            room_id, sig = str(document["TLS.strRoomId"]), str(document["TLS.sig"])
            app_id = int(document["TLS.sdkappid"])
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            raise Unauthenticated("视频令牌格式无效") from exc
        expected = self._sig(f"{identifier}|{role}", issued, lifetime, room_id)
        if app_id != self.app_id or not hmac.compare_digest(expected, sig):
            raise Unauthenticated("视频令牌签名无效")
        expires_at = datetime.fromtimestamp(issued + lifetime, UTC)
        if self.clock.now() >= expires_at:
            raise Unauthenticated("视频令牌已过期")
        if room_id in self.closed:
            raise Unauthenticated(f"视频房间 {room_id} 已关闭")
        return TokenClaims(room_id, identifier, role, expires_at)

    def close_room(self, room_id: str) -> None:
        self.closed.add(room_id)
        self.rooms.pop(room_id, None)

"""Port for the real-time video provider (RTC): rooms and per-participant tokens.

Shaped after Tencent TRTC: the server creates a room (``strRoomId``) and signs
each participant a short-lived UserSig bound to the room; the client app joins
with it. A real provider adapter plugs in here; ``adapters.video_room_sandbox``
signs and verifies the same way for the demo and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RoomToken:
    room_id: str
    participant_id: str
    role: str  # patient | doctor | guest
    expires_at: datetime
    token: str


@dataclass(frozen=True, slots=True)
class TokenClaims:
    room_id: str
    participant_id: str
    role: str
    expires_at: datetime


class VideoRoomPort(Protocol):
    def open_room(self, visit_id: str, closes_at: datetime) -> str:
        """Create (or return, idempotently by visit) the room of one visit; its id."""
        ...

    def issue_token(self, room_id: str, participant_id: str, role: str, expires_at: datetime) -> RoomToken: ...

    def verify_token(self, token: str) -> TokenClaims:
        """Raises ``Unauthenticated`` for a forged, altered or expired token."""
        ...

    def close_room(self, room_id: str) -> None:
        """Dismiss the room: every participant is removed and no token joins it again."""
        ...

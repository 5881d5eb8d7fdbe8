"""Port for consultation attachments (图片、语音), stored content-addressed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredBlob:
    sha256: str
    size: int


class AttachmentStore(Protocol):
    def put(self, data: bytes) -> StoredBlob:
        """Store once per content; storing the same bytes again is a no-op."""
        ...

    def get(self, sha256: str) -> bytes: ...

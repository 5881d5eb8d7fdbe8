"""Port for personal-data protection (加密存储与检索)."""

from __future__ import annotations

from typing import Protocol


class Vault(Protocol):
    """Encrypts personal data at rest and makes keyed lookup hashes."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...

    def lookup_hash(self, kind: str, normalised_value: str) -> str:
        """Keyed hash for equality lookups; ``kind`` separates domains (phone, id_card)."""
        ...

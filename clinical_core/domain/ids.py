"""Public identifiers: random, URL-safe, prefixed by kind (``pat_…``).

Sequential integers stay inside the database; the API and the CLI show
these. 16 random bytes → 22 base32 characters, no guessable order.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable

RandomBytes = Callable[[int], bytes]


def new_public_id(prefix: str, random_bytes: RandomBytes = secrets.token_bytes) -> str:
    raw = base64.b32encode(random_bytes(15)).decode("ascii").lower()
    return f"{prefix}_{raw}"

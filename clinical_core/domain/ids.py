"""Public identifiers: random, URL-safe, prefixed by kind (``pat_…``).

Sequential integers stay inside the database; the API and the CLI show
these: 96 random bits as 24 hex characters, no guessable order.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

RandomBytes = Callable[[int], bytes]


def new_public_id(prefix: str, random_bytes: RandomBytes = secrets.token_bytes) -> str:
    return f"{prefix}_{random_bytes(12).hex()}"

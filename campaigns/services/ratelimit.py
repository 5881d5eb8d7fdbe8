"""A token bucket shared by every push worker of one official account (WeChat's limit is per
account, not per process).

The bucket is one row (``push_rate_buckets``): ``tokens`` left at ``stamp`` (epoch seconds). A
worker takes tokens with ONE conditional UPDATE that refills by the elapsed time, caps at
``burst`` and subtracts — and matches only if enough tokens are there, so two workers can never
take the same token (the database serialises the UPDATEs; no read-modify-write race, no Python
lock across processes). A worker takes a small block (about a tenth of a second of the rate) per
statement and hands it to its call threads, so the database sees ~10 statements per second per
worker, not one per message. In any window of W seconds all workers together make at most
``burst + rate × W + workers × block`` calls.

Clocks: each worker uses its own wall clock; a clock behind the row's stamp refills nothing
(never a negative refill), so a skewed machine can only slow itself down.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from sqlalchemy import case, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from campaigns.persistence.pushes import RateBucketRow
from clinical_core.persistence.uow import UnitOfWork

BLOCK_SECONDS = 0.1  # a worker takes about this much of the rate per statement


class SharedRateLimiter:
    """``acquire()`` blocks until this account's bucket has a token for one call."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], key: str, rate: float | None, burst: int = 10, *,
                 block: int | None = None, now: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.uow_factory, self.key, self.rate = uow_factory, key[:64], rate
        self.burst = max(1, burst)
        self.block = max(1, min(self.burst, block or math.ceil((rate or 0) * BLOCK_SECONDS)))
        self._now, self._sleep = now, sleep
        self._stash = 0  # tokens this process took and has not used yet
        self._lock = threading.Lock()  # this process's call threads share the stash
        self.waited = 0.0
        self.statements = 0

    def acquire(self) -> None:
        if not self.rate:
            return
        with self._lock:  # the other call threads of this process would wait for the bucket anyway
            while self._stash < 1:
                got, wait = self._take()
                if got:
                    self._stash += got
                    break
                self.waited += wait
                self._sleep(wait)
            self._stash -= 1

    def _take(self) -> tuple[int, float]:
        """Take ``block`` tokens, else one; else (0, seconds until one is there)."""
        assert self.rate
        t = RateBucketRow.__table__
        wants = [self.block, 1] if self.block > 1 else [1]
        while wants:
            want = wants[0]
            now = self._now()
            elapsed = case((literal(now) > t.c.stamp, literal(now) - t.c.stamp), else_=0.0)
            refilled = t.c.tokens + elapsed * self.rate
            available = case((refilled > self.burst, float(self.burst)), else_=refilled)
            stamp = case((literal(now) > t.c.stamp, literal(now)), else_=t.c.stamp)
            with self.uow_factory() as uow:
                self.statements += 1
                taken = uow.session.execute(
                    update(t).where(t.c.key == self.key, available >= want)
                    .values(tokens=available - want, stamp=stamp)).rowcount
                if taken:
                    uow.commit()
                    return want, 0.0
                row = uow.session.execute(select(t.c.tokens, t.c.stamp).where(t.c.key == self.key)).first()
                if row is None:
                    self._create(uow, now)
                    continue
            wants.pop(0)
        tokens = min(self.burst, row.tokens + max(0.0, now - row.stamp) * self.rate)
        return 0, max(0.001, (1 - tokens) / self.rate)

    def _create(self, uow: UnitOfWork, now: float) -> None:
        """The account's first worker creates its full bucket (a concurrent creator wins)."""
        try:
            uow.session.execute(insert(RateBucketRow.__table__).values(key=self.key, tokens=float(self.burst),
                                                                      stamp=now))
            uow.commit()
        except IntegrityError:
            uow.session.rollback()

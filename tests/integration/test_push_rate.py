"""The push rate limit is per official account, shared by every worker process (one token-bucket
row updated atomically), on SQLite and PostgreSQL. Sends are counted from what the sandbox
received and when; the assertions are upper bounds on sends per window, never speed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.sandbox_server import SandboxServer
from campaigns.services import delivery, pushes
from campaigns.services.ratelimit import SharedRateLimiter
from campaigns.services.render import make_renderer
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from opsctl.wiring import Container
from tests.support.pushes import (
    add_followers,
    received_templates,
    synced_sandbox,
)
from tests.support.wechat import APP_ID

OPS = Principal("ops:test", "ops", Role.OPERATIONS)
RENDER = make_renderer("http://127.0.0.1:8700")
NOTICE = {"template_id": "tpl_sandbox_notice", "fields": {"first": "复诊提醒"}}


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_is_shared_by_limiters_of_one_account(container: Container) -> None:
    clock = FakeTime()
    a = SharedRateLimiter(container.uow, APP_ID, rate=10, burst=5, block=1, now=clock, sleep=clock.sleep)
    b = SharedRateLimiter(container.uow, APP_ID, rate=10, burst=5, block=1, now=clock, sleep=clock.sleep)
    other = SharedRateLimiter(container.uow, "wxother", rate=10, burst=5, block=1, now=clock, sleep=clock.sleep)
    grants: list[float] = []
    for _ in range(30):  # two "processes" alternate; each acquire waits for the shared bucket
        for limiter in (a, b):
            limiter.acquire()
            grants.append(clock.now)
    # 60 calls at 10/s with a burst of 5 need at least (60 - 5) / 10 s of (fake) time
    assert clock.now - 1_000_000.0 >= 5.5 - 1e-6
    for start in grants:  # no 1-second window holds more than burst + rate
        assert sum(1 for t in grants if start <= t < start + 1.0) <= 5 + 10
    # another official account has its own bucket: its first calls do not wait
    before = clock.now
    for _ in range(5):
        other.acquire()
    assert clock.now == before


def test_a_clock_behind_the_bucket_refills_nothing(container: Container) -> None:
    clock = FakeTime()
    ahead = SharedRateLimiter(container.uow, APP_ID, rate=10, burst=3, block=1, now=clock, sleep=clock.sleep)
    for _ in range(3):
        ahead.acquire()  # the bucket is empty at t
    behind = FakeTime()
    behind.now = clock.now - 3600  # a machine an hour behind
    late = SharedRateLimiter(container.uow, APP_ID, rate=10, burst=3, block=1, now=behind, sleep=behind.sleep)
    got, wait = late._take()
    assert got == 0 and wait > 0  # never a negative or huge refill from the skew


@pytest.fixture
def wx(container: Container) -> Iterator[tuple[SandboxServer, WeChatPushSender]]:
    with synced_sandbox(container) as wx:
        yield wx


@pytest.mark.slow
def test_two_workers_together_stay_under_the_account_rate(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    rate, burst, n = 20.0, 4, 60
    openids = add_followers(container, server, n)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    view = pushes.create_push(container.uow(), OPS, name="限速", kind="template", segment=seg.name,
                              variants={"A": NOTICE})
    rules = pushes.SendingRules(cap=pushes.P.FrequencyCap(count=100, days=1))
    pushes.schedule(container.uow(), OPS, view.public_id, None, rules)
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender, rules=rules)
    before = len(server.wechat.template_sent)
    results: dict[str, delivery.WorkerCounts] = {}
    limiters = {name: SharedRateLimiter(container.uow, APP_ID, rate=rate, burst=burst) for name in ("w1", "w2")}

    def work(name: str) -> None:  # each thread stands for a worker process: its own limiter object
        results[name] = delivery.run_worker(container.uow, sender, RENDER, worker=name, until_idle=True, batch=5,
                                            concurrency=2, limiter=limiters[name], sleep=lambda _s: None)

    threads = [threading.Thread(target=work, args=(name,)) for name in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert received_templates(server) == {o: 1 for o in openids}
    assert results["w1"].sent > 0 and results["w2"].sent > 0  # both workers really sent
    times = sorted(m["at"] for m in server.wechat.template_sent[before:])
    blocks = sum(limiter.block for limiter in limiters.values())
    for i, start in enumerate(times):  # sends in any 1-second window, counted by the sandbox
        in_window = sum(1 for t in times[i:] if t < start + 1.0)
        assert in_window <= burst + rate * 1.0 + blocks, (in_window, i)

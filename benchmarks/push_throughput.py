"""Push throughput: template messages per second delivered by ``opsctl push worker`` processes to
the sandbox WeChat server, as a ratio to the sandbox's own ceiling measured in the same run.

Prints one JSON document to stdout (progress goes to stderr)::

    .venv/bin/python benchmarks/push_throughput.py [--messages 3000] [--workers 2] [--faults 0.1]
                                                   [--database sqlite|postgres] [--repeats 3]

* anchor (ceiling): ``workers`` client processes × ``concurrency`` threads, each thread one
  keep-alive ``http.client`` connection — the product's shape: same processes, same GILs, same
  connections and calls in flight — POST template messages to the sandbox as fast as it answers:
  no database, no ledger, no retries, no faults. (Until 2026-11-26 the anchor ran
  ``workers × concurrency`` single-connection processes: on a busy machine those got 4× the
  product's CPU share from the OS scheduler, so the ratio measured the load, not the worker.)
* product: the same number of ``opsctl push worker --rate 0 --until-idle`` processes deliver a
  push of ``--messages`` recipients through the delivery ledger (claim → call → record), with
  ``--faults`` of calls answered -1 (busy) and retried, ``--concurrency`` calls in flight each.
  Both rates are timed by the sandbox, from its first to its last accepted message, so neither
  side's process start-up counts (the product's wall time with start-up is reported too). SQLite runs one worker (its single writer); PostgreSQL runs ``--workers``.
* checks: counted from what the sandbox received, every recipient got the push exactly once
  (``lost`` and ``duplicated`` must be 0) and every ledger row is ``sent``.

Both sides run on the same machine in the same run, repeated ``--repeats`` times; medians reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from campaigns.adapters.push_sender import WeChatPushSender  # noqa: E402
from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat  # noqa: E402
from campaigns.adapters.wechat_client import OpsWeChatClient, SharedTokenStore  # noqa: E402
from campaigns.domain.pushes import QuietHours  # noqa: E402
from campaigns.persistence.pushes import DeliveryRow  # noqa: E402
from campaigns.services import pushes  # noqa: E402
from clinical_core.adapters.vault import generate_master_key  # noqa: E402
from clinical_core.domain.access import Principal  # noqa: E402
from clinical_core.domain.staff import Role  # noqa: E402
from clinical_core.domain.time import SystemClock  # noqa: E402
from clinical_core.persistence.models import FollowerRow  # noqa: E402
from opsctl import db  # noqa: E402
from opsctl.config import Settings  # noqa: E402
from opsctl.wiring import Container  # noqa: E402

APP_ID, APP_SECRET = "wxbench000000000001", "bench-secret"
OPS = Principal("bench:ops", "bench", Role.OPERATIONS)

CEILING_CLIENT = r"""
import http.client, json, sys, threading, time
host, port, token, start, count, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[7])
path = "/cgi-bin/message/template/send?access_token=" + token

def run(first, n):
    conn = http.client.HTTPConnection(host, port)
    for i in range(first, first + n):
        body = json.dumps({"touser": "c%07d" % i, "template_id": "tpl_sandbox_notice",
                           "data": {"first": {"value": "ceiling"}}}).encode()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        assert json.loads(conn.getresponse().read())["errcode"] == 0

per = count // threads
workers = [threading.Thread(target=run, args=(start + t * per, per)) for t in range(threads)]
time.sleep(max(0.0, float(sys.argv[6]) - time.time()))  # every client starts at the same instant
for w in workers:
    w.start()
for w in workers:
    w.join()
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ceiling(server: SandboxServer, token: str, messages: int, workers: int, concurrency: int) -> float:
    """The anchor in the product's shape: ``workers`` processes × ``concurrency`` threads, one
    keep-alive connection each (the same processes, GILs and connections as the workers)."""
    wechat = server.wechat
    with wechat.lock:
        for i in range(messages):
            wechat.user_follows(f"c{i:07d}")
        wechat.pending_events.clear()
    host, port = server.httpd.server_address[:2]
    per = messages // workers
    before = len(wechat.template_sent)
    start_at = str(time.time() + 3.0)
    procs = [subprocess.Popen([sys.executable, "-c", CEILING_CLIENT, host, str(port), token, str(w * per), str(per),
                               start_at, str(concurrency)])
             for w in range(workers)]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("ceiling client failed")
    return _rate(wechat.template_sent[before:])


def _rate(sent: list[dict[str, Any]]) -> float:
    """Messages per second between the sandbox's first and last accepted message (process start-up
    of the clients and workers is not counted on either side)."""
    times = sorted(m["at"] for m in sent)
    return (len(times) - 1) / (times[-1] - times[0])


def product(container: Container, settings: Settings, server: SandboxServer, sender: WeChatPushSender,
            messages: int, workers: int, faults: float, run: int, concurrency: int) -> dict[str, Any]:
    wechat = server.wechat
    openids = [f"r{run}-{i:07d}" for i in range(messages)]
    now = container.clock.now()
    with container.uow() as uow:
        uow.session.add_all(FollowerRow(openid=o, subscribed_at=now - timedelta(days=1)) for o in openids)
        uow.commit()
    with wechat.lock:
        for openid in openids:
            wechat.user_follows(openid)
        wechat.pending_events.clear()
    segment = pushes.create_segment(container.uow(), OPS, f"bench-{run}", {"openids": openids})
    push = pushes.create_push(container.uow(), OPS, name=f"bench-{run}", kind="template", segment=segment.name,
                              variants={"A": {"template_id": "tpl_sandbox_notice", "fields": {"first": "复诊提醒"}}})
    rules = pushes.SendingRules(quiet=QuietHours.parse("off"), cap=pushes.P.FrequencyCap(count=10**6, days=1))
    pushes.schedule(container.uow(), OPS, push.public_id, None, rules)
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender, rules=rules)
    before = len(wechat.template_sent)
    wechat.failure_share = faults
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPSCTL_DATABASE_URL=settings.effective_database_url,
               OPSCTL_SECRET_KEY=settings.secret_key.get_secret_value(), OPSCTL_DATA_DIR=str(settings.data_dir),
               OPSCTL_WECHAT__APP_ID=APP_ID, OPSCTL_WECHAT__APP_SECRET=APP_SECRET,
               OPSCTL_WECHAT__API_BASE_URL=server.base_url, OPSCTL_PUSH__QUIET_HOURS="off",
               OPSCTL_PUSH__RETRY_DELAYS=json.dumps([0] * 12))
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "opsctl", "push", "worker", "--rate", "0", "--until-idle",
                               "--batch", "200", "--concurrency", str(concurrency)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
             for _ in range(workers)]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("worker failed")
    seconds = time.perf_counter() - started
    wechat.failure_share = 0.0
    rate = _rate(wechat.template_sent[before:])
    with wechat.lock:
        got = Counter(m["touser"] for m in wechat.template_sent[before:])
    wanted = set(openids)
    with container.uow() as uow:
        from sqlalchemy import func, select

        states = dict(uow.session.execute(select(DeliveryRow.state, func.count()).join_from(
            DeliveryRow, pushes.PushRow, pushes.PushRow.id == DeliveryRow.push_id)
            .where(pushes.PushRow.public_id == push.public_id).group_by(DeliveryRow.state)).all())
    return {"seconds_with_startup": round(seconds, 3), "messages_per_second": round(rate, 1),
            "lost": len(wanted - set(got)), "duplicated": sum(n - 1 for n in got.values() if n > 1),
            "ledger": states}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--faults", type=float, default=0.10)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight per worker (and ceiling clients)")
    args = parser.parse_args()
    workers = args.workers if args.database == "postgres" else 1
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.database == "postgres":
            url = os.environ.get("OPSCTL_BENCH_POSTGRES_URL")
            if not url:
                from tests.support.pgserver import throwaway_postgres

                url = stack.enter_context(throwaway_postgres())
        else:
            url = f"sqlite:///{tmp / 'bench.db'}"
        settings = Settings(data_dir=tmp / "var", database_url=url, secret_key=generate_master_key())
        container = Container(settings, clock=SystemClock())
        if args.database == "postgres":
            from sqlalchemy import text

            with container.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.upgrade(container.engine)
        wechat = SandboxWeChat(APP_ID, APP_SECRET, seed=1)
        server = stack.enter_context(SandboxServer(wechat))
        client = OpsWeChatClient(APP_ID, APP_SECRET, SharedTokenStore(container.uow, APP_ID), base_url=server.base_url)
        sender = WeChatPushSender(client)
        pushes.sync_templates(container.uow(), OPS, sender)
        token = client.access_token
        ceilings, runs = [], []
        for run in range(args.repeats):
            log(f"run {run + 1}/{args.repeats}: ceiling ...")
            ceilings.append(ceiling(server, token, args.messages, workers, args.concurrency))
            log(f"  ceiling {ceilings[-1]:.0f}/s; workers ...")
            runs.append(product(container, settings, server, sender, args.messages, workers, args.faults, run,
                                args.concurrency))
            log(f"  product {runs[-1]['messages_per_second']}/s")
        container.close()
    rates = [r["messages_per_second"] for r in runs]
    ratios = [r / c for r, c in zip(rates, ceilings, strict=True)]
    print(json.dumps({
        "benchmark": "push_throughput", "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "database": args.database, "workers": workers, "concurrency": args.concurrency, "messages": args.messages, "faults": args.faults,
        "ceiling_per_second": [round(c, 1) for c in ceilings], "product_per_second": rates,
        "median_ceiling": round(statistics.median(ceilings), 1), "median_product": round(statistics.median(rates), 1),
        "median_ratio": round(statistics.median(ratios), 3), "goal_ratio": 0.7,
        "lost": sum(r["lost"] for r in runs), "duplicated": sum(r["duplicated"] for r in runs),
        "ledger": [r["ledger"] for r in runs],
    }, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Push worker CPU per message (a development aid beside ``push_throughput.py``): the sandbox runs
in a child process, so this process's CPU time (getrusage) is the worker's alone — a figure that
moves much less with the machine's load than a rate does.

    N=3000 DB=sqlite|postgres PGURL=... FAULTS=0.1 C=4 BATCH=200 FLUSH=50 [NULL=1] [PROF=out.prof] \
        .venv/bin/python benchmarks/push_worker_cpu.py

Prints the CPU per message of (1) the sender alone, C threads, and (2) ``run_worker`` in-process
(claim, render, calls, record), plus the PostgreSQL server's CPU per message when PGURL is given
(its processes found by port). NULL=1 replaces the sender by one that answers at once (the
ledger's own cost)."""
import json, os, sys, time, resource, subprocess, tempfile, threading, statistics
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
ROOT = Path(os.environ.get("ROOT") or Path(__file__).resolve().parents[1]); sys.path.insert(0, str(ROOT))
N = int(os.environ.get("N", "3000")); DBK = os.environ.get("DB", "sqlite"); C = int(os.environ.get("C", "4"))
FAULTS = float(os.environ.get("FAULTS", "0.1"))
SERVER = r'''
import sys, time, json
sys.path.insert(0, sys.argv[1])
from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat
w = SandboxWeChat("wxbench000000000001", "bench-secret", seed=1)
s = SandboxServer(w).start()
for i in range(int(sys.argv[2])):
    w.user_follows(f"r{i:07d}")
w.pending_events.clear(); w.failure_share = float(sys.argv[3])
print(s.base_url, flush=True)
sys.stdin.read()
'''
def cpu(): r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
def pgcpu():
    url = os.environ.get("PGURL") or ""
    if not url: return 0.0
    port = url.split("@")[1].split("/")[0].split(":")[1]
    tot = 0.0; tck = os.sysconf("SC_CLK_TCK")
    post = None
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            if cmd and cmd[0].endswith(b"postgres") and port.encode() in b" ".join(cmd): post = pid
        except OSError: pass
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            if pid == post or st[1] == post: tot += (int(st[11]) + int(st[12])) / tck
        except (OSError, IndexError): pass
    return tot
srv = subprocess.Popen([sys.executable, "-c", SERVER, str(ROOT), str(N * 3), str(FAULTS)], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
base = srv.stdout.readline().strip()
from datetime import timedelta
from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.wechat_client import OpsWeChatClient, SharedTokenStore
from campaigns.domain.pushes import QuietHours
from campaigns.services import pushes, delivery
from campaigns.services.render import make_renderer
from campaigns.services.ratelimit import SharedRateLimiter
from clinical_core.adapters.vault import generate_master_key
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SystemClock
from clinical_core.persistence.models import FollowerRow
from opsctl import db
from opsctl.config import Settings
from opsctl.wiring import Container
tmp = Path(tempfile.mkdtemp())
url = os.environ.get("PGURL", "").replace("opsctl_test", "postgres") if DBK == "postgres" else f"sqlite:///{tmp/'h.db'}"
settings = Settings(data_dir=tmp / "var", database_url=url, secret_key=generate_master_key())
c = Container(settings, clock=SystemClock())
if DBK == "postgres":
    from sqlalchemy import text
    with c.engine.begin() as conn: conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
db.upgrade(c.engine)
OPS = Principal("bench:ops", "bench", Role.OPERATIONS)
client = OpsWeChatClient("wxbench000000000001", "bench-secret", SharedTokenStore(c.uow, "wxbench000000000001"), base_url=base)
sender = WeChatPushSender(client)
pushes.sync_templates(c.uow(), OPS, sender)
# 1) sender alone, C threads
def run_sender(n, off):
    ids = [f"r{i:07d}" for i in range(off, off + n)]
    t0, c0 = time.perf_counter(), cpu()
    with ThreadPoolExecutor(C) as pool:
        list(pool.map(lambda o: sender.template(o, "tpl_sandbox_notice", {"first": "复诊提醒"}, url=None, client_msg_id="x:" + o), ids))
    return (cpu() - c0) / n * 1e3, n / (time.perf_counter() - t0)
print("sender alone: cpu ms/msg %.3f, %.0f msg/s" % run_sender(N, 0), flush=True)
# 2) the worker in-process
openids = [f"r{i:07d}" for i in range(N, 2 * N)]
now = c.clock.now()
with c.uow() as uow:
    uow.session.add_all(FollowerRow(openid=o, subscribed_at=now - timedelta(days=1)) for o in openids); uow.commit()
seg = pushes.create_segment(c.uow(), OPS, "h", {"openids": openids})
push = pushes.create_push(c.uow(), OPS, name="h", kind="template", segment=seg.name,
                          variants={"A": {"template_id": "tpl_sandbox_notice", "fields": {"first": "复诊提醒"}}})
rules = pushes.SendingRules(quiet=QuietHours.parse("off"), cap=pushes.P.FrequencyCap(count=10**6, days=1))
pushes.schedule(c.uow(), OPS, push.public_id, None, rules)
pushes.dispatch_due(c.uow(), c.clock.now(), api=sender, rules=rules)
limiter = SharedRateLimiter(c.uow, "wxbench000000000001", 0)
if os.environ.get("NULL"):
    import random
    from campaigns.adapters.push_sender import CallResult
    class Null:
        rng = random.Random(1); n = 0
        def template(self, *a, **k):
            self.n += 1
            return CallResult(-1) if self.rng.random() < FAULTS else CallResult(0, str(self.n))
    sender = Null()
PROF = os.environ.get("PROF")
if PROF:
    import cProfile; prof = cProfile.Profile(); prof.enable()
t0, c0, p0 = time.perf_counter(), cpu(), pgcpu()
counts = delivery.run_worker(c.uow, sender, make_renderer("http://127.0.0.1:8700"), rules=delivery.Rules(quiet=QuietHours.parse("off"), retry_delays=(0,) * 12),
                             limiter=limiter, batch=int(os.environ.get("BATCH", "200")), until_idle=True, concurrency=C, flush_every=int(os.environ.get("FLUSH", "50")))
el, cp = time.perf_counter() - t0, cpu() - c0
print("pg server cpu ms/msg %.3f" % ((pgcpu() - p0) / N * 1e3))
if PROF:
    prof.disable(); prof.dump_stats(PROF)
print("worker: cpu ms/msg %.3f, %.0f msg/s (in-process, sandbox elsewhere) %s" % (cp / N * 1e3, N / el, counts), flush=True)
from sqlalchemy import select, func
from campaigns.persistence.pushes import DeliveryRow
with c.uow() as uow:
    print(dict(uow.session.execute(select(DeliveryRow.state, func.count()).group_by(DeliveryRow.state)).all()))
srv.stdin.close(); srv.wait()

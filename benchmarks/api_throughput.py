"""Consultation API throughput: create + claim + reply under concurrent clients against a real
``opsctl serve`` process, as a ratio to a bare FastAPI endpoint served the same way in the same run.

    python benchmarks/api_throughput.py [--clients 200] [--seconds 10] [--repeats 3]
                                        [--database sqlite|postgres] [--postgres-url URL]
                                        [--think 1.0] [--workers 1] [--generators 1] [--paced-only]

Three servers run as separate processes for the whole run:

- **Product**: ``opsctl serve`` (one uvicorn worker unless ``--workers``). Each client loops: the
  patient creates a consultation on a free department service (``POST /api/v1/consultations``:
  token check, validation, encryption of the question, audit, pool), a doctor of the department
  claims it (``POST .../claim``, a conditional UPDATE) and replies with a text message
  (``POST .../messages``, form-encoded). Every request authenticates a bearer token against the
  database.
- **Anchor**: ``POST /bare`` on a FastAPI app with one pydantic body model and a JSON answer,
  served by uvicorn with the same loop/protocol implementation and worker count as the product.
- **Generator ceiling**: a no-framework asyncio HTTP responder answering every request with a fixed
  201. What the load generator reaches against it is the most it can measure on this machine; an
  anchor close to it would mean the harness, not the server, is the limit.

The load generator is cheap per request on purpose (the first version used one httpx
``AsyncClient`` with 200 connections, which spent more CPU per request than the bare server did):
raw asyncio streams, one keep-alive HTTP/1.1 connection per client, requests pre-encoded, the
response read by ``Content-Length``; uvloop when installed; ``--generators`` processes share the
clients.

Two load models, both with ``--clients`` concurrent users, each measured ``--repeats`` times with
anchor and product interleaved (medians reported):

- ``closed`` (saturation, for the ratio): zero think time, each client sends its next request as
  soon as the previous one answers. Throughput is the server's capacity; latency is then queueing
  by construction (Little's law: p50 ≈ clients ÷ throughput, so p99 ≤ 50 ms at 200 clients would
  need more than 4,000 requests/s).
- ``paced`` (for the latency goal): the same users with think time, exponentially distributed with
  mean ``--think`` seconds between a response and the user's next request (≈ clients ÷ think
  requests/s offered, 200/s by default): "200 concurrent users" of a mobile app, not 200 requests
  always in flight. A user whose request is slow sends the next one later (closed system with
  think time), so the offered load is slightly lower than clients ÷ think when latency grows.

Prints one JSON object; ``ratio`` = median product requests/s ÷ median anchor requests/s (closed),
and the paced p50/p99 of both against the goal (ratio ≥ 0.5, p99 ≤ 50 ms at 200 clients).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE_APP = '''
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    service_id: str
    question: str


@app.post("/bare", status_code=201)
def bare(body: Body) -> dict[str, str]:
    return {"service_id": body.service_id, "status": "waiting"}
'''

# The generator's own ceiling: no HTTP framework, one fixed answer per request (keep-alive).
CEILING_SERVER = '''
import asyncio, sys
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass

ANSWER = (b"HTTP/1.1 201 Created\\r\\ncontent-type: application/json\\r\\ncontent-length: 19\\r\\n\\r\\n"
          b'{"status":"ok!!!!"}')


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\\r\\n\\r\\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15:head.find(b"\\r\\n", at) if head.find(b"\\r\\n", at) > 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(ANSWER)


async def main(port):
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()

asyncio.run(main(int(sys.argv[1])))
'''


# --------------------------------------------------------------------------- load generator


class HttpConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams; requests are pre-encoded bytes."""

    # uvicorn closes a keep-alive connection idle for 5 s; a paced user thinking longer reconnects
    # first (as a browser or httpx would) instead of writing into a connection being closed.
    MAX_IDLE = 4.0

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.last_used > self.MAX_IDLE:
            await self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, length, close = parse_head(head)
            body = await self.reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise
        self.last_used = time.monotonic()
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and whether the server closes, from a response head."""
    status = int(head[9:12])
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        raise ValueError("chunked responses are not supported by the load generator")
    length = 0
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.find(b"\r\n", at + 2)
        length = int(lower[at + 17:end])
    return status, length, b"\r\nconnection: close" in lower


def encode_request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
                   content_type: str | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_request(path: str, payload: object, headers: dict[str, str] | None = None) -> bytes:
    return encode_request("POST", path, headers, json.dumps(payload, ensure_ascii=False).encode(),
                          "application/json")


# A scenario: for client k, the ordered steps of one flow. A step is (name, build) where build takes
# the previous step's response body (b"" for the first) and returns the request bytes.
Step = tuple[str, Callable[[bytes], bytes]]
Scenario = Callable[[int], Sequence[Step]]


def bare_scenario(service: str) -> Scenario:
    raw = json_request("/bare", {"service_id": service, "question": "胸闷一周，想咨询"})

    def steps(_k: int) -> Sequence[Step]:
        return [("bare", lambda _prev: raw)]
    return steps


def product_scenario(service: str, patient: str, doctors: Sequence[str]) -> Scenario:
    create = json_request("/api/v1/consultations", {"service_id": service, "question": "胸闷一周，活动后加重，想咨询"},
                          {"Authorization": f"Bearer {patient}"})
    reply_body = urlencode({"kind": "text", "text": "您好，请描述一下血压情况"}).encode()

    def steps(k: int) -> Sequence[Step]:
        dr = {"Authorization": f"Bearer {doctors[k % len(doctors)]}"}

        def claim(prev: bytes) -> bytes:
            return encode_request("POST", f"/api/v1/consultations/{_created_id(prev)}/claim", dr)

        def reply(prev: bytes) -> bytes:
            return encode_request("POST", f"/api/v1/consultations/{json.loads(prev)['public_id']}/messages", dr,
                                  reply_body, "application/x-www-form-urlencoded")
        return [("create", lambda _prev: create), ("claim", claim), ("reply", reply)]
    return steps


def _created_id(body: bytes) -> str:
    return str(json.loads(body)["consultation"]["public_id"])


def ceiling_scenario() -> Scenario:
    raw = json_request("/ceiling", {"service_id": "svc", "question": "胸闷一周，想咨询"})

    def steps(_k: int) -> Sequence[Step]:
        return [("ceiling", lambda _prev: raw)]
    return steps


async def _drive(port: int, clients: Sequence[int], scenario: Scenario, start: float, warmup: float,
                 seconds: float, think: float, seed: int) -> dict[str, object]:
    """Run ``clients`` users from wall-clock ``start``; count the requests answered inside the measured
    window (after the warm-up). ``think`` = 0: closed loop; > 0: exponential think time (mean)."""
    measure_from, stop = start + warmup, start + warmup + seconds
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    completed = [0]  # every answered request, warm-up included (for CPU per request)
    rng = random.Random(seed)
    clock = time.time

    async def user(k: int) -> None:
        conn = HttpConnection(port)
        steps = scenario(k)
        if think:
            await asyncio.sleep(max(0.0, start - clock()) + rng.uniform(0, think))  # spread the first requests
        else:
            await asyncio.sleep(max(0.0, start - clock()))
        try:
            while clock() < stop:
                prev = b""
                for name, build in steps:
                    raw = build(prev)
                    t0 = clock()
                    try:
                        status, prev = await conn.request(raw)
                    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                        key = f"{name}:{type(exc).__name__}"
                        errors[key] = errors.get(key, 0) + 1
                        break
                    t1 = clock()
                    completed[0] += 1
                    if measure_from <= t1 <= stop:  # answered inside the measured window
                        latencies.setdefault(name, []).append(t1 - t0)
                    if status >= 400:
                        key = f"{name}:{status}"
                        errors[key] = errors.get(key, 0) + 1
                        break
                    if think:
                        await asyncio.sleep(rng.expovariate(1 / think))
                    if clock() >= stop:
                        break
        finally:
            await conn.close()

    await asyncio.gather(*(user(k) for k in clients))
    return {"latencies": latencies, "errors": errors, "completed": completed[0]}


def _generator_process(args: tuple) -> dict[str, object]:  # type: ignore[type-arg]
    port, clients, scenario_spec, start, warmup, seconds, think, seed = args
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    kind, params = scenario_spec
    scenario = {"bare": bare_scenario, "product": product_scenario, "ceiling": ceiling_scenario}[kind](*params)
    return asyncio.run(_drive(port, clients, scenario, start, warmup, seconds, think, seed))


def drive(port: int, clients: int, scenario_spec: tuple[str, tuple], seconds: float, warmup: float,  # type: ignore[type-arg]
          think: float, generators: int, seed: int, server_pid: int | None = None) -> dict[str, object]:
    """Spread ``clients`` over ``generators`` processes, all starting at the same wall-clock instant.
    With ``server_pid``: the server's CPU time (its worker processes included) per answered request,
    which the other users of a shared machine disturb much less than requests/s."""
    cpu_before = _cpu_seconds(server_pid) if server_pid else 0.0
    start = time.time() + 1.0  # time for the processes to start
    shares = [list(range(g, clients, generators)) for g in range(generators)]
    jobs = [(port, share, scenario_spec, start, warmup, seconds, think, seed * 100 + g)
            for g, share in enumerate(shares) if share]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(len(jobs)) as pool:
        parts = pool.map(_generator_process, jobs)
    cpu = _cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    completed = sum(int(part["completed"]) for part in parts)  # type: ignore[call-overload]
    for part in parts:
        for name, values in part["latencies"].items():  # type: ignore[union-attr]
            latencies.setdefault(name, []).extend(values)
        for name, n in part["errors"].items():  # type: ignore[union-attr]
            errors[name] = errors.get(name, 0) + n
    out = summarise(latencies, errors, seconds)
    if server_pid and completed:
        out["server_cpu_ms_per_request"] = round(cpu / completed * 1000, 3)
    return out


def _cpu_seconds(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def summarise(lat: dict[str, list[float]], errors: dict[str, int], seconds: float) -> dict[str, object]:
    every = [v for values in lat.values() for v in values]
    out: dict[str, object] = {"requests": len(every), "errors": sum(errors.values()),
                              "requests_per_s": round(len(every) / seconds, 1),
                              "p50_ms": round(_pct(every, 50) * 1000, 1), "p99_ms": round(_pct(every, 99) * 1000, 1)}
    if errors:
        out["error_kinds"] = errors
    for name, values in lat.items():
        out[name] = {"n": len(values), "p50_ms": round(_pct(values, 50) * 1000, 1),
                     "p99_ms": round(_pct(values, 99) * 1000, 1)}
    return out


# --------------------------------------------------------------------------- servers and data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    raw = encode_request("GET", path)

    async def probe() -> int:
        conn = HttpConnection(port)
        try:
            return (await conn.request(raw))[0]
        finally:
            await conn.close()

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited before answering")
        try:
            asyncio.run(probe())
            return
        except (OSError, asyncio.IncompleteReadError):
            time.sleep(0.2)
    raise SystemExit(f"server did not start on port {port}")


def prepare(env: dict[str, str], doctors: int) -> tuple[str, str, list[str]]:
    """Migrate, then a hospital, a free department service, a patient and ``doctors`` doctors with tokens."""
    os.environ.update(env)
    from clinical_core.domain.consultation import ServiceKind
    from clinical_core.services import accounts, consult_settings
    from opsctl import db
    from opsctl.config import load_settings
    from opsctl.wiring import Container
    from tests.support.clinic import ADMIN, OPS, _doctor, build_clinic

    c = Container(load_settings())
    if c.engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with c.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade(c.engine)
    clinic = build_clinic(c)
    service = consult_settings.configure_service(c.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    patient = accounts.issue_token(c.uow(), ADMIN, clinic.patient.username, ttl=timedelta(days=1)).token
    names = ["dr.a", "dr.b"] + [_doctor(c, f"dr.bench{i}", "CARD").username for i in range(max(0, doctors - 2))]
    tokens = [accounts.issue_token(c.uow(), ADMIN, n, ttl=timedelta(days=1)).token for n in names]
    c.close()
    return service, patient, tokens


def _median_run(runs: list[dict[str, object]]) -> dict[str, object]:
    """The run with the median throughput, plus every run's throughput."""
    ordered = sorted(runs, key=lambda r: float(r["requests_per_s"]))  # type: ignore[arg-type]
    cpu = [float(r["server_cpu_ms_per_request"]) for r in runs if "server_cpu_ms_per_request" in r]  # type: ignore[arg-type]
    return {**ordered[(len(ordered) - 1) // 2], "runs_requests_per_s": [r["requests_per_s"] for r in runs],
            "runs_p99_ms": [r["p99_ms"] for r in runs], "runs_loadavg_1min": [r["loadavg_1min"] for r in runs],
            "median_server_cpu_ms_per_request": round(statistics.median(cpu), 3) if cpu else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per run (after --warmup)")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--think", type=float, default=1.0, help="mean think time of the paced model (s); 0 skips it")
    parser.add_argument("--paced-only", action="store_true", help="skip the closed model (no ratio: latency only)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of both servers")
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes")
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--baseline-root", default=None,
                        help="also measure the product served from this checkout (e.g. /work/main): before/after "
                             "in the same run, on the same database")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="api-bench-"))
        env = {"OPSCTL_DATA_DIR": str(Path(tmp) / "var"),
               "OPSCTL_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()}
        url = args.postgres_url
        if args.database == "postgres" and not url:
            from tests.support.pgserver import throwaway_postgres

            url = stack.enter_context(throwaway_postgres())
        if url:
            env["OPSCTL_DATABASE_URL"] = url
        os.environ.pop("OPSCTL_CONFIG", None)
        service, patient, doctors = prepare(env, args.doctors)
        (Path(tmp) / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
        (Path(tmp) / "ceiling_server.py").write_text(CEILING_SERVER, encoding="utf-8")
        child_env = {**os.environ, **env, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp}"}
        log = stack.enter_context((Path(tmp) / "servers.log").open("wb"))  # a file, never a pipe nobody reads
        ports = {name: _free_port() for name in ("ceiling", "anchor", "product")}
        workers = ["--workers", str(args.workers)] if args.workers > 1 else []

        def serve_command(port: int) -> list[str]:
            return [sys.executable, "-m", "opsctl", "serve", "--host", "127.0.0.1", "--port", str(port), *workers]
        commands = {
            "ceiling": [sys.executable, "ceiling_server.py", str(ports["ceiling"])],
            "anchor": [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1",
                       "--port", str(ports["anchor"]), "--log-level", "warning", "--no-access-log", *workers],
            "product": serve_command(ports["product"]),
        }
        if args.baseline_root:  # the same product from another checkout (e.g. main), same database
            ports["baseline"] = _free_port()
            commands["baseline"] = serve_command(ports["baseline"])
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, command in commands.items():
                env_of = child_env if name != "baseline" else {
                    **child_env, "PYTHONPATH": f"{args.baseline_root}{os.pathsep}{tmp}"}
                procs[name] = subprocess.Popen(command, env=env_of, cwd=tmp, stderr=log)
            for name, path in (("ceiling", "/"), ("anchor", "/docs"), ("product", "/healthz"), ("baseline", "/healthz")):
                if name in procs:
                    _wait_up(ports[name], path, procs[name])
            specs = {"ceiling": ("ceiling", ()), "anchor": ("bare", (service,)),
                     "product": ("product", (service, patient, doctors)),
                     "baseline": ("product", (service, patient, doctors))}
            servers = [name for name in ("anchor", "baseline", "product") if name in procs]
            runs: dict[str, list[dict[str, object]]] = {}
            loads: list[float] = []
            models = ([("closed", 0.0)] if not args.paced_only else []) + (
                [("paced", args.think)] if args.think > 0 else [])
            for repeat in range(args.repeats):
                for model, think in models:
                    for name in (["ceiling", *servers] if model == "closed" else servers):
                        loads.append(os.getloadavg()[0])
                        result = drive(ports[name], args.clients, specs[name], args.seconds, args.warmup, think,
                                       args.generators, seed=repeat, server_pid=procs[name].pid)
                        result["loadavg_1min"] = round(loads[-1], 2)
                        runs.setdefault(f"{model}/{name}", []).append(result)
                        print(f"run {repeat + 1}/{args.repeats} {model:6} {name:8} "
                              f"{result['requests_per_s']:>8} req/s  p50 {result['p50_ms']} ms  "
                              f"p99 {result['p99_ms']} ms  cpu/req {result.get('server_cpu_ms_per_request')} ms  "
                              f"errors {result['errors']}  load {loads[-1]:.2f}",
                              file=sys.stderr)
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.flush()
            tail = (Path(tmp) / "servers.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            if tail.strip():
                print(tail, file=sys.stderr)

    results: dict[str, object] = {key: _median_run(value) for key, value in runs.items()}
    if args.paced_only:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    product, anchor = results["closed/product"], results["closed/anchor"]
    assert isinstance(product, dict) and isinstance(anchor, dict)
    ratios = [float(p["requests_per_s"]) / float(a["requests_per_s"])  # type: ignore[arg-type]
              for p, a in zip(runs["closed/product"], runs["closed/anchor"], strict=True)]
    # The same comparison in server CPU per request (anchor ÷ product): what the server would reach with
    # a core to itself, much less disturbed by the machine's other users than requests/s.
    cpu_of = {name: results[f"closed/{name}"]["median_server_cpu_ms_per_request"]  # type: ignore[index]
              for name in ("anchor", "product", "baseline") if f"closed/{name}" in results}
    results["cpu_ratio"] = round(cpu_of["anchor"] / cpu_of["product"], 3)
    if "baseline" in cpu_of:
        results["cpu_ratio_baseline"] = round(cpu_of["anchor"] / cpu_of["baseline"], 3)
    if "closed/baseline" in runs:
        results["ratio_baseline"] = round(float(results["closed/baseline"]["requests_per_s"])  # type: ignore[index]
                                          / float(anchor["requests_per_s"]), 3)  # type: ignore[arg-type]
        results["baseline_root"] = args.baseline_root
    results.update({
        "clients": args.clients, "seconds": args.seconds, "warmup": args.warmup, "repeats": args.repeats,
        "think_s": args.think, "workers": args.workers, "generators": args.generators,
        "database": "postgresql" if url else "sqlite",
        "server": _server_stack(),
        "ratio": round(float(product["requests_per_s"]) / float(anchor["requests_per_s"]), 3),  # type: ignore[arg-type]
        "ratio_runs": [round(r, 3) for r in ratios],
        "goal": {"ratio_min": 0.5, "p99_ms_max": 50,
                 "models": {"closed": "zero think time: saturation throughput, latency is queueing (Little's law)",
                            "paced": f"{args.clients} users, exponential think time mean {args.think} s: latency goal"}},
        "loadavg_1min": {"min": round(min(loads), 2), "median": round(statistics.median(loads), 2),
                         "max": round(max(loads), 2)},
        "cpus": os.cpu_count(),
    })
    print(json.dumps(results, ensure_ascii=False, indent=2))


def _server_stack() -> dict[str, str | None]:
    def version(name: str) -> str | None:
        try:
            from importlib.metadata import version as v

            return v(name)
        except Exception:  # noqa: BLE001 - not installed
            return None
    return {name: version(name) for name in ("uvicorn", "uvloop", "httptools", "fastapi", "starlette", "pydantic")}


if __name__ == "__main__":
    main()

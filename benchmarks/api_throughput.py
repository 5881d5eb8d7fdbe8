"""Consultation API throughput: create + claim + reply under concurrent clients against a real
``opsctl serve`` process, as a ratio to a bare FastAPI endpoint served the same way in the same run.

    python benchmarks/api_throughput.py [--clients 200] [--seconds 20] [--postgres-url URL]

Both servers are separate processes started the same way (uvicorn, one worker, no access log) and
driven by the same closed-loop load generator (``--clients`` asyncio tasks over one httpx client with
as many connections, each sending its next request when the previous one answers).

- Product: each client loops: the patient creates a consultation on a free department service
  (``POST /api/v1/consultations``: validation, encryption of the question, audit, pool), a doctor
  of the department claims it (``POST .../claim``, a conditional UPDATE) and replies with a text
  message (``POST .../messages``). Every request authenticates a bearer token against the database.
- Anchor: ``POST /bare`` on a FastAPI app with one pydantic body model and a JSON answer, nothing else.

Prints one JSON object: requests/s, p50/p99 per endpoint and overall, and
``ratio = product requests/s / anchor requests/s``. Goal: ratio ≥ 0.5 and p99 ≤ 50 ms at 200 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited before answering")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"server did not start: {url}")


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


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
    db.upgrade(c.engine)
    clinic = build_clinic(c)
    service = consult_settings.configure_service(c.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    patient = accounts.issue_token(c.uow(), ADMIN, clinic.patient.username, ttl=timedelta(days=1)).token
    names = ["dr.a", "dr.b"] + [_doctor(c, f"dr.bench{i}", "CARD").username for i in range(max(0, doctors - 2))]
    tokens = [accounts.issue_token(c.uow(), ADMIN, n, ttl=timedelta(days=1)).token for n in names]
    c.close()
    return service, patient, tokens


async def drive(base: str, clients: int, seconds: float, make_steps) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker(k: int) -> None:
            while time.perf_counter() < stop:
                state: dict[str, str] = {}
                for name, call in make_steps(k):
                    t0 = time.perf_counter()
                    try:
                        response = await call(client, state)
                    except httpx.TransportError as exc:
                        key = f"{name}:{type(exc).__name__}"
                        errors[key] = errors.get(key, 0) + 1
                        break
                    latencies.setdefault(name, []).append(time.perf_counter() - t0)
                    if response.status_code >= 400:
                        key = f"{name}:{response.status_code}"
                        errors[key] = errors.get(key, 0) + 1
                        break

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        elapsed = time.perf_counter() - started
    latencies["_elapsed"] = [elapsed]
    latencies["_errors"] = [float(sum(errors.values()))]
    if errors:
        print(f"errors: {errors}", file=sys.stderr)
    return latencies


def summarise(lat: dict[str, list[float]]) -> dict[str, object]:
    elapsed, errors = lat.pop("_elapsed")[0], int(lat.pop("_errors")[0])
    every = [v for values in lat.values() for v in values]
    out: dict[str, object] = {"requests": len(every), "errors": errors, "seconds": round(elapsed, 2),
                              "requests_per_s": round(len(every) / elapsed, 1),
                              "p50_ms": round(_pct(every, 50) * 1000, 1), "p99_ms": round(_pct(every, 99) * 1000, 1)}
    for name, values in lat.items():
        out[name] = {"n": len(values), "p50_ms": round(_pct(values, 50) * 1000, 1),
                     "p99_ms": round(_pct(values, 99) * 1000, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL URL (default: embedded SQLite)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        env = {"OPSCTL_DATA_DIR": str(Path(tmp) / "var"),
               "OPSCTL_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()}
        if args.postgres_url:
            env["OPSCTL_DATABASE_URL"] = args.postgres_url
        for name in ("OPSCTL_CONFIG",):
            os.environ.pop(name, None)
        service, patient, doctors = prepare(env, args.doctors)
        (Path(tmp) / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
        child_env = {**os.environ, **env, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp}"}
        results: dict[str, object] = {}
        load_before = os.getloadavg()

        # --- anchor ---
        port = _free_port()
        log = (Path(tmp) / "servers.log").open("wb")  # a file, never a pipe nobody reads
        bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning", "--no-access-log"],
                                env=child_env, cwd=tmp, stderr=log)
        try:
            _wait_up(f"http://127.0.0.1:{port}/docs", bare)

            def bare_steps(_k: int):  # type: ignore[no-untyped-def]
                async def post(client: httpx.AsyncClient, _s: dict[str, str]) -> httpx.Response:
                    return await client.post("/bare", json={"service_id": service, "question": "胸闷一周，想咨询"})
                return [("bare", post)]

            results["anchor"] = summarise(asyncio.run(drive(f"http://127.0.0.1:{port}", args.clients,
                                                            args.seconds, bare_steps)))
        finally:
            bare.terminate()
            bare.wait(10)

        # --- product ---
        port = _free_port()
        serve = subprocess.Popen([sys.executable, "-m", "opsctl", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                 env=child_env, cwd=tmp, stderr=log)
        try:
            _wait_up(f"http://127.0.0.1:{port}/healthz", serve)
            pt = {"Authorization": f"Bearer {patient}"}

            def steps(k: int):  # type: ignore[no-untyped-def]
                dr = {"Authorization": f"Bearer {doctors[k % len(doctors)]}"}

                async def create(client: httpx.AsyncClient, s: dict[str, str]) -> httpx.Response:
                    r = await client.post("/api/v1/consultations", headers=pt,
                                          json={"service_id": service, "question": "胸闷一周，活动后加重，想咨询"})
                    if r.status_code == 201:
                        s["id"] = r.json()["consultation"]["public_id"]
                    return r

                async def claim(client: httpx.AsyncClient, s: dict[str, str]) -> httpx.Response:
                    return await client.post(f"/api/v1/consultations/{s['id']}/claim", headers=dr)

                async def reply(client: httpx.AsyncClient, s: dict[str, str]) -> httpx.Response:
                    return await client.post(f"/api/v1/consultations/{s['id']}/messages", headers=dr,
                                             data={"kind": "text", "text": "您好，请描述一下血压情况"})
                return [("create", create), ("claim", claim), ("reply", reply)]

            results["product"] = summarise(asyncio.run(drive(f"http://127.0.0.1:{port}", args.clients,
                                                             args.seconds, steps)))
        finally:
            serve.terminate()
            serve.wait(30)
            log.close()
            tail = (Path(tmp) / "servers.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            if tail.strip():
                print(tail, file=sys.stderr)

    product, anchor = results["product"], results["anchor"]
    assert isinstance(product, dict) and isinstance(anchor, dict)
    results.update({
        "clients": args.clients, "seconds": args.seconds,
        "database": "postgresql" if args.postgres_url else "sqlite",
        "ratio": round(product["requests_per_s"] / anchor["requests_per_s"], 3),
        "goal": {"ratio_min": 0.5, "p99_ms_max": 50},
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    })
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

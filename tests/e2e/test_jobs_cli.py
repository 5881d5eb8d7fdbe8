"""`opsctl jobs` as staff use it, and `jobs serve` as a real process stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from jobs.persistence.models import JobRunRow
from tests.e2e.test_cli import Run, as_json, cli_env, opsctl  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]


def test_jobs_commands(opsctl: Run) -> None:  # noqa: F811
    opsctl("db", "upgrade")
    listed = as_json(opsctl("jobs", "list", "--json"))
    names = {r["job_name"] for r in listed}
    assert {"consult.expire_unanswered", "rx.settle_refunds", "followup.deliver_due"} <= names
    assert all(r["schedule_id"] is None for r in listed)  # nothing scheduled before serve / add

    added = as_json(opsctl("jobs", "add", "consult.expire_unanswered", "--every", "2m", "--id", "expire-fast",
                           "--grace", "60", "--no-coalesce", "--json"))
    assert (added["schedule_id"], added["trigger"], added["grace_seconds"], added["coalesce"]) == (
        "expire-fast", "每 2 分钟", 60, False)
    assert opsctl("jobs", "add", "consult.expire_unanswered", "--every", "2m", "--id", "expire-fast",
                  expect=5).stderr
    assert "间隔格式" in opsctl("jobs", "add", "consult.expire_unanswered", "--every", "soon", expect=3).stderr
    assert "不存在" in opsctl("jobs", "add", "no.such", expect=4).stderr

    assert as_json(opsctl("jobs", "pause", "expire-fast", "--json"))["paused"] is True
    assert as_json(opsctl("jobs", "resume", "expire-fast", "--json"))["paused"] is False

    ran = as_json(opsctl("jobs", "run-now", "consult.expire_unanswered", "--json"))
    assert ran["status"] == "succeeded" and ran["counts"]["closed_unanswered"] == 0
    history = as_json(opsctl("jobs", "history", "--json"))
    assert [h["run_id"] for h in history] == [ran["run_id"]]
    assert as_json(opsctl("jobs", "history", "--status", "failed", "--json")) == []
    assert "expire-fast" in opsctl("jobs", "list").stdout


@pytest.mark.slow
def test_jobs_serve_runs_a_due_job_and_stops_on_sigterm(opsctl: Run, cli_env: Path) -> None:  # noqa: F811
    opsctl("db", "upgrade")
    opsctl("jobs", "add", "consult.expire_unanswered", "--every", "1s", "--id", "every-second")
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "opsctl", "jobs", "serve", "--poll", "0.2"], cwd=cli_env,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = create_engine(f"sqlite:///{cli_env / 'var' / 'opsctl.db'}")
    try:
        deadline = time.monotonic() + 60
        runs: list[JobRunRow] = []
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as connection:
                runs = list(connection.execute(select(JobRunRow.status, JobRunRow.schedule_id, JobRunRow.trigger)
                                               .where(JobRunRow.status == "succeeded")))
            if len(runs) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert len(runs) >= 2 and {(r.schedule_id, r.trigger) for r in runs} == {("every-second", "schedule")}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        engine.dispose()
    assert proc.returncode == 0, err
    assert "调度进程已退出" in err and "Traceback" not in err
    # serve added the registry's default schedules
    listed = json.loads(subprocess.run([sys.executable, "-m", "opsctl", "jobs", "list", "--json"], cwd=cli_env,
                                       env=env, capture_output=True, text=True, check=True).stdout)
    assert {"consult.expire_unanswered", "every-second"} <= {r["schedule_id"] for r in listed}
    with create_engine(f"sqlite:///{cli_env / 'var' / 'opsctl.db'}").connect() as connection:
        assert not list(connection.execute(select(JobRunRow.id).where(JobRunRow.status == "running")))

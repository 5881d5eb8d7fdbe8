"""Throwaway PostgreSQL server for the test suite (standard library only).

Library use::

    from tests.support.pgserver import PostgresUnavailable, throwaway_postgres

    with throwaway_postgres() as url:   # postgresql+psycopg://postgres@127.0.0.1:PORT/opsctl_test
        ...

Command-line use (wraps a command, exporting ``OPSCTL_TEST_DATABASE_URL``)::

    python -m tests.support.pgserver -- python -m pytest tests/integration

Behaviour of the wrapper:

* ``OPSCTL_TEST_DATABASE_URL`` already set -> the command is exec'd unchanged.
* otherwise a throwaway server is started for the lifetime of the command and
  always stopped afterwards (also on SIGINT/SIGTERM/SIGHUP); the wrapper exits
  with the command's return code (128+N if the command died from signal N).
* PostgreSQL unavailable -> a one-line reason goes to stderr and the command
  runs without the variable, unless ``OPSCTL_REQUIRE_POSTGRES=1`` (then exit 3).

Environment knobs: ``OPSCTL_PG_BIN`` (directory holding initdb/pg_ctl/createdb),
``OPSCTL_PG_TMPDIR`` (parent directory for the temporary cluster; when running
as root it must be traversable by the ``postgres`` user).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

__all__ = [
    "DATABASE_NAME",
    "ENV_URL",
    "PostgresStartError",
    "PostgresUnavailable",
    "find_pg_bin",
    "main",
    "throwaway_postgres",
    "unavailable_reason",
]

ENV_URL = "OPSCTL_TEST_DATABASE_URL"
ENV_REQUIRE = "OPSCTL_REQUIRE_POSTGRES"
ENV_PG_BIN = "OPSCTL_PG_BIN"
ENV_TMPDIR = "OPSCTL_PG_TMPDIR"

DATABASE_NAME = "opsctl_test"
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"  # OS account used when we are root
HOST = "127.0.0.1"

REQUIRED_BINARIES = ("initdb", "pg_ctl", "createdb")
START_TIMEOUT_S = 60
PORT_ATTEMPTS = 3

EXIT_UNAVAILABLE = 3


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be provided here; ``reason`` is a one-line explanation."""

    def __init__(self, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class PostgresStartError(PostgresUnavailable):
    """Binaries were found but the server could not be initialised/started.

    A subclass of :class:`PostgresUnavailable` so callers that merely want to
    skip keep working; ``details`` carries the tool output / server log tail.
    """


# --------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in REQUIRED_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_pg_bin() -> Path | None:
    """Directory holding initdb/pg_ctl/createdb, or ``None``.

    Order: ``$OPSCTL_PG_BIN`` (if set, it is the only candidate), the highest
    ``/usr/lib/postgresql/<version>/bin``, then the directory of ``pg_ctl`` on
    ``PATH`` (only if ``initdb`` and ``createdb`` sit next to it; Debian's
    ``/usr/bin/pg_ctl`` wrapper usually does not qualify).
    """
    override = os.environ.get(ENV_PG_BIN)
    if override:
        candidate = Path(override).expanduser()
        return candidate if _has_binaries(candidate) else None

    versioned = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for candidate in versioned:
        if _has_binaries(candidate):
            return candidate

    on_path = shutil.which("pg_ctl")
    if on_path:
        candidate = Path(on_path).parent
        if _has_binaries(candidate):
            return candidate
    return None


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _unavailable_reason(pg_bin: Path | None) -> str | None:
    if pg_bin is None:
        override = os.environ.get(ENV_PG_BIN)
        if override:
            return f"{ENV_PG_BIN}={override} does not contain {', '.join(REQUIRED_BINARIES)}"
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, createdb) not found in "
            f"/usr/lib/postgresql/*/bin or on PATH; set {ENV_PG_BIN}"
        )
    if _running_as_root():
        if shutil.which("runuser") is None:
            return "running as root but `runuser` is missing (initdb/pg_ctl refuse to run as root)"
        try:
            import pwd

            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root but there is no `{SYSTEM_USER}` system user to run the server as"
    return None


def unavailable_reason() -> str | None:
    """Cheap pre-flight check: ``None`` if a server can probably be started."""
    return _unavailable_reason(find_pg_bin())


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _tool_env() -> dict[str, str]:
    """Environment for server tools: no PG* variables leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class _Cluster:
    def __init__(self, pg_bin: Path, temp_dir: Path) -> None:
        self.pg_bin = pg_bin
        self.temp_dir = temp_dir
        self.data_dir = temp_dir / "data"
        self.socket_dir = temp_dir  # unix socket lives inside the temp dir
        self.log_file = temp_dir / "server.log"
        self.as_root = _running_as_root()
        self.port: int | None = None
        self.start_attempted = False

    def _argv(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.pg_bin / tool), *args]
        if self.as_root:
            argv = ["runuser", "-u", SYSTEM_USER, "--", *argv]
        return argv

    def run(self, tool: str, *args: str, timeout: float = START_TIMEOUT_S + 30) -> tuple[int, str]:
        """Run a tool in its own session and wait for it even if we get interrupted.

        The tool gets its own session so a terminal Ctrl-C does not reach it
        (or the postmaster pg_ctl forks); instead we let it finish so the
        cluster is in a known state before cleanup. Output goes to a temp file
        (never a pipe a daemonised postmaster could keep open).
        """
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(
                self._argv(tool, *args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.temp_dir,  # the postgres user must be able to chdir here
                env=_tool_env(),
                start_new_session=True,
            )
            interrupted: BaseException | None = None
            deadline = time.monotonic() + timeout
            while True:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                    break
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    break
                except BaseException as exc:  # KeyboardInterrupt / signal-raised exit
                    interrupted = interrupted or exc
            out.seek(0)
            output = out.read().decode(errors="replace")
        if interrupted is not None:
            raise interrupted
        return proc.returncode, output

    # ---- lifecycle -------------------------------------------------------

    def initdb(self) -> None:
        rc, out = self.run(
            "initdb",
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if rc != 0:
            raise PostgresStartError(f"initdb failed (exit {rc}): {_one_line(out)}", out)

    def start(self) -> None:
        last_error: PostgresStartError | None = None
        for _attempt in range(PORT_ATTEMPTS):
            self.port = _free_port()
            options = " ".join(
                [
                    f"-c listen_addresses={HOST}",
                    f"-p {self.port}",
                    f"-k {shlex.quote(str(self.socket_dir))}",
                    "-c fsync=off",
                    "-c full_page_writes=off",
                    "-c synchronous_commit=off",
                ]
            )
            self.start_attempted = True
            rc, out = self.run(
                "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_S),
                "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
            )
            if rc == 0:
                return
            log = _tail(self.log_file)
            last_error = PostgresStartError(
                f"pg_ctl start failed (exit {rc}) on port {self.port}: {_one_line(log or out)}",
                f"{out}\n--- server.log ---\n{log}",
            )
            self.stop()  # in case it half-started
            if "already in use" not in log:  # only a lost port race is worth retrying
                break
        assert last_error is not None
        raise last_error

    def createdb(self) -> None:
        rc, out = self.run(
            "createdb", "-h", HOST, "-p", str(self.port), "-U", SUPERUSER, DATABASE_NAME
        )
        if rc != 0:
            raise PostgresStartError(f"createdb failed (exit {rc}): {_one_line(out)}", out)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if not self.start_attempted or not self.data_dir.exists():
            return
        pid = self._postmaster_pid()
        try:
            self.run("pg_ctl", "stop", "-w", "-t", "30", "-m", "immediate", "-D", str(self.data_dir))
        except Exception:
            pass
        pid = self._postmaster_pid() or pid
        if pid is not None and _pid_alive(pid):
            # pg_ctl could not do it (or timed out): take the postmaster down hard.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def remove(self) -> None:
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (e.g. our own un-reaped child) counts as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _make_temp_dir(as_root: bool) -> Path:
    parent = os.environ.get(ENV_TMPDIR) or None
    temp_dir = Path(tempfile.mkdtemp(prefix="opsctl-pg-", dir=parent))
    if as_root:
        shutil.chown(temp_dir, SYSTEM_USER, SYSTEM_USER)
    return temp_dir


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a disposable PostgreSQL server; yield its SQLAlchemy URL.

    The server listens on 127.0.0.1 only (free port, unix socket inside the
    temp dir), runs with fsync/full_page_writes/synchronous_commit off and
    trust auth, and has a ``opsctl_test`` database. On exit -- normal,
    exception or KeyboardInterrupt -- it is stopped with ``pg_ctl stop -m
    immediate`` and the temp dir is removed.

    Raises :class:`PostgresUnavailable` (or its subclass
    :class:`PostgresStartError`) with a readable reason.
    """
    pg_bin = find_pg_bin()
    reason = _unavailable_reason(pg_bin)
    if reason is not None:
        raise PostgresUnavailable(reason)
    assert pg_bin is not None

    as_root = _running_as_root()
    try:
        temp_dir = _make_temp_dir(as_root)
    except (OSError, LookupError) as exc:
        raise PostgresStartError(f"cannot create temp dir for the cluster: {exc}") from exc

    cluster = _Cluster(pg_bin, temp_dir)
    try:
        cluster.initdb()
        cluster.start()
        cluster.createdb()
        yield f"postgresql+psycopg://{SUPERUSER}@{HOST}:{cluster.port}/{DATABASE_NAME}"
    finally:
        try:
            cluster.stop()
        finally:
            cluster.remove()


# --------------------------------------------------------------------------
# command-line wrapper
# --------------------------------------------------------------------------


class _Terminated(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _foreground_on_tty() -> bool:
    """True if our process group owns the terminal (so Ctrl-C also hit the child)."""
    for stream in (sys.stdin, sys.stderr, sys.stdout):
        try:
            return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
        except (OSError, ValueError, AttributeError):
            continue
    return False


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _log(message: str) -> None:
    print(f"pgserver: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        print("usage: python -m tests.support.pgserver -- CMD [ARGS...]", file=sys.stderr)
        return 2

    if os.environ.get(ENV_URL):
        try:
            os.execvp(args[0], args)
        except OSError as exc:
            _log(f"cannot run {args[0]!r}: {exc}")
            return 127

    require = os.environ.get(ENV_REQUIRE) == "1"
    state: dict[str, object] = {"child": None, "raised": False, "terminations": 0}

    def on_signal(signum: int, _frame: object) -> None:
        child = state["child"]
        if isinstance(child, subprocess.Popen) and child.poll() is None:
            # The command is running: pass the signal on and keep waiting for it;
            # the server is stopped once it exits.
            if signum == signal.SIGINT:
                if not _foreground_on_tty():  # a terminal Ctrl-C already reached it
                    child.send_signal(signum)
                return
            state["terminations"] = int(state["terminations"]) + 1
            child.send_signal(signal.SIGKILL if int(state["terminations"]) > 1 else signum)
            return
        # Starting up or cleaning up: abort start-up once; never interrupt cleanup.
        if child is None and not state["raised"]:
            state["raised"] = True
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise _Terminated(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, on_signal)

    try:
        with contextlib.ExitStack() as stack:
            env = dict(os.environ)
            try:
                started = time.monotonic()
                url = stack.enter_context(throwaway_postgres())
            except PostgresUnavailable as exc:
                if require:
                    _log(f"PostgreSQL required ({ENV_REQUIRE}=1) but unavailable: {exc.reason}")
                    if exc.details:
                        print(exc.details, file=sys.stderr)
                    return EXIT_UNAVAILABLE
                _log(f"PostgreSQL unavailable, running without {ENV_URL}: {exc.reason}")
            else:
                _log(f"throwaway PostgreSQL ready at {url} ({time.monotonic() - started:.1f}s)")
                env[ENV_URL] = url
            try:
                child = subprocess.Popen(args, env=env)
            except OSError as exc:
                _log(f"cannot run {args[0]!r}: {exc}")
                return 127
            state["child"] = child
            returncode = child.wait()
            state["child"] = "done"  # from here on, signals are only recorded
            return _exit_code(returncode)
    except KeyboardInterrupt:
        return 130
    except _Terminated as exc:
        return 128 + exc.signum
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())

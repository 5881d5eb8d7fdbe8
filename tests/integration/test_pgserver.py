"""The throwaway PostgreSQL helper really starts, serves and cleans up a server."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.pgserver import PostgresUnavailable, throwaway_postgres


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_throwaway_postgres_serves_and_cleans_up() -> None:
    psycopg = pytest.importorskip("psycopg")

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres())
        except PostgresUnavailable as exc:
            if os.environ.get("OPSCTL_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"PostgreSQL required but unavailable: {exc.reason}\n{exc.details}")
            pytest.skip(f"PostgreSQL unavailable: {exc.reason}")

        parts = urlsplit(url)
        assert parts.scheme == "postgresql+psycopg"
        assert parts.hostname == "127.0.0.1"
        assert parts.path == "/opsctl_test"
        port = parts.port
        assert port is not None

        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            version = conn.execute("select version()").fetchone()[0]
            data_dir = Path(conn.execute("show data_directory").fetchone()[0])
            socket_dir = Path(conn.execute("show unix_socket_directories").fetchone()[0])
            listen = conn.execute("show listen_addresses").fetchone()[0]
            fsync = conn.execute("show fsync").fetchone()[0]
            database = conn.execute("select current_database()").fetchone()[0]

        assert "PostgreSQL 15" in version
        assert listen == "127.0.0.1"
        assert fsync == "off"
        assert database == "opsctl_test"
        assert data_dir.is_dir()
        temp_dir = data_dir.parent
        assert socket_dir == temp_dir
        assert _port_accepts(port)

    assert not _port_accepts(port), f"port {port} still accepts connections"
    assert not temp_dir.exists(), f"{temp_dir} was not removed"

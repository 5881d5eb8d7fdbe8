"""The push worker's keep-alive HTTP client against a socket server that answers canned bytes:
Content-Length, chunked, Connection: close, HTTP/1.0, an interim 100, garbage, a closed peer."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import pytest

from campaigns.adapters.keepalive_http import KeepAliveConnection, ProtocolError


class Canned:
    """Accepts connections; answers each request (read up to its body) with the next canned bytes."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buf = b""
                while self.answers:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buf += data
                    if b"\r\n\r\n" not in buf:
                        break
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(buf) < length:
                        buf += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + buf[:length])
                    buf = buf[length:]
                    answer = self.answers.pop(0)
                    if answer == b"<close>":
                        break
                    conn.sendall(answer)
                    if b"connection: close" in answer.lower() or answer.startswith(b"HTTP/1.0"):
                        break


@pytest.fixture
def serve() -> Iterator:
    servers: list[Canned] = []

    def start(*answers: bytes) -> tuple[Canned, KeepAliveConnection]:
        server = Canned(list(answers))
        servers.append(server)
        return server, KeepAliveConnection("127.0.0.1", server.port, timeout=5)

    yield start
    for server in servers:
        server.sock.close()


OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"errcode":0}'


def test_keep_alive_reuses_one_connection_and_sends_one_well_formed_request(serve) -> None:  # type: ignore[no-untyped-def]
    server, conn = serve(OK, OK, OK)
    for _ in range(3):
        assert conn.post("/cgi-bin/message/template/send?access_token=T", '{"a":"复诊"}'.encode()) == (200, b'{"errcode":0}')
    assert server.connections == 1 and len(server.requests) == 3
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /cgi-bin/message/template/send?access_token=T HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}".encode() in head and body == '{"a":"复诊"}'.encode()


def test_chunked_bodies_and_interim_answers_are_read_whole(serve) -> None:  # type: ignore[no-untyped-def]
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\n{\"err\r\n8\r\ncode\":0}\r\n0\r\nX-Trailer: 1\r\n\r\n")
    server, conn = serve(chunked, OK)
    assert conn.post("/x", b"{}") == (200, b'{"errcode":0}')
    assert conn.post("/x", b"{}") == (200, b'{"errcode":0}')  # the chunked answer was consumed exactly
    assert server.connections == 1


def test_connection_close_and_http10_answers_reconnect_on_the_next_call(serve) -> None:  # type: ignore[no-untyped-def]
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    http10 = b"HTTP/1.0 503 Busy\r\n\r\nbusy"  # no length: the body ends with the connection
    server, conn = serve(close, http10, OK)
    assert conn.post("/x", b"{}") == (200, b"{}") and not conn.connected
    assert conn.post("/x", b"{}") == (503, b"busy") and not conn.connected
    assert conn.post("/x", b"{}")[0] == 200 and server.connections == 3


def test_garbage_and_a_vanished_server_are_errors_and_close_the_connection(serve) -> None:  # type: ignore[no-untyped-def]
    _server, conn = serve(b"SSH-2.0-OpenSSH\r\n\r\n", b"<close>")
    with pytest.raises(http.client.HTTPException):
        conn.post("/x", b"{}")
    assert not conn.connected
    with pytest.raises(OSError):  # the peer closed without answering: the call may have happened
        conn.post("/x", b"{}")
    assert not conn.connected
    with pytest.raises(ProtocolError):
        KeepAliveConnection("127.0.0.1", _bad_length_server(), timeout=5).post("/x", b"{}")


def _bad_length_server() -> int:
    sock = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n")
        sock.close()

    threading.Thread(target=answer, daemon=True).start()
    return sock.getsockname()[1]

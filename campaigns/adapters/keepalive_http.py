"""A small HTTP/1.1 keep-alive client for the push worker's hot path (one POST, one JSON answer).

``http.client`` costs about 0.3 ms of CPU per call (its response headers go through
``email.parser``); a worker that makes thousands of calls a second spends most of its CPU there.
This client writes the request in one ``sendall`` and reads the answer with a few byte
searches: the status line, the headers it needs (``Content-Length``, ``Transfer-Encoding:
chunked``, ``Connection: close``) and the body — about a third of the CPU. It is not a general
client: no redirects, no proxies, no compression (``Accept-Encoding: identity``), POST only.
HTTPS goes through ``ssl`` with the default context (certificate and host name checked).

Errors are the standard ones, so callers treat them like ``http.client``'s: ``OSError`` (refused,
reset, timeout, TLS) and ``http.client.HTTPException`` (:class:`ProtocolError`: an answer that
is not HTTP/1.x). After any error the connection is closed; the next call opens a new one.
"""

from __future__ import annotations

import http.client
import socket
import ssl

MAX_HEAD = 64 * 1024  # a status line and headers longer than this are not an API answer
_CHUNK = 65536


class ProtocolError(http.client.HTTPException):
    """The server's answer is not a well-formed HTTP/1.x response."""


class KeepAliveConnection:
    """One persistent connection to ``host:port``; not shared between threads."""

    def __init__(self, host: str, port: int | None = None, *, https: bool = False, timeout: float | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = port or (443 if https else 80)
        self.https, self.timeout = https, timeout
        self._ssl_context = ssl_context
        default = 443 if https else 80
        self._host_header = host if self.port == default else f"{host}:{self.port}"
        self._sock: socket.socket | None = None
        self._buf = b""

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.https:
                context = self._ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._sock, self._buf = sock, b""
        return sock

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._buf = None, b""

    def post(self, target: str, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
        """POST ``body`` to ``target`` (path and query, ASCII); returns (status, body)."""
        sock = self._sock or self._open()
        head = (f"POST {target} HTTP/1.1\r\nHost: {self._host_header}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nAccept-Encoding: identity\r\n\r\n")
        try:
            sock.sendall(head.encode("ascii") + body)
            return self._response()
        except BaseException:
            self.close()
            raise

    # -- reading ------------------------------------------------------------------------------
    def _recv(self) -> bytes:
        assert self._sock is not None
        data = self._sock.recv(_CHUNK)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        return data

    def _until(self, marker: bytes, limit: int) -> bytes:
        """Bytes up to ``marker`` (consumed, not returned)."""
        while True:
            end = self._buf.find(marker)
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + len(marker):]
                return line
            if len(self._buf) > limit:
                raise ProtocolError("header too long")
            self._buf += self._recv()

    def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += self._recv()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _response(self) -> tuple[int, bytes]:
        while True:
            head = self._until(b"\r\n\r\n", MAX_HEAD)
            status_line, _, rest = head.partition(b"\r\n")
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"bad status line {status_line[:40]!r}")
            status = int(parts[1])
            if not 100 <= status < 200:  # skip interim answers (100 Continue)
                break
        length: int | None = None
        chunked = False
        close = parts[0] == b"HTTP/1.0"
        for line in rest.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                if not value.isdigit():
                    raise ProtocolError("bad Content-Length")
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.endswith(b"chunked")
            elif name == b"connection":
                close = b"close" in value if value else close
                if b"keep-alive" in value:
                    close = False
        if status in (204, 304):
            body = b""
        elif chunked:
            body = self._chunked()
        elif length is not None:
            body = self._exactly(length)
        else:  # no length: the body ends when the server closes the connection
            body, self._buf = self._buf, b""
            while True:
                assert self._sock is not None
                data = self._sock.recv(_CHUNK)
                if not data:
                    break
                body += data
            close = True
        if close:
            self.close()
        return status, body

    def _chunked(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            size_line = self._until(b"\r\n", MAX_HEAD).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError("bad chunk size") from None
            if size == 0:
                while self._until(b"\r\n", MAX_HEAD):  # trailers, up to the empty line
                    pass
                return b"".join(pieces)
            pieces.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise ProtocolError("bad chunk end")

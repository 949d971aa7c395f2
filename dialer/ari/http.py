"""A small HTTP/1.1 client for ARI's REST calls: keep-alive connections to one Asterisk.

ARI's REST traffic is many tiny requests to one server (an originate, an addChannel, a hangup
per call). A general-purpose client spends most of its time per request on machinery this
traffic does not need (cookie jars, redirects, tracing hooks, URL objects, header multidicts);
this one writes the request line and headers as one buffer and reads a response framed by
Content-Length or chunked encoding: about a third of the CPU per request (measured against
aiohttp on the testbed, docs/BENCHMARKS.md).

Connection rules:

* at most `limit` connections; a request waits for a free one;
* an idle connection is reused only if the server has not closed it and it has been idle for
  less than `idle` seconds (Asterisk closes idle sessions after http.conf `session_keep_alive`,
  15 s by default), or less than `post_idle` seconds for a request that is never sent twice
  (a POST), so that one seldom meets a connection the server is closing;
* a connection is closed, never reused, after a timeout, a cancellation, a framing error or a
  ``Connection: close`` response;
* a request that failed on a reused connection before a byte of the response came back is sent
  again once on a new connection if it is idempotent (GET, PUT, DELETE): the server had closed
  the connection under it. A POST is never sent twice.

Errors: `HttpError` (the connection failed or the response could not be read); a timeout is
the `TimeoutError` of `asyncio.timeout`. Status codes are the caller's business.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_HEAD = 64 * 1024  # response status line and headers
MAX_BODY = 64 * 1024 * 1024  # a response body (channel lists of a busy Asterisk are large)


class HttpError(Exception):
    """The connection failed, or the response could not be read."""


class _Stale(Exception):
    """A reused connection gave no response at all (the server had closed it)."""


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float

    def close(self) -> None:
        self.writer.close()


class HttpPool:
    """Keep-alive HTTP/1.1 connections to the origin of `url` (http or https); request
    targets are paths below the URL's own path."""

    def __init__(self, url: str, headers: Mapping[str, str], *, limit: int = 50,
                 connect_timeout: float = 3.0, idle: float = 5.0,
                 post_idle: float = 1.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = \
            ssl.create_default_context() if parts.scheme == "https" else None
        self.base = parts.path.rstrip("/")
        netloc = self.host if ":" not in self.host else f"[{self.host}]"
        default_port = 443 if parts.scheme == "https" else 80
        host_header = netloc if self.port == default_port else f"{netloc}:{self.port}"
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in
                                {"Host": host_header, **headers}.items())
        self.connect_timeout = connect_timeout
        self.idle = idle
        self.post_idle = post_idle
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Conn] = []
        self._closed = False

    async def request(self, method: str, target: str, body: bytes | None = None,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """Send one request (`target`: path and query below the base URL); return the status
        and the body."""
        if self._closed:
            raise HttpError("the connection pool is closed")
        head = f"{method} {self.base}{target} HTTP/1.1\r\n{self._headers}"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            head += "Content-Length: 0\r\n\r\n"
        else:
            head += "\r\n"
        try:
            data = head.encode("latin-1") + (body or b"")
        except UnicodeEncodeError:
            raise HttpError(f"the request target is not plain text: {target!r}") from None
        async with self._slots:
            if self._closed:
                raise HttpError("the connection pool is closed")
            conn = self._reusable(self.idle if method in IDEMPOTENT else self.post_idle)
            if conn is not None:
                try:
                    return await self._exchange(conn, data, method)
                except _Stale:
                    if method not in IDEMPOTENT:
                        raise HttpError("the server closed the connection before answering"
                                        ) from None
            try:
                return await self._exchange(await self._connect(), data, method)
            except _Stale:
                raise HttpError("the server closed the connection before answering") from None

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    # --------------------------------------------------------------------------- internals
    def _reusable(self, idle: float) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be closed
            if now - conn.idle_since < idle and not conn.reader.at_eof() \
                    and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Conn:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, limit=MAX_HEAD)
        except TimeoutError:
            raise HttpError(f"no connection within {self.connect_timeout:g} s") from None
        except OSError as exc:
            raise HttpError(str(exc) or type(exc).__name__) from None
        return _Conn(reader, writer, time.monotonic())

    async def _exchange(self, conn: _Conn, data: bytes, method: str) -> tuple[int, bytes]:
        """Send and read one response; the connection goes back to the pool only when the
        whole response was read and the server keeps it open."""
        done = False
        try:
            conn.writer.write(data)
            try:
                status_line = await conn.reader.readuntil(b"\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise HttpError("the response was cut short") from None
                raise _Stale from None
            status, framing = await self._read_head(conn.reader, status_line)
            while 100 <= status < 200 and status != 101:  # interim (100 Continue): final follows
                status, framing = await self._read_head(
                    conn.reader, await conn.reader.readuntil(b"\r\n"))
            body = await self._read_body(conn.reader, status, method, framing)
            done = framing.keep_alive
            return status, body
        except asyncio.LimitOverrunError:
            raise HttpError("the response headers are too large") from None
        except asyncio.IncompleteReadError:
            raise HttpError("the response was cut short") from None
        except ValueError as exc:  # a malformed size in the framing
            raise HttpError(f"malformed response: {exc}") from None
        except OSError as exc:
            raise HttpError(str(exc) or type(exc).__name__) from None
        finally:
            if done and not self._closed:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader,
                         status_line: bytes) -> tuple[int, _Framing]:
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        framing = _Framing(keep_alive=parts[0] != b"HTTP/1.0")
        while True:
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, sep, value = line.partition(b":")
            if not sep:
                raise HttpError(f"bad response header: {line[:80]!r}")
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                if not value.isdigit():
                    raise HttpError(f"bad Content-Length: {value[:40]!r}")
                framing.length = int(value)
            elif name == b"transfer-encoding":
                framing.chunked = value.lower().endswith(b"chunked")
            elif name == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    framing.keep_alive = False
                elif b"keep-alive" in tokens:
                    framing.keep_alive = True
        return status, framing

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, status: int, method: str,
                         framing: _Framing) -> bytes:
        if method == "HEAD" or status in (204, 304):
            return b""
        if framing.chunked:
            chunks: list[bytes] = []
            size = 0
            while True:
                line = await reader.readuntil(b"\r\n")
                digits = line.split(b";", 1)[0].strip()
                if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                    raise HttpError(f"bad chunk size: {line[:40]!r}")
                n = int(digits, 16)
                if n == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    return b"".join(chunks)
                size += n
                if size > MAX_BODY:
                    raise HttpError("the response body is too large")
                chunks.append(await reader.readexactly(n))
                await reader.readexactly(2)
        if framing.length is not None:
            if framing.length > MAX_BODY:
                raise HttpError("the response body is too large")
            return await reader.readexactly(framing.length)
        framing.keep_alive = False  # framed by the end of the connection
        chunks = []
        size = 0
        while chunk := await reader.read(65536):
            size += len(chunk)
            if size > MAX_BODY:
                raise HttpError("the response body is too large")
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass(slots=True)
class _Framing:
    keep_alive: bool
    length: int | None = None
    chunked: bool = False

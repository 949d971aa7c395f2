"""The keep-alive HTTP/1.1 client of the ARI adapter, against a real local TCP server that
answers each request as the test scripts it (framing, closes, silence)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from dialer.ari.http import HttpError, HttpPool

# How the server answers one request: given (connection number, request head, body), the raw
# bytes to send back, or None to close the connection without answering.
Answer = Callable[[int, bytes, bytes], Awaitable[bytes | None]]


class Server:
    def __init__(self, answer: Answer, close_after_reply: bool = False) -> None:
        self.answer = answer
        self.close_after_reply = close_after_reply
        self.connections = 0
        self.requests: list[tuple[int, bytes, bytes]] = []
        self.closed_by_client = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append((number, head, body))
                reply = await self.answer(number, head, body)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if self.close_after_reply:
                    return
        finally:
            writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)


def ok(body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


async def always_ok(number: int, head: bytes, body: bytes) -> bytes:
    return ok()


@contextlib.asynccontextmanager
async def pool_for(answer: Answer, **kw: float) -> AsyncIterator[tuple[Server, HttpPool]]:
    async with Server(answer) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}/ari", {"Authorization": "Basic eA=="},
                        **kw)  # type: ignore[arg-type]
        try:
            yield server, pool
        finally:
            await pool.close()


async def test_requests_share_one_kept_alive_connection_and_carry_path_headers_and_body() -> None:
    async with pool_for(always_ok) as (server, pool):
        assert await pool.request("GET", "/channels?a=%2B1") == (200, b'{"ok": true}')
        assert await pool.request("POST", "/bridges/b1", b'{"x": 1}') == (200, b'{"ok": true}')
        assert await pool.request("DELETE", "/bridges/b1") == (200, b'{"ok": true}')
    assert server.connections == 1
    (_, get, _), (_, post, body), _ = server.requests
    assert get.startswith(b"GET /ari/channels?a=%2B1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in get
    assert b"Authorization: Basic eA==\r\n" in get
    assert post.startswith(b"POST /ari/bridges/b1 HTTP/1.1\r\n")
    assert b"Content-Type: application/json\r\n" in post
    assert body == b'{"x": 1}'


async def test_a_post_without_a_body_says_its_length_is_zero() -> None:
    async with pool_for(always_ok) as (server, pool):
        await pool.request("POST", "/channels/c1/answer")
    assert b"Content-Length: 0\r\n" in server.requests[0][1]


async def test_a_chunked_body_is_put_together_and_the_connection_kept() -> None:
    async def chunked(number: int, head: bytes, body: bytes) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\n[1, 2\r\n4;ext=1\r\n, 3]\r\n0\r\n\r\n")
    async with pool_for(chunked) as (server, pool):
        assert await pool.request("GET", "/x") == (200, b"[1, 2, 3]")
        assert await pool.request("GET", "/x") == (200, b"[1, 2, 3]")
    assert server.connections == 1


async def test_no_content_has_an_empty_body_and_error_statuses_are_returned() -> None:
    answers = iter([b"HTTP/1.1 204 No Content\r\n\r\n",
                    b'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}'])

    async def scripted(number: int, head: bytes, body: bytes) -> bytes:
        return next(answers)
    async with pool_for(scripted) as (server, pool):
        assert await pool.request("DELETE", "/channels/c1") == (204, b"")
        assert await pool.request("GET", "/channels/c1") == (404, b"{}")
    assert server.connections == 1


async def test_an_interim_response_is_skipped_for_the_final_one() -> None:
    async def continued(number: int, head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"[]")
    async with pool_for(continued) as (server, pool):
        assert await pool.request("POST", "/a", b"{}") == (200, b"[]")
        assert await pool.request("GET", "/b") == (200, b"[]")  # nothing left over
    assert server.connections == 1


async def test_a_post_takes_only_a_connection_used_moments_ago() -> None:
    async with pool_for(always_ok, post_idle=0.0) as (server, pool):
        await pool.request("GET", "/a")
        await pool.request("POST", "/b", b"{}")  # the idle one is not fresh enough for a POST
        await pool.request("GET", "/c")  # a GET still takes an idle one
    assert [n for n, _, _ in server.requests] == [1, 2, 2]


async def test_connection_close_from_the_server_means_a_new_connection_next_time() -> None:
    async def closing(number: int, head: bytes, body: bytes) -> bytes:
        return ok(extra="Connection: close\r\n")
    async with pool_for(closing) as (server, pool):
        await pool.request("GET", "/a")
        await pool.request("GET", "/b")
    assert server.connections == 2


async def test_a_body_framed_by_the_end_of_the_connection_is_read_whole() -> None:
    async def unframed(number: int, head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100_000
    async with Server(unframed, close_after_reply=True) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}", {})
        try:
            assert await pool.request("GET", "/big") == (200, b"x" * 100_000)
            assert await pool.request("GET", "/big") == (200, b"x" * 100_000)
        finally:
            await pool.close()
    assert server.connections == 2


async def test_an_idempotent_request_on_a_connection_the_server_dropped_is_sent_again_once(
        ) -> None:
    async def drop_second_on_first(number: int, head: bytes, body: bytes) -> bytes | None:
        seen_on_this = sum(1 for n, _, _ in server.requests if n == number)
        return None if number == 1 and seen_on_this == 2 else ok()
    async with pool_for(drop_second_on_first) as (server, pool):
        await pool.request("GET", "/a")
        assert await pool.request("GET", "/b") == (200, b'{"ok": true}')
    assert [n for n, _, _ in server.requests] == [1, 1, 2]


async def test_a_post_on_a_connection_the_server_dropped_fails_and_is_not_sent_twice() -> None:
    async def drop_second_on_first(number: int, head: bytes, body: bytes) -> bytes | None:
        seen_on_this = sum(1 for n, _, _ in server.requests if n == number)
        return None if number == 1 and seen_on_this == 2 else ok()
    async with pool_for(drop_second_on_first) as (server, pool):
        await pool.request("GET", "/a")
        with pytest.raises(HttpError, match="closed the connection"):
            await pool.request("POST", "/channels", b"{}")
        assert await pool.request("POST", "/channels", b"{}") == (200, b'{"ok": true}')
    assert [n for n, _, _ in server.requests] == [1, 1, 2]


async def test_a_connection_idle_longer_than_the_limit_is_not_reused() -> None:
    async with pool_for(always_ok, idle=0.0) as (server, pool):
        await pool.request("GET", "/a")
        await pool.request("GET", "/b")
    assert server.connections == 2


async def test_a_request_cut_by_a_timeout_closes_its_connection() -> None:
    silent = asyncio.Event()

    async def never(number: int, head: bytes, body: bytes) -> bytes | None:
        await silent.wait()
        return None
    async with pool_for(never) as (server, pool):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await pool.request("GET", "/slow")
        assert pool._idle == []
        silent.set()
        for _ in range(500):
            if server.requests and not pool._idle:
                break
            await asyncio.sleep(0.01)
    assert len(server.requests) == 1


async def test_at_most_limit_connections_are_open_at_once() -> None:
    async def slow(number: int, head: bytes, body: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return ok()
    async with pool_for(slow, limit=2) as (server, pool):
        replies = await asyncio.gather(*(pool.request("GET", f"/{i}") for i in range(6)))
    assert all(status == 200 for status, _ in replies)
    assert server.connections == 2


async def test_nobody_listening_is_an_http_error() -> None:
    async with Server(always_ok) as server:
        port = server.port
    pool = HttpPool(f"http://127.0.0.1:{port}", {})
    with pytest.raises(HttpError):
        await pool.request("GET", "/")
    await pool.close()


@pytest.mark.parametrize("reply", [b"SSH-2.0-OpenSSH\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                                   b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n"])
async def test_a_response_that_is_not_well_formed_http_is_an_http_error(reply: bytes) -> None:
    async def bad(number: int, head: bytes, body: bytes) -> bytes | None:
        return reply
    async with Server(bad, close_after_reply=True) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}", {})
        try:
            with pytest.raises(HttpError):
                async with asyncio.timeout(5):
                    await pool.request("GET", "/")
        finally:
            await pool.close()


def test_only_http_and_https_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpPool("ws://127.0.0.1:8088/ari", {})

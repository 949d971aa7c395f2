"""The feeds over WebSocket: `/ws/agent/{aid}` and `/ws/supervisor`.

`Publisher` owns one task that reads the live state every `INTERVAL` seconds (`read`, pure
`dialer.console.feed.snapshot_of` over the engines) and puts each subscriber's messages in that
subscriber's bounded queue; each socket's handler sends its queue. A subscriber that falls
`MAX_QUEUED` messages behind is closed (1013, try again later) rather than let memory grow.

A socket opens unauthenticated: its first message carries the token (`dialer.console.access`).
A plain HTTP GET on a feed (no WebSocket upgrade) is answered 426 with a JSON error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from dialer.auth import Tokens
from dialer.config import ApiToken
from dialer.console.access import HELLO_TIMEOUT, Close, Feed, Refusal, authorize, parse_hello
from dialer.console.feed import (
    EMPTY,
    Message,
    Snapshot,
    agent_messages,
    agent_welcome,
    supervisor_messages,
    supervisor_welcome,
)

log = logging.getLogger(__name__)

INTERVAL = 0.25  # seconds between two reads of the live state
MAX_QUEUED = 1000  # messages a subscriber may fall behind before it is closed
HEARTBEAT = 20.0  # WebSocket ping interval: a dead browser is noticed and dropped


@dataclass(eq=False, slots=True)
class Subscription:
    feed: Feed
    agent_id: str | None
    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, messages: list[Message]) -> None:
        for message in messages:
            try:
                self.queue.put_nowait(message)
            except asyncio.QueueFull:
                self.overflowed.set()
                return


class Publisher:
    """Reads the live state and fans the changes out to the subscribers."""

    def __init__(self, read: Callable[[Snapshot], Snapshot], interval: float = INTERVAL) -> None:
        self.read = read  # previous snapshot -> the current one
        self.interval = interval
        self.snapshot = EMPTY
        self.subscriptions: set[Subscription] = set()
        self._watched = asyncio.Event()  # set while anyone subscribes
        self._task: asyncio.Task[None] | None = None

    def step(self) -> None:
        """Read the state once and queue every subscriber's changes."""
        before, after = self.snapshot, self.read(self.snapshot)
        self.snapshot = after
        for sub in self.subscriptions:
            if sub.feed is Feed.AGENT:
                assert sub.agent_id is not None
                sub.put(agent_messages(sub.agent_id, before, after))
            else:
                sub.put(supervisor_messages(before, after))

    def subscribe(self, feed: Feed, agent_id: str | None = None) -> Subscription:
        self.step()  # fresh state for the newcomer; the others get their diffs
        sub = Subscription(feed, agent_id)
        sub.put(agent_welcome(agent_id, self.snapshot) if agent_id is not None
                else supervisor_welcome(self.snapshot))
        self.subscriptions.add(sub)
        self._watched.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)
        if not self.subscriptions:
            self._watched.clear()

    async def _run(self) -> None:
        while True:
            # Nobody watching: no snapshot and no wake-ups (they cost CPU on a busy dialer).
            await self._watched.wait()
            await asyncio.sleep(self.interval)
            if not self.subscriptions:
                continue
            try:
                self.step()
            except Exception:  # task boundary: a bad read must not end the feed
                log.exception("console feed: reading the live state failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="console-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def upgrade_required() -> web.Response:
    return web.json_response(
        {"error": {"code": "upgrade_required",
                   "message": "this is a WebSocket feed: open it with a WebSocket client and "
                              'send {"token": "..."} as the first message'}},
        status=426, headers={"Upgrade": "websocket", "Connection": "Upgrade"})


class FeedSockets:
    """The two feed endpoints over one publisher."""

    def __init__(self, publisher: Publisher, tokens: Tokens) -> None:
        self.publisher = publisher
        self.tokens = tokens
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def agent_feed(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, Feed.AGENT, request.match_info["aid"])

    async def supervisor_feed(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, Feed.SUPERVISOR, None)

    async def close_all(self) -> None:
        """Server shutdown: close every open feed (1001, going away)."""
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=Close.GOING_AWAY, message=b"server shutting down")

    async def _serve(self, request: web.Request, feed: Feed,
                     agent_id: str | None) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=64 * 1024)
        if not ws.can_prepare(request).ok:
            return upgrade_required()
        await ws.prepare(request)
        self.sockets.add(ws)
        token = await self._hello(ws)
        if isinstance(token, Refusal):
            return await self._refuse(ws, request, token)
        refusal = authorize(token, feed, agent_id)
        if refusal is not None:
            return await self._refuse(ws, request, refusal)
        await ws.send_json({"type": "welcome", "feed": feed.value, "agent": agent_id,
                            "token": token.name, "role": token.role.value})
        sub = self.publisher.subscribe(feed, agent_id)
        sender = asyncio.get_running_loop().create_task(self._send(ws, sub),
                                                        name=f"console-{feed.value}-send")
        try:
            async for msg in ws:  # nothing is expected from the page; this notices the close
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.publisher.unsubscribe(sub)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return ws

    async def _hello(self, ws: web.WebSocketResponse) -> ApiToken | Refusal:
        try:
            msg = await ws.receive(timeout=HELLO_TIMEOUT)
        except TimeoutError:
            return Refusal(Close.HELLO_TIMEOUT, f'no {{"token": ...}} message within '
                                                f"{HELLO_TIMEOUT:g} s")
        if msg.type is not WSMsgType.TEXT:
            return Refusal(Close.BAD_HELLO, 'first message must be JSON text {"token": "..."}')
        token = parse_hello(str(msg.data))
        if isinstance(token, Refusal):
            return token
        found = self.tokens.find(token)
        return found if found is not None else Refusal(Close.UNAUTHORIZED,
                                                       "unknown or revoked token")

    async def _refuse(self, ws: web.WebSocketResponse, request: web.Request,
                      refusal: Refusal) -> web.WebSocketResponse:
        log.warning("refused feed %s: %s", request.path, refusal.reason)
        if not ws.closed:
            await ws.close(code=refusal.code, message=refusal.reason.encode())
        return ws

    async def _send(self, ws: web.WebSocketResponse, sub: Subscription) -> None:
        overflow = asyncio.ensure_future(sub.overflowed.wait())
        get: asyncio.Future[Message] | None = None
        try:
            while not ws.closed:
                get = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait({get, overflow}, return_when=asyncio.FIRST_COMPLETED)
                if overflow in done:
                    await ws.close(code=Close.TRY_AGAIN_LATER,
                                   message=b"too far behind the feed; reconnect")
                    return
                await ws.send_str(json.dumps(get.result(), separators=(",", ":")))
        except ConnectionError:  # the page went away mid-send: the reader loop ends too
            return
        finally:
            overflow.cancel()
            if get is not None:
                get.cancel()

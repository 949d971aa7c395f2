"""The ARI event stream: one WebSocket per application, reconnected with backoff.

The reader decodes each message and hands it to `emit`: by default `put_nowait` on an
unbounded queue, drained by whoever processes events. Asterisk drops a socket whose writes
block for more than 100 ms and then loses every later event (TESTBED.md), so nothing slow may
ever run on this path: an `emit` that delivers at once (as `dialer.ari.connection.Ari` does
while nothing is queued) may only run callbacks that never block.

Around the events the stream enqueues `StreamConnected` and `StreamDisconnected` markers.
Events sent while the socket is down are lost for good (ARI has no replay), so a consumer must
re-read state from REST after every `StreamConnected` (see `dialer.ari.connection`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from dialer.ari.events import AriEvent, decode_event
from dialer.ari.models import AriDecodeError
from dialer.backoff import Backoff
from dialer.config import AriConfig
from dialer.errors import AriAuthError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamConnected:
    reconnect: bool  # False for the first connection of this stream


@dataclass(frozen=True, slots=True)
class StreamDisconnected:
    reason: str


StreamItem = AriEvent | StreamConnected | StreamDisconnected


class EventStream:
    """Owns the WebSocket. `run()` loops until cancelled; a 401 is fatal (AriAuthError)."""

    def __init__(self, config: AriConfig, backoff: Backoff | None = None) -> None:
        self.config = config
        self.queue: asyncio.Queue[StreamItem] = asyncio.Queue()  # unbounded on purpose
        self.emit: Callable[[StreamItem], None] = self.queue.put_nowait
        self.backoff = backoff or Backoff(initial=0.1, maximum=3.0)
        self.decode_errors = 0
        self._ws: ClientConnection | None = None
        parts = urlsplit(config.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.url = (f"{scheme}://{parts.netloc}/ari/events?app={quote(config.app)}"
                    "&subscribeAll=false")
        token = base64.b64encode(f"{config.username}:{config.password.value}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def run(self) -> None:
        connections = 0
        while True:
            try:
                async with connect(
                    self.url,
                    additional_headers=self._headers,
                    open_timeout=self.config.connect_timeout,
                    max_size=2**22,
                    ping_interval=10,
                    ping_timeout=10,
                    close_timeout=1,
                ) as ws:
                    self._ws = ws
                    self.backoff.reset()
                    self.emit(StreamConnected(reconnect=connections > 0))
                    connections += 1
                    log.info("ARI event stream connected (app %s)", self.config.app)
                    reason = await self._read(ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 401:
                    raise AriAuthError("GET", "/ari/events", 401,
                                       "ARI rejected the user name or password") from None
                reason = f"WebSocket refused with HTTP {status}"
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            finally:
                was_connected = self._ws is not None
                self._ws = None
            if was_connected:
                self.emit(StreamDisconnected(reason))
                log.warning("ARI event stream lost: %s; reconnecting", reason)
            else:
                log.debug("ARI event stream connect failed: %s", reason)
            await asyncio.sleep(self.backoff.next_delay())

    async def _read(self, ws: ClientConnection) -> str:
        put = self.emit
        try:
            async for message in ws:
                try:
                    put(decode_event(message))
                except AriDecodeError as exc:
                    self.decode_errors += 1
                    log.warning("dropped an undecodable ARI event: %s", exc)
        except ConnectionClosed as exc:
            return f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        return "closed by Asterisk"

    def abort_connection(self) -> None:
        """Cut the TCP connection abruptly (fault injection: a network cut, not a clean close)."""
        if self._ws is not None:
            self._ws.transport.abort()

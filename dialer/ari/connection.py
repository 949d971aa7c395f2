"""`Ari`: the REST client and the event stream together, with ARI's sharp edges handled.

* After every (re)connection of the event socket it re-reads `GET /channels` and
  `GET /bridges` and hands listeners a `StreamReady` snapshot before any later event, because
  events during an outage are lost for good.
* `originate` is refused (`EventStreamDown`) while the socket is down: Asterisk would accept
  it, answer the customer and hang up at once, an abandoned call (TESTBED.md).
* After every connection it sets the application's event filter to `SUBSCRIBED_EVENTS`, the
  types the dialer acts on (about a third of what Asterisk would send otherwise).
* `expect(predicate)` registers interest in an event *before* the REST call that causes it,
  since events often arrive before the HTTP response.

Listeners are plain callables; they must not block (enqueue work). While nothing waits in
the stream's queue, an event goes to the listeners straight from the socket reader (one task
hop less per event); a connection marker, and every item behind it until its snapshot is
delivered, goes through the queue and the dispatch task, so the order always holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from dialer.ari.client import AriClient
from dialer.ari.events import SUBSCRIBED_EVENTS
from dialer.ari.models import Bridge, Channel
from dialer.ari.stream import EventStream, StreamConnected, StreamDisconnected, StreamItem
from dialer.backoff import Backoff
from dialer.config import AriConfig
from dialer.errors import AriError, AriUnavailable, EventStreamDown

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamReady:
    """The event socket is (again) connected; `channels`/`bridges` are Asterisk's truth now."""

    reconnect: bool
    channels: tuple[Channel, ...]
    bridges: tuple[Bridge, ...]


AriItem = StreamItem | StreamReady
Listener = Callable[[AriItem], None]
Predicate = Callable[[AriItem], bool]
_Item = TypeVar("_Item")


class Ari:
    def __init__(self, config: AriConfig, backoff: Backoff | None = None,
                 events: Sequence[str] = SUBSCRIBED_EVENTS) -> None:
        self.config = config
        self.app = config.app
        self.events = tuple(events)  # the event types asked for; () for all
        self.rest = AriClient(config)
        self.stream = EventStream(config, backoff)
        self._listeners: list[Listener] = []
        self._waiters: list[tuple[Predicate, asyncio.Future[AriItem]]] = []
        self._ready = False
        self._first_ready: asyncio.Future[None] | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._dispatching = False  # the dispatch task holds an item (e.g. awaits a snapshot)
        self.stream.emit = self._emit

    # ---------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Ari:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, deadline: float | None = None) -> None:
        """Connect REST and the event socket; return once the first snapshot is delivered."""
        await self.rest.start()
        loop = asyncio.get_running_loop()
        self._first_ready = loop.create_future()
        self._stream_task = asyncio.create_task(self.stream.run(), name="ari-stream")
        self._stream_task.add_done_callback(self._stream_ended)
        self._dispatch_task = asyncio.create_task(self._dispatch(), name="ari-dispatch")
        if deadline is None:
            deadline = self.config.connect_timeout * 3
        done, _ = await asyncio.wait(
            {self._first_ready, self._stream_task}, timeout=deadline,
            return_when=asyncio.FIRST_COMPLETED,
        )
        first_ready, stream_task = self._first_ready, self._stream_task
        if first_ready in done and first_ready.exception() is None:
            return
        await self.close()
        failure = None
        if stream_task in done:
            failure = stream_task.exception()  # e.g. AriAuthError: fatal, not retried
        elif first_ready.done() and not first_ready.cancelled():
            failure = first_ready.exception()
        if failure is not None:
            raise failure
        # The socket never opened: say why in terms of the REST side, which reports clearly.
        await self.rest.start()
        try:
            await self.rest.info()
        finally:
            await self.rest.close()
        raise AriUnavailable(f"ARI event WebSocket at {self.config.url} did not connect "
                             f"within {deadline:g} s")

    def _stream_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._ready = False
            log.error("ARI event stream stopped for good: %s", task.exception())

    async def close(self) -> None:
        for task in (self._stream_task, self._dispatch_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._stream_task = self._dispatch_task = None
        self._ready = False
        for _, fut in self._waiters:
            fut.cancel()
        self._waiters.clear()
        await self.rest.close()

    @property
    def ready(self) -> bool:
        """True while the event socket is connected and its snapshot has been delivered."""
        return self._ready and self.stream.connected

    # ------------------------------------------------------------------- events
    def listen(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def expect(
        self, kind: type[_Item], where: Callable[[_Item], bool] | None = None
    ) -> asyncio.Future[_Item]:
        """A future for the first later item of `kind` matching `where`. Register before acting."""
        fut: asyncio.Future[_Item] = asyncio.get_running_loop().create_future()

        def predicate(item: AriItem) -> bool:
            return isinstance(item, kind) and (where is None or where(item))

        self._waiters.append((predicate, fut))  # type: ignore[arg-type]  # narrowed by predicate
        return fut

    def _deliver(self, item: AriItem) -> None:
        if isinstance(item, StreamDisconnected):
            self._ready = False
        if self._waiters:
            keep = []
            for predicate, fut in self._waiters:
                if fut.done():
                    continue
                if predicate(item):
                    fut.set_result(item)
                else:
                    keep.append((predicate, fut))
            self._waiters = keep
        for listener in tuple(self._listeners):
            try:
                listener(item)
            except Exception:  # a listener bug must not stop event delivery for everyone
                log.exception("ARI listener %r failed on %s", listener, type(item).__name__)

    def _emit(self, item: StreamItem) -> None:
        """The stream reader's hand-off: deliver at once unless something is queued ahead."""
        if isinstance(item, StreamConnected) or self._dispatching \
                or not self.stream.queue.empty():
            self.stream.queue.put_nowait(item)
            return
        self._deliver(item)

    async def _dispatch(self) -> None:
        queue = self.stream.queue
        while True:
            item = await queue.get()
            self._dispatching = True
            try:
                if isinstance(item, StreamConnected):
                    ready = await self._snapshot(item.reconnect)
                    if ready is None:
                        continue
                    self._ready = True
                    self._deliver(ready)
                    if self._first_ready is not None and not self._first_ready.done():
                        self._first_ready.set_result(None)
                    continue
                self._deliver(item)
            finally:
                self._dispatching = False  # items still queued keep `_emit` queueing

    async def _snapshot(self, reconnect: bool) -> StreamReady | None:
        try:
            await self.rest.filter_events(self.app, self.events)
        except AriError as exc:  # all events still arrive: more work, nothing lost
            log.warning("could not set the ARI event filter of %s: %s", self.app, exc)
        try:
            channels, bridges = await asyncio.gather(self.rest.list_channels(),
                                                     self.rest.list_bridges())
        except AriError as exc:
            log.warning("could not re-read ARI state after connecting: %s; reconnecting", exc)
            self.stream.abort_connection()
            if self._first_ready is not None and not self._first_ready.done():
                self._first_ready.set_exception(exc)
            return None
        return StreamReady(reconnect, tuple(channels), tuple(bridges))

    # ------------------------------------------------------------------ actions
    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: Sequence[str] = (),
        ring_timeout: float = 30,
        caller_id: str | None = None,
        formats: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Originate into this app; refused while the event socket is down."""
        if not self.ready:
            raise EventStreamDown(
                f"not originating {channel_id}: the ARI event stream is down (the call would "
                "be answered with nobody listening)"
            )
        merged = {"DIALER_APP": self.app, **(variables or {})}
        return await self.rest.originate(
            endpoint, channel_id=channel_id, app=self.app, app_args=app_args, ring_timeout=ring_timeout,
            caller_id=caller_id, formats=formats, variables=merged,
        )

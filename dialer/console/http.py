"""`Console`: the pages and the feeds on the server's aiohttp application.

`Console(dialer, api_config, clock, ivr=...).routes(app)` adds `/console`, `/wallboard`,
`/console/static/{name}`, `/ws/agent/{aid}` and `/ws/supervisor`, starts the publisher with the
application and closes every feed when it shuts down. The live state is read, never changed:
the engines of `dialer.runners` and, for the screen pop, the IVR variables of the caller's call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from dialer.auth import Tokens
from dialer.config import ApiConfig
from dialer.console.feed import QueueSource, Snapshot, snapshot_of
from dialer.console.pages import Pages
from dialer.console.ws import INTERVAL, FeedSockets, Publisher

if TYPE_CHECKING:
    from dialer.ivr.runtime import IvrService
    from dialer.runner import Dialer


class Console:
    def __init__(self, dialer: Dialer, api: ApiConfig, clock: Callable[[], float], *,
                 ivr: IvrService | None = None, queues: QueueSource | None = None,
                 interval: float = INTERVAL) -> None:
        self.dialer = dialer
        self.clock = clock
        self.ivr = ivr
        self.queues = queues
        self.publisher = Publisher(self.read, interval)
        self.sockets = FeedSockets(self.publisher, Tokens(api))
        self.pages = Pages()

    def read(self, previous: Snapshot) -> Snapshot:
        engines = {cid: runner.engine for cid, runner in self.dialer.runners.items()}
        return snapshot_of(engines, self.clock(), previous, self.ivr_input, self.queues)

    def ivr_input(self, call_id: str) -> Mapping[str, str] | None:
        """The variables an IVR flow set on this call (what the caller entered, as the flow
        shows it), if the call went through one."""
        session = self.ivr.by_channel.get(call_id) if self.ivr is not None else None
        return dict(session.vars) if session is not None and session.vars else None

    def routes(self, app: web.Application) -> None:
        self.pages.routes(app)
        app.router.add_get("/ws/agent/{aid}", self.sockets.agent_feed)
        app.router.add_get("/ws/supervisor", self.sockets.supervisor_feed)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._shutdown)

    async def _start(self, app: web.Application) -> None:
        self.publisher.start()

    async def _shutdown(self, app: web.Application) -> None:
        await self.sockets.close_all()
        await self.publisher.stop()

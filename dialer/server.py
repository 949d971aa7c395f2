"""The dialer server process: ARI connection, Redis, and the HTTP endpoints.

It owns its resources and starts them in order (Redis, then ARI, then HTTP), failing with one
clear `DialerError` naming what could not be reached. Later features (campaigns, agents, IVR)
attach to the running server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialer.api import MAX_BODY, Api, errors_middleware, settle_middleware
from dialer.ari import Ari
from dialer.auth import auth_middleware
from dialer.config import Config
from dialer.console.http import Console
from dialer.errors import DialerError
from dialer.intake import IntakeApi
from dialer.ivr.desk import CampaignDesk
from dialer.ivr.hooks import DialerHooks
from dialer.ivr.http import IvrApi
from dialer.ivr.library import FlowLibrary
from dialer.ivr.runtime import IvrService
from dialer.ivr.tts import TtsCache
from dialer.metrics import METRICS
from dialer.routing.profiles import ProfileError, ProfileSet, parse_profiles_yaml
from dialer.runner import Dialer
from dialer.store.redis_store import RedisStore
from dialer.webhooks.delivery import WebhookDispatcher

log = logging.getLogger(__name__)


class RedisUnavailable(DialerError):
    """Redis could not be reached or refused us."""


def load_profiles(path: Path | None) -> ProfileSet | None:
    """The agent profiles file (routing.profiles), or None. A bad file stops the start with
    every problem named (agents would otherwise be routed on wrong skills)."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DialerError(f"routing.profiles: cannot read {path}: {exc.strerror}") from None
    try:
        return parse_profiles_yaml(text, str(path))
    except ProfileError as exc:
        raise DialerError(f"routing.profiles: {exc}") from None


async def connect_redis(url: str) -> aioredis.Redis:
    client: aioredis.Redis = aioredis.from_url(
        url, decode_responses=True, socket_connect_timeout=3, socket_timeout=5
    )
    try:
        await client.ping()
    except (RedisConnectionError, RedisTimeoutError, AuthenticationError, OSError) as exc:
        await client.aclose()
        raise RedisUnavailable(f"cannot reach Redis at {url}: {exc}") from None
    return client


class Server:
    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.ari = Ari(config.ari)
        self.redis: aioredis.Redis | None = None
        self.store: RedisStore | None = None
        self.dialer: Dialer | None = None
        self.flows: FlowLibrary | None = None
        self.ivr: IvrService | None = None
        self.desk: CampaignDesk | None = None
        self._watch: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.webhooks: WebhookDispatcher | None = None

    async def __aenter__(self) -> Server:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.redis = await connect_redis(self.config.redis.url)
        self.store = RedisStore(self.redis)
        await self.ari.start()
        self.dialer = Dialer(self.ari, self.store, self.clock,
                             profiles=load_profiles(self.config.routing.profiles))
        # Before resuming: attempts closed by the restart recovery are delivered too.
        self.webhooks = WebhookDispatcher(self.config.webhooks,
                                          self.dialer.metrics.webhook_deliveries, self.clock)
        await self.webhooks.start()
        self.dialer.on_attempt_ended.append(self.webhooks.attempt_ended)
        self._start_ivr(self.dialer)  # before resuming: campaigns may run flows
        resumed = await self.dialer.resume_all()
        if resumed:
            log.warning("resumed campaigns after a restart: %s", ", ".join(resumed))
        assert self.flows is not None
        assert self.ivr is not None
        api = Api(self.store, self.dialer, self.clock)
        app = web.Application(client_max_size=MAX_BODY, middlewares=[
            errors_middleware, auth_middleware(self.config.api, api.agent_on_lead),
            settle_middleware(self.dialer)])
        api.routes(app)
        IvrApi(self.flows, self.ivr).routes(app)
        IntakeApi(self.store, self.config.callbacks, self.clock).routes(app)
        Console(self.dialer, self.config.api, self.clock, ivr=self.ivr).routes(app)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        try:
            await site.start()
        except OSError as exc:
            raise DialerError(
                f"cannot listen on {self.config.server.host}:{self.config.server.port}: "
                f"{exc.strerror} (server.port in the config)"
            ) from None
        log.info("dialer server listening on %s:%s", self.config.server.host,
                 self.config.server.port)

    def _start_ivr(self, dialer: Dialer) -> None:
        """The IVR: the flow set (a broken one is reported, never fatal: inbound calls are
        refused until a good set loads) and the per-call flow driver."""
        ivr = self.config.ivr
        media = ivr.local_media_dir
        self.flows = FlowLibrary(ivr.flows_dir, media, dialer.metrics, self.clock)
        result = self.flows.reload()
        if not result.ok:
            log.error("IVR: no flow set is live (fix the files; they reload on change)")
        self.desk = CampaignDesk(dialer, self.clock)
        hooks = DialerHooks(dialer.store, self.clock, callback_campaign=ivr.callback_campaign,
                            desk=self.desk)
        self.ivr = IvrService(self.ari, self.flows, TtsCache(media / "tts"), media_dir=media,
                              asterisk_root=ivr.asterisk_root, metrics=dialer.metrics,
                              hooks=hooks, clock=self.clock)
        dialer.run_flow = self.ivr.start_outbound
        if ivr.watch:
            self._watch = asyncio.get_running_loop().create_task(self.flows.watch(),
                                                                 name="ivr-flow-watch")

    def reload_flows(self) -> None:
        """SIGHUP: reload the flow files now."""
        if self.flows is not None:
            asyncio.get_running_loop().create_task(self.flows.reload_async())

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self.ivr is not None:
            await self.ivr.close()
        if self.desk is not None:
            await self.desk.close()
            self.desk = None
            self.ivr = None
        if self.dialer is not None:
            await self.dialer.close()
            self.dialer = None
        if self.webhooks is not None:  # after the runners: their last records go out too
            await self.webhooks.close()
            self.webhooks = None
        await self.ari.close()
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None

    @property
    def url(self) -> str:
        return f"http://{self.config.server.host}:{self.config.server.port}"

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ready(self, request: web.Request) -> web.Response:
        checks: dict[str, Any] = {"ari_events": self.ari.ready}
        try:
            checks["redis"] = bool(self.redis is not None and await self.redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            checks["redis"] = False
        ok = all(checks.values())
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        # The dialer's own Metrics (its registry) once it runs; the process default before.
        metrics = METRICS if self.dialer is None else self.dialer.metrics
        metrics.ari_stream_up.set(1 if self.ari.ready else 0)
        await metrics.refresh(self.dialer)
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})


async def serve_forever(config: Config) -> int:
    """Run the server until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Server(config) as server:
        loop.add_signal_handler(signal.SIGHUP, server.reload_flows)
        print(f"dialer: serving on {server.url} (ARI app '{config.ari.app}')", flush=True)
        await stop.wait()
    print("dialer: stopped", flush=True)
    return 0

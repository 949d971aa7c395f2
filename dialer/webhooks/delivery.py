"""Delivering signed webhooks: after each call attempt ends, its record is POSTed to every
configured receiver that subscribed to `attempt.ended` (`webhooks:` in the config).

Theory of operation. The campaign runtime calls `WebhookDispatcher.attempt_ended` once the
ended attempt is on record (`dialer.runner`). That call never blocks and never fails: it puts
one `Delivery` per receiver on a bounded in-memory queue (`max_pending`, counting deliveries
waiting for a retry too) and returns; when the queue is full the delivery is dropped, logged
and counted, so a slow or dead receiver can never hold up a call. A few worker tasks send the
deliveries; each try is signed afresh (`X-Dialer-Signature`, `dialer.webhooks.signature`: the
timestamp is that of the try, so a retry an hour later is not refused as a replay) and carries
`X-Dialer-Event` and `X-Dialer-Delivery` (one id per delivery, the same on every try: the
receiver's key to drop duplicates). A try ends with:

* 2xx: delivered;
* a timeout, a connection error, 408, 425, 429 or 5xx: retried after the project's backoff
  (`dialer.backoff`, exponential with jitter) until the receiver's `max_tries`, then failed;
* any other status (a 4xx, or a redirect, which is not followed): rejected, not retried (the
  receiver said the request itself is wrong: a bad signature, say).

Each end is logged and counted in `dialer_webhook_deliveries_total{result}` (delivered,
retried, failed, rejected, dropped). Deliveries live in memory only: those still queued when
the process stops are dropped (and counted); the attempt records stay in the store
(`GET /leads/{lid}/attempts`) for a receiver that needs to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import aiohttp
from prometheus_client import Counter

from dialer.backoff import Backoff
from dialer.config import WebhookConfig
from dialer.core.model import Attempt
from dialer.webhooks.signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

log = logging.getLogger(__name__)

ATTEMPT_ENDED: Final = "attempt.ended"
MAX_PENDING = 1000  # deliveries queued or waiting for a retry, over all receivers
WORKERS = 4  # tries in flight at once
RETRY_FIRST = 2.0  # seconds before the first retry (then doubling, with jitter)
RETRY_MAX = 300.0  # the longest wait between two tries
USER_AGENT = "asterisk-dialer-webhooks"


class Result(enum.StrEnum):
    """How a try (or a delivery) ended: the `result` label of the deliveries counter."""

    DELIVERED = "delivered"  # 2xx
    RETRIED = "retried"  # a try failed and another is scheduled
    FAILED = "failed"  # the last try failed: given up
    REJECTED = "rejected"  # the receiver refused it (4xx other than 408/425/429, 3xx)
    DROPPED = "dropped"  # queue full, or still pending when the dialer stopped


RETRY_STATUSES: Final = frozenset({408, 425, 429})


def verdict(status: int | None) -> Result:
    """What a try's HTTP status (None: no answer: timeout or connection error) means:
    DELIVERED, RETRIED (worth another try) or REJECTED."""
    if status is None or status in RETRY_STATUSES or status >= 500:
        return Result.RETRIED
    if 200 <= status < 300:
        return Result.DELIVERED
    return Result.REJECTED


def attempt_record(attempt: Attempt) -> dict[str, Any]:
    """The attempt as JSON, as `GET /leads/{lid}/attempts` shows it."""
    return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in asdict(attempt).items()}


def event_body(event: str, delivery_id: str, created_at: float, data: Mapping[str, Any]) -> bytes:
    """The bytes of a delivery: `{"id", "event", "created_at", "data"}` (compact JSON)."""
    return json.dumps({"id": delivery_id, "event": event, "created_at": created_at,
                       "data": dict(data)}, separators=(",", ":"), sort_keys=True).encode()


@dataclass(slots=True)
class Delivery:
    id: str
    hook: WebhookConfig
    event: str
    body: bytes
    backoff: Backoff
    tries: int = 0


@dataclass(slots=True)
class _Pending:
    """Deliveries not finished yet: queued, being tried, or waiting for a retry."""

    queue: asyncio.Queue[Delivery]
    retries: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    in_flight: int = 0

    def count(self) -> int:
        return self.queue.qsize() + len(self.retries) + self.in_flight


class WebhookDispatcher:
    """Signs and sends webhook deliveries in the background (see the module docstring)."""

    def __init__(self, hooks: tuple[WebhookConfig, ...], counter: Counter,
                 clock: Callable[[], float] = time.time, *, max_pending: int = MAX_PENDING,
                 workers: int = WORKERS, retry_first: float = RETRY_FIRST,
                 retry_max: float = RETRY_MAX, rng: random.Random | None = None) -> None:
        self.hooks = hooks
        self.counter = counter
        self.clock = clock
        self.max_pending = max_pending
        self.workers = workers
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.rng = rng or random.Random()
        for result in Result:  # every series exists from the start, at zero
            counter.labels(result=result.value)
        self._pending: _Pending | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ----------------------------------------------------------------------- the call path
    def attempt_ended(self, attempt: Attempt) -> None:
        """An attempt ended and is on record: queue its `attempt.ended` deliveries."""
        if self.hooks:
            self.publish(ATTEMPT_ENDED, {"attempt": attempt_record(attempt)})

    def publish(self, event: str, data: Mapping[str, Any]) -> int:
        """Queue one delivery of `event` per receiver subscribed to it; never blocks. Returns
        how many were queued (the others were dropped: queue full, or not started)."""
        queued = 0
        for hook in self.hooks:
            if event not in hook.events:
                continue
            delivery_id = str(uuid.uuid4())
            pending = self._pending
            if pending is None or pending.count() >= self.max_pending:
                self._count(Result.DROPPED)
                log.warning("webhook %s: %s delivery %s dropped (%s)", hook.name, event,
                            delivery_id, "not running" if pending is None
                            else f"{self.max_pending} deliveries pending")
                continue
            body = event_body(event, delivery_id, self.clock(), data)
            backoff = Backoff(initial=self.retry_first, maximum=self.retry_max, rng=self.rng)
            pending.queue.put_nowait(Delivery(delivery_id, hook, event, body, backoff))
            queued += 1
        return queued

    # -------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self._pending is not None or not self.hooks:
            return
        self._pending = _Pending(asyncio.Queue())
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        self._tasks = [asyncio.create_task(self._work(), name=f"webhooks-{i}")
                       for i in range(self.workers)]

    async def close(self, drain: float = 5.0) -> None:
        """Send what is queued for up to `drain` seconds, then drop the rest (counted)."""
        pending = self._pending
        if pending is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pending.queue.join(), drain)
        self._pending = None  # publish() drops from here on
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        dropped = pending.queue.qsize() + len(pending.retries)  # in flight: counted by _work
        for handle in pending.retries.values():
            handle.cancel()
        for _ in range(dropped):
            self._count(Result.DROPPED)
        if dropped:
            log.warning("webhooks: %d deliveries dropped at shutdown", dropped)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def pending(self) -> int:
        """Deliveries not finished yet (queued, in flight, waiting for a retry)."""
        return 0 if self._pending is None else self._pending.count()

    # ----------------------------------------------------------------------------- sending
    async def _work(self) -> None:
        pending = self._pending
        assert pending is not None
        while True:
            delivery = await pending.queue.get()
            pending.in_flight += 1
            try:
                await self._try(delivery, pending)
            except asyncio.CancelledError:  # stopped while sending: not delivered
                self._count(Result.DROPPED)
                raise
            except Exception:  # task boundary: one bad delivery must not stop the worker
                log.exception("webhook %s: delivery %s failed", delivery.hook.name, delivery.id)
                self._count(Result.FAILED)
            finally:
                pending.in_flight -= 1
                pending.queue.task_done()

    async def _try(self, delivery: Delivery, pending: _Pending) -> None:
        assert self._session is not None
        hook = delivery.hook
        delivery.tries += 1
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(hook.secret.value, int(self.clock()),
                                               delivery.body),
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.id,
        }
        status: int | None = None
        problem = ""
        try:
            async with self._session.post(hook.url, data=delivery.body, headers=headers,
                                          allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=hook.timeout)
                                          ) as response:
                status = response.status
                await response.read()
                problem = f"HTTP {status}"
        except TimeoutError:
            problem = f"no answer within {hook.timeout:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        result = verdict(status)
        if result is Result.RETRIED and delivery.tries >= hook.max_tries:
            result = Result.FAILED
        self._count(result)
        match result:
            case Result.DELIVERED:
                log.debug("webhook %s: %s delivery %s delivered (try %d)", hook.name,
                          delivery.event, delivery.id, delivery.tries)
            case Result.RETRIED:
                delay = delivery.backoff.next_delay()
                log.info("webhook %s: delivery %s try %d/%d failed (%s); next try in %.0f s",
                         hook.name, delivery.id, delivery.tries, hook.max_tries, problem, delay)
                loop = asyncio.get_running_loop()
                pending.retries[delivery.id] = loop.call_later(delay, self._requeue, delivery,
                                                               pending)
            case Result.FAILED:
                log.warning("webhook %s: delivery %s failed after %d tries (last: %s)",
                            hook.name, delivery.id, delivery.tries, problem)
            case Result.REJECTED:
                log.warning("webhook %s: delivery %s rejected by the receiver (%s): not "
                            "retried", hook.name, delivery.id, problem)
            case Result.DROPPED:
                raise AssertionError("a try is never dropped")

    def _requeue(self, delivery: Delivery, pending: _Pending) -> None:
        pending.retries.pop(delivery.id, None)
        pending.queue.put_nowait(delivery)

    def _count(self, result: Result) -> None:
        self.counter.labels(result=result.value).inc()

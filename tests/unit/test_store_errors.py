"""A Redis that cannot be reached surfaces from the store as StoreUnavailable (a DialerError), which
every caller handles: the campaign's writer logs the failed batch and keeps going, the API
answers 503 (500 when Redis is up but refuses a command). Before, redis-py's own ConnectionError
escaped and ended the writer task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from dialer import api
from dialer.ari import Ari
from dialer.config import AriConfig, Secret
from dialer.core.agent import Agent, AgentState
from dialer.core.campaign import SaveAgent
from dialer.core.model import Attempt, CampaignSpec, DialMode, SafeHarbor
from dialer.metrics import Metrics
from dialer.runner import CampaignRunner, _Writes
from dialer.store import RedisStore, StoreRefused, StoreUnavailable

NOON = 1_795_000_000.0


@pytest.fixture
async def dead_store() -> AsyncIterator[RedisStore]:
    """A store on a loopback port nothing listens on: every connection is refused."""
    client = aioredis.from_url("redis://127.0.0.1:1/0", decode_responses=True,
                               socket_connect_timeout=1, socket_timeout=1)
    yield RedisStore(client, "test-dead:")
    await client.aclose()


SPEC = CampaignSpec(id="camp", name="Camp", dial_mode=DialMode.PROGRESSIVE,
                    trunk="PJSIP/{number}@carrier", caller_id="Acme <+15550100>",
                    safe_harbor=SafeHarbor("Acme", "+15550100"))


@pytest.mark.parametrize("call", [
    lambda s: s.get_campaign("camp"),
    lambda s: s.save_campaign(SPEC),
    lambda s: s.running_campaigns(),
    lambda s: s.abandon_stats("camp", 0.0),
    lambda s: s.dialable_count("camp", NOON),
    lambda s: s.claim_leads("camp", NOON, ["a1", "a2"]),
    lambda s: s.save_batch([Attempt(id="a1", campaign_id="camp", lead_id="L1",
                                    phone="+15550000001", originated_at=NOON)], {}, []),
    lambda s: s.save_pacer_state("camp", "{}"),
    lambda s: s.load_pacer_state("camp"),
    lambda s: s.ping(),
])
async def test_every_store_call_on_an_unreachable_redis_raises_store_unavailable(
        dead_store: RedisStore, call: object) -> None:
    assert callable(call)
    with pytest.raises(StoreUnavailable, match="Redis does not answer"):
        await call(dead_store)


async def test_the_campaign_writer_survives_an_unreachable_redis(
        dead_store: RedisStore, caplog: pytest.LogCaptureFixture) -> None:
    ari = Ari(AriConfig("http://127.0.0.1:1", "dialer", Secret("secret"), "unit"))
    runner = CampaignRunner(SPEC, ari, dead_store, lambda: NOON, Metrics())
    runner.write_linger = 0
    writer = asyncio.create_task(runner._write_out())
    try:
        for agent_id in ("a1", "a2"):
            writes = _Writes()
            runner._record(SaveAgent(Agent(agent_id, AgentState.READY, NOON)), writes)
            with caplog.at_level(logging.WARNING, logger="dialer.runner"):
                runner._outbox.put_nowait((writes, []))
                await asyncio.wait_for(runner.settle(), 30)
        assert not writer.done()  # still taking batches after two failed writes
        assert caplog.text.count("saving 0 attempts, 0 leads, 1 agents failed") == 2
    finally:
        writer.cancel()


async def test_the_api_answers_503_when_the_store_is_unreachable() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise StoreUnavailable("Redis does not answer: connection refused")

    resp = await api.errors_middleware(make_mocked_request("GET", "/campaigns"), handler)
    assert isinstance(resp, web.Response)
    assert resp.status == 503
    assert resp.text is not None
    assert "store_unavailable" in resp.text


async def test_a_command_redis_refuses_is_a_store_refusal_answered_500() -> None:
    from redis.exceptions import ResponseError

    from dialer.store.redis_store import _store_errors

    async def refused() -> None:
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'")

    with pytest.raises(StoreRefused, match="Redis refused a command: OOM"):
        await _store_errors(refused)()

    async def handler(request: web.Request) -> web.StreamResponse:
        await _store_errors(refused)()
        return web.Response()

    resp = await api.errors_middleware(make_mocked_request("POST", "/campaigns"), handler)
    assert isinstance(resp, web.Response)
    assert resp.status == 500
    assert resp.text is not None
    assert "store_error" in resp.text

"""An IVR queue node reaching an agent's sipp phone: the whole server on the real testbed.

A caller dials in (asterisk_conf/testbed/extensions.conf, context ivrcaller) and presses 2 in
tests/integration/ivr_flows/ivrtest.yaml, whose queue node asks for the `support` skill. The
agent is logged in to a running campaign through the HTTP API (nailed-up sipp phone, skills
from agents.yaml or given at login): blended work, the campaign's engine reserves them and
the caller joins the agent's bridge.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from dialer.auth import bearer_header
from dialer.config import Config, RedisConfig, ServerConfig
from dialer.core.agent import AgentState
from dialer.ivr.runtime import IvrCallRecord
from dialer.runner import agent_bridge
from dialer.server import Server
from dialer.testbed import Testbed
from tests.integration.conftest import TEST_APP, new_id
from tests.integration.test_ivr import until

FLOWS = Path(__file__).parent / "ivr_flows"
DB_URL = "redis://127.0.0.1:16379/15"  # a database of its own, flushed per test
PORT = 18089
DEADLINE = 60.0
CID = "blended"
AGENT = "agent-1009"  # support 3 in agents.yaml
OTHER = "agent-1010"


@pytest.fixture
async def server(testbed: Testbed, config: Config, tmp_path: Path) -> AsyncIterator[Server]:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", PORT),
                  ari=replace(config.ari, app=TEST_APP),
                  ivr=replace(config.ivr, flows_dir=flows, watch=False))
    async with Server(cfg) as srv:
        try:
            yield srv
        finally:
            for channel in await srv.ari.rest.list_channels():
                if channel.id.startswith("test-") or (
                        srv.dialer is not None
                        and any(r.owns(channel.id) for r in srv.dialer.runners.values())):
                    await srv.ari.rest.hangup(channel.id)


async def api(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        body = await resp.json()
        assert resp.status < 300, f"{method} {url}: {resp.status} {body}"
        return body


async def login(server: Server, session: aiohttp.ClientSession, agent: str,
                **profile: Any) -> None:
    base = server.url
    await api(session, "POST", f"{base}/agents/{agent}/login",
              json={"campaign": CID, **profile})
    assert server.dialer is not None
    runner = server.dialer.runners[CID]
    await until(lambda: agent in runner.engine.agents
                and runner.engine.agents[agent].state is AgentState.READY,
                f"{agent}'s phone to answer and the agent to be ready")


async def call_in(server: Server, script: str, caller: str = "+15551230000") -> str:
    channel = new_id("ivrq")
    await server.ari.rest.request(
        "POST", "/channels",
        {"endpoint": f"Local/{script}@ivrcaller", "extension": "200", "context": "ivr-inbound",
         "priority": 1, "channelId": channel, "otherChannelId": f"{channel}-caller",
         "callerId": caller, "formats": "ulaw", "timeout": 10},
        {"variables": {"IVR_APP": TEST_APP}})
    return channel


def record_of(server: Server, channel: str) -> IvrCallRecord | None:
    assert server.ivr is not None
    return next((r for r in server.ivr.records if r.call_id == channel), None)


@pytest.fixture
async def session(server: Server) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=bearer_header(server.config.api)) as s:
        await api(s, "POST", f"{server.url}/campaigns", json={
            "id": CID, "name": "Blended", "dial_mode": "progressive",
            "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
            "safe_harbor": {"seller": "Acme", "callback_number": "+15550100"},
            "window": {"start": "00:00", "end": "23:59"}, "ring_timeout": 15, "wrapup": 1})
        await api(s, "POST", f"{server.url}/campaigns/{CID}/start")
        try:
            yield s
        finally:
            assert server.dialer is not None
            for agent in list(server.dialer.runners[CID].engine.agents):
                async with s.post(f"{server.url}/agents/{agent}/logout"):
                    pass


async def test_queue_node_connects_the_caller_to_a_skilled_agents_phone(
        server: Server, session: aiohttp.ClientSession) -> None:
    await login(server, session, AGENT)
    assert server.dialer is not None
    runner = server.dialer.runners[CID]
    channel = await call_in(server, "agent")
    await until(lambda: record_of(server, channel) is not None, "the flow to hand the caller over")
    record = record_of(server, channel)
    assert record is not None
    assert record.path == ("main", "to_agent")
    assert record.outcome == "agent"
    assert record.agent == AGENT
    bridge = await server.ari.rest.get_bridge(agent_bridge(server.ari.app, AGENT))
    assert channel in bridge.channels
    assert runner.engine.agents[AGENT].state is AgentState.ON_CALL
    # The caller hangs up: the agent wraps up, then is ready again (wrapup 1 s).
    await server.ari.rest.hangup(channel)
    await until(lambda: runner.engine.agents[AGENT].state is AgentState.READY,
                "the agent to be ready again after wrap-up")


async def test_queue_node_skips_agents_without_the_skill(
        server: Server, session: aiohttp.ClientSession) -> None:
    # OTHER logs in with only the billing skill (given at login, over agents.yaml): the
    # support queue finds nobody and the flow takes on_no_agents.
    await login(server, session, OTHER, skills={"billing": 4})
    channel = await call_in(server, "agent")
    await until(lambda: record_of(server, channel) is not None, "the flow to end")
    record = record_of(server, channel)
    assert record is not None
    assert record.path == ("main", "to_agent", "no_agent_end")
    assert record.disposition == "no_agent"
    assert record.agent is None


async def test_login_with_an_unknown_skill_is_refused_and_logs_nobody_in(
        server: Server, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{server.url}/agents/{OTHER}/login",
                            json={"campaign": CID, "skills": {"biling": 4}}) as resp:
        body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "bad_profile"
    assert "unknown skill 'biling'" in body["error"]["message"]
    assert server.dialer is not None
    assert OTHER not in server.dialer.runners[CID].engine.agents


async def test_billing_caller_reaches_the_billing_agent_before_others(
        server: Server, session: aiohttp.ClientSession) -> None:
    await login(server, session, "agent-1011", skills={"support": 3})
    await login(server, session, "agent-1012", skills={"billing": 5})
    channel = await call_in(server, "billing")
    await until(lambda: record_of(server, channel) is not None, "the flow to hand the caller over")
    record = record_of(server, channel)
    assert record is not None
    assert record.path == ("main", "to_billing")
    assert record.agent == "agent-1012"


async def test_after_the_relax_time_a_billing_caller_reaches_any_agent(
        server: Server, session: aiohttp.ClientSession) -> None:
    await login(server, session, "agent-1011", skills={"support": 3})
    assert server.ivr is not None
    ivr = server.ivr
    channel = await call_in(server, "billing")

    def queued_now() -> bool:
        node = ivr.sessions[channel].run.node if channel in ivr.sessions else None
        return node is not None and node.id == "to_billing"

    await until(queued_now, "the caller to queue")
    queued = time.monotonic()
    await until(lambda: record_of(server, channel) is not None, "the flow to hand the caller over")
    record = record_of(server, channel)
    assert record is not None
    assert record.agent == "agent-1011"
    assert time.monotonic() - queued >= 3.5  # relax_after 4 s, counted from the enqueue


async def test_a_callback_keeps_the_callers_place_and_reaches_the_agent_first(
        server: Server, session: aiohttp.ClientSession) -> None:
    # The only support agent is paused: the caller waits, asks to be called back (keeping
    # their place), and hangs up. When the agent is ready, they are reserved first, then the
    # customer (+1 212 555 0xxx answers on the testbed) is dialled into their bridge.
    await login(server, session, "agent-1013", skills={"support": 3})
    await api(session, "POST", f"{server.url}/agents/agent-1013/pause", json={"reason": "lunch"})
    assert server.dialer is not None
    runner = server.dialer.runners[CID]
    await until(lambda: runner.engine.agents["agent-1013"].state is AgentState.PAUSED,
                "the agent to pause")
    channel = await call_in(server, "callback", caller="+12125550777")
    await until(lambda: record_of(server, channel) is not None, "the caller to hang up")
    record = record_of(server, channel)
    assert record is not None
    assert record.path == ("main", "support_or_callback", "call_me_back", "callback_scheduled")
    assert server.desk is not None
    desk = server.desk
    (callback,) = desk.callbacks.values()
    assert callback.entry.enqueued_at < record.ended_at - 1  # the place from the queue
    await api(session, "POST", f"{server.url}/agents/agent-1013/ready")
    bridge_id = agent_bridge(server.ari.app, "agent-1013")

    async def in_bridge() -> bool:
        bridge = await server.ari.rest.get_bridge(bridge_id)
        return any(c.startswith(f"cb-{channel}") for c in bridge.channels)

    deadline = time.monotonic() + DEADLINE
    while not await in_bridge():
        assert time.monotonic() < deadline, "the called-back customer never reached the agent"
        await asyncio.sleep(0.1)
    await until(lambda: runner.engine.agents["agent-1013"].state is AgentState.ON_CALL,
                "the agent to be on the callback")
    assert not desk.callbacks

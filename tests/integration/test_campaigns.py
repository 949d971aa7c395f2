"""Predictive outbound campaigns end to end on the real testbed: the server in-process, the
HTTP API, Asterisk dialing Local customers (simcust-pstn: the number picks the behaviour) and
sipp playing the agents' phones. Every wait has a generous deadline; nothing sleeps blindly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from dialer.ari import AriItem, ChannelEnteredBridge, PlaybackStarted
from dialer.auth import bearer_header
from dialer.config import Config, RedisConfig, ServerConfig
from dialer.runner import agent_bridge
from dialer.server import Server
from dialer.testbed import Testbed
from tests.integration.conftest import eventually

pytestmark = pytest.mark.testbed

DEADLINE = 45.0
DB_URL = "redis://127.0.0.1:16379/7"  # a database of its own, flushed per test



class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, expect: int | None = None,
                   **kw: Any) -> Any:
        async with self.session.request(method, self.base + path, **kw) as resp:
            body = await resp.json()
            if expect is not None:
                assert resp.status == expect, (resp.status, body)
            return body

    async def lead(self, lead_id: str) -> Any:
        return await self.call("GET", f"/leads/{lead_id}", 200)

    async def attempts(self, lead_id: str) -> list[dict[str, Any]]:
        return list((await self.call("GET", f"/leads/{lead_id}/attempts", 200))["attempts"])

    async def ended_attempt(self, lead_id: str, count: int = 1) -> dict[str, Any]:
        async def done() -> Any:
            attempts = await self.attempts(lead_id)
            ended = [a for a in attempts if a["ended_at"] is not None]
            return ended[count - 1] if len(ended) >= count else None
        return dict(await eventually(done, f"attempt {count} of {lead_id} to end"))

    async def agent_state(self, agent: str, state: str) -> None:
        async def check() -> bool:
            async with self.session.get(f"{self.base}/agents/{agent}") as resp:
                return resp.status == 200 and (await resp.json()).get("state") == state
        await eventually(check, f"agent {agent} {state}")


@pytest.fixture
async def server(testbed: Testbed, config: Config) -> AsyncIterator[Server]:
    import redis.asyncio as aioredis
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", 18091),
                  ari=replace(config.ari, app="dialer-it"))
    async with Server(cfg) as srv:
        yield srv
        for channel in await srv.ari.rest.list_channels():
            await srv.ari.rest.hangup(channel.id)
        for bridge in await srv.ari.rest.list_bridges():
            if bridge.id.startswith(agent_bridge(srv.ari.app, "")):
                await srv.ari.rest.destroy_bridge(bridge.id)


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(headers=bearer_header(server.config.api)) as session:
        yield Client(session, server.url)


def campaign(cid: str = "it", **kw: Any) -> dict[str, Any]:
    return {
        "id": cid, "name": "Integration", "dial_mode": "progressive",
        "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
        "safe_harbor": {"seller": "Acme", "callback_number": "+15550100", "optout_key": "9"},
        "window": {"start": "00:00", "end": "23:59"}, "wrapup": 1, "ring_timeout": 15,
        "retry": {"busy": 600, "no_answer": 900, "max_attempts": 3}, **kw,
    }


async def setup(api: Client, numbers: list[str], agents: list[str], **kw: Any) -> None:
    await api.call("POST", "/campaigns", 201, json=campaign(**kw))
    if numbers:
        csv = "phone,first_name\n" + "".join(f"{n},Pat{i}\n" for i, n in enumerate(numbers))
        report = await api.call("POST", "/campaigns/it/leads", 200, data=csv,
                                headers={"Content-Type": "text/csv"})
        assert report["added"] == len(numbers), report
    await api.call("POST", "/campaigns/it/start", 200)
    for agent in agents:
        await api.call("POST", f"/agents/{agent}/login", 202, json={"campaign": "it"})
        await api.agent_state(agent, "READY")


async def test_answered_call_reaches_the_agent_and_takes_the_disposition(api: Client) -> None:
    await setup(api, ["+12125550001"], ["agent-1001"])
    attempt = await api.ended_attempt("it:+12125550001")
    assert attempt["result"] == "talked"
    assert attempt["agent_id"] == "agent-1001"
    assert attempt["connected_at"] - attempt["answered_at"] < 2.0
    await api.call("POST", "/agents/agent-1001/disposition", 202, json={"disposition": "sale"})

    async def disposed() -> bool:
        return bool((await api.attempts("it:+12125550001"))[0]["disposition"] == "sale")
    await eventually(disposed, "disposition recorded")
    assert (await api.lead("it:+12125550001"))["state"] == "done"
    await api.agent_state("agent-1001", "READY")


async def test_busy_no_answer_reject_and_unallocated_end_with_their_outcomes(api: Client) -> None:
    numbers = {"+12125551001": ("busy", 17, "ready"), "+12125552001": ("no_answer", None, "ready"),
               "+12125553001": ("rejected", 21, "done"),  # a declined call is not retried
               "+12125554001": ("unallocated", 1, "done")}
    await setup(api, list(numbers), ["agent-1001", "agent-1002", "agent-1003", "agent-1004"])
    for number, (result, cause, lead_state) in numbers.items():
        attempt = await api.ended_attempt(f"it:{number}")
        assert attempt["result"] == result, attempt
        if cause is not None:
            assert attempt["cause"] == cause, attempt
        lead = await api.lead(f"it:{number}")
        assert lead["state"] == lead_state, lead
        assert lead["attempts"] == 1
    busy = await api.lead("it:+12125551001")
    assert busy["next_at"] - (await api.ended_attempt("it:+12125551001"))["ended_at"] == \
        pytest.approx(600, abs=1)


async def test_with_no_agent_free_the_caller_hears_safe_harbor_and_can_opt_out(
    api: Client, server: Server
) -> None:
    # Power mode at ratio 2 dials both leads for the one ready agent. The first answers at
    # once and takes the agent; the second answers a second later, waits past the 2-second
    # limit, hears the safe-harbor message and presses 9 to opt out.
    await setup(api, ["+12125558001", "+12125557001"], ["agent-1001"], dial_mode="power",
                power_ratio=2.0)
    first = await eventually(lambda: _connected(api, "it:+12125558001"), "first call connected")
    assert first["agent_id"] == "agent-1001"
    attempt = await api.ended_attempt("it:+12125557001")
    assert attempt["result"] == "abandoned", attempt
    assert attempt["agent_id"] is None
    lead = await api.lead("it:+12125557001")
    assert lead["state"] == "dnc"
    dnc = await api.call("GET", "/dnc/+12125557001?campaign=it", 200)
    assert dnc["dnc"] is True
    stats = await api.call("GET", "/campaigns/it", 200)
    assert stats["live"]["abandoned"] == 1


async def _connected(api: Client, lead_id: str) -> dict[str, Any] | None:
    attempts = await api.attempts(lead_id)
    return attempts[0] if attempts and attempts[0]["connected_at"] else None


async def test_zero_ready_agents_means_zero_originates(api: Client, server: Server) -> None:
    for mode in ("progressive", "predictive"):
        cid = f"zero-{mode}"
        body = campaign(cid, dial_mode=mode)
        await api.call("POST", "/campaigns", 201, json=body)
        await api.call("POST", f"/campaigns/{cid}/leads", 200, data="phone\n+12125550002\n",
                       headers={"Content-Type": "text/csv"})
        await api.call("POST", f"/campaigns/{cid}/start", 200)
    # Let the pacer tick many times, then check nothing was dialed.
    runner = server.dialer.runners["zero-predictive"] if server.dialer else None
    assert runner is not None
    start = runner.rounds

    async def ticked() -> bool:
        return runner.rounds - start >= 20 and runner.engine.leads_available > 0
    await eventually(ticked, "20 pacing rounds with dialable leads")
    channels = await server.ari.rest.list_channels()
    assert channels == []
    for mode in ("progressive", "predictive"):
        lead = await api.lead(f"zero-{mode}:+12125550002")
        assert lead["attempts"] == 0
        assert lead["state"] == "ready"


async def test_amd_leaves_a_message_on_a_machine_and_connects_a_human(api: Client) -> None:
    await setup(api, ["+12125555001", "+12125556001"], ["agent-1001", "agent-1002"],
                amd="message")
    machine = await api.ended_attempt("it:+12125555001")
    assert machine["result"] == "machine", machine
    assert machine["amd_status"] == "MACHINE"
    assert machine["agent_id"] is None
    human = await eventually(lambda: _connected(api, "it:+12125556001"), "human connected")
    assert human["amd_status"] == "HUMAN", human
    # The 2-second rule counts from the end of the greeting (AMD), not from the answer.
    assert human["connected_at"] - human["amd_done_at"] < 2.0
    assert human["amd_done_at"] > human["answered_at"]


async def test_recording_on_a_campaign_records_the_call_under_its_id(
    api: Client, testbed: Testbed
) -> None:
    await setup(api, ["+12125550003"], ["agent-1001"], recording=True)
    attempt = await api.ended_attempt("it:+12125550003")
    assert attempt["result"] == "talked"
    assert attempt["recording"] == f"{attempt['id']}.wav"
    spool = testbed.root / "var/spool/asterisk/recording" / attempt["recording"]

    async def written() -> bool:
        return bool(spool.exists() and spool.stat().st_size > 44)  # more than a WAV header
    await eventually(written, f"recording {spool}")


async def test_an_agent_keys_the_disposition_on_the_phone(api: Client) -> None:
    # agent-dtmf's sipp phone keys "1" (sale) 20 s after answering, during the call or wrap-up.
    await setup(api, ["+12125550004"], ["agent-dtmf"], wrapup=60)
    attempt = await api.ended_attempt("it:+12125550004")
    assert attempt["agent_id"] == "agent-dtmf"

    async def disposed() -> bool:
        return bool((await api.attempts("it:+12125550004"))[0]["disposition"] == "sale")
    await eventually(disposed, "the phone's disposition code", 60)


async def test_when_the_agent_hangs_up_the_phone_the_session_ends_cleanly(
    api: Client, server: Server
) -> None:
    await setup(api, [], ["agent-1005"])
    runner = server.dialer.runners["it"] if server.dialer else None
    assert runner is not None
    channel = runner.agent_channels["agent-1005"]
    await server.ari.rest.hangup(channel)  # as if the agent hung up their phone
    await api.agent_state("agent-1005", "LOGGED_OUT")
    bridges = {b.id for b in await server.ari.rest.list_bridges()}
    assert agent_bridge(server.ari.app, "agent-1005") not in bridges
    assert "agent-1005" not in runner.engine.agents


class Seen:
    """Every ARI item the server's connection dispatched, for checks after the fact."""

    def __init__(self, server: Server) -> None:
        self.items: list[AriItem] = []
        self.stop = server.ari.listen(self.items.append)

    def entered(self, bridge: str, channel: str) -> bool:
        return any(isinstance(i, ChannelEnteredBridge) and i.bridge.id == bridge
                   and i.channel.id == channel for i in self.items)

    def playback_started(self, playback: str) -> PlaybackStarted | None:
        return next((i for i in self.items if isinstance(i, PlaybackStarted)
                     and i.playback.id == playback), None)


async def test_preview_shows_the_lead_dials_on_request_and_bridges_to_that_agent(
    api: Client, server: Server
) -> None:
    seen = Seen(server)
    await api.call("POST", "/campaigns", 201, json=campaign(dial_mode="preview"))
    await api.call("POST", "/campaigns/it/leads", 200, data="phone\n+12125550005\n",
                   headers={"Content-Type": "text/csv"})
    await api.call("POST", "/campaigns/it/start", 200)
    await api.call("POST", "/agents/agent-1001/login", 202, json={"campaign": "it"})

    async def previewed() -> Any:
        async with api.session.get(f"{api.base}/agents/agent-1001/preview") as resp:
            return await resp.json() if resp.status == 200 else None
    preview = await eventually(previewed, "a lead reserved for agent-1001")
    assert preview["lead"]["id"] == "it:+12125550005"
    assert preview["lead"]["phone"] == "+12125550005"
    call = preview["call"]
    # Nothing is dialed until the agent asks, however long they look at the lead.
    runner = server.dialer.runners["it"] if server.dialer else None
    assert runner is not None
    start = runner.rounds

    async def ticked() -> bool:
        return runner.rounds - start >= 8
    await eventually(ticked, "8 pacing rounds")
    assert await api.attempts("it:+12125550005") == []
    assert call not in {c.id for c in await server.ari.rest.list_channels()}

    await api.call("POST", "/agents/agent-1001/preview/dial", 202)
    attempt = await api.ended_attempt("it:+12125550005")
    assert attempt["id"] == call
    assert attempt["result"] == "talked", attempt
    assert attempt["agent_id"] == "agent-1001"
    # The agent's phone heard it ring, and the customer joined that agent's own bridge.
    ringback = seen.playback_started(f"rb-{call}")
    assert ringback is not None
    assert ringback.playback.media_uri.startswith("tone:ring")
    assert ringback.playback.target_uri == f"channel:{runner.agent_channels['agent-1001']}"
    assert seen.entered(agent_bridge(server.ari.app, "agent-1001"), call)
    await api.call("POST", "/agents/agent-1001/disposition", 202, json={"disposition": "sale"})

    async def disposed() -> bool:
        return bool((await api.attempts("it:+12125550005"))[0]["disposition"] == "sale")
    await eventually(disposed, "disposition recorded")
    stats = await api.call("GET", "/campaigns/it", 200)
    assert stats["live"]["abandoned"] == 0
    seen.stop()


async def test_preview_skip_gives_the_lead_back_and_bad_requests_change_nothing(
    api: Client, server: Server
) -> None:
    await api.call("POST", "/campaigns", 201, json=campaign(dial_mode="preview"))
    await api.call("POST", "/campaigns/it/leads", 200, data="phone\n+12125550007\n",
                   headers={"Content-Type": "text/csv"})
    await api.call("POST", "/campaigns/it/start", 200)
    refused = await api.call("GET", "/agents/agent-1003/preview", 409)
    assert refused["error"]["code"] == "agent_not_logged_in"
    await api.call("POST", "/agents/agent-1003/login", 202, json={"campaign": "it"})

    async def previewed() -> Any:
        async with api.session.get(f"{api.base}/agents/agent-1003/preview") as resp:
            return await resp.json() if resp.status == 200 else None
    await eventually(previewed, "a lead reserved for agent-1003")
    await api.call("POST", "/agents/agent-1003/preview/skip", 202)

    async def skipped() -> Any:
        lead = await api.lead("it:+12125550007")
        return lead if lead["state"] == "ready" else None
    lead = await eventually(skipped, "the skipped lead back in the queue")
    assert lead["attempts"] == 0
    assert lead["next_at"] > server.clock() + 3000  # offered again later, not straight back
    missing = await api.call("POST", "/agents/agent-1003/preview/dial", 404)
    assert missing["error"]["code"] == "no_preview"
    assert await api.attempts("it:+12125550007") == []


async def test_ring_per_call_rings_the_agent_for_the_answered_customer_then_hangs_up_their_leg(
    api: Client, server: Server
) -> None:
    seen = Seen(server)
    await api.call("POST", "/campaigns", 201, json=campaign(ring_agents=True))
    await api.call("POST", "/campaigns/it/start", 200)
    await api.call("POST", "/agents/agent-1002/login", 202, json={"campaign": "it"})
    await api.agent_state("agent-1002", "READY")
    runner = server.dialer.runners["it"] if server.dialer else None
    assert runner is not None
    # Ready without a nailed-up call: no phone channel until a customer answers.
    assert not [c for c in await server.ari.rest.list_channels()
                if c.id.startswith("agent-agent-1002-")]
    await api.call("POST", "/campaigns/it/leads", 200, data="phone\n+12125550006\n",
                   headers={"Content-Type": "text/csv"})
    attempt = await api.ended_attempt("it:+12125550006")
    assert attempt["result"] == "talked", attempt
    assert attempt["agent_id"] == "agent-1002"
    assert attempt["connected_at"] - attempt["amd_done_at"] < 2.0  # the agent answered in time
    phones = {i.channel.id for i in seen.items if isinstance(i, ChannelEnteredBridge)
              and i.bridge.id == agent_bridge(server.ari.app, "agent-1002")
              and i.channel.id.startswith("agent-agent-1002-")}
    assert len(phones) == 1
    assert seen.entered(agent_bridge(server.ari.app, "agent-1002"), attempt["id"])

    async def leg_gone() -> bool:
        live = {c.id for c in await server.ari.rest.list_channels()}
        return not (phones & live)
    await eventually(leg_gone, "the agent's leg hung up with the call")
    await api.agent_state("agent-1002", "READY")  # after the 1 s wrap-up, still logged in
    assert "agent-1002" in runner.engine.agents
    seen.stop()


async def test_safe_harbor_can_be_an_ivr_flow_whose_opt_out_reaches_dnc(
    api: Client, server: Server
) -> None:
    # As above, but the abandoned caller hears ivr_flows/safe_harbor.yaml (text-to-speech),
    # whose opt-out key they press.
    await setup(api, ["+12125558002", "+12125557002"], ["agent-1001"], dial_mode="power",
                power_ratio=2.0, safe_harbor={"seller": "Acme", "callback_number": "+15550100",
                                              "optout_key": "9", "flow": "safe_harbor"})
    attempt = await api.ended_attempt("it:+12125557002")
    assert attempt["result"] == "abandoned", attempt
    assert (await api.lead("it:+12125557002"))["state"] == "dnc"
    assert (await api.call("GET", "/dnc/+12125557002?campaign=it", 200))["dnc"] is True
    assert server.ivr is not None
    record = next(r for r in server.ivr.records if r.call_id == attempt["id"])
    assert record.flow == "safe_harbor"
    assert record.path == ("message", "opted_out")


async def test_agentless_campaign_runs_its_outbound_flow_on_answer(
    api: Client, server: Server
) -> None:
    # ivr_flows/phonebank_outbound.yaml: the person (who presses 9 after 3.5 s) opts out.
    await setup(api, ["+12125557003"], [], dial_mode="agentless", flow="phonebank_outbound")
    attempt = await api.ended_attempt("it:+12125557003")
    assert attempt["result"] == "agentless", attempt
    assert (await api.call("GET", "/dnc/+12125557003?campaign=it", 200))["dnc"] is True
    assert server.ivr is not None
    record = next(r for r in server.ivr.records if r.call_id == attempt["id"])
    assert record.flow == "phonebank_outbound"
    assert record.path == ("script", "opt_out")
    assert record.disposition == "dnc"

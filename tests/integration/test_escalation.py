"""Escalation and supervision end to end on the real testbed: the server in-process (its own
Redis database, port and ARI app), Asterisk dialing a customer who holds the line
(simcust-pstn +1212555 8xxx) and sipp answering the agents' phones: agent-1007 takes the call,
agent-1006 (supervisor skill in agents.yaml) is the supervisor. What is asserted is Asterisk's
own view: bridge membership from GET /bridges and the snoop channels from GET /channels.
Every wait has a generous deadline; only what this test created is hung up or destroyed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from dialer.ari import AriItem, Channel, ChannelDestroyed, ChannelDtmfReceived, StasisEnd
from dialer.auth import bearer_header
from dialer.config import Config, RedisConfig, ServerConfig
from dialer.errors import AriConflict
from dialer.escalation_runtime import hold_bridge
from dialer.runner import CampaignRunner, agent_bridge
from dialer.server import Server
from dialer.testbed import Testbed
from tests.integration.conftest import eventually

pytestmark = pytest.mark.testbed

DEADLINE = 45.0
DB_URL = "redis://127.0.0.1:16379/14"  # this test's own database, flushed per test
APP = f"dialer-esc-{os.getpid()}"
PORT = 18093
AGENT, SUPERVISOR, OTHER = "agent-1007", "agent-1006", "agent-1008"
CAMPAIGN = "esc"



class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        async with self.session.request(method, self.base + path, **kw) as resp:
            body = await resp.json()
            if expect is not None:
                assert resp.status == expect, (resp.status, body)
            return body

    async def state(self, agent: str) -> str | None:
        async with self.session.get(f"{self.base}/agents/{agent}") as resp:
            return (await resp.json()).get("state") if resp.status == 200 else None

    async def agent_state(self, agent: str, state: str) -> None:
        async def check() -> bool:
            return await self.state(agent) == state
        await eventually(check, f"agent {agent} {state}")

    async def attempts(self, lead_id: str) -> list[dict[str, Any]]:
        return list((await self.call("GET", f"/leads/{lead_id}/attempts", 200))["attempts"])


@pytest.fixture
async def server(testbed: Testbed, config: Config) -> AsyncIterator[Server]:
    import redis.asyncio as aioredis
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", PORT),
                  ari=replace(config.ari, app=APP))
    async with Server(cfg) as srv:
        try:
            yield srv
        finally:
            await cleanup(srv)


async def cleanup(srv: Server) -> None:
    """Hang up the channels this server made (customers, our agents' phones, snoops) and
    destroy its bridges (named by its ARI app); nobody else's."""
    mine: set[str] = set()
    for runner in (srv.dialer.runners.values() if srv.dialer else ()):
        mine |= set(runner.outcomes) | set(runner.agent_channels.values()) \
            | set(runner.escalation.snoops.values())
    for channel in await srv.ari.rest.list_channels():
        if channel.id in mine or channel.id.startswith(f"c-{CAMPAIGN}-") \
                or channel.id.startswith(("snoop-agent-1006-", "snoop-agent-1008-")) \
                or any(channel.id.startswith(f"agent-{a}-") for a in (AGENT, SUPERVISOR, OTHER)):
            await srv.ari.rest.hangup(channel.id)
    for bridge in await srv.ari.rest.list_bridges():
        if bridge.id.startswith((agent_bridge(APP, ""), hold_bridge(APP, ""))):
            # The runner may be destroying it too (a hung-up phone logs its agent out): 409.
            with contextlib.suppress(AriConflict):
                await srv.ari.rest.destroy_bridge(bridge.id)


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(headers=bearer_header(server.config.api)) as session:
        yield Client(session, server.url)


def runner_of(server: Server) -> CampaignRunner:
    assert server.dialer is not None
    return server.dialer.runners[CAMPAIGN]


async def members(server: Server) -> dict[str, set[str]]:
    """Asterisk's bridges of this server, by id, with the channels in each; a call's holding
    bridges (`hold-<app>-<call>-<random>`) under `hold_bridge(app, call)`."""
    found: dict[str, set[str]] = {}
    for bridge in await server.ari.rest.list_bridges():
        if bridge.id.startswith(agent_bridge(APP, "")):
            found[bridge.id] = set(bridge.channels)
        elif bridge.id.startswith(hold_bridge(APP, "")):
            found.setdefault(bridge.id.rsplit("-", 1)[0], set()).update(bridge.channels)
    return found


async def bridged(server: Server, expected: dict[str, set[str]], what: str) -> None:
    """Wait until each named bridge holds exactly the channels expected (an empty set: the
    bridge is empty or gone)."""
    async def check() -> bool:
        now = await members(server)
        return all(now.get(b, set()) == chans for b, chans in expected.items())
    try:
        await eventually(check, what)
    except AssertionError:
        raise AssertionError(f"{what}: bridges are {await members(server)}, expected "
                             f"{expected}") from None


async def a_call(api: Client, server: Server, number: str) -> tuple[str, str, str]:
    """AGENT talks to a holding customer, SUPERVISOR is READY: (call id, agent's phone,
    supervisor's phone)."""
    await api.call("POST", "/campaigns", 201, json={
        "id": CAMPAIGN, "name": "Escalation", "dial_mode": "progressive",
        "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
        "safe_harbor": {"seller": "Acme", "callback_number": "+15550100", "optout_key": "9"},
        "window": {"start": "00:00", "end": "23:59"}, "wrapup": 120, "ring_timeout": 15})
    await api.call("POST", f"/campaigns/{CAMPAIGN}/start", 200)
    await api.call("POST", f"/agents/{AGENT}/login", 202, json={"campaign": CAMPAIGN})
    await api.agent_state(AGENT, "READY")
    await api.call("POST", f"/campaigns/{CAMPAIGN}/leads", 200, data=f"phone\n{number}\n",
                   headers={"Content-Type": "text/csv"})
    await api.agent_state(AGENT, "ON_CALL")
    # Only now the supervisor: the campaign's one lead is taken, no call is offered to them.
    await api.call("POST", f"/agents/{SUPERVISOR}/login", 202, json={"campaign": CAMPAIGN})
    await api.agent_state(SUPERVISOR, "READY")
    runner = runner_of(server)
    call = runner.engine.agents[AGENT].call_id
    assert call is not None
    agent_phone = runner.agent_channels[AGENT]
    supervisor_phone = runner.agent_channels[SUPERVISOR]
    await bridged(server, {agent_bridge(APP, AGENT): {agent_phone, call},
                           agent_bridge(APP, SUPERVISOR): {supervisor_phone}},
                  "the customer with the agent")
    return call, agent_phone, supervisor_phone


async def record_of(api: Client, number: str, index: int, outcome: str) -> dict[str, Any]:
    """The attempt's escalation record `index` once its outcome is `outcome` (on record)."""
    async def check() -> Any:
        attempts = await api.attempts(f"{CAMPAIGN}:{number}")
        records = attempts[0]["escalations"] if attempts else []
        return records[index] if len(records) > index \
            and records[index]["outcome"] == outcome else None
    return dict(await eventually(check, f"escalation {index} recorded as {outcome}"))


# ------------------------------------------------------------------------------------ cold
async def test_cold_escalation_puts_the_customer_with_the_supervisors_phone(
    api: Client, server: Server
) -> None:
    number = "+12125558101"
    call, agent_phone, supervisor_phone = await a_call(api, server, number)
    accepted = await api.call("POST", f"/agents/{AGENT}/escalate", 202, json={"mode": "cold"})
    assert accepted == {"agent": AGENT, "call": call, "mode": "cold", "supervisor": SUPERVISOR}
    await bridged(server, {agent_bridge(APP, SUPERVISOR): {supervisor_phone, call},
                           agent_bridge(APP, AGENT): {agent_phone}},
                  "the customer in the supervisor's bridge")
    await api.agent_state(SUPERVISOR, "ON_CALL")
    await api.agent_state(AGENT, "WRAP_UP")
    record = await record_of(api, number, 0, "transferred")
    assert (record["kind"], record["agent_id"], record["supervisor_id"], record["via"]) == \
        ("cold", AGENT, SUPERVISOR, "api")

    await server.ari.rest.hangup(call)  # the customer hangs up: the supervisor wraps up
    await api.agent_state(SUPERVISOR, "WRAP_UP")

    async def ended() -> Any:
        attempts = await api.attempts(f"{CAMPAIGN}:{number}")
        return attempts[0] if attempts[0]["ended_at"] is not None else None
    attempt = await eventually(ended, "the attempt to end")
    assert attempt["result"] == "talked"
    assert attempt["agent_id"] == AGENT
    assert [r["outcome"] for r in attempt["escalations"]] == ["transferred"]


# ------------------------------------------------------------------------------------ warm
async def test_warm_escalation_consults_then_cancel_join_and_handover_move_the_right_legs(
    api: Client, server: Server
) -> None:
    number = "+12125558102"
    call, agent_phone, supervisor_phone = await a_call(api, server, number)
    mine, theirs, hold = (agent_bridge(APP, AGENT), agent_bridge(APP, SUPERVISOR),
                          hold_bridge(APP, call))

    # Consult: the customer waits on hold; the supervisor's phone is with the agent.
    await api.call("POST", f"/agents/{AGENT}/escalate", 202,
                   json={"mode": "warm", "supervisor": SUPERVISOR})
    consult = {mine: {agent_phone, supervisor_phone}, hold: {call}, theirs: set()}
    await bridged(server, consult, "the consult")
    await record_of(api, number, 0, "consulted")
    # Cancel: the supervisor's phone goes home, the customer comes back.
    await api.call("POST", f"/agents/{AGENT}/escalate/cancel", 202)
    await bridged(server, {mine: {agent_phone, call}, theirs: {supervisor_phone}, hold: set()},
                  "the consult cancelled")
    assert hold not in await members(server)
    await api.agent_state(SUPERVISOR, "READY")
    assert (await record_of(api, number, 0, "cancelled"))["kind"] == "warm"

    # Again, then join: a three-way call in the agent's bridge.
    await api.call("POST", f"/agents/{AGENT}/escalate", 202, json={"mode": "warm"})
    await bridged(server, consult, "the second consult")
    await record_of(api, number, 1, "consulted")
    await api.call("POST", f"/agents/{AGENT}/escalate/join", 202)
    await bridged(server, {mine: {agent_phone, supervisor_phone, call}, theirs: set(),
                           hold: set()}, "the three-way call")
    await api.agent_state(SUPERVISOR, "ON_CALL")
    assert await api.state(AGENT) == "ON_CALL"
    await record_of(api, number, 1, "joined")

    # Handover: the agent leaves; customer and supervisor in the supervisor's bridge.
    await api.call("POST", f"/agents/{AGENT}/escalate/handover", 202)
    await bridged(server, {theirs: {supervisor_phone, call}, mine: {agent_phone}},
                  "the call handed over")
    await api.agent_state(AGENT, "WRAP_UP")
    assert await api.state(SUPERVISOR) == "ON_CALL"
    record = await record_of(api, number, 1, "handed_over")
    assert record["ended_at"] is not None
    refused = await api.call("POST", f"/agents/{AGENT}/escalate/join", 409)
    assert refused["error"]["code"] == "no_escalation"


# ----------------------------------------------------------------------------- phone keys
async def test_star_8_keyed_on_the_agents_phone_escalates_cold(
    api: Client, server: Server
) -> None:
    # The testbed's sipp phones key only a "1" (uas_agent_dtmf.xml), so the two DTMF events
    # of "*8" are handed to the server's ARI listener as Asterisk would send them for the
    # agent's phone channel; everything after that (runner, desk, bridges) is real.
    number = "+12125558103"
    call, agent_phone, supervisor_phone = await a_call(api, server, number)
    assert server.dialer is not None
    channel = Channel(id=agent_phone, name=f"PJSIP/{AGENT}-dtmf", state="Up")
    for digit in "*8":
        server.dialer._route(ChannelDtmfReceived(server.clock(), channel, digit, 100))
    await bridged(server, {agent_bridge(APP, SUPERVISOR): {supervisor_phone, call},
                           agent_bridge(APP, AGENT): {agent_phone}},
                  "the customer in the supervisor's bridge")
    record = await record_of(api, number, 0, "transferred")
    assert (record["kind"], record["via"]) == ("cold", "phone")
    # A lone digit is still a disposition code, now in wrap-up.
    server.dialer._route(ChannelDtmfReceived(server.clock(), channel, "1", 100))
    await api.agent_state(AGENT, "READY")


# ----------------------------------------------------------------------------- supervision
async def snoop_of(server: Server, spied: str) -> dict[str, Any]:
    """The snoop channel on `spied`, as ARI describes it (Asterisk names it Snoop/<id>-...)."""
    async def check() -> Any:
        for channel in await server.ari.rest.list_channels():
            if channel.name.startswith(f"Snoop/{spied}-"):
                found = await server.ari.rest.request("GET", f"/channels/{channel.id}")
                # In Stasis once ARI shows the app (a moment after the channel appears).
                return found if found["dialplan"]["app_name"] == "Stasis" else None
        return None
    return dict(await eventually(check, f"a snoop channel on {spied}"))


class Ended:
    """Channels whose Stasis ended (hung up), as the server's ARI connection saw it. A snoop
    on a silent channel (the testbed's holding customer sends no audio) stays listed until
    the spied channel ends, though hung up at once (ChannelHangupRequest, ChannelLeftBridge,
    StasisEnd; observed on Asterisk 22): that is what is checked."""

    def __init__(self, server: Server) -> None:
        self.ids: set[str] = set()
        self.stop = server.ari.listen(self._on)

    def _on(self, item: AriItem) -> None:
        if isinstance(item, StasisEnd | ChannelDestroyed):
            self.ids.add(item.channel.id)

    async def wait(self, channel: str) -> None:
        async def check() -> bool:
            return channel in self.ids
        await eventually(check, f"channel {channel} hung up")


async def test_listen_whisper_and_barge_join_the_right_channels(
    api: Client, server: Server
) -> None:
    number = "+12125558104"
    call, agent_phone, supervisor_phone = await a_call(api, server, number)
    mine, theirs = agent_bridge(APP, AGENT), agent_bridge(APP, SUPERVISOR)
    path = f"/supervisors/{SUPERVISOR}/monitor"
    ended = Ended(server)

    # Listen: a snoop on the customer's channel, both directions, no whisper, bridged with
    # the supervisor's phone; the agent's bridge is untouched.
    started = await api.call("POST", path, 202, json={"agent": AGENT, "mode": "listen"})
    assert started["call"] == call
    snoop = await snoop_of(server, call)
    assert snoop["dialplan"]["app_data"] == f"{APP},snoop,listen,both,none,{call}"
    await bridged(server, {theirs: {supervisor_phone, snoop["id"]}, mine: {agent_phone, call}},
                  "the supervisor listening")
    assert await api.state(SUPERVISOR) == "RESERVED"  # no call is offered meanwhile
    await api.call("DELETE", path, 202)
    await bridged(server, {theirs: {supervisor_phone}}, "the listening stopped")
    await ended.wait(snoop["id"])
    await api.agent_state(SUPERVISOR, "READY")

    # Whisper: a snoop on the agent's phone channel that speaks out to it only.
    await api.call("POST", path, 202, json={"agent": AGENT, "mode": "whisper"})
    snoop = await snoop_of(server, agent_phone)
    assert snoop["dialplan"]["app_data"] == f"{APP},snoop,whisper,both,out,{call}"
    await bridged(server, {theirs: {supervisor_phone, snoop["id"]}, mine: {agent_phone, call}},
                  "the supervisor whispering")
    await api.call("DELETE", path, 202)
    await bridged(server, {theirs: {supervisor_phone}}, "the whispering stopped")
    await ended.wait(snoop["id"])
    await api.agent_state(SUPERVISOR, "READY")

    # Barge: the supervisor's phone joins the agent's bridge; then goes home.
    await api.call("POST", path, 202, json={"agent": AGENT, "mode": "barge"})
    await bridged(server, {mine: {agent_phone, call, supervisor_phone}, theirs: set()},
                  "the supervisor barging in")
    await api.agent_state(SUPERVISOR, "ON_CALL")
    await api.call("DELETE", path, 202)
    await bridged(server, {mine: {agent_phone, call}, theirs: {supervisor_phone}},
                  "the barge ended")
    await api.agent_state(SUPERVISOR, "WRAP_UP")
    kinds = [(r["kind"], r["outcome"]) for r in
             (await api.attempts(f"{CAMPAIGN}:{number}"))[0]["escalations"]]
    assert kinds == [("listen", "stopped"), ("whisper", "stopped"), ("barge", "stopped")]
    ended.stop()


# ------------------------------------------------------------------------------ bad input
async def test_bad_requests_get_a_clear_error_and_change_nothing(
    api: Client, server: Server
) -> None:
    number = "+12125558105"
    call, _, _ = await a_call(api, server, number)
    before = await members(server)
    states = {a: await api.state(a) for a in (AGENT, SUPERVISOR)}
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/agents/agent-9999/escalate", {"mode": "cold"}, 404, "unknown_agent"),
        ("POST", f"/agents/{OTHER}/escalate", {"mode": "cold"}, 409, "agent_not_logged_in"),
        ("POST", f"/agents/{SUPERVISOR}/escalate", {"mode": "cold"}, 409, "no_call"),
        ("POST", f"/agents/{AGENT}/escalate", {"mode": "tepid"}, 400, "bad_mode"),
        ("POST", f"/agents/{AGENT}/escalate", {}, 400, "missing_field"),
        ("POST", f"/agents/{AGENT}/escalate", {"mode": "cold", "urgent": "yes"}, 400,
         "unknown_field"),
        ("POST", f"/agents/{AGENT}/escalate", {"mode": "cold", "supervisor": "agent-9999"},
         404, "unknown_supervisor"),
        ("POST", f"/agents/{AGENT}/escalate", {"mode": "cold", "supervisor": AGENT}, 409,
         "same_agent"),
        ("POST", f"/agents/{AGENT}/escalate/join", None, 409, "no_escalation"),
        ("POST", "/agents/agent-9999/escalate/handover", None, 404, "unknown_agent"),
        ("POST", f"/supervisors/{SUPERVISOR}/monitor", {"agent": AGENT, "mode": "peek"}, 400,
         "bad_mode"),
        ("POST", f"/supervisors/{SUPERVISOR}/monitor", {"agent": "agent-9999",
                                                        "mode": "listen"}, 404, "unknown_agent"),
        ("POST", f"/supervisors/{AGENT}/monitor", {"agent": SUPERVISOR, "mode": "listen"}, 409,
         "not_a_supervisor"),
        ("POST", f"/supervisors/{SUPERVISOR}/monitor", {"agent": SUPERVISOR,
                                                        "mode": "listen"}, 409, "same_agent"),
        ("DELETE", f"/supervisors/{SUPERVISOR}/monitor", None, 409, "no_monitor"),
        ("DELETE", "/supervisors/agent-9999/monitor", None, 404, "unknown_supervisor"),
    ]
    for method, path, body, status, code in cases:
        kwargs = {"json": body} if body is not None else {}
        refused = await api.call(method, path, status, **kwargs)
        assert refused["error"]["code"] == code, (method, path, refused)
        assert refused["error"]["message"]
    assert await members(server) == before
    assert {a: await api.state(a) for a in (AGENT, SUPERVISOR)} == states
    assert (await api.attempts(f"{CAMPAIGN}:{number}"))[0]["escalations"] == []
    runner = runner_of(server)
    assert runner.desk.by_call == {}
    assert runner.desk.monitors == {}
    assert call in before[agent_bridge(APP, AGENT)]

"""The README's main command: a predictive campaign against the local testbed.

Starts the testbed and the server, logs in sipp agent phones (nailed-up), imports a few hundred
simulated customers (a dialplan mix of people who talk 20-60 s, busy lines, no answer,
answering machines and dead numbers), runs a predictive campaign with AMD for a couple of
minutes with a live progress line, and prints a summary. Everything goes through the same HTTP
API an admin or agent would use.

`--one-call` runs the foundation demo instead: one call to a simulated customer bridged to a
sipp agent phone, narrated event by event.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from dialer.ari import AriItem, ChannelDestroyed, ChannelEnteredBridge, Dial, StasisStart
from dialer.ari.outcome import ChannelOutcome
from dialer.auth import bearer_header
from dialer.config import Config, RedisConfig
from dialer.errors import DialerError
from dialer.server import Server
from dialer.testbed import Testbed

DEADLINE = 30.0
DEMO_DB = 1  # the demo's own Redis database on the testbed, cleared at each run
# The first digit of the line number picks the simulated customer (asterisk_conf/testbed):
# 9 talks 20-60 s, 1 busy, 2 no answer, 5 answering machine, 4 unallocated.
MIX = [("9", 0.45), ("1", 0.15), ("2", 0.2), ("5", 0.15), ("4", 0.05)]


async def run_demo(config: Config, keep: bool = False, one_call_only: bool = False,
                   minutes: float = 2.0, agents: int = 6, leads: int = 300) -> int:
    testbed = Testbed(config, report=print)
    await asyncio.to_thread(testbed.up)
    try:
        if one_call_only:
            async with Server(config) as server:
                print(f"server: up at {server.url}")
                await one_call(server)
        else:
            await campaign_demo(config, minutes, agents, leads)
    finally:
        if not keep:
            stopped = await asyncio.to_thread(testbed.down)
            print(f"testbed: stopped {', '.join(stopped)}")
        else:
            print("testbed: left running ('dialer testbed down' stops it)")
    return 0


# --------------------------------------------------------------------------- campaign demo
def demo_leads(count: int, rng: random.Random) -> str:
    digits = [d for d, _ in MIX]
    weights = [w for _, w in MIX]
    rows = ["phone,first_name,segment,priority"]
    for i in range(count):
        d = rng.choices(digits, weights)[0]
        # A random priority shuffles the dialing order (otherwise leads go in id order).
        rows.append(f"+1212555{d}{i % 1000:03d},Customer{i},{rng.choice(['A', 'B'])},"
                    f"{rng.randrange(1000)}")
    return "\n".join(rows) + "\n"


async def call_api(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        body = await resp.json()
        if resp.status >= 400:
            raise DialerError(f"{method} {url}: {resp.status} {body}")
        return body


async def campaign_demo(config: Config, minutes: float, n_agents: int, n_leads: int) -> None:
    url = config.redis.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"
    flush = aioredis.from_url(url)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(url))
    async with Server(cfg) as server, \
            aiohttp.ClientSession(headers=bearer_header(cfg.api)) as session:
        base = server.url
        print(f"server: up at {base} (metrics: {base}/metrics)")
        await call_api(session, "POST", f"{base}/campaigns", json={
            "id": "demo", "name": "Demo predictive campaign", "dial_mode": "predictive",
            "trunk": "Local/{number}@simcust-pstn", "caller_id": "Demo <+15550100>",
            "safe_harbor": {"seller": "Demo Co", "callback_number": "+15550100"},
            "amd": "hangup", "wrapup": 3, "ring_timeout": 15, "max_cps": 10,
            "max_channels": 40,
            # Simulated customers answer at any hour; real campaigns keep 08:00-21:00.
            "window": {"start": "00:00", "end": "23:59"},
        })
        csv = demo_leads(n_leads, random.Random(7))
        report = await call_api(session, "POST", f"{base}/campaigns/demo/leads", data=csv,
                                headers={"Content-Type": "text/csv"})
        print(f"leads: {report['added']} imported ({report['merged']} merged duplicates, "
              f"{report['rejected']} rejected)")
        agent_ids = [f"agent-{1001 + i}" for i in range(n_agents)]
        await call_api(session, "POST", f"{base}/campaigns/demo/start")
        for aid in agent_ids:
            await call_api(session, "POST", f"{base}/agents/{aid}/login",
                           json={"campaign": "demo"})
        runner = server.dialer.runners["demo"] if server.dialer else None
        assert runner is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while len(runner.engine.agents) < n_agents or any(
                a.state.value == "CONNECTING" for a in runner.engine.agents.values()):
            if loop.time() > end:
                raise DialerError("agents' phones did not answer within 60 s")
            await asyncio.sleep(0.1)
        print(f"agents: {n_agents} sipp phones logged in, nailed-up in their own bridges")
        print(f"campaign: predictive, AMD on, running for {minutes:g} min")
        started = time.time()
        end = loop.time() + minutes * 60
        while loop.time() < end:
            await asyncio.sleep(1)
            progress(runner, started)
        if sys.stdout.isatty():
            print()
        await call_api(session, "POST", f"{base}/campaigns/demo/pause")
        print("campaign: paused; letting calls in progress finish (up to 60 s)")
        end = loop.time() + 60
        while runner.engine.calls and loop.time() < end:
            await asyncio.sleep(1)
            progress(runner, started)
        if sys.stdout.isatty():
            print()
        elapsed = time.time() - started
        for cid in list(runner.engine.calls):
            await server.ari.rest.hangup(cid)
        await ivr_demo(server)  # while the agents are still logged in: blended inbound
        for aid in agent_ids:
            async with session.post(f"{base}/agents/{aid}/logout"):
                pass
        await summary(server, runner, elapsed, n_agents)


# Scripted callers (asterisk_conf/testbed/extensions.conf, context ivrcaller) dialing the
# support line 100, which ivr_flows/_routes.yaml sends to the example flow inbound_main.
IVR_CALLERS = [("demo-billing", "English, billing"),
               ("demo-message", "Spanish, leaves a message"),
               ("demo-hangup", "English, a wrong key, hangs up")]


async def ivr_demo(server: Server) -> None:
    """A few inbound calls through the example IVR flow, each narrated by its node path."""
    ivr, flows = server.ivr, server.flows
    if ivr is None or flows is None or flows.current is None:
        print("ivr: no flow set is live (see `dialer flows check`); skipping the IVR calls")
        return
    print(f"ivr: flows version {flows.current.version} live; {len(IVR_CALLERS)} callers dial "
          "the support line (100 -> inbound_main)")
    channels = {}
    for script, what in IVR_CALLERS:
        channel = f"demo-ivr-{uuid.uuid4().hex[:8]}"
        await server.ari.rest.request(
            "POST", "/channels",
            {"endpoint": f"Local/{script}@ivrcaller", "extension": "100",
             "context": "from-carrier", "priority": 1, "channelId": channel,
             "otherChannelId": f"{channel}-caller", "callerId": "+12125550123",
             "formats": "ulaw", "timeout": 10})
        channels[channel] = what
    loop = asyncio.get_running_loop()
    end = loop.time() + 120
    done: dict[str, Any] = {}
    while len(done) < len(channels) and loop.time() < end:
        for record in ivr.records:
            if record.call_id in channels and record.call_id not in done:
                done[record.call_id] = record
                extra = f" (agent {record.agent})" if record.agent else \
                    (f" (message {record.recordings[0]})" if record.recordings else "")
                print(f"  {channels[record.call_id]:34s} {' > '.join(record.path)} "
                      f"=> {record.disposition}{extra}")
        await asyncio.sleep(0.2)
    for channel in channels:
        if channel not in done:
            print(f"  {channels[channel]:34s} still running after 120 s; hanging up")
            await server.ari.rest.hangup(channel)
    print("  try a flow without a phone: dialer flows simulate inbound_main --input 1,1 "
          "--at '2026-12-02 10:00'")


def progress(runner: Any, started: float) -> None:
    """One live line on a terminal; a line every 10 s otherwise (logs, CI)."""
    engine = runner.engine
    elapsed = time.time() - started
    tty = sys.stdout.isatty()
    if not tty and round(elapsed) % 10:
        return
    states = Counter(a.state.value for a in engine.agents.values())
    start = "\r" if tty else ""
    line = (f"{start}  {elapsed:5.0f} s | calls {len(engine.calls):2d} "
            f"| agents talking {states['ON_CALL']}, ready {states['READY']}, "
            f"wrap-up {states['WRAP_UP']} | humans {engine.humans} "
            f"| abandoned {engine.abandoned} ({engine.abandon_rate:.1%})   ")
    sys.stdout.write(line if tty else line + "\n")
    sys.stdout.flush()


async def summary(server: Server, runner: Any, elapsed: float, n_agents: int) -> None:
    assert server.store is not None
    attempts = await server.store.recent_attempts("demo", 100_000)
    results = Counter(a.result.value if a.result else "in progress" for a in attempts)
    talk = sum((a.ended_at or 0) - a.connected_at for a in attempts
               if a.connected_at is not None and a.ended_at is not None)
    latencies = [(a.connected_at - (a.amd_done_at or a.answered_at or a.connected_at)) * 1000
                 for a in attempts if a.connected_at is not None]
    humans = sum(results[r] for r in ("talked", "abandoned", "hung_up_early"))
    agent_hours = n_agents * elapsed / 3600
    print("summary:")
    print(f"  attempts             {len(attempts)} in {elapsed / 60:.1f} min")
    print("  outcomes             " + ", ".join(f"{k} {v}" for k, v in results.most_common()))
    print(f"  talk time            {talk / 60:.1f} min = {talk / 60 / agent_hours:.1f} talk "
          f"minutes per agent-hour ({n_agents} agents)")
    print(f"  abandon rate         {results['abandoned'] / humans if humans else 0:.1%} of "
          f"{humans} live answers (legal ceiling 3 %)")
    if latencies:
        print(f"  greeting -> agent    p50 {statistics.median(latencies):.0f} ms, "
              f"max {max(latencies):.0f} ms (legal limit 2000 ms)")
    print(f"  metrics              {server.url}/metrics (Prometheus); Grafana: docker/README.md")


# ---------------------------------------------------------------------------- one call
class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.t0:6.3f} s] {text}", flush=True)


async def one_call(server: Server) -> None:
    ari = server.ari
    run = uuid.uuid4().hex[:8]
    agent_id, customer_id, bridge_id = f"demo-{run}-agent", f"demo-{run}-cust", f"demo-{run}-br"
    tl = Timeline()
    customer = ChannelOutcome(customer_id)

    def narrate(item: AriItem) -> None:
        customer.feed(item)
        match item:
            case StasisStart(channel=ch) if ch.id in (agent_id, customer_id):
                who = "agent phone" if ch.id == agent_id else "customer"
                tl.say(f"{who} answered ({ch.name})")
            case Dial(peer=peer, dialstatus=status) if peer.id == customer_id and status:
                tl.say(f"customer dial status: {status}")
            case ChannelEnteredBridge(channel=ch, bridge=br) if br.id == bridge_id:
                tl.say(f"{'agent' if ch.id == agent_id else 'customer'} entered the agent's bridge")
            case ChannelDestroyed(channel=ch, cause=cause, cause_txt=txt) if ch.id in (
                    agent_id, customer_id):
                who = "agent phone" if ch.id == agent_id else "customer"
                tl.say(f"{who} hung up (cause {cause}: {txt})")

    stop = ari.listen(narrate)
    try:
        print("call: logging in agent-1001 (nailed-up: the phone is called once)")
        agent_up = ari.expect(StasisStart, lambda e: e.channel.id == agent_id)
        await ari.originate("PJSIP/agent-1001", channel_id=agent_id, ring_timeout=20)
        await asyncio.wait_for(agent_up, DEADLINE)
        await ari.rest.create_bridge(bridge_id, name="agent-1001")
        agent_in = ari.expect(ChannelEnteredBridge, lambda e: e.channel.id == agent_id)
        await ari.rest.add_channel(bridge_id, agent_id)
        await asyncio.wait_for(agent_in, DEADLINE)

        print("call: dialing a simulated customer (Local/answer@simcust: rings 1-3 s, "
              "talks 5-10 s)")
        answered = ari.expect(StasisStart, lambda e: e.channel.id == customer_id)
        gone = ari.expect(ChannelDestroyed, lambda e: e.channel.id == customer_id)
        await ari.originate("Local/answer@simcust", channel_id=customer_id, ring_timeout=30,
                            formats="ulaw", caller_id="Demo <+15550100>")
        await asyncio.wait_for(answered, DEADLINE)
        t_answer = time.perf_counter()
        bridged = ari.expect(ChannelEnteredBridge, lambda e: e.channel.id == customer_id)
        await ari.rest.add_channel(bridge_id, customer_id)
        await asyncio.wait_for(bridged, DEADLINE)
        latency_ms = (time.perf_counter() - t_answer) * 1000
        tl.say(f"customer connected to the agent {latency_ms:.1f} ms after answer")
        bridge = await ari.rest.get_bridge(bridge_id)
        tl.say(f"bridge {bridge_id} holds {len(bridge.channels)} channels")
        await asyncio.wait_for(gone, DEADLINE)
        talk = time.monotonic() - tl.t0
    finally:
        stop()
        await ari.rest.hangup(customer_id)
        await ari.rest.hangup(agent_id)
        await ari.rest.destroy_bridge(bridge_id)
    print()
    print("what happened:")
    print(f"  outcome              {customer.outcome.value} (Q.850 cause {customer.cause})")
    print(f"  answer -> agent      {latency_ms:.1f} ms (legal limit 2000 ms)")
    print(f"  call duration        {talk:.1f} s, then the customer hung up")
    print("  agent phone          called once, left in its own bridge, hung up at logout")

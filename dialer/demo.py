"""The README's main command: testbed up, server up, one real call end to end, a report.

The call goes the way a predictive dialer connects customers to agents (nailed-up): the agent's
sipp phone is called once and parked in the agent's own bridge; then a simulated customer is
called, and when they answer they are added to that bridge, with no ringing on the agent side.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from dialer.ari import (
    AriItem,
    ChannelDestroyed,
    ChannelEnteredBridge,
    Dial,
    StasisStart,
)
from dialer.ari.outcome import ChannelOutcome
from dialer.config import Config
from dialer.server import Server
from dialer.testbed import Testbed

DEADLINE = 30.0


class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.t0:6.3f} s] {text}", flush=True)


async def run_demo(config: Config, keep: bool = False) -> int:
    testbed = Testbed(config, report=print)
    await asyncio.to_thread(testbed.up)
    try:
        async with Server(config) as server:
            print(f"server: up at {server.url} (ready: {server.url}/ready)")
            await one_call(server)
    finally:
        if not keep:
            stopped = await asyncio.to_thread(testbed.down)
            print(f"testbed: stopped {', '.join(stopped)}")
        else:
            print("testbed: left running ('dialer testbed down' stops it)")
    return 0


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

"""Predictive campaign benchmark on the testbed: the dialer next to a raw-ARI client, in one run.

Prints:
  1. Answer-to-agent connect latency p50/p99 of the dialer (server in-process, campaign driven
     through the HTTP API, 20 sipp agent phones agent-1001..1020 logged in and nailed up, a
     campaign of simulated customers in dialplan: Local/+1212555Dxxx@simcust-pstn, 70 % digit 0
     "answers after 1-3 s, talks 5-10 s", 10 % each busy / never answers / unallocated, ring
     timeout 15 s), next to a minimal raw-ARI client (aiohttp + websockets + json) measured in
     the same run: the same customers, the same 20 sipp agent phones (PJSIP/agent-10xx, each
     answered and put in a pre-made mixing bridge), one call per agent at a time, the answered
     customer added to that agent's bridge on StasisStart.
  2. CPU per call placed: the dialer process (time.process_time) next to Asterisk
     (/proc/<pid>/stat utime+stime) over the same window; Redis for information.

By default (--customers speaking) the customers who answer speak for their whole talk time
(simcust-pstn-speak), so Asterisk carries a voice to each agent's SIP phone as RTP, as on every
connected call in production; --customers silent measures signalling only (simcust-pstn).

Usage: .venv/bin/python scripts/bench_campaign.py [--duration 75] [--baseline 45] [--leads 600]
Uses Redis DB 9 (flushed), ARI apps dialer-bench-campaign(-raw) and server port 18097, so it
does not collide with the tests. Starts the testbed if it is not running and leaves it running.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import gc
import importlib
import json
import logging
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, SupportsIndex

import aiohttp
import redis.asyncio as aioredis
import websockets

from dialer.ari import AriItem, ChannelEnteredBridge, StasisStart, UnknownEvent
from dialer.auth import bearer_header
from dialer.config import AriConfig, Config, RedisConfig, ServerConfig, load_config
from dialer.core.model import Attempt
from dialer.runner import CampaignRunner, agent_bridge
from dialer.server import Server
from dialer.testbed import Testbed

REPO = Path(__file__).resolve().parents[1]
DB_URL = "redis://127.0.0.1:16379/9"
PORT = 18097
APP = "dialer-bench-campaign"
RAW_APP = "dialer-bench-campaign-raw"
# Where the simulated customers live (asterisk_conf/testbed/extensions.conf): the same numbers
# and outcomes; "speaking" customers play recorded speech for their whole talk time.
CUSTOMERS = {"silent": "simcust-pstn", "speaking": "simcust-pstn-speak"}
CAMPAIGN = "bench"
AGENTS = [f"agent-{1001 + i}" for i in range(20)]
# First digit of the line number -> behaviour (asterisk_conf/testbed/extensions.conf).
MIX = (("0", 0.70), ("1", 0.10), ("2", 0.10), ("4", 0.10))
DEADLINE = 60.0


# ------------------------------------------------------------------------------ helpers
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def numbers(count: int) -> list[tuple[str, int]]:
    """(E.164 number in the simcust-pstn plan, priority), mixed as MIX says, in dialing order.

    Leads of equal priority and due time are claimed in lexicographic order (a Redis sorted
    set), which would dial every "0" number first; so each block of 10 leads (7 x "0", one each
    of "1", "2", "4") gets its own priority level, highest first."""
    per_block = [(digit, round(share * 10)) for digit, share in MIX]
    used = dict.fromkeys((d for d, _ in MIX), 0)
    out: list[tuple[str, int]] = []
    blocks = count // 10
    for block in range(blocks):
        for digit, n in per_block:
            for _ in range(n):
                out.append((f"+1212555{digit}{used[digit]:03d}", blocks - block))
                used[digit] += 1
    if max(used.values()) > 1000:
        raise SystemExit("at most 1,400 leads (1,000 numbers per behaviour digit)")
    return out


def proc_cpu(pid: int | None) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


@dataclass(frozen=True, slots=True)
class Cpu:
    wall: float
    me: float
    asterisk: float
    redis: float
    me_sys: float = 0.0  # of `me`, in the kernel (syscalls; on loopback, part of delivery)

    @classmethod
    def now(cls, testbed: Testbed) -> Cpu:
        return cls(time.perf_counter(), time.process_time(), proc_cpu(testbed.asterisk.pid()),
                   proc_cpu(testbed.redis.pid()), os.times().system)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.wall - other.wall, self.me - other.me, self.asterisk - other.asterisk,
                   self.redis - other.redis, self.me_sys - other.me_sys)


class Foreign:
    """Samples GET /channels: the most channels seen that belong to nobody in this benchmark
    (another session's tests on the shared Asterisk would inflate its CPU and latency)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, ours: Callable[[str], bool]) -> None:
        self.http, self.base, self.ours = http, base, ours
        self.most = 0

    async def sample(self) -> None:
        async with self.http.get(f"{self.base}/channels") as resp:
            channels = await resp.json()
        foreign = [c["id"] for c in channels if not self.ours(str(c["id"]).split(";")[0])]
        self.most = max(self.most, len(foreign))

    async def run(self, every: float = 10.0) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                await self.sample()
            await asyncio.sleep(every)


def ari_auth(cfg: AriConfig) -> dict[str, str]:
    token = base64.b64encode(f"{cfg.username}:{cfg.password.value}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# ------------------------------------------------------------------------ raw-ARI baseline
@dataclass
class RawResult:
    latencies: list[float]  # ms, StasisStart -> ChannelEnteredBridge
    placed: int
    answered: int
    cpu: Cpu
    foreign: int
    load: str
    agents_at_end: int  # agents' phones still up at the end (others' tests hang up all channels)


@dataclass
class _RawCall:
    bridge: str
    ended: asyncio.Future[None]
    answered: float | None = None


async def raw_baseline(cfg: AriConfig, testbed: Testbed, dial: list[str],
                       duration: float, context: str) -> RawResult:
    """20 sipp agent phones in pre-made bridges; each agent's line dials the next customer
    when the last one ends; an answered customer is added to that line's bridge at once."""
    headers = ari_auth(cfg)
    app, base = cfg.app, f"{cfg.url}/ari"
    ws_url = cfg.url.replace("http", "ws", 1) + f"/ari/events?app={app}"
    prefix = f"bcr-{uuid.uuid4().hex[:6]}-"
    loop = asyncio.get_running_loop()
    agent_up: dict[str, asyncio.Future[None]] = {}
    calls: dict[str, _RawCall] = {}
    latencies: list[float] = []
    pending: set[asyncio.Task[int]] = set()
    placed = answered = 0
    closing = False
    lost: list[str] = []
    lines = iter(dial)
    bridges: list[str] = []
    agent_channels: list[str] = []
    async with aiohttp.ClientSession(headers=headers,
                                     connector=aiohttp.TCPConnector(limit=40)) as http, \
            websockets.connect(ws_url, additional_headers=headers) as ws:

        async def post(path: str, **params: str) -> int:
            async with http.post(base + path, params=params) as resp:
                await resp.read()
                return resp.status

        async def delete(path: str) -> None:
            async with http.delete(base + path) as resp:
                await resp.read()

        async def reader() -> None:
            nonlocal answered
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "StasisStart":
                    cid = msg["channel"]["id"]
                    call = calls.get(cid)
                    if call is not None:
                        call.answered = time.perf_counter()
                        answered += 1
                        task = loop.create_task(post(f"/bridges/{call.bridge}/addChannel",
                                                     channel=cid))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                    elif cid in agent_up and not agent_up[cid].done():
                        agent_up[cid].set_result(None)
                elif kind == "ChannelEnteredBridge":
                    call = calls.get(msg["channel"]["id"])
                    if call is not None and call.answered is not None:
                        latencies.append((time.perf_counter() - call.answered) * 1000)
                elif kind == "ChannelDestroyed":
                    cid = msg["channel"]["id"]
                    call = calls.get(cid)
                    if call is not None and not call.ended.done():
                        call.ended.set_result(None)
                    elif cid in agent_up and not closing:
                        lost.append(cid)  # someone else hung up one of our agents' phones

        read_task = asyncio.create_task(reader())
        foreign = Foreign(http, base, lambda cid: cid.startswith(prefix))
        try:
            for i, agent in enumerate(AGENTS):
                aid, bid = f"{prefix}agent{i}", f"{prefix}br{i}"
                agent_up[aid] = loop.create_future()
                await post("/channels", endpoint=f"PJSIP/{agent}", app=app, channelId=aid,
                           timeout="30")
                agent_channels.append(aid)
                await asyncio.wait_for(agent_up[aid], 30)
                await post(f"/bridges/{bid}", type="mixing")
                await post(f"/bridges/{bid}/addChannel", channel=aid)
                bridges.append(bid)
            await foreign.sample()
            end = time.perf_counter() + duration
            counter = iter(range(1_000_000))

            async def line(bridge: str) -> None:
                nonlocal placed
                while time.perf_counter() < end:
                    number = next(lines, None)
                    if number is None:
                        return
                    cid = f"{prefix}c{next(counter)}"
                    calls[cid] = call = _RawCall(bridge, loop.create_future())
                    placed += 1
                    status = await post("/channels", endpoint=f"Local/{number}@{context}",
                                        app=app, channelId=cid, formats="ulaw", timeout="15")
                    if status == 200:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(asyncio.shield(call.ended), 60)
                    del calls[cid]

            load = loadavg()
            start = Cpu.now(testbed)
            sampler = asyncio.create_task(foreign.run())
            workers = [asyncio.create_task(line(b)) for b in bridges]
            await asyncio.sleep(duration)
            cpu = Cpu.now(testbed) - start
            placed_in_window, answered_in_window = placed, answered
            closing = True
            sampler.cancel()
            for cid in list(calls):  # end the calls still up (bounded run)
                await delete(f"/channels/{cid}")
            await asyncio.wait_for(asyncio.gather(*workers), DEADLINE)
        finally:
            closing = True
            for cid in list(calls):
                await delete(f"/channels/{cid}")
            for bid in bridges:
                await delete(f"/bridges/{bid}")
            for aid in agent_channels:
                await delete(f"/channels/{aid}")
            read_task.cancel()
    return RawResult(latencies, placed_in_window, answered_in_window, cpu, foreign.most, load,
                     len(AGENTS) - len(set(lost)))


# --------------------------------------------------------------------------- the dialer
class _Waited(list[str]):
    """The engine's waiting list, remembering every call that ever waited for an agent."""

    def __init__(self, seen: set[str]) -> None:
        super().__init__()
        self.seen = seen

    def append(self, item: str, /) -> None:
        self.seen.add(item)
        super().append(item)

    def insert(self, index: SupportsIndex, item: str, /) -> None:
        self.seen.add(item)
        super().insert(index, item)


class Probe:
    """Listens on the server's ARI stream before the dialer does: per customer call the time
    its StasisStart (answer) and its ChannelEnteredBridge were dispatched, and when the runner
    carried out ConnectAgent (its `connect_started`, still there when this listener runs)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.runner: CampaignRunner | None = None
        self.answered: dict[str, float] = {}
        # (call id, answer, ConnectAgent or None, in bridge), perf_counter seconds
        self.records: list[tuple[str, float, float | None, float]] = []
        self.events: Counter[str] = Counter()  # ARI events delivered to the server, by type

    def on(self, item: AriItem) -> None:
        self.events[item.type if isinstance(item, UnknownEvent) else type(item).__name__] += 1
        if isinstance(item, StasisStart) and item.channel.id.startswith(self.prefix) \
                and not item.args:
            self.answered[item.channel.id] = time.perf_counter()
        elif isinstance(item, ChannelEnteredBridge) and item.channel.id in self.answered:
            started = self.runner.connect_started.get(item.channel.id) if self.runner else None
            self.records.append((item.channel.id, self.answered.pop(item.channel.id), started,
                                 time.perf_counter()))


class GcTimer:
    """CPU time in Python's cyclic garbage collector, by generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds[info["generation"]] += time.process_time() - self._started
            self.runs[info["generation"]] += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass
class DialerResult:
    mode: str
    connect: list[float]  # ms, runner.connect_latencies in the window
    free_answer_bridge: list[float]  # ms, answer -> in bridge, agent free at answer
    free_answer_connect: list[float]  # ms, answer -> ConnectAgent, agent free at answer
    all_answer_bridge: list[float]  # ms, every connected call
    store_latency: list[float]  # ms, connected_at - answered_at of attempts placed in window
    waited: int
    placed: int
    results: Counter[str]
    cpu: Cpu
    foreign: int
    load: str
    ready_after: float
    abandon: str
    leads_left: int
    warnings: int
    agents_at_end: int
    redis_commands: Counter[str]  # the redis-server's (shared), in the window, also in Lua
    events: Counter[str]  # ARI events the server received in the window, by type
    gc: GcTimer  # the garbage collector's CPU in the window
    leftovers: list[str] = field(default_factory=list)


def campaign_body(mode: str, wrapup: float, max_cps: float, context: str) -> dict[str, Any]:
    return {
        "id": CAMPAIGN, "name": "Campaign benchmark", "dial_mode": mode,
        "trunk": f"Local/{{number}}@{context}", "caller_id": "Bench <+15550100>",
        "safe_harbor": {"seller": "Bench", "callback_number": "+15550100", "optout_key": "9"},
        "window": {"start": "00:00", "end": "23:59"}, "ring_timeout": 15, "wrapup": wrapup,
        "max_cps": max_cps, "max_channels": 60,
        "retry": {"busy": 3600, "no_answer": 3600, "max_attempts": 3},
    }


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not await check():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {deadline:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def dialer_run(config: Config, testbed: Testbed, leads: list[tuple[str, int]],
                     duration: float, mode: str, wrapup: float, max_cps: float,
                     profile: Path | None, ivr_watch: bool, context: str) -> DialerResult:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    stats = aioredis.from_url(DB_URL)

    async def redis_commands() -> Counter[str]:
        info = await stats.info("commandstats")
        return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()})
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", PORT),
                  ari=replace(config.ari, app=APP), ivr=replace(config.ivr, watch=ivr_watch))
    warnings = Warnings()
    logging.getLogger("dialer").addHandler(warnings)
    server = Server(cfg)
    probe = Probe(f"c-{CAMPAIGN}-")
    server.ari.listen(probe.on)  # before the dialer's own listener: sees connect_started
    waited: set[str] = set()
    leftovers: list[str] = []
    await server.start()
    try:
        assert server.dialer is not None
        assert server.store is not None
        dialer, store = server.dialer, server.store
        async with aiohttp.ClientSession(base_url=server.url,
                                         headers=bearer_header(cfg.api)) as api, \
                aiohttp.ClientSession(headers=ari_auth(cfg.ari)) as sampling:

            async def call(method: str, path: str, expect: int, **kw: Any) -> Any:
                async with api.request(method, path, **kw) as resp:
                    body = await resp.json()
                    if resp.status != expect:
                        raise RuntimeError(f"{method} {path}: {resp.status} {body}")
                    return body

            async def agent_state(aid: str) -> str | None:
                async with api.get(f"/agents/{aid}") as resp:
                    return str((await resp.json()).get("state")) if resp.status == 200 else None

            await call("POST", "/campaigns", 201, json=campaign_body(mode, wrapup, max_cps, context))
            csv = "phone,first_name,priority\n" + "".join(
                f"{n},Pat{i},{prio}\n" for i, (n, prio) in enumerate(leads))
            report = await call("POST", f"/campaigns/{CAMPAIGN}/leads", 200, data=csv,
                                headers={"Content-Type": "text/csv"})
            if report["added"] != len(leads):
                raise RuntimeError(f"lead import: {report}")
            await call("POST", f"/campaigns/{CAMPAIGN}/start", 200)
            runner = dialer.runners[CAMPAIGN]
            probe.runner = runner
            runner.engine.waiting = _Waited(waited)

            def ours(cid: str) -> bool:
                return cid.startswith(probe.prefix) or cid in runner.agent_channels.values()

            foreign = Foreign(sampling, f"{cfg.ari.url}/ari", ours)
            t_login = time.perf_counter()
            for aid in AGENTS:
                await call("POST", f"/agents/{aid}/login", 202, json={"campaign": CAMPAIGN})

            async def all_ready() -> bool:
                states = [await agent_state(a) for a in AGENTS]
                return all(s not in (None, "CONNECTING", "LOGGED_OUT") for s in states)

            await eventually(all_ready, "20 agents' phones answered")
            ready_after = time.perf_counter() - t_login
            # The window: calls placed, CPU used and connections made from here for `duration`.
            load = loadavg()
            lat_from = len(runner.connect_latencies)
            commands0 = await redis_commands()
            events0 = probe.events.copy()
            w0, p0, start = time.time(), time.perf_counter(), Cpu.now(testbed)
            sampler = asyncio.create_task(foreign.run())
            gc_timer = GcTimer()
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            with gc_timer:
                await asyncio.sleep(duration)
            if profiler:
                profiler.disable()
            cpu = Cpu.now(testbed) - start
            if profiler and profile:
                profiler.dump_stats(profile)
            w1, p1 = time.time(), time.perf_counter()
            commands = await redis_commands() - commands0
            commands["info"] -= 1
            events = probe.events - events0
            connect = [s * 1000 for s in runner.connect_latencies[lat_from:]]
            sampler.cancel()
            await call("POST", f"/campaigns/{CAMPAIGN}/pause", 200)
            abandon = f"{runner.engine.abandoned}/{runner.engine.humans}"
            agents_at_end = len(runner.engine.agents)

            async def drained() -> bool:
                return not runner.engine.calls and not runner.engine.claims_pending
            with contextlib.suppress(RuntimeError):
                await eventually(drained, "the calls in progress to end", 45)
            attempts: list[Attempt] = await store.recent_attempts(CAMPAIGN, 100_000)
            leads_left = await store.dialable_count(CAMPAIGN, time.time())
            for aid in AGENTS:
                async with api.post(f"/agents/{aid}/logout") as resp:
                    await resp.read()

            async def logged_out() -> bool:
                return not runner.engine.agents and not runner.agent_channels
            with contextlib.suppress(RuntimeError):
                await eventually(logged_out, "the agents to log out", 30)
        in_window = [a for a in attempts if w0 <= a.originated_at < w1]
        records = [r for r in probe.records if p0 <= r[3] < p1]
        free = [r for r in records if r[0] not in waited]
        return DialerResult(
            mode=mode, connect=connect,
            free_answer_bridge=[(b - a) * 1000 for _, a, _, b in free],
            free_answer_connect=[(c - a) * 1000 for _, a, c, _ in free if c is not None],
            all_answer_bridge=[(b - a) * 1000 for _, a, _, b in records],
            store_latency=[(a.connected_at - a.answered_at) * 1000 for a in in_window
                           if a.connected_at is not None and a.answered_at is not None],
            waited=sum(1 for r in records if r[0] in waited),
            placed=len(in_window),
            results=Counter(a.result.value if a.result else "in progress" for a in in_window),
            cpu=cpu, foreign=foreign.most, load=load,
            ready_after=ready_after, abandon=abandon, leads_left=leads_left,
            warnings=warnings.count, agents_at_end=agents_at_end, redis_commands=commands,
            events=events, gc=gc_timer,
            leftovers=leftovers)
    finally:
        try:
            # Whatever is left of ours: customers, agents' phones, agents' bridges.
            for channel in await server.ari.rest.list_channels():
                base = channel.id.split(";")[0]
                if base.startswith(probe.prefix) or (
                        probe.runner is not None and base in probe.runner.agent_channels.values()):
                    leftovers.append(channel.id)
                    await server.ari.rest.hangup(channel.id)
            if probe.runner is not None:
                mine = {agent_bridge(APP, a) for a in probe.runner.engine.agents}
                for bridge in await server.ari.rest.list_bridges():
                    if bridge.id in mine:
                        leftovers.append(bridge.id)
                        await server.ari.rest.destroy_bridge(bridge.id)
        finally:
            await server.stop()
            await stats.aclose()
            logging.getLogger("dialer").removeHandler(warnings)


async def wait_quiet(cfg: AriConfig, wait: float, need_no_agent_bridges: bool) -> None:
    """Wait until the shared Asterisk carries no channel (another session's tests or demo).
    Agents' bridges are named by ARI app and agent (dialer/runner.py `agent_bridge`), so only
    another run of this benchmark (same app) could clash: the dialer run refuses to start while
    such a bridge holds a channel (empty ones are leftovers)."""
    end = time.monotonic() + wait
    told = False
    async with aiohttp.ClientSession(headers=ari_auth(cfg)) as http:
        while True:
            async with http.get(f"{cfg.url}/ari/channels") as resp:
                channels = await resp.json()
            async with http.get(f"{cfg.url}/ari/bridges") as resp:
                bridges = [b["id"] for b in await resp.json() if b["channels"]
                           and b["id"] in {agent_bridge(APP, a) for a in AGENTS}]
            if not channels and not bridges:
                return
            if time.monotonic() > end:
                if need_no_agent_bridges and bridges:
                    raise SystemExit(f"another dialer holds agents' bridges {bridges[:3]}...; "
                                     "not starting (it would break them)")
                print(f"   (Asterisk not quiet after {wait:.0f} s: {len(channels)} channels of "
                      "others; measuring anyway)", flush=True)
                return
            if not told:
                print(f"   (waiting for {len(channels)} channels / {len(bridges)} agents' bridges "
                      "of another user of the testbed to go)", flush=True)
                told = True
            await asyncio.sleep(2)


# ----------------------------------------------------------------------------- report
def row(name: str, values: list[float]) -> str:
    return (f"   {name:52} {len(values):5d} {statistics.median(values) if values else float('nan'):8.2f}"
            f" {pct(values, 99):8.2f} {max(values) if values else float('nan'):8.2f}")


async def main_async(config: Config, testbed: Testbed, args: argparse.Namespace) -> None:
    idle0 = Cpu.now(testbed)
    await asyncio.sleep(5)
    idle = Cpu.now(testbed) - idle0
    print(f"Asterisk idle before the run: {idle.asterisk / idle.wall * 1000:.1f} ms CPU/s; "
          f"load average {loadavg()}; 2 cores shared with anything else on the machine")
    print()
    leads = numbers(args.leads)
    context = CUSTOMERS[args.customers]
    await wait_quiet(config.ari, args.wait_quiet, need_no_agent_bridges=False)
    raw = await raw_baseline(replace(config.ari, app=RAW_APP), testbed,
                             [n for n, _ in leads], args.baseline, context)
    await wait_quiet(config.ari, args.wait_quiet, need_no_agent_bridges=True)
    dial = await dialer_run(config, testbed, leads, args.duration, args.mode, args.wrapup,
                            args.max_cps, args.profile, args.ivr_watch, context)

    print()
    print(f"1. answer -> agent connect latency ({dial.mode}, 20 sipp agent phones nailed up, "
          f"customers Local/+1212555Dxxx@{context} ({args.customers}), mix 70 % answer / "
          f"10 % busy / 10 % no answer / 10 % unallocated)")
    print(f"   {'measure (ms)':52} {'n':>5} {'p50':>8} {'p99':>8} {'max':>8}")
    print(row("raw ARI: StasisStart -> ChannelEnteredBridge", raw.latencies))
    print(row("dialer: ConnectAgent -> in bridge (connect_latencies)", dial.connect))
    print(row("dialer: answer -> in bridge, agent free at answer", dial.free_answer_bridge))
    print(row("  of which answer -> ConnectAgent (inbox, core, Redis)", dial.free_answer_connect))
    print(row("dialer: answer -> in bridge, all (incl. waits)", dial.all_answer_bridge))
    print(row("dialer: store connected_at - answered_at, all", dial.store_latency))
    base99 = pct(raw.latencies, 99)
    print(f"   dialer / raw p99: ConnectAgent -> bridge {pct(dial.connect, 99) / base99:.2f}x, "
          f"answer -> bridge (agent free) {pct(dial.free_answer_bridge, 99) / base99:.2f}x "
          f"(target <= 2x); {dial.waited} answered calls waited for an agent (pacing)")
    print()
    print("2. CPU per call placed (window; Asterisk's figure is the whole Asterisk process)")
    print(f"   {'run':30} {'window s':>8} {'calls':>6} {'calls/s':>8} {'client ms':>10} "
          f"{'Asterisk ms':>12} {'Redis ms':>9} {'client/Ast':>10}")
    for name, cpu, placed, redis_used in (
            ("raw ARI client", raw.cpu, raw.placed, False),
            ("dialer (server in-process)", dial.cpu, dial.placed, True)):
        per = 1000 / max(1, placed)
        print(f"   {name:30} {cpu.wall:8.1f} {placed:6d} {placed / cpu.wall:8.2f} "
              f"{cpu.me * per:10.2f} {cpu.asterisk * per:12.2f} "
              f"{cpu.redis * per if redis_used else float('nan'):9.2f} "
              f"{cpu.me / cpu.asterisk:9.0%}")
    print("   target: dialer <= 25 % of Asterisk's CPU per call")
    print(f"   of the client's CPU, in the kernel: raw {raw.cpu.me_sys / raw.cpu.me:.0%}, "
          f"dialer {dial.cpu.me_sys / dial.cpu.me:.0%}; dialer's garbage collections "
          f"(generation 0/1/2): {'/'.join(map(str, dial.gc.runs))}, "
          f"{sum(dial.gc.seconds) * 1000 / max(1, dial.placed):.2f} ms per call "
          f"({'/'.join(f'{x * 1000:.0f}' for x in dial.gc.seconds)} ms in all)")
    print()
    results = ", ".join(f"{k} {v}" for k, v in sorted(dial.results.items()))
    print(f"   dialer window: {dial.placed} calls placed ({results}); abandoned/humans "
          f"{dial.abandon}; agents ready {dial.ready_after:.1f} s after login, "
          f"{dial.agents_at_end} still logged in at the end; "
          f"{dial.leads_left} leads left; {dial.warnings} warnings logged; load {dial.load}")
    top = ", ".join(f"{name} {n / max(1, dial.placed):.1f}"
                    for name, n in dial.redis_commands.most_common(8))
    print(f"   Redis commands per call placed (those run inside Lua scripts included): "
          f"{dial.redis_commands.total() / max(1, dial.placed):.1f}: {top}")
    kinds = ", ".join(f"{name} {n / max(1, dial.placed):.1f}"
                      for name, n in dial.events.most_common())
    print(f"   ARI events the server received per call placed: "
          f"{dial.events.total() / max(1, dial.placed):.1f}: {kinds}")
    print(f"   raw window: {raw.placed} placed, {raw.answered} answered; {raw.agents_at_end} agents' "
          f"phones still up at the end; load {raw.load}")
    print(f"   foreign channels on the Asterisk (most seen): raw {raw.foreign}, "
          f"dialer {dial.foreign}; leftovers cleaned up: {dial.leftovers or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--duration", type=float, default=75, help="dialer window (s)")
    parser.add_argument("--baseline", type=float, default=45, help="raw-ARI window (s)")
    parser.add_argument("--leads", type=int, default=600)
    parser.add_argument("--customers", default="speaking", choices=sorted(CUSTOMERS),
                        help="silent: answered customers send no audio (signalling only); "
                             "speaking: they speak for their whole talk time, so Asterisk "
                             "carries the voice through the agent's bridge to the phone as RTP")
    parser.add_argument("--mode", default="predictive", choices=["predictive", "progressive"])
    parser.add_argument("--wrapup", type=float, default=1)
    parser.add_argument("--max-cps", type=float, default=10)
    parser.add_argument("--wait-quiet", type=float, default=600,
                        help="wait up to this long (s) for other users of the Asterisk to finish")
    parser.add_argument("--uvloop", action="store_true",
                        help="run on uvloop's event loop (pip install uvloop) instead of asyncio's")
    parser.add_argument("--ivr-watch", action="store_true",
                        help="keep the IVR flow-file watcher on (it polls the files every 0.5 s: "
                             "about 1.5 ms CPU per second, whatever the call rate)")
    parser.add_argument("--profile", type=Path,
                        help="cProfile the dialer's window into this file (inflates its CPU)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(REPO / "dialer.yaml", env={})
    testbed = Testbed(config, report=lambda m: None)
    if not all(row.pid for row in testbed.status()[1:]):
        testbed.up()  # left running (shared testbed)
    print(f"event loop: {'uvloop' if args.uvloop else 'asyncio'}; IVR flow-file watcher "
          f"{'on' if args.ivr_watch else 'off'}")
    if args.uvloop:
        # An optional benchmark dependency (the `bench` extra), so not typed here.
        uvloop: Any = importlib.import_module("uvloop")
        uvloop.run(main_async(config, testbed, args))
    else:
        asyncio.run(main_async(config, testbed, args))


if __name__ == "__main__":
    main()

"""The runner's writer: records with nothing waiting on them are held briefly and written
together; a call is still placed only once its records are written; a reader (the API) that
asks the runner to settle sees every record decided before it asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from dialer import api
from dialer.ari import Ari
from dialer.config import AriConfig, Secret
from dialer.core.agent import Agent, AgentState
from dialer.core.campaign import (
    ApplyDisposition,
    CallEnded,
    Command,
    Hangup,
    Originate,
    SaveAgent,
    SetRunning,
    Tick,
)
from dialer.core.escalation import AnyEvent
from dialer.core.model import Attempt, AttemptResult, CampaignSpec, DialMode, Lead, SafeHarbor
from dialer.core.outcome import DialOutcome
from dialer.metrics import Metrics
from dialer.runner import TICK, CampaignRunner, Dialer, _Writes
from dialer.store import Refusal
from dialer.store.memory import MemoryStore

NOON = 1_795_000_000.0


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    async def save_batch(self, attempts: Sequence[Attempt] = (),
                         agents: Mapping[str, Mapping[str, str]] | None = None,
                         leads: Sequence[Lead] = ()) -> list[Refusal]:
        self.batches += 1
        return await super().save_batch(attempts, agents, leads)


class Runner(CampaignRunner):
    """A runner whose telephony commands are noted instead of sent to Asterisk."""

    def __init__(self, store: CountingStore) -> None:
        spec = CampaignSpec(id="camp", name="Camp", dial_mode=DialMode.PROGRESSIVE,
                            trunk="PJSIP/{number}@carrier", caller_id="Acme <+15550100>",
                            safe_harbor=SafeHarbor("Acme", "+15550100"))
        ari = Ari(AriConfig("http://127.0.0.1:1", "dialer", Secret("secret"), "unit"))
        super().__init__(spec, ari, store, lambda: NOON, Metrics())
        self.carried: list[tuple[object, int]] = []  # (command, batches written before it)
        self.counting = store

    async def _carry_out(self, command: object) -> None:
        self.carried.append((command, self.counting.batches))


def agent_batch(runner: CampaignRunner, agent_id: str, state: AgentState) -> _Writes:
    writes = _Writes()
    runner._record(SaveAgent(Agent(agent_id, state, NOON)), writes)
    return writes


@pytest.fixture
async def runner() -> AsyncIterator[Runner]:
    r = Runner(CountingStore())
    r.write_linger = 30.0  # far longer than any test waits: only settle() ends it
    writer = asyncio.create_task(r._write_out())
    yield r
    writer.cancel()


async def state(runner: Runner, agent_id: str) -> str | None:
    data = await runner.store.get_agent(agent_id)
    return None if data is None else data["state"]


async def test_records_nobody_waits_for_are_held_then_written_together(runner: Runner) -> None:
    runner._outbox.put_nowait((agent_batch(runner, "a1", AgentState.READY), []))
    runner._outbox.put_nowait((agent_batch(runner, "a2", AgentState.READY), []))
    runner._outbox.put_nowait((agent_batch(runner, "a1", AgentState.RESERVED), []))
    for _ in range(20):  # let the writer run as far as it goes on its own
        await asyncio.sleep(0)
    assert runner.counting.batches == 0
    assert await state(runner, "a1") is None
    await runner.settle()
    assert runner.counting.batches == 1  # three batches, one transaction
    assert await state(runner, "a1") == "RESERVED"  # the later version won
    assert await state(runner, "a2") == "READY"


async def test_a_pacing_round_sends_the_held_records_to_the_store(runner: Runner) -> None:
    runner._last_leads = NOON  # no lead-count refresh in this round
    runner._outbox.put_nowait((agent_batch(runner, "a1", AgentState.READY), []))
    for _ in range(20):
        await asyncio.sleep(0)
    assert runner.counting.batches == 0
    runner._round()
    try:
        for _ in range(50):
            await asyncio.sleep(0)
            if runner.counting.batches:
                break
        assert runner.counting.batches == 1
        assert await state(runner, "a1") == "READY"
    finally:
        await runner.stop()


async def test_pacing_rounds_keep_a_fixed_grid_and_restart_it_after_a_stall(
        runner: Runner) -> None:
    loop = asyncio.get_running_loop()
    runner._last_leads = NOON
    start = loop.time()
    runner._next_round = start
    runner._round()  # on time: the next one TICK after this one was due
    try:
        assert runner._next_round == start + TICK
        assert runner._round_timer is not None
        assert runner._round_timer.when() == runner._next_round
        runner._next_round = loop.time() - 5 * TICK  # the loop was stalled
        runner._round()
        assert runner._next_round > loop.time()
        assert runner.rounds == 2
    finally:
        await runner.stop()
    assert runner._round_timer is None


async def test_a_round_hands_the_core_no_tick_it_would_ignore_unless_events_wait(
        runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Ari, "ready", property(lambda self: True))
    runner._last_leads = NOON
    assert runner.engine.pacing_idle  # not running, nobody ready
    try:
        runner._round()
        assert (runner.rounds, runner.ticks, runner.inbox.qsize()) == (1, 0, 0)
        runner.post(SetRunning(NOON, True))  # an event waits: it may make pacing matter
        runner._round()
        assert (runner.rounds, runner.ticks) == (2, 1)
        assert [type(e) for e in drain(runner.inbox)] == [SetRunning, Tick]
    finally:
        await runner.stop()


def drain(queue: asyncio.Queue[AnyEvent]) -> list[AnyEvent]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_a_call_is_placed_at_once_and_only_after_its_records_are_written(
        runner: Runner) -> None:
    originate = Originate("call-1", "camp:1", "PJSIP/+12125550001@carrier", "Acme <+15550100>",
                          15.0)
    runner._outbox.put_nowait((agent_batch(runner, "a1", AgentState.RESERVED), [originate]))
    for _ in range(20):
        await asyncio.sleep(0)
        if runner.carried:
            break
    assert runner.carried == [(originate, 1)]  # no linger: written, then carried out
    assert await state(runner, "a1") == "RESERVED"


class RefusingStore(CountingStore):
    """Writes every record of a batch but the attempts it names, which it reports refused
    (as Redis does a record whose key has the wrong type)."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse

    async def save_batch(self, attempts: Sequence[Attempt] = (),
                         agents: Mapping[str, Mapping[str, str]] | None = None,
                         leads: Sequence[Lead] = ()) -> list[Refusal]:
        kept = [a for a in attempts if a.id not in self.refuse]
        refused = await super().save_batch(kept, agents, leads)
        return refused + [Refusal("attempt", a.id, f"attempt {a.id!r} not saved: refused")
                          for a in attempts if a.id in self.refuse]


async def test_a_call_whose_attempt_the_store_refused_is_not_placed_and_the_rest_are() -> None:
    store = RefusingStore({"call-1", "call-3"})
    runner = Runner(store)
    told: list[str] = []
    runner.on_attempt_ended.append(lambda a: told.append(a.id))
    writes = agent_batch(runner, "a1", AgentState.RESERVED)
    originates: list[Command] = [Originate(f"call-{i}", f"L{i}", f"PJSIP/+1212555000{i}@carrier",
                                           "Acme <+15550100>", 15.0) for i in (1, 2)]
    for i in (1, 2):
        writes.attempts[f"call-{i}"] = Attempt(id=f"call-{i}", campaign_id="camp", lead_id=f"L{i}",
                                               phone="+12125550001", originated_at=NOON)
    for i in (3, 4):  # ended calls, with their agents' dispositions
        writes.attempts[f"call-{i}"] = Attempt(
            id=f"call-{i}", campaign_id="camp", lead_id=f"L{i}", phone="+12125550001",
            originated_at=NOON - 60, ended_at=NOON, result=AttemptResult.TALKED)
    dispositions: list[Command] = [ApplyDisposition(f"call-{i}", "a2", "sale", None) for i in (3, 4)]
    runner._outbox.put_nowait((writes, originates + dispositions))
    writer = asyncio.create_task(runner._write_out())
    try:
        ended = await asyncio.wait_for(runner.inbox.get(), 10.0)
        await runner.settle()
    finally:
        writer.cancel()
    # neither the call nor the disposition whose attempt is not on record; the others are
    assert runner.carried == [(originates[1], 1), (dispositions[1], 1)]
    assert isinstance(ended, CallEnded)
    assert (ended.call_id, ended.outcome) == ("call-1", DialOutcome.FAILED)
    assert await store.get_attempt("call-2") is not None
    assert await state(runner, "a1") == "RESERVED"
    assert told == ["call-4"]  # listeners hear only of ended attempts that were written


class SlowRunner(Runner):
    """A runner whose telephony commands take until `gate` opens (a slow ARI request), and
    whose core answers every event with a hang-up and agent a1's reservation."""

    def __init__(self, store: CountingStore) -> None:
        super().__init__(store)
        self.gate = asyncio.Event()
        self.desk.handle = self.decide  # type: ignore[method-assign,assignment]

    def decide(self, event: AnyEvent) -> list[Command]:
        return [Hangup("call-1"), SaveAgent(Agent("a1", AgentState.RESERVED, NOON))]

    async def _carry_out(self, command: object) -> None:
        self.carried.append((command, self.counting.batches))
        await self.gate.wait()


async def test_a_reader_who_saw_a_batchs_commands_also_reads_its_records() -> None:
    # The batch's telephony commands go first; its records are queued after them. A client
    # who saw a command's effect (a bridge) and asks at once must wait for those records.
    runner = SlowRunner(CountingStore())
    tasks = [asyncio.create_task(runner._run()), asyncio.create_task(runner._write_out())]
    try:
        runner.post(Tick(NOON))
        for _ in range(100):
            await asyncio.sleep(0)
            if runner.carried:
                break
        assert runner.carried == [(Hangup("call-1"), 0)]
        reader = asyncio.create_task(runner.settle())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not reader.done()  # the batch is still being carried out
        runner.gate.set()
        await asyncio.wait_for(reader, 10.0)
        assert await state(runner, "a1") == "RESERVED"
    finally:
        for task in tasks:
            task.cancel()


async def test_the_dialer_settles_every_runner_before_a_read() -> None:
    store = CountingStore()
    runners = [Runner(store), Runner(store)]
    dialer = Dialer(runners[0].ari, store, lambda: NOON, Metrics())
    writers = []
    for i, r in enumerate(runners):
        r.write_linger = 30.0
        dialer.runners[f"camp{i}"] = r
        writers.append(asyncio.create_task(r._write_out()))
        r._outbox.put_nowait((agent_batch(r, f"agent-{i}", AgentState.PAUSED), []))
    try:
        await asyncio.wait_for(dialer.settle(), 5)
        assert [await state(runners[0], f"agent-{i}") for i in range(2)] == ["PAUSED"] * 2
    finally:
        for w in writers:
            w.cancel()


async def test_an_api_request_goes_on_when_the_store_does_not_take_the_records(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = CountingStore()
    stuck = Runner(store)  # no writer task: its queued records are never written
    stuck._outbox.put_nowait((agent_batch(stuck, "a1", AgentState.READY), []))
    dialer = Dialer(stuck.ari, store, lambda: NOON, Metrics())
    dialer.runners["camp"] = stuck
    monkeypatch.setattr(api, "SETTLE_TIMEOUT", 0.05)
    middleware = api.settle_middleware(dialer)
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        return web.Response(text="ok")

    for path in ("/health", "/campaigns"):
        response = await asyncio.wait_for(
            middleware(make_mocked_request("GET", path), handler), 5)
        assert response.status == 200
    assert seen == ["/health", "/campaigns"]
    assert await state(stuck, "a1") is None  # nothing was written, nothing hung

"""The store contract, run against MemoryStore and against RedisStore on the testbed's Redis.

Each Redis test uses its own random key prefix and deletes its keys afterwards. A `Backend` is
"the server": opening it twice gives two stores sharing state, as two dialer processes (or a
restarted one) share one Redis.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Protocol

import pytest
import redis.asyncio as aioredis

from dialer.config import Config
from dialer.core.model import (
    AmdMode,
    Attempt,
    AttemptResult,
    CampaignSpec,
    DialMode,
    Lead,
    LeadState,
    RetryRules,
    SafeHarbor,
)
from dialer.server import connect_redis
from dialer.store import (
    Keys,
    MemoryData,
    MemoryStore,
    RedisStore,
    Store,
    StoreCorrupt,
    StoreRefused,
    StoreUnavailable,
    UnknownRecord,
    utc_day,
)
from dialer.store.base import DayBucket
from dialer.store.codec import decode, encode

T0 = 1_700_000_000.123456  # POSIX seconds with microseconds: must survive storage exactly
DAY = 86400.0
CID = "camp-1"


class Backend(Protocol):
    async def open(self, day_bucket: DayBucket = utc_day) -> Store: ...


class MemoryBackend:
    def __init__(self) -> None:
        self.data = MemoryData()

    async def open(self, day_bucket: DayBucket = utc_day) -> Store:
        return MemoryStore(self.data, day_bucket=day_bucket)


class RedisBackend:
    """One key prefix on the testbed's Redis; every `open` is a new connection pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"test-store-{uuid.uuid4().hex}:"
        self.keys = Keys(self.prefix)
        self.clients: list[aioredis.Redis] = []

    async def client(self) -> aioredis.Redis:
        client = await connect_redis(self.url)
        self.clients.append(client)
        return client

    async def open(self, day_bucket: DayBucket = utc_day) -> Store:
        return RedisStore(await self.client(), self.prefix, day_bucket=day_bucket)

    async def close(self) -> None:
        client = await self.client()
        found = [key async for key in client.scan_iter(match=self.keys.pattern(), count=1000)]
        if found:
            await client.delete(*found)
        for c in self.clients:
            await c.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.testbed)])
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "redis":
        request.getfixturevalue("testbed")  # starts the real Redis (or fails: never skips)
    return kind


@pytest.fixture
async def backend(backend_kind: str, config: Config) -> AsyncIterator[Backend]:
    if backend_kind == "memory":
        yield MemoryBackend()
        return
    redis_backend = RedisBackend(config.redis.url)
    try:
        yield redis_backend
    finally:
        await redis_backend.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


@pytest.fixture
async def redis_backend(testbed: object, config: Config) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(config.redis.url)
    try:
        yield backend
    finally:
        await backend.close()


def spec(cid: str = CID, **changes: object) -> CampaignSpec:
    base = CampaignSpec(
        id=cid, name=f"Campaign {cid}", dial_mode=DialMode.PREDICTIVE, trunk="PJSIP/{number}@carrier",
        caller_id="+15550100", safe_harbor=SafeHarbor(seller="Acme", callback_number="+15550199"),
        abandon_target=0.025, amd=AmdMode.MESSAGE, uk_mode=True, agents=("a1", "a2"),
        retry=RetryRules(busy=None, no_answer=7200.5, max_attempts=3),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def lead(lid: str, *, cid: str = CID, priority: int = 0, next_at: float = 0.0, lockout: float = 0.0,
         state: LeadState = LeadState.READY, phone: str = "+15550000001", attempts: int = 0,
         attributes: tuple[tuple[str, str], ...] = (("name", "Ann"),)) -> Lead:
    return Lead(id=lid, campaign_id=cid, phone=phone, timezones=("America/New_York",), priority=priority,
                attributes=attributes, state=state, attempts=attempts, next_at=next_at,
                lockout_until=lockout)


def attempt(aid: str, lead_id: str = "L1", originated_at: float = T0, **changes: object) -> Attempt:
    base = Attempt(id=aid, campaign_id=CID, lead_id=lead_id, phone="+15550000001",
                   originated_at=originated_at)
    return replace(base, **changes)  # type: ignore[arg-type]


async def claim_ids(store: Store, now: float, n: int) -> list[str | None]:
    found = []
    for i in range(n):
        claimed = await store.claim_lead(CID, now, f"att-{uuid.uuid4().hex[:8]}-{i}")
        found.append(None if claimed is None else claimed.id)
    return found


# campaigns


async def test_saved_campaign_reads_back_equal_and_starts_created(store: Store) -> None:
    await store.save_campaign(spec())
    assert await store.get_campaign(CID) == spec()
    assert await store.get_campaign_status(CID) == "created"
    assert await store.get_campaign("nope") is None
    assert await store.get_campaign_status("nope") is None


async def test_pacer_estimates_read_back_as_saved_last_and_are_shared_with_a_restarted_store(
        backend: Backend) -> None:
    first = await backend.open()
    assert await first.load_pacer_state(CID) is None
    await first.save_pacer_state(CID, '{"saved_at": 1, "pacer": {}}')
    await first.save_pacer_state(CID, '{"saved_at": 2, "pacer": {"dials": 5}}')
    await first.save_pacer_state("other", "{}")
    restarted = await backend.open()
    assert await restarted.load_pacer_state(CID) == '{"saved_at": 2, "pacer": {"dials": 5}}'
    assert await restarted.load_pacer_state("other") == "{}"


async def test_saving_a_campaign_again_replaces_it_but_keeps_its_status(store: Store) -> None:
    await store.save_campaign(spec())
    await store.set_campaign_status(CID, "paused")
    await store.save_campaign(spec(name="Renamed"))
    assert (await store.get_campaign(CID)) == spec(name="Renamed")
    assert await store.get_campaign_status(CID) == "paused"


async def test_campaigns_are_listed_by_id_and_running_ones_by_status(store: Store) -> None:
    for cid in ("c3", "c1", "c2"):
        await store.save_campaign(spec(cid))
    await store.set_campaign_status("c3", "running")
    await store.set_campaign_status("c1", "running")
    await store.set_campaign_status("c2", "stopped")
    assert [c.id for c in await store.list_campaigns()] == ["c1", "c2", "c3"]
    assert await store.running_campaigns() == ["c1", "c3"]
    await store.set_campaign_status("c3", "paused")
    assert await store.running_campaigns() == ["c1"]


async def test_an_unknown_status_or_campaign_is_refused(store: Store) -> None:
    await store.save_campaign(spec())
    with pytest.raises(ValueError, match="unknown campaign status 'dialing'"):
        await store.set_campaign_status(CID, "dialing")
    with pytest.raises(UnknownRecord, match="nope"):
        await store.set_campaign_status("nope", "running")
    assert await store.get_campaign_status(CID) == "created"


# leads


async def test_added_leads_read_back_equal_and_are_counted_by_state(store: Store) -> None:
    leads = [lead("L1", next_at=T0), lead("L2", state=LeadState.DONE, attempts=3),
             lead("L3", state=LeadState.DNC), lead("L4", priority=-2, lockout=T0 + 5)]
    assert await store.add_leads(CID, leads) == (4, 0)
    for expected in leads:
        assert await store.get_lead(expected.id) == expected
    assert await store.get_lead("nope") is None
    assert await store.count_leads(CID) == {"ready": 2, "in_progress": 0, "done": 1, "dnc": 1}
    assert await store.count_leads("other") == {"ready": 0, "in_progress": 0, "done": 0, "dnc": 0}


async def test_leads_are_listed_by_id_in_pages_and_filtered_by_state(store: Store) -> None:
    ids = [f"L{i:02d}" for i in range(12)]
    await store.add_leads(CID, [lead(i, state=LeadState.DONE if int(i[1:]) % 3 == 0 else LeadState.READY)
                                for i in reversed(ids)])
    assert [x.id for x in await store.list_leads(CID, limit=5)] == ids[:5]
    assert [x.id for x in await store.list_leads(CID, offset=10, limit=5)] == ids[10:]
    assert await store.list_leads(CID, offset=20) == []
    assert await store.list_leads(CID, limit=0) == []
    done = await store.list_leads(CID, state=LeadState.DONE)
    assert [x.id for x in done] == ["L00", "L03", "L06", "L09"]
    assert all(x.state is LeadState.DONE for x in done)
    page = await store.list_leads(CID, state=LeadState.READY, offset=1, limit=2)
    assert [x.id for x in page] == ["L02", "L04"]


async def test_re_adding_a_lead_keeps_its_dialing_history_but_takes_new_contact_data(store: Store) -> None:
    await store.add_leads(CID, [lead("L1", next_at=T0), lead("L2")])
    claimed = await store.claim_lead(CID, T0, "att-1")
    assert claimed is not None
    finished = replace(claimed, state=LeadState.READY, attempts=1, next_at=T0 + 600,
                       last_result=AttemptResult.BUSY, lockout_until=T0 + 300)
    await store.finish_lead(finished)
    fresh = lead(claimed.id, priority=7, phone="+15550000009", attributes=(("name", "Bob"), ("zip", "02134")))
    fresh = replace(fresh, timezones=("America/Chicago",))
    assert await store.add_leads(CID, [fresh, lead("L3")]) == (1, 1)
    stored = await store.get_lead(claimed.id)
    assert stored == replace(fresh, attempts=1, next_at=T0 + 600, last_result=AttemptResult.BUSY,
                             lockout_until=T0 + 300)
    # the new priority decides the claim order; the kept next_at decides when
    assert await store.claim_lead(CID, T0 + 599, "att-2") is not None  # L2 or L3, not the re-added one
    got = await store.claim_lead(CID, T0 + 600, "att-3")
    assert got is not None
    assert got.id == claimed.id
    assert got.priority == 7


async def test_re_adding_an_in_flight_lead_keeps_it_in_flight_and_unclaimable(store: Store) -> None:
    await store.add_leads(CID, [lead("L1")])
    assert await store.claim_lead(CID, T0, "att-1") is not None
    assert await store.add_leads(CID, [lead("L1", priority=3, phone="+15550000002")]) == (0, 1)
    stored = await store.get_lead("L1")
    assert stored is not None
    assert (stored.state, stored.priority, stored.phone) == (LeadState.IN_PROGRESS, 3, "+15550000002")
    assert await store.claim_lead(CID, T0, "att-2") is None
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}
    assert await store.count_leads(CID) == {"ready": 0, "in_progress": 1, "done": 0, "dnc": 0}


async def test_a_duplicate_id_in_one_batch_is_added_then_merged(store: Store) -> None:
    assert await store.add_leads(CID, [lead("L1", priority=1), lead("L1", priority=2)]) == (1, 1)
    stored = await store.get_lead("L1")
    assert stored is not None
    assert stored.priority == 2
    assert await store.count_leads(CID) == {"ready": 1, "in_progress": 0, "done": 0, "dnc": 0}


async def test_a_lead_of_another_campaign_is_refused_before_anything_is_stored(store: Store) -> None:
    await store.add_leads("other", [lead("L1", cid="other")])
    with pytest.raises(ValueError, match="'L1' already belongs to campaign 'other'"):
        await store.add_leads(CID, [lead("L0"), lead("L1")])
    with pytest.raises(ValueError, match="belongs to campaign 'other', not 'camp-1'"):
        await store.add_leads(CID, [lead("L2", cid="other")])
    with pytest.raises(ValueError, match="IN_PROGRESS"):
        await store.add_leads(CID, [lead("L3", state=LeadState.IN_PROGRESS)])
    assert await store.list_leads(CID) == []


# claims


async def test_claim_takes_highest_priority_then_earliest_next_at_then_lowest_id(store: Store) -> None:
    await store.add_leads(CID, [
        lead("a-low", priority=0, next_at=T0 - 100),
        lead("b-mid-late", priority=5, next_at=T0 - 1),
        lead("c-mid-early", priority=5, next_at=T0 - 50),
        lead("d-high", priority=9, next_at=T0),
        lead("f-mid-tie", priority=5, next_at=T0 - 50),
        lead("e-mid-tie", priority=5, next_at=T0 - 50),
        lead("g-negative", priority=-3, next_at=0.0),
    ])
    assert await claim_ids(store, T0, 8) == [
        "d-high", "c-mid-early", "e-mid-tie", "f-mid-tie", "b-mid-late", "a-low", "g-negative", None]


async def test_claim_skips_leads_due_later_or_locked_out(store: Store) -> None:
    await store.add_leads(CID, [lead("later", priority=9, next_at=T0 + 10),
                                lead("locked", priority=9, next_at=T0 - 10, lockout=T0 + 20),
                                lead("done", priority=9, state=LeadState.DONE),
                                lead("dnc", priority=9, state=LeadState.DNC)])
    assert await store.claim_lead(CID, T0, "att-1") is None
    assert await store.dialable_count(CID, T0) == 0
    assert await claim_ids(store, T0 + 10, 2) == ["later", None]
    assert await claim_ids(store, T0 + 20, 2) == ["locked", None]


async def test_a_locked_out_lead_once_free_is_ordered_by_its_next_at(store: Store) -> None:
    await store.add_leads(CID, [lead("a", next_at=T0 - 5), lead("b-locked", next_at=T0 - 30, lockout=T0 - 1),
                                lead("c", next_at=T0 - 20)])
    assert await claim_ids(store, T0, 4) == ["b-locked", "c", "a", None]


async def test_claim_on_an_empty_or_unknown_campaign_returns_none(store: Store) -> None:
    assert await store.claim_lead("nope", T0, "att-1") is None
    assert await store.dialable_count("nope", T0) == 0
    assert await store.in_flight_leads("nope") == {}


async def test_concurrent_claims_from_two_stores_never_hand_out_a_lead_twice(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    await first.add_leads(CID, [lead(f"L{i:02d}", priority=i % 3, next_at=T0 - i) for i in range(20)])
    results = await asyncio.gather(*[
        (first if i % 2 else second).claim_lead(CID, T0, f"att-{i}") for i in range(50)])
    claimed = [r.id for r in results if r is not None]
    assert len(claimed) == 20
    assert sorted(claimed) == [f"L{i:02d}" for i in range(20)]
    in_flight = await second.in_flight_leads(CID)
    assert len(set(in_flight.values())) == 20  # each lead has the attempt id of its one claimer
    assert await first.count_leads(CID) == {"ready": 0, "in_progress": 20, "done": 0, "dnc": 0}


async def test_re_adding_leads_while_they_are_being_claimed_never_frees_a_claimed_lead(
        backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    await first.add_leads(CID, [lead(f"L{i:02d}") for i in range(20)])
    claims = [(first if i % 2 else second).claim_lead(CID, T0, f"att-{i}") for i in range(30)]
    results = await asyncio.gather(
        *claims[:15], second.add_leads(CID, [lead(f"L{i:02d}", priority=1) for i in range(20)]), *claims[15:])
    claimed = [r.id for r in results if isinstance(r, Lead)]
    assert sorted(claimed) == [f"L{i:02d}" for i in range(20)]
    assert await first.claim_lead(CID, T0, "att-late") is None
    assert len(await first.in_flight_leads(CID)) == 20


async def test_claimed_lead_is_in_progress_with_its_attempt_recorded_in_flight(store: Store) -> None:
    added = lead("L1", priority=2, next_at=T0 - 1)
    await store.add_leads(CID, [added])
    claimed = await store.claim_lead(CID, T0, "att-1")
    assert claimed == replace(added, state=LeadState.IN_PROGRESS)
    assert await store.get_lead("L1") == claimed
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}
    assert [x.id for x in await store.list_leads(CID, state=LeadState.IN_PROGRESS)] == ["L1"]
    assert await store.list_leads(CID, state=LeadState.READY) == []


async def test_a_finished_lead_is_stored_as_computed_and_claimed_again_only_when_ready_and_due(
        store: Store) -> None:
    await store.add_leads(CID, [lead("L1"), lead("L2")])
    one = await store.claim_lead(CID, T0, "att-1")
    two = await store.claim_lead(CID, T0, "att-2")
    assert one is not None
    assert two is not None
    retry = replace(one, state=LeadState.READY, attempts=1, next_at=T0 + 600, last_result=AttemptResult.BUSY)
    done = replace(two, state=LeadState.DONE, attempts=1, last_result=AttemptResult.TALKED)
    await store.finish_lead(retry)
    await store.finish_lead(done)
    assert await store.get_lead("L1") == retry
    assert await store.get_lead("L2") == done
    assert await store.in_flight_leads(CID) == {}
    assert await store.count_leads(CID) == {"ready": 1, "in_progress": 0, "done": 1, "dnc": 0}
    assert await store.claim_lead(CID, T0 + 599, "att-3") is None
    assert await claim_ids(store, T0 + 600, 2) == ["L1", None]


async def test_a_batch_claims_in_order_until_the_campaign_runs_dry_and_checks_dnc(
        store: Store) -> None:
    await store.add_leads(CID, [lead("L1", priority=1), lead("L2", phone="+15550000002"),
                                lead("L3", next_at=T0 + 1)])
    await store.dnc_add("+15550000002", CID)
    await store.dnc_add("+15550000001", "other")  # another campaign's list
    claimed = await store.claim_leads(CID, T0, ["att-1", "att-2", "att-3"])
    assert [(x.id, aid, dnc) for x, aid, dnc in claimed] == [("L1", "att-1", False),
                                                             ("L2", "att-2", True)]
    assert all(x.state is LeadState.IN_PROGRESS for x, _, _ in claimed)
    assert await store.in_flight_leads(CID) == {"L1": "att-1", "L2": "att-2"}
    assert await store.claim_leads(CID, T0, []) == []


async def test_a_batch_writes_attempts_finished_leads_and_agents_together(store: Store) -> None:
    await store.add_leads(CID, [lead("L1"), lead("L2")])
    one, two = [x for x, _, _ in await store.claim_leads(CID, T0, ["att-1", "att-2"])]
    open_one = attempt("att-1", "L1")
    ended = attempt("att-2", "L2", ended_at=T0 + 5, result=AttemptResult.ABANDONED)
    done = replace(two, state=LeadState.DONE, attempts=1, last_result=AttemptResult.ABANDONED)
    refused = await store.save_batch(
        [open_one, replace(ended, ended_at=None, result=None), ended],
        {"a1": {"state": "READY"}}, [replace(done, attempts=7), done])
    assert refused == []
    assert await store.get_attempt("att-1") == open_one
    assert await store.get_attempt("att-2") == ended
    assert [a.id for a in await store.in_flight_attempts(CID)] == ["att-1"]
    assert await store.abandon_stats(CID, T0) == (1, 1)  # counted once
    assert await store.get_lead("L2") == done  # the later of two versions
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}
    assert await store.get_agent("a1") == {"state": "READY"}
    assert one.id == "L1"


async def test_a_large_batch_writes_every_record_and_an_agent_without_fields(
        store: Store) -> None:
    await store.add_leads(CID, [lead(f"L{i}") for i in range(200)])
    claimed = [x for x, _, _ in await store.claim_leads(CID, T0, [f"att-{i}" for i in range(200)])]
    attempts = [attempt(f"att-{i}", f"L{i}", ended_at=T0 + 5, result=AttemptResult.ABANDONED)
                for i in range(200)]
    finished = [replace(x, state=LeadState.DONE, attempts=1,
                        last_result=AttemptResult.ABANDONED) for x in claimed]
    agents = {f"a{i}": {"state": "READY", "call": ""} for i in range(50)} | {"idle": {}}
    assert await store.save_batch(attempts, agents, finished) == []
    assert await store.abandon_stats(CID, T0) == (200, 200)
    assert await store.count_leads(CID) == {"ready": 0, "in_progress": 0, "done": 200, "dnc": 0}
    assert [await store.get_lead(x.id) for x in finished] == finished
    assert await store.get_agent("a49") == {"state": "READY", "call": ""}
    assert await store.get_agent("idle") == {}
    assert "idle" in await store.list_agents()


async def test_leads_finished_in_a_batch_are_indexed_as_finish_lead_indexes_them(
        store: Store) -> None:
    await store.add_leads(CID, [lead("L1", priority=2), lead("L2", priority=1), lead("L3")])
    flying = await store.claim_lead(CID, T0, "att-2")
    assert flying is not None
    assert flying.id == "L1"
    locked = replace(flying, state=LeadState.READY, priority=5, next_at=T0 + 10,
                     lockout_until=T0 + 100)
    assert await store.save_batch(leads=[locked, lead("L2", state=LeadState.DNC, priority=1)]) == []
    assert await store.count_leads(CID) == {"ready": 2, "in_progress": 0, "done": 0, "dnc": 1}
    assert await store.in_flight_leads(CID) == {}
    assert await store.get_lead("L1") == locked
    assert await store.dialable_count(CID, T0 + 50) == 1  # L3 only: L1 is locked out
    assert await claim_ids(store, T0 + 50, 2) == ["L3", None]
    assert await claim_ids(store, T0 + 100, 2) == ["L1", None]  # at its new level


async def test_a_batch_skips_a_lead_it_cannot_finish_and_writes_the_rest(store: Store) -> None:
    await store.add_leads(CID, [lead("L1")])
    claimed = await store.claim_lead(CID, T0, "att-1")
    assert claimed is not None
    refused = await store.save_batch([attempt("att-1", "L1")], None,
                                     [lead("L9", state=LeadState.DONE), claimed])
    assert [(r.kind, r.record_id) for r in refused] == [("lead", "L9"), ("lead", "L1")]
    assert "'L9'" in str(refused[0])
    assert "IN_PROGRESS" in str(refused[1])
    assert await store.get_attempt("att-1") == attempt("att-1", "L1")
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}
    assert await store.save_batch() == []


async def test_finishing_a_ready_lead_as_dnc_takes_it_out_of_the_queue(store: Store) -> None:
    await store.add_leads(CID, [lead("L1")])
    await store.finish_lead(lead("L1", state=LeadState.DNC))
    assert await store.claim_lead(CID, T0, "att-1") is None
    assert await store.count_leads(CID) == {"ready": 0, "in_progress": 0, "done": 0, "dnc": 1}


async def test_finishing_as_in_progress_or_an_unknown_lead_is_refused(store: Store) -> None:
    await store.add_leads(CID, [lead("L1")])
    claimed = await store.claim_lead(CID, T0, "att-1")
    assert claimed is not None
    with pytest.raises(ValueError, match="not IN_PROGRESS"):
        await store.finish_lead(claimed)
    with pytest.raises(UnknownRecord, match="'L9'"):
        await store.finish_lead(lead("L9", state=LeadState.DONE))
    with pytest.raises(UnknownRecord, match="'L9'"):
        await store.reschedule_lead("L9", T0)
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}


async def test_a_rescheduled_lead_is_ready_again_at_the_new_time_with_attempts_unchanged(
        store: Store) -> None:
    await store.add_leads(CID, [lead("L1", attempts=2), lead("L2", state=LeadState.DONE)])
    claimed = await store.claim_lead(CID, T0, "att-1")
    assert claimed is not None
    await store.reschedule_lead("L1", T0 + 3600)
    assert await store.get_lead("L1") == lead("L1", attempts=2, next_at=T0 + 3600)
    assert await store.in_flight_leads(CID) == {}
    assert await store.claim_lead(CID, T0 + 3599, "att-2") is None
    assert await claim_ids(store, T0 + 3600, 1) == ["L1"]
    with pytest.raises(ValueError, match="'L2' is done"):
        await store.reschedule_lead("L2", T0)


async def test_dialable_count_counts_the_leads_claim_could_take_now(store: Store) -> None:
    await store.add_leads(CID, [lead("due", next_at=T0), lead("due-hi", priority=4, next_at=T0 - 9),
                                lead("later", next_at=T0 + 1),
                                lead("locked", next_at=T0 - 9, lockout=T0 + 60),
                                lead("unlocked", priority=4, next_at=T0 - 9, lockout=T0),
                                lead("done", state=LeadState.DONE)])
    assert await store.dialable_count(CID, T0) == 3
    assert await store.dialable_count(CID, T0 + 60) == 5
    await store.claim_lead(CID, T0, "att-1")
    assert await store.dialable_count(CID, T0) == 2


# attempts


async def test_an_attempt_is_created_then_updated_by_id(store: Store) -> None:
    opened = attempt("A1", answered_at=T0 + 3.5)
    await store.save_attempt(opened)
    assert await store.get_attempt("A1") == opened
    ended = replace(opened, ended_at=T0 + 20, result=AttemptResult.TALKED, cause=16, agent_id="a1",
                    disposition="sale", recording="rec/A1.wav", amd_status="HUMAN", amd_done_at=T0 + 5.25,
                    connected_at=T0 + 5.5)
    await store.save_attempt(ended)
    assert await store.get_attempt("A1") == ended
    assert await store.get_attempt("nope") is None
    assert await store.lead_attempts("L1") == [ended]


async def test_lead_attempts_are_in_origination_order_and_recent_attempts_newest_first(
        store: Store) -> None:
    await store.save_attempt(attempt("A3", originated_at=T0 + 30))
    await store.save_attempt(attempt("A1", originated_at=T0 + 10))
    await store.save_attempt(attempt("A2b", originated_at=T0 + 20))
    await store.save_attempt(attempt("A2a", originated_at=T0 + 20))
    await store.save_attempt(attempt("B1", lead_id="L2", originated_at=T0 + 15))
    assert [a.id for a in await store.lead_attempts("L1")] == ["A1", "A2a", "A2b", "A3"]
    assert [a.id for a in await store.recent_attempts(CID, 3)] == ["A3", "A2b", "A2a"]
    assert [a.id for a in await store.recent_attempts(CID, 10)] == ["A3", "A2b", "A2a", "B1", "A1"]
    assert await store.recent_attempts(CID, 0) == []
    assert await store.lead_attempts("nope") == []


async def test_in_flight_attempts_and_claimed_leads_survive_a_new_store_instance(backend: Backend) -> None:
    before = await backend.open()
    await before.add_leads(CID, [lead("L1"), lead("L2")])
    one = await before.claim_lead(CID, T0, "att-1")
    two = await before.claim_lead(CID, T0, "att-2")
    assert one is not None
    assert two is not None
    await before.save_attempt(attempt("att-1", lead_id=one.id, originated_at=T0))
    await before.save_attempt(attempt("att-2", lead_id=two.id, originated_at=T0 + 1, ended_at=T0 + 9,
                                      result=AttemptResult.BUSY))
    after = await backend.open()  # the restarted dialer
    assert await after.in_flight_attempts(CID) == [attempt("att-1", lead_id=one.id, originated_at=T0)]
    assert await after.in_flight_leads(CID) == {one.id: "att-1", two.id: "att-2"}
    assert await after.get_lead(one.id) == one
    await after.finish_lead(replace(one, state=LeadState.READY, attempts=1, next_at=T0 + 60))
    await after.save_attempt(attempt("att-1", lead_id=one.id, originated_at=T0, ended_at=T0 + 30,
                                     result=AttemptResult.FAILED))
    assert await after.in_flight_attempts(CID) == []
    assert await after.in_flight_leads(CID) == {two.id: "att-2"}


async def test_abandon_stats_count_each_ended_attempt_once_in_its_day_bucket(store: Store) -> None:
    day0 = utc_day(T0) * DAY
    await store.save_attempt(attempt("A1", originated_at=day0 + 10))
    assert await store.abandon_stats(CID, day0) == (0, 0)
    abandoned = attempt("A1", originated_at=day0 + 10, ended_at=day0 + 40, result=AttemptResult.ABANDONED)
    await store.save_attempt(abandoned)
    await store.save_attempt(replace(abandoned, disposition="callback"))  # a later update: not recounted
    await store.save_attempt(attempt("A2", originated_at=day0 + 50, ended_at=day0 + 90,
                                     result=AttemptResult.TALKED))
    await store.save_attempt(attempt("A3", originated_at=day0 + 60, ended_at=day0 + 65,
                                     result=AttemptResult.HUNG_UP_EARLY))
    await store.save_attempt(attempt("A4", originated_at=day0 + 60, ended_at=day0 + 70,
                                     result=AttemptResult.MACHINE))
    await store.save_attempt(attempt("A5", originated_at=day0 + DAY, ended_at=day0 + DAY + 5,
                                     result=AttemptResult.ABANDONED))
    assert await store.abandon_stats(CID, day0 - 30 * DAY) == (2, 4)
    assert await store.abandon_stats(CID, day0 + 3600) == (2, 4)  # the whole bucket of `since`
    assert await store.abandon_stats(CID, day0 + DAY) == (1, 1)
    assert await store.abandon_stats(CID, day0 + 2 * DAY) == (0, 0)
    assert await store.abandon_stats("other", day0) == (0, 0)


async def test_abandon_stats_use_the_day_bucket_function_given(backend: Backend) -> None:
    store = await backend.open(day_bucket=lambda t: int(t // 3600))  # hourly buckets
    for hour in range(3):
        await store.save_attempt(attempt(f"A{hour}", originated_at=T0 + hour * 3600,
                                         ended_at=T0 + hour * 3600 + 1, result=AttemptResult.ABANDONED))
    assert await store.abandon_stats(CID, T0 + 3600) == (2, 2)


# do-not-call


async def test_global_dnc_applies_to_every_campaign_and_campaign_dnc_only_to_its_own(store: Store) -> None:
    await store.dnc_add("+15550000001")
    await store.dnc_add("+15550000002", CID)
    assert await store.dnc_contains("+15550000001", CID)
    assert await store.dnc_contains("+15550000001", "other")
    assert await store.dnc_contains("+15550000002", CID)
    assert not await store.dnc_contains("+15550000002", "other")
    assert not await store.dnc_contains("+15550000003", CID)
    await store.dnc_remove("+15550000001", CID)  # not on the campaign list: the global entry stays
    assert await store.dnc_contains("+15550000001", CID)
    await store.dnc_remove("+15550000001")
    await store.dnc_remove("+15550000002", CID)
    assert not await store.dnc_contains("+15550000001", CID)
    assert not await store.dnc_contains("+15550000002", CID)


async def test_dnc_add_many_counts_only_numbers_new_to_that_list(store: Store) -> None:
    await store.dnc_add("+15550000001")
    numbers = [f"+1555000{i:04d}" for i in range(1, 2501)]
    assert await store.dnc_add_many(numbers) == 2499
    assert await store.dnc_add_many(numbers[:10], CID) == 10
    assert await store.dnc_add_many([]) == 0
    assert await store.dnc_contains("+15550002500", "other")


# agents


async def test_agents_are_saved_replaced_and_listed(store: Store) -> None:
    await store.save_agent("a2", {"name": "Zoe", "extension": "2002"})
    await store.save_agent("a1", {"name": "Al", "skills": "en,es"})
    await store.save_agent("a1", {"name": "Al"})
    await store.save_agent("a3", {})
    assert await store.get_agent("a1") == {"name": "Al"}
    assert await store.get_agent("a2") == {"name": "Zoe", "extension": "2002"}
    assert await store.get_agent("a3") == {}
    assert await store.get_agent("nope") is None
    assert await store.list_agents() == ["a1", "a2", "a3"]


async def test_ping_answers(store: Store) -> None:
    await store.ping()


# Redis only: what the in-process store cannot suffer


async def test_corrupt_lead_json_raises_store_corrupt_naming_the_key(redis_backend: RedisBackend) -> None:
    store = await redis_backend.open()
    raw = await redis_backend.client()
    await store.add_leads(CID, [lead("L1")])
    key = redis_backend.keys.lead("L1")
    await raw.set(key, '{"id": "L1", "campaign_id"')
    with pytest.raises(StoreCorrupt, match=re.escape(f"'{key}'")):
        await store.get_lead("L1")
    with pytest.raises(StoreCorrupt, match=re.escape(f"'{key}'")):
        await store.list_leads(CID)
    with pytest.raises(StoreCorrupt, match=re.escape(f"'{key}'")):
        await store.claim_lead(CID, T0, "att-1")


@pytest.mark.parametrize(("change", "reason"), [
    ({"state": "sleeping"}, "state: unknown LeadState 'sleeping'"),
    ({"priority": "high"}, "priority: expected an integer"),
    ({"colour": "red"}, "unknown field(s) colour"),
    ({"timezones": [1]}, "timezones[0]: expected a string"),
    ({"id": "L2"}, "holds lead 'L2'"),
])
async def test_a_stored_lead_that_is_not_a_lead_raises_store_corrupt(
        redis_backend: RedisBackend, change: dict[str, object], reason: str) -> None:
    store = await redis_backend.open()
    raw = await redis_backend.client()
    await store.add_leads(CID, [lead("L1")])
    key = redis_backend.keys.lead("L1")
    stored = await raw.get(key)
    assert stored is not None
    data = json.loads(stored)
    data.update(change)
    await raw.set(key, json.dumps(data))
    with pytest.raises(StoreCorrupt, match=re.escape(key)) as caught:
        await store.get_lead("L1")
    assert reason in str(caught.value)


async def test_a_record_redis_refuses_in_a_batch_is_reported_and_the_rest_are_written(
        redis_backend: RedisBackend) -> None:
    # A key of the wrong type makes the record's writes fail inside the batch script; the
    # records after it (and before it) must still be written, the refused ones named and left
    # as they were (not written in part).
    store = await redis_backend.open()
    raw = await redis_backend.client()
    await store.add_leads(CID, [lead("L1"), lead("L2"), lead("L3")])
    claimed = [x for x, _, _ in await store.claim_leads(CID, T0, ["att-1", "att-2", "att-3"])]
    await raw.set(redis_backend.keys.lead_attempts("L1"), "not a sorted set")
    assert await store.get_attempt("att-1") is None
    await raw.set(redis_backend.keys.agent("a-old"), "not a hash")  # replaced, not refused
    await raw.delete(redis_backend.keys.lead("L3"))
    await raw.hset(redis_backend.keys.lead("L3"), "not", "a string")
    done = [replace(x, state=LeadState.DONE, attempts=1, last_result=AttemptResult.ABANDONED)
            for x in claimed]
    ended = [attempt(f"att-{i}", f"L{i}", ended_at=T0 + 5, result=AttemptResult.ABANDONED)
             for i in (1, 2, 3)]
    refused = await store.save_batch(ended, {"a-old": {"state": "READY"},
                                             "a-good": {"state": "READY"}}, done)
    assert [(r.kind, r.record_id) for r in refused] == [("lead", "L3"), ("attempt", "att-1")]
    assert all("Redis refused it" in str(r) and "WRONGTYPE" in str(r) for r in refused)
    assert await store.get_attempt("att-1") is None  # nothing of it written
    assert await store.get_attempt("att-2") == ended[1]
    assert await store.get_attempt("att-3") == ended[2]
    assert await store.get_lead("L2") == done[1]
    assert await store.get_agent("a-good") == {"state": "READY"}
    assert await store.get_agent("a-old") == {"state": "READY"}
    assert await store.abandon_stats(CID, T0) == (2, 2)  # att-2 and att-3, once each


async def one_claimed(backend: RedisBackend) -> tuple[Store, aioredis.Redis, Lead]:
    """A store, a raw client on its Redis, and its one lead L1 claimed for attempt att-1."""
    store = await backend.open()
    await store.add_leads(CID, [lead("L1")])
    claimed = await store.claim_lead(CID, T0, "att-1")
    assert claimed is not None
    return store, await backend.client(), claimed


async def test_a_lead_refused_for_a_later_key_is_left_in_flight_not_lost(
        redis_backend: RedisBackend) -> None:
    # The lead's own key is fine but the campaign's level index is not: finishing it must not
    # take it out of IN_PROGRESS (a lead in no state set would never be dialed again).
    store, raw, claimed = await one_claimed(redis_backend)
    levels = redis_backend.keys.levels(CID)
    assert await raw.exists(levels) == 0  # nothing queued: the claim took the only lead
    await raw.set(levels, "not a sorted set")
    done = replace(claimed, state=LeadState.READY, attempts=1, next_at=T0 + 60)
    refused = await store.save_batch(leads=[done])
    assert [(r.kind, r.record_id) for r in refused] == [("lead", "L1")]
    assert "WRONGTYPE" in str(refused[0])
    await raw.delete(levels)
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}
    assert await store.count_leads(CID) == {"ready": 0, "in_progress": 1, "done": 0, "dnc": 0}
    assert await store.save_batch(leads=[done]) == []  # once the key is mended, it goes through
    assert await store.get_lead("L1") == done


async def test_a_lead_refused_for_its_old_prioritys_queue_is_left_in_flight_not_lost(
        redis_backend: RedisBackend) -> None:
    # A lead finished at a new priority is taken out of its old priority's queues too: one of
    # those of the wrong type refuses the lead before anything is written.
    store, raw, claimed = await one_claimed(redis_backend)
    old = redis_backend.keys.ready(CID, claimed.priority)
    await raw.delete(old)
    await raw.set(old, "not a sorted set")
    moved = replace(claimed, state=LeadState.READY, attempts=1, next_at=T0 + 60,
                    priority=claimed.priority + 1)
    refused = await store.save_batch(leads=[moved])
    assert [(r.kind, r.record_id) for r in refused] == [("lead", "L1")]
    assert old in str(refused[0])
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}
    await raw.delete(old)
    assert await store.save_batch(leads=[moved]) == []
    assert await store.get_lead("L1") == moved


async def test_a_batch_redis_has_no_memory_for_is_refused_whole_with_nothing_written(
        redis_backend: RedisBackend) -> None:
    store, raw, claimed = await one_claimed(redis_backend)
    done = replace(claimed, state=LeadState.DONE, attempts=1, last_result=AttemptResult.TALKED)
    ended = attempt("att-1", "L1", ended_at=T0 + 5, result=AttemptResult.TALKED)
    config = await raw.config_get("maxmemory*")
    await raw.config_set("maxmemory-policy", "noeviction")
    await raw.config_set("maxmemory", "1")
    try:
        with pytest.raises(StoreRefused, match="used memory > 'maxmemory'"):
            await store.save_batch([ended], {"a1": {"state": "READY"}}, [done])
    finally:
        await raw.config_set("maxmemory", str(config["maxmemory"]))
        await raw.config_set("maxmemory-policy", str(config["maxmemory-policy"]))
    assert await store.get_attempt("att-1") is None
    assert await store.get_agent("a1") is None
    assert await store.in_flight_leads(CID) == {"L1": "att-1"}
    assert await store.save_batch([ended], {"a1": {"state": "READY"}}, [done]) == []
    assert await store.get_lead("L1") == done


async def test_a_single_record_write_redis_refuses_raises_store_refused(
        redis_backend: RedisBackend) -> None:
    store = await redis_backend.open()
    raw = await redis_backend.client()
    await raw.set(redis_backend.keys.agents(), "not a set")
    with pytest.raises(StoreRefused, match="agent 'a1' not saved: Redis refused it: WRONGTYPE"):
        await store.save_agent("a1", {"state": "READY"})
    await raw.set(redis_backend.keys.lead_attempts("L1"), "not a sorted set")
    with pytest.raises(StoreRefused, match="attempt 'att-1' not saved"):
        await store.save_attempt(attempt("att-1", "L1"))
    assert await store.get_attempt("att-1") is None


async def test_a_corrupt_campaign_raises_store_corrupt_naming_the_key(redis_backend: RedisBackend) -> None:
    store = await redis_backend.open()
    raw = await redis_backend.client()
    await store.save_campaign(spec())
    key = redis_backend.keys.campaign(CID)
    await raw.set(key, encode(spec()).replace('"predictive"', '"telepathic"'))
    with pytest.raises(StoreCorrupt, match=re.escape(key) + ".*dial_mode: unknown DialMode 'telepathic'"):
        await store.get_campaign(CID)
    await raw.set(redis_backend.keys.status(CID), "dialing")
    with pytest.raises(StoreCorrupt, match=re.escape(redis_backend.keys.status(CID))):
        await store.get_campaign_status(CID)


async def test_stores_with_different_prefixes_share_nothing(
        redis_backend: RedisBackend, config: Config) -> None:
    other = RedisBackend(config.redis.url)
    try:
        mine, theirs = await redis_backend.open(), await other.open()
        await mine.save_campaign(spec())
        await mine.add_leads(CID, [lead("L1")])
        await mine.dnc_add("+15550000001")
        assert await theirs.list_campaigns() == []
        assert await theirs.get_lead("L1") is None
        assert await theirs.claim_lead(CID, T0, "att-1") is None
        assert not await theirs.dnc_contains("+15550000001", CID)
    finally:
        await other.close()


async def test_ping_of_an_unreachable_redis_raises_store_unavailable() -> None:
    client = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    try:
        with pytest.raises(StoreUnavailable, match="Redis does not answer"):
            await RedisStore(client).ping()
    finally:
        await client.aclose()


# the codec on its own


def test_codec_round_trips_every_record_exactly() -> None:
    campaign = spec()
    assert decode(CampaignSpec, "k", encode(campaign)) == campaign
    a_lead = replace(lead("L1", next_at=T0, lockout=T0 + 0.1), last_result=AttemptResult.ABANDONED,
                     callback_agent="a1", attributes=(("a", "é"), ("b", "")))
    assert decode(Lead, "k", encode(a_lead)) == a_lead
    an_attempt = attempt("A1", ended_at=T0 + 1e-6, result=AttemptResult.NO_ANSWER, cause=19)
    assert decode(Attempt, "k", encode(an_attempt)) == an_attempt


def test_codec_fills_defaults_for_members_missing_from_older_records() -> None:
    old = '{"id":"A1","campaign_id":"c","lead_id":"L1","phone":"+1","originated_at":5}'
    assert decode(Attempt, "k", old) == Attempt(id="A1", campaign_id="c", lead_id="L1", phone="+1",
                                                originated_at=5.0)
    with pytest.raises(StoreCorrupt, match=r"'k'.*phone: missing"):
        decode(Attempt, "k", '{"id":"A1","campaign_id":"c","lead_id":"L1","originated_at":5}')
    with pytest.raises(StoreCorrupt, match=r"'k'.*expected an object"):
        decode(Attempt, "k", "[]")

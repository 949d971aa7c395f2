"""The store's claim per group for matching (`scan_dialable`, `claim_listed`), one contract run
against MemoryStore and against RedisStore on the testbed's Redis (its own database, 13, and
a random key prefix removed afterwards), as tests/integration/test_store.py does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dialer.config import Config
from dialer.core.model import LeadState
from dialer.routing.matching import count_groups, parse_rules, pick_leads
from dialer.store import Store
from tests.integration.test_store import CID, T0, Backend, MemoryBackend, RedisBackend, lead

DB_URL = "redis://127.0.0.1:16379/13"
RULES = parse_rules({"required": ["language"]})


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.testbed)])
async def backend(request: pytest.FixtureRequest, config: Config) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    request.getfixturevalue("testbed")  # the real Redis (or fails: never skips)
    redis_backend = RedisBackend(DB_URL)
    try:
        yield redis_backend
    finally:
        await redis_backend.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


def lang(value: str) -> tuple[tuple[str, str], ...]:
    return (("language", value), ("name", "Ann"))


async def test_a_scan_lists_dialable_leads_in_claim_order_with_the_asked_attributes(
        store: Store) -> None:
    await store.add_leads(CID, [
        lead("a", priority=0, next_at=T0 - 100, attributes=lang("es")),
        lead("b", priority=5, next_at=T0 - 1, attributes=lang("en")),
        lead("c", priority=5, next_at=T0 - 50, attributes=(("name", "Bo"),)),
        lead("later", priority=9, next_at=T0 + 10, attributes=lang("es")),
        lead("locked", priority=9, next_at=T0 - 10, lockout=T0 + 20, attributes=lang("es")),
        lead("freed", priority=1, next_at=T0 - 30, lockout=T0 - 1, attributes=lang("ES")),
        lead("done", state=LeadState.DONE, attributes=lang("es")),
    ])
    scanned = await store.scan_dialable(CID, T0, ["language", "region"], 100)
    assert scanned == [("c", {}), ("b", {"language": "en"}), ("freed", {"language": "ES"}),
                       ("a", {"language": "es"})]
    assert await store.scan_dialable(CID, T0, ["language"], 2) == scanned[:2]
    assert await store.scan_dialable(CID, T0, [], 1) == [("c", {})]
    assert await store.scan_dialable(CID, T0, ["language"], 0) == []
    assert await store.scan_dialable("nope", T0, ["language"], 10) == []
    assert count_groups(RULES, scanned) == {(("language", ()),): 1,
                                            (("language", ("en",)),): 1,
                                            (("language", ("es",)),): 2}
    # A scan claims nothing.
    assert await store.dialable_count(CID, T0) == 4


async def test_listed_leads_are_claimed_only_while_still_dialable_and_checked_against_dnc(
        store: Store) -> None:
    await store.add_leads(CID, [lead("L1", attributes=lang("es")),
                                lead("L2", phone="+15550000002", attributes=lang("es")),
                                lead("L3", next_at=T0 + 60, attributes=lang("es")),
                                lead("L4", lockout=T0 + 60, attributes=lang("es")),
                                lead("L5", attributes=lang("en"))])
    await store.dnc_add("+15550000002", CID)
    assert await store.claim_lead(CID, T0, "att-0") is not None  # L1: in flight now
    claimed = await store.claim_listed(CID, T0, [("L1", "att-1"), ("L2", "att-2"),
                                                 ("L3", "att-3"), ("L4", "att-4"),
                                                 ("nope", "att-5")])
    assert [(x.id, aid, dnc) for x, aid, dnc in claimed] == [("L2", "att-2", True)]
    assert claimed[0][0].state is LeadState.IN_PROGRESS
    assert (await store.in_flight_leads(CID))["L2"] == "att-2"
    assert await store.claim_listed(CID, T0, [("L2", "att-6")]) == []  # never twice
    assert await store.claim_listed(CID, T0, []) == []
    assert [x.id for x in [await store.claim_lead(CID, T0, "att-7")] if x] == ["L5"]


async def test_claiming_by_group_takes_each_groups_first_leads_in_store_order(store: Store) -> None:
    await store.add_leads(CID, [lead(f"L{i}", next_at=T0 - 100 + i,
                                     attributes=lang("es" if i % 3 == 0 else "en"))
                                for i in range(9)])
    es, en = (("language", ("es",)),), (("language", ("en",)),)
    scanned = await store.scan_dialable(CID, T0, RULES.required, 100)
    picks = pick_leads(RULES, scanned, {es: 2, en: 1})
    assert picks == ["L0", "L1", "L3"]
    claimed = await store.claim_listed(CID, T0, [(p, f"att-{p}") for p in picks])
    assert [x.id for x, _, _ in claimed] == ["L0", "L1", "L3"]
    left = await store.scan_dialable(CID, T0, RULES.required, 100)
    assert count_groups(RULES, left) == {es: 1, en: 5}


async def test_concurrent_listed_claims_from_two_stores_never_hand_out_a_lead_twice(
        backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    await first.add_leads(CID, [lead(f"L{i:02d}", attributes=lang("es")) for i in range(10)])
    ids = [f"L{i:02d}" for i in range(10)]
    results = await asyncio.gather(*[
        (first if n % 2 else second).claim_listed(CID, T0, [(i, f"att-{n}-{i}") for i in ids])
        for n in range(4)])
    claimed = sorted(x.id for result in results for x, _, _ in result)
    assert claimed == ids

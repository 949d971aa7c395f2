"""The runner keeps what the predictive pacer has learnt: saved to the store every PACER_SAVE
seconds and when the campaign stops, taken up when it starts again (a restarted process, the
next day). Saved estimates that cannot be used are logged and the pacer starts afresh."""

from __future__ import annotations

import json
import logging
import math

import pytest

from dialer.ari import Ari
from dialer.config import AriConfig, Secret
from dialer.core.model import CampaignSpec, DialMode, SafeHarbor
from dialer.core.pacing import Estimator, PredictivePacer
from dialer.metrics import Metrics
from dialer.runner import PACER_SAVE, PACER_STATE_MAX_AGE, CampaignRunner
from dialer.store.memory import MemoryStore
from tests.unit.test_pacing import counted, seen, train

NOON = 1_795_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOON

    def __call__(self) -> float:
        return self.now


def runner(store: MemoryStore, clock: Clock, mode: DialMode = DialMode.PREDICTIVE) -> CampaignRunner:
    spec = CampaignSpec(id="camp", name="Camp", dial_mode=mode, trunk="PJSIP/{number}@carrier",
                        caller_id="Acme <+15550100>", safe_harbor=SafeHarbor("Acme", "+15550100"))
    ari = Ari(AriConfig("http://127.0.0.1:1", "dialer", Secret("secret"), "unit"))
    return CampaignRunner(spec, ari, store, clock, Metrics())


def estimator(r: CampaignRunner) -> Estimator:
    pacer = r.engine.pacer
    assert isinstance(pacer, PredictivePacer)
    assert isinstance(pacer.model, Estimator)
    return pacer.model


def trained(r: CampaignRunner) -> Estimator:
    pacer = r.engine.pacer
    assert isinstance(pacer, PredictivePacer)
    train(pacer)
    est = estimator(r)
    est.advance(NOON)
    return est


async def test_the_pacer_is_saved_every_minute_and_a_new_runner_starts_from_it() -> None:
    store, clock = MemoryStore(), Clock()
    first = runner(store, clock)
    learnt = trained(first)
    first._last_pacer_save = NOON  # as start() sets it
    await first._refresh(NOON + 1.0)  # too soon after the start (the last save)
    assert await store.load_pacer_state("camp") is None
    await first._refresh(NOON + PACER_SAVE)
    assert await store.load_pacer_state("camp") is not None

    clock.now = NOON + 3600.0  # an hour later, another process
    second = runner(store, clock)
    await second._load_pacer()
    restored = estimator(second)
    assert restored.restored_dials == learnt.dials == 200
    assert restored.p_live == pytest.approx(learnt.p_live * restored.restore_doubt)
    assert restored.talk_mean == pytest.approx(learnt.talk_mean)


async def test_estimates_saved_over_a_week_ago_are_not_taken_up(caplog: pytest.LogCaptureFixture) -> None:
    store, clock = MemoryStore(), Clock()
    trained(first := runner(store, clock))
    await first._save_pacer()
    clock.now = NOON + PACER_STATE_MAX_AGE + 60.0
    second = runner(store, clock)
    with caplog.at_level(logging.INFO, logger="dialer.runner"):
        await second._load_pacer()
    assert estimator(second).dials == 0
    assert "days old; it starts afresh" in caplog.text


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "Expecting property name"),
    ("[1, 2]", "not a JSON object"),
    ('{"saved_at": "noon", "pacer": {}}', "saved_at must be a time"),
    ('{"saved_at": 1795000000, "pacer": {"version": 1}}', "pacer state: dials"),
    ('{"saved_at": 1795000000}', "not a JSON object"),
    ("[" * 100_000, "recursion"),
    ('{"saved_at": 1e999, "pacer": {}}', "saved_at must be a time"),
])
async def test_saved_estimates_that_cannot_be_used_are_logged_and_the_pacer_starts_afresh(
        text: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    store, clock = MemoryStore(), Clock()
    await store.save_pacer_state("camp", text)
    r = runner(store, clock)
    with caplog.at_level(logging.WARNING, logger="dialer.runner"):
        await r._load_pacer()
    assert estimator(r).dials == 0
    assert "not usable" in caplog.text
    assert reason in caplog.text


async def test_a_store_that_fails_loses_the_save_not_the_campaign(caplog: pytest.LogCaptureFixture) -> None:
    class Down(MemoryStore):
        async def save_pacer_state(self, campaign_id: str, state: str) -> None:
            from dialer.store import StoreUnavailable
            raise StoreUnavailable("Redis does not answer")

    r = runner(Down(), Clock())
    trained(r)
    with caplog.at_level(logging.WARNING, logger="dialer.runner"):
        await r._save_pacer()
    assert "saving the pacer's estimates failed: Redis does not answer" in caplog.text


async def test_a_campaign_without_a_predictive_pacer_saves_nothing() -> None:
    store = MemoryStore()
    r = runner(store, Clock(), DialMode.POWER)
    await r._save_pacer()
    assert await store.load_pacer_state("camp") is None


async def test_the_saved_state_is_plain_json_with_when_it_was_saved() -> None:
    store, clock = MemoryStore(), Clock()
    trained(r := runner(store, clock))
    await r._save_pacer()
    text = await store.load_pacer_state("camp")
    assert text is not None
    saved = json.loads(text)
    assert saved["saved_at"] == NOON
    assert saved["pacer"]["dials"] == 200
    assert saved["pacer"]["lift"] == 1.0  # the budget's lift, kept with the estimates
    assert len(text) < 100_000


async def test_the_budgets_lift_is_saved_and_a_new_runner_starts_from_it() -> None:
    store, clock = MemoryStore(), Clock()
    trained(first := runner(store, clock))
    pacer = first.engine.pacer
    assert isinstance(pacer, PredictivePacer)
    pacer.decide(seen(0))
    pacer.decide(seen(500))  # 500 people reached in a team of 30, none abandoned
    assert pacer.lift == pytest.approx(math.exp(0.5))
    await first._save_pacer()
    second = runner(store, clock)
    await second._load_pacer()
    restored = second.engine.pacer
    assert isinstance(restored, PredictivePacer)
    assert restored.lift == pytest.approx(math.exp(0.5))


async def test_dropping_a_saved_answer_rate_that_today_does_not_fit_is_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    store, clock = MemoryStore(), Clock()
    first = runner(store, clock)
    pacer = first.engine.pacer
    assert isinstance(pacer, PredictivePacer)
    train(pacer, dials=400, answered_per_20=1)  # yesterday's list answered at 5 %
    counted(pacer)
    await first._save_pacer()
    second = runner(store, clock)
    await second._load_pacer()
    today = estimator(second)
    for i in range(40):  # today's list answers at 30 %
        today.observe_dial(12.0, i % 10 < 3, originated_at=NOON + i)
    today.advance(NOON + 200.0)
    with caplog.at_level(logging.INFO, logger="dialer.runner"):
        await second._save_pacer()
        await second._save_pacer()
    assert caplog.text.count("today's calls do not fit the saved answer rate") == 1

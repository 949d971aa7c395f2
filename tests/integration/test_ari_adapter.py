"""The ARI adapter against the real Asterisk 22 and sipp peers of the testbed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from dialer.ari import (
    Ari,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    PlaybackFinished,
    PlaybackStarted,
    StreamDisconnected,
    StreamReady,
)
from dialer.ari.events import SUBSCRIBED_EVENTS
from dialer.backoff import Backoff
from dialer.config import Config
from dialer.core.outcome import DialOutcome
from dialer.errors import AriAuthError, AriConflict, AriUnavailable, EventStreamDown
from tests.integration.conftest import TEST_APP, Watch, cleanup, new_id, wait

pytestmark = pytest.mark.testbed


async def dial(ari: Ari, endpoint: str, ring_timeout: float = 30, formats: str | None = None) -> Watch:
    channel_id = new_id()
    watch = Watch(ari, channel_id)
    await ari.originate(endpoint, channel_id=channel_id, ring_timeout=ring_timeout, formats=formats)
    return watch


async def test_originate_to_a_sipp_phone_that_answers_is_answered(ari: Ari) -> None:
    watch = await dial(ari, "PJSIP/sipp-answer")
    start = await wait(watch.answered, "StasisStart")
    assert start.channel.state == "Up"
    assert await ari.rest.hangup(watch.channel_id)
    await wait(watch.ended, "ChannelDestroyed")
    assert watch.tracker.outcome is DialOutcome.ANSWERED


async def test_originate_to_a_busy_sipp_phone_ends_busy(ari: Ari) -> None:
    watch = await dial(ari, "PJSIP/sipp-busy")
    ended = await wait(watch.ended, "ChannelDestroyed")
    assert not watch.answered.done()
    assert watch.tracker.outcome is DialOutcome.BUSY, (watch.tracker.dialstatus, ended)
    assert ended.cause == 17


async def test_ringing_without_answer_ends_no_answer_at_the_timeout(ari: Ari) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    watch = await dial(ari, "PJSIP/sipp-ring", ring_timeout=2)
    await wait(watch.ended, "ChannelDestroyed")
    assert watch.tracker.outcome is DialOutcome.NO_ANSWER, watch.tracker.dialstatus
    assert 1.5 <= loop.time() - began < 15  # the originate timeout decided, not the peer


async def test_local_customer_who_never_answers_ends_no_answer(ari: Ari) -> None:
    watch = await dial(ari, "Local/noanswer@simcust", ring_timeout=2, formats="ulaw")
    ended = await wait(watch.ended, "ChannelDestroyed")
    assert watch.tracker.outcome is DialOutcome.NO_ANSWER, (watch.tracker.dialstatus, ended)


async def test_declined_call_fails_as_rejected_with_cause_21(ari: Ari) -> None:
    watch = await dial(ari, "PJSIP/sipp-reject")
    ended = await wait(watch.ended, "ChannelDestroyed")
    assert watch.tracker.outcome is DialOutcome.REJECTED, (watch.tracker.dialstatus, ended)
    assert ended.cause == 21


async def test_unallocated_number_fails_with_cause_1(ari: Ari) -> None:
    watch = await dial(ari, "Local/unalloc@simcust", formats="ulaw")
    ended = await wait(watch.ended, "ChannelDestroyed")
    assert watch.tracker.outcome is DialOutcome.UNALLOCATED, (watch.tracker.dialstatus, ended)
    assert ended.cause == 1


async def test_two_answered_channels_bridged_are_both_in_the_bridge(ari: Ari) -> None:
    customer = await dial(ari, "PJSIP/sipp-answer")
    agent = await dial(ari, "PJSIP/agent-1001")
    await wait(customer.answered, "customer answer")
    await wait(agent.answered, "agent answer")
    bridge_id = new_id("bridge")
    await ari.rest.create_bridge(bridge_id)
    entered = [ari.expect(ChannelEnteredBridge, lambda e, c=c: e.channel.id == c  # type: ignore[misc]
                          and e.bridge.id == bridge_id)
               for c in (customer.channel_id, agent.channel_id)]
    await ari.rest.add_channel(bridge_id, customer.channel_id, agent.channel_id)
    for fut in entered:
        await wait(fut, "ChannelEnteredBridge")
    bridge = await ari.rest.get_bridge(bridge_id)
    assert set(bridge.channels) == {customer.channel_id, agent.channel_id}
    assert await ari.rest.destroy_bridge(bridge_id)
    assert not await ari.rest.destroy_bridge(bridge_id)  # already gone is success


async def test_prompt_stops_when_the_caller_presses_a_digit(ari: Ari) -> None:
    watch = await dial(ari, "Local/press1@simcust", formats="ulaw")
    await wait(watch.answered, "StasisStart")
    playback_id = new_id("pb")
    started = ari.expect(PlaybackStarted, lambda e: e.playback.id == playback_id)
    finished = ari.expect(PlaybackFinished, lambda e: e.playback.id == playback_id)
    digit = ari.expect(ChannelDtmfReceived, lambda e: e.channel.id == watch.channel_id)
    loop = asyncio.get_running_loop()
    await ari.rest.play(watch.channel_id, "sound:demo-congrats", playback_id=playback_id)
    await wait(started, "PlaybackStarted")
    began = loop.time()
    pressed = await wait(digit, "DTMF from the customer")
    assert pressed.digit == "1"
    assert await ari.rest.stop_playback(playback_id)
    await wait(finished, "PlaybackFinished")
    assert loop.time() - began < 15  # demo-congrats lasts ~30 s: it was cut short


async def test_duplicate_channel_id_of_a_live_channel_is_refused(ari: Ari) -> None:
    watch = await dial(ari, "PJSIP/sipp-answer")
    await wait(watch.answered, "StasisStart")
    with pytest.raises(AriConflict):
        await ari.originate("PJSIP/sipp-answer", channel_id=watch.channel_id)
    ids = [c.id for c in await ari.rest.list_channels()]
    assert ids.count(watch.channel_id) == 1


async def test_hanging_up_a_gone_channel_is_success(ari: Ari) -> None:
    assert await ari.rest.hangup(new_id("never-existed")) is False


async def test_after_the_event_socket_is_cut_it_reconnects_and_reconciles(
    testbed: object, config: Config
) -> None:
    # A slow backoff keeps the outage open long enough to act during it.
    cfg = replace(config.ari, app=TEST_APP)
    async with Ari(cfg, backoff=Backoff(initial=3.0, factor=1.0, maximum=3.0)) as conn:
        kept = await dial(conn, "Local/hold@simcust", formats="ulaw")
        lost = await dial(conn, "Local/hold@simcust", formats="ulaw")
        await wait(kept.answered, "kept answered")
        await wait(lost.answered, "lost answered")
        down = conn.expect(StreamDisconnected)
        back = conn.expect(StreamReady, lambda e: e.reconnect)
        conn.stream.abort_connection()
        await wait(down, "StreamDisconnected")
        assert not conn.ready
        # During the outage: REST still works, but its events are lost for good...
        await conn.rest.hangup(lost.channel_id)
        # ...and nothing may be originated (it would be an abandoned call).
        refused_id = new_id("refused")
        with pytest.raises(EventStreamDown):
            await conn.originate("PJSIP/sipp-answer", channel_id=refused_id)
        ready = await wait(back, "StreamReady after reconnect")
        present = {c.id for c in ready.channels}
        assert kept.channel_id in present
        assert lost.channel_id not in present
        assert refused_id not in present
        assert conn.ready
        # The reconnected socket delivers events again.
        await conn.rest.hangup(kept.channel_id)
        await wait(kept.ended, "ChannelDestroyed after reconnect")
        await cleanup(conn)


async def test_wrong_ari_password_is_one_clear_error(testbed: object, config: Config) -> None:
    from dialer.config import Secret

    cfg = replace(config.ari, app=TEST_APP, password=Secret("wrong"))
    with pytest.raises(AriAuthError, match="user name or password"):
        async with Ari(cfg):
            pass


async def test_asterisk_not_running_is_one_clear_error(config: Config) -> None:
    cfg = replace(config.ari, url="http://127.0.0.1:9", connect_timeout=1.0)
    with pytest.raises(AriUnavailable, match=r"cannot reach Asterisk ARI at http://127\.0\.0\.1:9"):
        async with Ari(cfg):
            pass


async def test_asterisk_sends_only_the_event_types_the_dialer_acts_on(ari: Ari) -> None:
    app = await ari.rest.request("GET", f"/applications/{ari.app}")
    assert sorted(e["type"] for e in app["events_allowed"]) == sorted(SUBSCRIBED_EVENTS)
    seen: list[object] = []
    unlisten = ari.listen(seen.append)
    try:
        # A Local customer runs dialplan (ChannelDialplan, ChannelVarset, ChannelCallerId...
        # without the filter) before it answers.
        watch = await dial(ari, "Local/answer@simcust", formats="ulaw")
        await wait(watch.answered, "StasisStart")
        assert await ari.rest.hangup(watch.channel_id)
        await wait(watch.ended, "ChannelDestroyed")
    finally:
        unlisten()
    kinds = {type(item).__name__ for item in seen}
    assert {"StasisStart", "ChannelDestroyed"} <= kinds
    assert not kinds & {"UnknownEvent", "ChannelVarset"}, kinds

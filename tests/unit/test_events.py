from __future__ import annotations

import json

import pytest

from dialer.ari import (
    AriDecodeError,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    Dial,
    PlaybackFinished,
    StasisStart,
    UnknownEvent,
    decode_event,
)

CHANNEL = {
    "id": "c1", "name": "PJSIP/sipp-answer-00000001", "state": "Up",
    "caller": {"name": "", "number": "15550100"}, "connected": {"name": "", "number": ""},
    "dialplan": {"context": "default", "exten": "s", "priority": 1},
    "creationtime": "2026-11-24T10:14:18.815+0000",
}


def msg(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, "timestamp": "2026-11-24T10:14:18.815+0000",
                       "application": "dialer", **fields})


def test_stasis_start_carries_channel_and_args() -> None:
    event = decode_event(msg("StasisStart", channel=CHANNEL, args=["amd-continue", "HUMAN"]))
    assert isinstance(event, StasisStart)
    assert event.channel.id == "c1"
    assert event.channel.state == "Up"
    assert event.channel.caller_number == "15550100"
    assert event.args == ("amd-continue", "HUMAN")
    assert event.timestamp == pytest.approx(1795515258.815)


def test_channel_destroyed_carries_the_q850_cause() -> None:
    event = decode_event(msg("ChannelDestroyed", channel=CHANNEL, cause=17, cause_txt="User busy"))
    assert isinstance(event, ChannelDestroyed)
    assert event == ChannelDestroyed(event.timestamp, event.channel, 17, "User busy")


def test_dial_status_and_peer() -> None:
    event = decode_event(msg("Dial", peer=CHANNEL, dialstatus="BUSY"))
    assert isinstance(event, Dial)
    assert event.peer.id == "c1"
    assert event.dialstatus == "BUSY"
    assert event.caller is None


def test_bridge_dtmf_and_playback_events() -> None:
    bridge = {"id": "b1", "bridge_type": "mixing", "channels": ["c1", "c2"]}
    entered = decode_event(msg("ChannelEnteredBridge", bridge=bridge, channel=CHANNEL))
    assert isinstance(entered, ChannelEnteredBridge)
    assert entered.bridge.channels == ("c1", "c2")
    dtmf = decode_event(msg("ChannelDtmfReceived", channel=CHANNEL, digit="5", duration_ms=120))
    assert isinstance(dtmf, ChannelDtmfReceived)
    assert dtmf.digit == "5"
    done = decode_event(msg("PlaybackFinished", playback={
        "id": "p1", "media_uri": "sound:x", "target_uri": "channel:c1", "state": "done"}))
    assert isinstance(done, PlaybackFinished)
    assert done.playback.channel_id == "c1"


def test_unknown_event_types_are_kept_by_name() -> None:
    event = decode_event(msg("ChannelTalkingStarted", channel=CHANNEL))
    assert isinstance(event, UnknownEvent)
    assert event.type == "ChannelTalkingStarted"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"timestamp": "x"}), "'type'"),
        (msg("StasisStart", args=[]), "StasisStart: field 'channel'"),
        (msg("StasisStart", channel={"name": "no id"}), "field 'id'"),
        (msg("ChannelEnteredBridge", channel=CHANNEL, bridge={"id": "b", "channels": "c1"}),
         "not a list of ids"),
    ],
)
def test_malformed_events_raise_a_decode_error_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(AriDecodeError, match=reason):
        decode_event(raw)


def test_an_unparsable_timestamp_does_not_lose_the_event() -> None:
    event = decode_event(json.dumps({"type": "StasisEnd", "timestamp": "yesterday",
                                     "channel": CHANNEL}))
    assert event.timestamp == 0.0

"""ARI events as typed, frozen dataclasses; `decode_event` turns one WebSocket message into one.

Only this module reads event JSON. Event types we do not model become `UnknownEvent` (kept, so
the caller can count them); a message we cannot decode raises `AriDecodeError` and the stream
logs and drops it: one bad message never stops the reader.

Facts from TESTBED.md that shape consumers, not this module: events often arrive before the
REST response that caused them; order across event types is not stable; the outcome of an
originate is the last final `Dial` status, else the `ChannelDestroyed` cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dialer.ari.models import (
    AriDecodeError,
    Bridge,
    Channel,
    LiveRecording,
    Playback,
    opt_int,
    opt_str,
    parse_time,
    req_obj,
    req_str,
)


@dataclass(frozen=True, slots=True)
class StasisStart:
    timestamp: float
    channel: Channel
    args: tuple[str, ...]
    replace_channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class StasisEnd:
    timestamp: float
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelStateChange:
    timestamp: float
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelDestroyed:
    timestamp: float
    channel: Channel
    cause: int  # Q.850: 16 normal, 17 busy, 19 no answer, 21 rejected, 1 unallocated, 0 none
    cause_txt: str


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest:
    timestamp: float
    channel: Channel
    cause: int | None
    soft: bool  # soft requests carry an internal code, not Q.850


@dataclass(frozen=True, slots=True)
class Dial:
    timestamp: float
    peer: Channel
    caller: Channel | None
    dialstatus: str  # "" while in progress; ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, ...


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived:
    timestamp: float
    channel: Channel
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class ChannelEnteredBridge:
    timestamp: float
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelLeftBridge:
    timestamp: float
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True, slots=True)
class BridgeDestroyed:
    timestamp: float
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    timestamp: float
    playback: Playback


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    timestamp: float
    playback: Playback


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    timestamp: float
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    timestamp: float
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class ChannelVarset:
    timestamp: float
    channel_id: str | None
    variable: str
    value: str


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An ARI event type this adapter does not model (yet)."""

    timestamp: float
    type: str


AriEvent = (
    StasisStart | StasisEnd | ChannelStateChange | ChannelDestroyed | ChannelHangupRequest
    | Dial | ChannelDtmfReceived | ChannelEnteredBridge | ChannelLeftBridge | BridgeDestroyed
    | PlaybackStarted | PlaybackFinished | RecordingFinished | RecordingFailed | ChannelVarset
    | UnknownEvent
)


def _channel(obj: dict[str, Any], key: str = "channel") -> Channel:
    return Channel.decode(req_obj(obj, key))


def _stasis_start(o: dict[str, Any], ts: float) -> AriEvent:
    args = o.get("args", [])
    if not isinstance(args, list):
        raise AriDecodeError("field 'args' is not a list")
    replace = o.get("replace_channel")
    return StasisStart(ts, _channel(o), tuple(str(a) for a in args),
                       Channel.decode(replace).id if isinstance(replace, dict) else None)


def _hangup_request(o: dict[str, Any], ts: float) -> AriEvent:
    cause = o.get("cause")
    return ChannelHangupRequest(ts, _channel(o), cause if isinstance(cause, int) else None,
                                o.get("soft") is True)


def _dial(o: dict[str, Any], ts: float) -> AriEvent:
    caller = o.get("caller")
    return Dial(ts, _channel(o, "peer"), Channel.decode(caller) if isinstance(caller, dict) else None,
                opt_str(o, "dialstatus"))


def _varset(o: dict[str, Any], ts: float) -> AriEvent:
    channel = o.get("channel")
    return ChannelVarset(ts, Channel.decode(channel).id if isinstance(channel, dict) else None,
                         req_str(o, "variable"), opt_str(o, "value"))


_DECODERS: dict[str, Callable[[dict[str, Any], float], AriEvent]] = {
    "StasisStart": _stasis_start,
    "StasisEnd": lambda o, ts: StasisEnd(ts, _channel(o)),
    "ChannelStateChange": lambda o, ts: ChannelStateChange(ts, _channel(o)),
    "ChannelDestroyed": lambda o, ts: ChannelDestroyed(ts, _channel(o), opt_int(o, "cause"),
                                                       opt_str(o, "cause_txt")),
    "ChannelHangupRequest": _hangup_request,
    "Dial": _dial,
    "ChannelDtmfReceived": lambda o, ts: ChannelDtmfReceived(ts, _channel(o), req_str(o, "digit"),
                                                             opt_int(o, "duration_ms")),
    "ChannelEnteredBridge": lambda o, ts: ChannelEnteredBridge(
        ts, Bridge.decode(req_obj(o, "bridge")), _channel(o)),
    "ChannelLeftBridge": lambda o, ts: ChannelLeftBridge(
        ts, Bridge.decode(req_obj(o, "bridge")), _channel(o)),
    "BridgeDestroyed": lambda o, ts: BridgeDestroyed(ts, Bridge.decode(req_obj(o, "bridge"))),
    "PlaybackStarted": lambda o, ts: PlaybackStarted(ts, Playback.decode(req_obj(o, "playback"))),
    "PlaybackFinished": lambda o, ts: PlaybackFinished(ts, Playback.decode(req_obj(o, "playback"))),
    "RecordingFinished": lambda o, ts: RecordingFinished(
        ts, LiveRecording.decode(req_obj(o, "recording"))),
    "RecordingFailed": lambda o, ts: RecordingFailed(
        ts, LiveRecording.decode(req_obj(o, "recording"))),
    "ChannelVarset": _varset,
}


# The event types Asterisk is asked to send (`Ari` sets the application's event filter after
# every connection): those the dialer acts on. Everything else ARI would send costs a JSON
# message per event and decoding for nothing: on the testbed 17 of 27 events per outbound call
# are ChannelVarset, ChannelDialplan, ChannelConnectedLine and ChannelCallerId.
# ChannelVarset is decoded (for debugging tools) but not asked for.
SUBSCRIBED_EVENTS: tuple[str, ...] = tuple(t for t in _DECODERS if t != "ChannelVarset")


def decode_event(message: str | bytes) -> AriEvent:
    """Decode one WebSocket message. Raises `AriDecodeError` with the reason."""
    try:
        obj = json.loads(message)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AriDecodeError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise AriDecodeError("event is not a JSON object")
    event_type = req_str(obj, "type")
    ts = parse_time(opt_str(obj, "timestamp"))
    decoder = _DECODERS.get(event_type)
    if decoder is None:
        return UnknownEvent(ts, event_type)
    try:
        return decoder(obj, ts)
    except AriDecodeError as exc:
        raise AriDecodeError(f"{event_type}: {exc}") from None

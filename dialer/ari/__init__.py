"""The ARI adapter: the only code that speaks ARI's HTTP and JSON.

    Ari            REST + event stream, with reconnect, snapshot and the originate guard
    AriClient      typed REST calls (keep-alive HTTP/1.1, dialer.ari.http)
    EventStream    the event WebSocket (websockets): decodes and hands each event on
    events         typed event dataclasses
    models         typed resource snapshots (Channel, Bridge, Playback)

Why our own adapter: the design card's `ari` (ari-py) does not import on Python 3 (its
swaggerpy dependency is Python 2), and the other clients measured on this Asterisk were slower
or misbehaved when the WebSocket dropped (TESTBED.md; README "Why our own ARI adapter").
"""

from dialer.ari.client import STATUS_ERRORS, AriClient
from dialer.ari.connection import Ari, AriItem, StreamReady
from dialer.ari.events import (
    AriEvent,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelVarset,
    Dial,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    decode_event,
)
from dialer.ari.models import AriDecodeError, Bridge, Channel, LiveRecording, Playback
from dialer.ari.stream import EventStream, StreamConnected, StreamDisconnected

__all__ = [
    "STATUS_ERRORS", "Ari", "AriClient", "AriDecodeError", "AriEvent", "AriItem", "Bridge",
    "BridgeDestroyed", "Channel", "ChannelDestroyed", "ChannelDtmfReceived",
    "ChannelEnteredBridge", "ChannelHangupRequest", "ChannelLeftBridge", "ChannelStateChange",
    "ChannelVarset", "Dial", "EventStream", "LiveRecording", "Playback", "PlaybackFinished",
    "PlaybackStarted", "RecordingFailed", "RecordingFinished", "StasisEnd", "StasisStart",
    "StreamConnected", "StreamDisconnected", "StreamReady", "UnknownEvent", "decode_event",
]

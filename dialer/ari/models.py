"""Typed snapshots of ARI resources (channels, bridges, playbacks), decoded from ARI JSON.

Decoding is strict about what we rely on (ids, states) and lenient about the rest: a missing
optional field becomes an empty value, never a crash. `AriDecodeError` says what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


class AriDecodeError(ValueError):
    """ARI sent JSON we cannot use (a required field missing or of the wrong type)."""


def req_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise AriDecodeError(f"field '{key}' missing or not a string")
    return value


def opt_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def opt_int(obj: dict[str, Any], key: str, default: int = 0) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def req_obj(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise AriDecodeError(f"field '{key}' missing or not an object")
    return value


def parse_time(text: str) -> float:
    """ARI timestamps ('2026-11-24T10:14:18.815+0000') as POSIX seconds; 0.0 if unparsable."""
    try:
        # fromisoformat is ~60x faster than strptime; this runs for every event.
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str  # ARI's channel state: Down, Ring, Ringing, Up, Busy, ...
    caller_number: str = ""
    connected_number: str = ""
    context: str = ""
    extension: str = ""
    created: str = ""

    @classmethod
    def decode(cls, obj: dict[str, Any]) -> Channel:
        caller = obj.get("caller") if isinstance(obj.get("caller"), dict) else {}
        connected = obj.get("connected") if isinstance(obj.get("connected"), dict) else {}
        dialplan = obj.get("dialplan") if isinstance(obj.get("dialplan"), dict) else {}
        assert isinstance(caller, dict)
        assert isinstance(connected, dict)
        assert isinstance(dialplan, dict)
        return cls(
            id=req_str(obj, "id"),
            name=opt_str(obj, "name"),
            state=opt_str(obj, "state"),
            caller_number=opt_str(caller, "number"),
            connected_number=opt_str(connected, "number"),
            context=opt_str(dialplan, "context"),
            extension=opt_str(dialplan, "exten"),
            created=opt_str(obj, "creationtime"),
        )


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    bridge_type: str
    channels: tuple[str, ...]
    name: str = ""

    @classmethod
    def decode(cls, obj: dict[str, Any]) -> Bridge:
        channels = obj.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise AriDecodeError("field 'channels' is not a list of ids")
        return cls(
            id=req_str(obj, "id"),
            bridge_type=opt_str(obj, "bridge_type"),
            channels=tuple(channels),
            name=opt_str(obj, "name"),
        )


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    media_uri: str
    target_uri: str
    state: str

    @classmethod
    def decode(cls, obj: dict[str, Any]) -> Playback:
        return cls(
            id=req_str(obj, "id"),
            media_uri=opt_str(obj, "media_uri"),
            target_uri=opt_str(obj, "target_uri"),
            state=opt_str(obj, "state"),
        )

    @property
    def channel_id(self) -> str | None:
        prefix = "channel:"
        return self.target_uri[len(prefix):] if self.target_uri.startswith(prefix) else None


@dataclass(frozen=True, slots=True)
class LiveRecording:
    name: str
    state: str
    target_uri: str
    format: str
    duration: int
    cause: str

    @classmethod
    def decode(cls, obj: dict[str, Any]) -> LiveRecording:
        return cls(
            name=req_str(obj, "name"),
            state=opt_str(obj, "state"),
            target_uri=opt_str(obj, "target_uri"),
            format=opt_str(obj, "format"),
            duration=opt_int(obj, "duration"),
            cause=opt_str(obj, "cause"),
        )


@dataclass(frozen=True, slots=True)
class AsteriskInfo:
    version: str
    entity_id: str

    @classmethod
    def decode(cls, obj: dict[str, Any]) -> AsteriskInfo:
        system = obj.get("system") if isinstance(obj.get("system"), dict) else {}
        assert isinstance(system, dict)
        return cls(version=opt_str(system, "version"), entity_id=opt_str(system, "entity_id"))

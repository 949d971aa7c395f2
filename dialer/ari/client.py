"""ARI REST client: typed methods, a timeout on every call, one status table.

Requests go over `dialer.ari.http.HttpPool` (keep-alive HTTP/1.1 connections to the Asterisk).

Only the calls the dialer uses are here; each returns a typed model, never ARI JSON. A few
rules observed on Asterisk 22 (TESTBED.md) are built in:

* hanging up or destroying something that is already gone (404) is success: the goal is met;
* client-chosen ids (`channel_id`, `bridge_id`, `playback_id`) are always passed, so a
  `StasisStart` maps to a known call without a race; a duplicate of a live id raises
  `AriConflict` (409);
* Local-channel originates must pass `formats` (without it they negotiate 192 kHz audio).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from dialer.ari.http import HttpError, HttpPool
from dialer.ari.models import AriDecodeError, AsteriskInfo, Bridge, Channel, Playback
from dialer.config import AriConfig
from dialer.errors import (
    AriAuthError,
    AriBadRequest,
    AriConflict,
    AriForbidden,
    AriNotFound,
    AriRequestError,
    AriServerError,
    AriUnavailable,
    AriUnprocessable,
)

_Model = TypeVar("_Model", Channel, Bridge, Playback)

#: The one table from ARI HTTP status to exception class.
STATUS_ERRORS: dict[int, type[AriRequestError]] = {
    400: AriBadRequest,
    401: AriAuthError,
    403: AriForbidden,
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def error_for(method: str, path: str, status: int, body: bytes) -> AriRequestError:
    cls = STATUS_ERRORS.get(status) or (AriServerError if status >= 500 else AriRequestError)
    try:
        decoded = json.loads(body) if body else {}
        message = str(decoded.get("message", "")) if isinstance(decoded, dict) else ""
    except ValueError:
        message = body[:200].decode(errors="replace")
    if status == 401:
        message = "ARI rejected the user name or password (check ari.username/ari.password)"
    return cls(method, path, status, message or f"HTTP {status}")


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _id(value: str) -> str:
    return quote(value, safe="")


class AriClient:
    """Keep-alive connections to one Asterisk. Use as `async with AriClient(cfg) as rest:`."""

    def __init__(self, config: AriConfig) -> None:
        self.config = config
        self._base = f"{config.url}/ari"
        token = base64.b64encode(f"{config.username}:{config.password.value}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._pool: HttpPool | None = None

    async def __aenter__(self) -> AriClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._pool is None:
            self._pool = HttpPool(self._base, self._headers, limit=self.config.max_connections,
                                  connect_timeout=self.config.connect_timeout)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> Any:
        """One REST call; returns decoded JSON (None for 204). Raises from `STATUS_ERRORS`."""
        if self._pool is None:
            raise RuntimeError("AriClient used before start()")
        target = path
        if params:
            query = {k: _param(v) for k, v in params.items() if v is not None}
            if query:
                target += "?" + urlencode(query, quote_via=quote)
        payload = None if body is None else json.dumps(body).encode()
        try:
            async with asyncio.timeout(self.config.request_timeout):
                status, data = await self._pool.request(method, target, payload)
        except HttpError as exc:
            raise AriUnavailable(f"cannot reach Asterisk ARI at {self.config.url}: {exc}") from None
        except TimeoutError:
            raise AriUnavailable(
                f"ARI {method} {path} timed out after {self.config.request_timeout:g} s"
            ) from None
        if status >= 300:
            raise error_for(method, path, status, data)
        try:
            return json.loads(data) if data else None
        except ValueError as exc:  # JSON
            raise AriUnavailable(f"ARI {method} {path}: undecodable response: {exc}") from None

    # ----------------------------------------------------------------- asterisk
    async def info(self) -> AsteriskInfo:
        return AsteriskInfo.decode(await self.request("GET", "/asterisk/info"))

    # ----------------------------------------------------------------- channels
    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app: str,
        app_args: Sequence[str] = (),
        ring_timeout: float = 30,
        caller_id: str | None = None,
        formats: str | None = None,
        variables: Mapping[str, str] | None = None,
        other_channel_id: str | None = None,
    ) -> Channel:
        """Place a call into Stasis `app`. `ring_timeout` is in seconds (ARI's `timeout`)."""
        if endpoint.startswith("Local/") and not formats:
            raise ValueError("Local channels need formats= (e.g. 'ulaw'): see TESTBED.md")
        params: dict[str, object | None] = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": ",".join(app_args) if app_args else None,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "timeout": max(1, round(ring_timeout)),
            "callerId": caller_id,
            "formats": formats,
        }
        body = {"variables": dict(variables)} if variables else None
        return self._channel(await self.request("POST", "/channels", params, body))

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        """Hang up. Returns False if the channel was already gone (which is success)."""
        try:
            await self.request("DELETE", f"/channels/{_id(channel_id)}", {"reason": reason})
        except AriNotFound:
            return False
        return True

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_id(channel_id)}/answer")

    async def get_channel(self, channel_id: str) -> Channel:
        return self._channel(await self.request("GET", f"/channels/{_id(channel_id)}"))

    async def list_channels(self) -> list[Channel]:
        data = await self.request("GET", "/channels")
        return [self._channel(c) for c in self._list(data)]

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        await self.request(
            "POST", f"/channels/{_id(channel_id)}/continue",
            {"context": context, "extension": extension, "priority": priority},
        )

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request(
            "POST", f"/channels/{_id(channel_id)}/variable", {"variable": name, "value": value}
        )

    async def get_variable(self, channel_id: str, name: str) -> str:
        data = await self.request("GET", f"/channels/{_id(channel_id)}/variable", {"variable": name})
        return str(data.get("value", "")) if isinstance(data, dict) else ""

    async def send_dtmf(self, channel_id: str, digits: str) -> None:
        await self.request("POST", f"/channels/{_id(channel_id)}/dtmf", {"dtmf": digits})

    async def snoop(
        self, channel_id: str, *, snoop_id: str, app: str, spy: str = "none",
        whisper: str = "none", app_args: Sequence[str] = (),
    ) -> Channel:
        """A snoop channel on `channel_id`, put into Stasis `app`: `spy` is the audio it hears
        of the snooped channel (in: what the channel receives from its far end, out: what is
        sent to it, both), `whisper` where its own audio goes (out: to the channel's far end
        only). Each is none, in, out or both."""
        for name, value in (("spy", spy), ("whisper", whisper)):
            if value not in ("none", "in", "out", "both"):
                raise ValueError(f"snoop {name} must be none, in, out or both, not {value!r}")
        data = await self.request(
            "POST", f"/channels/{_id(channel_id)}/snoop/{_id(snoop_id)}",
            {"spy": spy, "whisper": whisper, "app": app,
             "appArgs": ",".join(app_args) if app_args else None},
        )
        return self._channel(data)

    # --------------------------------------------------------------- playbacks
    async def play(
        self, channel_id: str, media: str | Sequence[str], *, playback_id: str, lang: str | None = None
    ) -> Playback:
        media_list = [media] if isinstance(media, str) else list(media)
        data = await self.request(
            "POST", f"/channels/{_id(channel_id)}/play/{_id(playback_id)}",
            {"media": ",".join(media_list), "lang": lang},
        )
        return self._decode(Playback, data)

    async def stop_playback(self, playback_id: str) -> bool:
        """Stop a playback. False if it had already finished (which is success)."""
        try:
            await self.request("DELETE", f"/playbacks/{_id(playback_id)}")
        except AriNotFound:
            return False
        return True

    async def record(
        self, channel_id: str, name: str, *, fmt: str = "wav", max_duration: int = 0,
        max_silence: int = 0, beep: bool = False, terminate_on: str = "none",
        if_exists: str = "fail",
    ) -> None:
        await self.request(
            "POST", f"/channels/{_id(channel_id)}/record",
            {"name": name, "format": fmt, "maxDurationSeconds": max_duration,
             "maxSilenceSeconds": max_silence, "beep": beep, "terminateOn": terminate_on,
             "ifExists": if_exists},
        )

    async def record_bridge(self, bridge_id: str, name: str, *, fmt: str = "wav") -> None:
        await self.request(
            "POST", f"/bridges/{_id(bridge_id)}/record",
            {"name": name, "format": fmt, "ifExists": "overwrite", "beep": False,
             "terminateOn": "none"},
        )

    async def stop_recording(self, name: str) -> bool:
        """Stop a live recording (the file is kept). False if it had already stopped."""
        try:
            await self.request("POST", f"/recordings/live/{_id(name)}/stop")
        except AriNotFound:
            return False
        return True

    # ------------------------------------------------------------------ bridges
    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing", name: str = "") -> Bridge:
        data = await self.request(
            "POST", f"/bridges/{_id(bridge_id)}", {"type": bridge_type, "name": name or None}
        )
        return self._decode(Bridge, data)

    async def add_channel(self, bridge_id: str, *channel_ids: str) -> None:
        await self.request(
            "POST", f"/bridges/{_id(bridge_id)}/addChannel", {"channel": ",".join(channel_ids)}
        )

    async def start_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        """Music on hold to every channel in the bridge (a holding bridge's waiting callers)."""
        await self.request("POST", f"/bridges/{_id(bridge_id)}/moh", {"mohClass": moh_class})

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request(
            "POST", f"/bridges/{_id(bridge_id)}/removeChannel", {"channel": channel_id}
        )

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return self._decode(Bridge, await self.request("GET", f"/bridges/{_id(bridge_id)}"))

    async def list_bridges(self) -> list[Bridge]:
        return [self._decode(Bridge, b) for b in self._list(await self.request("GET", "/bridges"))]

    async def destroy_bridge(self, bridge_id: str) -> bool:
        """Destroy a bridge. False if it was already gone (which is success).

        A bridge just destroyed is answered for a moment with 409 "Bridge not in Stasis
        application" rather than 404 while Asterisk tears it down: that is gone too."""
        try:
            await self.request("DELETE", f"/bridges/{_id(bridge_id)}")
        except AriNotFound:
            return False
        except AriConflict as exc:
            if "not in Stasis" in str(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------- applications
    async def filter_events(self, app: str, allowed: Sequence[str]) -> None:
        """Ask Asterisk to send `app` only these event types (an empty list: all of them)."""
        await self.request("PUT", f"/applications/{_id(app)}/eventFilter",
                           body={"allowed": [{"type": t} for t in allowed], "disallowed": []})

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _list(data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, list):
            raise AriUnavailable("ARI returned something other than a list")
        return [item for item in data if isinstance(item, dict)]

    @staticmethod
    def _channel(data: Any) -> Channel:
        return AriClient._decode(Channel, data)

    @staticmethod
    def _decode(cls: type[_Model], data: Any) -> _Model:
        if not isinstance(data, dict):
            raise AriUnavailable(f"ARI returned no {cls.__name__} object")
        try:
            return cls.decode(data)
        except AriDecodeError as exc:
            raise AriUnavailable(f"ARI returned a malformed {cls.__name__}: {exc}") from None

"""The IVR on ARI: one asyncio task per call drives a pure `FlowRun` (dialer/ivr/engine.py).

Theory of operation. `IvrService` listens to the ARI event stream. A channel that enters the
Stasis app with the arguments ``inbound,<dialled number>`` (asterisk_conf extensions.conf,
context from-carrier) gets the flow that `_routes.yaml` names for that number in the flow set
that is live at that moment; the call keeps that snapshot (`FlowLibrary.pin`) until it ends,
whatever reloads happen meanwhile. Agentless campaigns start a flow on an answered outbound
channel with `start_call`.

Each call is a `CallSession`: a queue of engine events and one task that feeds them to the
run and executes the commands it returns, in order. ARI events are translated here and only
here: DTMF -> `Digit`, PlaybackFinished -> `PromptFinished`, StasisEnd/ChannelDestroyed/
ChannelHangupRequest -> `Hangup`, RecordingFinished -> `RecordingDone`/`RecordingEmpty`.
Timers are `loop.call_later` handles that post `TimerFired`; an HTTP node is a task with its
own timeout that posts `HttpResult`/`HttpFailed`. Media: recordings are played from the
snapshot's pinned copy, `tts:` text is rendered by `TtsCache` (offline espeak-ng, cached by
content hash) into the media directory Asterisk reads, and both are played as ``sound:`` URIs.

What the flow asks of the rest of the dialer (agents, leads, DNC, call records) goes through
`IvrHooks`, so this module stays about ARI and the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from dialer.ari import Ari
from dialer.ari.connection import AriItem
from dialer.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
)
from dialer.core.model import Lead
from dialer.errors import AriError, AriNotFound, DialerError
from dialer.ivr import engine as e
from dialer.ivr.library import FlowLibrary, Snapshot
from dialer.ivr.tts import TtsCache, TtsError
from dialer.metrics import Metrics

log = logging.getLogger(__name__)

MAX_SILENCE_FILE = 10  # Asterisk's core sounds have silence/1 .. silence/10
RECORDING_PREFIX = "ivr-vm"


@dataclass(frozen=True, slots=True)
class IvrCallRecord:
    """What is kept of an IVR call when it ends (the IVR's CDR)."""

    call_id: str
    flow: str
    flow_version: str
    caller: str
    dnis: str
    direction: str
    started_at: float
    ended_at: float
    outcome: str
    disposition: str
    path: tuple[str, ...]
    vars: Mapping[str, str]  # as traced: PII masked
    recordings: tuple[str, ...]
    agent: str | None = None


class IvrHooks(Protocol):
    """What a flow needs from the rest of the dialer."""

    async def enqueue(self, session: CallSession, command: e.Enqueue) -> None:
        """Put the caller in the queue; post `QueueStatus`/`QueueResult` to the session later."""

    async def leave_queue(self, session: CallSession, command: e.LeaveQueue) -> None: ...

    async def create_callback(self, session: CallSession,
                              command: e.CreateCallbackLead) -> str:
        """Create the callback lead; return its id. Raise DialerError with the reason."""

    async def add_dnc(self, session: CallSession, number: str, reason: str) -> None: ...

    async def safe_harbor(self, session: CallSession, command: e.SafeHarbor) -> None: ...

    async def call_ended(self, record: IvrCallRecord) -> None: ...


class NoAgents:
    """Hooks for an IVR with no agent side: queues report no agents, callbacks fail."""

    async def enqueue(self, session: CallSession, command: e.Enqueue) -> None:
        session.post(e.QueueResult("no_agents"))

    async def leave_queue(self, session: CallSession, command: e.LeaveQueue) -> None:
        return None

    async def create_callback(self, session: CallSession,
                              command: e.CreateCallbackLead) -> str:
        raise DialerError("no campaign takes callbacks on this server")

    async def add_dnc(self, session: CallSession, number: str, reason: str) -> None:
        log.warning("IVR %s: opt-out of %s not stored (no DNC list on this server)",
                    session.call_id, number)

    async def safe_harbor(self, session: CallSession, command: e.SafeHarbor) -> None:
        return None

    async def call_ended(self, record: IvrCallRecord) -> None:
        return None


def _aware(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def silence_media(seconds: float) -> list[str]:
    """A pause as Asterisk core-sound silence files (whole seconds, at least one)."""
    left = max(1, round(seconds))
    out = []
    while left > 0:
        step = min(MAX_SILENCE_FILE, left)
        out.append(f"sound:silence/{step}")
        left -= step
    return out


@dataclass(slots=True)
class CallSession:
    """One call running one flow on one pinned snapshot."""

    service: IvrService
    channel_id: str
    snapshot: Snapshot
    run: e.FlowRun
    info: e.CallInfo
    started_at: float
    events: asyncio.Queue[e.Event] = field(default_factory=asyncio.Queue)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    http: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    playbacks: set[str] = field(default_factory=set)
    recordings: dict[str, str] = field(default_factory=dict)  # ARI name -> engine recording id
    recorded: list[str] = field(default_factory=list)
    transfer_channel: str | None = None
    bridge_id: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    gone: bool = False
    agent: str | None = None
    ended: e.Ended | None = None

    @property
    def call_id(self) -> str:
        return self.info.call_id

    def post(self, event: e.Event) -> None:
        self.events.put_nowait(event)

    # ------------------------------------------------------------------ the task
    async def main(self) -> None:
        svc = self.service
        try:
            await self._execute(self.run.start(svc.now()))
            while self.run.ended is None:
                event = await self.events.get()
                if isinstance(event, e.Hangup):
                    self.gone = True
                await self._execute(self.run.handle(event, svc.now()))
        except asyncio.CancelledError:
            if self.run.ended is None and not self.gone:
                await self._hangup_quietly()
            raise
        except Exception:
            log.exception("IVR call %s: the flow driver failed; hanging up", self.call_id)
            await self._hangup_quietly()
        finally:
            self._cleanup()
            await svc.finished(self)

    async def _hangup_quietly(self) -> None:
        try:
            await self.service.ari.rest.hangup(self.channel_id)
        except AriError as exc:
            log.warning("IVR call %s: hang-up failed: %s", self.call_id, exc)

    def _cleanup(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for task in self.http.values():
            task.cancel()
        self.http.clear()

    # ------------------------------------------------------------------ commands
    async def _execute(self, commands: list[e.Command]) -> None:
        for command in commands:
            try:
                await self._one(command)
            except AriNotFound:
                # The caller's channel (or the playback) is gone: the hang-up event follows.
                log.debug("IVR call %s: %s on a gone channel", self.call_id,
                          type(command).__name__)
            except AriError as exc:
                log.warning("IVR call %s: %s failed: %s", self.call_id, type(command).__name__,
                            exc)
                self._fail(command, str(exc))

    def _fail(self, command: e.Command, why: str) -> None:
        """A command Asterisk refused: tell the run what it would otherwise wait for."""
        match command:
            case e.Play(playback_id=pid):
                self.service.metrics.ivr_flow_problems.labels(self.run.main_flow.id).inc()
                self.post(e.PromptFinished(pid))
            case e.Record(recording_id=rid):
                self.post(e.RecordingEmpty(rid))
            case e.Transfer():
                self.post(e.TransferResult("failed"))
            case _:
                pass

    async def _one(self, c: e.Command) -> None:
        svc = self.service
        rest = svc.ari.rest
        match c:
            case e.EnterNode():
                log.debug("IVR call %s: %s.%s via %s", self.call_id, c.flow, c.node, c.via)
            case e.Play():
                media = await self._media(c)
                if self.gone:
                    return
                if not media:
                    self.post(e.PromptFinished(c.playback_id))
                    return
                self.playbacks.add(c.playback_id)
                svc.by_playback[c.playback_id] = self
                await rest.play(self.channel_id, media, playback_id=c.playback_id,
                                lang=c.language)
            case e.StopPlayback():
                await rest.stop_playback(c.playback_id)
            case e.StartTimer():
                old = self.timers.pop(c.key, None)
                if old is not None:
                    old.cancel()
                loop = asyncio.get_running_loop()
                self.timers[c.key] = loop.call_later(
                    c.seconds, self.post, e.TimerFired(c.key))
            case e.CancelTimer():
                handle = self.timers.pop(c.key, None)
                if handle is not None:
                    handle.cancel()
            case e.HttpRequest():
                self.http[c.request_id] = asyncio.create_task(self._http(c))
            case e.CancelHttp():
                task = self.http.pop(c.request_id, None)
                if task is not None:
                    task.cancel()
            case e.Enqueue():
                await svc.hooks.enqueue(self, c)
            case e.LeaveQueue():
                await svc.hooks.leave_queue(self, c)
            case e.Transfer():
                await self._transfer(c)
            case e.CancelTransfer():
                if self.transfer_channel is not None:
                    await rest.hangup(self.transfer_channel)
            case e.Record():
                name = f"{RECORDING_PREFIX}-{c.mailbox}-{c.recording_id}"  # ids hold the call id
                name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
                self.recordings[name] = c.recording_id
                svc.by_recording[name] = self
                await rest.record(
                    self.channel_id, name, fmt="wav", max_duration=max(1, round(c.max_length)),
                    max_silence=round(c.silence_timeout) if c.silence_timeout else 0,
                    beep=c.beep, terminate_on=c.finish_on_key or "none", if_exists="overwrite")
            case e.StopRecording():
                for name, rid in self.recordings.items():
                    if rid == c.recording_id:
                        await rest.stop_recording(name)
            case e.CreateCallbackLead():
                try:
                    lead_id = await svc.hooks.create_callback(self, c)
                except DialerError as exc:
                    self.post(e.CallbackFailed(str(exc)))
                else:
                    self.post(e.CallbackCreated(lead_id))
            case e.SafeHarbor():
                await svc.hooks.safe_harbor(self, c)
            case e.AddDnc():
                await svc.hooks.add_dnc(self, c.number, c.reason)
            case e.SetVar():
                self.vars[c.name] = c.shown
                log.debug("IVR call %s: %s = %s", self.call_id, c.name, c.shown)
            case e.Note():
                log.debug("IVR call %s: %s: %s", self.call_id, c.node, c.text)
            case e.LogProblem():
                svc.metrics.ivr_flow_problems.labels(self.run.main_flow.id).inc()
                log.warning("IVR call %s: %s:%s:%s: %s (node %s)", self.call_id, c.pos.file,
                            c.pos.line, c.pos.col, c.message, c.node)
            case e.HangupCall():
                if not self.gone:
                    await rest.hangup(self.channel_id, _hangup_reason(c.cause))
            case e.Ended():
                self.ended = c
            case _:
                log.warning("IVR call %s: unhandled command %r", self.call_id, c)

    # ------------------------------------------------------------------ media
    async def _media(self, play: e.Play) -> list[str]:
        out: list[str] = []
        for item in play.items:
            match item:
                case e.AudioFile():
                    base = self.service.library.prompt_dir(self.snapshot.version)
                    local = (base / item.path).with_suffix("")
                    out.append("sound:" + self.service.asterisk_path(local))
                case e.Speech():
                    uri = await self.service.speak(item, self.run.main_flow.id)
                    if uri is not None:
                        out.append(uri)
                case e.SayDigits():
                    digits = "".join(ch for ch in item.digits if ch.isdigit())
                    if digits:
                        out.append(f"digits:{digits}")
                case e.SayNumber():
                    number = item.number.strip()
                    if number.lstrip("-").isdigit():
                        out.append(f"number:{number}")
                case e.Pause():
                    out.extend(silence_media(item.seconds))
        return out

    # ------------------------------------------------------------------ http
    async def _http(self, c: e.HttpRequest) -> None:
        started = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=c.timeout)
            session = await self.service.http_session()
            async with session.request(c.method, c.url, headers=dict(c.headers),
                                       params=dict(c.query) or None,
                                       json=c.body if c.body is not None else None,
                                       timeout=timeout) as resp:
                body: Any
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                ms = round((time.monotonic() - started) * 1000)
                self.post(e.HttpResult(c.request_id, resp.status, body, ms))
        except TimeoutError:
            self.post(e.HttpFailed(c.request_id, "timeout"))
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # The URL may carry secrets: name the node, not the URL.
            self.post(e.HttpFailed(c.request_id, "error", type(exc).__name__))
        finally:
            self.http.pop(c.request_id, None)

    # ------------------------------------------------------------------ transfer
    async def _transfer(self, c: e.Transfer) -> None:
        svc = self.service
        endpoint = c.to if "/" in c.to else svc.transfer_endpoint.format(number=c.to)
        leg = f"{self.channel_id}-xfer"
        self.transfer_channel = leg
        svc.by_channel[leg] = self
        await svc.ari.originate(endpoint, channel_id=leg, app_args=("ivr-transfer", self.call_id),
                                ring_timeout=c.timeout, caller_id=c.caller_id,
                                formats="ulaw" if endpoint.startswith("Local/") else None)

    async def transfer_answered(self) -> None:
        svc = self.service
        assert self.transfer_channel is not None
        bridge = f"ivr-{self.channel_id}"
        await svc.ari.rest.create_bridge(bridge, "mixing", name=bridge)
        self.bridge_id = bridge
        await svc.ari.rest.add_channel(bridge, self.channel_id, self.transfer_channel)
        self.post(e.TransferResult("answered"))


def _hangup_reason(cause: int) -> str:
    return {17: "busy", 21: "normal", 34: "congestion", 1: "no_answer"}.get(cause, "normal")


def _transfer_outcome(cause: int) -> e.TransferResult:
    if cause == 17:
        return e.TransferResult("busy")
    if cause in (18, 19, 16):
        return e.TransferResult("no_answer")
    return e.TransferResult("failed")


class IvrService:
    """Routes ARI events to IVR calls and starts a `CallSession` per inbound call."""

    def __init__(self, ari: Ari, library: FlowLibrary, tts: TtsCache, *, media_dir: Path,
                 asterisk_root: Path, metrics: Metrics, hooks: IvrHooks | None = None,
                 clock: Callable[[], float] = time.time,
                 transfer_endpoint: str = "PJSIP/{number}@carrier",
                 secrets: Mapping[str, str] | None = None) -> None:
        self.ari = ari
        self.library = library
        self.tts = tts
        self.media_dir = media_dir  # local path (the dialer's view)
        self.asterisk_root = asterisk_root
        self.metrics = metrics
        self.hooks: IvrHooks = hooks or NoAgents()
        self.clock = clock
        self.transfer_endpoint = transfer_endpoint
        self.secrets = dict(secrets or {})
        self.sessions: dict[str, CallSession] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.by_channel: dict[str, CallSession] = {}
        self.by_playback: dict[str, CallSession] = {}
        self.by_recording: dict[str, CallSession] = {}
        self.records: list[IvrCallRecord] = []  # the most recent, for the API and tests
        self._http: aiohttp.ClientSession | None = None
        self._unlisten = ari.listen(self.on_ari)

    def now(self) -> dt.datetime:
        return _aware(self.clock())

    def asterisk_path(self, local: Path) -> str:
        """`local` (under asterisk_root) as Asterisk sees it."""
        try:
            return "/" + str(local.relative_to(self.asterisk_root)).lstrip("/")
        except ValueError:
            return str(local)

    async def http_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def speak(self, item: e.Speech, flow: str) -> str | None:
        try:
            result = await asyncio.to_thread(self.tts.render, item.text,
                                             language=item.language, voice=item.voice)
        except TtsError as exc:
            self.metrics.ivr_flow_problems.labels(flow).inc()
            log.warning("IVR flow %s: cannot speak %r in %s: %s", flow, item.text[:60],
                        item.language, exc)
            return None
        return "sound:" + self.asterisk_path(result.path.with_suffix(""))

    # ------------------------------------------------------------------ events
    def on_ari(self, item: AriItem) -> None:
        match item:
            case StasisStart(channel=ch, args=args) if args and args[0] == "inbound":
                dnis = args[1] if len(args) > 1 else ch.extension
                self._start_inbound(ch.id, ch.caller_number, dnis)
            case StasisStart(channel=ch, args=args) if args and args[0] == "ivr-transfer":
                session = self.by_channel.get(ch.id)
                if session is not None:
                    asyncio.get_running_loop().create_task(self._answer_transfer(session))
            case ChannelDtmfReceived(channel=ch, digit=digit):
                session = self.sessions.get(ch.id)
                if session is not None:
                    session.post(e.Digit(digit))
            case PlaybackFinished(playback=pb):
                session = self.by_playback.pop(pb.id, None)
                if session is not None:
                    session.playbacks.discard(pb.id)
                    session.post(e.PromptFinished(pb.id))
            case RecordingFinished(recording=rec) | RecordingFailed(recording=rec):
                session = self.by_recording.pop(rec.name, None)
                if session is not None:
                    rid = session.recordings.get(rec.name, "")
                    if isinstance(item, RecordingFinished) and rec.duration > 0:
                        path = f"/var/spool/asterisk/recording/{rec.name}.{rec.format or 'wav'}"
                        session.recorded.append(path)
                        session.post(e.RecordingDone(rid, path, float(rec.duration)))
                    else:
                        session.post(e.RecordingEmpty(rid))
            case StasisEnd(channel=ch) | ChannelHangupRequest(channel=ch):
                self._gone(ch.id, None)
            case ChannelDestroyed(channel=ch, cause=cause):
                self._gone(ch.id, cause)
            case _:
                pass

    def _gone(self, channel_id: str, cause: int | None) -> None:
        session = self.sessions.get(channel_id)
        if session is not None:
            if not session.gone:
                session.gone = True
                session.post(e.Hangup())
            if session.transfer_channel is not None:
                self._spawn(self.ari.rest.hangup(session.transfer_channel))
            return
        session = self.by_channel.get(channel_id)
        if session is not None and channel_id == session.transfer_channel:
            if session.bridge_id is None and cause is not None:
                session.post(_transfer_outcome(cause))
                self.by_channel.pop(channel_id, None)
            elif session.bridge_id is not None:
                # The transferred-to party hung up: end the caller's side too.
                self.by_channel.pop(channel_id, None)
                self._spawn(self.ari.rest.hangup(session.channel_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_log_failure)

    async def _answer_transfer(self, session: CallSession) -> None:
        try:
            await session.transfer_answered()
        except AriError as exc:
            log.warning("IVR call %s: bridging the transfer failed: %s", session.call_id, exc)
            session.post(e.TransferResult("failed"))

    # ------------------------------------------------------------------ calls
    def _start_inbound(self, channel_id: str, caller: str, dnis: str) -> None:
        snapshot = self.library.current
        flow = snapshot.flowset.flow_for_number(dnis) if snapshot else None
        if snapshot is None or flow is None:
            why = "no flow set is live" if snapshot is None else f"no route for '{dnis}'"
            log.warning("IVR: inbound call %s to %s refused: %s", channel_id, dnis, why)
            self._spawn(self.ari.rest.hangup(channel_id, "normal"))
            return
        info = e.CallInfo(call_id=channel_id, caller_number=caller, direction="inbound",
                          dnis=dnis, secrets=self.secrets)
        self._spawn(self.start_call(channel_id, flow.id, info, answer=True))

    async def start_call(self, channel_id: str, flow_id: str, info: e.CallInfo, *,
                         answer: bool = False) -> CallSession | None:
        """Run `flow_id` on a channel already in our Stasis app (inbound, or an answered
        outbound call of an agentless campaign). None if there is no such flow."""
        snapshot = self.library.pin()
        if snapshot is None:
            log.warning("IVR: no flow set is live; hanging up %s", channel_id)
            await self.ari.rest.hangup(channel_id)
            return None
        try:
            run = e.FlowRun(snapshot.flowset, flow_id, info, recordings=snapshot.recordings)
        except e.UsageError as exc:
            self.library.release(snapshot)
            log.warning("IVR: %s; hanging up %s", exc, channel_id)
            await self.ari.rest.hangup(channel_id)
            return None
        session = CallSession(self, channel_id, snapshot, run, info, self.clock())
        self.sessions[channel_id] = session
        self.by_channel[channel_id] = session
        self.metrics.ivr_calls_active.inc()
        if answer:
            try:
                await self.ari.rest.answer(channel_id)
            except AriNotFound:
                session.gone = True
                session.post(e.Hangup())
        self.tasks[channel_id] = asyncio.get_running_loop().create_task(
            session.main(), name=f"ivr-{channel_id}")
        log.info("IVR call %s from %s to %s: flow %s version %s", channel_id,
                 info.caller_number or "?", info.dnis or "-", flow_id, snapshot.version)
        return session

    async def start_outbound(self, channel_id: str, flow_id: str, lead: Lead,
                             campaign_id: str) -> bool:
        """Run `flow_id` on an answered campaign call (agentless, safe harbor). False if no
        flow set is live or it has no such flow (the campaign plays its built-in message)."""
        snapshot = self.library.current
        if snapshot is None or flow_id not in snapshot.flowset.flows:
            log.warning("IVR: campaign %s wants flow '%s', which is not live", campaign_id,
                        flow_id)
            return False
        info = e.CallInfo(call_id=channel_id, caller_number=lead.phone, direction="outbound",
                          lead={"id": lead.id, "phone": lead.phone, **dict(lead.attributes)},
                          config={"campaign": campaign_id}, secrets=self.secrets)
        return await self.start_call(channel_id, flow_id, info) is not None

    async def finished(self, session: CallSession) -> None:
        cid = session.channel_id
        self.sessions.pop(cid, None)
        self.tasks.pop(cid, None)
        for key in [k for k, v in self.by_channel.items() if v is session]:
            del self.by_channel[key]
        for key in [k for k, v in self.by_playback.items() if v is session]:
            del self.by_playback[key]
        self.library.release(session.snapshot)
        self.metrics.ivr_calls_active.dec()
        ended = session.ended or session.run.ended
        outcome = ended.outcome if ended else "error"
        record = IvrCallRecord(
            call_id=session.call_id, flow=session.run.main_flow.id,
            flow_version=session.snapshot.version, caller=session.info.caller_number,
            dnis=session.info.dnis, direction=session.info.direction,
            started_at=session.started_at, ended_at=self.clock(), outcome=outcome,
            disposition=ended.disposition if ended else "error",
            path=ended.path if ended else tuple(session.run.path),
            vars=dict(session.vars), recordings=tuple(session.recorded), agent=session.agent)
        self.metrics.ivr_calls.labels(record.flow, outcome).inc()
        self.records.append(record)
        del self.records[:-200]
        log.info("IVR call %s ended: %s (%s) after %s", cid, outcome, record.disposition,
                 " > ".join(record.path[-8:]))
        try:
            await self.hooks.call_ended(record)
        except Exception:
            log.exception("IVR call %s: storing its record failed", cid)

    async def close(self) -> None:
        self._unlisten()
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._http is not None:
            await self._http.close()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if isinstance(exc, AriNotFound):
            return
        log.warning("IVR background step failed: %s", exc)

"""The IVR flow interpreter: one pure `FlowRun` per call, over a pinned `FlowSet` snapshot.

Theory of operation
-------------------
A `FlowRun` is a sans-I/O state machine (the `h11`/`websockets` shape): the driver feeds it
events together with the current time and executes the commands it returns, in order. It never
reads a clock, never does I/O and never makes up ids (ids derive from the injected call id and
a counter), so the ARI driver and the simulator (dialer/ivr/simulate.py) drive the very same
object, and a recorded event list replays to the same commands.

    run = FlowRun(flowset, "inbound_main", CallInfo(call_id="c1", caller_number="+1555..."),
                  recordings=frozenset({("en", "main_menu"), ...}))
    commands = run.start(now)
    ... commands = run.handle(Digit("1"), now) ...     # until an `Ended` command comes out

Event/command contract (what the ARI driver must do)
----------------------------------------------------
Commands (imperatives, executed in list order):

* `EnterNode`      trace only: append to the call's node path / CDR, log at INFO.
* `Play`           play `items` in order on the caller's channel as one playback with id
                   `playback_id` (ARI: POST /channels/{id}/play with a media list and that
                   playbackId). `AudioFile.path` is relative to the FlowSet root
                   (``prompts/en/main_menu.wav``); `Speech` is rendered by
                   `dialer.ivr.tts.TtsCache` in `language`/`voice`; `SayDigits` -> ``digits:``,
                   `SayNumber` -> ``number:``, `Pause` -> silence. When the playback ends (or
                   is stopped) send `PromptFinished(playback_id)`. `barge_in` is informative:
                   the run itself sends `StopPlayback` on the first digit when it applies.
* `StopPlayback`   stop that playback (DELETE /playbacks/{id}); ignore "not found".
* `StartTimer`     after `seconds`, send `TimerFired(key)`; starting an existing key restarts it.
* `CancelTimer`    forget that timer (a late `TimerFired` is ignored by the run anyway).
* `HttpRequest`    perform the request (url/headers may carry secrets: never log them), with
                   `timeout` seconds; answer `HttpResult(request_id, status, json, ms)` or
                   `HttpFailed(request_id, "timeout" | "error")`. The run also arms its own
                   deadline timer, so a driver that never answers cannot stall the call.
* `CancelHttp`     abandon that request (the caller hung up or the deadline passed).
* `Enqueue`        put the caller in the queue (ACD); answer `QueueResult(outcome)`; send
                   `QueueStatus(position, ewt)` whenever they change (announcements, callback
                   offers). An `answered` result ends the flow (the caller talks to the agent).
* `LeaveQueue`     take the caller out of the queue (exit key, callback offer, hang-up).
* `Transfer`       dial `to` and bridge on answer; answer `TransferResult(outcome)`.
* `CancelTransfer` hang up the outgoing leg of a pending transfer.
* `Record`         record the caller (beep, max length, silence, finish key) into `mailbox`;
                   answer `RecordingDone(recording_id, path, duration)` or `RecordingEmpty`.
                   The driver stores and notifies (`notify`) itself, also when the caller
                   hangs up while recording (`StopRecording(keep=True)`).
* `StopRecording`  stop it (`keep=True`: the caller hung up, keep what was said).
* `CreateCallbackLead`  create a callback lead/task for the campaign side; answer
                   `CallbackCreated(lead_id)` or `CallbackFailed(reason)`.
* `SafeHarbor`     the outbound safe-harbor message is playing: count the call as abandoned
                   when `record_abandon` (campaign statistics).
* `AddDnc`         add the number to the campaign's do-not-call list (opt-out key).
* `SetVar`         trace only: a variable changed (`shown` is masked for PII).
* `Note`           trace only: why a node decided what it did (hours: schedule, rule, state).
* `LogProblem`     a runtime flow problem (template error, missing prompt): log at WARNING with
                   the position; the run has already routed the call to `defaults.on_error`.
* `HangupCall`     hang up the caller's channel with `disposition` (CDR) and Q.850 `cause`.
* `Ended`          the run is over (after `HangupCall`, an answered queue call or transfer, or the
                   caller's hang-up). Nothing comes out of `handle` afterwards.

Events (past-tense facts): `PromptFinished`, `Digit`, `TimerFired`, `HttpResult`, `HttpFailed`,
`QueueStatus`, `QueueResult`, `TransferResult`, `RecordingDone`, `RecordingEmpty`,
`CallbackCreated`, `CallbackFailed`, `Hangup` (the caller hung up). Events that do not belong
to the current node (a stale timer, the `PromptFinished` of a stopped playback, a digit while a
non-barge-in prompt plays) are ignored: that is what makes barge-in and cancellation race-free.

Retries, timeouts and prompt selection (IVR_FORMAT.md, exact semantics)
-----------------------------------------------------------------------
* Counters `no_input`, `no_match` (and their sum, attempts) belong to a node visit: they reset
  when the node is entered from a different node and are kept across `repeat` (and a hotkey
  that targets `repeat`).
* No input: ``no_input += 1``; the `no_input_prompt` entry numbered by the count (or the last)
  plays; then, below `max_no_input` (and `max_attempts`), the node prompt is replayed, chosen
  from `reprompts` by attempt number (the entry with the highest attempt <= this attempt, else
  the main prompt); at the limit, `on_no_input`, else `on_max_attempts`, else
  `defaults.on_error`. No match is symmetric.
* The input timeout starts when the prompt **ends** (`PromptFinished`), not when it starts. The
  inter-digit timeout runs after every digit. With barge-in, the first digit stops the
  playback and counts as the first digit; without barge-in, digits during a prompt are dropped.
* A menu takes an option at once when no longer option starts with the digits so far; otherwise
  it waits `inter_digit_timeout` ("1" vs "12", W202).
* Hotkeys (flow level) apply to the first key of a menu or collect whose `hotkeys` is on, and
  win over options (W205 warns about that).
* Barge-in on a `say` node stops it and hands the digit to the next menu/collect (type-ahead).
* Guards: more than `max_node_visits` node entries, or `max_ivr_time` of IVR time (time waiting
  in a queue or transfer does not count), send the call to `defaults.on_error` once; tripping a
  guard again hangs up with disposition ``error``.
* Subflows get their own `vars` (declared defaults + `args`); `input`, `http`, `call` and
  `caller` are shared. `{return: x}` / a `return` node resumes the caller's `returns[x]`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, assert_never

from dialer.errors import DialerError
from dialer.ivr import model as m
from dialer.ivr import schedule, templates

# ============================================================================ events


@dataclass(frozen=True, slots=True)
class PromptFinished:
    playback_id: str


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str  # one of 0-9 * # A-D


@dataclass(frozen=True, slots=True)
class TimerFired:
    key: str


@dataclass(frozen=True, slots=True)
class HttpResult:
    request_id: str
    status: int
    json: Any = None
    ms: int = 0


@dataclass(frozen=True, slots=True)
class HttpFailed:
    request_id: str
    reason: Literal["timeout", "error"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class QueueStatus:
    position: int
    ewt: float  # estimated wait, seconds


@dataclass(frozen=True, slots=True)
class QueueResult:
    outcome: Literal["answered", "timeout", "full", "no_agents"]
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class TransferResult:
    outcome: Literal["answered", "no_answer", "busy", "failed"]


@dataclass(frozen=True, slots=True)
class RecordingDone:
    recording_id: str
    path: str
    duration: float


@dataclass(frozen=True, slots=True)
class RecordingEmpty:
    recording_id: str


@dataclass(frozen=True, slots=True)
class CallbackCreated:
    lead_id: str


@dataclass(frozen=True, slots=True)
class CallbackFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller hung up."""


Event = (PromptFinished | Digit | TimerFired | HttpResult | HttpFailed | QueueStatus | QueueResult
         | TransferResult | RecordingDone | RecordingEmpty | CallbackCreated | CallbackFailed
         | Hangup)

# ============================================================================ media items


@dataclass(frozen=True, slots=True)
class AudioFile:
    """A recording: `path` relative to the FlowSet root (prompts/<language>/<name>.wav)."""

    name: str
    language: str
    path: str
    transcript: str | None = None


@dataclass(frozen=True, slots=True)
class Speech:
    """Text to speak (templates already rendered); `voice` from `defaults.tts.voice`."""

    text: str
    language: str
    voice: str | None = None


@dataclass(frozen=True, slots=True)
class SayDigits:
    digits: str


@dataclass(frozen=True, slots=True)
class SayNumber:
    number: str


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


Media = AudioFile | Speech | SayDigits | SayNumber | Pause


def media_text(item: Media) -> str:
    """What an item says, for traces and scenario expectations."""
    match item:
        case AudioFile():
            return item.transcript if item.transcript is not None else f"[{item.path}]"
        case Speech():
            return item.text
        case SayDigits():
            return " ".join(item.digits)
        case SayNumber():
            return item.number
        case Pause():
            return ""
        case _:
            assert_never(item)


# ============================================================================ commands


@dataclass(frozen=True, slots=True)
class EnterNode:
    flow: str
    node: str
    type: str
    pos: m.Pos
    via: str  # "start", or "<from node>.<outcome>" (e.g. "main_menu.option 1"), or a guard


@dataclass(frozen=True, slots=True)
class Play:
    playback_id: str
    items: tuple[Media, ...]
    language: str
    barge_in: bool
    purpose: str = "prompt"  # prompt | reprompt | no_input | no_match | say | filler | ...

    @property
    def text(self) -> str:
        return " ".join(t for t in (media_text(i) for i in self.items) if t)


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    key: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    key: str


@dataclass(frozen=True, slots=True)
class HttpRequest:
    request_id: str
    node: str
    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: Any
    timeout: float

    def __repr__(self) -> str:  # headers and url may carry secrets
        return f"HttpRequest({self.request_id!r}, node={self.node!r}, {self.method} <url hidden>)"


@dataclass(frozen=True, slots=True)
class CancelHttp:
    request_id: str


@dataclass(frozen=True, slots=True)
class SkillNeed:
    skill: str
    min_level: int
    required: bool


@dataclass(frozen=True, slots=True)
class Enqueue:
    queue: str
    skills: tuple[SkillNeed, ...]
    priority: int
    max_wait: float | None
    moh: str | None
    relax_after: float | None
    screen_pop: Mapping[str, str]
    exit_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeaveQueue:
    queue: str


@dataclass(frozen=True, slots=True)
class Transfer:
    to: str
    caller_id: str | None
    timeout: float
    screen_pop: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CancelTransfer:
    to: str


@dataclass(frozen=True, slots=True)
class Record:
    recording_id: str
    mailbox: str
    max_length: float
    silence_timeout: float | None
    finish_on_key: str | None
    beep: bool
    notify: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class StopRecording:
    recording_id: str
    keep: bool


@dataclass(frozen=True, slots=True)
class CreateCallbackLead:
    number: str
    earliest: dt.datetime
    queue: str | None
    keep_position: bool
    attempts: int
    retry_delay: float | None
    window: str | None
    call_id: str
    flow: str
    flow_version: str


@dataclass(frozen=True, slots=True)
class SafeHarbor:
    record_abandon: bool


@dataclass(frozen=True, slots=True)
class AddDnc:
    number: str
    reason: str


@dataclass(frozen=True, slots=True)
class SetVar:
    name: str
    shown: str  # the value as text, masked when the variable is PII
    pii: bool


@dataclass(frozen=True, slots=True)
class Note:
    """Trace only: what a node decided and why (an hours check, ...). Log at DEBUG."""

    node: str
    text: str


@dataclass(frozen=True, slots=True)
class LogProblem:
    node: str
    pos: m.Pos
    message: str


@dataclass(frozen=True, slots=True)
class HangupCall:
    """Hang up the caller (named `HangupCall` to keep it apart from the `Hangup` event)."""

    disposition: str
    cause: int = 16  # Q.850 normal clearing


@dataclass(frozen=True, slots=True)
class Ended:
    outcome: Literal["hangup", "caller_hangup", "agent", "transferred", "error"]
    disposition: str
    node: str
    path: tuple[str, ...]


Command = (EnterNode | Play | StopPlayback | StartTimer | CancelTimer | HttpRequest | CancelHttp
           | Enqueue | LeaveQueue | Transfer | CancelTransfer | Record | StopRecording
           | CreateCallbackLead | SafeHarbor | AddDnc | SetVar | Note | LogProblem | HangupCall | Ended)

# ============================================================================ inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo:
    call_id: str
    caller_number: str = ""
    caller_name: str | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    dnis: str = ""
    language: str | None = None  # None: the flow's default language
    lead: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CallInfo(call_id={self.call_id!r}, direction={self.direction!r})"


#: Evaluates a schedule at an instant: (flowset, schedule name, aware time) -> HoursResult.
#: The default (`check_schedule`) applies no runtime closures; the driver injects one made by
#: `schedule_check_with(closures)` so an emergency closure applies at once, even to calls
#: pinned to an older snapshot (IVR_FORMAT.md: overrides are runtime state).
ScheduleCheck = Callable[[m.FlowSet, str, dt.datetime], schedule.HoursResult]


def schedule_check_with(closures: Callable[[str], Iterable[schedule.Closure]]) -> ScheduleCheck:
    """A `ScheduleCheck` that asks `closures(schedule name)` for the current runtime closures."""

    def check(flowset: m.FlowSet, name: str, at: dt.datetime) -> schedule.HoursResult:
        found = flowset.schedules.get(name)
        if found is None:
            raise LookupError(f"no schedule {name!r} in the flow set")
        return schedule.evaluate(found, flowset.holiday_lists, at, closures(name))

    return check


check_schedule: ScheduleCheck = schedule_check_with(lambda name: ())


class FlowError(DialerError):
    """A runtime problem in the flow (template, prompt, condition). Routed to on_error."""

    def __init__(self, message: str, pos: m.Pos = m.NO_POS) -> None:
        self.pos = pos
        super().__init__(message)


class UsageError(DialerError):
    """The driver misused the run (unknown flow, event after the end...)."""


# ============================================================================ the run

_PHASES = Literal[
    "idle", "prompt", "input", "then", "confirm", "http", "queue", "transfer", "record",
    "callback", "callback_confirm", "opt_out", "ended",
]

#: Built-in texts spoken by the run itself (callback confirmation, safe harbor without prompt).
_TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "callback_confirm_1": "We will call you back at",
        "callback_confirm_2": "Press 1 to confirm, or 2 to cancel.",
        "safe_harbor": "Sorry we missed you. This call was from {seller}. "
                       "To reach us, please call",
        "opt_out": "To stop calls from us, press {key}.",
    },
    "es": {
        "callback_confirm_1": "Le devolveremos la llamada al",
        "callback_confirm_2": "Oprima 1 para confirmar, o 2 para cancelar.",
        "safe_harbor": "Lamentamos no haberle atendido. Esta llamada era de {seller}. "
                       "Para comunicarse con nosotros, llame al",
        "opt_out": "Para no recibir más llamadas, oprima {key}.",
    },
}

#: Pseudo node ids in `FlowRun.edges` for flow-level transitions.
ERROR_NODE = "(defaults)"
HOTKEY_NODE = "(hotkeys)"

#: A hangup node with this disposition is an opt-out: the number goes on the DNC list.
OPT_OUT_DISPOSITION = "dnc"
SAFE_HARBOR_OPT_OUT_WINDOW = 3.0  # seconds the opt-out key stays live after the message
CONFIRM_TIMEOUT = 5.0
DEFAULT_HTTP_TIMEOUT = 5.0
DEFAULT_TRANSFER_TIMEOUT = 30.0
GUARD_GRACE_VISITS = 20


@dataclass(slots=True)
class _Frame:
    flow: m.Flow
    vars: dict[str, Any]
    caller_node: m.SubflowNode | None  # the subflow node that called this frame (None: main)


@dataclass(slots=True)
class _Visit:
    node: m.Node
    no_input: int = 0
    no_match: int = 0
    digits: str = ""
    phase: _PHASES = "idle"
    playback: str | None = None
    then: Callable[[dt.datetime], None] | None = None  # what to do when `playback` ends
    request: str | None = None
    http_tries: int = 0
    recording: str | None = None
    queue_entered: dt.datetime | None = None
    position: int | None = None
    best_position: int | None = None
    ewt: float | None = None
    offered_callback: bool = False
    callback_number: str = ""
    confirm_tries: int = 0

    @property
    def attempts(self) -> int:
        return self.no_input + self.no_match


class FlowRun:
    """One call's run through a flow (see the module docstring for the contract)."""

    def __init__(
        self,
        flowset: m.FlowSet,
        flow_id: str,
        call: CallInfo,
        *,
        recordings: Collection[tuple[str, str]] = frozenset(),
        schedule_check: ScheduleCheck = check_schedule,
    ) -> None:
        flow = flowset.flows.get(flow_id)
        if flow is None:
            have = ", ".join(sorted(flowset.flows))
            raise UsageError(f"no flow {flow_id!r} in the flow set (have: {have})")
        self.flowset = flowset
        self.call = call
        self.recordings = recordings
        self.schedule_check = schedule_check
        self.language = call.language if call.language else flow.default_language
        self.caller_name = call.caller_name
        self.main_flow = flow
        self.frames: list[_Frame] = [_Frame(flow, self._initial_vars(flow, {}), None)]
        self.inputs: dict[str, dict[str, Any]] = {}
        self.http: dict[str, dict[str, Any]] = {}
        self.path: list[str] = []
        self.visit: _Visit | None = None
        self.menu_history: list[str] = []
        self.visits = 0
        self.visit_limit = flow.defaults.max_node_visits
        self.guard_tripped = False
        self.started_at: dt.datetime | None = None
        self._now = dt.datetime.min.replace(tzinfo=dt.UTC)  # the `now` of the event being handled
        self.paused = 0.0  # seconds spent in queues/transfers (not IVR time)
        self.typeahead: list[str] = []
        self.edges: list[tuple[str, str, str]] = []  # (flow, node, outcome field) taken, in order
        self.ended: Ended | None = None
        self._out: list[Command] = []
        self._seq = 0
        self._timers: set[str] = set()

    # ------------------------------------------------------------------ public API
    @property
    def flow(self) -> m.Flow:
        return self.frames[-1].flow

    @property
    def vars(self) -> dict[str, Any]:
        return self.frames[-1].vars

    @property
    def node(self) -> m.Node | None:
        return self.visit.node if self.visit else None

    @property
    def phase(self) -> str:
        return "ended" if self.ended else (self.visit.phase if self.visit else "idle")

    @property
    def playing(self) -> str | None:
        """The id of the playback in progress, if any."""
        return self.visit.playback if self.visit and not self.ended else None

    @property
    def accepts_digits(self) -> bool:
        """True when a digit now would be acted on (simulator: when the scripted caller presses)."""
        if self.ended or self.visit is None:
            return False
        v = self.visit
        if v.phase in ("input", "confirm", "callback_confirm", "opt_out", "queue", "record"):
            return v.playback is None or self._barge_in_now()
        return v.phase == "prompt" and v.playback is not None and self._barge_in_now()

    def start(self, now: dt.datetime) -> list[Command]:
        if self.started_at is not None:
            raise UsageError("FlowRun.start called twice")
        self.started_at = now
        self._now = now
        self._arm_ivr_timer(now)
        try:
            self._enter(self.flow.start, now, via="start")
        except FlowError as exc:
            self._problem(str(exc), exc.pos, now)
        return self._flush()

    def handle(self, event: Event, now: dt.datetime) -> list[Command]:
        if self.started_at is None:
            raise UsageError("FlowRun.handle before start")
        if self.ended is not None:
            return []
        self._now = now
        try:
            self._dispatch(event, now)
        except FlowError as exc:
            self._problem(str(exc), exc.pos, now)
        return self._flush()

    # ------------------------------------------------------------------ plumbing
    def _flush(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def _emit(self, *commands: Command) -> None:
        self._out.extend(commands)

    def _id(self, kind: str) -> str:
        self._seq += 1
        return f"{self.call.call_id}-{kind}{self._seq}"

    def _start_timer(self, kind: str, seconds: float) -> str:
        key = self._id(kind)
        self._timers.add(key)
        self._emit(StartTimer(key, max(0.0, seconds)))
        return key

    def _cancel_timers(self) -> None:
        for key in sorted(self._timers):
            self._emit(CancelTimer(key))
        self._timers.clear()

    def _arm_ivr_timer(self, now: dt.datetime) -> None:
        assert self.started_at is not None
        spent = (now - self.started_at).total_seconds() - self.paused
        self._emit(StartTimer("ivr_time", max(0.0, self.main_flow.defaults.max_ivr_time - spent)))

    # ------------------------------------------------------------------ template context
    def context(self, *, queue: Mapping[str, Any] | None = None) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "caller": {"number": self.call.caller_number, "name": self.caller_name},
            "call": {
                "id": self.call.call_id,
                "direction": self.call.direction,
                "dnis": self.call.dnis,
                "language": self.language,
                "started_at": self.started_at,
                "path": " > ".join(self.path),
            },
            "vars": self.vars,
            "input": self.inputs,
            "http": self.http,
            "lead": dict(self.call.lead),
            "config": dict(self.call.config),
            "schedule": _ScheduleView(self.flowset, self.schedule_check, self._now),
        }
        if queue is not None:
            ctx["queue"] = dict(queue)
        return ctx

    def _render(self, text: str, pos: m.Pos, *, secrets: bool = False,
                queue: Mapping[str, Any] | None = None) -> str:
        ctx = self.context(queue=queue)
        if secrets:
            ctx["secrets"] = self.call.secrets  # as given (the simulator passes placeholders)
        try:
            return templates.render(text, ctx, allow_secrets=secrets)
        except templates.TemplateError as exc:
            raise FlowError(f"template {text!r}: {exc}", pos) from None

    def _evaluate(self, expr: str, pos: m.Pos) -> Any:
        try:
            return templates.evaluate(expr, self.context())
        except templates.TemplateError as exc:
            raise FlowError(f"expression {expr!r}: {exc}", pos) from None

    # ------------------------------------------------------------------ variables
    def _initial_vars(self, flow: m.Flow, args: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = dict.fromkeys(m.BUILTIN_VARIABLES)
        values.update({name: var.default for name, var in flow.variables.items()})
        values.update(args)
        return values

    def _is_pii(self, name: str) -> bool:
        if name.startswith("vars."):
            var = self.flow.variables.get(name[5:])
            return bool(var and var.pii)
        return False

    def pii_values(self) -> set[str]:
        """The current values of PII variables (and of collects with `mask_in_logs`), so a log
        or trace can mask them wherever they appear (a URL, a read-back prompt)."""
        values: set[str] = set()
        for frame in self.frames:
            for name, var in frame.flow.variables.items():
                value = frame.vars.get(name)
                if var.pii and value not in (None, ""):
                    values.add(str(value))
            for node in frame.flow.nodes.values():
                if isinstance(node, m.CollectNode) and node.id in self.inputs and (
                        node.mask_in_logs or self._is_pii(node.into or "")):
                    values.add(str(self.inputs[node.id].get("digits", "")))
        values.discard("")
        return values

    def shown(self, name: str, value: Any, *, pii: bool | None = None) -> str:
        text = "" if value is None else str(value)
        if pii if pii is not None else self._is_pii(name):
            return templates.render("{{ v | mask(2) }}", {"v": text}) if text else ""
        return text

    def _coerce(self, name: str, value: Any, pos: m.Pos) -> Any:
        if not name.startswith("vars."):
            return value
        var = self.flow.variables.get(name[5:])
        if var is None or value is None:
            return value
        text = str(value).strip()
        try:
            match var.type:
                case "int":
                    return int(text) if text else None
                case "decimal":
                    return str(Decimal(text)) if text else None
                case "bool":
                    return text.lower() in ("1", "true", "yes", "on")
                case "digits":
                    return re.sub(r"\D", "", text)
                case "string" | "date" | "phone":
                    return value if isinstance(value, str) else text
                case _:
                    assert_never(var.type)
        except (ValueError, InvalidOperation):
            raise FlowError(f"{name}: {value!r} is not a valid {var.type}", pos) from None

    def _assign(self, name: str, value: Any, pos: m.Pos, *, pii: bool | None = None) -> None:
        root, _, rest = name.partition(".")
        if root == "vars" and rest:
            value = self._coerce(name, value, pos)
            self.vars[rest] = value
        elif name == "call.language":
            self.language = str(value)
        elif name == "caller.name":
            self.caller_name = None if value is None else str(value)
        else:
            raise FlowError(f"cannot assign {name!r} (only vars.*, call.language, caller.name)", pos)
        secret = pii if pii is not None else self._is_pii(name)
        self._emit(SetVar(name, self.shown(name, value, pii=secret), secret))

    # ------------------------------------------------------------------ prompts
    def resolve(self, prompt: m.Prompt | None, *,
                queue: Mapping[str, Any] | None = None) -> tuple[Media, ...]:
        """The media for a prompt in the call's language, applying `language_fallback`."""
        if prompt is None:
            return ()
        flow = self.flow
        policy = flow.defaults.language_fallback
        language = self.language
        items = prompt.for_language(language)
        if items is None:
            if policy == "error":
                raise FlowError(f"prompt has no '{language}' version (language_fallback: error)", prompt.pos)
            language = flow.default_language
            items = prompt.for_language(language)
            if items is None:
                items = next(iter(prompt.variants.values()), ())
        out: list[Media] = []
        for item in items:
            out.extend(self._resolve_item(item, language, policy, queue))
        return tuple(out)

    def _voice(self, language: str) -> str | None:
        return self.flow.defaults.tts_voice.get(language)

    def _resolve_item(self, item: m.PromptItem, language: str, policy: str,
                      queue: Mapping[str, Any] | None) -> list[Media]:
        match item:
            case m.Recording():
                text = item.tts if item.tts is not None else item.transcript
                rendered = self._render(text, item.pos, queue=queue) if text is not None else None
                if (language, item.name) in self.recordings:
                    return [AudioFile(item.name, language, f"prompts/{language}/{item.name}.wav", rendered)]
                if rendered is not None:
                    return [Speech(rendered, language, self._voice(language))]
                default = self.flow.default_language
                if policy != "error" and (default, item.name) in self.recordings:
                    return [AudioFile(item.name, default, f"prompts/{default}/{item.name}.wav", None)]
                raise FlowError(f"recording prompts/{language}/{item.name}.wav is missing "
                                "and has no tts text", item.pos)
            case m.Tts():
                text = self._render(item.text, item.pos, queue=queue)
                return [Speech(text, language, self._voice(language))]
            case m.SayAs():
                value = self._render(item.value, item.pos, queue=queue)
                match item.kind:
                    case "digits":
                        return [SayDigits(re.sub(r"[^0-9*#A-D]", "", value))]
                    case "number":
                        return [SayNumber(value.strip())]
                    case "currency":
                        code = item.currency or "USD"
                        spoken = self._format("{{ v | currency(c) }}", value, code, item.pos)
                        return [Speech(spoken, language, self._voice(language))]
                    case "date":
                        spoken = self._format("{{ v | date(c) }}", value, "%B %d, %Y", item.pos)
                        return [Speech(spoken, language, self._voice(language))]
                    case _:
                        assert_never(item.kind)
            case m.Silence():
                return [Pause(item.seconds)]
            case _:
                assert_never(item)

    @staticmethod
    def _format(template: str, value: str, arg: str, pos: m.Pos) -> str:
        try:
            return templates.render(template, {"v": value, "c": arg})
        except templates.TemplateError as exc:
            raise FlowError(str(exc), pos) from None

    def _play(self, items: Sequence[Media], *, barge_in: bool, purpose: str,
              then: Callable[[dt.datetime], None] | None, now: dt.datetime) -> None:
        """Play items for the current visit; `then(now)` runs when the playback finishes."""
        v = self.visit
        assert v is not None
        if not items:
            v.playback = None
            if then is not None:
                then(now)
            return
        pid = self._id("play")
        v.playback = pid
        v.then = then
        self._emit(Play(pid, tuple(items), self.language, barge_in, purpose))

    def _stop_playback(self) -> None:
        v = self.visit
        if v is not None and v.playback is not None:
            self._emit(StopPlayback(v.playback))
            v.playback = None
            v.then = None

    def _barge_in_now(self) -> bool:
        """Whether a digit may interrupt what is playing now."""
        v = self.visit
        if v is None:
            return False
        node = v.node
        match v.phase:
            case "queue" | "opt_out" | "record" | "confirm" | "callback_confirm":
                return True
            case "prompt" | "input":
                if isinstance(node, m.MenuNode | m.CollectNode):
                    return self._input(node)[5]
                if isinstance(node, m.SayNode):
                    return node.barge_in if node.barge_in is not None else self.flow.defaults.input.barge_in
                if isinstance(node, m.SafeHarborNode):
                    return node.opt_out_key is not None
                return False
            case _:  # "then" (a transition's message), http filler, idle...: never interrupted
                return False

    # ------------------------------------------------------------------ entering nodes
    def _enter(self, node_id: str, now: dt.datetime, *, via: str) -> None:
        flow = self.flow
        node = flow.nodes.get(node_id)
        if node is None:
            self._problem(f"no node {node_id!r} in flow {flow.id!r}", flow.pos, now)
            return
        self.visits += 1
        if self.visits > self.visit_limit:
            self._guard(f"max_node_visits ({flow.defaults.max_node_visits}) exceeded", node.pos, now)
            return
        previous = self.visit
        self._leave_visit()
        # Counters belong to a node visit: kept when the node is re-entered from itself
        # (`repeat`, a self-loop), reset when it is entered from a different node.
        if previous is not None and previous.node is node:
            visit = _Visit(node, no_input=previous.no_input, no_match=previous.no_match)
        else:
            visit = _Visit(node)
        self.visit = visit
        label = node_id if len(self.frames) == 1 else f"{flow.id}/{node_id}"
        self.path.append(label)
        if isinstance(node, m.MenuNode) and (not self.menu_history or self.menu_history[-1] != node_id):
            self.menu_history.append(node_id)
        self._emit(EnterNode(flow.id, node_id, node.type, node.pos, via))
        self._run_node(node, now)

    def _leave_visit(self) -> None:
        """Stop whatever the current visit still has running (playback, timers)."""
        self._stop_playback()
        self._cancel_timers()

    def _run_node(self, node: m.Node, now: dt.datetime) -> None:
        match node:
            case m.SayNode():
                self._run_say(node, now)
            case m.MenuNode() | m.CollectNode():
                self._run_input(node, now, first=True)
            case m.BranchNode():
                self._run_branch(node, now)
            case m.SetNode():
                for target, value in node.assignments:
                    self._assign(target, self._render(value, node.pos_of(target)), node.pos_of(target))
                self._take(node, "next", now)
            case m.HoursNode():
                self._run_hours(node, now)
            case m.HttpNode():
                self._run_http(node, now)
            case m.QueueNode():
                self._run_queue(node, now)
            case m.TransferNode():
                self._run_transfer(node, now)
            case m.CallbackNode():
                self._run_callback(node, now)
            case m.VoicemailNode():
                self._run_voicemail(node, now)
            case m.SubflowNode():
                self._run_subflow(node, now)
            case m.ReturnNode():
                self._return(node.outcome, node.pos, now)
            case m.SafeHarborNode():
                self._run_safe_harbor(node, now)
            case m.HangupNode():
                self._run_hangup(node, now)
            case _:
                assert_never(node)

    # ------------------------------------------------------------------ transitions
    def _outcome(self, node: m.Node, name: str) -> tuple[str, m.Transition | None]:
        """Outcome `name` of `node` with the fallbacks of `model.OUTCOMES` (the validator reads
        the same table), as (the field that supplied it, transition); a None transition means
        "defaults.on_error" (see `_follow`)."""
        for step in (name, *m.OUTCOMES.get(node.type, {}).get(name, ())):
            if step == "defaults.on_error":
                break
            if step == "hangup":
                return name, m.HANGUP
            value = getattr(node, step, None)
            if isinstance(value, m.Transition):
                return step, value
        return name, None

    def _take(self, node: m.Node, name: str, now: dt.datetime, *,
              prelude: Sequence[Media] = ()) -> None:
        """Follow outcome `name` of `node` (with the model's fallbacks)."""
        field_name, transition = self._outcome(node, name)
        self._follow(node, field_name, transition, now, prelude=prelude)

    def _follow(self, node: m.Node, outcome: str, transition: m.Transition | None,
                now: dt.datetime, *, prelude: Sequence[Media] = ()) -> None:
        """Take `transition` (`outcome` names the edge for traces and coverage); None means
        `defaults.on_error`. `prelude` (e.g. the last no-input message) plays first."""
        if transition is not None:
            self.edges.append((self.flow.id, node.id, outcome))
        if transition is None:
            if prelude:
                self._play(prelude, barge_in=False, purpose="message",
                           then=lambda t: self._follow(node, outcome, None, t), now=now)
                return
            self._to_error(node, f"no transition for '{outcome}'", now)
            return
        for target, value in transition.set:
            self._assign(target, self._render(value, transition.pos), transition.pos)
        say = list(prelude)
        if transition.say is not None:
            say.extend(self.resolve(transition.say))
        via = f"{node.id}.{outcome}"
        if say:
            self._stop_playback()
            self._cancel_timers()
            assert self.visit is not None
            self.visit.phase = "then"
            self._play(say, barge_in=False, purpose="say",
                       then=lambda t: self._go(transition, via, t), now=now)
            return
        self._go(transition, via, now)

    def _go(self, transition: m.Transition, via: str, now: dt.datetime) -> None:
        if transition.goto is None:
            self._return(transition.returns or "", transition.pos, now)
            return
        target = transition.goto
        current = self.visit.node.id if self.visit else self.flow.start
        match target:
            case "repeat":
                self._enter(current, now, via=via)
            case "back":
                history = [n for n in self.menu_history if n != current]
                self._enter(history[-1] if history else self.flow.start, now, via=via)
            case "top":
                self._enter(self.flow.start, now, via=via)
            case "hangup":
                node = self.visit.node if self.visit else None
                self._hangup("safe_harbor" if isinstance(node, m.SafeHarborNode) else "completed", 16, now)
            case _:
                self._enter(target, now, via=via)

    def _to_error(self, node: m.Node, reason: str, now: dt.datetime) -> None:
        on_error = self.flow.defaults.on_error
        if on_error is None or (self.visit is not None and self._is_error_target(node.id)):
            self._hangup("error", 41, now, outcome="error")  # 41: temporary failure
            return
        self._cancel_timers()
        self._stop_playback()
        self.edges.append((self.flow.id, ERROR_NODE, "on_error"))
        try:
            self._go(on_error, f"{node.id}.error", now)
        except FlowError as exc:  # the error path itself is broken: give up cleanly
            self._emit(LogProblem(node.id, exc.pos, f"on_error path failed too: {exc}"))
            self._hangup("error", 41, now, outcome="error")

    def _is_error_target(self, node_id: str) -> bool:
        on_error = self.flow.defaults.on_error
        return on_error is not None and on_error.goto == node_id

    def _problem(self, message: str, pos: m.Pos, now: dt.datetime) -> None:
        node = self.visit.node if self.visit else None
        self._emit(LogProblem(node.id if node else "", pos, message))
        if node is None:
            self._hangup("error", 41, now, outcome="error")
            return
        self._to_error(node, message, now)

    def _guard(self, message: str, pos: m.Pos, now: dt.datetime) -> None:
        node = self.visit.node if self.visit else None
        self._emit(LogProblem(node.id if node else "", pos, message))
        if self.guard_tripped or self.flow.defaults.on_error is None:
            self._leave_visit()
            self._hangup("error", 41, now, outcome="error")
            return
        self.guard_tripped = True
        self.visit_limit = self.visits + GUARD_GRACE_VISITS
        self._leave_visit()
        self._emit(StartTimer("ivr_time", 120.0))  # the error path gets two more minutes
        self.edges.append((self.flow.id, ERROR_NODE, "on_error"))
        self._go(self.flow.defaults.on_error, "guard", now)

    def _hangup(self, disposition: str, cause: int, now: dt.datetime, *,
                outcome: Literal["hangup", "error"] = "hangup") -> None:
        self._leave_visit()
        self._emit(CancelTimer("ivr_time"), HangupCall(disposition, cause))
        self._end(outcome, disposition)

    def _end(self, outcome: Literal["hangup", "caller_hangup", "agent", "transferred", "error"],
             disposition: str) -> None:
        node = self.visit.node.id if self.visit else ""
        if self.visit is not None:
            self.visit.phase = "ended"
        self.ended = Ended(outcome, disposition, node, tuple(self.path))
        self._emit(self.ended)

    # ------------------------------------------------------------------ events
    def _dispatch(self, event: Event, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        match event:
            case Hangup():
                self._caller_hangup(now)
            case TimerFired(key="ivr_time"):
                if v.phase in ("queue", "transfer", "record"):
                    return  # those have their own limits; IVR time resumes afterwards
                self._guard(f"max_ivr_time ({self.flow.defaults.max_ivr_time:g}s) exceeded", v.node.pos, now)
            case TimerFired(key=key):
                if key in self._timers:
                    self._timers.discard(key)
                    self._on_timer(key, now)
            case PromptFinished(playback_id=pid):
                if pid == v.playback:
                    v.playback = None
                    then, v.then = v.then, None
                    if then is not None:
                        then(now)
            case Digit(digit=d):
                self._on_digit(d, now)
            case HttpResult() | HttpFailed():
                if isinstance(v.node, m.HttpNode) and event.request_id == v.request:
                    self._on_http(v.node, event, now)
            case QueueStatus():
                if isinstance(v.node, m.QueueNode) and v.phase == "queue":
                    self._on_queue_status(v.node, event, now)
            case QueueResult():
                if isinstance(v.node, m.QueueNode) and v.phase == "queue":
                    self._on_queue_result(v.node, event, now)
            case TransferResult():
                if isinstance(v.node, m.TransferNode) and v.phase == "transfer":
                    self._on_transfer_result(v.node, event, now)
            case RecordingDone() | RecordingEmpty():
                if isinstance(v.node, m.VoicemailNode) and event.recording_id == v.recording:
                    self._on_recording(v.node, event, now)
            case CallbackCreated() | CallbackFailed():
                if isinstance(v.node, m.CallbackNode) and v.phase == "callback":
                    self._on_callback_result(v.node, event, now)
            case _:
                assert_never(event)

    def _caller_hangup(self, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        if v.phase == "queue" and isinstance(v.node, m.QueueNode):
            self._emit(LeaveQueue(v.node.queue))
        elif v.phase == "http" and v.request is not None:
            self._emit(CancelHttp(v.request))
        elif v.phase == "transfer" and isinstance(v.node, m.TransferNode):
            self._emit(CancelTransfer(v.node.to))
        elif v.phase == "record" and v.recording is not None:
            self._emit(StopRecording(v.recording, keep=True))
        self._leave_visit()
        self._emit(CancelTimer("ivr_time"))
        self._end("caller_hangup", f"caller_hangup_in_{v.node.id}")

    def _on_timer(self, key: str, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        kind = key.rsplit("-", 1)[-1].rstrip("0123456789")
        node = v.node
        if kind in ("noinput", "interdigit") and isinstance(node, m.MenuNode | m.CollectNode):
            self._on_input_timeout(node, now)
        elif kind == "confirm" and v.phase == "confirm" and isinstance(node, m.CollectNode):
            self._confirm_answer(node, None, now)
        elif kind == "cbconfirm" and isinstance(node, m.CallbackNode):
            self._callback_confirmed(node, None, now)
        elif kind == "filler" and isinstance(node, m.HttpNode) and node.while_waiting is not None:
            self._play(self.resolve(node.while_waiting.prompt), barge_in=False, purpose="filler",
                       then=None, now=now)
        elif kind == "httpdeadline" and isinstance(node, m.HttpNode) and v.request is not None:
            self._emit(CancelHttp(v.request))
            self._on_http(node, HttpFailed(v.request, "timeout", "deadline"), now)
        elif kind == "announce" and isinstance(node, m.QueueNode):
            self._announce(node, now)
        elif kind == "offer" and isinstance(node, m.QueueNode):
            self._offer_callback(node, now)
        elif kind == "optout" and isinstance(node, m.SafeHarborNode):
            self._take(node, "next", now)

    def _on_digit(self, d: str, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        node = v.node
        if v.playback is not None and not self._barge_in_now():
            return  # no barge-in: digits during the prompt are dropped
        # Each handler stops the playback itself when it acts on the digit.
        match node:
            case m.MenuNode() | m.CollectNode():
                if v.phase == "confirm" and isinstance(node, m.CollectNode):
                    self._confirm_answer(node, d, now)
                elif v.phase in ("prompt", "input"):
                    self._input_digit(node, d, now)
            case m.SayNode():
                if v.phase == "prompt":
                    self._stop_playback()
                    self.typeahead.append(d)
                    self._take(node, "next", now)
            case m.QueueNode():
                self._queue_digit(node, d, now)
            case m.SafeHarborNode():
                if v.phase in ("prompt", "opt_out") and d == node.opt_out_key:
                    self._stop_playback()
                    self._cancel_timers()
                    self._emit(AddDnc(self.call.caller_number, "opt_out_key"))
                    self._take(node, "on_opt_out", now)
            case m.CallbackNode():
                if v.phase == "callback_confirm":
                    self._callback_confirmed(node, d, now)
            case _:
                pass  # other nodes do not take digits (recording keys are Asterisk's)

    # ------------------------------------------------------------------ say
    def _run_say(self, node: m.SayNode, now: dt.datetime) -> None:
        assert self.visit is not None
        self.visit.phase = "prompt"
        barge_in = node.barge_in if node.barge_in is not None else self.flow.defaults.input.barge_in
        self._play(self.resolve(node.prompt), barge_in=barge_in, purpose="say",
                   then=lambda t: self._take(node, "next", t), now=now)

    # ------------------------------------------------------------------ menu and collect
    def _input(self, node: m.MenuNode | m.CollectNode) -> tuple[float, float, int, int, int | None, bool]:
        d = self.flow.defaults.input
        s = node.input
        return (
            s.timeout if s.timeout is not None else d.timeout,
            s.inter_digit_timeout if s.inter_digit_timeout is not None else d.inter_digit_timeout,
            s.max_no_input if s.max_no_input is not None else d.max_no_input,
            s.max_no_match if s.max_no_match is not None else d.max_no_match,
            s.max_attempts if s.max_attempts is not None else d.max_attempts,
            s.barge_in if s.barge_in is not None else d.barge_in,
        )

    def _node_prompt(self, node: m.MenuNode | m.CollectNode, attempt: int) -> m.Prompt | None:
        """The prompt for an attempt: the reprompt with the highest number <= attempt, else the
        main prompt (VoiceXML `count` selection)."""
        chosen = node.prompt
        best = 0
        for number, prompt in node.reprompts.items():
            if best < number <= attempt:
                chosen, best = prompt, number
        return chosen

    def _run_input(self, node: m.MenuNode | m.CollectNode, now: dt.datetime, *, first: bool,
                   prelude: Sequence[Media] = ()) -> None:
        v = self.visit
        assert v is not None
        v.digits = ""
        v.phase = "prompt"
        if first and self.typeahead:
            pending, self.typeahead = self.typeahead, []
            for d in pending:
                if self.visit is not v or v.phase not in ("prompt", "input"):
                    break
                self._input_digit(node, d, now)
            return
        attempt = v.attempts + 1
        items = [*prelude, *self.resolve(self._node_prompt(node, attempt))]
        barge_in = self._input(node)[5]
        self._play(items, barge_in=barge_in, purpose="prompt" if attempt == 1 else "reprompt",
                   then=lambda t: self._await_input(node), now=now)

    def _await_input(self, node: m.MenuNode | m.CollectNode) -> None:
        v = self.visit
        assert v is not None
        v.phase = "input"
        timeout, inter_digit = self._input(node)[:2]
        self._start_timer("interdigit" if v.digits else "noinput", inter_digit if v.digits else timeout)

    def _input_digit(self, node: m.MenuNode | m.CollectNode, d: str, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        self._stop_playback()  # barge-in: the digit counts as the first one
        self._cancel_timers()
        if not v.digits and node.hotkeys:
            hotkey = next((h for h in self.flow.hotkeys if h.key == d), None)
            if hotkey is not None:
                self.edges.append((self.flow.id, HOTKEY_NODE, f"hotkey {d}"))
                self._follow(node, f"hotkey {d}", hotkey.target, now)
                return
        if isinstance(node, m.MenuNode):
            buf = v.digits + d
            exact = node.option(buf)
            longer = any(o.key != buf and o.key.startswith(buf) for o in node.options)
            if exact is not None and not longer:
                self._choose(node, buf, exact, now)
            elif longer:
                v.digits = buf
                self._await_input(node)
            else:
                v.digits = buf
                self._no_match(node, now)
            return
        # collect
        if node.finish_on_key is not None and d == node.finish_on_key:
            self._finish_collect(node, v.digits, now)
            return
        v.digits += d
        if len(v.digits) >= node.max_digits:
            self._finish_collect(node, v.digits, now)
        else:
            self._await_input(node)

    def _on_input_timeout(self, node: m.MenuNode | m.CollectNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        if not v.digits:
            self._no_input(node, now)
        elif isinstance(node, m.MenuNode):
            exact = node.option(v.digits)
            if exact is not None:
                self._choose(node, v.digits, exact, now)
            else:
                self._no_match(node, now)
        else:
            self._finish_collect(node, v.digits, now)

    def _choose(self, node: m.MenuNode, key: str, target: m.Transition, now: dt.datetime) -> None:
        self.inputs[node.id] = {"digits": key}
        self._follow(node, f"option {key}", target, now)

    @staticmethod
    def _pick(prompts: Sequence[m.Prompt], count: int) -> m.Prompt | None:
        if not prompts:
            return None
        return prompts[min(count, len(prompts)) - 1]

    def _no_input(self, node: m.MenuNode | m.CollectNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.no_input += 1
        _, _, max_no_input, _, max_attempts, _ = self._input(node)
        message = self.resolve(self._pick(node.no_input_prompt, v.no_input))
        if v.no_input >= max_no_input or (max_attempts is not None and v.attempts >= max_attempts):
            self._take(node, "on_no_input", now, prelude=message)
            return
        self._run_input(node, now, first=False, prelude=message)

    def _no_match(self, node: m.MenuNode | m.CollectNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.no_match += 1
        self._cancel_timers()
        _, _, _, max_no_match, max_attempts, _ = self._input(node)
        message = self.resolve(self._pick(node.no_match_prompt, v.no_match))
        if v.no_match >= max_no_match or (max_attempts is not None and v.attempts >= max_attempts):
            self._take(node, "on_no_match", now, prelude=message)
            return
        self._run_input(node, now, first=False, prelude=message)

    def _valid(self, node: m.CollectNode, digits: str) -> bool:
        if len(digits) < node.min_digits or len(digits) > node.max_digits:
            return False
        check = node.validate
        if check is None:
            return True
        match check.kind:
            case "regex":
                return re.search(str(check.value), digits) is not None
            case "luhn":
                return _luhn(digits)
            case "length":
                return len(digits) == int(check.value)
            case "expr":
                self.inputs[node.id] = {"digits": digits}
                return bool(self._evaluate(str(check.value), check.pos))
            case _:
                assert_never(check.kind)

    def _finish_collect(self, node: m.CollectNode, digits: str, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        self._cancel_timers()
        self._stop_playback()
        if not self._valid(node, digits):
            self.inputs.pop(node.id, None)
            self._no_match(node, now)
            return
        self.inputs[node.id] = {"digits": digits}
        if node.confirm is not None:
            v.phase = "confirm"
            v.digits = digits
            self._play(self.resolve(node.confirm.prompt), barge_in=True, purpose="confirm",
                       then=lambda t: self._arm("confirm", CONFIRM_TIMEOUT), now=now)
            return
        self._accept_collect(node, digits, now)

    def _arm(self, kind: str, seconds: float) -> None:
        self._start_timer(kind, seconds)

    def _confirm_answer(self, node: m.CollectNode, d: str | None, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        assert node.confirm is not None
        self._stop_playback()
        self._cancel_timers()
        if d == node.confirm.yes_key:
            self._accept_collect(node, v.digits, now)
        elif d == node.confirm.no_key or d is None:
            self.inputs.pop(node.id, None)
            self._run_input(node, now, first=False)

    def _accept_collect(self, node: m.CollectNode, digits: str, now: dt.datetime) -> None:
        if node.into:
            pii = True if node.mask_in_logs else None
            self._assign(node.into, digits, node.pos_of("into"), pii=pii)
        self._take(node, "next", now)

    # ------------------------------------------------------------------ branch
    def _lookup(self, path: str) -> Any:
        value: Any = self.context()
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                return None
        return value

    def _condition(self, cond: m.Condition) -> bool:
        if cond.op == "expr":
            return bool(self._evaluate(str(cond.value), cond.pos))
        actual = self._lookup(cond.var or "")
        expected = cond.value
        match cond.op:
            case "equals":
                return actual == expected or (actual is not None and str(actual) == str(expected))
            case "in":
                options = expected if isinstance(expected, list | tuple | set | frozenset) else [expected]
                return any(actual == o or (actual is not None and str(actual) == str(o)) for o in options)
            case "matches":
                return actual is not None and re.search(str(expected), str(actual)) is not None
            case "gt" | "lt" | "between":
                number = _number(actual)
                if number is None:
                    return False
                if cond.op == "gt":
                    return number > _number_or_fail(expected, cond.pos)
                if cond.op == "lt":
                    return number < _number_or_fail(expected, cond.pos)
                if not isinstance(expected, list | tuple) or len(expected) != 2:
                    raise FlowError(f"between needs [low, high], got {expected!r}", cond.pos)
                low, high = (_number_or_fail(x, cond.pos) for x in expected)
                return low <= number <= high
            case "is_blank":
                blank = actual is None or str(actual).strip() == ""
                return blank if expected is None or bool(expected) else not blank
            case _:
                assert_never(cond.op)

    def _run_branch(self, node: m.BranchNode, now: dt.datetime) -> None:
        for i, case in enumerate(node.when, 1):
            if self._condition(case.condition):
                self._follow(node, f"when {i}", case.goto, now)
                return
        self._follow(node, "else_", node.else_, now)

    # ------------------------------------------------------------------ hours
    def _run_hours(self, node: m.HoursNode, now: dt.datetime) -> None:
        found = self.flowset.schedules.get(node.schedule)
        at = now
        if node.at is not None and found is not None:  # a fixed time, in the schedule's zone
            at = schedule.localize(found, node.at)
        try:
            result = self.schedule_check(self.flowset, node.schedule, at)
        except (LookupError, ValueError, DialerError) as exc:
            raise FlowError(f"schedule {node.schedule!r}: {exc}", node.pos_of("schedule")) from None
        state, name = result.state, result.holiday_name
        local = result.local_time.strftime("%Y-%m-%d %H:%M %Z")
        self._emit(Note(node.id, f"{node.schedule} @ {local} -> {state} ({result.rule})"))
        if state == "holiday":
            self._assign("vars.holiday_name", name or "", node.pos)
            self._take(node, "holiday", now)
        elif state == "open":
            self._follow(node, "open", node.open, now)
        else:
            if name:
                self._assign("vars.holiday_name", name, node.pos)
            self._follow(node, "closed", node.closed, now)

    # ------------------------------------------------------------------ http
    def _render_value(self, value: Any, pos: m.Pos) -> Any:
        if isinstance(value, str):
            return self._render(value, pos, secrets=True)
        if isinstance(value, Mapping):
            return {str(k): self._render_value(v, pos) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._render_value(v, pos) for v in value]
        return value

    def _run_http(self, node: m.HttpNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "http"
        self._send_http(node)
        if node.while_waiting is not None and node.while_waiting.prompt is not None:
            self._start_timer("filler", node.while_waiting.after)

    def _send_http(self, node: m.HttpNode) -> None:
        v = self.visit
        assert v is not None
        timeout = node.timeout if node.timeout is not None else DEFAULT_HTTP_TIMEOUT
        request = HttpRequest(
            request_id=self._id("http"),
            node=node.id,
            method=node.method.upper(),
            url=self._render(node.url, node.pos_of("url"), secrets=True),
            headers={k: self._render(h, node.pos_of("headers"), secrets=True)
                     for k, h in node.headers.items()},
            query={k: self._render(q, node.pos_of("query"), secrets=True)
                   for k, q in node.query.items()},
            body=self._render_value(node.body, node.pos_of("body")),
            timeout=timeout,
        )
        v.request = request.request_id
        v.http_tries += 1
        self._emit(request)
        # Our own deadline, a little after the driver's, so a lost answer cannot stall the call.
        self._start_timer("httpdeadline", timeout + 0.5)

    def _on_http(self, node: m.HttpNode, event: HttpResult | HttpFailed, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        for key in [k for k in self._timers if "httpdeadline" in k]:
            self._timers.discard(key)
            self._emit(CancelTimer(key))
        if isinstance(event, HttpFailed):
            if v.http_tries <= node.retries:
                self._send_http(node)
                return
            self._leave_visit()
            self.http[node.id] = {"status": None, "json": None, "ms": None, "error": event.reason}
            if event.reason == "timeout":
                self._take(node, "on_timeout", now)
            else:
                self._take(node, "on_error", now)
            return
        self._leave_visit()
        self.http[node.id] = {"status": event.status, "json": event.json, "ms": event.ms}
        if node.success_when is not None:
            ok = bool(self._evaluate(node.success_when, node.pos_of("success_when")))
        else:
            ok = 200 <= event.status < 300
        if not ok:
            if event.status >= 500 and v.http_tries <= node.retries:
                self._send_http(node)
                return
            self._take(node, "on_error", now)
            return
        for target, path in node.save:
            self._assign(target, json_path(event.json, path), node.pos_of("save"))
        self._follow(node, "on_success", node.on_success, now)

    # ------------------------------------------------------------------ queue
    def _run_queue(self, node: m.QueueNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        skills = []
        for req in node.skills:
            if req.when is not None and not _truthy(self._evaluate(req.when, req.pos)):
                continue
            skills.append(SkillNeed(req.skill, req.min_level, req.required))
        where = node.pos_of("priority")
        raw = node.priority if isinstance(node.priority, int) else self._evaluate(node.priority, where)
        try:
            priority = int(raw)
        except (TypeError, ValueError):
            raise FlowError(f"priority {node.priority!r} gave {raw!r}, not a number", where) from None
        v.phase = "queue"
        v.queue_entered = now
        queue = self.flowset.queues.get(node.queue)
        self._emit(Enqueue(
            queue=node.queue,
            skills=tuple(skills),
            priority=priority,
            max_wait=node.max_wait,
            moh=node.moh if node.moh is not None else (queue.moh if queue else None),
            relax_after=node.relax_after,
            screen_pop=self._screen_pop(node.screen_pop),
            exit_keys=tuple(k.key for k in node.exit_keys),
        ))
        for announcement in (node.announce_position, node.announce_wait_time):
            if announcement is not None:
                self._start_timer("announce", announcement.every)
                break
        offer = node.offer_callback
        if offer is not None and offer.after is not None:
            self._start_timer("offer", offer.after)

    def _screen_pop(self, pop: m.ScreenPop | None) -> dict[str, str]:
        if pop is None:
            return {}
        out: dict[str, str] = {}
        if pop.title is not None:
            out["title"] = self._render(pop.title, pop.pos)
        for key, text in pop.fields.items():
            out[key] = self._render(text, pop.pos)
        if pop.url is not None:
            out["url"] = self._render(pop.url, pop.pos)
        return out

    def _queue_ctx(self) -> dict[str, Any]:
        v = self.visit
        assert v is not None
        return {"position": v.position, "ewt": v.ewt}

    def _announce(self, node: m.QueueNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        items: list[Media] = []
        every = None
        pos_a = node.announce_position
        if pos_a is not None and v.position is not None:
            every = pos_a.every
            improved = v.best_position is None or v.position < v.best_position
            if improved or not pos_a.only_if_improved:
                items.extend(self.resolve(pos_a.prompt, queue=self._queue_ctx()))
                v.best_position = v.position if v.best_position is None else min(v.best_position, v.position)
        wait_a = node.announce_wait_time
        if wait_a is not None and v.ewt is not None:
            every = min(every, wait_a.every) if every is not None else wait_a.every
            items.extend(self.resolve(wait_a.prompt, queue=self._queue_ctx()))
        if every is None:
            first = pos_a or wait_a
            every = first.every if first is not None else 60.0
        if items and v.playback is None:
            self._play(items, barge_in=True, purpose="announce", then=None, now=now)
        self._start_timer("announce", every)

    def _on_queue_status(self, node: m.QueueNode, event: QueueStatus, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.position, v.ewt = event.position, event.ewt
        offer = node.offer_callback
        if offer is not None and offer.when_ewt_over is not None and event.ewt > offer.when_ewt_over:
            self._offer_callback(node, now)

    def _offer_callback(self, node: m.QueueNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        if v.offered_callback or node.offer_callback is None:
            return
        v.offered_callback = True
        if v.playback is not None:
            self._stop_playback()
        self._play(self.resolve(node.offer_callback.prompt, queue=self._queue_ctx()), barge_in=True,
                   purpose="offer_callback", then=None, now=now)

    def _queue_digit(self, node: m.QueueNode, d: str, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        offer = node.offer_callback
        target: m.Transition | None = None
        outcome = ""
        if offer is not None and v.offered_callback and d == offer.key:
            target, outcome = offer.goto, "offer_callback"
        else:
            for key in node.exit_keys:
                if key.key == d:
                    target, outcome = key.target, f"exit {d}"
        if target is None:
            return
        self._stop_playback()
        self._emit(LeaveQueue(node.queue))
        self._leave_queue_time(now)
        self._follow(node, outcome, target, now)

    def _leave_queue_time(self, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        if v.queue_entered is not None:
            self.paused += (now - v.queue_entered).total_seconds()
            v.queue_entered = None
        v.phase = "idle"
        self._leave_visit()
        self._arm_ivr_timer(now)

    def _on_queue_result(self, node: m.QueueNode, event: QueueResult, now: dt.datetime) -> None:
        if event.outcome == "answered":
            self._leave_visit()
            self._emit(CancelTimer("ivr_time"))
            self._end("agent", f"agent_answered:{node.queue}")
            return
        self._leave_queue_time(now)
        name = f"on_{event.outcome}"
        self._take(node, name, now)

    # ------------------------------------------------------------------ transfer
    def _run_transfer(self, node: m.TransferNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "transfer"
        v.queue_entered = now
        self._emit(Transfer(
            to=self._render(node.to, node.pos_of("to")),
            caller_id=self._render(node.caller_id, node.pos_of("caller_id")) if node.caller_id else None,
            timeout=node.timeout if node.timeout is not None else DEFAULT_TRANSFER_TIMEOUT,
            screen_pop=self._screen_pop(node.screen_pop),
        ))

    def _on_transfer_result(self, node: m.TransferNode, event: TransferResult, now: dt.datetime) -> None:
        if event.outcome == "answered":
            self._leave_visit()
            self._emit(CancelTimer("ivr_time"))
            self._end("transferred", f"transferred:{node.to}")
            return
        self._leave_queue_time(now)
        name = f"on_{event.outcome}"
        self._take(node, name, now)

    # ------------------------------------------------------------------ callback
    def _text(self, key: str) -> str:
        return _TEXTS.get(self.language.split("-")[0], _TEXTS["en"])[key]

    def _run_callback(self, node: m.CallbackNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        number = self._render(node.number, node.pos_of("number")).strip()
        if not re.fullmatch(r"\+?[0-9]{3,20}", number):
            self._take(node, "on_error", now)
            return
        v.callback_number = number
        if node.confirm_number:
            self._ask_callback_confirm(node, now)
            return
        self._create_callback(node, now)

    def _ask_callback_confirm(self, node: m.CallbackNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "callback_confirm"
        v.confirm_tries += 1
        voice = self._voice(self.language)
        items = (Speech(self._text("callback_confirm_1"), self.language, voice),
                 SayDigits(v.callback_number.lstrip("+")),
                 Speech(self._text("callback_confirm_2"), self.language, voice))
        self._play(items, barge_in=True, purpose="confirm",
                   then=lambda t: self._arm("cbconfirm", CONFIRM_TIMEOUT), now=now)

    def _callback_confirmed(self, node: m.CallbackNode, d: str | None, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        if d is not None and d not in ("1", "2"):
            return
        self._stop_playback()
        self._cancel_timers()
        if d == "1":
            self._create_callback(node, now)
        elif d == "2":
            self._take(node, "on_error", now)
        elif v.confirm_tries < 2:
            self._ask_callback_confirm(node, now)
        else:
            self._take(node, "on_error", now)

    def _create_callback(self, node: m.CallbackNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "callback"
        self._emit(CreateCallbackLead(
            number=v.callback_number,
            earliest=now + dt.timedelta(seconds=node.earliest or 0.0),
            queue=node.queue,
            keep_position=node.keep_position,
            attempts=node.attempts,
            retry_delay=node.retry_delay,
            window=node.window,
            call_id=self.call.call_id,
            flow=self.flow.id,
            flow_version=self.flowset.version,
        ))

    def _on_callback_result(self, node: m.CallbackNode, event: CallbackCreated | CallbackFailed,
                            now: dt.datetime) -> None:
        if isinstance(event, CallbackCreated):
            self._follow(node, "on_scheduled", node.on_scheduled, now)
        else:
            self._emit(LogProblem(node.id, node.pos, f"callback not created: {event.reason}"))
            self._take(node, "on_error", now)

    # ------------------------------------------------------------------ voicemail
    def _run_voicemail(self, node: m.VoicemailNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "prompt"
        self._play(self.resolve(node.greeting), barge_in=False, purpose="greeting",
                   then=lambda t: self._record(node, t), now=now)

    def _record(self, node: m.VoicemailNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "record"
        v.queue_entered = now  # recording time is not IVR time (like queue time)
        v.recording = self._id("rec")
        self._emit(Record(v.recording, node.mailbox, node.max_length, node.silence_timeout,
                          node.finish_on_key, node.beep, dict(node.notify)))

    def _on_recording(self, node: m.VoicemailNode, event: RecordingDone | RecordingEmpty,
                      now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.recording = None
        self._leave_queue_time(now)  # stops the clock on excluded time, re-arms the IVR timer
        if isinstance(event, RecordingDone) and event.duration > 0:
            self._take(node, "next", now)
        else:
            self._take(node, "on_no_audio", now)

    # ------------------------------------------------------------------ subflow
    def _run_subflow(self, node: m.SubflowNode, now: dt.datetime) -> None:
        flow = self.flowset.flows.get(node.flow)
        if flow is None:
            raise FlowError(f"no flow {node.flow!r}", node.pos_of("flow"))
        if len(self.frames) > 8:
            raise FlowError("subflows nested more than 8 deep", node.pos)
        args = {name: self._render(text, node.pos_of("args")) for name, text in node.args.items()}
        self._leave_visit()
        self.frames.append(_Frame(flow, self._initial_vars(flow, args), node))
        self.visit = None
        self._enter(flow.start, now, via=f"{node.id}.call")

    def _return(self, outcome: str, pos: m.Pos, now: dt.datetime) -> None:
        if len(self.frames) == 1:
            raise FlowError(f"return '{outcome}' outside a subflow", pos)
        self._leave_visit()
        frame = self.frames.pop()
        caller = frame.caller_node
        assert caller is not None
        self.visit = _Visit(caller, phase="idle")
        self._follow(caller, f"return {outcome}", caller.returns.get(outcome), now)

    # ------------------------------------------------------------------ safe harbor
    def _run_safe_harbor(self, node: m.SafeHarborNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "prompt"
        self._emit(SafeHarbor(node.record_abandon))
        if node.prompt is not None:
            items: tuple[Media, ...] = self.resolve(node.prompt)
        else:
            voice = self._voice(self.language)
            built: list[Media] = [Speech(self._text("safe_harbor").format(seller=node.seller or ""),
                                         self.language, voice)]
            if node.callback_number:
                built.append(SayDigits(node.callback_number.lstrip("+")))
            if node.opt_out_key:
                built.append(Speech(self._text("opt_out").format(key=node.opt_out_key), self.language, voice))
            items = tuple(built)
        self._play(items, barge_in=node.opt_out_key is not None, purpose="safe_harbor",
                   then=lambda t: self._after_safe_harbor(node, t), now=now)

    def _after_safe_harbor(self, node: m.SafeHarborNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        if node.opt_out_key is None:
            self._take(node, "next", now)
            return
        v.phase = "opt_out"
        self._start_timer("optout", SAFE_HARBOR_OPT_OUT_WINDOW)

    # ------------------------------------------------------------------ hangup
    def _run_hangup(self, node: m.HangupNode, now: dt.datetime) -> None:
        v = self.visit
        assert v is not None
        v.phase = "then"
        disposition = node.disposition or "completed"
        cause = node.cause if node.cause is not None else 16
        if disposition == OPT_OUT_DISPOSITION and self.call.caller_number:
            # An opt-out anywhere in the flow (e.g. "press 9 to stop calls" in a script) puts
            # the number on the do-not-call list, as the safe-harbor opt-out key does.
            self._emit(AddDnc(self.call.caller_number, "disposition dnc"))
        self._play(self.resolve(node.prompt), barge_in=False, purpose="goodbye",
                   then=lambda t: self._hangup(disposition, cause, t), now=now)


# ============================================================================ helpers

NEXT_OPEN_STEP = dt.timedelta(minutes=5)
NEXT_OPEN_HORIZON = dt.timedelta(days=8)


class _ScheduleView(Mapping[str, Mapping[str, Any]]):
    """`schedule.<name>.next_open` in templates, computed only when a template asks: the first
    open instant from now (5-minute steps, up to 8 days ahead; None if never), in the
    schedule's time zone. Format it with `date`: ``{{ schedule.support.next_open | date('%A %H:%M') }}``."""

    def __init__(self, flowset: m.FlowSet, check: ScheduleCheck, now: dt.datetime) -> None:
        self._flowset = flowset
        self._check = check
        self._now = now

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        if name not in self._flowset.schedules:
            raise KeyError(name)
        at = self._now
        step = NEXT_OPEN_STEP
        end = self._now + NEXT_OPEN_HORIZON
        while at <= end:
            result = self._check(self._flowset, name, at)
            if result.state == "open":
                return {"next_open": result.local_time, "open_now": at == self._now}
            at = (at + step).replace(second=0, microsecond=0)
            at -= dt.timedelta(minutes=at.minute % 5)
        return {"next_open": None, "open_now": False}

    def __iter__(self) -> Iterator[str]:
        return iter(self._flowset.schedules)

    def __len__(self) -> int:
        return len(self._flowset.schedules)



def _luhn(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _number_or_fail(value: Any, pos: m.Pos) -> float:
    number = _number(value)
    if number is None:
        raise FlowError(f"{value!r} is not a number", pos)
    return number


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "none", "off")
    return bool(value)


_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


def json_path(document: Any, path: str) -> Any:
    """A small JSONPath subset: ``$``, ``$.a.b``, ``$.items[0].id``, ``$['odd key']``.

    A missing element gives None (the save leaves the variable empty rather than failing the
    call). A path that is not in the subset raises `FlowError`.
    """
    text = path.strip()
    if not text.startswith("$"):
        raise FlowError(f"JSON path {path!r} must start with '$'")
    value = document
    rest = text[1:]
    pos = 0
    while pos < len(rest):
        match = _PATH_TOKEN.match(rest, pos)
        if match is None:
            raise FlowError(f"JSON path {path!r}: unsupported syntax at {rest[pos:]!r}")
        pos = match.end()
        key, index, quoted = match.groups()
        if index is not None:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        else:
            name = key if key is not None else quoted
            value = value.get(name) if isinstance(value, dict) else None
        if value is None:
            return None
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value

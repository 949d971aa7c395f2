"""Try a flow without a phone: drive `engine.FlowRun` with scripted caller input in virtual time.

Theory of operation. The simulator is the second driver of the pure interpreter (the ARI driver
is the first): it executes the run's commands against a fake world instead of Asterisk.

* **Clock**: virtual. Time jumps to the next thing that happens: a timer, the end of a prompt,
  a mocked HTTP answer, a queue result, or the scripted caller's next key press.
* **Prompts** last as long as their audio: the WAV header for recordings found under the flow
  set's `prompts/`, an estimate for TTS text (~15 characters per second), 0.5 s per read-out
  digit. A stopped playback reports `PromptFinished` at once, as ARI does.
* **The caller** follows the `input` script (`parse_input`), one token at a time:

  ``1`` / ``12345678#`` / ``*``   keys, pressed 1 s after the system is ready for input (no
                                  prompt playing, a menu/collect/queue/confirmation waiting),
                                  0.25 s apart;
  ``<timeout>``                   stay silent until the next input timeout;
  ``<wait 70s>``                  let 70 s pass (everything due in between happens); the next
                                  token then comes *at once*, even over a prompt (barge-in);
  ``<hangup>``                    hang up (when ready, or at once after a `<wait>`).

  While a voicemail records, the caller speaks for the mocked duration; a following key token
  equal to the finish key ends the recording, `<hangup>` hangs up (the message is kept).
* **The world** answers from `Mocks`: HTTP per node (status, JSON, latency, or timeout/error,
  one answer per attempt), queue results per queue (outcome after a delay, position, EWT),
  transfers per node, callback creation, voicemail length per node.

The result holds a human trace (``file:line`` for every node, resolved prompt text after
templating, variable changes with PII masked, the end and disposition) and the data the
scenario runner checks (path, edges, prompts, variables, ending).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import wave
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dialer.errors import DialerError
from dialer.ivr import engine as e
from dialer.ivr import model as m

__all__ = [
    "CallbackMock",
    "HttpMock",
    "InputError",
    "Mocks",
    "QueueMock",
    "SimResult",
    "Simulator",
    "Token",
    "TransferMock",
    "parse_duration",
    "parse_input",
    "recordings_of",
]

THINK_TIME = 1.0  # seconds between "ready for input" and the caller's first key
KEY_GAP = 0.25  # seconds between keys of one token
TTS_CHARS_PER_SECOND = 15.0
DIGIT_SECONDS = 0.5
MAX_SIM_SECONDS = 4 * 3600.0
MAX_STEPS = 20000


class InputError(DialerError):
    """A simulator input (token script, mock file, time) is malformed. The message says which."""


# ============================================================================ input tokens


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["keys", "timeout", "wait", "hangup"]
    keys: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        match self.kind:
            case "keys":
                return self.keys
            case "wait":
                return f"<wait {self.seconds:g}s>"
            case _:
                return f"<{self.kind}>"


_KEYS = re.compile(r"^[0-9*#A-D]+$")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, *, what: str = "duration") -> float:
    """``70s``, ``2500ms``, ``1.5m``, ``1h`` -> seconds. A bare number is refused (no unit)."""
    match = _DURATION.match(str(text))
    if match is None:
        raise InputError(f"{what}: {text!r} is not a duration with a unit (e.g. 70s, 2500ms, 1m)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_input(script: str | Sequence[object]) -> list[Token]:
    """Parse ``"1,12345678#,<timeout>,<wait 70s>,<hangup>"`` (or a list of such tokens)."""
    raw: list[str] = script.split(",") if isinstance(script, str) else [str(t) for t in script]
    tokens: list[Token] = []
    for index, item in enumerate(raw, 1):
        text = item.strip()
        if not text:
            if isinstance(script, str) and not script.strip():
                continue
            raise InputError(f"input token {index} is empty (two commas in a row?)")
        if text.startswith("<"):
            if not text.endswith(">"):
                raise InputError(f"input token {index} {text!r}: missing '>'")
            inner = text[1:-1].strip()
            word, _, arg = inner.partition(" ")
            word = word.lower()
            if word == "timeout" and not arg:
                tokens.append(Token("timeout"))
            elif word == "hangup" and not arg:
                tokens.append(Token("hangup"))
            elif word == "wait" and arg:
                tokens.append(Token("wait", seconds=parse_duration(arg, what=f"input token {index}")))
            else:
                raise InputError(f"input token {index} {text!r}: expected <timeout>, <hangup> or <wait 70s>")
            continue
        keys = text.upper() if re.fullmatch(r"[0-9*#a-dA-D]+", text) else text
        if not _KEYS.match(keys):
            bad = sorted({c for c in keys if not re.match(r"[0-9*#A-D]", c)})
            raise InputError(f"input token {index} {text!r}: not DTMF keys (bad: {' '.join(bad)}); "
                             "keys are 0-9 * # A-D")
        tokens.append(Token("keys", keys=keys))
    return tokens


# ============================================================================ mocks


@dataclass(frozen=True, slots=True)
class HttpMock:
    status: int = 200
    json: Any = None
    latency: float = 0.1
    failure: Literal["timeout", "error"] | None = None

    @classmethod
    def parse(cls, value: Any, *, where: str) -> HttpMock:
        if value == "timeout":
            return cls(failure="timeout")
        if value == "error":
            return cls(failure="error")
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: an http mock is a mapping {{status, json, latency}} or "
                             f"'timeout' or 'error', not {value!r}")
        unknown = set(value) - {"status", "json", "latency", "timeout", "error"}
        if unknown:
            raise InputError(f"{where}: unknown http mock field(s) {', '.join(sorted(unknown))}")
        latency = 0.1
        if "latency" in value:
            latency = parse_duration(str(value["latency"]), what=f"{where}.latency")
        if value.get("timeout"):
            return cls(failure="timeout", latency=latency)
        if value.get("error"):
            return cls(failure="error", latency=latency)
        status = value.get("status", 200)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise InputError(f"{where}.status: {status!r} is not an HTTP status")
        return cls(status=status, json=value.get("json"), latency=latency)


@dataclass(frozen=True, slots=True)
class QueueMock:
    outcome: Literal["answered", "timeout", "full", "no_agents"] = "answered"
    after: float = 5.0
    position: int | None = None
    ewt: float | None = None

    @classmethod
    def parse(cls, value: Any, *, where: str) -> QueueMock:
        outcomes = ("answered", "timeout", "full", "no_agents")
        if isinstance(value, str):
            value = {"outcome": value}
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: a queue mock is {{outcome, after, position, ewt}} or an outcome")
        unknown = set(value) - {"outcome", "after", "position", "ewt"}
        if unknown:
            raise InputError(f"{where}: unknown queue mock field(s) {', '.join(sorted(unknown))}")
        outcome = value.get("outcome", "answered")
        if outcome not in outcomes:
            raise InputError(f"{where}.outcome: {outcome!r}; expected one of {', '.join(outcomes)}")
        after = parse_duration(str(value["after"]), what=f"{where}.after") if "after" in value else (
            0.0 if outcome in ("full", "no_agents") else 5.0)
        ewt = parse_duration(str(value["ewt"]), what=f"{where}.ewt") if "ewt" in value else None
        position = value.get("position")
        if position is not None and not isinstance(position, int):
            raise InputError(f"{where}.position: {position!r} is not a number")
        return cls(outcome=outcome, after=after, position=position, ewt=ewt)


@dataclass(frozen=True, slots=True)
class TransferMock:
    outcome: Literal["answered", "no_answer", "busy", "failed"] = "answered"
    after: float = 3.0

    @classmethod
    def parse(cls, value: Any, *, where: str) -> TransferMock:
        outcomes = ("answered", "no_answer", "busy", "failed")
        if isinstance(value, str):
            value = {"outcome": value}
        if not isinstance(value, Mapping) or value.get("outcome", "answered") not in outcomes:
            raise InputError(f"{where}: a transfer mock is one of {', '.join(outcomes)} "
                             "or {outcome, after}")
        after = parse_duration(str(value["after"]), what=f"{where}.after") if "after" in value else 3.0
        return cls(outcome=value.get("outcome", "answered"), after=after)


@dataclass(frozen=True, slots=True)
class CallbackMock:
    ok: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Mocks:
    http: Mapping[str, tuple[HttpMock, ...]] = field(default_factory=dict)  # node -> answers
    queues: Mapping[str, QueueMock] = field(default_factory=dict)  # queue name -> result
    transfers: Mapping[str, TransferMock] = field(default_factory=dict)  # node -> result
    callback: CallbackMock = CallbackMock()
    voicemail: Mapping[str, float] = field(default_factory=dict)  # node -> seconds (0: silent)

    @classmethod
    def parse(cls, value: Any, *, where: str = "mocks") -> Mocks:
        """From a scenario's `mocks:` mapping: http, queue, transfer, callback, voicemail."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: expected a mapping")
        unknown = set(value) - {"http", "queue", "transfer", "callback", "voicemail"}
        if unknown:
            raise InputError(f"{where}: unknown mock kind(s) {', '.join(sorted(unknown))} "
                             "(http, queue, transfer, callback, voicemail)")
        http: dict[str, tuple[HttpMock, ...]] = {}
        for node, answer in _mapping(value.get("http"), f"{where}.http").items():
            answers = answer if isinstance(answer, list) else [answer]
            http[node] = tuple(HttpMock.parse(a, where=f"{where}.http.{node}") for a in answers)
        queues = {q: QueueMock.parse(v, where=f"{where}.queue.{q}")
                  for q, v in _mapping(value.get("queue"), f"{where}.queue").items()}
        transfers = {n: TransferMock.parse(v, where=f"{where}.transfer.{n}")
                     for n, v in _mapping(value.get("transfer"), f"{where}.transfer").items()}
        cb = value.get("callback", "ok")
        if cb not in ("ok", "error"):
            raise InputError(f"{where}.callback: {cb!r}; expected ok or error")
        voicemail: dict[str, float] = {}
        for node, length in _mapping(value.get("voicemail"), f"{where}.voicemail").items():
            voicemail[node] = 0.0 if length in ("empty", "silent") else parse_duration(
                str(length), what=f"{where}.voicemail.{node}")
        return cls(http=http, queues=queues, transfers=transfers,
                   callback=CallbackMock(ok=cb == "ok", reason="" if cb == "ok" else "mocked error"),
                   voicemail=voicemail)

    def with_http(self, node: str, answers: Sequence[HttpMock]) -> Mocks:
        return Mocks(http={**self.http, node: tuple(answers)}, queues=self.queues,
                     transfers=self.transfers, callback=self.callback, voicemail=self.voicemail)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: expected a mapping of name -> mock")
    return {str(k): v for k, v in value.items()}


def load_http_mock(path: Path, *, where: str) -> tuple[HttpMock, ...]:
    """An http mock file: JSON `{status, json, latency}` (or a list of them, one per attempt),
    or any other JSON document, taken as the body of a 200 answer."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{where}: cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: {path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    items = data if isinstance(data, list) and data and all(isinstance(d, Mapping) and "status" in d
                                                            for d in data) else [data]
    out = []
    for item in items:
        if isinstance(item, Mapping) and set(item) <= {"status", "json", "latency", "timeout", "error"} \
                and ("status" in item or "timeout" in item or "error" in item):
            out.append(HttpMock.parse(item, where=f"{where} ({path})"))
        else:
            out.append(HttpMock(status=200, json=item))
    return tuple(out)


# ============================================================================ the world


def recordings_of(flowset: m.FlowSet) -> frozenset[tuple[str, str]]:
    """(language, name) of every `prompts/<lang>/<name>.wav` under the flow set's root."""
    root = Path(flowset.root) / "prompts"
    if not root.is_dir():
        return frozenset()
    return frozenset((p.parent.name, p.stem) for p in root.glob("*/*.wav"))


class _Secrets(dict[str, str]):
    """Placeholder secrets: any name renders as ``<secret:name>``, so flows that use secrets
    can be simulated without them and no real secret ever reaches a trace."""

    def __missing__(self, key: str) -> str:
        return f"<secret:{key}>"


@dataclass(slots=True)
class PlayedPrompt:
    at: float
    node: str
    text: str
    files: tuple[str, ...]
    duration: float
    barge_in: bool
    purpose: str
    language: str


@dataclass(slots=True)
class SimResult:
    flow: str
    trace: list[str]
    path: list[str]
    edges: list[tuple[str, str, str]]
    prompts: list[PlayedPrompt]
    vars: dict[str, Any]
    shown_vars: dict[str, str]
    problems: list[e.LogProblem]
    commands: list[tuple[float, e.Command]]
    ended: e.Ended | None
    hangup: e.HangupCall | None
    duration: float
    unused_tokens: list[Token]
    context: dict[str, Any] = field(default_factory=dict)  # template namespaces at the end
    stuck: str | None = None

    def lookup(self, path: str) -> Any:
        """A value at the end of the call by dotted path: ``vars.reason``, ``call.language``,
        ``input.get_account.digits``, ``http.lookup.status``. Raises KeyError when absent."""
        value: Any = self.context
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                raise KeyError(path)
        return value

    @property
    def disposition(self) -> str:
        if self.ended is None:
            return "unfinished"
        return self.ended.disposition

    def text(self) -> str:
        return "\n".join(self.trace)


def _fmt_t(t: float) -> str:
    return f"{t:6.1f}s"


class Simulator:
    """Runs one simulated call. `at` is the call's start (aware datetime)."""

    def __init__(
        self,
        flowset: m.FlowSet,
        flow_id: str,
        *,
        at: dt.datetime,
        caller: str = "+15555550100",
        caller_name: str | None = None,
        language: str | None = None,
        lead: Mapping[str, Any] | None = None,
        direction: Literal["inbound", "outbound"] | None = None,
        dnis: str = "",
        tokens: Sequence[Token] = (),
        mocks: Mocks | None = None,
        recordings: Collection[tuple[str, str]] | None = None,
        schedule_check: e.ScheduleCheck | None = None,
        call_id: str = "sim",
    ) -> None:
        if at.tzinfo is None:
            raise InputError("the simulated start time needs a time zone")
        flow = flowset.flows.get(flow_id)
        if flow is None:
            raise InputError(f"no flow {flow_id!r} (have: {', '.join(sorted(flowset.flows))})")
        if language is not None and language not in flow.languages:
            raise InputError(f"language {language!r} is not one of the flow's languages "
                             f"({', '.join(flow.languages)})")
        self.flowset = flowset
        self.flow = flow
        self.start_at = at
        self.tokens = list(tokens)
        self.mocks = mocks or Mocks()
        self.recordings = recordings if recordings is not None else recordings_of(flowset)
        kind_direction: Literal["inbound", "outbound"] = "outbound" if flow.kind == "outbound" else "inbound"
        call = e.CallInfo(call_id=call_id, caller_number=caller, caller_name=caller_name,
                          direction=direction or kind_direction, dnis=dnis, language=language,
                          lead=dict(lead or {}), secrets=_Secrets())
        kwargs: dict[str, Any] = {"recordings": self.recordings}
        if schedule_check is not None:
            kwargs["schedule_check"] = schedule_check
        self.run = e.FlowRun(flowset, flow_id, call, **kwargs)
        # world state
        self.t = 0.0
        self.timers: dict[str, float] = {}
        self.playing: tuple[str, float] | None = None
        self.pending: list[tuple[float, int, str, e.Event]] = []  # (due, seq, tag, event)
        self.http_calls: dict[str, int] = {}
        self.recording: e.Record | None = None
        self.recording_node = ""
        self.record_started = 0.0
        self.record_token_used = False
        self.ready_epoch = 0  # bumped by Play/EnterNode: the caller heard something new
        self.used_epoch = -1
        self.ready_since: float | None = None
        self.force_next = False
        self._seq = 0
        # results
        self.trace: list[str] = []
        self.prompts: list[PlayedPrompt] = []
        self.commands: list[tuple[float, e.Command]] = []
        self.problems: list[e.LogProblem] = []
        self.shown: dict[str, str] = {}
        self.hangup: e.HangupCall | None = None
        self.node = ""

    # ------------------------------------------------------------------ clock
    @property
    def now(self) -> dt.datetime:
        return self.start_at + dt.timedelta(seconds=self.t)

    def _schedule(self, delay: float, tag: str, event: e.Event) -> None:
        self._seq += 1
        self.pending.append((self.t + max(0.0, delay), self._seq, tag, event))
        self.pending.sort(key=lambda p: (p[0], p[1]))

    def _drop(self, tag: str) -> None:
        self.pending = [p for p in self.pending if p[2] != tag]

    # ------------------------------------------------------------------ main loop
    def simulate(self) -> SimResult:
        stuck: str | None = None
        self._line(f"{_fmt_t(0)} CALL  flow={self.flow.id} ({self.flow.file}) at "
                   f"{self.start_at.isoformat(sep=' ', timespec='minutes')} "
                   f"caller={self.run.call.caller_number} "
                   f"lang={self.run.language} version={self.flowset.version or '-'}")
        self._execute(self.run.start(self.now))
        steps = 0
        while self.run.ended is None:
            steps += 1
            if steps > MAX_STEPS or self.t > MAX_SIM_SECONDS:
                stuck = f"gave up after {steps} steps / {self.t:.0f}s of simulated time"
                break
            if not self._step():
                stuck = "nothing left to happen (no timer, prompt, answer or input is pending)"
                break
        if stuck:
            self._line(f"{_fmt_t(self.t)} STUCK {stuck}")
        ended = self.run.ended
        if ended is not None:
            self._line(f"{_fmt_t(self.t)} END   outcome={ended.outcome} disposition={ended.disposition}"
                       + (f" cause={self.hangup.cause}" if self.hangup else "")
                       + f" node={ended.node} flow_version={self.flowset.version or '-'}")
        unused = list(self.tokens)
        if unused:
            self._line(f"         (input not used: {','.join(str(t) for t in unused)})")
        return SimResult(
            flow=self.flow.id, trace=self.trace, path=list(self.run.path), edges=list(self.run.edges),
            prompts=self.prompts, vars=dict(self.run.frames[0].vars), shown_vars=dict(self.shown),
            problems=self.problems, commands=self.commands, ended=ended, hangup=self.hangup,
            duration=self.t, unused_tokens=unused, context=self.run.context(), stuck=stuck,
        )

    def _ready(self) -> bool:
        """The scripted caller may act: the run takes digits and nothing is playing (or, right
        after a `<wait>`, even while something plays: that is how barge-in is scripted)."""
        if self.run.ended is not None:
            return False
        if self.force_next:
            return True
        if self.run.phase == "record":
            return False
        return self.run.accepts_digits and self.playing is None

    def _step(self) -> bool:
        """Advance to the next thing that happens and do it. False if nothing can happen."""
        token = self.tokens[0] if self.tokens else None
        token_at: float | None = None
        if token is not None and token.kind == "wait":
            self.tokens.pop(0)
            self._line(f"{_fmt_t(self.t)}   ← (caller waits {token.seconds:g}s)")
            self._advance(self.t + token.seconds)
            self.force_next = True
            return True
        if self.recording is not None:
            if token is not None and not self.record_token_used:
                token_at = self.record_started + self.mocks.voicemail.get(self.recording_node, 8.0)
        elif token is not None and self._ready() and (self.force_next or self.used_epoch != self.ready_epoch):
            if self.ready_since is None:
                self.ready_since = self.t
            token_at = self.t if self.force_next else max(self.t, self.ready_since + THINK_TIME)
        candidates = [t for t in (
            token_at,
            self.playing[1] if self.playing else None,
            min(self.timers.values()) if self.timers else None,
            self.pending[0][0] if self.pending else None,
        ) if t is not None]
        if not candidates:
            return False
        due = min(candidates)
        if token_at is not None and due >= token_at:
            self.t = token_at
            self._do_token(token)
            return True
        self._advance_one(due)
        return True

    def _advance(self, until: float) -> None:
        """Process everything due up to `until`, then set the clock there."""
        while self.run.ended is None:
            nexts = [t for t in (
                self.playing[1] if self.playing else None,
                min(self.timers.values()) if self.timers else None,
                self.pending[0][0] if self.pending else None,
            ) if t is not None and t <= until]
            if not nexts:
                break
            self._advance_one(min(nexts))
        if self.run.ended is None:
            self.t = max(self.t, until)

    def _advance_one(self, due: float) -> None:
        self.t = max(self.t, due)
        if self.playing is not None and self.playing[1] <= due:
            pid = self.playing[0]
            self.playing = None
            self._feed(e.PromptFinished(pid))
            return
        if self.timers:
            key, when = min(self.timers.items(), key=lambda kv: kv[1])
            if when <= due:
                del self.timers[key]
                label = _TIMER_LABELS.get(_timer_kind(key), _timer_kind(key))
                if _timer_kind(key) not in ("filler", "announce", "httpdeadline"):
                    self._line(f"{_fmt_t(self.t)}   ← {label}")
                self._feed(e.TimerFired(key))
                return
        if self.pending and self.pending[0][0] <= due:
            _, _, tag, event = self.pending.pop(0)
            self._describe_event(event)
            if tag.startswith("rec:"):
                self.recording = None
            self._feed(event)

    def _do_token(self, token: Token | None) -> None:
        assert token is not None
        self.tokens.pop(0)
        self.force_next = False
        self.used_epoch = self.ready_epoch
        self.ready_since = None
        if self.recording is not None:
            rec = self.recording
            self.record_token_used = True  # one token per recording; the rest wait for the next node
            spoken = self.t - self.record_started
            if token.kind == "hangup":
                self._line(f"{_fmt_t(self.t)}   ← caller hangs up while recording ({spoken:.1f}s)")
                self._drop(f"rec:{rec.recording_id}")
                self.recording = None
                self._feed(e.Hangup())
                return
            if token.kind == "keys" and rec.finish_on_key is not None and token.keys[0] == rec.finish_on_key:
                self._line(f"{_fmt_t(self.t)}   ← DTMF \"{token.keys[0]}\" ends the recording")
                self._drop(f"rec:{rec.recording_id}")
                self.recording = None
                event: e.Event = (e.RecordingDone(rec.recording_id, f"sim/{rec.recording_id}.wav", spoken)
                                  if spoken > 0 else e.RecordingEmpty(rec.recording_id))
                self._describe_event(event)
                self._feed(event)
                return
            self._line(f"{_fmt_t(self.t)}   ← ({token} while recording: the caller stops talking)")
            return
        match token.kind:
            case "hangup":
                self._line(f"{_fmt_t(self.t)}   ← caller hangs up")
                self._feed(e.Hangup())
            case "timeout":
                self._line(f"{_fmt_t(self.t)}   ← (caller stays silent)")
            case "keys":
                for i, key in enumerate(token.keys):
                    if self.run.ended is not None:
                        break
                    if i:
                        self._advance(self.t + KEY_GAP)
                    self._line(f"{_fmt_t(self.t)}   ← DTMF \"{key}\"")
                    self._feed(e.Digit(key))
            case "wait":  # handled in _step
                pass

    def _feed(self, event: e.Event) -> None:
        self._execute(self.run.handle(event, self.now))

    # ------------------------------------------------------------------ commands
    def _execute(self, commands: list[e.Command]) -> None:
        for cmd in commands:
            self.commands.append((self.t, cmd))
            self._command(cmd)

    def _command(self, cmd: e.Command) -> None:
        match cmd:
            case e.EnterNode():
                self.node = cmd.node
                self.ready_epoch += 1
                self.ready_since = None
                where = f"{Path(cmd.pos.file).name}:{cmd.pos.line}" if cmd.pos.file else "?"
                flow = "" if cmd.flow == self.flow.id else f"{cmd.flow}/"
                self._line(f"{_fmt_t(self.t)} {flow}{cmd.node:<18} [{where}] {cmd.type}  (via {cmd.via})")
            case e.Play():
                duration = sum(self._duration(i) for i in cmd.items)
                files = tuple(i.path for i in cmd.items if isinstance(i, e.AudioFile))
                self.prompts.append(PlayedPrompt(self.t, self.node, cmd.text, files, duration,
                                                 cmd.barge_in, cmd.purpose, cmd.language))
                self.playing = (cmd.playback_id, self.t + duration)
                self.ready_epoch += 1
                self.ready_since = None
                self._line(f"{_fmt_t(self.t)}   PLAY {self._describe_media(cmd.items)} "
                           f"({duration:.1f}s{', barge-in' if cmd.barge_in else ''}"
                           f"{'' if cmd.purpose in ('prompt', 'say') else ', ' + cmd.purpose}"
                           f"{'' if cmd.language == self.flow.default_language else ', ' + cmd.language})")
            case e.StopPlayback():
                if self.playing is not None and self.playing[0] == cmd.playback_id:
                    self.playing = None
                    self._line(f"{_fmt_t(self.t)}   STOP playback (barge-in)")
                    # ARI reports PlaybackFinished for a stopped playback too: the run must ignore it.
                    self._schedule(0.0, "stopped", e.PromptFinished(cmd.playback_id))
            case e.StartTimer():
                self.timers[cmd.key] = self.t + cmd.seconds
            case e.CancelTimer():
                self.timers.pop(cmd.key, None)
            case e.HttpRequest():
                self._http(cmd)
            case e.CancelHttp():
                self._drop(f"http:{cmd.request_id}")
            case e.Enqueue():
                self._line(f"{_fmt_t(self.t)}   ENQUEUE {cmd.queue} skills=[{_skills(cmd.skills)}] "
                           f"priority={cmd.priority} max_wait={_opt_s(cmd.max_wait)}"
                           + (f" screen_pop={json.dumps(dict(cmd.screen_pop), ensure_ascii=False)}"
                              if cmd.screen_pop else ""))
                mock = self.mocks.queues.get(cmd.queue, QueueMock())
                if mock.position is not None or mock.ewt is not None:
                    self._schedule(0.0, "queue", e.QueueStatus(mock.position or 1, mock.ewt or 0.0))
                outcome = mock.outcome
                after = mock.after
                if outcome == "answered" and cmd.max_wait is not None and after > cmd.max_wait:
                    outcome, after = "timeout", cmd.max_wait
                agent = "agent-sim" if outcome == "answered" else None
                self._schedule(after, "queue", e.QueueResult(outcome, agent))
            case e.LeaveQueue():
                self._drop("queue")
                self._line(f"{_fmt_t(self.t)}   LEAVE queue {cmd.queue}")
            case e.Transfer():
                self._line(f"{_fmt_t(self.t)}   TRANSFER to {cmd.to} (timeout {cmd.timeout:g}s)")
                tmock = self.mocks.transfers.get(self.node, TransferMock())
                self._schedule(min(tmock.after, cmd.timeout), "transfer", e.TransferResult(tmock.outcome))
            case e.CancelTransfer():
                self._drop("transfer")
            case e.Record():
                self.recording = cmd
                self.record_token_used = False
                self.recording_node = self.node
                self.record_started = self.t
                length = self.mocks.voicemail.get(self.node, 8.0)
                self._line(f"{_fmt_t(self.t)}   RECORD mailbox={cmd.mailbox} max={cmd.max_length:g}s"
                           f"{' beep' if cmd.beep else ''} (caller speaks {length:g}s)")
                if length <= 0:
                    wait = cmd.silence_timeout if cmd.silence_timeout is not None else 5.0
                    self._schedule(wait, f"rec:{cmd.recording_id}", e.RecordingEmpty(cmd.recording_id))
                else:
                    spoken = min(length, cmd.max_length)
                    tail = 0.0 if length >= cmd.max_length else (
                        cmd.silence_timeout if cmd.silence_timeout is not None else 3.0)
                    self._schedule(spoken + tail, f"rec:{cmd.recording_id}",
                                   e.RecordingDone(cmd.recording_id, f"sim/{cmd.recording_id}.wav", spoken))
            case e.StopRecording():
                self._drop(f"rec:{cmd.recording_id}")
                self.recording = None
            case e.CreateCallbackLead():
                self._line(f"{_fmt_t(self.t)}   CALLBACK lead number={_mask_number(cmd.number)} "
                           f"earliest={cmd.earliest.isoformat(sep=' ', timespec='minutes')} "
                           f"queue={cmd.queue} "
                           f"keep_position={str(cmd.keep_position).lower()} window={cmd.window}")
                result: e.Event = (e.CallbackCreated("sim-lead-1") if self.mocks.callback.ok
                                   else e.CallbackFailed(self.mocks.callback.reason))
                self._schedule(0.1, "callback", result)
            case e.SafeHarbor():
                self._line(f"{_fmt_t(self.t)}   SAFE-HARBOR (counted as abandoned: "
                           f"{str(cmd.record_abandon).lower()})")
            case e.AddDnc():
                self._line(f"{_fmt_t(self.t)}   DNC add {_mask_number(cmd.number)} ({cmd.reason})")
            case e.SetVar():
                self.shown[cmd.name] = cmd.shown
                self._line(f"{_fmt_t(self.t)}   set {cmd.name}={cmd.shown}")
            case e.Note():
                self._line(f"{_fmt_t(self.t)}   {cmd.text}")
            case e.LogProblem():
                self.problems.append(cmd)
                where = f"{cmd.pos.file}:{cmd.pos.line}:{cmd.pos.col}" if cmd.pos.file else cmd.node
                self._line(f"{_fmt_t(self.t)}   PROBLEM [{where}] {cmd.message}")
            case e.HangupCall():
                self.hangup = cmd
                self.playing = None
            case e.Ended():
                self.playing = None
            case _:
                raise AssertionError(f"unhandled command {cmd!r}")

    def _http(self, cmd: e.HttpRequest) -> None:
        attempt = self.http_calls.get(cmd.node, 0)
        self.http_calls[cmd.node] = attempt + 1
        answers = self.mocks.http.get(cmd.node)
        self._line(f"{_fmt_t(self.t)}   HTTP {cmd.method} {cmd.url} (timeout {cmd.timeout:g}s"
                   f"{', attempt ' + str(attempt + 1) if attempt else ''})")
        tag = f"http:{cmd.request_id}"
        if not answers:
            self._line(f"{_fmt_t(self.t)}   (no mock for http node '{cmd.node}': answering with an error)")
            self._schedule(0.0, tag, e.HttpFailed(cmd.request_id, "error", "no mock"))
            return
        mock = answers[min(attempt, len(answers) - 1)]
        if mock.failure == "timeout" or mock.latency > cmd.timeout:
            self._schedule(cmd.timeout, tag, e.HttpFailed(cmd.request_id, "timeout"))
        elif mock.failure == "error":
            self._schedule(mock.latency, tag, e.HttpFailed(cmd.request_id, "error", "mocked error"))
        else:
            self._schedule(mock.latency, tag, e.HttpResult(cmd.request_id, mock.status, mock.json,
                                                           round(mock.latency * 1000)))

    # ------------------------------------------------------------------ presentation
    def _describe_event(self, event: e.Event) -> None:
        t = _fmt_t(self.t)
        match event:
            case e.HttpResult():
                body = json.dumps(event.json, ensure_ascii=False, sort_keys=True)
                self._line(f"{t}   ← HTTP {event.status} ({event.ms}ms) {_short(body)}")
            case e.HttpFailed():
                self._line(f"{t}   ← HTTP {event.reason}")
            case e.QueueStatus():
                self._line(f"{t}   ← queue position {event.position}, EWT {event.ewt:g}s")
            case e.QueueResult():
                self._line(f"{t}   ← queue {event.outcome}" + (f" ({event.agent})" if event.agent else ""))
            case e.TransferResult():
                self._line(f"{t}   ← transfer {event.outcome}")
            case e.RecordingDone():
                self._line(f"{t}   ← recording done ({event.duration:.1f}s)")
            case e.RecordingEmpty():
                self._line(f"{t}   ← recording empty")
            case e.CallbackCreated():
                self._line(f"{t}   ← callback lead created ({event.lead_id})")
            case e.CallbackFailed():
                self._line(f"{t}   ← callback failed ({event.reason})")
            case _:
                pass

    def _describe_media(self, items: Sequence[e.Media]) -> str:
        parts = []
        for item in items:
            match item:
                case e.AudioFile():
                    parts.append(item.path + (f' "{_short(item.transcript)}"' if item.transcript else ""))
                case e.Speech():
                    parts.append(f'tts:"{_short(item.text)}"')
                case e.SayDigits():
                    parts.append(f"digits:{item.digits}")
                case e.SayNumber():
                    parts.append(f"number:{item.number}")
                case e.Pause():
                    parts.append(f"silence:{item.seconds:g}s")
        return " + ".join(parts)

    def _duration(self, item: e.Media) -> float:
        match item:
            case e.AudioFile():
                try:
                    with wave.open(str(Path(self.flowset.root) / item.path), "rb") as wav:
                        return wav.getnframes() / float(wav.getframerate())
                except (OSError, EOFError, wave.Error):
                    return len(item.transcript or "") / TTS_CHARS_PER_SECOND + 0.5
            case e.Speech():
                return round(len(item.text) / TTS_CHARS_PER_SECOND + 0.3, 1)
            case e.SayDigits():
                return DIGIT_SECONDS * len(item.digits)
            case e.SayNumber():
                return 0.8
            case e.Pause():
                return item.seconds

    def _line(self, text: str) -> None:
        # PII (declared `pii: true`, or a collect with `mask_in_logs`) is masked wherever it
        # shows up: a URL, a read-back prompt, a screen pop. Longest values first.
        for value in sorted(self.run.pii_values(), key=len, reverse=True):
            if len(value) >= 3:
                text = text.replace(value, "*" * (len(value) - 2) + value[-2:])  # as SetVar shows it
        self.trace.append(text.rstrip())


_TIMER_LABELS = {
    "noinput": "no input (timeout)",
    "interdigit": "inter-digit timeout",
    "ivr_time": "max_ivr_time",
    "optout": "opt-out window over",
    "confirm": "no answer to the confirmation",
    "cbconfirm": "no answer to the confirmation",
}


def _timer_kind(key: str) -> str:
    return key if key == "ivr_time" else key.rsplit("-", 1)[-1].rstrip("0123456789")


def _skills(skills: Sequence[e.SkillNeed]) -> str:
    return ", ".join(f"{s.skill}≥{s.min_level}{'' if s.required else '?'}" for s in skills)


def _opt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:g}s"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mask_number(number: str) -> str:
    return number if len(number) <= 4 else "*" * (len(number) - 4) + number[-4:]


def default_zone(flowset: m.FlowSet, flow_id: str) -> str | None:
    """The time zone of the first schedule an hours node of the flow uses (so `--at 11:30`
    means 11:30 where the business is), or None."""
    flow = flowset.flows.get(flow_id)
    for node in flow.nodes.values() if flow else ():
        if isinstance(node, m.HoursNode) and node.schedule in flowset.schedules:
            return flowset.schedules[node.schedule].timezone
    return None


def parse_at(text: str, *, zone: str | None = None) -> dt.datetime:
    """``2025-12-24 11:30`` (local to `zone`, default UTC), or an ISO time with an offset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    raw = str(text).strip()
    try:
        value = dt.datetime.fromisoformat(raw.replace("T", " "))
    except ValueError:
        raise InputError(f"time {raw!r}: expected 'YYYY-MM-DD HH:MM' (optionally with +HH:MM)") from None
    if value.tzinfo is None:
        try:
            tz: dt.tzinfo = ZoneInfo(zone) if zone else dt.UTC
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {zone!r}") from None
        value = value.replace(tzinfo=tz)
    return value

# MODEL-STABLE
"""The typed, immutable model of a loaded IVR flow set (the files under `ivr_flows/`).

Built by `dialer.ivr.loader` from YAML, checked by `dialer.ivr.validate`, run by the IVR
interpreter. Everything here is a frozen, slotted dataclass: a `FlowSet` is a snapshot a call
can pin for its whole life (hot reload swaps the whole set, never edits it).

Shape::

    FlowSet
      root            directory the set was loaded from
      version         sha256 over the files' bytes (12 hex digits)
      flows           {flow id: Flow}                        one per `<id>.yaml`
      schedules       {name: Schedule}                       _schedules.yaml `schedules:`
      holiday_lists   {name: HolidayList}                    _schedules.yaml `holiday_lists:`
      queues          {name: Queue}                          _queues.yaml `queues:`
      skills          {name: Skill}                          _queues.yaml `skills:`
      mailboxes       {name: Mailbox}                        _queues.yaml `mailboxes:`
      routes          (Route(number, flow), ...)             _routes.yaml `routes:`
      campaigns       {name: Campaign}                       _campaigns.yaml (optional)

    Flow
      id, kind (inbound|outbound|subflow), description, languages (first = default)
      defaults: Defaults(tts_voice {lang: espeak-ng voice}, input: InputDefaults,
                         on_error: Transition | None, language_fallback, max_node_visits,
                         max_ivr_time)
      hotkeys: (DtmfOption(key, target, pos), ...)
      variables: {name: Variable(type, default, pii)}
      start: node id;  nodes: {node id: Node}
      templates: (TemplateRef(text, pos, path, kind), ...)   every Jinja string in the file

    Node = SayNode | MenuNode | CollectNode | BranchNode | SetNode | HoursNode | HttpNode
         | QueueNode | TransferNode | CallbackNode | VoicemailNode | SubflowNode | ReturnNode
         | SafeHarborNode | HangupNode
      every node has `id`, `type` (its YAML `type:` string), `pos` (the node's key in `nodes:`)
      and `field_pos` ({YAML field name: position of its value}); outcomes are `Transition`s.
      `OUTCOMES` lists each type's outcomes and their fallbacks; `outcome(node, name,
      flow.defaults.on_error)` resolves one (the interpreter and the validator share it).
      `Flow.broken_nodes`: ids written in the file that could not be built (the set has errors).

    Transition(goto, set, say, returns, pos)
      goto: a node id, or one of SPECIAL_TARGETS (repeat, back, top, hangup), or None when the
      transition is a subflow return (`{return: outcome}`, then `returns` holds the outcome).
      set: ((target name, value template), ...) e.g. (("vars.reason", "billing"),)

    Prompt(variants)
      variants: {language or ANY_LANGUAGE: (PromptItem, ...)}; `Prompt.for_language(lang)`.
      PromptItem = Recording(name, tts, transcript) | Tts(text) | SayAs(kind, value, currency)
                 | Silence(seconds)

Units: every duration is a float number of **seconds** (the YAML says `6s`, `2500ms`, `1m`).
Positions: `Pos(file, line, col)`, 1-based, `file` as given to the loader (relative paths stay
relative, so messages read `ivr_flows/x.yaml:58:12`). Times of day are minutes after midnight
(0..1440). Days of the week are 0 = Monday .. 6 = Sunday (as `datetime.weekday()`).

Templates are kept as plain strings in the nodes (the interpreter renders them with the
sandboxed environment of `dialer.ivr.templates`); `Flow.templates` lists each one with its
position and context so the validator can parse them and point at the line. Conditions
(`Condition(op="expr").value`, `SkillRequirement.when`, `HttpNode.success_when`,
`CollectValidation(kind="expr").value`) are Jinja *expressions*; they may be written with or
without `{{ }}`: evaluate `expression_of(text)` with `compile_expression`.

`HoursNode.at` is a naive datetime in the schedule's time zone; `dialer.ivr.schedule.evaluate`
answers open/closed/holiday for an aware datetime.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# ----------------------------------------------------------------------------- positions


def expression_of(text: str) -> str:
    """A condition's expression: `{{ a == b }}` and `a == b` both give `a == b`."""
    stripped = text.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        return stripped[2:-2].strip()
    return stripped


@dataclass(frozen=True, slots=True, order=True)
class Pos:
    """Where an element was written: file as given to the loader, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_POS = Pos("", 0, 0)

# ----------------------------------------------------------------------------- prompts

ANY_LANGUAGE = "*"  # key of `Prompt.variants` for a prompt written once for every language

SayAsKind = Literal["digits", "number", "currency", "date"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """`file:name` or `{file: name, tts: ...}`: prompts/<lang>/<name>.wav, else the TTS text."""

    name: str
    tts: str | None = None  # fallback text (a template); doubles as the transcript
    transcript: str | None = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Tts:
    """`tts:text`: spoken by the language's TTS voice. `text` is a template."""

    text: str
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class SayAs:
    """`{say_digits: "{{ vars.account_id }}"}` and friends: a value read out by kind."""

    kind: SayAsKind
    value: str  # a template
    currency: str | None = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """`{silence: 500ms}`."""

    seconds: float
    pos: Pos = NO_POS


PromptItem = Recording | Tts | SayAs | Silence


@dataclass(frozen=True, slots=True, kw_only=True)
class Prompt:
    """A prompt: a sequence of items per language (`ANY_LANGUAGE` when written once)."""

    variants: Mapping[str, tuple[PromptItem, ...]]
    pos: Pos = NO_POS

    def for_language(self, language: str) -> tuple[PromptItem, ...] | None:
        """The items for `language`, or those written for every language, or None."""
        items = self.variants.get(language)
        if items is None:
            items = self.variants.get(ANY_LANGUAGE)
        return items

    @property
    def per_language(self) -> bool:
        return ANY_LANGUAGE not in self.variants


# ----------------------------------------------------------------------------- transitions

SPECIAL_TARGETS = frozenset({"repeat", "back", "top", "hangup"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """Where an outcome leads. `goto` is a node id or a special target; a subflow's
    `{return: outcome}` has `goto=None` and `returns=outcome`."""

    goto: str | None
    set: tuple[tuple[str, str], ...] = ()
    say: Prompt | None = None
    returns: str | None = None
    pos: Pos = NO_POS

    @property
    def is_special(self) -> bool:
        return self.goto in SPECIAL_TARGETS


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfOption:
    """One DTMF key (raw text as written, `"01"` stays `"01"`) and its transition."""

    key: str
    target: Transition
    pos: Pos = NO_POS  # of the key


# ----------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBase:
    id: str
    type: str
    pos: Pos = NO_POS  # the node's key under `nodes:`
    field_pos: Mapping[str, Pos] = field(default_factory=dict)  # YAML field -> its value

    def pos_of(self, name: str) -> Pos:
        """Position of field `name`'s value, else the node's own position."""
        return self.field_pos.get(name, self.pos)


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSettings:
    """Input parameters shared by menu and collect; None = take `Flow.defaults.input`."""

    timeout: float | None = None
    inter_digit_timeout: float | None = None
    max_no_input: int | None = None
    max_no_match: int | None = None
    max_attempts: int | None = None
    barge_in: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SayNode(NodeBase):
    prompt: Prompt | None = None
    barge_in: bool | None = None
    next: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuNode(NodeBase):
    prompt: Prompt | None = None
    reprompts: Mapping[int, Prompt] = field(default_factory=dict)  # attempt number -> prompt
    no_input_prompt: tuple[Prompt, ...] = ()
    no_match_prompt: tuple[Prompt, ...] = ()
    input: InputSettings = InputSettings()
    options: tuple[DtmfOption, ...] = ()
    on_no_input: Transition | None = None
    on_no_match: Transition | None = None
    on_max_attempts: Transition | None = None
    hotkeys: bool = True  # the flow's hotkeys are active in this node
    speech: Mapping[str, object] | None = None  # reserved (ASR); kept for forward compatibility

    def option(self, key: str) -> Transition | None:
        for opt in self.options:
            if opt.key == key:
                return opt.target
        return None


CollectCheck = Literal["regex", "luhn", "length", "expr"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectValidation:
    kind: CollectCheck
    value: str | int | bool  # the regex, the expression, the length; True for luhn
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirm:
    prompt: Prompt | None = None
    yes_key: str = "1"
    no_key: str = "2"
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectNode(NodeBase):
    prompt: Prompt | None = None
    reprompts: Mapping[int, Prompt] = field(default_factory=dict)
    no_input_prompt: tuple[Prompt, ...] = ()
    no_match_prompt: tuple[Prompt, ...] = ()
    input: InputSettings = InputSettings()
    into: str | None = None  # e.g. "vars.account_id"
    min_digits: int = 1
    max_digits: int = 20
    finish_on_key: str | None = None
    validate: CollectValidation | None = None
    confirm: Confirm | None = None
    mask_in_logs: bool = False
    next: Transition | None = None
    on_no_input: Transition | None = None
    on_no_match: Transition | None = None
    on_max_attempts: Transition | None = None
    hotkeys: bool = True


ConditionOp = Literal["equals", "in", "matches", "gt", "lt", "between", "is_blank", "expr"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """`{var: vars.tier, equals: gold}` (op and value), or `{expr: "..."}` (op "expr", var None,
    value the expression text)."""

    op: ConditionOp
    var: str | None = None
    value: object = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchCase:
    condition: Condition
    goto: Transition
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchNode(NodeBase):
    when: tuple[BranchCase, ...] = ()
    else_: Transition | None = None  # YAML `else`


@dataclass(frozen=True, slots=True, kw_only=True)
class SetNode(NodeBase):
    assignments: tuple[tuple[str, str], ...] = ()  # (target, value template), in file order
    next: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HoursNode(NodeBase):
    schedule: str = ""
    at: dt.datetime | None = None  # fixed evaluation time (tests)
    open: Transition | None = None
    closed: Transition | None = None
    holiday: Transition | None = None  # None: a holiday goes to `closed`


@dataclass(frozen=True, slots=True, kw_only=True)
class WhileWaiting:
    after: float = 0.0
    prompt: Prompt | None = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpNode(NodeBase):
    method: str = "GET"
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: object = None
    timeout: float | None = None
    allow_long: bool = False
    retries: int = 0
    while_waiting: WhileWaiting | None = None
    save: tuple[tuple[str, str], ...] = ()  # (target, JSON path)
    success_when: str | None = None
    on_success: Transition | None = None
    on_error: Transition | None = None
    on_timeout: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SkillRequirement:
    skill: str
    min_level: int = 1
    required: bool = True
    when: str | None = None  # template; the requirement applies when it renders truthy
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionAnnouncement:
    every: float = 60.0
    only_if_improved: bool = False
    prompt: Prompt | None = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCallback:
    after: float | None = None
    when_ewt_over: float | None = None
    key: str = "1"
    prompt: Prompt | None = None
    goto: Transition | None = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class ScreenPop:
    title: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueNode(NodeBase):
    queue: str = ""
    skills: tuple[SkillRequirement, ...] = ()
    relax_after: float | None = None
    priority: int | str = 0  # int, or a template rendering to one
    max_wait: float | None = None
    moh: str | None = None
    announce_position: PositionAnnouncement | None = None
    announce_wait_time: PositionAnnouncement | None = None
    offer_callback: OfferCallback | None = None
    exit_keys: tuple[DtmfOption, ...] = ()
    screen_pop: ScreenPop | None = None
    whisper: Prompt | None = None
    on_timeout: Transition | None = None
    on_full: Transition | None = None
    on_no_agents: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferNode(NodeBase):
    to: str = ""
    caller_id: str | None = None
    timeout: float | None = None
    screen_pop: ScreenPop | None = None
    whisper: Prompt | None = None
    on_no_answer: Transition | None = None
    on_busy: Transition | None = None
    on_failed: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackNode(NodeBase):
    number: str = "{{ caller.number }}"
    confirm_number: bool = False
    queue: str | None = None
    keep_position: bool = False
    attempts: int = 1
    retry_delay: float | None = None
    window: str | None = None  # a schedule name
    earliest: float | None = None  # seconds from now (`+2m`)
    on_scheduled: Transition | None = None
    on_error: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailNode(NodeBase):
    mailbox: str = ""
    greeting: Prompt | None = None
    max_length: float = 120.0
    silence_timeout: float | None = None
    finish_on_key: str | None = "#"
    beep: bool = True
    notify: Mapping[str, object] = field(default_factory=dict)
    next: Transition | None = None
    on_no_audio: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubflowNode(NodeBase):
    flow: str = ""
    args: Mapping[str, str] = field(default_factory=dict)
    returns: Mapping[str, Transition] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnNode(NodeBase):
    outcome: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SafeHarborNode(NodeBase):
    """The abandonment message of an outbound call (FTC TSR 16 CFR 310.4(b)(4)(iii): seller's
    name and a callback number, within 2 s of the greeting; an opt-out key for the DNC list).
    Without `prompt` the interpreter speaks a built-in text made of seller and number."""

    prompt: Prompt | None = None
    seller: str | None = None
    callback_number: str | None = None
    opt_out_key: str | None = None
    on_opt_out: Transition | None = None
    record_abandon: bool = True
    next: Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupNode(NodeBase):
    prompt: Prompt | None = None
    disposition: str | None = None
    cause: int | None = None  # Q.850 cause code


Node = (SayNode | MenuNode | CollectNode | BranchNode | SetNode | HoursNode | HttpNode
        | QueueNode | TransferNode | CallbackNode | VoicemailNode | SubflowNode | ReturnNode
        | SafeHarborNode | HangupNode)

NODE_TYPES: Mapping[str, type[NodeBase]] = {
    "say": SayNode, "menu": MenuNode, "collect": CollectNode, "branch": BranchNode,
    "set": SetNode, "hours": HoursNode, "http": HttpNode, "queue": QueueNode,
    "transfer": TransferNode, "callback": CallbackNode, "voicemail": VoicemailNode,
    "subflow": SubflowNode, "return": ReturnNode, "safe_harbor": SafeHarborNode,
    "hangup": HangupNode,
}

# Nodes that wait for something outside the flow (caller input, an agent, a server): a loop
# through one of them can exit (E104).
WAITING_NODE_TYPES = frozenset({"menu", "collect", "queue", "http", "transfer", "callback",
                                "voicemail", "subflow"})

# Outcomes of each node type (model attribute names) and what is taken when one is absent, in
# order: another outcome of the same node, "defaults.on_error" (the flow's), or "hangup". An
# outcome with no fallback is required (E102). The interpreter and the validator both read this.
OUTCOMES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "say": {"next": ()},
    "menu": {"on_no_input": ("on_max_attempts", "defaults.on_error"),
             "on_no_match": ("on_max_attempts", "defaults.on_error"),
             "on_max_attempts": ("defaults.on_error",)},
    "collect": {"next": (),
                "on_no_input": ("on_max_attempts", "defaults.on_error"),
                "on_no_match": ("on_max_attempts", "defaults.on_error"),
                "on_max_attempts": ("defaults.on_error",)},
    "branch": {"else_": ()},
    "set": {"next": ()},
    "hours": {"open": (), "closed": (), "holiday": ("closed",)},
    "http": {"on_success": (), "on_error": ("defaults.on_error",),
             "on_timeout": ("on_error", "defaults.on_error")},
    "queue": {"on_timeout": ("defaults.on_error",), "on_full": ("defaults.on_error",),
              "on_no_agents": ("defaults.on_error",)},
    "transfer": {"on_no_answer": ("on_failed", "defaults.on_error"),
                 "on_busy": ("on_failed", "defaults.on_error"),
                 "on_failed": ("defaults.on_error",)},
    "callback": {"on_scheduled": (), "on_error": ("defaults.on_error",)},
    "voicemail": {"next": (), "on_no_audio": ("next",)},
    "subflow": {},
    "return": {},
    "safe_harbor": {"next": ("hangup",), "on_opt_out": ("next", "hangup")},
    "hangup": {},
}

HANGUP = Transition(goto="hangup")


def outcome(node: Node, name: str, on_error: Transition | None) -> Transition | None:
    """The transition for outcome `name` of `node`, following OUTCOMES' fallbacks; `on_error`
    is the flow's `defaults.on_error`. None when nothing applies (the validator makes that
    E102)."""
    chain = (name, *OUTCOMES.get(node.type, {}).get(name, ()))
    for step in chain:
        if step == "defaults.on_error":
            if on_error is not None:
                return on_error
        elif step == "hangup":
            return HANGUP
        else:
            value = getattr(node, step, None)
            if isinstance(value, Transition):
                return value
    return None


# ----------------------------------------------------------------------------- flows

# Variables every flow has without declaring them: `hours` sets vars.holiday_name.
BUILTIN_VARIABLES = frozenset({"holiday_name"})

FlowKind = Literal["inbound", "outbound", "subflow"]
VariableType = Literal["string", "digits", "int", "decimal", "bool", "date", "phone"]
TemplateKind = Literal["prompt", "screen_pop", "http", "condition", "value"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateRef:
    """A Jinja string found in a flow: its text, where, the YAML path
    (`nodes.main_menu.prompt.en`), the node it belongs to (None at flow level) and its kind:
    `prompt` (spoken), `screen_pop`, `http` (url/headers/query/body: the only place secrets
    may go), `condition` (a bare expression: branch `expr`, collect `validate.expr`), `value`
    (assignments and everything else)."""

    text: str
    pos: Pos
    path: str
    kind: TemplateKind
    node: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable:
    name: str
    type: VariableType = "string"
    default: object = None
    pii: bool = False
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class InputDefaults:
    timeout: float = 5.0
    inter_digit_timeout: float = 2.0
    max_no_input: int = 3
    max_no_match: int = 3
    max_attempts: int | None = None
    barge_in: bool = True


LanguageFallback = Literal["error", "default_language", "tts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    tts_voice: Mapping[str, str] = field(default_factory=dict)  # language -> espeak-ng voice
    input: InputDefaults = InputDefaults()
    on_error: Transition | None = None
    language_fallback: LanguageFallback = "error"
    max_node_visits: int = 50
    max_ivr_time: float = 600.0
    field_pos: Mapping[str, Pos] = field(default_factory=dict)  # e.g. "tts.voice.es"


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    id: str
    file: str
    kind: FlowKind = "inbound"
    description: str = ""
    languages: tuple[str, ...] = ("en",)
    defaults: Defaults = Defaults()
    hotkeys: tuple[DtmfOption, ...] = ()
    variables: Mapping[str, Variable] = field(default_factory=dict)
    start: str = ""
    nodes: Mapping[str, Node] = field(default_factory=dict)
    templates: tuple[TemplateRef, ...] = ()
    broken_nodes: frozenset[str] = frozenset()  # written but not built (errors reported)
    pos: Pos = NO_POS  # the `flow:` value
    field_pos: Mapping[str, Pos] = field(default_factory=dict)  # top-level key -> its value

    @property
    def default_language(self) -> str:
        return self.languages[0] if self.languages else "en"


# ----------------------------------------------------------------------------- schedules


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeRange:
    """Minutes after midnight, `start < end <= 1440` ("08:00-20:00" is 480..1200)."""

    start: int
    end: int
    pos: Pos = NO_POS

    def contains(self, minute: int) -> bool:
        return self.start <= minute < self.end


@dataclass(frozen=True, slots=True, kw_only=True)
class WeeklyHours:
    days: frozenset[int]  # 0 = Monday
    hours: tuple[TimeRange, ...]
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Holiday:
    date: dt.date
    name: str
    hours: tuple[TimeRange, ...] = ()  # open hours on that day (a half day); () = closed
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class HolidayList:
    name: str
    holidays: tuple[Holiday, ...]
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleException:
    """Beats the weekly hours; later entries win. Either a whole day (`date`, then `hours`
    are the open hours that day, or `closed`) or a local-time span (`start`..`end`, then
    `closed` True closes and False opens it)."""

    name: str = ""
    date: dt.date | None = None
    hours: tuple[TimeRange, ...] = ()
    start: dt.datetime | None = None  # naive, in the schedule's time zone
    end: dt.datetime | None = None
    closed: bool = False
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    name: str
    timezone: str
    open: tuple[WeeklyHours, ...] = ()
    holidays: tuple[str, ...] = ()  # HolidayList names
    exceptions: tuple[ScheduleException, ...] = ()
    pos: Pos = NO_POS
    field_pos: Mapping[str, Pos] = field(default_factory=dict)


# ----------------------------------------------------------------------------- queues, routes


@dataclass(frozen=True, slots=True, kw_only=True)
class Skill:
    name: str
    pos: Pos = NO_POS


QueueStrategy = Literal["longest_idle", "ring_all", "round_robin", "fewest_calls", "random"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue:
    name: str
    strategy: QueueStrategy = "longest_idle"
    max_callers: int | None = None
    moh: str | None = None
    wrapup: float = 0.0
    skills: tuple[str, ...] = ()  # skills this queue's agents are matched on (informative)
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    name: str
    email: str | None = None
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A dialled number (DNIS, as Asterisk hands it to Stasis: "+15550100", "100") -> flow."""

    number: str
    flow: str
    pos: Pos = NO_POS


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    """`_campaigns.yaml`: which outbound flow a dialing campaign runs, and the facts the
    validator checks it against (ring time, seller, lead fields, calling window)."""

    name: str
    flow: str
    dial_mode: str = "predictive"  # preview | progressive | power | predictive | agentless
    ring_timeout: float | None = None
    seller: str | None = None
    callback_number: str | None = None
    lead_schema: Mapping[str, str] = field(default_factory=dict)  # lead field -> type
    calling_window: str | None = None  # a schedule name
    pos: Pos = NO_POS
    field_pos: Mapping[str, Pos] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowSet:
    root: str
    version: str = ""
    flows: Mapping[str, Flow] = field(default_factory=dict)
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    holiday_lists: Mapping[str, HolidayList] = field(default_factory=dict)
    queues: Mapping[str, Queue] = field(default_factory=dict)
    skills: Mapping[str, Skill] = field(default_factory=dict)
    mailboxes: Mapping[str, Mailbox] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    campaigns: Mapping[str, Campaign] = field(default_factory=dict)  # _campaigns.yaml

    def flow_for_number(self, number: str) -> Flow | None:
        """The flow routed from a dialled number, or None."""
        for route in self.routes:
            if route.number == number:
                return self.flows.get(route.flow)
        return None

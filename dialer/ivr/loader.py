"""Load a directory of IVR flow files into a `FlowSet`, with diagnostics instead of exceptions.

Entry points:

* `load_flowset(directory) -> (FlowSet | None, [Diagnostic])`: parse, build and validate every
  file of the directory; the FlowSet is None when any *error* was found (warnings don't block).
  This is what the server calls on every (re)load: it never raises on bad input, a broken file
  becomes diagnostics and the caller keeps its last good snapshot.
* `load_files(directory) -> (FlowSet, [Diagnostic])`: parse and build only (no cross-file
  checks); the FlowSet holds whatever could be built. For tools that want to go on anyway.

Files: `<flow>.yaml` (one flow each, `flow:` equal to the stem), and the shared `_schedules.yaml`,
`_queues.yaml`, `_routes.yaml` and the optional `_campaigns.yaml`. Sub-directories (`prompts/`,
`tests/`) are not flow files.

This module reports the codes about the shape of a file (E001-E006, E505, E507 for dates
it cannot read); `dialer.ivr.validate` checks meaning and cross references.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from dialer.ivr.diagnostics import Diagnostic, did_you_mean, sorted_diagnostics
from dialer.ivr.model import (
    ANY_LANGUAGE,
    NODE_TYPES,
    BranchCase,
    Campaign,
    CollectValidation,
    Condition,
    Confirm,
    Defaults,
    DtmfOption,
    Flow,
    FlowSet,
    Holiday,
    HolidayList,
    InputDefaults,
    InputSettings,
    Mailbox,
    Node,
    OfferCallback,
    Pos,
    PositionAnnouncement,
    Prompt,
    PromptItem,
    Queue,
    Recording,
    Route,
    SayAs,
    Schedule,
    ScheduleException,
    ScreenPop,
    Silence,
    Skill,
    SkillRequirement,
    TemplateKind,
    TemplateRef,
    TimeRange,
    Transition,
    Tts,
    Variable,
    WeeklyHours,
    WhileWaiting,
    expression_of,
)
from dialer.ivr.yamltree import YMap, YNode, YScalar, YSeq, parse_yaml

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 2_000_000  # a flow file is text written by people; anything bigger is a mistake
FLOW_ID = re.compile(r"^[a-z][a-z0-9_]*$")
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_DURATION = re.compile(r"^\+?\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME_RANGE = re.compile(r"^([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})$")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


# ----------------------------------------------------------------------------- file context


@dataclass
class _Ctx:
    file: str
    diags: list[Diagnostic] = field(default_factory=list)
    templates: list[TemplateRef] = field(default_factory=list)
    languages: tuple[str, ...] = ()
    node: str | None = None

    def error(self, code: str, message: str, pos: Pos, help: str | None = None) -> None:
        self.diags.append(Diagnostic(code, message, pos, help))

    def template(self, text: str, pos: Pos, path: str, kind: TemplateKind) -> None:
        if kind == "condition" or is_template(text):
            self.templates.append(TemplateRef(text=text, pos=pos, path=path, kind=kind,
                                              node=self.node))


def _describe(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a map"
    if isinstance(node, YSeq):
        return "a list"
    if node.value is None:
        return "nothing (null)"
    return f"{type(node.value).__name__} {node.raw!r}" if not isinstance(node.value, str) \
        else f"text {node.raw!r}"


class _Map:
    """The fields of one YAML map: typed getters that report E004, `finish()` reports E003."""

    def __init__(self, ctx: _Ctx, node: YMap, path: str, allowed: Iterable[str], what: str) -> None:
        self.ctx, self.node, self.path, self.what = ctx, node, path, what
        self.allowed = frozenset(allowed)
        self.field_pos = {k.raw: v.pos for k, v in node.items}
        self.key_pos = {k.raw: k.pos for k, _ in node.items}

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> YNode | None:
        return self.node.get(key)

    def pos(self, key: str) -> Pos:
        return self.field_pos.get(key, self.node.pos)

    def has(self, key: str) -> bool:
        return self.node.get(key) is not None

    def finish(self, extra_help: str | None = None) -> None:
        for key, _ in self.node.items:
            if key.raw not in self.allowed:
                hint = did_you_mean(key.raw, self.allowed)
                self.ctx.error("E003", f"unknown field '{key.raw}' in {self.what}", key.pos,
                               help=hint or extra_help or
                               f"known fields: {', '.join(sorted(self.allowed))}")

    def required(self, key: str) -> YNode | None:
        value = self.get(key)
        if value is None:
            self.ctx.error("E004", f"{self.what}: missing required field '{key}'", self.node.pos)
        return value

    def text(self, key: str, *, required: bool = False, kind: TemplateKind = "value") -> str | None:
        value = self.required(key) if required else self.get(key)
        return None if value is None else text(self.ctx, value, self.sub(key), kind)

    def whole(self, key: str) -> int | None:
        value = self.get(key)
        return None if value is None else integer(self.ctx, value, self.sub(key))

    def flag(self, key: str) -> bool | None:
        value = self.get(key)
        return None if value is None else boolean(self.ctx, value, self.sub(key))

    def duration(self, key: str) -> float | None:
        value = self.get(key)
        return None if value is None else duration(self.ctx, value, self.sub(key))

    def transition(self, key: str) -> Transition | None:
        value = self.get(key)
        return None if value is None else transition(self.ctx, value, self.sub(key))

    def prompt(self, key: str, *, required: bool = False) -> Prompt | None:
        """A prompt; its position is the field's key (`prompt:`), where admins look."""
        value = self.required(key) if required else self.get(key)
        built = None if value is None else prompt(self.ctx, value, self.sub(key))
        return None if built is None else replace(built, pos=self.key_pos[key])


def as_map(ctx: _Ctx, node: YNode, path: str) -> YMap | None:
    if isinstance(node, YMap):
        return node
    if isinstance(node, YScalar) and node.value is None:
        return YMap((), node.pos)
    ctx.error("E004", f"'{path}' must be a map, not {_describe(node)}", node.pos)
    return None


def as_list(ctx: _Ctx, node: YNode, path: str) -> tuple[YNode, ...]:
    if isinstance(node, YSeq):
        return node.items
    ctx.error("E004", f"'{path}' must be a list, not {_describe(node)}", node.pos)
    return ()


def text(ctx: _Ctx, node: YNode, path: str, kind: TemplateKind = "value") -> str | None:
    if isinstance(node, YScalar) and node.value is not None and not isinstance(node.value, bool):
        result = node.raw if not isinstance(node.value, str) else node.value
        ctx.template(result, node.pos, path, kind)
        return result
    ctx.error("E004", f"'{path}' must be text, not {_describe(node)}", node.pos)
    return None


def integer(ctx: _Ctx, node: YNode, path: str) -> int | None:
    if isinstance(node, YScalar) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    ctx.error("E004", f"'{path}' must be a whole number, not {_describe(node)}", node.pos)
    return None


def boolean(ctx: _Ctx, node: YNode, path: str) -> bool | None:
    if isinstance(node, YScalar) and isinstance(node.value, bool):
        return node.value
    hint = "YAML 1.2 booleans are true and false" if isinstance(node, YScalar) and \
        node.raw.lower() in ("yes", "no", "on", "off", "y", "n") else None
    ctx.error("E004", f"'{path}' must be true or false, not {_describe(node)}", node.pos, help=hint)
    return None


def parse_duration(raw: str) -> float | None:
    match = _DURATION.match(raw.strip())
    if not match:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def duration(ctx: _Ctx, node: YNode, path: str) -> float | None:
    """`6s`, `2500ms`, `1m`, `1.5h`; a bare number is refused (seconds or milliseconds?)."""
    if isinstance(node, YScalar) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        ctx.error("E004", f"'{path}': a duration needs a unit, got {node.raw}", node.pos,
                  help=f"write {node.raw}s (seconds) or {node.raw}ms (milliseconds)")
        return None
    if isinstance(node, YScalar) and isinstance(node.value, str):
        seconds = parse_duration(node.value)
        if seconds is not None:
            return seconds
    ctx.error("E004", f"'{path}' must be a duration with a unit (500ms, 6s, 2m, 1h), "
                      f"not {_describe(node)}", node.pos)
    return None


def dtmf_key(ctx: _Ctx, node: YNode, path: str) -> str | None:
    """One DTMF key or key sequence as written (`01` stays "01")."""
    if isinstance(node, YScalar) and node.value is not None and not isinstance(node.value, bool):
        return node.raw
    ctx.error("E004", f"'{path}' must be a DTMF key such as \"1\" or \"#\", not {_describe(node)}",
              node.pos)
    return None


# ----------------------------------------------------------------------------- transitions


TRANSITION_FIELDS = ("goto", "set", "say", "return")


def transition(ctx: _Ctx, node: YNode, path: str) -> Transition | None:
    if isinstance(node, YScalar):
        if isinstance(node.value, str) and node.value:
            return Transition(goto=node.value, pos=node.pos)
        ctx.error("E004", f"'{path}' must name a node (or repeat, back, top, hangup), "
                          f"not {_describe(node)}", node.pos)
        return None
    mapping = as_map(ctx, node, path)
    if mapping is None:
        return None
    fields = _Map(ctx, mapping, path, TRANSITION_FIELDS, f"transition '{path}'")
    fields.finish()
    goto = fields.text("goto")
    returns = fields.text("return")
    sets = assignments(ctx, fields.get("set"), fields.sub("set")) if fields.has("set") else ()
    say = fields.prompt("say")
    if goto is None and returns is None:
        ctx.error("E004", f"transition '{path}' needs 'goto' (or 'return' in a subflow)", mapping.pos)
        return None
    pos = fields.pos("goto") if goto is not None else fields.pos("return")
    return Transition(goto=goto, set=sets, say=say, returns=returns, pos=pos)


def assignments(ctx: _Ctx, node: YNode | None, path: str) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    mapping = as_map(ctx, node, path)
    if mapping is None:
        return ()
    out: list[tuple[str, str]] = []
    for key, value in mapping.items:
        rendered = _value_text(ctx, value, f"{path}.{key.raw}", "value")
        if rendered is not None:
            out.append((key.raw, rendered))
    return tuple(out)


def _value_text(ctx: _Ctx, node: YNode, path: str, kind: TemplateKind) -> str | None:
    """A scalar value as text: strings as they are, numbers and booleans as written (a null is
    the empty string)."""
    if isinstance(node, YScalar):
        if node.value is None:
            return ""
        if isinstance(node.value, str):
            ctx.template(node.value, node.pos, path, kind)
            return node.value
        return node.raw
    ctx.error("E004", f"'{path}' must be a single value, not {_describe(node)}", node.pos)
    return None


# ----------------------------------------------------------------------------- prompts

ITEM_FIELDS = ("file", "tts", "transcript", "say_digits", "say_number", "say_currency",
               "say_date", "currency", "silence")


def prompt(ctx: _Ctx, node: YNode, path: str) -> Prompt | None:
    """`file:x` | `tts:...` | an item map | a list of items | a map language -> any of those."""
    if isinstance(node, YMap) and node.items and \
            not any(k.raw in ITEM_FIELDS for k, _ in node.items):
        variants: dict[str, tuple[PromptItem, ...]] = {}
        for key, value in node.items:
            lang = key.raw
            if not LANGUAGE_TAG.match(lang):
                hint = did_you_mean(lang, ITEM_FIELDS)
                ctx.error("E003", f"unknown field '{lang}' in prompt '{path}' (not a prompt "
                                  f"field nor a language tag)", key.pos,
                          help=hint or f"prompt fields: {', '.join(ITEM_FIELDS)}")
                continue
            if ctx.languages and lang not in ctx.languages:
                ctx.error("E003", f"prompt '{path}' has a variant for '{lang}', which is not one "
                                  f"of the flow's languages ({', '.join(ctx.languages)})", key.pos,
                          help=did_you_mean(lang, ctx.languages) or
                          f"add '{lang}' to `languages:` or remove this variant")
                continue
            items = _items(ctx, value, f"{path}.{lang}")
            if items is not None:
                variants[lang] = items
        return Prompt(variants=variants, pos=node.pos) if variants else None
    items = _items(ctx, node, path)
    return None if items is None else Prompt(variants={ANY_LANGUAGE: items}, pos=node.pos)


def _items(ctx: _Ctx, node: YNode, path: str) -> tuple[PromptItem, ...] | None:
    if isinstance(node, YSeq):
        out: list[PromptItem] = []
        for index, item in enumerate(node.items):
            one = _item(ctx, item, f"{path}[{index}]")
            if one is not None:
                out.append(one)
        if not out:
            ctx.error("E004", f"prompt '{path}' is empty", node.pos)
            return None
        return tuple(out)
    one = _item(ctx, node, path)
    return None if one is None else (one,)


def _item(ctx: _Ctx, node: YNode, path: str) -> PromptItem | None:
    if isinstance(node, YScalar) and isinstance(node.value, str):
        value = node.value
        if value.startswith("file:"):
            name = value[5:].strip()
            if name:
                return Recording(name=name, pos=node.pos)
        elif value.startswith("tts:"):
            spoken = value[4:].strip()
            if spoken:
                ctx.template(spoken, node.pos, path, "prompt")
                return Tts(text=spoken, pos=node.pos)
        ctx.error("E004", f"prompt '{path}' must start with 'file:' or 'tts:', got {value!r}",
                  node.pos, help=f'write "tts:{value}" to speak this text, or "file:NAME" '
                                 f"for prompts/<lang>/NAME.wav")
        return None
    if not isinstance(node, YMap):
        ctx.error("E004", f"prompt '{path}' must be 'file:NAME', 'tts:TEXT', a map or a list, "
                          f"not {_describe(node)}", node.pos)
        return None
    fields = _Map(ctx, node, path, ITEM_FIELDS, f"prompt '{path}'")
    fields.finish()
    kinds = [k for k in ("file", "tts", "say_digits", "say_number", "say_currency", "say_date",
                         "silence") if fields.has(k)]
    if "file" in kinds:
        file_name = fields.text("file")
        tts = fields.text("tts", kind="prompt")
        transcript = fields.text("transcript", kind="prompt")
        extra = [k for k in kinds if k not in ("file", "tts")]
        if extra:
            ctx.error("E003", f"prompt '{path}': '{extra[0]}' cannot be combined with 'file'",
                      fields.pos(extra[0]), help="use a list of prompt items")
        return None if not file_name else Recording(name=file_name, tts=tts, transcript=transcript,
                                               pos=node.pos)
    if len(kinds) != 1:
        ctx.error("E004", f"prompt '{path}' needs exactly one of file, tts, say_digits, "
                          f"say_number, say_currency, say_date, silence", node.pos)
        return None
    item_kind = kinds[0]
    if item_kind == "tts":
        tts_text = fields.text("tts", kind="prompt")
        return None if tts_text is None else Tts(text=tts_text, pos=node.pos)
    if item_kind == "silence":
        seconds = fields.duration("silence")
        return None if seconds is None else Silence(seconds=seconds, pos=node.pos)
    said = fields.text(item_kind, kind="prompt")
    currency = fields.text("currency")
    say_kind = cast(Any, item_kind.removeprefix("say_"))
    return None if said is None else SayAs(kind=say_kind, value=said, currency=currency,
                                            pos=node.pos)


def prompt_list(ctx: _Ctx, node: YNode, path: str) -> tuple[Prompt, ...]:
    """`no_input_prompt: ["file:a", "tts:b"]`: one prompt per count (VoiceXML style)."""
    entries = node.items if isinstance(node, YSeq) else (node,)
    out: list[Prompt] = []
    for index, entry in enumerate(entries):
        one = prompt(ctx, entry, f"{path}[{index}]")
        if one is not None:
            out.append(one)
    return tuple(out)


def reprompts(ctx: _Ctx, node: YNode, path: str) -> dict[int, Prompt]:
    mapping = as_map(ctx, node, path)
    out: dict[int, Prompt] = {}
    for key, value in mapping.items if mapping else ():
        if not isinstance(key.value, int) or isinstance(key.value, bool) or key.value < 1:
            ctx.error("E004", f"'{path}': keys are attempt numbers (2, 3, ...), not {key.raw!r}",
                      key.pos)
            continue
        one = prompt(ctx, value, f"{path}.{key.raw}")
        if one is not None:
            out[key.value] = one
    return out


def dtmf_options(ctx: _Ctx, node: YNode, path: str) -> tuple[DtmfOption, ...]:
    mapping = as_map(ctx, node, path)
    out: list[DtmfOption] = []
    for key, value in mapping.items if mapping else ():
        target = transition(ctx, value, f"{path}.{key.raw}")
        if target is not None:
            out.append(DtmfOption(key=key.raw, target=target, pos=key.pos))
    return tuple(out)


def str_map(ctx: _Ctx, node: YNode, path: str, kind: TemplateKind) -> dict[str, str]:
    mapping = as_map(ctx, node, path)
    out: dict[str, str] = {}
    for key, value in mapping.items if mapping else ():
        rendered = _value_text(ctx, value, f"{path}.{key.raw}", kind)
        if rendered is not None:
            out[key.raw] = rendered
    return out


def plain(ctx: _Ctx, node: YNode, path: str, kind: TemplateKind) -> object:
    """Any YAML value as plain Python data; strings are noted as templates of `kind`."""
    if isinstance(node, YScalar):
        if isinstance(node.value, str):
            ctx.template(node.value, node.pos, path, kind)
        return node.value
    if isinstance(node, YSeq):
        return [plain(ctx, item, f"{path}[{i}]", kind) for i, item in enumerate(node.items)]
    return {k.raw: plain(ctx, v, f"{path}.{k.raw}", kind) for k, v in node.items}


# ----------------------------------------------------------------------------- nodes

COMMON_NODE_FIELDS = ("type", "description")
INPUT_FIELDS = ("timeout", "inter_digit_timeout", "max_no_input", "max_no_match", "max_attempts",
                "barge_in")
PROMPTING_FIELDS = ("prompt", "reprompts", "no_input_prompt", "no_match_prompt", *INPUT_FIELDS,
                    "on_no_input", "on_no_match", "on_max_attempts", "hotkeys")

NODE_FIELDS: dict[str, tuple[str, ...]] = {
    "say": ("prompt", "barge_in", "next"),
    "menu": (*PROMPTING_FIELDS, "options", "speech"),
    "collect": (*PROMPTING_FIELDS, "into", "min_digits", "max_digits", "finish_on_key", "validate",
                "confirm", "mask_in_logs", "next"),
    "branch": ("when", "else"),
    "set": ("next",),  # plus assignment targets: `vars.x: value`
    "hours": ("schedule", "at", "open", "closed", "holiday"),
    "http": ("method", "url", "headers", "query", "body", "timeout", "allow_long", "retries",
             "while_waiting", "save", "success_when", "on_success", "on_error", "on_timeout"),
    "queue": ("queue", "skills", "relax_after", "priority", "max_wait", "moh", "announce",
              "offer_callback", "exit_keys", "screen_pop", "whisper", "on_timeout", "on_full",
              "on_no_agents"),
    "transfer": ("to", "caller_id", "timeout", "screen_pop", "whisper", "on_no_answer", "on_busy",
                 "on_failed"),
    "callback": ("number", "confirm_number", "queue", "keep_position", "attempts", "retry_delay",
                 "window", "earliest", "on_scheduled", "on_error"),
    "voicemail": ("mailbox", "greeting", "max_length", "silence_timeout", "finish_on_key", "beep",
                  "notify", "next", "on_no_audio"),
    "subflow": ("flow", "args", "returns"),
    "return": ("outcome",),
    "safe_harbor": ("prompt", "seller", "callback_number", "opt_out_key", "on_opt_out",
                    "record_abandon", "next"),
    "hangup": ("prompt", "disposition", "cause"),
}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def build_node(ctx: _Ctx, node_id: YScalar, node: YNode) -> Node | None:
    path = f"nodes.{node_id.raw}"
    mapping = as_map(ctx, node, path)
    if mapping is None:
        return None
    type_node = mapping.get("type")
    if type_node is None:
        ctx.error("E004", f"node '{node_id.raw}' has no 'type'", node_id.pos,
                  help=f"types: {', '.join(NODE_TYPES)}")
        return None
    node_type = type_node.value if isinstance(type_node, YScalar) else None
    if not isinstance(node_type, str) or node_type not in NODE_TYPES:
        raw = type_node.raw if isinstance(type_node, YScalar) else _describe(type_node)
        ctx.error("E003", f"unknown node type '{raw}' in node '{node_id.raw}'", type_node.pos,
                  help=did_you_mean(str(raw), NODE_TYPES) or f"types: {', '.join(NODE_TYPES)}")
        return None
    allowed = (*COMMON_NODE_FIELDS, *NODE_FIELDS[node_type])
    if node_type == "set":
        allowed = (*allowed, *(k.raw for k, _ in mapping.items if "." in k.raw))
    fields = _Map(ctx, mapping, path, allowed, f"{node_type} node '{node_id.raw}'")
    fields.finish()
    ctx.node = node_id.raw
    try:
        builder = _NODE_BUILDERS[node_type]
        kwargs = builder(ctx, fields)
    finally:
        ctx.node = None
    cls = NODE_TYPES[node_type]
    return cast(Node, cls(id=node_id.raw, type=node_type, pos=node_id.pos,
                          field_pos=dict(fields.field_pos), **kwargs))


def _input(fields: _Map) -> InputSettings:
    return InputSettings(
        timeout=fields.duration("timeout"),
        inter_digit_timeout=fields.duration("inter_digit_timeout"),
        max_no_input=fields.whole("max_no_input"), max_no_match=fields.whole("max_no_match"),
        max_attempts=fields.whole("max_attempts"), barge_in=fields.flag("barge_in"))


def _prompting(ctx: _Ctx, fields: _Map, *, prompt_required: bool) -> dict[str, Any]:
    get = fields.get
    hotkeys = fields.flag("hotkeys")
    return {
        "prompt": fields.prompt("prompt", required=prompt_required),
        "reprompts": reprompts(ctx, n, fields.sub("reprompts")) if (n := get("reprompts")) else {},
        "no_input_prompt": prompt_list(ctx, n, fields.sub("no_input_prompt"))
        if (n := get("no_input_prompt")) else (),
        "no_match_prompt": prompt_list(ctx, n, fields.sub("no_match_prompt"))
        if (n := get("no_match_prompt")) else (),
        "input": _input(fields),
        "on_no_input": fields.transition("on_no_input"),
        "on_no_match": fields.transition("on_no_match"),
        "on_max_attempts": fields.transition("on_max_attempts"),
        "hotkeys": True if hotkeys is None else hotkeys,
    }


def _say(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    return {"prompt": f.prompt("prompt", required=True), "barge_in": f.flag("barge_in"),
            "next": f.transition("next")}


def _menu(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    out = _prompting(ctx, f, prompt_required=True)
    options = f.required("options")
    out["options"] = dtmf_options(ctx, options, f.sub("options")) if options is not None else ()
    speech = f.get("speech")
    if speech is not None:
        value = plain(ctx, speech, f.sub("speech"), "value")
        out["speech"] = value if isinstance(value, dict) else None
    return out


def _collect(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    out = _prompting(ctx, f, prompt_required=True)
    out["into"] = f.text("into", required=True)
    for key in ("min_digits", "max_digits"):
        value = f.whole(key)
        if value is not None:
            out[key] = value
    finish = f.get("finish_on_key")
    out["finish_on_key"] = dtmf_key(ctx, finish, f.sub("finish_on_key")) if finish else None
    mask = f.flag("mask_in_logs")
    out["mask_in_logs"] = bool(mask)
    out["next"] = f.transition("next")
    if (node := f.get("validate")) is not None:
        out["validate"] = _collect_validation(ctx, node, f.sub("validate"))
    if (node := f.get("confirm")) is not None and (mapping := as_map(ctx, node, f.sub("confirm"))):
        cf = _Map(ctx, mapping, f.sub("confirm"), ("prompt", "yes_key", "no_key"), "confirm")
        cf.finish()
        yes = dtmf_key(ctx, n, cf.sub("yes_key")) if (n := cf.get("yes_key")) else None
        no = dtmf_key(ctx, n, cf.sub("no_key")) if (n := cf.get("no_key")) else None
        out["confirm"] = Confirm(prompt=cf.prompt("prompt"), yes_key=yes or "1", no_key=no or "2",
                                 pos=mapping.pos)
    return out


def _collect_validation(ctx: _Ctx, node: YNode, path: str) -> CollectValidation | None:
    mapping = as_map(ctx, node, path)
    if mapping is None:
        return None
    f = _Map(ctx, mapping, path, ("regex", "luhn", "length", "expr"), "validate")
    f.finish()
    if len(mapping.items) != 1:
        ctx.error("E004", f"'{path}' needs exactly one of regex, luhn, length, expr", mapping.pos)
        return None
    key, value = mapping.items[0]
    result: str | int | bool | None
    match key.raw:
        case "regex":
            result = text(ctx, value, f"{path}.regex")
            if result is not None:
                try:
                    re.compile(result)
                except re.error as exc:
                    ctx.error("E004", f"'{path}.regex' is not a valid regular expression: {exc}",
                              value.pos)
                    return None
        case "luhn":
            result = boolean(ctx, value, f"{path}.luhn")
        case "length":
            result = integer(ctx, value, f"{path}.length")
        case "expr":
            result = text(ctx, value, f"{path}.expr", "condition")
        case _:
            return None
    if result is None:
        return None
    return CollectValidation(kind=cast(Any, key.raw), value=result, pos=value.pos)


CONDITION_OPS = ("equals", "in", "matches", "gt", "lt", "between", "is_blank")


def _branch(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    cases: list[BranchCase] = []
    when = f.get("when")
    for index, entry in enumerate(as_list(ctx, when, f.sub("when")) if when is not None else ()):
        path = f"{f.sub('when')}[{index}]"
        mapping = as_map(ctx, entry, path)
        if mapping is None:
            continue
        cf = _Map(ctx, mapping, path, ("if", "goto", "var", "expr", *CONDITION_OPS), "branch case")
        cf.finish()
        condition = _condition(ctx, cf, mapping)
        target = cf.transition("goto") if cf.has("goto") else None
        if target is None and not cf.has("goto"):
            ctx.error("E004", f"branch case '{path}' needs 'goto'", mapping.pos)
        if condition is not None and target is not None:
            cases.append(BranchCase(condition=condition, goto=target, pos=mapping.pos))
    return {"when": tuple(cases), "else_": f.transition("else")}


def _condition(ctx: _Ctx, cf: _Map, mapping: YMap) -> Condition | None:
    # Either `if: <expression or {var, op}>` or the condition's fields inline.
    source = cf
    if cf.has("if"):
        node = cf.get("if")
        assert node is not None
        if isinstance(node, YScalar):
            expr = text(ctx, node, cf.sub("if"), "condition")
            return None if expr is None else Condition(op="expr", value=expression_of(expr),
                                                       pos=node.pos)
        inner = as_map(ctx, node, cf.sub("if"))
        if inner is None:
            return None
        source = _Map(ctx, inner, cf.sub("if"), ("var", "expr", *CONDITION_OPS), "condition")
        source.finish()
        mapping = inner
    if source.has("expr"):
        expr = source.text("expr", kind="condition")
        return None if expr is None else Condition(op="expr", value=expression_of(expr),
                                                   pos=source.pos("expr"))
    ops = [op for op in CONDITION_OPS if source.has(op) or source.node.key(op) is not None]
    var = source.text("var")
    if var is None or len(ops) != 1:
        ctx.error("E004", f"condition '{source.path}' needs 'var' and one of "
                          f"{', '.join(CONDITION_OPS)} (or 'expr')", mapping.pos)
        return None
    op = ops[0]
    value_node = source.get(op)
    value: object = True if value_node is None else plain(ctx, value_node, source.sub(op), "value")
    return Condition(op=cast(Any, op), var=var, value=value, pos=mapping.pos)


def _set(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    pairs: list[tuple[str, str]] = []
    for key, value in f.node.items:
        if key.raw in ("type", "next", "description"):
            continue
        rendered = _value_text(ctx, value, f.sub(key.raw), "value")
        if rendered is not None:
            pairs.append((key.raw, rendered))
    if not pairs:
        ctx.error("E004", f"set node '{ctx.node}' assigns nothing", f.node.pos,
                  help="add fields such as `vars.reason: billing`")
    return {"assignments": tuple(pairs), "next": f.transition("next")}


def _hours(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    at: dt.datetime | None = None
    if (raw := f.text("at")) is not None:
        try:
            at = dt.datetime.fromisoformat(raw)
        except ValueError:
            ctx.error("E004", f"'{f.sub('at')}' must be a date and time such as "
                              f"'2025-12-24 11:30', not {raw!r}", f.pos("at"))
    return {"schedule": f.text("schedule", required=True) or "", "at": at,
            "open": f.transition("open"), "closed": f.transition("closed"),
            "holiday": f.transition("holiday")}


def _http(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    method = (f.text("method") or "GET").upper()
    if method not in HTTP_METHODS:
        ctx.error("E004", f"'{f.sub('method')}' must be one of {', '.join(HTTP_METHODS)}",
                  f.pos("method"))
    out: dict[str, Any] = {
        "method": method, "url": f.text("url", required=True, kind="http") or "",
        "timeout": f.duration("timeout"), "allow_long": bool(f.flag("allow_long")),
        "retries": f.whole("retries") or 0, "success_when": f.text("success_when", kind="condition"),
        "on_success": f.transition("on_success"), "on_error": f.transition("on_error"),
        "on_timeout": f.transition("on_timeout"),
    }
    if (n := f.get("headers")) is not None:
        out["headers"] = str_map(ctx, n, f.sub("headers"), "http")
    if (n := f.get("query")) is not None:
        out["query"] = str_map(ctx, n, f.sub("query"), "http")
    if (n := f.get("body")) is not None:
        out["body"] = plain(ctx, n, f.sub("body"), "http")
    if (n := f.get("save")) is not None:
        out["save"] = tuple(str_map(ctx, n, f.sub("save"), "value").items())
    if (n := f.get("while_waiting")) is not None and (m := as_map(ctx, n, f.sub("while_waiting"))):
        ww = _Map(ctx, m, f.sub("while_waiting"), ("after", "prompt"), "while_waiting")
        ww.finish()
        out["while_waiting"] = WhileWaiting(after=ww.duration("after") or 0.0,
                                            prompt=ww.prompt("prompt", required=True), pos=m.pos)
    return out


def _screen_pop(ctx: _Ctx, node: YNode, path: str) -> ScreenPop | None:
    mapping = as_map(ctx, node, path)
    if mapping is None:
        return None
    sp = _Map(ctx, mapping, path, ("title", "fields", "url"), "screen_pop")
    sp.finish()
    fields = str_map(ctx, n, sp.sub("fields"), "screen_pop") if (n := sp.get("fields")) else {}
    return ScreenPop(title=sp.text("title", kind="screen_pop"), fields=fields,
                     url=sp.text("url", kind="screen_pop"), pos=mapping.pos)


def _queue(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    out: dict[str, Any] = {
        "queue": f.text("queue", required=True) or "",
        "relax_after": f.duration("relax_after"), "max_wait": f.duration("max_wait"),
        "moh": f.text("moh"), "whisper": f.prompt("whisper"),
        "on_timeout": f.transition("on_timeout"), "on_full": f.transition("on_full"),
        "on_no_agents": f.transition("on_no_agents"),
    }
    if (n := f.get("priority")) is not None:
        if isinstance(n, YScalar) and isinstance(n.value, int) and not isinstance(n.value, bool):
            out["priority"] = n.value
        else:
            out["priority"] = text(ctx, n, f.sub("priority")) or 0
    skills: list[SkillRequirement] = []
    for index, entry in enumerate(as_list(ctx, n, f.sub("skills")) if (n := f.get("skills")) else ()):
        path = f"{f.sub('skills')}[{index}]"
        if isinstance(entry, YScalar):
            if (name := text(ctx, entry, path)) is not None:
                skills.append(SkillRequirement(skill=name, pos=entry.pos))
            continue
        if (m := as_map(ctx, entry, path)) is None:
            continue
        sk = _Map(ctx, m, path, ("skill", "min_level", "required", "when"), "skill requirement")
        sk.finish()
        name = sk.text("skill", required=True)
        if name is not None:
            required = sk.flag("required")
            skills.append(SkillRequirement(skill=name, min_level=sk.whole("min_level") or 1,
                                           required=True if required is None else required,
                                           when=sk.text("when", kind="condition"),
                                           pos=sk.pos("skill")))
    out["skills"] = tuple(skills)
    if (n := f.get("announce")) is not None and (m := as_map(ctx, n, f.sub("announce"))):
        an = _Map(ctx, m, f.sub("announce"), ("position", "wait_time"), "announce")
        an.finish()
        for key, attr in (("position", "announce_position"), ("wait_time", "announce_wait_time")):
            if (sub := an.get(key)) is not None and (sm := as_map(ctx, sub, an.sub(key))):
                pa = _Map(ctx, sm, an.sub(key), ("every", "only_if_improved", "prompt"),
                          f"announce.{key}")
                pa.finish()
                out[attr] = PositionAnnouncement(
                    every=pa.duration("every") or 60.0,
                    only_if_improved=bool(pa.flag("only_if_improved")),
                    prompt=pa.prompt("prompt"), pos=sm.pos)
    if (n := f.get("offer_callback")) is not None and (m := as_map(ctx, n, f.sub("offer_callback"))):
        oc = _Map(ctx, m, f.sub("offer_callback"), ("after", "when_ewt_over", "key", "prompt", "goto"),
                  "offer_callback")
        oc.finish()
        offer_key = dtmf_key(ctx, k, oc.sub("key")) if (k := oc.get("key")) else None
        out["offer_callback"] = OfferCallback(
            after=oc.duration("after"), when_ewt_over=oc.duration("when_ewt_over"),
            key=offer_key or "1", prompt=oc.prompt("prompt"), goto=oc.transition("goto"), pos=m.pos)
    if (n := f.get("exit_keys")) is not None:
        out["exit_keys"] = dtmf_options(ctx, n, f.sub("exit_keys"))
    if (n := f.get("screen_pop")) is not None:
        out["screen_pop"] = _screen_pop(ctx, n, f.sub("screen_pop"))
    return out


def _transfer(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    out: dict[str, Any] = {
        "to": f.text("to", required=True) or "", "caller_id": f.text("caller_id"),
        "timeout": f.duration("timeout"), "whisper": f.prompt("whisper"),
        "on_no_answer": f.transition("on_no_answer"), "on_busy": f.transition("on_busy"),
        "on_failed": f.transition("on_failed"),
    }
    if (n := f.get("screen_pop")) is not None:
        out["screen_pop"] = _screen_pop(ctx, n, f.sub("screen_pop"))
    return out


def _callback(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    out: dict[str, Any] = {
        "confirm_number": bool(f.flag("confirm_number")), "queue": f.text("queue"),
        "keep_position": bool(f.flag("keep_position")), "retry_delay": f.duration("retry_delay"),
        "window": f.text("window"), "earliest": f.duration("earliest"),
        "on_scheduled": f.transition("on_scheduled"), "on_error": f.transition("on_error"),
    }
    if (number := f.text("number")) is not None:
        out["number"] = number
    else:
        ctx.template("{{ caller.number }}", f.node.pos, f.sub("number"), "value")
    if (attempts := f.whole("attempts")) is not None:
        out["attempts"] = attempts
    return out


def _voicemail(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mailbox": f.text("mailbox", required=True) or "", "greeting": f.prompt("greeting"),
        "silence_timeout": f.duration("silence_timeout"), "next": f.transition("next"),
        "on_no_audio": f.transition("on_no_audio"),
    }
    if (length := f.duration("max_length")) is not None:
        out["max_length"] = length
    if (n := f.get("finish_on_key")) is not None:
        out["finish_on_key"] = dtmf_key(ctx, n, f.sub("finish_on_key"))
    if (beep := f.flag("beep")) is not None:
        out["beep"] = beep
    if (n := f.get("notify")) is not None:
        value = plain(ctx, n, f.sub("notify"), "value")
        out["notify"] = value if isinstance(value, dict) else {}
    return out


def _subflow(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    out: dict[str, Any] = {"flow": f.text("flow", required=True) or ""}
    if (n := f.get("args")) is not None:
        out["args"] = str_map(ctx, n, f.sub("args"), "value")
    returns: dict[str, Transition] = {}
    if (n := f.get("returns")) is not None and (m := as_map(ctx, n, f.sub("returns"))):
        for key, value in m.items:
            target = transition(ctx, value, f"{f.sub('returns')}.{key.raw}")
            if target is not None:
                returns[key.raw] = target
    out["returns"] = returns
    return out


def _return(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    return {"outcome": f.text("outcome", required=True) or ""}


def _safe_harbor(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    key = dtmf_key(ctx, n, f.sub("opt_out_key")) if (n := f.get("opt_out_key")) else None
    record = f.flag("record_abandon")
    return {"prompt": f.prompt("prompt"), "seller": f.text("seller"),
            "callback_number": f.text("callback_number"), "opt_out_key": key,
            "on_opt_out": f.transition("on_opt_out"),
            "record_abandon": True if record is None else record, "next": f.transition("next")}


def _hangup(ctx: _Ctx, f: _Map) -> dict[str, Any]:
    return {"prompt": f.prompt("prompt"), "disposition": f.text("disposition"),
            "cause": f.whole("cause")}


_NODE_BUILDERS: dict[str, Callable[[_Ctx, _Map], dict[str, Any]]] = {
    "say": _say, "menu": _menu, "collect": _collect, "branch": _branch, "set": _set,
    "hours": _hours, "http": _http, "queue": _queue, "transfer": _transfer,
    "callback": _callback, "voicemail": _voicemail, "subflow": _subflow, "return": _return,
    "safe_harbor": _safe_harbor, "hangup": _hangup,
}

# ----------------------------------------------------------------------------- flow files

FLOW_FIELDS = ("flow", "kind", "description", "languages", "defaults", "hotkeys", "variables",
               "start", "nodes")
FLOW_KINDS = ("inbound", "outbound", "subflow")
DEFAULTS_FIELDS = ("tts", "input", "on_error", "language_fallback", "max_node_visits",
                   "max_ivr_time")
VARIABLE_TYPES = ("string", "digits", "int", "decimal", "bool", "date", "phone")
FALLBACKS = ("error", "default_language", "tts")


def build_flow(ctx: _Ctx, tree: YNode, stem: str) -> Flow | None:
    mapping = as_map(ctx, tree, "flow file")
    if mapping is None:
        return None
    f = _Map(ctx, mapping, "", FLOW_FIELDS, "a flow file")
    f.finish()
    flow_id = f.text("flow", required=True)
    if flow_id is not None and flow_id != stem:
        ctx.error("E005", f"flow '{flow_id}' is in file '{stem}{Path(ctx.file).suffix}'; the flow "
                          f"id must equal the file name", f.pos("flow"),
                  help=f"write `flow: {stem}` or rename the file to {flow_id}.yaml")
    elif flow_id is not None and not FLOW_ID.match(flow_id):
        ctx.error("E004", f"flow id '{flow_id}' must match [a-z][a-z0-9_]*", f.pos("flow"))
    kind = f.text("kind") or "inbound"
    if kind not in FLOW_KINDS:
        ctx.error("E004", f"kind must be one of {', '.join(FLOW_KINDS)}, not {kind!r}", f.pos("kind"),
                  help=did_you_mean(kind, FLOW_KINDS))
        kind = "inbound"
    languages = _languages(ctx, f)
    ctx.languages = languages
    defaults = _defaults(ctx, f.get("defaults"))
    hotkeys = dtmf_options(ctx, n, "hotkeys") if (n := f.get("hotkeys")) is not None else ()
    variables = _variables(ctx, f.get("variables"))
    start = f.text("start")
    if start is None and not f.has("start"):
        ctx.error("E105", "the flow has no 'start' node", mapping.pos,
                  help="add `start: <node id>` naming the first node")
    nodes: dict[str, Node] = {}
    broken: set[str] = set()
    nodes_node = f.required("nodes")
    nodes_map = as_map(ctx, nodes_node, "nodes") if nodes_node is not None else None
    for key, value in nodes_map.items if nodes_map else ():
        if not FLOW_ID.match(key.raw):
            ctx.error("E004", f"node id '{key.raw}' must match [a-z][a-z0-9_]*", key.pos)
            broken.add(key.raw)
            continue
        built = build_node(ctx, key, value)
        if built is not None:
            nodes[key.raw] = built
        else:
            broken.add(key.raw)
    return Flow(id=flow_id or stem, file=ctx.file, kind=cast(Any, kind),
                description=f.text("description") or "", languages=languages, defaults=defaults,
                hotkeys=hotkeys, variables=variables, start=start or "", nodes=nodes,
                templates=tuple(ctx.templates), broken_nodes=frozenset(broken),
                pos=f.pos("flow"), field_pos=dict(f.field_pos))


def _languages(ctx: _Ctx, f: _Map) -> tuple[str, ...]:
    node = f.get("languages")
    if node is None:
        return ("en",)
    out: list[str] = []
    for index, item in enumerate(as_list(ctx, node, "languages")):
        lang = text(ctx, item, f"languages[{index}]")
        if lang is None:
            continue
        if not LANGUAGE_TAG.match(lang):
            ctx.error("E004", f"'{lang}' is not a language tag (en, es, en-US, ...)", item.pos)
        elif lang in out:
            ctx.error("E002", f"language '{lang}' is listed twice", item.pos)
        else:
            out.append(lang)
    return tuple(out) or ("en",)


def _defaults(ctx: _Ctx, node: YNode | None) -> Defaults:
    if node is None or (mapping := as_map(ctx, node, "defaults")) is None:
        return Defaults()
    f = _Map(ctx, mapping, "defaults", DEFAULTS_FIELDS, "defaults")
    f.finish()
    positions: dict[str, Pos] = {k: v for k, v in f.field_pos.items()}
    voices: dict[str, str] = {}
    if (tts := f.get("tts")) is not None and (tm := as_map(ctx, tts, "defaults.tts")):
        tf = _Map(ctx, tm, "defaults.tts", ("voice",), "defaults.tts")
        tf.finish()
        if (voice := tf.get("voice")) is not None:
            for lang, value in str_map(ctx, voice, "defaults.tts.voice", "value").items():
                voices[lang] = value
            if isinstance(voice, YMap):
                positions.update({f"tts.voice.{k.raw}": k.pos for k, _ in voice.items})
            positions["tts.voice"] = voice.pos
    inputs = InputDefaults()
    if (inp := f.get("input")) is not None and (im := as_map(ctx, inp, "defaults.input")):
        fi = _Map(ctx, im, "defaults.input", INPUT_FIELDS, "defaults.input")
        fi.finish()
        positions.update({f"input.{k}": v for k, v in fi.field_pos.items()})
        settings = _input(fi)
        inputs = InputDefaults(
            timeout=settings.timeout if settings.timeout is not None else inputs.timeout,
            inter_digit_timeout=settings.inter_digit_timeout
            if settings.inter_digit_timeout is not None else inputs.inter_digit_timeout,
            max_no_input=settings.max_no_input or inputs.max_no_input,
            max_no_match=settings.max_no_match or inputs.max_no_match,
            max_attempts=settings.max_attempts,
            barge_in=settings.barge_in if settings.barge_in is not None else inputs.barge_in)
    fallback = f.text("language_fallback") or "error"
    if fallback not in FALLBACKS:
        ctx.error("E004", f"language_fallback must be one of {', '.join(FALLBACKS)}",
                  f.pos("language_fallback"), help=did_you_mean(fallback, FALLBACKS))
        fallback = "error"
    visits = f.whole("max_node_visits")
    ivr_time = f.duration("max_ivr_time")
    return Defaults(tts_voice=voices, input=inputs, on_error=f.transition("on_error"),
                    language_fallback=cast(Any, fallback),
                    max_node_visits=visits if visits is not None else 50,
                    max_ivr_time=ivr_time if ivr_time is not None else 600.0, field_pos=positions)


def _variables(ctx: _Ctx, node: YNode | None) -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    if node is None or (mapping := as_map(ctx, node, "variables")) is None:
        return out
    for key, value in mapping.items:
        path = f"variables.{key.raw}"
        if isinstance(value, YScalar) and isinstance(value.value, str):
            var_type = value.value
            default: object = None
            pii = False
        elif (vm := as_map(ctx, value, path)) is not None:
            vf = _Map(ctx, vm, path, ("type", "default", "pii"), f"variable '{key.raw}'")
            vf.finish()
            var_type = vf.text("type") or "string"
            dnode = vf.get("default")
            default = plain(ctx, dnode, vf.sub("default"), "value") if dnode is not None else None
            pii = bool(vf.flag("pii"))
        else:
            continue
        if var_type not in VARIABLE_TYPES:
            ctx.error("E004", f"variable '{key.raw}': unknown type '{var_type}'", value.pos,
                      help=did_you_mean(var_type, VARIABLE_TYPES) or
                      f"types: {', '.join(VARIABLE_TYPES)}")
            var_type = "string"
        out[key.raw] = Variable(name=key.raw, type=cast(Any, var_type), default=default, pii=pii,
                                pos=key.pos)
    return out


# ----------------------------------------------------------------------------- shared files


@dataclass
class _Shared:
    schedules: dict[str, Schedule] = field(default_factory=dict)
    holiday_lists: dict[str, HolidayList] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    skills: dict[str, Skill] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    campaigns: dict[str, Campaign] = field(default_factory=dict)


def parse_time_range(ctx: _Ctx, node: YNode, path: str) -> TimeRange | None:
    raw = text(ctx, node, path)
    if raw is None:
        return None
    match = _TIME_RANGE.match(raw.strip())
    if not match:
        ctx.error("E004", f"'{path}' must be a time range such as \"08:00-20:00\", not {raw!r}",
                  node.pos)
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        ctx.error("E505", f"hours {raw!r}: not a time of day (00:00 to 24:00)", node.pos)
        return None
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        ctx.error("E505", f"hours {raw!r}: end is not after start", node.pos,
                  help="overnight ranges need two entries: \"20:00-24:00\" and \"00:00-08:00\" "
                       "on the next day")
        return None
    return TimeRange(start=start, end=end, pos=node.pos)


def _time_ranges(ctx: _Ctx, node: YNode, path: str) -> tuple[TimeRange, ...]:
    entries = node.items if isinstance(node, YSeq) else (node,)
    out = [r for i, e in enumerate(entries)
           if (r := parse_time_range(ctx, e, f"{path}[{i}]" if isinstance(node, YSeq) else path))]
    return tuple(out)


def parse_days(raw: str) -> frozenset[int] | None:
    """`mon-fri`, `sat`, `mon,wed,fri`, `daily`; None when unreadable."""
    text_ = raw.strip().lower()
    if text_ in ("daily", "all", "every day"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in (p.strip() for p in text_.split(",")):
        if "-" in part:
            first, _, last = (p.strip() for p in part.partition("-"))
            if first not in DAY_NAMES or last not in DAY_NAMES:
                return None
            i, j = DAY_NAMES.index(first), DAY_NAMES.index(last)
            while True:
                days.add(i)
                if i == j:
                    break
                i = (i + 1) % 7
        elif part in DAY_NAMES:
            days.add(DAY_NAMES.index(part))
        else:
            return None
    return frozenset(days) if days else None


def _date(ctx: _Ctx, node: YNode, path: str) -> dt.date | None:
    raw = text(ctx, node, path)
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        ctx.error("E507", f"'{path}': {raw!r} is not a date (YYYY-MM-DD)", node.pos)
        return None


def _datetime(ctx: _Ctx, node: YNode, path: str) -> dt.datetime | None:
    raw = text(ctx, node, path)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        ctx.error("E507", f"'{path}': {raw!r} is not a local date and time (YYYY-MM-DD HH:MM)",
                  node.pos)
        return None
    if value.tzinfo is not None:
        ctx.error("E507", f"'{path}': give a local time without an offset; the schedule's "
                          f"timezone applies", node.pos)
        return None
    return value


def build_schedules(ctx: _Ctx, tree: YNode, shared: _Shared) -> None:
    mapping = as_map(ctx, tree, "_schedules.yaml")
    if mapping is None:
        return
    f = _Map(ctx, mapping, "", ("holiday_lists", "schedules", "emergency_overrides"),
             "_schedules.yaml")
    f.finish()
    if (n := f.get("holiday_lists")) is not None and (hm := as_map(ctx, n, "holiday_lists")):
        for key, value in hm.items:
            path = f"holiday_lists.{key.raw}"
            days: list[Holiday] = []
            seen: dict[dt.date, Holiday] = {}
            for index, entry in enumerate(as_list(ctx, value, path)):
                epath = f"{path}[{index}]"
                if (em := as_map(ctx, entry, epath)) is None:
                    continue
                ef = _Map(ctx, em, epath, ("date", "name", "hours"), "holiday")
                ef.finish()
                day = _date(ctx, n2, ef.sub("date")) if (n2 := ef.required("date")) else None
                hours = _time_ranges(ctx, n2, ef.sub("hours")) if (n2 := ef.get("hours")) else ()
                if day is None:
                    continue
                holiday = Holiday(date=day, name=ef.text("name") or day.isoformat(), hours=hours,
                                  pos=em.pos)
                if day in seen:
                    ctx.error("E507", f"holiday list '{key.raw}' has {day} twice", em.pos,
                              help=f"first at {seen[day].pos}")
                    continue
                seen[day] = holiday
                days.append(holiday)
            shared.holiday_lists[key.raw] = HolidayList(name=key.raw, holidays=tuple(days),
                                                        pos=key.pos)
    if (n := f.get("schedules")) is not None and (sm := as_map(ctx, n, "schedules")):
        for key, value in sm.items:
            schedule = _schedule(ctx, key, value)
            if schedule is not None:
                shared.schedules[key.raw] = schedule


def _schedule(ctx: _Ctx, key: YScalar, node: YNode) -> Schedule | None:
    path = f"schedules.{key.raw}"
    mapping = as_map(ctx, node, path)
    if mapping is None:
        return None
    f = _Map(ctx, mapping, path, ("timezone", "open", "holidays", "exceptions"),
             f"schedule '{key.raw}'")
    f.finish()
    timezone = f.text("timezone", required=True) or "UTC"
    weekly: list[WeeklyHours] = []
    for index, entry in enumerate(as_list(ctx, n, f.sub("open")) if (n := f.get("open")) else ()):
        epath = f"{f.sub('open')}[{index}]"
        if (em := as_map(ctx, entry, epath)) is None:
            continue
        ef = _Map(ctx, em, epath, ("days", "hours"), "opening hours")
        ef.finish()
        raw_days = ef.text("days", required=True)
        days = parse_days(raw_days) if raw_days is not None else None
        if raw_days is not None and days is None:
            ctx.error("E004", f"'{ef.sub('days')}': cannot read days {raw_days!r}", ef.pos("days"),
                      help="write mon-fri, sat, mon,wed,fri or daily")
        hours = _time_ranges(ctx, n2, ef.sub("hours")) if (n2 := ef.required("hours")) else ()
        if days is not None and hours:
            weekly.append(WeeklyHours(days=days, hours=hours, pos=em.pos))
    holidays: list[str] = []
    if (n := f.get("holidays")) is not None:
        entries = n.items if isinstance(n, YSeq) else (n,)
        for index, entry in enumerate(entries):
            if (name := text(ctx, entry, f"{f.sub('holidays')}[{index}]")) is not None:
                holidays.append(name)
    exceptions: list[ScheduleException] = []
    for index, entry in enumerate(as_list(ctx, n, f.sub("exceptions"))
                                  if (n := f.get("exceptions")) else ()):
        epath = f"{f.sub('exceptions')}[{index}]"
        if (em := as_map(ctx, entry, epath)) is None:
            continue
        ef = _Map(ctx, em, epath, ("date", "hours", "from", "to", "closed", "name"), "exception")
        ef.finish()
        name = ef.text("name") or ""
        closed = ef.flag("closed")
        if ef.has("date"):
            day = _date(ctx, n2, ef.sub("date")) if (n2 := ef.get("date")) else None
            hours = _time_ranges(ctx, n2, ef.sub("hours")) if (n2 := ef.get("hours")) else ()
            if not hours and closed is None:
                ctx.error("E004", f"exception '{epath}' needs 'hours' (open that day) or "
                                  f"'closed: true'", em.pos)
                continue
            if day is not None:
                exceptions.append(ScheduleException(name=name, date=day, hours=hours,
                                                    closed=bool(closed) and not hours, pos=em.pos))
        elif ef.has("from") or ef.has("to"):
            start = _datetime(ctx, n2, ef.sub("from")) if (n2 := ef.required("from")) else None
            end = _datetime(ctx, n2, ef.sub("to")) if (n2 := ef.required("to")) else None
            if start is not None and end is not None:
                if end <= start:
                    ctx.error("E507", f"exception '{epath}': 'to' is not after 'from'",
                              ef.pos("to"))
                    continue
                exceptions.append(ScheduleException(name=name, start=start, end=end,
                                                    closed=True if closed is None else closed,
                                                    pos=em.pos))
        else:
            ctx.error("E004", f"exception '{epath}' needs 'date' or 'from'/'to'", em.pos)
    return Schedule(name=key.raw, timezone=timezone, open=tuple(weekly), holidays=tuple(holidays),
                    exceptions=tuple(exceptions), pos=key.pos, field_pos=dict(f.field_pos))


QUEUE_STRATEGIES = ("longest_idle", "ring_all", "round_robin", "fewest_calls", "random")


def build_queues(ctx: _Ctx, tree: YNode, shared: _Shared) -> None:
    mapping = as_map(ctx, tree, "_queues.yaml")
    if mapping is None:
        return
    f = _Map(ctx, mapping, "", ("skills", "queues", "mailboxes"), "_queues.yaml")
    f.finish()
    if (n := f.get("skills")) is not None:
        entries: Iterable[tuple[YNode, Pos]]
        if isinstance(n, YMap):
            entries = [(k, k.pos) for k, _ in n.items]
        else:
            entries = [(item, item.pos) for item in as_list(ctx, n, "skills")]
        for item, pos in entries:
            if (name := text(ctx, item, "skills")) is not None:
                if name in shared.skills:
                    ctx.error("E002", f"skill '{name}' is listed twice", pos)
                shared.skills[name] = Skill(name=name, pos=pos)
    if (n := f.get("queues")) is not None and (qm := as_map(ctx, n, "queues")):
        for key, value in qm.items:
            path = f"queues.{key.raw}"
            if (vm := as_map(ctx, value, path)) is None:
                continue
            qf = _Map(ctx, vm, path, ("strategy", "max_callers", "moh", "wrapup", "skills",
                                      "description"), f"queue '{key.raw}'")
            qf.finish()
            strategy = qf.text("strategy") or "longest_idle"
            if strategy not in QUEUE_STRATEGIES:
                ctx.error("E004", f"queue '{key.raw}': unknown strategy '{strategy}'",
                          qf.pos("strategy"), help=did_you_mean(strategy, QUEUE_STRATEGIES)
                          or f"strategies: {', '.join(QUEUE_STRATEGIES)}")
                strategy = "longest_idle"
            skill_node = qf.get("skills")
            skill_items = as_list(ctx, skill_node, qf.sub("skills")) if skill_node else ()
            skills = tuple(s for i, item in enumerate(skill_items)
                           if (s := text(ctx, item, f"{qf.sub('skills')}[{i}]")) is not None)
            shared.queues[key.raw] = Queue(name=key.raw, strategy=cast(Any, strategy),
                                           max_callers=qf.whole("max_callers"), moh=qf.text("moh"),
                                           wrapup=qf.duration("wrapup") or 0.0, skills=skills,
                                           pos=key.pos)
    if (n := f.get("mailboxes")) is not None and (mm := as_map(ctx, n, "mailboxes")):
        for key, value in mm.items:
            path = f"mailboxes.{key.raw}"
            email = None
            if (vm := as_map(ctx, value, path)) is not None:
                mf = _Map(ctx, vm, path, ("email", "description"), f"mailbox '{key.raw}'")
                mf.finish()
                email = mf.text("email")
            shared.mailboxes[key.raw] = Mailbox(name=key.raw, email=email, pos=key.pos)


def build_routes(ctx: _Ctx, tree: YNode, shared: _Shared) -> None:
    mapping = as_map(ctx, tree, "_routes.yaml")
    if mapping is None:
        return
    f = _Map(ctx, mapping, "", ("routes",), "_routes.yaml")
    f.finish()
    if (n := f.get("routes")) is None or (rm := as_map(ctx, n, "routes")) is None:
        return
    for key, value in rm.items:
        if (name := text(ctx, value, f"routes.{key.raw}")) is not None:
            shared.routes.append(Route(number=key.raw, flow=name, pos=value.pos))


DIAL_MODES = ("preview", "progressive", "power", "predictive", "agentless")
CAMPAIGN_FIELDS = ("flow", "dial_mode", "ring_timeout", "seller", "lead_schema", "calling_window",
                   "caller_id", "abandon_target", "amd", "description")


def build_campaigns(ctx: _Ctx, tree: YNode, shared: _Shared) -> None:
    mapping = as_map(ctx, tree, "_campaigns.yaml")
    if mapping is None:
        return
    f = _Map(ctx, mapping, "", ("campaigns",), "_campaigns.yaml")
    f.finish()
    if (n := f.get("campaigns")) is None or (cm := as_map(ctx, n, "campaigns")) is None:
        return
    for key, value in cm.items:
        path = f"campaigns.{key.raw}"
        if (vm := as_map(ctx, value, path)) is None:
            continue
        cf = _Map(ctx, vm, path, CAMPAIGN_FIELDS, f"campaign '{key.raw}'")
        cf.finish()
        dial_mode = cf.text("dial_mode") or "predictive"
        if dial_mode not in DIAL_MODES:
            ctx.error("E004", f"campaign '{key.raw}': dial_mode must be one of "
                              f"{', '.join(DIAL_MODES)}", cf.pos("dial_mode"),
                      help=did_you_mean(dial_mode, DIAL_MODES))
        seller = number = None
        if (sn := cf.get("seller")) is not None and (sm := as_map(ctx, sn, cf.sub("seller"))):
            sf = _Map(ctx, sm, cf.sub("seller"), ("name", "phone"), "seller")
            sf.finish()
            seller, number = sf.text("name"), sf.text("phone")
        schema = str_map(ctx, n2, cf.sub("lead_schema"), "value") \
            if (n2 := cf.get("lead_schema")) is not None else {}
        if (n2 := cf.get("amd")) is not None:
            plain(ctx, n2, cf.sub("amd"), "value")
        shared.campaigns[key.raw] = Campaign(
            name=key.raw, flow=cf.text("flow", required=True) or "", dial_mode=dial_mode,
            ring_timeout=cf.duration("ring_timeout"), seller=seller, callback_number=number,
            lead_schema=schema, calling_window=cf.text("calling_window"), pos=key.pos,
            field_pos=dict(cf.field_pos))
        cf.text("caller_id")
        cf.text("abandon_target")


# ----------------------------------------------------------------------------- directory

_SHARED_BUILDERS: dict[str, Callable[[_Ctx, YNode, _Shared], None]] = {
    "_schedules": build_schedules, "_queues": build_queues, "_routes": build_routes,
    "_campaigns": build_campaigns,
}


def flow_files(directory: str | Path) -> list[Path]:
    """The YAML files of a flow directory (top level only: prompts/ and tests/ are not flows)."""
    root = Path(directory)
    return sorted(p for p in root.iterdir()
                  if p.is_file() and p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def load_files(directory: str | Path,
               files: Collection[Path] | None = None) -> tuple[FlowSet, list[Diagnostic]]:
    """Parse and build the files of `directory` (default: all of them). Never raises on bad
    input; unreadable or broken files become diagnostics and are left out of the FlowSet."""
    root = Path(directory)
    diags: list[Diagnostic] = []
    flows: dict[str, Flow] = {}
    shared = _Shared()
    digest = hashlib.sha256()
    try:
        paths = list(files) if files is not None else flow_files(root)
    except OSError as exc:
        diags.append(Diagnostic("E001", f"cannot read the flow directory: {exc.strerror or exc}",
                                Pos(str(root), 0, 0)))
        return FlowSet(root=str(root)), diags
    for path in sorted(paths):
        name = str(path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                diags.append(Diagnostic("E001", f"the file is larger than {MAX_FILE_BYTES} bytes; "
                                                f"split it (one flow per file)", Pos(name, 1, 1)))
                continue
            data = path.read_bytes()
            digest.update(path.name.encode() + b"\0" + data + b"\0")
            content = data.decode("utf-8")
        except OSError as exc:
            diags.append(Diagnostic("E001", f"cannot read the file: {exc.strerror or exc}",
                                    Pos(name, 1, 1)))
            continue
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            diags.append(Diagnostic("E001", f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                                    Pos(name, line, 1), help="save the file as UTF-8"))
            continue
        ctx = _Ctx(file=name)
        try:
            tree, parse_diags = parse_yaml(content, name)
            ctx.diags.extend(parse_diags)
            if tree is not None:
                stem = path.stem
                if stem.startswith("_"):
                    builder = _SHARED_BUILDERS.get(stem)
                    if builder is None:
                        ctx.error("E003", f"unknown shared file '{path.name}'", Pos(name, 1, 1),
                                  help=did_you_mean(stem, _SHARED_BUILDERS) or
                                  "shared files: " + ", ".join(f"{s}.yaml" for s in _SHARED_BUILDERS))
                    else:
                        builder(ctx, tree, shared)
                else:
                    flow = build_flow(ctx, tree, stem)
                    if flow is not None:
                        if flow.id in flows:
                            ctx.error("E005", f"flow '{flow.id}' is defined twice",
                                      flow.pos, help=f"also in {flows[flow.id].file}")
                        else:
                            flows[flow.id] = flow
        except Exception as exc:  # a loader bug must not take the server down: report it
            log.exception("flow loader failed on %s", name)
            ctx.error("E000", f"internal error while loading this file: {exc!r}", Pos(name, 1, 1),
                      help="please report this with the file")
        diags.extend(_explained(ctx.diags))
    _hash_prompts(root, digest)
    flowset = FlowSet(root=str(root), version=digest.hexdigest()[:12], flows=flows,
                      schedules=shared.schedules, holiday_lists=shared.holiday_lists,
                      queues=shared.queues, skills=shared.skills, mailboxes=shared.mailboxes,
                      routes=tuple(shared.routes), campaigns=shared.campaigns)
    return flowset, diags


def _hash_prompts(root: Path, digest: Any) -> None:
    """Recordings are part of a version: a re-recorded prompt makes a new one."""
    try:
        recordings = sorted((root / "prompts").glob("*/*.wav"))
        for path in recordings:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError as exc:  # an unreadable recording is reported by the validator (E304)
        log.warning("cannot hash the recordings under %s: %s", root / "prompts", exc)


def _explained(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Drop what an E006 explains: an unquoted `#` empties the value on its line and an
    unquoted `*` breaks the YAML parse (the E001 lands somewhere after it)."""
    lines = {d.pos.line for d in diags if d.code == "E006"}
    if not lines:
        return diags
    return [d for d in diags if d.code == "E006" or (d.code != "E001" and d.pos.line not in lines)]


def load_flowset(directory: str | Path) -> tuple[FlowSet | None, list[Diagnostic]]:
    """Load and validate a flow directory: (FlowSet, sorted diagnostics), the FlowSet None when
    any error was found. Never raises on bad input (the server keeps its last good set)."""
    from dialer.ivr.validate import validate_flowset

    flowset, diags = load_files(directory)
    try:
        diags.extend(validate_flowset(flowset))
    except Exception as exc:  # a validator bug must not take the server down: report it
        log.exception("flow validator failed on %s", directory)
        diags.append(Diagnostic("E000", f"internal error in the validator: {exc!r}",
                                Pos(str(directory), 0, 0)))
    diags = sorted_diagnostics(diags)
    if any(d.is_error for d in diags):
        return None, diags
    return flowset, diags

"""The IVR flow validator: meaning and cross references of a loaded `FlowSet`.

`validate_flowset(flowset)` returns diagnostics (unsorted; `sorted_diagnostics` orders them).
The loader has already reported the shape of each file (E001-E006); this module checks what
a file means on its own and together with the shared files. It reads prompt files (existence
and WAV headers) under `<root>/prompts/<lang>/`; nothing else touches the disk.

Codes (stable: tests, CI annotations and admins' muscle memory depend on them):

| code | check |
|---|---|
| E000 | internal error of the loader or validator (a bug: please report it) |
| E001 | YAML syntax, unreadable file, not UTF-8, empty file |
| E002 | duplicate key |
| E003 | unknown field, node type, shared file or prompt language (did-you-mean) |
| E004 | wrong type, missing required field, duration without a unit (`timeout: 6` -> `6s`?) |
| E005 | `flow` differs from the file name, or a flow defined twice |
| E006 | unquoted `#` or `*` as a DTMF key or value (YAML reads a comment or an alias) |
| E101 | transition to an unknown node, flow or special target; `return` outside a subflow |
| E102 | required outcome missing, with no default |
| W103 | node unreachable from `start` |
| E104 | a cycle without a node that waits for input or an outside event: it never exits |
| E105 | `start` missing |
| E106 | subflow recursion |
| E107 | a subflow `return` outcome not handled by the calling node |
| E201 | duplicate DTMF key |
| W202 | one key is a prefix of another ("1" and "12": pressing 1 waits inter_digit_timeout) |
| E203 | DTMF key outside `[0-9*#A-D]` |
| E204 | counter or timeout out of range (timeout 1-60s, max_* 1-10, digits 1-64) |
| W205 | a flow hotkey shadows a menu option |
| E206 | collect: min_digits > max_digits, or finish_on_key is a digit it collects |
| E301 | missing recording (or language variant) with no TTS to fall back on |
| W302 | recording missing: the TTS text will be spoken instead |
| E303 | `tts:` text in a language with no TTS voice (`defaults.tts.voice.<lang>`) |
| E304 | unplayable audio (not RIFF/WAVE PCM, not mono, not 16-bit, not 8 or 16 kHz) |
| E305 | template syntax error (or a call, unknown filter or test) |
| E307 | safe-harbor recording without a `tts`/`transcript` text to check |
| E401 | unknown template namespace or variable, or one used out of its scope; bad set target |
| E404 | `secrets.*` outside an http node's url, headers, query or body |
| E501 | unknown queue |
| E502 | unknown skill |
| E503 | unknown schedule or holiday list |
| E504 | unknown mailbox |
| E505 | time range that is not a time of day or ends before it starts |
| E506 | unknown time zone |
| E507 | invalid or repeated date, `to` before `from`, overlapping hours on one day |
| E601 | http without `timeout`, or above 5s without `allow_long: true` |
| W603 | http timeout above 1.5s without `while_waiting` filler (dead air) |
| E701 | outbound flow: a queue node's on_timeout/on_no_agents path reaches no `safe_harbor` |
| E702 | outbound flow: an agent-connect node may wait more than 2s (`max_wait`) |
| E703 | safe harbor without seller, callback number or opt-out key, or a prompt that omits them |
| E402 | `lead.<field>` not in the campaign's `lead_schema` (_campaigns.yaml) |
| E706 | campaign ring_timeout below 15s (_campaigns.yaml) |

Why the outbound rules: the FTC Telemarketing Sales Rule (16 CFR 310.4(b)(4)(iii)) treats a call
not connected to a person within 2 seconds of the greeting as abandoned unless a recorded
message names the seller and gives a number to call; the opt-out key feeds the DNC list.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.ivr import templates
from dialer.ivr.diagnostics import Diagnostic, closest, did_you_mean
from dialer.ivr.model import (
    BUILTIN_VARIABLES,
    NODE_TYPES,
    OUTCOMES,
    WAITING_NODE_TYPES,
    BranchNode,
    CallbackNode,
    CollectNode,
    DtmfOption,
    Flow,
    FlowSet,
    HangupNode,
    HoursNode,
    HttpNode,
    MenuNode,
    Node,
    Pos,
    Prompt,
    QueueNode,
    Recording,
    ReturnNode,
    SafeHarborNode,
    SayAs,
    SayNode,
    Schedule,
    SetNode,
    Silence,
    SubflowNode,
    TemplateRef,
    TransferNode,
    Transition,
    Tts,
    VoicemailNode,
    expression_of,
    outcome,
)

DTMF_CHARS = frozenset("0123456789*#ABCD")
MAX_HTTP_TIMEOUT = 5.0
DEAD_AIR = 1.5
CONNECT_LIMIT = 2.0  # seconds: the 2-second rule for outbound calls
MIN_RING = 15.0  # seconds: FCC 47 CFR 64.1200(a)(6), ring at least 15 s (or four rings)
LEAD_BASE_FIELDS = frozenset({"id", "phone", "timezone", "external_id", "priority"})
ASSIGNABLE = frozenset({"call.language", "caller.name"})
NAMESPACE_FIELDS = {
    "caller": frozenset({"number", "name"}),
    "call": frozenset({"id", "direction", "dnis", "language", "started_at", "path"}),
    "queue": frozenset({"position", "ewt"}),
}
PLAYABLE_RATES = (8000, 16000)


@dataclass
class _Out:
    diags: list[Diagnostic] = field(default_factory=list)

    def add(self, code: str, message: str, pos: Pos, help: str | None = None) -> None:
        self.diags.append(Diagnostic(code, message, pos, help))


def validate_flowset(flowset: FlowSet) -> list[Diagnostic]:
    out = _Out()
    _check_shared(flowset, out)
    wav_cache: dict[Path, str | None] = {}
    for flow in flowset.flows.values():
        _check_flow(flowset, flow, out, wav_cache)
    _check_subflow_recursion(flowset, out)
    _check_routes(flowset, out)
    _check_campaigns(flowset, out)
    return out.diags


# ----------------------------------------------------------------------------- walking nodes


def node_transitions(node: Node) -> Iterator[tuple[str, Transition]]:
    """Every transition written in a node, labelled `node.field` (options as `node.options.1`)."""
    for name in OUTCOMES.get(node.type, {}):
        value = getattr(node, name, None)
        if isinstance(value, Transition):
            yield f"{node.id}.{name.rstrip('_')}", value
    match node:
        case MenuNode(options=options):
            for opt in options:
                yield f"{node.id}.options.{opt.key}", opt.target
        case QueueNode(exit_keys=keys, offer_callback=offer):
            for opt in keys:
                yield f"{node.id}.exit_keys.{opt.key}", opt.target
            if offer is not None and offer.goto is not None:
                yield f"{node.id}.offer_callback.goto", offer.goto
        case BranchNode(when=cases):
            for index, case in enumerate(cases):
                yield f"{node.id}.when[{index}]", case.goto
        case SubflowNode(returns=returns):
            for name, target in returns.items():
                yield f"{node.id}.returns.{name}", target
        case _:
            pass


def node_prompts(node: Node) -> Iterator[tuple[str, Prompt]]:
    """Every prompt of a node (including those inside transitions), labelled."""
    match node:
        case SayNode(prompt=p) | HangupNode(prompt=p) | SafeHarborNode(prompt=p):
            if p is not None:
                yield f"{node.id}.prompt", p
        case MenuNode() | CollectNode():
            if node.prompt is not None:
                yield f"{node.id}.prompt", node.prompt
            for attempt, p in node.reprompts.items():
                yield f"{node.id}.reprompts.{attempt}", p
            for index, p in enumerate(node.no_input_prompt):
                yield f"{node.id}.no_input_prompt[{index}]", p
            for index, p in enumerate(node.no_match_prompt):
                yield f"{node.id}.no_match_prompt[{index}]", p
            if isinstance(node, CollectNode) and node.confirm and node.confirm.prompt:
                yield f"{node.id}.confirm.prompt", node.confirm.prompt
        case HttpNode(while_waiting=ww):
            if ww is not None and ww.prompt is not None:
                yield f"{node.id}.while_waiting.prompt", ww.prompt
        case QueueNode():
            for label, ann in (("position", node.announce_position),
                               ("wait_time", node.announce_wait_time)):
                if ann is not None and ann.prompt is not None:
                    yield f"{node.id}.announce.{label}.prompt", ann.prompt
            if node.offer_callback is not None and node.offer_callback.prompt is not None:
                yield f"{node.id}.offer_callback.prompt", node.offer_callback.prompt
            if node.whisper is not None:
                yield f"{node.id}.whisper", node.whisper
        case TransferNode(whisper=w):
            if w is not None:
                yield f"{node.id}.whisper", w
        case VoicemailNode(greeting=g):
            if g is not None:
                yield f"{node.id}.greeting", g
        case _:
            pass
    for label, target in node_transitions(node):
        if target.say is not None:
            yield f"{label}.say", target.say


def successors(flow: Flow, node: Node) -> set[str]:
    """Node ids a node can lead to, with outcome fallbacks (defaults.on_error) and `top`."""
    targets: list[Transition] = [t for _, t in node_transitions(node)]
    for name in OUTCOMES.get(node.type, {}):
        resolved = outcome(node, name, flow.defaults.on_error)
        if resolved is not None:
            targets.append(resolved)
    if isinstance(node, MenuNode | CollectNode) and node.hotkeys:
        targets.extend(opt.target for opt in flow.hotkeys)
    out: set[str] = set()
    for target in targets:
        if target.goto == "top":
            out.add(flow.start)
        elif target.goto == "repeat":
            out.add(node.id)
        elif target.goto is not None and target.goto in flow.nodes:
            out.add(target.goto)
    return out


# ----------------------------------------------------------------------------- one flow


def _check_flow(fs: FlowSet, flow: Flow, out: _Out, wav_cache: dict[Path, str | None]) -> None:
    nodes = flow.nodes
    if flow.start and flow.start not in nodes and flow.start not in flow.broken_nodes:
        out.add("E101", f"start node '{flow.start}' does not exist", flow.field_pos.get("start", flow.pos),
                help=_node_hint(flow, flow.start))
    # Transitions: targets and assignments.
    labelled: list[tuple[str, Transition]] = [
        (f"hotkeys.{opt.key}", opt.target) for opt in flow.hotkeys]
    if flow.defaults.on_error is not None:
        labelled.append(("defaults.on_error", flow.defaults.on_error))
    for node in nodes.values():
        labelled.extend(node_transitions(node))
    for label, target in labelled:
        _check_target(flow, label, target, out)
        for name, value in target.set:
            _check_assignable(flow, name, target.pos, out)
            _check_language_value(flow, name, value, target.pos, out)
    for node in nodes.values():
        _check_outcomes(flow, node, out)
        _check_node(fs, flow, node, out)
    _check_dtmf_keys(flow.hotkeys, "hotkeys", out)
    _check_reachability(flow, out)
    _check_loops(flow, out)
    _check_prompts(fs, flow, out, wav_cache)
    _check_templates(fs, flow, out)
    _check_input_ranges(flow, out)
    if flow.kind == "outbound":
        _check_outbound(flow, out)
    for node in nodes.values():
        if isinstance(node, SafeHarborNode):
            _check_safe_harbor(flow, node, out)


def _node_hint(flow: Flow, name: str) -> str | None:
    near = closest(name, flow.nodes)
    if near is None:
        return None
    return f"did you mean '{near}'? (defined at {flow.nodes[near].pos})"


def _check_target(flow: Flow, label: str, target: Transition, out: _Out) -> None:
    if target.goto is None:
        if flow.kind != "subflow":
            out.add("E101", f"'{label}' returns '{target.returns}', but flow '{flow.id}' is not a "
                            f"subflow", target.pos, help="`return` ends a flow of kind: subflow")
        return
    if target.is_special or target.goto in flow.nodes or target.goto in flow.broken_nodes:
        return
    hint = _node_hint(flow, target.goto)
    if hint is None:
        special = closest(target.goto, ("repeat", "back", "top", "hangup"))
        hint = f"did you mean '{special}'?" if special else None
    out.add("E101", f"'{label}' -> '{target.goto}': no such node", target.pos, help=hint)


def _check_assignable(flow: Flow, name: str, pos: Pos, out: _Out) -> None:
    if name in ASSIGNABLE:
        return
    if name.startswith("vars."):
        var = name[5:]
        if var in flow.variables or var in BUILTIN_VARIABLES:
            return
        hint = did_you_mean(var, flow.variables)
        out.add("E401", f"'{name}' is not a declared variable", pos,
                help=hint or f"declare it under `variables:` ({var}: {{type: string}})")
        return
    out.add("E401", f"cannot assign '{name}': only vars.<declared>, call.language and "
                    f"caller.name can be set", pos)


def _check_language_value(flow: Flow, name: str, value: str, pos: Pos, out: _Out) -> None:
    if name == "call.language" and not templates.is_template(value) \
            and value not in flow.languages:
        out.add("E003", f"call.language set to '{value}', which is not one of the flow's "
                        f"languages ({', '.join(flow.languages)})", pos,
                help=did_you_mean(value, flow.languages))


def _check_outcomes(flow: Flow, node: Node, out: _Out) -> None:
    outcomes = OUTCOMES.get(node.type, {})
    for name in outcomes:
        if outcome(node, name, flow.defaults.on_error) is None:
            field_name = name.rstrip("_")
            fallbacks = outcomes[name]
            if field_name in node.field_pos:
                continue  # written but unreadable: E004 already
            if any(step in outcomes for step in fallbacks):
                continue  # the outcome it falls back to is missing too, and reported
            extra = " and the flow has no defaults.on_error" if "defaults.on_error" in fallbacks \
                else ""
            out.add("E102", f"{node.type} node '{node.id}' has no '{field_name}'{extra}", node.pos,
                    help=f"add `{field_name}: <node>`")


def _check_node(fs: FlowSet, flow: Flow, node: Node, out: _Out) -> None:
    match node:
        case MenuNode():
            _check_dtmf_keys(node.options, f"menu '{node.id}'", out)
            if node.hotkeys:
                option_keys = {opt.key: opt for opt in node.options}
                for hot in flow.hotkeys:
                    if hot.key in option_keys:
                        out.add("W205", f"hotkey '{hot.key}' shadows option '{hot.key}' of menu "
                                        f"'{node.id}' (the hotkey wins)", option_keys[hot.key].pos,
                                help="use another key, or set `hotkeys: false` on this menu")
            if not node.options and "options" in node.field_pos:  # (absent: E004 already)
                out.add("E102", f"menu '{node.id}' has no options", node.pos_of("options"))
        case CollectNode():
            _check_collect(flow, node, out)
        case HoursNode():
            _check_schedule_ref(fs, node.schedule, node.pos_of("schedule"), out)
        case HttpNode():
            _check_http(node, out)
            for name, _ in node.save:
                _check_assignable(flow, name, node.pos_of("save"), out)
        case QueueNode():
            _check_queue_ref(fs, node.queue, node.pos_of("queue"), out)
            for req in node.skills:
                if req.skill not in fs.skills:
                    out.add("E502", f"unknown skill '{req.skill}'", req.pos,
                            help=did_you_mean(req.skill, fs.skills) or _known("skills", fs.skills))
                if not 1 <= req.min_level <= 10:
                    out.add("E204", f"skill '{req.skill}': min_level must be 1-10", req.pos)
            _check_dtmf_keys(node.exit_keys, f"exit_keys of '{node.id}'", out)
            offer = node.offer_callback
            if offer is not None:
                _check_dtmf_keys((DtmfOption(key=offer.key, target=Transition(goto="hangup"),
                                             pos=offer.pos),), "offer_callback.key", out)
                for opt in node.exit_keys:
                    if opt.key == offer.key:
                        out.add("E201", f"key '{offer.key}' is both an exit key and the callback "
                                        f"offer key of '{node.id}'", opt.pos)
        case CallbackNode():
            if node.queue is not None:
                _check_queue_ref(fs, node.queue, node.pos_of("queue"), out)
            if node.window is not None:
                _check_schedule_ref(fs, node.window, node.pos_of("window"), out)
            if not 1 <= node.attempts <= 10:
                out.add("E204", f"callback '{node.id}': attempts must be 1-10", node.pos_of("attempts"))
        case VoicemailNode():
            if node.mailbox and node.mailbox not in fs.mailboxes:
                out.add("E504", f"unknown mailbox '{node.mailbox}'", node.pos_of("mailbox"),
                        help=did_you_mean(node.mailbox, fs.mailboxes) or _known("mailboxes", fs.mailboxes))
            _check_single_key(node.finish_on_key, node.pos_of("finish_on_key"), out)
        case SubflowNode():
            _check_subflow_call(fs, node, out)
        case ReturnNode():
            if flow.kind != "subflow":
                out.add("E101", f"return node '{node.id}' in flow '{flow.id}', which is not a subflow",
                        node.pos, help="`return` ends a flow of kind: subflow")
        case SetNode():
            for name, value in node.assignments:
                _check_assignable(flow, name, node.field_pos.get(name, node.pos), out)
                _check_language_value(flow, name, value, node.field_pos.get(name, node.pos), out)
        case BranchNode():
            for index, case in enumerate(node.when):
                var = case.condition.var
                if var is not None:
                    ref = TemplateRef(text=var, pos=case.condition.pos,
                                      path=f"nodes.{node.id}.when[{index}].var", kind="condition",
                                      node=node.id)
                    root = var.split(".")[0]
                    _check_root(flow, ref, root, out)
                    if root in templates.NAMESPACES:
                        _check_ref(fs, flow, ref, var, out)
        case TransferNode():
            if node.timeout is not None and not 1 <= node.timeout <= 300:
                out.add("E204", f"transfer '{node.id}': timeout must be 1s-300s", node.pos_of("timeout"))
        case _:
            pass


def _known(what: str, names: Iterable[str]) -> str:
    items = sorted(names)
    return f"known {what}: {', '.join(items)}" if items else f"no {what} are defined (_queues.yaml)"


def _check_schedule_ref(fs: FlowSet, name: str, pos: Pos, out: _Out) -> None:
    if name and name not in fs.schedules:
        out.add("E503", f"unknown schedule '{name}'", pos,
                help=did_you_mean(name, fs.schedules) or
                (f"schedules: {', '.join(sorted(fs.schedules))}" if fs.schedules
                 else "define it in _schedules.yaml"))


def _check_queue_ref(fs: FlowSet, name: str, pos: Pos, out: _Out) -> None:
    if name and name not in fs.queues:
        out.add("E501", f"unknown queue '{name}'", pos,
                help=did_you_mean(name, fs.queues) or _known("queues", fs.queues))


def _check_single_key(key: str | None, pos: Pos, out: _Out) -> None:
    if key is not None and (len(key) != 1 or key not in DTMF_CHARS):
        out.add("E203", f"'{key}' is not one DTMF key (0-9, *, #, A-D)", pos)


def _check_dtmf_keys(options: tuple[DtmfOption, ...], where: str, out: _Out) -> None:
    seen: dict[str, DtmfOption] = {}
    for opt in options:
        if not opt.key or any(ch not in DTMF_CHARS for ch in opt.key):
            out.add("E203", f"key '{opt.key}' in {where} is not DTMF (0-9, *, #, A-D)", opt.pos)
            continue
        if opt.key in seen:
            out.add("E201", f"key '{opt.key}' appears twice in {where}", opt.pos,
                    help=f"first at {seen[opt.key].pos}")
            continue
        seen[opt.key] = opt
    for key, opt in seen.items():
        for other in seen:
            if other != key and other.startswith(key):
                out.add("W202", f"key '{key}' in {where} is a prefix of '{other}': a caller "
                                f"pressing {key} waits the inter-digit timeout", opt.pos)
                break


def _check_collect(flow: Flow, node: CollectNode, out: _Out) -> None:
    if node.hotkeys:
        for hot in flow.hotkeys:
            if hot.key.isdigit():
                out.add("W205", f"hotkey '{hot.key}' takes the first key of collect '{node.id}': "
                                f"an entry starting with {hot.key} goes to the hotkey instead",
                        node.pos, help="set `hotkeys: false` on this collect")
    if node.into is not None:
        _check_assignable(flow, node.into, node.pos_of("into"), out)
    for name, value in (("min_digits", node.min_digits), ("max_digits", node.max_digits)):
        if not 1 <= value <= 64:
            out.add("E204", f"collect '{node.id}': {name} must be 1-64, not {value}",
                    node.pos_of(name))
    if node.min_digits > node.max_digits:
        out.add("E206", f"collect '{node.id}': min_digits ({node.min_digits}) > max_digits "
                        f"({node.max_digits})", node.pos_of("min_digits"))
    if node.finish_on_key is not None:
        _check_single_key(node.finish_on_key, node.pos_of("finish_on_key"), out)
        if node.finish_on_key.isdigit():
            out.add("E206", f"collect '{node.id}': finish_on_key '{node.finish_on_key}' is a digit "
                            f"the caller may enter", node.pos_of("finish_on_key"),
                    help='use "#" (or "*")')
    if node.confirm is not None:
        _check_single_key(node.confirm.yes_key, node.confirm.pos, out)
        _check_single_key(node.confirm.no_key, node.confirm.pos, out)
        if node.confirm.yes_key == node.confirm.no_key:
            out.add("E201", f"collect '{node.id}': confirm yes_key and no_key are the same",
                    node.confirm.pos)


def _check_http(node: HttpNode, out: _Out) -> None:
    if node.timeout is None:
        if "timeout" in node.field_pos:
            return  # written but unreadable: E004 already
        out.add("E601", f"http node '{node.id}' has no timeout", node.pos,
                help="add `timeout: 2s` (a caller hears silence while we wait)")
        return
    if node.timeout > MAX_HTTP_TIMEOUT and not node.allow_long:
        out.add("E601", f"http node '{node.id}': timeout {node.timeout:g}s is above "
                        f"{MAX_HTTP_TIMEOUT:g}s", node.pos_of("timeout"),
                help="lower it, or add `allow_long: true` and a while_waiting prompt")
    if node.timeout <= 0:
        out.add("E204", f"http node '{node.id}': timeout must be positive", node.pos_of("timeout"))
    if node.timeout > DEAD_AIR and node.while_waiting is None:
        out.add("W603", f"http node '{node.id}' may keep the caller in silence for "
                        f"{node.timeout:g}s", node.pos_of("timeout"),
                help='add `while_waiting: {after: 800ms, prompt: "tts:One moment please."}`')
    if not 0 <= node.retries <= 5:
        out.add("E204", f"http node '{node.id}': retries must be 0-5", node.pos_of("retries"))


def _check_input_ranges(flow: Flow, out: _Out) -> None:
    d = flow.defaults
    checks: list[tuple[str, float | int | None, Pos, bool]] = [
        ("defaults.input.timeout", d.input.timeout, d.field_pos.get("input.timeout", flow.pos), True),
        ("defaults.input.inter_digit_timeout", d.input.inter_digit_timeout,
         d.field_pos.get("input.inter_digit_timeout", flow.pos), True),
        ("defaults.input.max_no_input", d.input.max_no_input,
         d.field_pos.get("input.max_no_input", flow.pos), False),
        ("defaults.input.max_no_match", d.input.max_no_match,
         d.field_pos.get("input.max_no_match", flow.pos), False),
        ("defaults.input.max_attempts", d.input.max_attempts,
         d.field_pos.get("input.max_attempts", flow.pos), False),
    ]
    for node in flow.nodes.values():
        if isinstance(node, MenuNode | CollectNode):
            s = node.input
            for name, value, is_time in (("timeout", s.timeout, True),
                                         ("inter_digit_timeout", s.inter_digit_timeout, True),
                                         ("max_no_input", s.max_no_input, False),
                                         ("max_no_match", s.max_no_match, False),
                                         ("max_attempts", s.max_attempts, False)):
                checks.append((f"{node.id}.{name}", value, node.pos_of(name), is_time))
    for label, value, pos, is_time in checks:
        if value is None:
            continue
        if is_time and not 1.0 <= value <= 60.0:
            out.add("E204", f"'{label}' is {value:g}s; it must be between 1s and 60s", pos)
        elif not is_time and not 1 <= value <= 10:
            out.add("E204", f"'{label}' is {value}; it must be between 1 and 10", pos)
    if not 1 <= d.max_node_visits <= 1000:
        out.add("E204", "defaults.max_node_visits must be 1-1000",
                d.field_pos.get("max_node_visits", flow.pos))
    if not 10.0 <= d.max_ivr_time <= 4 * 3600.0:
        out.add("E204", "defaults.max_ivr_time must be 10s-4h",
                d.field_pos.get("max_ivr_time", flow.pos))


# ----------------------------------------------------------------------------- graph checks


def _roots(flow: Flow) -> set[str]:
    roots = {flow.start} if flow.start in flow.nodes else set()
    on_error = flow.defaults.on_error.goto if flow.defaults.on_error is not None else None
    if on_error is not None and on_error in flow.nodes:
        roots.add(on_error)
    return roots


def _reachable(flow: Flow, roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        current = todo.pop()
        if current in seen or current not in flow.nodes:
            continue
        seen.add(current)
        todo.extend(successors(flow, flow.nodes[current]) - seen)
    return seen


def _check_reachability(flow: Flow, out: _Out) -> None:
    if flow.start not in flow.nodes:
        return
    reached = _reachable(flow, _roots(flow))
    for node in flow.nodes.values():
        if node.id not in reached:
            out.add("W103", f"node '{node.id}' is unreachable from '{flow.start}'", node.pos,
                    help="remove it, or lead to it from another node")


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
    return result


def _check_loops(flow: Flow, out: _Out) -> None:
    graph = {node.id: successors(flow, node) for node in flow.nodes.values()}
    for component in _sccs(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        if any(flow.nodes[n].type in WAITING_NODE_TYPES for n in component):
            continue
        first = min((flow.nodes[n] for n in component), key=lambda n: n.pos)
        names = " -> ".join(sorted(component))
        out.add("E104", f"loop {names} has no node that waits for input, so it can never exit",
                first.pos, help="put a menu or collect in the loop, or end it with hangup")


def _check_subflow_call(fs: FlowSet, node: SubflowNode, out: _Out) -> None:
    target = fs.flows.get(node.flow)
    if target is None:
        out.add("E101", f"subflow node '{node.id}' calls unknown flow '{node.flow}'",
                node.pos_of("flow"), help=did_you_mean(node.flow, fs.flows))
        return
    if target.kind != "subflow":
        out.add("E101", f"subflow node '{node.id}' calls '{node.flow}', which is a flow of kind "
                        f"{target.kind}, not a subflow", node.pos_of("flow"))
        return
    produced = subflow_outcomes(target)
    for name in sorted(produced - set(node.returns)):
        out.add("E107", f"subflow '{node.flow}' can return '{name}', which '{node.id}' does not "
                        f"handle", node.pos_of("returns") if node.returns else node.pos,
                help=f"add `returns: {{{name}: <node>}}`")


def subflow_outcomes(flow: Flow) -> set[str]:
    names: set[str] = set()
    for node in flow.nodes.values():
        if isinstance(node, ReturnNode) and node.outcome:
            names.add(node.outcome)
        for _, target in node_transitions(node):
            if target.goto is None and target.returns:
                names.add(target.returns)
    return names


def _check_subflow_recursion(fs: FlowSet, out: _Out) -> None:
    graph: dict[str, set[str]] = {}
    for flow in fs.flows.values():
        graph[flow.id] = {n.flow for n in flow.nodes.values()
                          if isinstance(n, SubflowNode) and n.flow in fs.flows}
    for component in _sccs(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        members = set(component)
        for flow_id in sorted(members):
            for node in fs.flows[flow_id].nodes.values():
                if isinstance(node, SubflowNode) and node.flow in members:
                    out.add("E106", f"subflow recursion: '{flow_id}' calls '{node.flow}', which "
                                    f"leads back to '{flow_id}'", node.pos_of("flow"))


# ----------------------------------------------------------------------------- prompts


def wav_problem(path: Path) -> str | None:
    """Why a WAV file cannot be played as a prompt, or None when it can: RIFF/WAVE, PCM, mono,
    16-bit, 8 or 16 kHz (what Asterisk plays without transcoding surprises)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return "not a RIFF/WAVE file"
    offset = 12
    while offset + 8 <= len(head):
        chunk, size = head[offset:offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        if chunk == b"fmt ":
            if offset + 24 > len(head):
                return "truncated fmt chunk"
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, offset + 8)
            problems = []
            if fmt not in (1, 0xFFFE):
                problems.append(f"format {fmt} is not PCM")
            if channels != 1:
                problems.append(f"{channels} channels (need mono)")
            if rate not in PLAYABLE_RATES:
                problems.append(f"{rate} Hz (need 8000 or 16000)")
            if bits != 16:
                problems.append(f"{bits}-bit (need 16-bit)")
            return ", ".join(problems) or None
        offset += 8 + size + (size & 1)
    return "no fmt chunk"


def _check_prompts(fs: FlowSet, flow: Flow, out: _Out, wav_cache: dict[Path, str | None]) -> None:
    voices = flow.defaults.tts_voice
    missing_voice_reported: set[str] = set()
    prompts_dir = Path(fs.root) / "prompts"
    # (code, position, prompt) -> languages: one diagnostic per prompt, naming the languages.
    missing: dict[tuple[str, Pos, str, str], list[str]] = {}
    for node in flow.nodes.values():
        for label, prompt in node_prompts(node):
            for lang in flow.languages:
                items = prompt.for_language(lang)
                if items is None:
                    fallback = flow.defaults.language_fallback
                    if fallback != "error" and prompt.for_language(flow.default_language):
                        continue
                    missing.setdefault(("E301-variant", prompt.pos, label, ""), []).append(lang)
                    continue
                for item in items:
                    match item:
                        case Recording():
                            path = prompts_dir / lang / f"{item.name}.wav"
                            if path.is_file():
                                if path not in wav_cache:
                                    wav_cache[path] = wav_problem(path)
                                problem = wav_cache[path]
                                if problem:
                                    out.add("E304", f"prompts/{lang}/{item.name}.wav cannot be "
                                                    f"played: {problem}", item.pos,
                                            help="convert it: sox IN -r 8000 -c 1 -b 16 OUT.wav")
                            elif item.tts and lang in voices:
                                missing.setdefault(("W302", item.pos, item.name, ""), []).append(lang)
                            else:
                                why = "no TTS text" if not item.tts else "no TTS voice"
                                missing.setdefault(("E301", item.pos, item.name, why), []).append(lang)
                        case Tts():
                            if lang not in voices and lang not in missing_voice_reported:
                                missing_voice_reported.add(lang)
                                out.add("E303", f"'{lang}' has no TTS voice, but prompt '{label}' "
                                                f"is TTS text", item.pos,
                                        help=f"add defaults.tts.voice.{lang} (an espeak-ng voice, "
                                             f"e.g. {'en-us' if lang.startswith('en') else lang})")
                        case SayAs() | Silence():
                            pass
    for node in flow.nodes.values():
        # Built-in texts the interpreter speaks with the language's voice.
        builtin = (isinstance(node, SafeHarborNode) and node.prompt is None) or \
            (isinstance(node, CallbackNode) and node.confirm_number)
        for lang in flow.languages if builtin else ():
            if lang not in voices and lang not in missing_voice_reported:
                missing_voice_reported.add(lang)
                out.add("E303", f"'{lang}' has no TTS voice, but {node.type} '{node.id}' speaks a "
                                f"built-in text", node.pos,
                        help=f"add defaults.tts.voice.{lang}"
                             + (" or give the node a prompt" if isinstance(node, SafeHarborNode)
                                else ""))
    for (code, pos, name, why), langs in missing.items():
        shown = ", ".join(f"prompts/{lang}/{name}.wav" for lang in langs)
        if code == "E301-variant":
            out.add("E301", f"prompt '{name}' has no variant for {', '.join(langs)}", pos,
                    help=f"add `{langs[0]}:` to the prompt, or set "
                         f"defaults.language_fallback: default_language")
        elif code == "W302":
            out.add("W302", f"prompt '{name}' has no recording ({shown}); its TTS text will be "
                            f"spoken", pos)
        else:
            fix = f" or add defaults.tts.voice.{langs[0]}" if why == "no TTS voice" \
                else " or add `tts:` text (spoken when the recording is missing)"
            out.add("E301", f"prompt '{name}' has no recording ({shown}) and {why}", pos,
                    help=f"record {shown}{fix}")


# ----------------------------------------------------------------------------- templates


def _check_templates(fs: FlowSet, flow: Flow, out: _Out) -> None:
    for ref in flow.templates:
        source = "{{ " + expression_of(ref.text) + " }}" if ref.kind == "condition" else ref.text
        try:
            roots = templates.template_roots(source)
            refs = templates.template_refs(source)
        except templates.TemplateError as exc:
            out.add("E305", f"template in '{ref.path}': {exc.reason}", ref.pos)
            continue
        for root in sorted(roots):
            _check_root(flow, ref, root, out)
        for path in sorted(refs):
            _check_ref(fs, flow, ref, path, out)


def _check_root(flow: Flow, ref: TemplateRef, root: str, out: _Out) -> None:
    if root not in templates.NAMESPACES:
        out.add("E401", f"unknown name '{root}' in '{ref.path}'", ref.pos,
                help=did_you_mean(root, templates.NAMESPACES) or
                f"names: {', '.join(sorted(templates.NAMESPACES))}")
    elif root == "secrets" and ref.kind != "http":
        out.add("E404", f"secrets.* in '{ref.path}': secrets may only go into an http node's "
                        f"url, headers, query or body", ref.pos,
                help="secrets are never spoken, shown to agents or logged")
    elif root == "lead" and flow.kind != "outbound":
        out.add("E401", f"lead.* in '{ref.path}', but flow '{flow.id}' is {flow.kind}: lead data "
                        f"exists only on outbound calls", ref.pos)
    elif root == "queue" and ".announce." not in ref.path and ".offer_callback." not in ref.path:
        out.add("E401", f"queue.* in '{ref.path}': queue position and wait time exist only in a "
                        f"queue node's announcements", ref.pos)


def _check_ref(fs: FlowSet, flow: Flow, ref: TemplateRef, path: str, out: _Out) -> None:
    parts = path.split(".")
    if len(parts) < 2:
        return
    root, name = parts[0], parts[1]
    if root == "vars" and name not in flow.variables and name not in BUILTIN_VARIABLES:
        out.add("E401", f"unknown variable 'vars.{name}' in '{ref.path}'", ref.pos,
                help=did_you_mean(name, flow.variables) or "declare it under `variables:`")
    elif root in NAMESPACE_FIELDS and name not in NAMESPACE_FIELDS[root]:
        out.add("E401", f"unknown field '{root}.{name}' in '{ref.path}'", ref.pos,
                help=did_you_mean(name, NAMESPACE_FIELDS[root]) or
                f"{root} has: {', '.join(sorted(NAMESPACE_FIELDS[root]))}")
    elif root in ("input", "http"):
        wanted: tuple[type, ...] = (MenuNode, CollectNode) if root == "input" else (HttpNode,)
        node = flow.nodes.get(name)
        if not isinstance(node, wanted):
            kind = "menu or collect" if root == "input" else "http"
            out.add("E401", f"'{root}.{name}' in '{ref.path}': '{name}' is not a {kind} node "
                            f"of this flow", ref.pos, help=_node_hint(flow, name))
    elif root == "schedule" and name not in fs.schedules:
        out.add("E503", f"unknown schedule '{name}' in '{ref.path}'", ref.pos,
                help=did_you_mean(name, fs.schedules))


# ----------------------------------------------------------------------------- outbound


def _check_outbound(flow: Flow, out: _Out) -> None:
    reached = _reachable(flow, _roots(flow))
    for node in flow.nodes.values():
        if not isinstance(node, QueueNode) or node.id not in reached:
            continue
        if (node.max_wait is None and "max_wait" not in node.field_pos) or \
                (node.max_wait is not None and node.max_wait > CONNECT_LIMIT):
            shown = "no max_wait" if node.max_wait is None else f"max_wait {node.max_wait:g}s"
            out.add("E702", f"outbound flow: agent connect node '{node.id}' has {shown}; a called "
                            f"person must reach an agent within {CONNECT_LIMIT:g}s or hear the safe "
                            f"harbor message", node.pos_of("max_wait"), help="set `max_wait: 2s`")
        for name in ("on_timeout", "on_no_agents"):
            target = outcome(node, name, flow.defaults.on_error)
            if target is None:
                continue  # E102 already
            goto = target.goto or ""
            start: set[str] = {node.id} if goto == "repeat" else \
                {flow.start} if goto == "top" else {goto} if goto in flow.nodes else set()
            if not any(isinstance(flow.nodes[n], SafeHarborNode) for n in _reachable(flow, start)):
                out.add("E701", f"outbound flow: '{node.id}.{name}' -> '{target.goto}' does not "
                                f"reach a safe_harbor node", target.pos,
                        help="lead on_timeout and on_no_agents to a safe_harbor node")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _check_safe_harbor(flow: Flow, node: SafeHarborNode, out: _Out) -> None:
    missing = [name for name in ("seller", "callback_number", "opt_out_key")
               if not getattr(node, name)]
    if missing:
        out.add("E703", f"safe_harbor '{node.id}' lacks {', '.join(missing)}", node.pos,
                help="the message must name the seller, give a callback number and an opt-out key")
        return
    _check_single_key(node.opt_out_key, node.pos_of("opt_out_key"), out)
    if node.prompt is None:
        return
    assert node.seller is not None
    assert node.callback_number is not None
    for lang in flow.languages:
        items = node.prompt.for_language(lang) or ()
        texts: list[str] = []
        for item in items:
            if isinstance(item, Recording):
                spoken = item.transcript or item.tts
                if not spoken:
                    out.add("E307", f"safe_harbor '{node.id}': recording '{item.name}' has no "
                                    f"tts or transcript text, so its content cannot be checked",
                            item.pos, help="add `transcript:` with what the recording says")
                    return
                texts.append(spoken)
            elif isinstance(item, Tts):
                texts.append(item.text)
            elif isinstance(item, SayAs):
                texts.append(item.value)
        text = " ".join(texts)
        if "{{" in text:
            continue  # rendered per call; the interpreter checks the result
        lacks = []
        if node.seller.lower() not in text.lower():
            lacks.append(f"the seller '{node.seller}'")
        if _digits(node.callback_number) and _digits(node.callback_number)[-7:] not in _digits(text):
            lacks.append(f"the callback number {node.callback_number}")
        key = node.opt_out_key or ""
        if key not in text and not _mentions_key(text, key):
            lacks.append(f"the opt-out key {node.opt_out_key}")
        if lacks:
            out.add("E703", f"safe_harbor '{node.id}': the '{lang}' prompt does not say "
                            f"{' or '.join(lacks)}", node.prompt.pos)


_KEY_WORDS = {"*": ("star", "asterisk", "estrella", "asterisco"),
              "#": ("pound", "hash", "numeral", "almohadilla", "gato")}


def _mentions_key(text: str, key: str) -> bool:
    return any(word in text.lower() for word in _KEY_WORDS.get(key, ()))


# ----------------------------------------------------------------------------- shared files


def _check_shared(fs: FlowSet, out: _Out) -> None:
    for schedule in fs.schedules.values():
        _check_schedule(fs, schedule, out)
    for queue in fs.queues.values():
        for skill in queue.skills:
            if skill not in fs.skills:
                out.add("E502", f"queue '{queue.name}' uses unknown skill '{skill}'", queue.pos,
                        help=did_you_mean(skill, fs.skills) or "list it under `skills:`")
        if queue.max_callers is not None and queue.max_callers < 1:
            out.add("E204", f"queue '{queue.name}': max_callers must be at least 1", queue.pos)


def _check_schedule(fs: FlowSet, schedule: Schedule, out: _Out) -> None:
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        out.add("E506", f"schedule '{schedule.name}': unknown time zone '{schedule.timezone}'",
                schedule.field_pos.get("timezone", schedule.pos),
                help="use an IANA name such as America/New_York or Europe/Madrid")
    for name in schedule.holidays:
        if name not in fs.holiday_lists:
            out.add("E503", f"schedule '{schedule.name}': unknown holiday list '{name}'",
                    schedule.field_pos.get("holidays", schedule.pos),
                    help=did_you_mean(name, fs.holiday_lists))
    for day in range(7):
        ranges = sorted((r for w in schedule.open if day in w.days for r in w.hours),
                        key=lambda r: r.start)
        for first, second in itertools.pairwise(ranges):
            if second.start < first.end:
                day_name = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day]
                out.add("E507", f"schedule '{schedule.name}': hours overlap on {day_name}", second.pos,
                        help="merge the ranges or change the days")
                break
    for exception in schedule.exceptions:
        ranges = sorted(exception.hours, key=lambda r: r.start)
        for first, second in itertools.pairwise(ranges):
            if second.start < first.end:
                out.add("E507", f"schedule '{schedule.name}': exception hours overlap", second.pos)


def _check_routes(fs: FlowSet, out: _Out) -> None:
    seen: dict[str, Pos] = {}
    for route in fs.routes:
        if route.number in seen:
            out.add("E002", f"number '{route.number}' is routed twice", route.pos,
                    help=f"first at {seen[route.number]}")
        seen.setdefault(route.number, route.pos)
        flow = fs.flows.get(route.flow)
        if flow is None:
            out.add("E101", f"route '{route.number}' -> '{route.flow}': no such flow", route.pos,
                    help=did_you_mean(route.flow, fs.flows) or
                    f"flows: {', '.join(sorted(fs.flows))}")
        elif flow.kind != "inbound":
            out.add("E101", f"route '{route.number}' -> '{route.flow}': a number can only start "
                            f"an inbound flow (this one is {flow.kind})", route.pos)


def _check_campaigns(fs: FlowSet, out: _Out) -> None:
    for campaign in fs.campaigns.values():
        where = campaign.field_pos.get("flow", campaign.pos)
        flow = fs.flows.get(campaign.flow)
        if flow is None:
            out.add("E101", f"campaign '{campaign.name}' runs unknown flow '{campaign.flow}'", where,
                    help=did_you_mean(campaign.flow, fs.flows))
        elif flow.kind != "outbound":
            out.add("E101", f"campaign '{campaign.name}' runs '{flow.id}', a flow of kind "
                            f"{flow.kind}; campaigns run outbound flows", where)
        if campaign.ring_timeout is not None and campaign.ring_timeout < MIN_RING:
            out.add("E706", f"campaign '{campaign.name}': ring_timeout {campaign.ring_timeout:g}s "
                            f"is below {MIN_RING:g}s", campaign.field_pos.get("ring_timeout", campaign.pos),
                    help="ring at least 15 seconds (FCC 47 CFR 64.1200(a)(6))")
        if campaign.calling_window is not None:
            _check_schedule_ref(fs, campaign.calling_window,
                                campaign.field_pos.get("calling_window", campaign.pos), out)
        if flow is None or flow.kind != "outbound":
            continue
        harbors = [n for n in flow.nodes.values() if isinstance(n, SafeHarborNode)]
        if campaign.dial_mode == "predictive" and not harbors:
            out.add("E701", f"predictive campaign '{campaign.name}': flow '{flow.id}' has no "
                            f"safe_harbor node", where)
        for node in harbors:
            if campaign.seller and node.seller and node.seller != campaign.seller:
                out.add("E703", f"campaign '{campaign.name}' sells for '{campaign.seller}', but "
                                f"safe_harbor '{node.id}' of '{flow.id}' names '{node.seller}'",
                        campaign.field_pos.get("seller", campaign.pos),
                        help=f"make them agree (safe_harbor at {node.pos_of('seller')})")
        if campaign.lead_schema:
            allowed = set(campaign.lead_schema) | LEAD_BASE_FIELDS
            for ref in flow.templates:
                source = "{{ " + expression_of(ref.text) + " }}" if ref.kind == "condition" \
                    else ref.text
                try:
                    paths = templates.template_refs(source)
                except templates.TemplateError:
                    continue  # E305 already
                for path in sorted(paths):
                    parts = path.split(".")
                    if parts[0] == "lead" and len(parts) > 1 and parts[1] not in allowed:
                        out.add("E402", f"lead.{parts[1]} is not in campaign '{campaign.name}' "
                                        f"lead_schema", ref.pos,
                                help=did_you_mean(parts[1], allowed) or
                                f"fields: {', '.join(sorted(allowed))}")


__all__ = ["NODE_TYPES", "node_prompts", "node_transitions", "subflow_outcomes", "successors",
           "validate_flowset", "wav_problem"]

"""Flow scenarios (`ivr_flows/tests/*.yaml`): scripted calls with expectations, and coverage.

A scenario file tests one flow (``flow:``; a scenario may name another) with a list of
scenarios. Each scenario is one simulated call (dialer/ivr/simulate.py) and what must come of
it::

    flow: inbound_main
    defaults:                         # optional; merged into every scenario
      at: "2026-12-02 10:00"          # local time in `timezone` (default: the zone of the
                                      # flow's first hours schedule, else UTC)
      timezone: America/New_York
      caller: "+15551230000"
    scenarios:
      - name: billing in Spanish reaches the billing queue
        lang: es                      # the call's language at the start (default: the flow's)
        lead: {first_name: Ana}       # outbound: the lead record (`lead.*`)
        input: "2,1"                  # keys and <timeout>, <wait 70s>, <hangup> (or a list)
        mocks:                        # see simulate.Mocks.parse
          http: {lookup: {status: 200, json: {tier: gold}, latency: 300ms}}
          queue: {billing: {outcome: answered, after: 20s, position: 3, ewt: 4m}}
          transfer: {to_sales: busy}
          callback: ok                # or error
          voicemail: {leave_voicemail: 12s}   # how long the caller speaks (0s/empty: silent)
        expect:
          path: [check_hours, pick_language, main_menu, billing_queue]   # exact node path
          nodes: [main_menu, billing_queue]   # visited in this order (gaps allowed)
          not_nodes: [operator]               # never visited
          prompts: ["Para facturación"]       # each text is in a played prompt, in this order
          outcome: agent                      # hangup | caller_hangup | agent | transferred | error
          disposition: "agent_answered:billing"
          vars: {vars.reason: billing, call.language: es}
          enqueue: {queue: billing, priority: 0, skills: [billing, spanish], screen_pop: {reason: billing}}
          problems: 0                         # runtime flow problems (LogProblem); default 0

Every expectation is optional, but a scenario must have at least one (a scenario that checks
nothing is a defect). A scenario also fails if the simulation gets stuck or leaves input unused
(the script no longer matches the flow), unless `allow_unused_input: true`.

Coverage: per flow, the nodes visited and the edges (written transitions: outcomes, options,
branch cases, hotkeys, exit keys, subflow returns, `defaults.on_error`) taken over all
scenarios, with the ones never reached listed, so a flow change without a scenario shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.ivr import engine as e
from dialer.ivr import model as m
from dialer.ivr import simulate as sim
from dialer.ivr.diagnostics import Diagnostic
from dialer.ivr.yamltree import YMap, YNode, YScalar, YSeq, parse_yaml

SCENARIO_FIELDS = frozenset({"name", "flow", "at", "timezone", "caller", "caller_name", "lang", "lead",
                             "dnis", "input", "mocks", "expect", "allow_unused_input"})
EXPECT_FIELDS = frozenset({"path", "nodes", "not_nodes", "prompts", "outcome", "disposition", "vars",
                           "enqueue", "problems"})
DEFAULT_AT = "2026-01-05 10:00"  # a Monday morning


class ScenarioError(sim.InputError):
    """A scenario file is malformed; the message starts with file:line:col."""


@dataclass(slots=True)
class Scenario:
    name: str
    file: str
    pos: m.Pos
    flow: str
    fields: dict[str, Any]  # plain values; `input` kept as raw text


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    failures: list[str]
    result: sim.SimResult | None

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class Coverage:
    flow: str
    nodes: set[str]
    edges: set[tuple[str, str]]
    visited: set[str] = field(default_factory=set)
    taken: set[tuple[str, str]] = field(default_factory=set)

    @property
    def missing_nodes(self) -> list[str]:
        return sorted(self.nodes - self.visited)

    @property
    def missing_edges(self) -> list[tuple[str, str]]:
        return sorted(self.edges - self.taken)


@dataclass(slots=True)
class Report:
    results: list[ScenarioResult]
    coverage: dict[str, Coverage]
    errors: list[str]  # files that could not be run (bad YAML, unknown flow, ...)

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.passed for r in self.results) and bool(self.results)


# ============================================================================ parsing


def _plain(node: YNode, *, raw: bool = False) -> Any:
    """A YAML tree as plain Python; scalars as written when `raw` (keys stay text)."""
    match node:
        case YScalar():
            if raw:
                return node.raw
            return node.value
        case YMap():
            return {k.raw: _plain(v, raw=raw) for k, v in node.items}
        case YSeq():
            return [_plain(v, raw=raw) for v in node.items]
    raise AssertionError(node)


def _where(pos: m.Pos) -> str:
    return f"{pos.file}:{pos.line}:{pos.col}"


def load_scenarios(path: Path) -> list[Scenario]:
    """Parse one scenario file. Raises `ScenarioError` (with file:line:col) when malformed."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{file}: cannot read: {exc}") from None
    tree, diags = parse_yaml(text, file)
    errors = [d for d in diags if d.is_error]
    if tree is None or errors:
        first: Diagnostic = errors[0] if errors else diags[0]
        raise ScenarioError(first.format_text())
    if not isinstance(tree, YMap):
        raise ScenarioError(f"{_where(tree.pos)}: a scenario file is a mapping with flow: and scenarios:")
    unknown = [k for k, _ in tree.items if k.raw not in ("flow", "defaults", "scenarios")]
    if unknown:
        raise ScenarioError(f"{_where(unknown[0].pos)}: unknown key {unknown[0].raw!r} "
                            "(expected flow, defaults, scenarios)")
    flow_node = tree.get("flow")
    file_flow = flow_node.raw if isinstance(flow_node, YScalar) else None
    defaults_node = tree.get("defaults")
    defaults: dict[str, Any] = {}
    if defaults_node is not None:
        if not isinstance(defaults_node, YMap):
            raise ScenarioError(f"{_where(defaults_node.pos)}: defaults: must be a mapping")
        defaults = _scenario_fields(defaults_node, file)
    items = tree.get("scenarios")
    if not isinstance(items, YSeq) or not items.items:
        where = _where(items.pos if items is not None else tree.pos)
        raise ScenarioError(f"{where}: scenarios: must be a non-empty list")
    out: list[Scenario] = []
    names: set[str] = set()
    for item in items.items:
        if not isinstance(item, YMap):
            raise ScenarioError(f"{_where(item.pos)}: each scenario is a mapping (name, input, expect, ...)")
        fields = {**defaults, **_scenario_fields(item, file)}
        name = str(fields.get("name") or "").strip()
        if not name:
            raise ScenarioError(f"{_where(item.pos)}: scenario without a name")
        if name in names:
            raise ScenarioError(f"{_where(item.pos)}: duplicate scenario name {name!r}")
        names.add(name)
        flow = fields.get("flow") or file_flow
        if not flow:
            raise ScenarioError(f"{_where(item.pos)}: scenario {name!r}: no flow (set flow: at the top)")
        expect = fields.get("expect")
        if not isinstance(expect, Mapping) or not expect:
            raise ScenarioError(f"{_where(item.pos)}: scenario {name!r}: expect: must check something "
                                f"({', '.join(sorted(EXPECT_FIELDS))})")
        out.append(Scenario(name=name, file=file, pos=item.pos, flow=str(flow), fields=fields))
    return out


def _scenario_fields(node: YMap, file: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in node.items:
        if key.raw not in SCENARIO_FIELDS:
            raise ScenarioError(f"{_where(key.pos)}: unknown scenario field {key.raw!r} "
                                f"(known: {', '.join(sorted(SCENARIO_FIELDS))})")
        if key.raw == "input":
            fields["input"] = _plain(value, raw=True)  # keys as written: "01" stays "01"
        elif key.raw == "expect":
            if not isinstance(value, YMap):
                raise ScenarioError(f"{_where(value.pos)}: expect: must be a mapping")
            for k, _ in value.items:
                if k.raw not in EXPECT_FIELDS:
                    raise ScenarioError(f"{_where(k.pos)}: unknown expectation {k.raw!r} "
                                        f"(known: {', '.join(sorted(EXPECT_FIELDS))})")
            expect = _plain(value)
            for name in ("path", "nodes", "not_nodes"):  # node ids as written
                ids = value.get(name)
                if ids is not None:
                    expect[name] = _plain(ids, raw=True)
            fields["expect"] = expect
        else:
            fields[key.raw] = _plain(value)
    return fields


# ============================================================================ running


def run_scenario(flowset: m.FlowSet, scenario: Scenario) -> ScenarioResult:
    f = scenario.fields
    label = f"{_where(scenario.pos)}: scenario {scenario.name!r}"
    try:
        zone = f.get("timezone") or sim.default_zone(flowset, scenario.flow)
        at = sim.parse_at(str(f.get("at") or DEFAULT_AT), zone=zone)
        tokens = sim.parse_input(f.get("input") or "")
        mocks = sim.Mocks.parse(f.get("mocks"), where="mocks")
        lead = f.get("lead") or {}
        if not isinstance(lead, Mapping):
            raise sim.InputError("lead: must be a mapping")
        simulator = sim.Simulator(
            flowset, scenario.flow, at=at, caller=str(f.get("caller") or "+15555550100"),
            caller_name=f.get("caller_name"), language=f.get("lang"), lead=lead,
            dnis=str(f.get("dnis") or ""), tokens=tokens, mocks=mocks)
    except sim.InputError as exc:
        return ScenarioResult(scenario, [f"{label}: {exc}"], None)
    result = simulator.simulate()
    return ScenarioResult(scenario, check(scenario, result), result)


def check(scenario: Scenario, result: sim.SimResult) -> list[str]:
    """The expectations of `scenario` that `result` does not meet (empty: passed)."""
    expect: Mapping[str, Any] = scenario.fields.get("expect") or {}
    failures: list[str] = []
    if result.stuck:
        failures.append(f"the simulation got stuck: {result.stuck}")
    if result.unused_tokens and not scenario.fields.get("allow_unused_input"):
        failures.append("input not used: " + ",".join(str(t) for t in result.unused_tokens)
                        + " (the script no longer matches the flow?)")
    path = result.path
    if "path" in expect:
        wanted = [str(x) for x in _list(expect["path"])]
        if path != wanted:
            failures.append(f"path: expected {' > '.join(wanted)}\n"
                            f"               got {' > '.join(path)}")
    if "nodes" in expect:
        wanted = [str(x) for x in _list(expect["nodes"])]
        missing = _subsequence_miss(wanted, path)
        if missing is not None:
            failures.append(f"nodes: {missing!r} not visited in order {wanted} (path: {' > '.join(path)})")
    for node in _list(expect.get("not_nodes") or []):
        if str(node) in path:
            failures.append(f"not_nodes: {node!r} was visited (path: {' > '.join(path)})")
    if "prompts" in expect:
        # In order, over everything played (several texts may be in one playback).
        heard = "\n".join(p.text for p in result.prompts).lower()
        offset = 0
        for wanted_text in (str(x) for x in _list(expect["prompts"])):
            found = heard.find(wanted_text.lower(), offset)
            if found < 0:
                where = "at all" if heard.find(wanted_text.lower()) < 0 else "in this order"
                failures.append(f"prompts: {wanted_text!r} was not played {where}")
                break
            offset = found + len(wanted_text)
    ended = result.ended
    if "outcome" in expect and (ended is None or ended.outcome != str(expect["outcome"])):
        failures.append(f"outcome: expected {expect['outcome']!r}, got "
                        f"{ended.outcome if ended else 'no end'!r}")
    if "disposition" in expect and result.disposition != str(expect["disposition"]):
        failures.append(f"disposition: expected {expect['disposition']!r}, got {result.disposition!r}")
    for name, wanted_value in (expect.get("vars") or {}).items():
        try:
            actual = result.lookup(str(name))
        except KeyError:
            failures.append(f"vars: {name} is not set")
            continue
        if not _same(actual, wanted_value):
            failures.append(f"vars: {name} expected {wanted_value!r}, got {actual!r}")
    if "enqueue" in expect:
        failures.extend(_check_enqueue(expect["enqueue"], result))
    wanted_problems = int(expect.get("problems", 0))
    if len(result.problems) != wanted_problems:
        shown = "; ".join(p.message for p in result.problems) or "none"
        failures.append(f"problems: expected {wanted_problems}, got {len(result.problems)} ({shown})")
    return failures


def _check_enqueue(wanted: Any, result: sim.SimResult) -> list[str]:
    enqueues = [c for _, c in result.commands if isinstance(c, e.Enqueue)]
    if not isinstance(wanted, Mapping):
        return ["enqueue: expected a mapping {queue, priority, skills, screen_pop}"]
    if not enqueues:
        return ["enqueue: the caller was never queued"]
    cmd = enqueues[-1]
    out = []
    if "queue" in wanted and cmd.queue != str(wanted["queue"]):
        out.append(f"enqueue.queue: expected {wanted['queue']!r}, got {cmd.queue!r}")
    if "priority" in wanted and not _same(cmd.priority, wanted["priority"]):
        out.append(f"enqueue.priority: expected {wanted['priority']!r}, got {cmd.priority!r}")
    if "skills" in wanted:
        got = [s.skill for s in cmd.skills]
        if sorted(got) != sorted(str(s) for s in _list(wanted["skills"])):
            out.append(f"enqueue.skills: expected {wanted['skills']!r}, got {got!r}")
    for key, value in (wanted.get("screen_pop") or {}).items():
        if not _same(cmd.screen_pop.get(str(key)), value):
            out.append(f"enqueue.screen_pop.{key}: expected {value!r}, got {cmd.screen_pop.get(str(key))!r}")
    return out


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _same(actual: Any, wanted: Any) -> bool:
    if actual == wanted:
        return True
    if actual is None or wanted is None:
        return False
    if isinstance(wanted, bool):
        return str(actual).lower() == str(wanted).lower()
    return str(actual) == str(wanted)


def _subsequence_miss(wanted: Sequence[str], path: Sequence[str]) -> str | None:
    i = 0
    for node in wanted:
        while i < len(path) and path[i] != node:
            i += 1
        if i == len(path):
            return node
        i += 1
    return None


# ============================================================================ coverage


def flow_edges(flow: m.Flow) -> set[tuple[str, str]]:
    """Every transition written in `flow`, as (node, outcome label) like `FlowRun.edges`."""
    edges: set[tuple[str, str]] = set()
    for node in flow.nodes.values():
        for name in m.OUTCOMES.get(node.type, {}):
            if isinstance(getattr(node, name, None), m.Transition):
                edges.add((node.id, name))
        match node:
            case m.MenuNode():
                edges.update((node.id, f"option {o.key}") for o in node.options)
            case m.BranchNode():
                edges.update((node.id, f"when {i}") for i, _ in enumerate(node.when, 1))
            case m.SubflowNode():
                edges.update((node.id, f"return {name}") for name in node.returns)
            case m.QueueNode():
                edges.update((node.id, f"exit {k.key}") for k in node.exit_keys)
                if node.offer_callback is not None and node.offer_callback.goto is not None:
                    edges.add((node.id, "offer_callback"))
            case _:
                pass
    edges.update((e.HOTKEY_NODE, f"hotkey {h.key}") for h in flow.hotkeys)
    if flow.defaults.on_error is not None:
        edges.add((e.ERROR_NODE, "on_error"))
    return edges


def coverage_for(flowset: m.FlowSet, results: Sequence[ScenarioResult]) -> dict[str, Coverage]:
    cov: dict[str, Coverage] = {}
    for flow_id in sorted({r.scenario.flow for r in results}):
        flow = flowset.flows.get(flow_id)
        if flow is not None:
            cov[flow_id] = Coverage(flow_id, set(flow.nodes), flow_edges(flow))
    for r in results:
        if r.result is None:
            continue
        for entry in r.result.path:
            flow_id, _, node = entry.rpartition("/")
            target = cov.get(flow_id or r.scenario.flow)
            if target is None and flow_id in flowset.flows:
                flow = flowset.flows[flow_id]
                target = cov.setdefault(flow_id, Coverage(flow_id, set(flow.nodes), flow_edges(flow)))
            if target is not None:
                target.visited.add(node)
        for flow_id, node, label in r.result.edges:
            target = cov.get(flow_id)
            if target is not None and (node, label) in target.edges:
                target.taken.add((node, label))
    return cov


# ============================================================================ the test command


def scenario_files(directory: Path) -> list[Path]:
    tests = directory / "tests"
    return sorted([*tests.glob("*.yaml"), *tests.glob("*.yml")]) if tests.is_dir() else []


def run_directory(directory: Path, flowset: m.FlowSet) -> Report:
    results: list[ScenarioResult] = []
    errors: list[str] = []
    for path in scenario_files(directory):
        try:
            scenarios = load_scenarios(path)
        except ScenarioError as exc:
            errors.append(str(exc))
            continue
        for scenario in scenarios:
            if scenario.flow not in flowset.flows:
                errors.append(f"{_where(scenario.pos)}: scenario {scenario.name!r}: no flow "
                              f"{scenario.flow!r} in {directory} (have: {', '.join(sorted(flowset.flows))})")
                continue
            results.append(run_scenario(flowset, scenario))
    return Report(results, coverage_for(flowset, results), errors)


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part // whole if whole else 100}%)"


def format_report(report: Report, *, verbose: bool = False) -> str:
    lines: list[str] = []
    current = ""
    for r in report.results:
        if r.scenario.file != current:
            current = r.scenario.file
            lines.append(current)
        status = "PASS" if r.passed else "FAIL"
        lines.append(f"  {status}  {r.scenario.name}  [{r.scenario.pos.file}:{r.scenario.pos.line}]")
        for failure in r.failures:
            lines.append("        " + failure.replace("\n", "\n        "))
        if r.result is not None and (verbose or not r.passed):
            lines.extend("        | " + line for line in r.result.trace)
    for error in report.errors:
        lines.append(f"ERROR {error}")
    if report.coverage:
        lines.append("coverage:")
        for cov in report.coverage.values():
            nodes = _pct(len(cov.visited & cov.nodes), len(cov.nodes))
            lines.append(f"  {cov.flow:<22} nodes {nodes:<14} edges {_pct(len(cov.taken), len(cov.edges))}")
            if cov.missing_nodes:
                lines.append(f"    nodes never visited: {', '.join(cov.missing_nodes)}")
            if cov.missing_edges:
                missing = ", ".join(f"{n}.{label}" for n, label in cov.missing_edges)
                lines.append(f"    edges never taken: {missing}")
    passed = sum(r.passed for r in report.results)
    failed = len(report.results) - passed
    total = len(report.results)
    summary = f"{total} scenario{'s' * (total != 1)}: {passed} passed, {failed} failed"
    if report.errors:
        summary += f", {len(report.errors)} file error{'s' * (len(report.errors) != 1)}"
    if not report.results and not report.errors:
        summary = "no scenarios found (tests/*.yaml next to the flows)"
    lines.append(summary)
    return "\n".join(lines)

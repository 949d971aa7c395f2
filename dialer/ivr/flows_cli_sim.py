"""`dialer flows simulate` and `dialer flows test`: try flows without a phone.

    dialer flows simulate ivr_flows/inbound_main.yaml --input "2,1,<wait 70s>,1" \\
        --at "2026-12-24 11:30" --caller +15551230000 --lang es \\
        --mock lookup=fixtures/gold.json --queue support=answered,after=20s,ewt=4m
    dialer flows test [DIR] [-v]

`simulate` prints the trace of one simulated call (dialer/ivr/simulate.py): every node with its
file:line, the prompts as played (TTS text after templating), variable changes (PII masked),
queue/HTTP/voicemail activity and the end with its disposition. Exit status 0 when the call
ended, 1 when it got stuck or the flows do not load.

`test` runs the scenario files `DIR/tests/*.yaml` (dialer/ivr/scenarios.py), prints PASS/FAIL
per scenario (with the trace of failures) and node/edge coverage per flow. Exit status 0 when
every scenario passed, 1 otherwise (also when no scenario was found).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from dialer.errors import DialerError
from dialer.ivr import model as m
from dialer.ivr import scenarios as sc
from dialer.ivr import simulate as sim
from dialer.ivr.loader import load_flowset

DEFAULT_DIR = "ivr_flows"


def _load(directory: Path) -> m.FlowSet:
    if not directory.is_dir():
        raise DialerError(f"{directory}: no such directory")
    flowset, diags = load_flowset(directory)
    errors = [d for d in diags if d.is_error]
    if flowset is None or errors:
        for diag in errors:
            print(diag.format_text(), file=sys.stderr)
        raise DialerError(f"{directory}: the flows do not load ({len(errors)} error(s)); "
                          f"see `dialer flows check {directory}`")
    return flowset


def _flow_target(flow: str, directory: str | None) -> tuple[Path, str]:
    """FLOW is a flow file (its directory is the flow set) or a flow id (in --dir)."""
    path = Path(flow)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise DialerError(f"{flow}: no such file")
        return path.parent, path.stem
    return Path(directory or DEFAULT_DIR), flow


def _key_value(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise DialerError(f"{option} {text!r}: expected NAME=VALUE")
    return name.strip(), value.strip()


def _fields(text: str) -> dict[str, Any]:
    """``answered,after=20s,position=3`` -> {outcome: answered, after: 20s, position: 3}."""
    out: dict[str, Any] = {}
    for i, part in enumerate(p.strip() for p in text.split(",")):
        if "=" in part:
            k, _, v = part.partition("=")
            out[k.strip()] = int(v) if v.strip().isdigit() else v.strip()
        elif i == 0 and part:
            out["outcome"] = part
        elif part:
            raise DialerError(f"{text!r}: expected OUTCOME[,after=20s,position=3,ewt=4m]")
    return out


def build_mocks(args: argparse.Namespace) -> sim.Mocks:
    raw: dict[str, Any] = {}
    if args.mocks:
        path = Path(args.mocks)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DialerError(f"--mocks {path}: {exc.strerror}") from None
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DialerError(f"--mocks {path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        if not isinstance(loaded, dict):
            raise DialerError(f"--mocks {path}: expected a JSON object like a scenario's mocks:")
        raw.update(loaded)
    for text in args.queue or []:
        name, value = _key_value(text, "--queue")
        raw.setdefault("queue", {})[name] = _fields(value)
    for text in args.transfer or []:
        name, value = _key_value(text, "--transfer")
        raw.setdefault("transfer", {})[name] = _fields(value)
    for text in args.voicemail or []:
        name, value = _key_value(text, "--voicemail")
        raw.setdefault("voicemail", {})[name] = value
    if args.callback:
        raw["callback"] = args.callback
    mocks = sim.Mocks.parse(raw, where="--mocks" if args.mocks else "mocks")
    for text in args.mock or []:
        node, file = _key_value(text, "--mock")
        mocks = mocks.with_http(node, sim.load_http_mock(Path(file), where=f"--mock {node}"))
    return mocks


def cmd_flows_simulate(args: argparse.Namespace) -> int:
    directory, flow_id = _flow_target(args.flow, args.dir)
    flowset = _load(directory)
    if flow_id not in flowset.flows:
        raise DialerError(f"no flow {flow_id!r} in {directory} (have: {', '.join(sorted(flowset.flows))})")
    zone = args.tz or sim.default_zone(flowset, flow_id)
    if args.at:
        at = sim.parse_at(args.at, zone=zone)
    else:
        at = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    lead: dict[str, str] = {}
    for text in args.lead or []:
        name, value = _key_value(text, "--lead")
        lead[name] = value
    simulator = sim.Simulator(
        flowset, flow_id, at=at, caller=args.caller, caller_name=args.caller_name,
        language=args.lang, lead=lead, dnis=args.dnis or "",
        tokens=sim.parse_input(args.input or ""), mocks=build_mocks(args))
    result = simulator.simulate()
    print(result.text())
    return 0 if result.ended is not None else 1


def cmd_flows_test(args: argparse.Namespace) -> int:
    directory = Path(args.dir or DEFAULT_DIR)
    flowset = _load(directory)
    report = sc.run_directory(directory, flowset)
    print(sc.format_report(report, verbose=args.verbose))
    return 0 if report.ok else 1


def register(fsub: Any) -> None:
    """Add `simulate` and `test` to the `dialer flows` sub-parsers."""
    simulate = fsub.add_parser(
        "simulate", help="run a flow with scripted input and print the trace (no phone needed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Simulate one call through a flow in virtual time and print every step with\n"
                    "its file:line, the prompts, variable changes and the end.\n\n"
                    "input tokens (comma-separated): keys such as 1 or 12345678#, <timeout> (stay\n"
                    "silent until the input timeout), <wait 70s> (let time pass; the next token\n"
                    "then comes at once, even over a prompt: barge-in), <hangup>")
    simulate.add_argument("flow", metavar="FLOW",
                          help="a flow file (ivr_flows/x.yaml) or a flow id (in --dir)")
    simulate.add_argument("--dir", help=f"the flow directory for a flow id (default: {DEFAULT_DIR})")
    simulate.add_argument("--input", "-i", default="", help='e.g. "1,12345678#,<timeout>,<hangup>"')
    simulate.add_argument("--at", help='start time "YYYY-MM-DD HH:MM" (default: now)')
    simulate.add_argument("--tz", help="time zone of --at (default: the flow's first schedule's, else UTC)")
    simulate.add_argument("--caller", default="+15555550100", help="caller number (caller.number)")
    simulate.add_argument("--caller-name", help="caller name (caller.name)")
    simulate.add_argument("--lang", help="the call's language at the start (default: the flow's first)")
    simulate.add_argument("--dnis", help="the dialled number (call.dnis)")
    simulate.add_argument("--lead", action="append", metavar="FIELD=VALUE", help="a lead field (repeatable)")
    simulate.add_argument("--mock", action="append", metavar="NODE=FILE.json",
                          help="http node answer: {status, json, latency} or a JSON body (repeatable)")
    simulate.add_argument("--queue", action="append", metavar="QUEUE=OUTCOME[,after=20s,position=3,ewt=4m]",
                          help="queue result: answered, timeout, full or no_agents (repeatable)")
    simulate.add_argument("--transfer", action="append", metavar="NODE=OUTCOME[,after=5s]",
                          help="transfer result: answered, no_answer, busy or failed (repeatable)")
    simulate.add_argument("--voicemail", action="append", metavar="NODE=12s",
                          help="how long the caller speaks in a voicemail node (0s: silence)")
    simulate.add_argument("--callback", choices=["ok", "error"], help="callback lead creation result")
    simulate.add_argument("--mocks", metavar="FILE.json", help="all mocks as JSON, like a scenario's mocks:")
    simulate.set_defaults(func=cmd_flows_simulate)

    test = fsub.add_parser(
        "test", help="run the flow scenarios (DIR/tests/*.yaml) and report coverage",
        description="Run every scenario in DIR/tests/*.yaml through the simulator; print PASS/FAIL\n"
                    "per scenario and node/edge coverage per flow. Exit status 1 on any failure.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    test.add_argument("dir", nargs="?", metavar="DIR", help=f"flow directory (default: {DEFAULT_DIR})")
    test.add_argument("--verbose", "-v", action="store_true", help="print the trace of every scenario")
    test.set_defaults(func=cmd_flows_test)

"""The `dialer` command line. Every failure the user can cause ends in one clear line."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialer.client import (
    DEFAULT_CHUNK_ROWS,
    ApiRequestError,
    DialerClient,
    ImportSummary,
    LeadFileRejected,
    LeadFormat,
    import_lead_file,
    lead_format,
    progress_bar,
    split_lead_file,
)
from dialer.config import Config, load_config
from dialer.errors import DialerError, TestbedError

# Exit codes of the commands that send rows (leads, DNC numbers): every row accepted, some (or
# all) rows rejected and listed, or a failure (one line on stderr, nothing or part imported).
EXIT_OK, EXIT_FAILED, EXIT_REJECTED = 0, 1, 2


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config) if args.config else None)


def cmd_testbed(args: argparse.Namespace) -> int:
    from dialer.testbed import Testbed

    testbed = Testbed(_config(args), report=print)
    if args.action == "up":
        testbed.up()
    elif args.action == "down":
        stopped = testbed.down()
        print("testbed: stopped " + (", ".join(stopped) if stopped else "nothing (was not running)"))
    else:
        for row in testbed.status():
            pid = f"pid {row.pid}" if row.pid else ""
            print(f"{row.name:16} {row.detail:10} {pid}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from dialer.server import serve_forever

    return asyncio.run(serve_forever(_config(args)))


def cmd_asterisk_conf(args: argparse.Namespace) -> int:
    from dialer.testbed.render import CONF_SRC, conf_values, render_dir

    out = Path(args.out).resolve()
    src = Path(args.src) if args.src else CONF_SRC
    written = render_dir(src, out, conf_values(_config(args), str(out)), testbed=args.testbed)
    print(f"rendered {len(written)} files from {src} into {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dialer.demo import run_demo

    if args.minutes <= 0 or args.agents < 1 or args.agents > 20 or args.leads < 1:
        raise DialerError("--minutes > 0, --agents 1-20 (the testbed's sipp phones), --leads > 0")
    code: int = asyncio.run(run_demo(_config(args), keep=args.keep, one_call_only=args.one_call,
                                     minutes=args.minutes, agents=args.agents, leads=args.leads))
    return code


# ------------------------------------------------------------------ commands for a running server
def _client(args: argparse.Namespace) -> DialerClient:
    """The server at --server, else $DIALER_SERVER, else server.host:server.port of the config."""
    url = args.server or os.environ.get("DIALER_SERVER")
    if not url:
        server = _config(args).server
        # A server listening on every interface is reached on loopback.
        any_address = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
        host = any_address.get(server.host, server.host)
        url = f"http://{f'[{host}]' if ':' in host else host}:{server.port}"
    return DialerClient(url, token=args.token or os.environ.get("DIALER_TOKEN"))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DialerError(f"cannot read {path}: {exc.strerror or exc}") from None


def cmd_campaign_create(args: argparse.Namespace) -> int:
    path = Path(args.file)
    types = {".yaml": "application/yaml", ".yml": "application/yaml", ".json": "application/json"}
    content_type = types.get(path.suffix.lower())
    if content_type is None:
        raise DialerError(f"{path}: a campaign file must be .yaml, .yml or .json")
    data = _read(path)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DialerError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start}); save it as UTF-8") from None
    try:
        created = _client(args).create_campaign(data, content_type + "; charset=utf-8")
    except ApiRequestError as exc:
        if exc.status in (400, 422):  # the file's content: name the file with the field
            raise DialerError(f"{path}: {exc.message}") from None
        raise
    print(f"created campaign {created.get('id')} (status {created.get('status')})")
    return 0


def cmd_campaign_list(args: argparse.Namespace) -> int:
    campaigns = _client(args).list_campaigns()
    if args.json:
        print(json.dumps({"campaigns": campaigns}, indent=2))
        return 0
    if not campaigns:
        print("no campaigns (create one with `dialer campaign create FILE.yaml`)")
        return 0
    rows = [(str(c.get("id")), str(c.get("status")), str(c.get("dial_mode")), str(c.get("name")))
            for c in campaigns]
    widths = [max(len(r[i]) for r in [("ID", "STATUS", "MODE", ""), *rows]) for i in range(3)]
    for row in [("ID", "STATUS", "MODE", "NAME"), *rows]:
        print("  ".join(value.ljust(widths[i]) for i, value in enumerate(row[:3])) + "  " + row[3])
    return 0


def cmd_campaign_status(args: argparse.Namespace) -> int:
    data = _client(args).campaign(args.id)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for line in _status_lines(data):
        print(line)
    return 0


def _status_lines(data: dict[str, Any]) -> list[str]:
    counts = data.get("leads")
    leads: dict[str, Any] = counts if isinstance(counts, dict) else {}
    total = sum(int(n) for n in leads.values())
    by_state = ", ".join(f"{state} {n}" for state, n in leads.items())
    lines = [
        f"campaign  {data.get('id')} ({data.get('name')})",
        f"mode      {data.get('dial_mode')}",
        f"status    {data.get('status')}",
        f"leads     {total}" + (f": {by_state}" if by_state else ""),
        f"dialable  {data.get('dialable')}",
    ]
    live = data.get("live")
    if isinstance(live, dict):
        rate = live.get("abandon_rate")
        lines.append(f"calls     {live.get('calls')} up, {live.get('waiting')} waiting for an agent")
        lines.append(f"humans    {live.get('humans')} answered, {live.get('abandoned')} abandoned"
                     + (f" ({rate:.2%})" if isinstance(rate, int | float) else ""))
        agents = live.get("agents")
        if isinstance(agents, dict) and agents:
            lines.append("agents    " + ", ".join(f"{a} {s}" for a, s in sorted(agents.items())))
        else:
            lines.append("agents    none logged in")
    return lines


def cmd_campaign_start(args: argparse.Namespace) -> int:
    result = _client(args).start_campaign(args.id)
    print(f"campaign {result.get('id')} {result.get('status')}")
    return 0


def cmd_campaign_pause(args: argparse.Namespace) -> int:
    result = _client(args).pause_campaign(args.id)
    print(f"campaign {result.get('id')} {result.get('status')}")
    return 0


class _Progress:
    """A progress bar on stderr when it is a terminal; otherwise a line per uploaded chunk."""

    def __init__(self, chunked: bool) -> None:
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.chunked = chunked
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.chunked:
            return
        if self.tty:
            self.stream.write("\r" + progress_bar(done, total))
            self.drawn = True
        else:
            self.stream.write(f"uploaded {done}/{total} rows\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def cmd_leads_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    fmt: LeadFormat | None = args.format or lead_format(path.name)
    if fmt is None:
        raise DialerError(f"{path}: cannot tell CSV from JSON by the name: add --format csv|json")
    if args.chunk_rows < 1:
        raise DialerError(f"--chunk-rows must be at least 1, got {args.chunk_rows}")
    client = _client(args)
    lead_file = split_lead_file(_read(path), fmt, args.chunk_rows)
    progress = _Progress(chunked=len(lead_file.chunks) > 1)
    if lead_file.rows:
        progress(0, lead_file.rows)
    try:
        summary = import_lead_file(client, args.campaign, lead_file, progress)
    except LeadFileRejected as exc:
        raise DialerError(f"{path}: {exc}") from None
    finally:
        progress.close()
    print(f"{path.name} -> campaign {args.campaign}: received {summary.received}, "
          f"added {summary.added}, merged {summary.merged}, rejected {summary.rejected}")
    shown = summary.errors if args.max_errors == 0 else summary.errors[:args.max_errors]
    for error in shown:
        print(f"row {error.row}: {error.reason}")
    if len(shown) < summary.rejected:
        print(f"... and {summary.rejected - len(shown)} more rejected rows"
              + ("" if args.errors_csv else " (all of them: --errors-csv PATH)"))
    if args.errors_csv:
        _write_errors_csv(Path(args.errors_csv), summary)
        print(f"rejected rows written to {args.errors_csv}")
    return EXIT_REJECTED if summary.rejected else EXIT_OK


def _write_errors_csv(path: Path, summary: ImportSummary) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "error", "data"])
            writer.writerows([e.row, e.reason, e.raw] for e in summary.errors)
    except OSError as exc:
        raise DialerError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_dnc_add(args: argparse.Namespace) -> int:
    result = _client(args).dnc_add(args.numbers, args.campaign)
    scope = f"campaign {args.campaign}" if args.campaign else "every campaign"
    accepted = len(args.numbers) - len(result.rejected)
    print(f"do-not-call list ({scope}): added {result.added}, already listed "
          f"{max(0, accepted - result.added)}, rejected {len(result.rejected)}")
    for rejection in result.rejected:
        print(f"{rejection.number}: {rejection.reason}")
    return EXIT_REJECTED if result.rejected else EXIT_OK


def cmd_dnc_check(args: argparse.Namespace) -> int:
    status = _client(args).dnc_check(args.number, args.campaign)
    scope = f" for campaign {args.campaign}" if args.campaign else ""
    print(f"{status.number} is {'' if status.listed else 'not '}on the do-not-call list{scope}")
    return 0


def _add_client_commands(sub: Any) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--server", metavar="URL", default=argparse.SUPPRESS,
                        help="the dialer server (default: $DIALER_SERVER, else "
                             "http://server.host:server.port from the config)")
    server.add_argument("--token", metavar="TOKEN", default=argparse.SUPPRESS,
                        help="the API token (default: $DIALER_TOKEN)")

    camp = sub.add_parser("campaign", help="create, list, start, pause and inspect campaigns",
                          description="Campaigns on a running dialer server (`dialer serve`).")
    csub = camp.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = csub.add_parser(
        "create", parents=[server], help="create a campaign from a YAML or JSON file",
        description="Create a campaign from a YAML (.yaml, .yml) or JSON (.json) file. The server "
                    "checks every field; an invalid one is named and nothing is created. The "
                    "format is documented in dialer/core/specs.py.")
    create.add_argument("file", metavar="FILE", help="the campaign definition")
    create.set_defaults(func=cmd_campaign_create)
    lst = csub.add_parser("list", parents=[server], help="list the campaigns",
                          description="List the campaigns with their status and dial mode.")
    lst.add_argument("--json", action="store_true", help="print the server's JSON")
    lst.set_defaults(func=cmd_campaign_list)
    status = csub.add_parser("status", parents=[server], help="a campaign's status and lead counts",
                             description="Show a campaign's status, its leads by state, how many "
                                         "can be dialed now and, while it runs, its live figures.")
    status.add_argument("id", metavar="ID", help="campaign id")
    status.add_argument("--json", action="store_true", help="print the server's JSON")
    status.set_defaults(func=cmd_campaign_status)
    for name, func, text in (("start", cmd_campaign_start, "start (or resume) dialing"),
                             ("pause", cmd_campaign_pause, "stop placing new calls")):
        action = csub.add_parser(name, parents=[server], help=text,
                                 description=f"Campaign: {text}.")
        action.add_argument("id", metavar="ID", help="campaign id")
        action.set_defaults(func=func)

    leads = sub.add_parser("leads", help="import leads into a campaign",
                           description="Leads on a running dialer server (`dialer serve`).")
    lsub = leads.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = lsub.add_parser(
        "import", parents=[server], help="import a CSV or JSON lead file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Import leads from a CSV file (a header row naming the columns: phone, and\n"
                    "optionally timezone, priority, external_id and any attributes) or a JSON\n"
                    "list of objects. The file is uploaded in chunks of rows (progress on stderr);\n"
                    "bad rows are rejected one by one and listed as `row N: reason`, with rows\n"
                    "numbered as in the file (a CSV header is row 1).\n\n"
                    "exit status: 0 every row accepted, 2 some rows rejected, 1 failure (nothing\n"
                    "imported after the failure, e.g. the file has no phone column).")
    imp.add_argument("campaign", metavar="CAMPAIGN", help="campaign id")
    imp.add_argument("file", metavar="FILE", help="lead file (.csv or .json)")
    imp.add_argument("--format", choices=["csv", "json"],
                     help="the file's format (default: from its name)")
    imp.add_argument("--errors-csv", metavar="PATH",
                     help="write the rejected rows to PATH as CSV: row, error, data (the row's text)")
    imp.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, metavar="N",
                     help=f"rows per upload (default {DEFAULT_CHUNK_ROWS})")
    imp.add_argument("--max-errors", type=int, default=100, metavar="N",
                     help="list at most N rejected rows (default 100; 0: all of them)")
    imp.set_defaults(func=cmd_leads_import)

    dnc = sub.add_parser("dnc", help="the do-not-call list",
                         description="The do-not-call list on a running dialer server: global, "
                                     "or one campaign's with --campaign.")
    dsub = dnc.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = dsub.add_parser("add", parents=[server], help="add numbers to the do-not-call list",
                          description="Add numbers (E.164, or national numbers of the US). "
                                      "Numbers that cannot be read are listed and not added; "
                                      "exit status 2 then.")
    add.add_argument("numbers", metavar="NUMBER", nargs="+", help="phone number")
    add.add_argument("--campaign", metavar="C", help="only for campaign C (default: every campaign)")
    add.set_defaults(func=cmd_dnc_add)
    check = dsub.add_parser("check", parents=[server], help="is a number on the do-not-call list?",
                            description="Say whether a number is on the global do-not-call list "
                                        "(or, with --campaign, on the global or the campaign's).")
    check.add_argument("number", metavar="NUMBER", help="phone number")
    check.add_argument("--campaign", metavar="C", help="also check campaign C's list")
    check.set_defaults(func=cmd_dnc_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialer", description="Predictive dialer and IVR server for Asterisk."
    )
    parser.add_argument("--config", help="YAML config file (default: $DIALER_CONFIG or ./dialer.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--server", metavar="URL",
                        help="the dialer server for campaign, leads and dnc (default: "
                             "$DIALER_SERVER, else http://server.host:server.port from the config)")
    parser.add_argument("--token", metavar="TOKEN",
                        help="the API token for campaign, leads and dnc (default: $DIALER_TOKEN); "
                             "prefer the variable: a command line is visible to other users")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tb = sub.add_parser("testbed", help="local Asterisk + Redis + sipp for tests and the demo",
                        description="Provision and run the local testbed (needs root).")
    tb.add_argument("action", choices=["up", "down", "status"])
    tb.set_defaults(func=cmd_testbed)

    serve = sub.add_parser("serve", help="run the dialer server",
                           description="Connect to Asterisk (ARI) and Redis and serve the HTTP "
                                       "API until SIGINT/SIGTERM.")
    serve.set_defaults(func=cmd_serve)

    conf = sub.add_parser("asterisk-conf", help="render asterisk_conf/ for an Asterisk server",
                          description="Render the Asterisk configuration with this dialer's "
                                      "settings (ARI user, app name, SIP and RTP ports).")
    conf.add_argument("action", choices=["render"])
    conf.add_argument("--out", required=True, help="directory Asterisk reads (astetcdir)")
    conf.add_argument("--src", help="asterisk_conf directory (default: the project's)")
    conf.add_argument("--testbed", action="store_true",
                      help="include the test-only parts (simulated customers, sipp peers)")
    conf.set_defaults(func=cmd_asterisk_conf)

    demo = sub.add_parser("demo", help="run the demo campaign against the local testbed",
                          description="Start the testbed and the server, log in sipp agent "
                                      "phones, import simulated customers, run a predictive "
                                      "campaign with a live progress line, print a summary.")
    demo.add_argument("--keep", action="store_true", help="leave the testbed running afterwards")
    demo.add_argument("--minutes", type=float, default=2.0, help="how long to dial (default 2)")
    demo.add_argument("--agents", type=int, default=6, help="agents logged in (default 6)")
    demo.add_argument("--leads", type=int, default=300, help="simulated customers (default 300)")
    demo.add_argument("--one-call", action="store_true",
                      help="instead: one call to a simulated customer bridged to an agent phone")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks", description="Benchmarks.")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    pacing = bench_sub.add_parser(
        "pacing", help="the pacing simulator: policies side by side (docs/BENCHMARKS.md)",
        description="Run the discrete-event pacing simulator on the campaign core.")
    from dialer.sim.bench import add_arguments
    add_arguments(pacing)

    # `dialer flows check|...`: subcommands are added in dialer/ivr/flows_cli.py `register`.
    from dialer.ivr.flows_cli import register as register_flows
    register_flows(sub)

    _add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
        return code
    except TestbedError as exc:
        print(f"dialer: {exc}", file=sys.stderr)
        return 1
    except DialerError as exc:
        print(f"dialer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dialer: interrupted", file=sys.stderr)
        return 130

"""`dialer flows ...`: commands on IVR flow files that need no server.

    dialer flows check [DIR|FILE ...] [--format text|json|github] [--strict]

`check` loads and validates each directory (a FILE is checked within its directory, since
flows refer to the shared files and to each other, and only that file's diagnostics are
shown). Exit status: 0 clean (warnings allowed), 1 any error (or any warning with --strict).
Fit for pre-commit (`dialer flows check` with the staged files) and CI (`--format github`
annotates the pull request).

Extending: `register(sub)` builds the `flows` group and returns its sub-parsers object;
add further `flows` subcommands in `register` below the marked line (the engine's `simulate`
and `test` go there), each with `set_defaults(func=...)` returning an exit status.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialer.errors import DialerError
from dialer.ivr.diagnostics import Diagnostic, sorted_diagnostics
from dialer.ivr.loader import load_flowset

DEFAULT_DIR = "ivr_flows"
EXIT_CLEAN, EXIT_ERRORS = 0, 1


def _targets(paths: Sequence[str]) -> dict[Path, set[str] | None]:
    """Directory -> the files asked for in it (None: all of them)."""
    targets: dict[Path, set[str] | None] = {}
    for raw in paths or [DEFAULT_DIR]:
        path = Path(raw)
        if path.is_dir():
            targets[path] = None
        elif path.is_file():
            if path.suffix not in (".yaml", ".yml"):
                continue  # pre-commit may pass other files: not ours
            directory = path.parent
            chosen = targets.setdefault(directory, set())
            if chosen is not None:
                chosen.add(str(directory / path.name))
        else:
            raise DialerError(f"{raw}: no such file or directory")
    return targets


def check_paths(paths: Sequence[str]) -> tuple[list[Diagnostic], int]:
    """Diagnostics for the given directories/files, and how many flows were loaded."""
    diags: list[Diagnostic] = []
    flows = 0
    for directory, files in _targets(paths).items():
        flowset, found = load_flowset(directory)
        if flowset is not None:
            flows += len(flowset.flows)
        if files is not None:
            found = [d for d in found if d.pos.file in files]
        diags.extend(found)
    return sorted_diagnostics(diags), flows


def cmd_flows_check(args: argparse.Namespace) -> int:
    diags, _ = check_paths(args.paths)
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    if args.format == "json":
        print(json.dumps({"errors": errors, "warnings": warnings,
                          "diagnostics": [d.to_json() for d in diags]}, indent=2))
    elif args.format == "github":
        for diag in diags:
            print(diag.format_github())
    else:
        for diag in diags:
            print(diag.format_text())
        where = ", ".join(args.paths) if args.paths else DEFAULT_DIR
        if diags:
            print(f"{where}: {errors} error{'s' * (errors != 1)}, "
                  f"{warnings} warning{'s' * (warnings != 1)}")
        else:
            print(f"{where}: no problems found")
    failed = errors > 0 or (args.strict and warnings > 0)
    return EXIT_ERRORS if failed else EXIT_CLEAN


def register(sub: Any) -> Any:
    """Add the `flows` command group to the `dialer` sub-parsers; returns the group's own
    sub-parsers so other modules can add commands to it."""
    flows = sub.add_parser("flows", help="check IVR flow files (ivr_flows/)",
                           description="IVR flow files: check them without a server.")
    fsub = flows.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = fsub.add_parser(
        "check", help="validate flow files (file:line:col diagnostics, exit 1 on errors)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Validate IVR flow files: YAML, fields, links between nodes, DTMF keys,\n"
                    "prompts per language, templates, schedules, queues, the outbound\n"
                    "safe-harbor rules. A FILE is checked with the rest of its directory.\n\n"
                    "exit status: 0 no errors (warnings allowed), 1 errors (or warnings with "
                    "--strict)")
    check.add_argument("paths", nargs="*", metavar="DIR|FILE",
                       help=f"flow directories or files (default: {DEFAULT_DIR})")
    check.add_argument("--format", choices=["text", "json", "github"], default="text",
                       help="text (default), json, or github (Actions annotations)")
    check.add_argument("--strict", action="store_true", help="warnings fail too")
    check.set_defaults(func=cmd_flows_check)
    # ---- more `dialer flows` subcommands (simulate, test: the IVR engine) are added below ----
    from dialer.ivr.flows_cli_sim import register as register_sim
    register_sim(fsub)
    from dialer.ivr.flows_cli_server import register as register_server
    register_server(fsub)
    return fsub

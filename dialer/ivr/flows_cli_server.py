"""`dialer flows status|reload`: the flow set of a running server (`dialer serve`).

    dialer flows status [--json]     the live version, its flows and routes, versions still
                                     draining calls, and the errors of the last reload
    dialer flows reload              validate the server's flow directory and make it live;
                                     exit 1 with every diagnostic when it has errors (the
                                     last good version stays live)

The server also reloads on its own when the files change, and on SIGHUP.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_OK, EXIT_ERRORS = 0, 1


def _diag_line(d: dict[str, Any]) -> str:
    text = f"{d.get('file')}:{d.get('line')}:{d.get('col')}: {d.get('severity')}[{d.get('code')}]: " \
           f"{d.get('message')}"
    if d.get("help"):
        text += f"\n   help: {d['help']}"
    return text


def cmd_flows_status(args: argparse.Namespace) -> int:
    from dialer.cli import _client  # the CLI's server/token resolution

    data = _client(args).ivr_flows()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    live = data.get("live")
    if isinstance(live, dict):
        print(f"live: version {live.get('version')} ({live.get('calls', 0)} calls) from "
              f"{data.get('directory')}")
        print(f"  flows: {', '.join(live.get('flows') or []) or '(none)'}")
        routes = live.get("routes") or {}
        for number, flow in sorted(routes.items()):
            print(f"  route {number} -> {flow}")
    else:
        print(f"no flow set is live (directory {data.get('directory')})")
    for old in data.get("draining") or []:
        print(f"draining: version {old.get('version')} ({old.get('calls')} calls)")
    errors = data.get("errors") or []
    if errors:
        print(f"the files on disk have {len(errors)} error(s); they are not live:")
        for diag in errors:
            print(_diag_line(diag))
    return EXIT_OK if not errors else EXIT_ERRORS


def cmd_flows_reload(args: argparse.Namespace) -> int:
    from dialer.cli import _client

    ok, data = _client(args).ivr_reload()
    for diag in [*(data.get("errors") or []), *(data.get("warnings") or [])]:
        print(_diag_line(diag))
    if ok:
        changed = "now live" if data.get("changed") else "already live (no change)"
        print(f"flows version {data.get('version')} {changed}")
        return EXIT_OK
    print(f"reload refused: {len(data.get('errors') or [])} error(s); version "
          f"{data.get('version') or '(none)'} stays live")
    return EXIT_ERRORS


def register(fsub: Any) -> None:
    status = fsub.add_parser(
        "status", help="the running server's live flow version, routes and reload errors",
        description="Ask the running server (`dialer serve`) which flow version is live, "
                    "which older versions still have calls, and what the last reload found. "
                    "Exit 1 when the files on disk have errors.")
    status.add_argument("--json", action="store_true", help="print the server's JSON")
    status.set_defaults(func=cmd_flows_status)
    reload = fsub.add_parser(
        "reload", help="validate the server's flow files and make them live",
        description="Validate the running server's flow directory and swap it in, all or "
                    "nothing. Calls in progress keep their version. Exit 1 with the "
                    "diagnostics when the files have errors (the last good set stays live).")
    reload.set_defaults(func=cmd_flows_reload)

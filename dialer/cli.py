"""The `dialer` command line. Every failure the user can cause ends in one clear line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from dialer.config import Config, load_config
from dialer.errors import DialerError, TestbedError


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

    code: int = asyncio.run(run_demo(_config(args), keep=args.keep))
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialer", description="Predictive dialer and IVR server for Asterisk."
    )
    parser.add_argument("--config", help="YAML config file (default: $DIALER_CONFIG or ./dialer.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
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

    demo = sub.add_parser("demo", help="run the demo against the local testbed",
                          description="Start the testbed, call a simulated customer, bridge "
                                      "the call to a sipp agent phone and print what happened.")
    demo.add_argument("--keep", action="store_true", help="leave the testbed running afterwards")
    demo.set_defaults(func=cmd_demo)
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

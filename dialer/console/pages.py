"""The console's pages: `/console` (agents), `/wallboard` (supervisors) and their files.

Plain HTML, CSS and JavaScript from `static/`, no build step and nothing fetched from another
origin. The pages are public (they hold no data); everything they show comes from the API and
the feeds, with the token the person types in (kept in the tab's sessionStorage only). Each page
gets its settings inline (`<script type="application/json" id="dialer-config">`): the
dispositions the API accepts come from `dialer.core.campaign.DISPOSITIONS`, so the buttons cannot
drift from the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from aiohttp import web

from dialer.core.campaign import DISPOSITIONS, PHONE_CODES

STATIC: Final = Path(__file__).with_name("static")
TYPES: Final = {".js": "text/javascript", ".css": "text/css"}
#: The files under /console/static/ (nothing else is served from the folder).
ASSETS: Final = ("common.js", "console.js", "console.css", "wallboard.js")
LABELS: Final = {"dnc": "Do not call"}  # a code whose words are not its spelled-out name
PAUSE_REASONS: Final = ("break", "lunch", "meeting", "training", "coaching", "personal")
#: Same-origin only; no inline script (the settings block is JSON data, never executed).
CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
              "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'")
HEADERS: Final = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                  "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def dispositions() -> list[dict[str, str]]:
    """The disposition buttons: phone-key order first (as agents learn them), then the rest;
    `callback` has its own form (it needs a time)."""
    keyed = {code: key for key, code in PHONE_CODES.items()}
    codes = sorted(DISPOSITIONS - {"callback"}, key=lambda c: (keyed.get(c, "~"), c))
    return [{"code": c, "label": LABELS.get(c, c.replace("_", " ").capitalize()),
             "key": keyed.get(c, "")} for c in codes]


def page_config() -> dict[str, object]:
    return {"dispositions": dispositions(), "pause_reasons": list(PAUSE_REASONS),
            "callback": "callback" in DISPOSITIONS}


def render(template: str, config: Mapping[str, object]) -> str:
    # `<` escaped: the JSON cannot close its <script> element whatever it holds.
    data = json.dumps(config, separators=(",", ":")).replace("<", "\\u003c")
    return template.replace("__DIALER_CONFIG__", data)


class Pages:
    def __init__(self, static: Path = STATIC) -> None:
        config = page_config()
        self.pages = {name: render((static / f"{name}.html").read_text(), config)
                      for name in ("console", "wallboard")}
        self.assets = {name: (static / name).read_bytes() for name in ASSETS}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/console", self.console)
        app.router.add_get("/wallboard", self.wallboard)
        app.router.add_get("/console/static/{name}", self.asset)

    async def console(self, request: web.Request) -> web.Response:
        return web.Response(text=self.pages["console"], content_type="text/html",
                            headers=HEADERS)

    async def wallboard(self, request: web.Request) -> web.Response:
        return web.Response(text=self.pages["wallboard"], content_type="text/html",
                            headers=HEADERS)

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self.assets.get(name)
        if body is None:
            return web.json_response(
                {"error": {"code": "not_found", "message": f"no console file {name[:64]!r}"}},
                status=404)
        return web.Response(body=body, content_type=TYPES[Path(name).suffix],
                            charset="utf-8", headers=HEADERS)

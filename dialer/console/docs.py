"""The console's routes in the OpenAPI document (`dialer.openapi` adds them): the pages, their
files and the two WebSocket feeds, with the feeds' messages and close codes described, since
OpenAPI 3.0 has no words for a WebSocket."""

from __future__ import annotations

from typing import Any

from dialer.console.access import HELLO_TIMEOUT, Close

Json = dict[str, Any]

ERROR: Json = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
NOT_FOUND: Json = {"description": "No such file or path (`not_found`)", "content": ERROR}
HTML: Json = {"text/html": {"schema": {"type": "string"}}}
CLOSES = ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in Close)

FEED_TEXT = (
    "A WebSocket (send `Upgrade: websocket`). The first message must be "
    f'`{{"token": "<bearer token>"}}` within {HELLO_TIMEOUT:g} s (browsers cannot send an '
    "Authorization header on a WebSocket; a token in the URL would be logged). The token is "
    "checked with the same roles as the API. Messages are JSON objects with `type` and the "
    "server time `now`: first `welcome`, then MESSAGES. Close codes: " + CLOSES + ".")


def _feed(summary: str, messages: str, roles: str, parameters: list[Json]) -> Json:
    op: Json = {
        "summary": summary,
        "description": FEED_TEXT.replace("MESSAGES", messages) + f" Who may watch: {roles}.",
        "responses": {
            "101": {"description": "Switching Protocols: the feed"},
            "404": NOT_FOUND,
            "426": {"description": "Not a WebSocket request (`upgrade_required`)",
                    "headers": {"Upgrade": {"description": "`websocket`",
                                            "schema": {"type": "string"}}},
                    "content": ERROR}}}
    if parameters:
        op["parameters"] = parameters
    return op


def console_operations() -> dict[tuple[str, str], Json]:
    aid = {"name": "aid", "in": "path", "required": True, "description": "agent id",
           "schema": {"type": "string", "minLength": 1}, "example": "agent-1001"}
    name = {"name": "name", "in": "path", "required": True,
            "description": "a file of the pages (common.js, console.js, console.css, "
                           "wallboard.js)",
            "schema": {"type": "string", "minLength": 1}, "example": "console.js"}
    return {
        ("GET", "/console"): {
            "summary": "The agent console (HTML): log in, ready/pause, screen pop, disposition",
            "description": "Holds no data: it calls the API and `/ws/agent/{aid}` with the "
                           "token typed into it (kept in the tab's sessionStorage).",
            "responses": {"200": {"description": "The page", "content": HTML}}},
        ("GET", "/wallboard"): {
            "summary": "The supervisors' wallboard (HTML): agents, campaigns, queues",
            "description": "Holds no data: it shows `/ws/supervisor`.",
            "responses": {"200": {"description": "The page", "content": HTML}}},
        ("GET", "/console/static/{name}"): {
            "summary": "A script or style sheet of the console and wallboard",
            "parameters": [name],
            "responses": {"200": {"description": "The file", "content": {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}}}}, "404": NOT_FOUND}},
        ("GET", "/ws/agent/{aid}"): _feed(
            "An agent's real-time feed (WebSocket): state changes and screen pops",
            "`state` (state, since, campaign, pause reason), `screen_pop` (the call: lead id, "
            "name, masked phone, lead attributes, IVR input) and `call_ended`",
            "admin, supervisor, agent (an agent's token bound to an agent id: only that agent)",
            [aid]),
        ("GET", "/ws/supervisor"): _feed(
            "The supervisors' real-time feed (WebSocket): agents, campaigns, queues",
            "`agents` (every logged-in agent), `campaigns` (calls, waiting, humans, "
            "abandoned, abandon rate, dial level per running campaign) and `queues`, each "
            "whole when it changed", "admin, supervisor", []),
    }

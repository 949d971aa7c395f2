"""The IVR's HTTP endpoints: the live flow set, reloads, recent IVR calls.

`GET /ivr/flows` says which version is live (its flows and routes, calls on it), which older
versions still have calls draining, and the errors of the last reload; `POST /ivr/flows/reload`
validates the directory and swaps it in (409 `flows_invalid` with every diagnostic when it has
errors: the last good set stays live); `GET /ivr/calls` lists the most recent IVR calls' records.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from dialer.ivr.library import FlowLibrary
from dialer.ivr.runtime import IvrService


class IvrApi:
    def __init__(self, library: FlowLibrary, service: IvrService) -> None:
        self.library = library
        self.service = service

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/ivr/flows", self.status)
        app.router.add_post("/ivr/flows/reload", self.reload)
        app.router.add_get("/ivr/calls", self.calls)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.library.status())

    async def reload(self, request: web.Request) -> web.Response:
        result = await self.library.reload_async()
        body = {"ok": result.ok, "version": result.version, "changed": result.changed,
                "errors": [d.to_json() for d in result.errors],
                "warnings": [d.to_json() for d in result.warnings]}
        if result.ok:
            return web.json_response(body)
        count = len(result.errors)
        return web.json_response(
            {**body, "error": {"code": "flows_invalid",
                               "message": f"the flow files have {count} error(s); version "
                                          f"{result.version or '(none)'} stays live"}},
            status=409)

    async def calls(self, request: web.Request) -> web.Response:
        records = [dataclasses.asdict(r) for r in reversed(self.service.records)]
        return web.json_response({"calls": records})

"""The HTTP API (aiohttp): campaigns, leads, agents, DNC; described by `dialer.openapi`
(served at /openapi.json) and guarded by `dialer.auth` (bearer tokens, roles per route).

Errors are JSON `{"error": {"code": "<stable code>", "message": "..."}}` with a 4xx status;
nothing is changed by a refused request. HTTP status mapping lives here and nowhere else.
Request bodies: lead files and DNC lists up to MAX_BODY, JSON/YAML objects up to
MAX_OBJECT_BODY (parsing is CPU-bound; a campaign or an agent action is a few hundred bytes).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from typing import Any

import phonenumbers
import yaml
from aiohttp import web
from aiohttp.typedefs import Middleware

from dialer.core.agent import AgentTransitionError
from dialer.core.campaign import (
    DISPOSITIONS,
    AgentLogout,
    AgentPause,
    AgentResume,
    Disposition,
    PreviewDial,
    PreviewSkip,
)
from dialer.core.leads import ImportReport, parse_leads_csv, parse_leads_json
from dialer.core.model import DialMode, LeadState
from dialer.core.specs import SpecError, parse_campaign
from dialer.errors import DialerError
from dialer.openapi import openapi_document
from dialer.routing.profiles import DEFAULT_AGE_BANDS, AgentProfile, parse_profile
from dialer.runner import Dialer
from dialer.store.base import Store, StoreRefused, StoreUnavailable

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024  # lead files can be large; anything bigger is refused (413)
MAX_OBJECT_BODY = 1024 * 1024  # JSON/YAML objects (campaigns, agent actions, DNC numbers)
MAX_OFFSET = 10**12  # listing leads: far beyond any campaign, far below Redis' 64-bit ranges
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


# Probes read live state, not records: they never wait for the store.
UNSETTLED_PATHS = frozenset({"/health", "/ready", "/metrics"})
SETTLE_TIMEOUT = 2.0  # (s) a store that does not answer must not hang the API


def settle_middleware(dialer: Dialer) -> Middleware:
    """Before each request, the records the runners hold back (`runner.WRITE_LINGER`) are
    written, so a client reads what its earlier requests and the calls' events changed. If the
    store does not take them within `SETTLE_TIMEOUT`, the request goes on (and whatever it
    reads from the store says so itself)."""
    @web.middleware
    async def settle(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in UNSETTLED_PATHS:
            try:
                async with asyncio.timeout(SETTLE_TIMEOUT):
                    await dialer.settle()
            except TimeoutError:
                log.warning("%s %s: records not yet written after %g s; answering anyway",
                            request.method, request.path, SETTLE_TIMEOUT)
        return await handler(request)
    return settle


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except SpecError as exc:
        return error_response(422, "invalid_campaign", str(exc))
    except AgentTransitionError as exc:
        return error_response(409, "agent_state", str(exc))
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "too_large", f"request body over {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise
    except StoreUnavailable as exc:  # Redis down: the client may try again later
        return error_response(503, "store_unavailable", str(exc))
    except StoreRefused as exc:  # Redis up but refusing (out of memory...): the server's fault
        log.error("store error on %s %s: %s", request.method, request.path, exc)
        return error_response(500, "store_error", str(exc))
    except DialerError as exc:
        return error_response(409, "conflict", str(exc))
    except Exception:  # task boundary: one bad request must not take the server down
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error (logged on the server)")


YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml")


async def read_mapping(request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # at most MAX_BODY (the application's client_max_size)
    if len(raw) > MAX_OBJECT_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_OBJECT_BODY} bytes (a JSON or "
                                         "YAML object)")
    try:
        text = raw.decode(request.charset or "utf-8")
    except LookupError:
        raise ApiError(415, "unsupported_charset", f"unknown charset {request.charset!r}") from None
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_body", "the request body is not valid UTF-8") from None
    if request.content_type not in (*YAML_TYPES, "application/json") and text.strip():
        raise ApiError(415, "unsupported_media_type", "send application/json or application/yaml")
    try:
        if request.content_type in YAML_TYPES:
            data = yaml.safe_load(text)
        else:
            data = json.loads(text) if text.strip() else {}
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise ApiError(400, "malformed_body", f"cannot parse the request body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_body", "the request body must be an object")
    return data


def report_json(report: ImportReport, added: int, merged: int) -> dict[str, Any]:
    return {
        "received": len(report.leads) + len(report.errors) + report.duplicates_merged,
        "added": added,
        "merged": merged + report.duplicates_merged,
        "rejected": len(report.errors),
        "errors": [{"row": e.row, "reason": e.reason} for e in report.errors],
    }


class Api:
    def __init__(self, store: Store, dialer: Dialer, clock: Callable[[], float]) -> None:
        self.store = store
        self.dialer = dialer
        self.clock = clock

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/campaigns", self.create_campaign)
        r.add_get("/campaigns", self.list_campaigns)
        r.add_get("/campaigns/{cid}", self.get_campaign)
        r.add_post("/campaigns/{cid}/start", self.start_campaign)
        r.add_post("/campaigns/{cid}/pause", self.pause_campaign)
        r.add_post("/campaigns/{cid}/stop", self.stop_campaign)
        r.add_post("/campaigns/{cid}/leads", self.import_leads)
        r.add_get("/campaigns/{cid}/leads", self.list_leads)
        r.add_get("/leads/{lid}", self.get_lead)
        r.add_get("/leads/{lid}/attempts", self.lead_attempts)
        r.add_post("/agents/{aid}/login", self.agent_login)
        r.add_post("/agents/{aid}/ready", self.agent_ready)
        r.add_post("/agents/{aid}/pause", self.agent_pause)
        r.add_post("/agents/{aid}/logout", self.agent_logout)
        r.add_post("/agents/{aid}/disposition", self.agent_disposition)
        r.add_get("/agents/{aid}", self.get_agent)
        r.add_get("/agents/{aid}/preview", self.agent_preview)
        r.add_post("/agents/{aid}/preview/dial", self.agent_preview_dial)
        r.add_post("/agents/{aid}/preview/skip", self.agent_preview_skip)
        r.add_post("/dnc", self.dnc_add)
        r.add_post("/dnc/import", self.dnc_import)
        r.add_get("/dnc/{number}", self.dnc_check)
        r.add_get("/openapi.json", self.openapi)
        # Escalation and supervision (imported here: that module builds on this one's helpers).
        from dialer.escalation_api import EscalationApi
        EscalationApi(self.store, self.dialer, self.clock).routes(app)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(MAX_BODY, MAX_OBJECT_BODY))

    async def agent_on_lead(self, agent_id: str | None, lead_id: str) -> bool:
        """Is `lead_id` the lead of the call `agent_id` is on (any agent's, for None)? For
        `dialer.auth`: an agent may read the lead of their current call, and no other."""
        runners = list(self.dialer.runners.values())
        for runner in runners:
            engine = runner.engine
            agents = [engine.agents.get(agent_id)] if agent_id else list(engine.agents.values())
            for agent in agents:
                if agent is None or agent.call_id is None:
                    continue
                call = engine.calls.get(agent.call_id)
                if call is not None:
                    if call.lead.id == lead_id:
                        return True
                    continue
                # Wrap-up: the call has ended, its attempt is in the store.
                attempt = await self.store.get_attempt(agent.call_id)
                if attempt is not None and attempt.lead_id == lead_id:
                    return True
        return False

    # --------------------------------------------------------------------------- campaigns
    async def _campaign(self, cid: str) -> Any:
        spec = await self.store.get_campaign(cid)
        if spec is None:
            raise ApiError(404, "unknown_campaign", f"unknown campaign '{cid}'")
        return spec

    async def create_campaign(self, request: web.Request) -> web.Response:
        profiles = self.dialer.profiles  # matching rules may name only attributes agents have
        spec = parse_campaign(await read_mapping(request), attributes=None if profiles is None
                              else profiles.attribute_names)
        if await self.store.get_campaign(spec.id) is not None:
            raise ApiError(409, "campaign_exists", f"campaign '{spec.id}' already exists")
        await self.store.save_campaign(spec)
        await self.store.set_campaign_status(spec.id, "created")
        return web.json_response({"id": spec.id, "status": "created"}, status=201)

    async def list_campaigns(self, request: web.Request) -> web.Response:
        specs = await self.store.list_campaigns()
        return web.json_response({"campaigns": [
            {"id": s.id, "name": s.name, "dial_mode": s.dial_mode.value,
             "status": await self.store.get_campaign_status(s.id)} for s in specs]})

    async def get_campaign(self, request: web.Request) -> web.Response:
        spec = await self._campaign(request.match_info["cid"])
        now = self.clock()
        runner = self.dialer.runners.get(spec.id)
        body: dict[str, Any] = {
            "id": spec.id, "name": spec.name, "dial_mode": spec.dial_mode.value,
            "status": await self.store.get_campaign_status(spec.id),
            "leads": await self.store.count_leads(spec.id),
            "dialable": await self.store.dialable_count(spec.id, now),
        }
        if runner is not None:
            engine = runner.engine
            body["live"] = {
                "calls": len(engine.calls), "waiting": len(engine.waiting),
                "agents": {a.id: a.state.value for a in engine.agents.values()},
                "abandoned": engine.abandoned, "humans": engine.humans,
                "abandon_rate": round(engine.abandon_rate, 4),
            }
        return web.json_response(body)

    async def start_campaign(self, request: web.Request) -> web.Response:
        """Start, or resume a paused or stopped campaign."""
        spec = await self._campaign(request.match_info["cid"])
        await self.dialer.start_campaign(spec.id)
        return web.json_response({"id": spec.id, "status": "running"})

    async def pause_campaign(self, request: web.Request) -> web.Response:
        spec = await self._campaign(request.match_info["cid"])
        if await self.store.get_campaign_status(spec.id) == "stopped":
            raise ApiError(409, "campaign_stopped", f"campaign '{spec.id}' is stopped")
        await self.dialer.pause_campaign(spec.id)
        return web.json_response({"id": spec.id, "status": "paused"})

    async def stop_campaign(self, request: web.Request) -> web.Response:
        """No new calls (calls in progress finish), and marked stopped: it stays so after a
        restart until someone starts it again."""
        spec = await self._campaign(request.match_info["cid"])
        if spec.id in self.dialer.runners:
            await self.dialer.pause_campaign(spec.id)
        await self.store.set_campaign_status(spec.id, "stopped")
        return web.json_response({"id": spec.id, "status": "stopped"})

    # ------------------------------------------------------------------------------- leads
    async def import_leads(self, request: web.Request) -> web.Response:
        spec = await self._campaign(request.match_info["cid"])
        data = await request.read()
        kwargs = {"campaign_id": spec.id, "default_region": spec.default_region,
                  "id_prefix": f"{spec.id}:"}
        # Parsing is CPU-bound (phonenumbers: ~7 s per 100k rows): off the event loop.
        if request.content_type == "application/json":
            report = await asyncio.to_thread(functools.partial(parse_leads_json, data, **kwargs))
        elif request.content_type in ("text/csv", "text/plain", "application/octet-stream"):
            report = await asyncio.to_thread(functools.partial(parse_leads_csv, data, **kwargs))
        else:
            raise ApiError(415, "unsupported_media_type",
                           "send leads as text/csv or application/json")
        added, merged = await self.store.add_leads(spec.id, report.leads)
        status = 200 if report.leads or not report.errors else 422
        return web.json_response(report_json(report, added, merged), status=status)

    async def list_leads(self, request: web.Request) -> web.Response:
        spec = await self._campaign(request.match_info["cid"])
        state_q = request.query.get("state")
        try:
            state = LeadState(state_q) if state_q else None
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError as exc:
            raise ApiError(400, "bad_query", str(exc)) from None
        if not (0 <= offset <= MAX_OFFSET and 1 <= limit <= 1000):
            # Redis takes 64-bit ranges only: a larger offset would fail there (500).
            raise ApiError(400, "bad_query", f"0 <= offset <= {MAX_OFFSET} and 1 <= limit <= 1000")
        leads = await self.store.list_leads(spec.id, state=state, offset=offset, limit=limit)
        return web.json_response({"leads": [lead_json(lead) for lead in leads]})

    async def get_lead(self, request: web.Request) -> web.Response:
        lead = await self.store.get_lead(request.match_info["lid"])
        if lead is None:
            raise ApiError(404, "unknown_lead", f"unknown lead '{request.match_info['lid']}'")
        return web.json_response(lead_json(lead))

    async def lead_attempts(self, request: web.Request) -> web.Response:
        lid = request.match_info["lid"]
        if await self.store.get_lead(lid) is None:
            raise ApiError(404, "unknown_lead", f"unknown lead '{lid}'")
        attempts = await self.store.lead_attempts(lid)
        return web.json_response({"attempts": [
            {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(a).items()}
            for a in attempts]})

    # ------------------------------------------------------------------------------ agents
    def _runner_for(self, aid: str) -> Any:
        runner = self.dialer.runner_for_agent(aid)
        if runner is None:
            raise ApiError(409, "agent_not_logged_in", f"agent {aid} is not logged in")
        return runner

    async def agent_login(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        body = await read_mapping(request)
        campaign = body.get("campaign")
        if not isinstance(campaign, str):
            raise ApiError(400, "missing_field", "'campaign' is required")
        await self._campaign(campaign)
        profile = self._login_profile(aid, body)
        self.dialer.login_agent(campaign, aid, profile)
        return web.json_response({"agent": aid, "campaign": campaign, "state": "CONNECTING"},
                                 status=202)

    def _login_profile(self, aid: str, body: Mapping[str, Any]) -> AgentProfile | None:
        """Skills and attributes given at login (else the profiles file's entry is used)."""
        if "skills" not in body and "attributes" not in body:
            return None
        known = self.dialer.profiles
        given = body.get("skills")
        skills = known.skills if known is not None else frozenset(
            given if isinstance(given, dict) else ())
        problems: list[str] = []
        profile = parse_profile({"id": aid, "skills": given or {},
                                 "attributes": body.get("attributes") or {}}, "login", skills,
                                known.age_bands if known is not None else DEFAULT_AGE_BANDS,
                                problems)
        if profile is None:
            raise ApiError(400, "bad_profile", "; ".join(problems[:5]) or "bad profile")
        return profile

    async def agent_ready(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        self._runner_for(aid).post(AgentResume(self.clock(), aid))
        return web.json_response({"agent": aid}, status=202)

    async def agent_pause(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        reason = (await read_mapping(request)).get("reason", "break")
        if not isinstance(reason, str) or not 0 < len(reason) <= 64:
            raise ApiError(400, "bad_reason", "'reason' must be a short string")
        self._runner_for(aid).post(AgentPause(self.clock(), aid, reason))
        return web.json_response({"agent": aid}, status=202)

    async def agent_logout(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        self._runner_for(aid).post(AgentLogout(self.clock(), aid))
        return web.json_response({"agent": aid}, status=202)

    async def agent_disposition(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        body = await read_mapping(request)
        disposition = body.get("disposition")
        if not isinstance(disposition, str) or disposition not in DISPOSITIONS:
            raise ApiError(400, "bad_disposition",
                           f"'disposition' must be one of {', '.join(sorted(DISPOSITIONS))}")
        callback_at = body.get("callback_at")
        if disposition == "callback" and (
                isinstance(callback_at, bool) or not isinstance(callback_at, int | float)
                or not math.isfinite(callback_at) or callback_at <= self.clock()):
            raise ApiError(400, "bad_callback", "'callback_at' must be a future POSIX time")
        runner = self._runner_for(aid)
        agent = runner.engine.agents.get(aid)
        if agent is None or agent.call_id is None:
            raise ApiError(409, "no_call", f"agent {aid} has no call to set a disposition on")
        runner.post(Disposition(self.clock(), aid, str(disposition),
                                float(callback_at) if callback_at is not None else None))
        return web.json_response({"agent": aid, "call": agent.call_id}, status=202)

    def _preview(self, aid: str) -> tuple[Any, Any]:
        """(runner, previewed call) of a logged-in preview agent; 409/404 otherwise."""
        runner = self._runner_for(aid)
        if runner.spec.dial_mode is not DialMode.PREVIEW:
            raise ApiError(409, "not_preview", f"agent {aid}'s campaign {runner.spec.id} is not "
                                               "in preview mode")
        call = runner.engine.preview_of(aid)
        if call is None:
            raise ApiError(404, "no_preview", f"no lead is reserved for agent {aid} right now "
                                              "(none left, or one is being claimed)")
        return runner, call

    async def agent_preview(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        _, call = self._preview(aid)
        return web.json_response({"agent": aid, "call": call.id, "lead": lead_json(call.lead)})

    async def agent_preview_dial(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        runner, call = self._preview(aid)
        runner.post(PreviewDial(self.clock(), aid))
        return web.json_response({"agent": aid, "call": call.id}, status=202)

    async def agent_preview_skip(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        runner, call = self._preview(aid)
        runner.post(PreviewSkip(self.clock(), aid))
        return web.json_response({"agent": aid, "call": call.id}, status=202)

    async def get_agent(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        data = await self.store.get_agent(aid)
        if data is None:
            raise ApiError(404, "unknown_agent", f"unknown agent '{aid}'")
        return web.json_response({"agent": aid, **data})

    # --------------------------------------------------------------------------------- DNC
    async def dnc_add(self, request: web.Request) -> web.Response:
        body = await read_mapping(request)
        numbers = body.get("numbers", [body.get("number")] if "number" in body else None)
        campaign = body.get("campaign")
        if not isinstance(numbers, list) or not numbers:
            raise ApiError(400, "missing_field", "'number' or 'numbers' is required")
        if campaign is not None and not isinstance(campaign, str):
            raise ApiError(400, "bad_campaign", "'campaign' must be a campaign id (a string)")
        if campaign is not None:
            await self._campaign(campaign)
        good, errors = [], []
        for i, raw in enumerate(numbers):
            try:
                good.append(e164(str(raw), str(body.get("region", "US"))))
            except ValueError as exc:
                errors.append({"index": i, "number": str(raw)[:40], "reason": str(exc)})
        added = await self.store.dnc_add_many(good, campaign) if good else 0
        return web.json_response({"added": added, "rejected": errors},
                                 status=200 if good or not errors else 422)

    async def dnc_import(self, request: web.Request) -> web.Response:
        """A list of numbers, one per line (text/plain; text/csv: the first column, a header
        row allowed), each accepted or rejected by its row number."""
        if request.content_type not in ("text/plain", "text/csv"):
            raise ApiError(415, "unsupported_media_type", "send the numbers as text/plain or text/csv")
        campaign = request.query.get("campaign")
        region = request.query.get("region", "US")
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ApiError(400, "bad_query", f"unknown region {region[:10]!r} (ISO 3166, e.g. US)")
        data = await request.read()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_body", "the request body is not valid UTF-8") from None
        if campaign is not None:
            await self._campaign(campaign)
        # Parsing is CPU-bound (phonenumbers): off the event loop.
        good, errors, received = await asyncio.to_thread(
            parse_dnc_rows, text, region, request.content_type == "text/csv")
        if not received:
            raise ApiError(400, "missing_field", "no numbers in the body (one per line)")
        added = await self.store.dnc_add_many(good, campaign) if good else 0
        report = {"received": received, "added": added, "already_listed": len(good) - added,
                  "rejected": len(errors), "errors": errors}
        return web.json_response(report, status=200 if good else 422)

    async def dnc_check(self, request: web.Request) -> web.Response:
        try:
            number = e164(request.match_info["number"], request.query.get("region", "US"))
        except ValueError as exc:
            raise ApiError(400, "bad_number", str(exc)) from None
        campaign = request.query.get("campaign")
        listed = await self.store.dnc_contains(number, campaign or "")
        return web.json_response({"number": number, "dnc": listed})


PHONE_HEADERS = frozenset({"phone", "phone_number", "number", "e164"})


def parse_dnc_rows(text: str, region: str, is_csv: bool) -> tuple[list[str], list[dict[str, Any]], int]:
    """(E.164 numbers, rejected rows as {row, number, reason}, rows holding a number). Rows are
    numbered from 1 as in the body; blank rows and `#` comments are skipped."""
    good: list[str] = []
    errors: list[dict[str, Any]] = []
    received = 0
    lines = text.splitlines()
    rows: list[str] = []
    if is_csv:
        try:
            rows = [fields[0] if fields else "" for fields in csv.reader(io.StringIO(text))]
        except csv.Error:
            rows = [line.split(",", 1)[0] for line in lines]
    else:
        rows = lines
    for number, raw in enumerate(rows, start=1):
        value = raw.strip()
        if not value or value.startswith("#"):
            continue
        if number == 1 and is_csv and value.lower() in PHONE_HEADERS:
            continue
        received += 1
        try:
            good.append(e164(value, region))
        except ValueError as exc:
            errors.append({"row": number, "number": value[:40], "reason": str(exc)})
    return good, errors, received


def e164(raw: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"not a valid number for region {region}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def lead_json(lead: Any) -> dict[str, Any]:
    return {
        "id": lead.id, "campaign": lead.campaign_id, "phone": lead.phone,
        "timezones": list(lead.timezones), "priority": lead.priority,
        "attributes": dict(lead.attributes), "state": lead.state.value,
        "attempts": lead.attempts, "next_at": lead.next_at,
        "last_result": lead.last_result.value if lead.last_result else None,
        "lockout_until": lead.lockout_until,
    }

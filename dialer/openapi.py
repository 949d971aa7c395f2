"""The HTTP API's OpenAPI 3.0 document, served at GET /openapi.json.

Written by hand next to the handlers (`dialer.api`); who may call what comes from the role table
(`dialer.auth.RULES`, shown per operation as `x-roles`), so the two cannot disagree. Kept in sync
with the router by `tests/integration/test_openapi.py` (same paths and methods) and checked
against the live server by a schemathesis run (no 5xx, no response outside the document).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any

from dialer import __version__
from dialer.auth import PUBLIC, rule_for
from dialer.config import Role
from dialer.console.docs import console_operations
from dialer.core.campaign import DISPOSITIONS
from dialer.core.model import AmdMode, AttemptResult, DialMode, LeadState, RetryRules
from dialer.core.specs import CAMPAIGN_ID, TOP_KEYS
from dialer.escalation_docs import escalation_operations, escalation_schemas
from dialer.routing.matching import PreferenceKind, TagMode

Json = dict[str, Any]

CAMPAIGN_STATUSES = ["created", "running", "paused", "stopped"]


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | None = None, additional: bool | Json = False, **props: Json) -> Json:
    schema: Json = {"type": "object", "properties": props, "additionalProperties": additional}
    if required:
        schema["required"] = required
    return schema


def nullable(schema: Json) -> Json:
    return {**schema, "nullable": True}


STRING: Json = {"type": "string"}
FLOW_ID_SCHEMA: Json = {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,63}$",
                        "example": "phonebank_outbound"}
INT: Json = {"type": "integer"}
COUNT: Json = {"type": "integer", "minimum": 0}
NUMBER: Json = {"type": "number"}
BOOL: Json = {"type": "boolean"}
POSIX: Json = {"type": "number", "description": "POSIX time, seconds"}


def _matching_schema() -> Json:
    """A campaign's `matching:` block (dialer.routing.matching.parse_rules)."""
    name = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"}
    preference = obj(["attribute"], attribute=name,
                     weight={"type": "number", "exclusiveMinimum": True, "minimum": 0,
                             "maximum": 1e6, "default": 1},
                     kind={"type": "string", "enum": [k.value for k in PreferenceKind],
                           "default": "equal"},
                     mode={"type": "string", "enum": [m.value for m in TagMode],
                           "default": "jaccard", "description": "tags preferences only"})
    props: Json = {
        "required": {"type": "array", "items": name, "uniqueItems": True,
                     "description": "a lead goes only to an agent who has its value"},
        "preferences": {"type": "array", "items": preference,
                        "description": "on answer, the ready agent with the best weighted "
                                       "score takes the call"},
        "defaults": {"type": "object", "additionalProperties": {"type": "string", "pattern": r"\S"},
                     "description": "the value of a lead without the attribute"},
        "age_bands": {"type": "array", "items": {"type": "string", "pattern": r"\S"}},
    }
    return {"type": "object", "properties": props, "additionalProperties": False,
            "description": "Agent-lead matching (dialer/routing/matching.py); absent: any agent "
                           "takes any lead. Attributes must be ones agents' profiles have.",
            "example": {"required": ["language"],
                        "preferences": [{"attribute": "region", "weight": 2}]}}


def _schemas() -> Json:
    seconds = {"type": "number", "minimum": 0, "maximum": 90 * 86400}
    retry = {name: nullable({**seconds, "description": f"seconds before a retry after {name}; "
                                                       "null: no retry"})
             for name in (f.name for f in dataclasses.fields(RetryRules)) if name != "max_attempts"}
    campaign_props: Json = {
        "id": {"type": "string", "pattern": CAMPAIGN_ID.pattern, "example": "spring-drive"},
        "name": {"type": "string", "minLength": 1, "pattern": r"\S",
                 "example": "Spring fundraising drive"},
        "dial_mode": {"type": "string", "enum": [m.value for m in DialMode], "default": "progressive"},
        "trunk": {"type": "string", "pattern": r"\{number\}", "example": "PJSIP/{number}@carrier",
                  "description": "Asterisk endpoint template; must contain {number}"},
        "caller_id": {"type": "string", "pattern": r"\S", "example": "Acme <+15550100>"},
        "safe_harbor": obj(
            ["seller", "callback_number"],
            seller={"type": "string", "pattern": r"\S", "example": "Acme"},
            callback_number={"type": "string", "pattern": r"\S", "example": "+15550100"},
            optout_key={"type": "string", "enum": list("0123456789*#"), "default": "9"},
            flow=nullable({**FLOW_ID_SCHEMA, "description": "an IVR flow whose safe_harbor "
                                                            "node plays instead of the built-in "
                                                            "message"})),
        "power_ratio": {"type": "number", "minimum": 1, "maximum": 5, "default": 1.5},
        "abandon_target": {"type": "number", "minimum": 0, "maximum": 0.03, "default": 0.03,
                           "description": "at most 3 % (the legal ceiling)"},
        "connect_limit": {"type": "number", "minimum": 0.5, "maximum": 2, "default": 2,
                          "description": "seconds from the greeting's end to an agent"},
        "ring_timeout": {"type": "number", "minimum": 15, "maximum": 120, "default": 25},
        "max_cps": {"type": "number", "minimum": 0.1, "maximum": 500, "default": 5},
        "max_channels": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 60},
        "window": obj(start={"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$",
                             "example": "08:00"},
                      end={"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$",
                           "example": "21:00"}),
        "amd": {"type": "string", "enum": [m.value for m in AmdMode], "default": "off"},
        "recording": BOOL,
        "uk_mode": BOOL,
        "amd_false_positive_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "ring_agents": {"type": "boolean", "enum": [False],
                        "description": "not supported yet: agents are connected nailed-up"},
        "wrapup": {"type": "number", "minimum": 0, "maximum": 3600, "default": 10},
        "default_region": {"type": "string", "pattern": "^[A-Z]{2}$", "default": "US"},
        "retry": obj(None, False, **retry, max_attempts={"type": "integer", "minimum": 1, "maximum": 100}),
        "agents": {"type": "array", "items": STRING},
        "matching": _matching_schema(),
        "flow": nullable({**FLOW_ID_SCHEMA, "description": "agentless mode: the outbound IVR "
                                                         "flow an answered person hears"}),
    }
    assert set(campaign_props) == TOP_KEYS, "the campaign schema and dialer.core.specs differ"
    lead_input = {"type": "object", "required": ["phone"],
                  "properties": {"phone": {"type": "string", "example": "+12125550100"},
                                 "timezone": STRING, "priority": INT, "external_id": STRING},
                  "additionalProperties": {"type": "string"},
                  "description": "phone, and optionally timezone, priority, external_id and any "
                                 "string attributes"}
    return {
        "Error": obj(["error"], error=obj(
            ["code", "message"],
            code={"type": "string", "description": "stable, for programs (e.g. unknown_campaign)"},
            message={"type": "string", "minLength": 1, "description": "for people"})),
        "CampaignSpec": {**obj(["id", "trunk", "caller_id", "safe_harbor"], **campaign_props),
                         "description": "A campaign definition (dialer/core/specs.py). Fields "
                                        "are checked together; the first invalid one is named "
                                        "in a 422 `invalid_campaign`."},
        "CampaignState": obj(["id", "status"], id=STRING,
                             status={"type": "string", "enum": CAMPAIGN_STATUSES}),
        "CampaignList": obj(["campaigns"], campaigns={"type": "array", "items": obj(
            ["id", "name", "dial_mode", "status"], id=STRING, name=STRING, dial_mode=STRING,
            status=nullable({"type": "string", "enum": CAMPAIGN_STATUSES}))}),
        "Campaign": obj(
            ["id", "name", "dial_mode", "status", "leads", "dialable"],
            id=STRING, name=STRING, dial_mode=STRING,
            status=nullable({"type": "string", "enum": CAMPAIGN_STATUSES}),
            leads={"type": "object", "additionalProperties": COUNT,
                   "description": "leads by state"},
            dialable={**COUNT, "description": "leads that may be dialed now"},
            live={**obj(["calls", "waiting", "agents", "abandoned", "humans", "abandon_rate"],
                        calls=COUNT, waiting=COUNT,
                        agents={"type": "object", "additionalProperties": STRING},
                        abandoned=COUNT, humans=COUNT, abandon_rate=NUMBER),
                  "description": "while the campaign runs in this process"}),
        "LeadInput": lead_input,
        "Lead": obj(
            ["id", "campaign", "phone", "timezones", "priority", "attributes", "state",
             "attempts", "next_at", "last_result", "lockout_until"],
            id=STRING, campaign=STRING, phone={**STRING, "description": "E.164"},
            timezones={"type": "array", "items": STRING}, priority=INT,
            attributes={"type": "object", "additionalProperties": STRING},
            state={"type": "string", "enum": [s.value for s in LeadState]},
            attempts=COUNT, next_at=POSIX,
            last_result=nullable({"type": "string", "enum": [r.value for r in AttemptResult]}),
            lockout_until=POSIX),
        "LeadList": obj(["leads"], leads={"type": "array", "items": ref("Lead")}),
        "Attempt": obj(
            ["id", "campaign_id", "lead_id", "phone", "originated_at"],
            id=STRING, campaign_id=STRING, lead_id=STRING, phone=STRING, originated_at=POSIX,
            answered_at=nullable(POSIX), amd_done_at=nullable(POSIX),
            connected_at=nullable(POSIX), ended_at=nullable(POSIX),
            result=nullable({"type": "string", "enum": [r.value for r in AttemptResult]}),
            cause=nullable(INT), amd_status=nullable(STRING), agent_id=nullable(STRING),
            disposition=nullable(STRING), recording=nullable(STRING),
            escalations={"type": "array", "items": ref("EscalationRecord")}),
        "AttemptList": obj(["attempts"], attempts={"type": "array", "items": ref("Attempt")}),
        "ImportReport": obj(
            ["received", "added", "merged", "rejected", "errors"],
            received=COUNT, added=COUNT,
            merged={**COUNT, "description": "rows that updated a lead already there"},
            rejected=COUNT,
            errors={"type": "array", "items": obj(
                ["row", "reason"],
                row={**COUNT, "description": "as in the file (a CSV header is row 1; 0: the "
                                             "file as a whole)"},
                reason=STRING)}),
        "AgentLogin": obj(
            ["campaign"], campaign={"type": "string", "example": "spring-drive"},
            skills={"type": "object", "description": "skill -> level 1-10 (declared skills of "
                    "the profiles file); with `attributes`, replaces the file's entry",
                    "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 10},
                    "example": {"billing": 5}},
            attributes={"type": "object", "description": "language (list), region, age_band, "
                        "tags (list), other names: strings or lists",
                        "example": {"language": ["es", "en"]}}),
        "AgentLoginAccepted": obj(["agent", "campaign", "state"], agent=STRING,
                                  campaign=STRING, state=STRING),
        "AgentPause": obj(reason={"type": "string", "minLength": 1, "maxLength": 64,
                                  "default": "break"}),
        "AgentDisposition": obj(
            ["disposition"],
            disposition={"type": "string", "enum": sorted(DISPOSITIONS)},
            callback_at={**POSIX, "description": "required for `callback`: a future time"}),
        "AgentAccepted": obj(["agent"], agent=STRING),
        "DispositionAccepted": obj(["agent", "call"], agent=STRING, call=STRING),
        "Preview": {**obj(["agent", "call", "lead"], agent=STRING, call=STRING, lead=ref("Lead")),
                    "description": "preview mode: the lead reserved for the agent; `call` is the "
                                   "id the call (and its attempt) will have when dialed"},
        "PreviewAccepted": obj(["agent", "call"], agent=STRING, call=STRING),
        "Agent": {**obj(["agent"], additional=STRING, agent=STRING),
                  "description": "the agent's last saved state: state, since, campaign, call, "
                                 "pause_reason, channel (their phone's channel id, if up)"},
        "DncAdd": {**obj(number=STRING, numbers={"type": "array", "items": STRING, "minItems": 1},
                         campaign={**STRING, "description": "only this campaign's list"},
                         region={**STRING, "default": "US",
                                 "description": "for numbers without a country code"}),
                   "description": "`number` or `numbers` (required, one of them)"},
        "DncAddResult": obj(["added", "rejected"], added=COUNT, rejected={
            "type": "array", "items": obj(["index", "number", "reason"], index=COUNT,
                                          number=STRING, reason=STRING)}),
        "DncImportReport": obj(
            ["received", "added", "already_listed", "rejected", "errors"],
            received=COUNT, added=COUNT, already_listed=COUNT, rejected=COUNT,
            errors={"type": "array", "items": obj(["row", "number", "reason"], row=COUNT,
                                                  number=STRING, reason=STRING)}),
        "DncStatus": obj(["number", "dnc"], number={**STRING, "description": "E.164"}, dnc=BOOL),
        "Health": obj(["status"], status={"type": "string", "enum": ["ok"]}),
        "Ready": obj(["ready", "checks"], ready=BOOL,
                     checks={"type": "object", "additionalProperties": BOOL}),
        **_ivr_schemas(),
        **escalation_schemas(),
    }


def _ivr_schemas() -> Json:
    diags = {"type": "array", "items": ref("FlowDiagnostic")}
    strings = {"type": "array", "items": STRING}
    return {
        "FlowDiagnostic": obj(
            ["file", "line", "col", "severity", "code", "message", "help"], file=STRING,
            line=COUNT, col=COUNT, severity={"type": "string", "enum": ["error", "warning"]},
            code={**STRING, "example": "E101"}, message=STRING, help=nullable(STRING)),
        "IvrFlows": obj(
            ["directory", "live", "draining", "last_reload_at", "errors", "warnings"],
            directory=STRING,
            live=nullable(obj(["version", "loaded_at", "flows", "routes", "calls"],
                              version=STRING, loaded_at=POSIX, flows=strings,
                              routes={"type": "object", "additionalProperties": STRING},
                              calls=COUNT)),
            draining={"type": "array", "items": obj(["version", "calls"], version=STRING,
                                                    calls=COUNT)},
            last_reload_at=nullable(POSIX), errors=diags, warnings=diags),
        "IvrReload": obj(
            ["ok", "version", "changed", "errors", "warnings"], ok=BOOL,
            version=nullable(STRING), changed=BOOL, errors=diags, warnings=diags,
            error=obj(["code", "message"], code=STRING, message=STRING)),
        "IvrCalls": obj(["calls"], calls={"type": "array", "items": obj(
            ["call_id", "flow", "flow_version", "caller", "dnis", "direction", "started_at",
             "ended_at", "outcome", "disposition", "path", "vars", "recordings", "agent"],
            call_id=STRING, flow=STRING, flow_version=STRING, caller=STRING, dnis=STRING,
            direction=STRING, started_at=POSIX, ended_at=POSIX, outcome=STRING,
            disposition=STRING, path=strings,
            vars={"type": "object", "additionalProperties": STRING}, recordings=strings,
            agent=nullable(STRING))}),
        "CallbackRequest": {
            **obj(["number", "topic"],
                  number={"type": "string", "minLength": 1, "maxLength": 64,
                          "pattern": r"\S", "example": "+12125550123",
                          "description": "E.164, or national in `region` (default: the "
                                         "topic's campaign's default_region)"},
                  topic={"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S",
                         "example": "billing",
                         "description": "one of the configured topics (callbacks.topics), "
                                        "case-insensitive"},
                  preferred_time={"type": "string", "format": "date-time",
                                  "example": "2026-12-01T15:30:00+01:00",
                                  "description": "ISO 8601 with a UTC offset; default: now. "
                                                 "Not in the past (a few minutes' grace), not "
                                                 "beyond callbacks.horizon_days (30)"},
                  name={"type": "string", "maxLength": 256, "example": "Ann Lee"},
                  notes={"type": "string", "maxLength": 256,
                         "example": "question about the December invoice"},
                  region={"type": "string", "pattern": "^[A-Za-z]{2}$", "example": "US"},
                  channel={"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,32}$",
                           "example": "web", "description": "where the request came from"}),
            "description": "What the customer asked for on a web form, chat or social page."},
        "CallbackCreated": obj(
            ["lead_id", "campaign", "topic", "skill", "phone", "next_at"],
            lead_id=STRING, campaign=STRING, topic=STRING, skill=STRING,
            phone={**STRING, "description": "E.164"},
            next_at={**POSIX, "description": "not dialed before this time (POSIX seconds)"}),
    }


ERRORS: dict[str, str] = {
    "400": "Malformed request (`malformed_body`, `missing_field`, `bad_query`, `bad_number`, "
           "`bad_reason`, `bad_disposition`, `bad_callback`, `bad_campaign`, `bad_field`, "
           "`unknown_field`, `bad_profile`)",
    "401": "No token, a malformed `Authorization` header or an unknown token (`unauthorized`)",
    "403": "The token's role may not do this (`forbidden`)",
    "404": "No such campaign, lead or agent (`unknown_campaign`, `unknown_lead`, "
           "`unknown_agent`)",
    "409": "Conflicts with the current state (`campaign_exists`, `campaign_stopped`, "
           "`agent_not_logged_in`, `agent_state`, `no_call`, `conflict`, `dnc`, "
           "`campaign_missing`)",
    "413": "Request body too large (`too_large`)",
    "415": "Unsupported media type or charset (`unsupported_media_type`, "
           "`unsupported_charset`)",
    "422": "Well-formed but invalid (`invalid_campaign`, `unknown_topic`, `bad_number`, "
           "`bad_region`, `bad_preferred_time`, `preferred_time_past`, "
           "`preferred_time_too_far`)",
    "503": "The store (Redis) cannot be reached (`store_unavailable`): the request may not "
           "have been carried out; try again",
}


def _responses(max_body: int, max_object_body: int) -> Json:
    out: Json = {}
    for status, text in ERRORS.items():
        if status == "413":
            text += (f": JSON/YAML objects over {max_object_body} bytes, lead files and DNC "
                     f"lists over {max_body} bytes")
        response: Json = {"description": text,
                          "content": {"application/json": {"schema": ref("Error")}}}
        if status == "401":
            response["headers"] = {"WWW-Authenticate": {
                "description": 'RFC 6750: `Bearer realm="dialer"`', "schema": STRING}}
        out[status] = response
    return out


def _error_refs(*statuses: str) -> Json:
    return {s: {"$ref": f"#/components/responses/{s}"} for s in statuses}


def ok(schema: str, description: str = "OK", status: str = "200") -> Json:
    return {status: {"description": description,
                     "content": {"application/json": {"schema": ref(schema)}}}}


def path_param(name: str, description: str, example: str) -> Json:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}, "example": example}


CID = path_param("cid", "campaign id", "spring-drive")
AID = path_param("aid", "agent id (the agent's PJSIP endpoint name)", "agent-1001")
LID = path_param("lid", "lead id: `<campaign>:<E.164 number>`", "spring-drive:+12125550100")


def query(name: str, schema: Json, description: str) -> Json:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def json_body(schema: str, *, yaml: bool = False, required: bool = True) -> Json:
    content: Json = {"application/json": {"schema": ref(schema)}}
    if yaml:
        content["application/yaml"] = {"schema": ref(schema)}
    return {"required": required, "content": content}


def _operations() -> dict[tuple[str, str], Json]:
    """(method, path) -> the operation, without security (added from the role table)."""
    body_errors = ("400", "413", "415")
    return {
        ("POST", "/campaigns"): {
            "summary": "Create a campaign from JSON or YAML",
            "requestBody": json_body("CampaignSpec", yaml=True),
            "responses": {**ok("CampaignState", "Created", "201"),
                          **_error_refs(*body_errors, "409", "422")}},
        ("GET", "/campaigns"): {
            "summary": "List the campaigns", "responses": ok("CampaignList")},
        ("GET", "/campaigns/{cid}"): {
            "summary": "A campaign's status, lead counts and live figures", "parameters": [CID],
            "responses": {**ok("Campaign"), **_error_refs("404")}},
        ("POST", "/campaigns/{cid}/start"): {
            "summary": "Start dialing (or resume a paused or stopped campaign)",
            "parameters": [CID],
            "responses": {**ok("CampaignState"), **_error_refs("404", "409")}},
        ("POST", "/campaigns/{cid}/pause"): {
            "summary": "Place no new calls; calls in progress finish", "parameters": [CID],
            "responses": {**ok("CampaignState"), **_error_refs("404", "409")}},
        ("POST", "/campaigns/{cid}/stop"): {
            "summary": "Pause and mark the campaign stopped (it stays stopped after a restart)",
            "parameters": [CID],
            "responses": {**ok("CampaignState"), **_error_refs("404")}},
        ("POST", "/campaigns/{cid}/leads"): {
            "summary": "Import leads (CSV with a header row, or JSON) with a per-row report",
            "description": "Good rows are kept and bad ones reported by row number. 422 (with "
                           "the same report) when no row could be imported.",
            "parameters": [CID],
            "requestBody": {"required": True, "content": {
                "text/csv": {"schema": {"type": "string"},
                             "example": "phone,first_name\n+12125550100,Ann\n"},
                "application/json": {"schema": {"oneOf": [
                    {"type": "array", "items": ref("LeadInput")},
                    obj(["leads"], leads={"type": "array", "items": ref("LeadInput")})]}}}},
            "responses": {**ok("ImportReport"),
                          "422": {"description": "No row could be imported: the report says why",
                                  "content": {"application/json": {"schema": ref("ImportReport")}}},
                          **_error_refs("404", "413", "415")}},
        ("GET", "/campaigns/{cid}/leads"): {
            "summary": "A campaign's leads, by page",
            "parameters": [CID,
                           query("state", {"type": "string", "enum": [s.value for s in LeadState]},
                                 "only leads in this state"),
                           query("offset", {"type": "integer", "minimum": 0, "maximum": 10**12,
                                            "default": 0},
                                 "leads to skip"),
                           query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                           "default": 100}, "page size")],
            "responses": {**ok("LeadList"), **_error_refs("400", "404")}},
        ("GET", "/leads/{lid}"): {
            "summary": "One lead", "parameters": [LID],
            "responses": {**ok("Lead"), **_error_refs("404")}},
        ("GET", "/leads/{lid}/attempts"): {
            "summary": "Every call attempt to one lead", "parameters": [LID],
            "responses": {**ok("AttemptList"), **_error_refs("404")}},
        ("POST", "/agents/{aid}/login"): {
            "summary": "Log an agent in to a running campaign (their phone is called)",
            "parameters": [AID], "requestBody": json_body("AgentLogin"),
            "responses": {**ok("AgentLoginAccepted", "Accepted: the phone is being called",
                               "202"), **_error_refs(*body_errors, "404", "409")}},
        ("POST", "/agents/{aid}/ready"): {
            "summary": "The agent is ready for calls", "parameters": [AID],
            "responses": {**ok("AgentAccepted", "Accepted", "202"), **_error_refs("409")}},
        ("POST", "/agents/{aid}/pause"): {
            "summary": "The agent takes a break", "parameters": [AID],
            "requestBody": json_body("AgentPause", required=False),
            "responses": {**ok("AgentAccepted", "Accepted", "202"),
                          **_error_refs(*body_errors, "409")}},
        ("POST", "/agents/{aid}/logout"): {
            "summary": "Log the agent out (their phone is hung up)", "parameters": [AID],
            "responses": {**ok("AgentAccepted", "Accepted", "202"), **_error_refs("409")}},
        ("POST", "/agents/{aid}/disposition"): {
            "summary": "The outcome of the agent's current or last call", "parameters": [AID],
            "requestBody": json_body("AgentDisposition"),
            "responses": {**ok("DispositionAccepted", "Accepted", "202"),
                          **_error_refs(*body_errors, "409")}},
        ("GET", "/agents/{aid}/preview"): {
            "summary": "Preview mode: the lead reserved for the agent, not dialed yet",
            "description": "404 `no_preview` while no lead is reserved (none left, or being "
                           "claimed); 409 when the agent is not logged in or their campaign is "
                           "not in preview mode.", "parameters": [AID],
            "responses": {**ok("Preview"), **_error_refs("404", "409")}},
        ("POST", "/agents/{aid}/preview/dial"): {
            "summary": "Preview mode: place the call to the previewed lead",
            "description": "The agent's phone hears it ring, then the customer on answer; "
                           "no abandonment is possible (the agent is waiting).",
            "parameters": [AID],
            "responses": {**ok("PreviewAccepted", "Accepted: dialing", "202"),
                          **_error_refs("404", "409")}},
        ("POST", "/agents/{aid}/preview/skip"): {
            "summary": "Preview mode: pass on the previewed lead (offered again in an hour)",
            "parameters": [AID],
            "responses": {**ok("PreviewAccepted", "Accepted", "202"), **_error_refs("404", "409")}},
        ("GET", "/agents/{aid}"): {
            "summary": "An agent's state", "parameters": [AID],
            "responses": {**ok("Agent"), **_error_refs("404")}},
        ("POST", "/dnc"): {
            "summary": "Add numbers to the do-not-call list (global, or one campaign's)",
            "description": "Numbers that cannot be read are listed by index and not added; 422 "
                           "when none could be added.",
            "requestBody": json_body("DncAdd"),
            "responses": {**ok("DncAddResult"),
                          "422": {"description": "No number could be read",
                                  "content": {"application/json": {"schema": ref("DncAddResult")}}},
                          **_error_refs(*body_errors, "404")}},
        ("POST", "/dnc/import"): {
            "summary": "Import a do-not-call list: one number per line, with a per-row report",
            "description": "text/plain: one number per line; text/csv: the first column, a "
                           "header row (phone, number) allowed. Blank lines and `#` comments "
                           "are skipped. 422 (with the report) when no number could be read.",
            "parameters": [query("campaign", STRING, "only this campaign's list"),
                           query("region", {"type": "string", "default": "US"},
                                 "for numbers without a country code (ISO 3166)")],
            "requestBody": {"required": True, "content": {
                "text/plain": {"schema": {"type": "string"},
                               "example": "+12125550100\n+12125550101\n"},
                "text/csv": {"schema": {"type": "string"}}}},
            "responses": {**ok("DncImportReport"),
                          "422": {"description": "No number could be read: the report says why",
                                  "content": {"application/json":
                                              {"schema": ref("DncImportReport")}}},
                          **_error_refs(*body_errors, "404")}},
        ("GET", "/dnc/{number}"): {
            "summary": "Is a number on the do-not-call list?",
            "parameters": [path_param("number", "phone number (E.164, or national)",
                                      "+12125550100"),
                           query("campaign", STRING, "also check this campaign's list"),
                           query("region", {"type": "string", "default": "US"},
                                 "for a number without a country code")],
            "responses": {**ok("DncStatus"), **_error_refs("400")}},
        ("GET", "/ivr/flows"): {
            "summary": "The live IVR flow set, versions still draining, last reload's errors",
            "responses": ok("IvrFlows")},
        ("POST", "/ivr/flows/reload"): {
            "summary": "Validate the flow files and make them live (all or nothing)",
            "description": "Calls in progress keep the version they started with.",
            "responses": {**ok("IvrReload"),
                          "409": {"description": "The files have errors (`flows_invalid`); "
                                                 "the last good version stays live",
                                  "content": {"application/json": {"schema": ref("IvrReload")}}}}},
        ("GET", "/ivr/calls"): {
            "summary": "The most recent IVR calls: flow, version, node path, outcome",
            "responses": ok("IvrCalls")},
        ("POST", "/callbacks"): {
            "summary": "A customer asks to be called back (web form, chat, social page)",
            "description": "Creates a high-priority lead in the topic's campaign, tagged with "
                           "the topic's skill (attributes topic, skill, source=callback-request, "
                           "name, notes, channel, requested_by), dialed from the preferred time "
                           "on (within the campaign's calling window). A form posts through its "
                           "own backend, which holds an `intake` token. 422 `unknown_topic` "
                           "lists the known topics; 409 `dnc` when the number is on a "
                           "do-not-call list. Nothing is stored on any error.",
            "requestBody": json_body("CallbackRequest"),
            "responses": {**ok("CallbackCreated", "Created: the callback lead", "201"),
                          **_error_refs(*body_errors, "409", "422")}},
        **console_operations(),
        **escalation_operations(),
        ("GET", "/health"): {
            "summary": "Liveness: the process answers", "responses": ok("Health")},
        ("GET", "/ready"): {
            "summary": "Readiness: ARI events and Redis are up",
            "responses": {**ok("Ready"),
                          "503": {"description": "Not ready: `checks` says what is down",
                                  "content": {"application/json": {"schema": ref("Ready")}}}}},
        ("GET", "/metrics"): {
            "summary": "Prometheus metrics",
            "description": "Public (no token) so that Prometheus can scrape it; it carries "
                           "counts and rates only, no lead, number or call id.",
            "responses": {"200": {"description": "Prometheus text exposition format",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}}},
        ("GET", "/openapi.json"): {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.0",
                                  "content": {"application/json":
                                              {"schema": {"type": "object"}}}}}},
    }


def _with_security(method: str, path: str, operation: Json) -> Json:
    """The operation with its security, roles (`x-roles`, and said in the description) and
    the 401/403 answers, from the role table."""
    if (method, path) in PUBLIC:
        security: list[Json] = []
        roles: list[str] = []
        said = "Public: no token needed."
    else:
        rule = rule_for(method, path)
        assert rule is not None, f"{method} {path} is in neither dialer.auth.RULES nor PUBLIC"
        security = [{"bearer": []}]
        roles = [r.value for r in Role if r in rule.roles]
        said = f"Roles: {rule.describe()}."
        operation = {**operation,
                     "responses": {**operation["responses"],
                                   **_error_refs("401", "403", "503")}}
    op_id = method.lower() + "".join(c if c.isalnum() else "_" for c in path if c not in "{}")
    return {**operation, "operationId": op_id,
            "description": f"{operation.get('description', '')}\n\n{said}".strip(),
            "security": security, "x-roles": roles}


@functools.cache
def _document(max_body: int, max_object_body: int) -> Json:
    paths: Json = {}
    for (method, path), operation in _operations().items():
        paths.setdefault(path, {})[method.lower()] = _with_security(method, path, operation)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "asterisk-dialer API",
            "version": __version__,
            "description": (
                "Predictive dialer for Asterisk: campaigns, leads, agents, do-not-call list.\n\n"
                "Authentication: `Authorization: Bearer <token>`; tokens and their roles are "
                "configured in `api.tokens` or `DIALER_API_TOKENS`. Roles: admin (everything), "
                "supervisor (read everything, start and pause campaigns, DNC add and check), "
                "agent (their own agent actions, the lead of their current call), intake "
                "(callback requests only: a web form's or chat's backend). Each "
                "operation lists its roles in `x-roles`.\n\n"
                "Errors are `{\"error\": {\"code\", \"message\"}}`: `code` is stable, "
                "`message` is for people. A refused request changes nothing.\n\n"
                f"Limits: JSON and YAML bodies up to {max_object_body} bytes, lead files and "
                f"DNC lists up to {max_body} bytes (413 `too_large`)."),
            "license": {"name": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token from api.tokens"}},
            "schemas": _schemas(),
            "responses": _responses(max_body, max_object_body),
        },
    }


def openapi_document(max_body: int, max_object_body: int) -> Json:
    """The document (a fresh copy: callers may change theirs)."""
    return copy.deepcopy(_document(max_body, max_object_body))

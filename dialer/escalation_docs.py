"""Escalation and supervision in the OpenAPI document (`dialer.openapi` adds these operations
and schemas; the handlers are `dialer.escalation_api`)."""

from __future__ import annotations

from typing import Any

from dialer.core.escalation import FEATURE_CODES, EscalationMode, MonitorMode, Step

Json = dict[str, Any]

STRING: Json = {"type": "string"}
SHORT: Json = {"type": "string", "minLength": 1, "maxLength": 64}
POSIX: Json = {"type": "number", "description": "POSIX time, seconds"}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Json) -> Json:
    return {"type": "object", "properties": props, "additionalProperties": False,
            "required": required}


def _accepted(schema: str) -> Json:
    return {"202": {"description": "Accepted: the bridges are being changed",
                    "content": {"application/json": {"schema": _ref(schema)}}}}


def _errors(*statuses: str) -> Json:
    return {s: {"$ref": f"#/components/responses/{s}"} for s in statuses}


AID: Json = {"name": "aid", "in": "path", "required": True, "example": "agent-1007",
             "description": "the agent on the call (for a step, the agent or the supervisor)",
             "schema": {"type": "string", "minLength": 1}}
SID: Json = {"name": "sid", "in": "path", "required": True, "example": "agent-1006",
             "description": "the supervisor (an agent with the supervisor skill, logged in to "
                            "the monitored agent's campaign)",
             "schema": {"type": "string", "minLength": 1}}

KEYS = ", ".join(f"`*{digit}` {name}" for digit, name in FEATURE_CODES.items())


def escalation_schemas() -> Json:
    nullable_string: Json = {"type": "string", "nullable": True}
    nullable_time: Json = {**POSIX, "nullable": True}
    return {
        "EscalationRequest": _obj(
            ["mode"], mode={"type": "string", "enum": [m.value for m in EscalationMode]},
            supervisor={**SHORT, "description": "a supervisor by agent id; default: the READY "
                                                "supervisor idle longest", "example": "agent-1006"}),
        "EscalationAccepted": _obj(["agent", "call", "mode", "supervisor"], agent=STRING,
                                   call=STRING, mode=STRING, supervisor=STRING),
        "EscalationStepAccepted": _obj(["agent", "call", "step", "supervisor"], agent=STRING,
                                       call=STRING, step=STRING, supervisor=STRING),
        "MonitorRequest": _obj(
            ["agent", "mode"], agent={**SHORT, "example": "agent-1007"},
            mode={"type": "string", "enum": [m.value for m in MonitorMode]}),
        "MonitorAccepted": _obj(["supervisor", "agent", "call", "mode"], supervisor=STRING,
                                agent=STRING, call=STRING, mode=STRING),
        "EscalationRecord": {
            **_obj(["at", "kind", "agent_id", "supervisor_id", "via", "outcome", "outcome_at",
                    "ended_at"],
                   at=POSIX,
                   kind={"type": "string", "enum": [*(m.value for m in EscalationMode),
                                                    *(m.value for m in MonitorMode)]},
                   agent_id=STRING, supervisor_id=STRING,
                   via={"type": "string", "enum": ["api", "phone"]},
                   outcome=nullable_string, outcome_at=nullable_time, ended_at=nullable_time),
            "description": "An escalation (cold, warm) or supervision (listen, whisper, barge) "
                           "of the call. outcome: consulted, joined, transferred, handed_over, "
                           "cancelled, started, stopped, failed, call_ended, call_moved, "
                           "agent_left, supervisor_left."},
    }


def escalation_operations() -> dict[tuple[str, str], Json]:
    steps = {
        Step.JOIN: ("Warm escalation: the customer joins agent and supervisor (three-way)",
                    "Only while consulting."),
        Step.HANDOVER: ("Warm escalation: the agent leaves; the call is the supervisor's",
                        "While consulting or three-way; the agent goes to wrap-up."),
        Step.CANCEL: ("Warm escalation: the supervisor leaves; the call stays with the agent",
                      "While consulting (the customer comes back from hold) or three-way."),
    }
    ops: dict[tuple[str, str], Json] = {
        ("POST", "/agents/{aid}/escalate"): {
            "summary": "Escalate the agent's live call to a supervisor, cold or warm",
            "description": "cold: the customer moves to the supervisor's bridge and the agent "
                           "goes to wrap-up. warm: the customer is put on hold and the "
                           "supervisor's phone joins the agent (consult); then join, handover or "
                           "cancel. The supervisor is the one named, or the READY supervisor "
                           "idle longest in the agent's campaign. The same by phone: "
                           f"{KEYS}. Recorded on the attempt (`escalations`). 400 `bad_mode`, "
                           "`missing_field`, `unknown_field`, `bad_field`; 404 `unknown_agent`, "
                           "`unknown_supervisor`; 409 `agent_not_logged_in`, `no_call`, "
                           "`escalation_in_progress`, `no_supervisor_free`, `supervisor_busy`, "
                           "`not_a_supervisor`, `supervisor_not_logged_in`, `same_agent`, "
                           "`not_supported` (ring-per-call campaigns).",
            "parameters": [AID], "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("EscalationRequest")}}},
            "responses": {**_accepted("EscalationAccepted"),
                          **_errors("400", "404", "409", "413", "415")}},
    }
    for step, (summary, text) in steps.items():
        ops[("POST", f"/agents/{{aid}}/escalate/{step.value}")] = {
            "summary": summary,
            "description": f"{text} 409 `no_escalation`, `escalation_state` (not allowed now, or "
                           "the previous step is still being carried out), "
                           "`agent_not_logged_in`; 404 `unknown_agent`.",
            "parameters": [AID],
            "responses": {**_accepted("EscalationStepAccepted"), **_errors("404", "409")}}
    ops[("POST", "/supervisors/{sid}/monitor")] = {
        "summary": "A supervisor listens to, whispers to or barges into an agent's call",
        "description": "listen: a snoop channel on the customer's channel (both directions) in "
                       "the supervisor's bridge: they hear both sides, nobody hears them. "
                       "whisper: a snoop on the agent's phone channel, whispering to it: only "
                       "the agent hears the supervisor. barge: the supervisor's phone joins the "
                       "agent's bridge. One session per supervisor; DELETE stops it. 400 "
                       "`bad_mode`, `missing_field`, `unknown_field`, `bad_field`; 404 "
                       "`unknown_agent`, `unknown_supervisor`; 409 `no_call`, "
                       "`monitor_in_progress`, `supervisor_busy`, `not_a_supervisor`, "
                       "`not_same_campaign`, `agent_not_logged_in`, "
                       "`supervisor_not_logged_in`, `same_agent`.",
        "parameters": [SID], "requestBody": {"required": True, "content": {
            "application/json": {"schema": _ref("MonitorRequest")}}},
        "responses": {**_accepted("MonitorAccepted"),
                      **_errors("400", "404", "409", "413", "415")}}
    ops[("DELETE", "/supervisors/{sid}/monitor")] = {
        "summary": "Stop the supervisor's listen, whisper or barge",
        "description": "409 `no_monitor`, `supervisor_not_logged_in`; 404 `unknown_supervisor`.",
        "parameters": [SID],
        "responses": {**_accepted("MonitorAccepted"), **_errors("404", "409")}}
    return ops

"""HTTP routes of escalation and supervision (`dialer.core.escalation` decides; described in
`dialer.escalation_docs`; roles in `dialer.auth.RULES`).

    POST   /agents/{aid}/escalate            {"mode": "cold" | "warm", "supervisor"?}
    POST   /agents/{aid}/escalate/join       warm: the customer joins agent and supervisor
    POST   /agents/{aid}/escalate/handover   warm: the agent leaves, the call is the supervisor's
    POST   /agents/{aid}/escalate/cancel     warm: the supervisor leaves, the call stays
    POST   /supervisors/{sid}/monitor        {"agent", "mode": "listen" | "whisper" | "barge"}
    DELETE /supervisors/{sid}/monitor        stop

Each request is checked against the campaign's live state with the desk's own checks before
anything is posted, so a refused request (4xx, a stable code) changes nothing; accepted ones
answer 202 with what will happen (the call, the supervisor chosen from the queue).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from dialer.api import ApiError, read_mapping
from dialer.core.escalation import (
    Escalate,
    EscalationError,
    EscalationStep,
    MonitorStart,
    MonitorStop,
    Step,
)
from dialer.runner import CampaignRunner, Dialer
from dialer.store.base import Store

#: EscalationError codes that are not 409 (a conflict with the current state).
STATUS: dict[str, int] = {"bad_mode": 400, "bad_step": 400}
ESCALATE_FIELDS = frozenset({"mode", "supervisor"})
MONITOR_FIELDS = frozenset({"agent", "mode"})


def api_error(exc: EscalationError) -> ApiError:
    return ApiError(STATUS.get(exc.code, 409), exc.code, str(exc))


def _fields(body: dict[str, Any], allowed: frozenset[str], required: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s) {', '.join(unknown)} (allowed: "
                                             f"{', '.join(sorted(allowed))})")
    for name in required:
        if name not in body:
            raise ApiError(400, "missing_field", f"'{name}' is required")
    for name in allowed:
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 64):
            raise ApiError(400, "bad_field", f"'{name}' must be a short string")


class EscalationApi:
    def __init__(self, store: Store, dialer: Dialer, clock: Callable[[], float]) -> None:
        self.store = store
        self.dialer = dialer
        self.clock = clock

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/agents/{aid}/escalate", self.escalate)
        for step in Step:
            r.add_post(f"/agents/{{aid}}/escalate/{step.value}", self._step_handler(step))
        r.add_post("/supervisors/{sid}/monitor", self.monitor)
        r.add_delete("/supervisors/{sid}/monitor", self.stop_monitor)

    async def _runner(self, agent_id: str, role: str = "agent") -> CampaignRunner:
        """The runner the agent is logged in to; 404 for an agent nobody knows (no profile, no
        record), 409 for a known one not logged in."""
        runner = self.dialer.runner_for_agent(agent_id)
        if runner is not None:
            return runner
        if self.dialer.agent_profile(agent_id) is None \
                and await self.store.get_agent(agent_id) is None:
            raise ApiError(404, f"unknown_{role}", f"unknown {role} '{agent_id}'")
        raise ApiError(409, f"{role}_not_logged_in", f"{role} {agent_id} is not logged in")

    async def escalate(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        body = await read_mapping(request)
        _fields(body, ESCALATE_FIELDS, ("mode",))
        mode, supervisor = str(body["mode"]), body.get("supervisor")
        if mode not in ("cold", "warm"):
            raise ApiError(400, "bad_mode", f"unknown escalation mode {mode[:20]!r} (cold or "
                                            "warm)")
        runner = await self._runner(aid)
        if supervisor is not None:
            await self._runner(str(supervisor), "supervisor")
        supervisors = self.dialer.supervisor_ids()
        try:
            call, chosen = runner.desk.check_escalate(aid, mode, supervisor, supervisors)
        except EscalationError as exc:
            raise api_error(exc) from None
        # The supervisor chosen now is named in the event: the answer says who it will be.
        runner.post(Escalate(self.clock(), aid, mode, chosen.id, supervisors))
        return web.json_response({"agent": aid, "call": call.id, "mode": mode,
                                  "supervisor": chosen.id}, status=202)

    def _step_handler(self, step: Step) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            aid = request.match_info["aid"]
            runner = await self._runner(aid)
            try:
                esc = runner.desk.check_step(aid, step.value)
            except EscalationError as exc:
                raise api_error(exc) from None
            runner.post(EscalationStep(self.clock(), aid, step.value))
            return web.json_response({"agent": aid, "call": esc.call_id, "step": step.value,
                                      "supervisor": esc.supervisor_id}, status=202)
        handler.__name__ = f"escalate_{step.value}"
        return handler

    async def monitor(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        body = await read_mapping(request)
        _fields(body, MONITOR_FIELDS, ("agent", "mode"))
        aid, mode = str(body["agent"]), str(body["mode"])
        if mode not in ("listen", "whisper", "barge"):
            raise ApiError(400, "bad_mode", f"unknown monitor mode {mode[:20]!r} (listen, "
                                            "whisper or barge)")
        runner = await self._runner(sid, "supervisor")
        agents_runner = await self._runner(aid)
        if agents_runner is not runner:
            raise ApiError(409, "not_same_campaign", f"agent {aid} is in campaign "
                                                     f"{agents_runner.spec.id}, supervisor "
                                                     f"{sid} in {runner.spec.id}")
        supervisors = self.dialer.supervisor_ids()
        try:
            call, _ = runner.desk.check_monitor(sid, aid, mode, supervisors)
        except EscalationError as exc:
            raise api_error(exc) from None
        runner.post(MonitorStart(self.clock(), sid, aid, mode, supervisors))
        return web.json_response({"supervisor": sid, "agent": aid, "call": call.id,
                                  "mode": mode}, status=202)

    async def stop_monitor(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        runner = await self._runner(sid, "supervisor")
        monitor = runner.desk.monitors.get(sid)
        if monitor is None:
            raise ApiError(409, "no_monitor", f"supervisor {sid} is not monitoring a call")
        runner.post(MonitorStop(self.clock(), sid))
        return web.json_response({"supervisor": sid, "agent": monitor.agent_id,
                                  "call": monitor.call_id, "mode": monitor.mode.value},
                                 status=202)

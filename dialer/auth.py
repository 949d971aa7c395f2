"""Bearer-token authentication and role checks for the HTTP API, in one place.

Every request but the public ones carries `Authorization: Bearer <token>`. The token names a
principal with a role (`dialer.config.Role`); `RULES` says, per route, which roles may call it.
Theory of operation, per request:

1. the route is public (`PUBLIC`: health, readiness, Prometheus metrics, the OpenAPI
   document, the console's pages and feeds: a feed checks its token itself) -> through, no
   token needed;
2. no token, a malformed header or an unknown token -> 401 `unauthorized` with
   `WWW-Authenticate: Bearer` (RFC 6750 section 3); this holds for unknown paths too, so an
   anonymous caller learns nothing about the routes beyond the public document;
3. the route's rule does not admit the token's role -> 403 `forbidden`. An agent's token bound
   to an agent id acts only as that agent (`/agents/{aid}/...` with aid = their id), and reads
   only the lead of the call they are on (`CURRENT_LEAD`);
4. otherwise the handler runs with `request[PRINCIPAL]` set to the token.

A refused request never reaches a handler, so it changes nothing. Tokens are compared in
constant time (SHA-256 digests of equal length, every configured token compared).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from dialer.config import ApiConfig, ApiToken, Role

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (agent id or None for an unbound agent token, lead id) -> is that lead on the agent's call?
LeadCheck = Callable[[str | None, str], Awaitable[bool]]


class Scope(enum.Enum):
    """How far an agent's token reaches on a route that admits agents."""

    OWN_AGENT = "own_agent"  # the path's {aid} must be the token's agent
    CURRENT_LEAD = "current_lead"  # the path's {lid} must be the lead of the agent's call


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[Role]
    agent_scope: Scope | None = None  # required when `roles` holds Role.AGENT

    def describe(self) -> str:
        roles = ", ".join(r.value for r in Role if r in self.roles)
        match self.agent_scope:
            case Scope.OWN_AGENT:
                return f"{roles} (an agent's token bound to an agent id: only that agent)"
            case Scope.CURRENT_LEAD:
                return f"{roles} (an agent: only the lead of the call they are on)"
            case None:
                return roles


#: The token a request was authenticated with (on every non-public request).
PRINCIPAL: Final = web.RequestKey("principal", ApiToken)

A, S, G = Role.ADMIN, Role.SUPERVISOR, Role.AGENT
ADMIN: Final = Rule(frozenset({A}))
READ: Final = Rule(frozenset({A, S}))  # supervisors read everything
SUPERVISE: Final = Rule(frozenset({A, S}))
AGENT_SELF: Final = Rule(frozenset({A, G}), Scope.OWN_AGENT)
AGENT_READ: Final = Rule(frozenset({A, S, G}), Scope.OWN_AGENT)
#: Escalating a call: the agent themselves, or a supervisor (or admin) acting for them.
AGENT_OR_SUPERVISOR: Final = Rule(frozenset({A, S, G}), Scope.OWN_AGENT)
#: Callback requests from other channels (`dialer.intake`): a web form's backend holds an
#: intake token, which may do this and nothing else.
INTAKE: Final = Rule(frozenset({A, S, Role.INTAKE}))

#: Routes anyone may call: probes, Prometheus' scrape and the API's own description; the
#: console's pages (they hold no data) and its feeds, whose first WebSocket message carries the
#: token, checked there with these same rules (`dialer.console.access`).
PUBLIC: Final = frozenset({("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"),
                           ("GET", "/openapi.json"),
                           ("GET", "/console"), ("GET", "/wallboard"),
                           ("GET", "/console/static/{name}"),
                           ("GET", "/ws/agent/{aid}"), ("GET", "/ws/supervisor")})

#: (method, route as registered) -> who may call it. A route missing here is refused to every
#: token (403); `test_openapi` checks that every route of the router is here or in PUBLIC.
RULES: Final[dict[tuple[str, str], Rule]] = {
    ("POST", "/campaigns"): ADMIN,
    ("GET", "/campaigns"): READ,
    ("GET", "/campaigns/{cid}"): READ,
    ("POST", "/campaigns/{cid}/start"): SUPERVISE,
    ("POST", "/campaigns/{cid}/pause"): SUPERVISE,
    ("POST", "/campaigns/{cid}/stop"): ADMIN,
    ("POST", "/campaigns/{cid}/leads"): ADMIN,
    ("GET", "/campaigns/{cid}/leads"): READ,
    ("GET", "/leads/{lid}"): Rule(frozenset({A, S, G}), Scope.CURRENT_LEAD),
    ("GET", "/leads/{lid}/attempts"): READ,
    ("POST", "/agents/{aid}/login"): AGENT_SELF,
    ("POST", "/agents/{aid}/ready"): AGENT_SELF,
    ("POST", "/agents/{aid}/pause"): AGENT_SELF,
    ("POST", "/agents/{aid}/logout"): AGENT_SELF,
    ("POST", "/agents/{aid}/disposition"): AGENT_SELF,
    ("GET", "/agents/{aid}"): AGENT_READ,
    ("GET", "/agents/{aid}/preview"): AGENT_READ,
    ("POST", "/agents/{aid}/preview/dial"): AGENT_SELF,
    ("POST", "/agents/{aid}/preview/skip"): AGENT_SELF,
    ("POST", "/dnc"): SUPERVISE,
    ("POST", "/dnc/import"): ADMIN,
    ("GET", "/dnc/{number}"): SUPERVISE,
    ("GET", "/ivr/flows"): READ,
    ("POST", "/ivr/flows/reload"): ADMIN,
    ("GET", "/ivr/calls"): READ,
    ("POST", "/callbacks"): INTAKE,
    ("POST", "/agents/{aid}/escalate"): AGENT_OR_SUPERVISOR,
    ("POST", "/agents/{aid}/escalate/join"): AGENT_OR_SUPERVISOR,
    ("POST", "/agents/{aid}/escalate/handover"): AGENT_OR_SUPERVISOR,
    ("POST", "/agents/{aid}/escalate/cancel"): AGENT_OR_SUPERVISOR,
    ("POST", "/supervisors/{sid}/monitor"): SUPERVISE,
    ("DELETE", "/supervisors/{sid}/monitor"): SUPERVISE,
}


def rule_for(method: str, route: str) -> Rule | None:
    """The rule for a route; HEAD is a GET (aiohttp answers HEAD on every GET route)."""
    return RULES.get(("GET" if method == "HEAD" else method, route))


def is_public(method: str, route: str) -> bool:
    return ("GET" if method == "HEAD" else method, route) in PUBLIC


class Tokens:
    """The configured tokens, looked up in constant time."""

    def __init__(self, config: ApiConfig) -> None:
        self._digests = [(_digest(t.token.value), t) for t in config.tokens]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def find(self, presented: str) -> ApiToken | None:
        digest = _digest(presented)
        found: ApiToken | None = None
        for known, token in self._digests:  # no early exit: the time is the same for every token
            if hmac.compare_digest(known, digest):
                found = token
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def bearer_header(config: ApiConfig, role: Role = Role.ADMIN) -> dict[str, str]:
    """`{"Authorization": "Bearer ..."}` with the config's first token of `role` (for the
    in-process callers: the demo, tests and benchmarks)."""
    token = config.first(role)
    if token is None:
        raise LookupError(f"no API token with role {role.value} in the config (api.tokens)")
    return {"Authorization": f"Bearer {token.token.value}"}


def _refuse(status: int, code: str, message: str, challenge: str | None = None) -> web.Response:
    headers = {"WWW-Authenticate": challenge} if challenge else None
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)


def _unauthorized(message: str, invalid: bool = False) -> web.Response:
    challenge = 'Bearer realm="dialer"' + (', error="invalid_token"' if invalid else "")
    return _refuse(401, "unauthorized", message, challenge)


def presented_token(request: web.Request) -> str | None:
    """The bearer token of the request, or None (no header, or another scheme)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def auth_middleware(config: ApiConfig, lead_check: LeadCheck) -> Middleware:
    """The aiohttp middleware for `config`'s tokens; `lead_check` answers CURRENT_LEAD rules."""
    tokens = Tokens(config)
    if not tokens:
        log.warning("no API tokens are configured (api.tokens or DIALER_API_TOKENS): every API "
                    "request but /health, /ready, /metrics and /openapi.json is refused")

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        if route is not None and is_public(request.method, route):
            return await handler(request)
        presented = presented_token(request)
        if presented is None:
            if not tokens:
                return _unauthorized("no API tokens are configured on this server "
                                     "(api.tokens or DIALER_API_TOKENS)")
            return _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        token = tokens.find(presented)
        if token is None:
            log.warning("refused %s %s: unknown token", request.method, request.path)
            return _unauthorized("unknown or revoked token", invalid=True)
        request[PRINCIPAL] = token
        if route is None:  # no such route (404) or method (405): the handler says which
            return await handler(request)
        rule = rule_for(request.method, route)
        reason = await _forbidden(rule, token, request, lead_check)
        if reason is not None:
            log.warning("refused %s %s to token %s (%s): %s", request.method, request.path,
                        token.name, token.role.value, reason)
            return _refuse(403, "forbidden", reason)
        return await handler(request)

    return authenticate


async def _forbidden(rule: Rule | None, token: ApiToken, request: web.Request,
                     lead_check: LeadCheck) -> str | None:
    """Why `token` may not make this request, or None if it may."""
    what = f"{request.method} {request.match_info.route.resource.canonical}" \
        if request.match_info.route.resource is not None else request.method
    if rule is None or token.role not in rule.roles:
        return f"the {token.role.value} role may not call {what}"
    if token.role is not Role.AGENT:
        return None
    match rule.agent_scope:
        case Scope.OWN_AGENT:
            aid = request.match_info.get("aid")
            if token.agent is not None and aid != token.agent:
                return f"token {token.name} acts for agent {token.agent} only"
            return None
        case Scope.CURRENT_LEAD:
            if not await lead_check(token.agent, request.match_info.get("lid", "")):
                whose = f"agent {token.agent}'s" if token.agent else "an agent's"
                return f"an agent may read only the lead of their current call ({whose})"
            return None
        case None:
            return f"the {token.role.value} role may not call {what}"

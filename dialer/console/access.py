"""Who may watch which feed, decided on the first WebSocket message.

A browser cannot put an `Authorization` header on a WebSocket, and a token in the URL would end
up in logs and history, so the socket opens unauthenticated and its first message must be
`{"token": "<bearer token>"}` within `HELLO_TIMEOUT` seconds. The token is looked up among the
API's tokens (`dialer.auth.Tokens`) and checked with the same rules as the HTTP API:

- an agent's feed (`/ws/agent/{aid}`) as `GET /agents/{aid}` (`dialer.auth.AGENT_READ`): admin,
  supervisor, or an agent's token (one bound to an agent id: only that agent);
- the supervisors' feed (`/ws/supervisor`) as the read routes (`dialer.auth.READ`): admin or
  supervisor.

A refused socket is closed with an application close code (RFC 6455 section 7.4.2: 4000-4999
are for applications) modelled on the HTTP status and a reason a person can read.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from dialer.auth import AGENT_READ, READ, Rule, Scope
from dialer.config import ApiToken, Role

HELLO_TIMEOUT = 10.0  # seconds to send the token after the socket opens
MAX_HELLO = 4096  # bytes: a token message is far smaller


class Close(enum.IntEnum):
    """Close codes of the feeds."""

    GOING_AWAY = 1001  # the server is shutting down (RFC 6455)
    TRY_AGAIN_LATER = 1013  # this subscriber fell too far behind (RFC 6455 registry)
    BAD_HELLO = 4400  # the first message is not {"token": "..."}
    UNAUTHORIZED = 4401  # unknown or revoked token
    FORBIDDEN = 4403  # the token may not watch this feed
    HELLO_TIMEOUT = 4408  # no token in time


@dataclass(frozen=True, slots=True)
class Refusal:
    code: Close
    reason: str  # at most 123 bytes (RFC 6455: the close frame's payload is 125)


class Feed(enum.Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"


FEED_RULES: dict[Feed, Rule] = {Feed.AGENT: AGENT_READ, Feed.SUPERVISOR: READ}


def parse_hello(data: str) -> str | Refusal:
    """The token of a first message, or why it is not one."""
    if len(data.encode("utf-8", "surrogateescape")) > MAX_HELLO:
        return Refusal(Close.BAD_HELLO, f"first message over {MAX_HELLO} bytes")
    try:
        hello = json.loads(data)
    except (ValueError, RecursionError):
        return Refusal(Close.BAD_HELLO, 'first message must be JSON {"token": "..."}')
    token = hello.get("token") if isinstance(hello, dict) else None
    if not isinstance(token, str) or not token.strip():
        return Refusal(Close.BAD_HELLO, 'first message must be {"token": "..."}')
    return token.strip()


def authorize(token: ApiToken | None, feed: Feed, agent_id: str | None = None) -> Refusal | None:
    """None if `token` may watch `feed` (for `agent_id` on an agent's feed), else the refusal."""
    if token is None:
        return Refusal(Close.UNAUTHORIZED, "unknown or revoked token")
    rule = FEED_RULES[feed]
    if token.role not in rule.roles:
        return Refusal(Close.FORBIDDEN, f"the {token.role.value} role may not watch the "
                                        f"{feed.value} feed")
    if token.role is Role.AGENT:
        assert rule.agent_scope is Scope.OWN_AGENT
        if token.agent is not None and token.agent != agent_id:
            return Refusal(Close.FORBIDDEN, _short(f"token {token.name} acts for agent "
                                                   f"{token.agent} only"))
    return None


def _short(reason: str) -> str:
    raw = reason.encode()
    return reason if len(raw) <= 123 else raw[:120].decode(errors="ignore") + "..."

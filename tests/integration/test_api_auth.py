"""Token authentication and roles on the HTTP API: no token or an unknown one is a 401 with
`WWW-Authenticate: Bearer`, a role that may not call a route is a 403, a malformed request from
a role that may is a 400; every refused request changes nothing (the whole Redis database the
server uses is dumped before and after, as in test_api_errors).

Every (route, role) pair the role table refuses is tried with a request that would succeed
with an admin token, so a refusal is the only thing that keeps it from changing state.

The server runs in-process against the real testbed with a Redis database, an ARI application
name and a port of its own; one test places a real call (a simulated customer who holds) to
the testbed's sipp agent phone agent-1001."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from dialer.auth import PUBLIC, RULES, Tokens
from dialer.config import ApiConfig, ApiToken, Config, RedisConfig, Role, Secret, ServerConfig, load_config
from dialer.errors import ConfigError
from dialer.server import Server
from dialer.testbed import Testbed
from tests.integration.conftest import eventually

pytestmark = pytest.mark.testbed

DB_URL = "redis://127.0.0.1:16379/10"  # a database of its own, flushed per test
PORT = 18095
APP = f"dialer-auth-{os.getpid()}"  # one event WebSocket per app name
CID = "auth"  # a campaign with two leads, created by the admin in every test
IDLE = "auth-idle"  # a campaign with no lead (starting it places no call)
HELD = "auth-held"  # a customer who answers and holds, for an agent on a call
LEAD = f"{CID}:+12125550001"
DEADLINE = 45.0
REPO = Path(__file__).resolve().parents[2]

Snapshot = dict[bytes | str, bytes | None]

# Tokens of the testbed's dialer.yaml (by name), each a role or a role boundary.
ADMIN, SUPERVISOR, AGENT_1001, ANY_AGENT = ("testbed-admin", "testbed-supervisor",
                                            "testbed-agent-1001", "testbed-agents")

# A request per route that succeeds (or would, with state to act on) for a role that may
# call it: (body, content type). Agent actions name agent-1001; the lead is LEAD.
REQUESTS: dict[tuple[str, str], tuple[str, str | None, Any]] = {
    ("POST", "/campaigns"): ("/campaigns", "application/json", {
        "id": "intruder", "trunk": "Local/{number}@simcust-pstn", "caller_id": "X <+15550100>",
        "safe_harbor": {"seller": "X", "callback_number": "+15550100"}}),
    ("GET", "/campaigns"): ("/campaigns", None, None),
    ("GET", "/campaigns/{cid}"): (f"/campaigns/{CID}", None, None),
    ("POST", "/campaigns/{cid}/start"): (f"/campaigns/{IDLE}/start", None, None),
    ("POST", "/campaigns/{cid}/pause"): (f"/campaigns/{IDLE}/pause", None, None),
    ("POST", "/campaigns/{cid}/stop"): (f"/campaigns/{CID}/stop", None, None),
    ("POST", "/campaigns/{cid}/leads"): (f"/campaigns/{CID}/leads", "text/csv",
                                         "phone\n+12125550003\n"),
    ("GET", "/campaigns/{cid}/leads"): (f"/campaigns/{CID}/leads", None, None),
    ("GET", "/leads/{lid}"): (f"/leads/{LEAD}", None, None),
    ("GET", "/leads/{lid}/attempts"): (f"/leads/{LEAD}/attempts", None, None),
    ("GET", "/ivr/flows"): ("/ivr/flows", None, None),
    ("POST", "/ivr/flows/reload"): ("/ivr/flows/reload", None, None),
    ("GET", "/ivr/calls"): ("/ivr/calls", None, None),
    ("POST", "/agents/{aid}/login"): ("/agents/agent-1001/login", "application/json",
                                      {"campaign": IDLE}),
    ("POST", "/agents/{aid}/ready"): ("/agents/agent-1001/ready", None, None),
    ("POST", "/agents/{aid}/pause"): ("/agents/agent-1001/pause", "application/json",
                                      {"reason": "lunch"}),
    ("POST", "/agents/{aid}/logout"): ("/agents/agent-1001/logout", None, None),
    ("POST", "/agents/{aid}/disposition"): ("/agents/agent-1001/disposition",
                                            "application/json", {"disposition": "sale"}),
    ("GET", "/agents/{aid}"): ("/agents/agent-1001", None, None),
    ("GET", "/agents/{aid}/preview"): ("/agents/agent-1001/preview", None, None),
    ("POST", "/agents/{aid}/preview/dial"): ("/agents/agent-1001/preview/dial", None, None),
    ("POST", "/agents/{aid}/preview/skip"): ("/agents/agent-1001/preview/skip", None, None),
    ("POST", "/dnc"): ("/dnc", "application/json", {"numbers": ["+12125550009"]}),
    ("POST", "/dnc/import"): ("/dnc/import", "text/plain", "+12125550009\n"),
    ("GET", "/dnc/{number}"): ("/dnc/+12125550009", None, None),
    ("POST", "/callbacks"): ("/callbacks", "application/json",
                             {"number": "+12125550009", "topic": "billing"}),
    ("POST", "/agents/{aid}/escalate"): ("/agents/agent-1001/escalate", "application/json",
                                         {"mode": "cold"}),
    ("POST", "/agents/{aid}/escalate/join"): ("/agents/agent-1001/escalate/join", None, None),
    ("POST", "/agents/{aid}/escalate/handover"): ("/agents/agent-1001/escalate/handover", None,
                                                  None),
    ("POST", "/agents/{aid}/escalate/cancel"): ("/agents/agent-1001/escalate/cancel", None, None),
    ("POST", "/supervisors/{sid}/monitor"): ("/supervisors/agent-1006/monitor",
                                             "application/json",
                                             {"agent": "agent-1001", "mode": "listen"}),
    ("DELETE", "/supervisors/{sid}/monitor"): ("/supervisors/agent-1006/monitor", None, None),
}


def test_there_is_a_request_for_every_protected_route() -> None:
    assert set(REQUESTS) == set(RULES)


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, tokens: dict[str, str]) -> None:
        self.session, self.base, self.tokens = session, base, tokens

    async def call(self, method: str, path: str, *, token: str | None = None,
                   authorization: str | None = None, body: Any = None,
                   content_type: str | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
        """`token` names a token of dialer.yaml; `authorization` is a raw header value."""
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.tokens[token]}"
        if authorization is not None:
            headers["Authorization"] = authorization
        data: io.BytesIO | None = None
        if content_type is not None:
            headers["Content-Type"] = content_type
            raw = body if isinstance(body, str | bytes) else json.dumps(body)
            data = io.BytesIO(raw.encode() if isinstance(raw, str) else raw)
        async with self.session.request(method, self.base + path, data=data,
                                        headers=headers) as resp:
            return resp.status, await resp.json(), resp

    async def ok(self, method: str, path: str, token: str = ADMIN, **kw: Any) -> Any:
        status, body, _ = await self.call(method, path, token=token, **kw)
        assert 200 <= status < 300, (status, body)
        return body

    async def route(self, key: tuple[str, str], token: str | None = None,
                    authorization: str | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
        path, content_type, body = REQUESTS[key]
        return await self.call(key[0], path, token=token, authorization=authorization,
                               body=body, content_type=content_type)


def campaign(cid: str) -> dict[str, Any]:
    return {"id": cid, "name": "Auth", "dial_mode": "progressive",
            "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
            "safe_harbor": {"seller": "Acme", "callback_number": "+15550100", "optout_key": "9"},
            "window": {"start": "00:00", "end": "23:59"}, "ring_timeout": 15, "wrapup": 1}


@pytest.fixture
async def server(testbed: Testbed, config: Config) -> AsyncIterator[Server]:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", PORT),
                  ari=replace(config.ari, app=APP))
    async with Server(cfg) as srv:
        try:
            yield srv
        finally:  # only this server's calls: the testbed is shared
            assert srv.dialer is not None
            runners = list(srv.dialer.runners.values())
            for channel in await srv.ari.rest.list_channels():
                if any(runner.owns(channel.id) for runner in runners) or \
                        channel.id.startswith((f"c-{CID}-", f"c-{IDLE}-", f"c-{HELD}-")):
                    await srv.ari.rest.hangup(channel.id)


@pytest.fixture
async def db() -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.from_url(DB_URL)  # bytes: DUMP values are binary
    yield client
    await client.aclose()


@pytest.fixture
async def api(server: Server, config: Config) -> AsyncIterator[Api]:
    tokens = {t.name: t.token.value for t in config.api.tokens}
    async with aiohttp.ClientSession() as session:
        client = Api(session, server.url, tokens)
        for cid in (CID, IDLE):
            await client.ok("POST", "/campaigns", body=campaign(cid), content_type="application/json")
        # Two customers who never answer: the campaign is never started, they are never dialed.
        await client.ok("POST", f"/campaigns/{CID}/leads", body="phone\n+12125550001\n+12125550002\n",
                        content_type="text/csv")
        yield client


async def snapshot(db: aioredis.Redis) -> Snapshot:
    """Every key of the server's database with its serialized value."""
    return {key: await db.dump(key) for key in sorted(await db.keys("*"))}


def error_of(status: int, body: Any, expected_status: int, code: str) -> str:
    assert status == expected_status, (status, body)
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str), body
    assert message, body
    return message


def protected(*, refused_to: str | None = None) -> list[Any]:
    """pytest params: every protected route (optionally: those the role refuses)."""
    keys = sorted(RULES) if refused_to is None else \
        sorted(k for k, rule in RULES.items() if Role(refused_to) not in rule.roles)
    return [pytest.param(k, id=f"{k[0]} {k[1]}") for k in keys]


# ----------------------------------------------------------------------------------- 401
@pytest.mark.parametrize("key", protected())
async def test_a_request_without_a_token_is_a_401_with_a_bearer_challenge_and_changes_nothing(
    api: Api, db: aioredis.Redis, server: Server, key: tuple[str, str]
) -> None:
    before = await snapshot(db)
    status, body, resp = await api.route(key)
    assert "Authorization: Bearer" in error_of(status, body, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert await snapshot(db) == before
    assert server.dialer is not None
    assert not server.dialer.runners  # nothing started either


@pytest.mark.parametrize("key", protected())
async def test_an_unknown_token_is_a_401_invalid_token_and_changes_nothing(
    api: Api, db: aioredis.Redis, key: tuple[str, str]
) -> None:
    before = await snapshot(db)
    good = api.tokens[ADMIN]
    for wrong in ("not-a-token-of-this-server", good[:-1], good + "x", good.upper()):
        status, body, resp = await api.route(key, authorization=f"Bearer {wrong}")
        assert "unknown" in error_of(status, body, 401, "unauthorized")
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert await snapshot(db) == before


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dGVzdGJlZDp4",
                                    "Token testbed-admin-not-secret",
                                    "testbed-admin-not-secret"])
async def test_a_malformed_authorization_header_is_a_401(api: Api, db: aioredis.Redis,
                                                         header: str) -> None:
    before = await snapshot(db)
    status, body, resp = await api.route(("POST", "/campaigns/{cid}/stop"), authorization=header)
    error_of(status, body, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await api.ok("GET", f"/campaigns/{CID}"))["status"] == "created"
    assert await snapshot(db) == before


async def test_the_scheme_is_case_insensitive(api: Api) -> None:
    status, body, _ = await api.call("GET", "/campaigns",
                                     authorization=f"bearer {api.tokens[SUPERVISOR]}")
    assert status == 200, body


async def test_an_unknown_path_is_a_401_without_a_token_and_a_404_with_one(api: Api) -> None:
    status, body, _ = await api.call("GET", "/no/such/thing")
    error_of(status, body, 401, "unauthorized")
    status, body, _ = await api.call("GET", "/no/such/thing", token=AGENT_1001)
    error_of(status, body, 404, "not_found")


# Public routes with a path parameter, or whose plain GET is not a 200: the console's feeds
# want a WebSocket upgrade (426 without one; their token comes in the first message).
PUBLIC_REQUESTS: dict[tuple[str, str], tuple[str, int]] = {
    ("GET", "/console/static/{name}"): ("/console/static/console.js", 200),
    ("GET", "/ws/agent/{aid}"): ("/ws/agent/agent-1001", 426),
    ("GET", "/ws/supervisor"): ("/ws/supervisor", 426),
}


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
async def test_health_readiness_metrics_and_the_document_need_no_token(
    api: Api, method: str, path: str
) -> None:
    url, status = PUBLIC_REQUESTS.get((method, path), (path, 200))
    async with api.session.request(method, api.base + url) as resp:
        assert resp.status == status, await resp.text()


async def test_a_server_with_no_tokens_configured_refuses_everything_but_the_public_routes(
    testbed: Testbed, config: Config
) -> None:
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", PORT),
                  ari=replace(config.ari, app=APP), api=ApiConfig())
    async with Server(cfg) as srv, aiohttp.ClientSession() as session:
        async with session.get(srv.url + "/campaigns") as resp:
            body = await resp.json()
            assert "no API tokens are configured" in error_of(resp.status, body, 401,
                                                              "unauthorized")
        async with session.get(srv.url + "/campaigns", headers={
                "Authorization": f"Bearer {config.api.tokens[0].token.value}"}) as resp:
            error_of(resp.status, await resp.json(), 401, "unauthorized")
        async with session.get(srv.url + "/health") as resp:
            assert resp.status == 200


# ----------------------------------------------------------------------------------- 403
@pytest.mark.parametrize("key", protected(refused_to="supervisor"))
async def test_a_supervisor_gets_a_403_on_admin_and_agent_routes_and_changes_nothing(
    api: Api, db: aioredis.Redis, server: Server, key: tuple[str, str]
) -> None:
    before = await snapshot(db)
    status, body, _ = await api.route(key, token=SUPERVISOR)
    assert "supervisor role may not" in error_of(status, body, 403, "forbidden")
    assert await snapshot(db) == before
    assert server.dialer is not None
    assert not server.dialer.runners


@pytest.mark.parametrize("token", [AGENT_1001, ANY_AGENT])
@pytest.mark.parametrize("key", protected(refused_to="agent"))
async def test_an_agent_gets_a_403_on_campaign_lead_list_and_dnc_routes_and_changes_nothing(
    api: Api, db: aioredis.Redis, server: Server, key: tuple[str, str], token: str
) -> None:
    before = await snapshot(db)
    status, body, _ = await api.route(key, token=token)
    assert "agent role may not" in error_of(status, body, 403, "forbidden")
    assert await snapshot(db) == before
    assert server.dialer is not None
    assert not server.dialer.runners


@pytest.mark.parametrize("action", ["login", "ready", "pause", "logout", "disposition", "",
                                    "preview/dial", "preview/skip", "escalate", "escalate/join",
                                    "escalate/handover", "escalate/cancel"])
async def test_an_agent_token_bound_to_an_agent_cannot_act_as_another(
    api: Api, db: aioredis.Redis, action: str
) -> None:
    before = await snapshot(db)
    key = ("GET", "/agents/{aid}") if not action else ("POST", f"/agents/{{aid}}/{action}")
    path, content_type, body = REQUESTS[key]
    status, reply, _ = await api.call(key[0], path.replace("agent-1001", "agent-1002"),
                                      token=AGENT_1001, body=body, content_type=content_type)
    assert "acts for agent agent-1001 only" in error_of(status, reply, 403, "forbidden")
    assert await snapshot(db) == before


async def test_an_agent_cannot_read_a_lead_that_is_not_on_their_call(api: Api) -> None:
    for token in (AGENT_1001, ANY_AGENT):
        status, body, _ = await api.call("GET", f"/leads/{LEAD}", token=token)
        assert "only the lead of their current call" in error_of(status, body, 403, "forbidden")


async def test_each_role_may_call_what_the_table_allows(api: Api, db: aioredis.Redis) -> None:
    """Past authentication: a 2xx, or the handler's own answer (e.g. 409 not logged in)."""
    assert (await api.ok("GET", "/campaigns", token=SUPERVISOR))["campaigns"]
    assert (await api.ok("GET", f"/leads/{LEAD}/attempts", token=SUPERVISOR)) == {"attempts": []}
    assert (await api.ok("POST", "/dnc", token=SUPERVISOR, body={"numbers": ["+12125550009"]},
                         content_type="application/json"))["added"] == 1
    assert (await api.ok("GET", "/dnc/+12125550009", token=SUPERVISOR))["dnc"] is True
    before = await snapshot(db)
    for token in (AGENT_1001, ANY_AGENT, SUPERVISOR):
        status, body, _ = await api.call("GET", "/agents/agent-1001", token=token)
        error_of(status, body, 404, "unknown_agent")
    for token in (AGENT_1001, ANY_AGENT):
        status, body, _ = await api.route(("POST", "/agents/{aid}/ready"), token=token)
        error_of(status, body, 409, "agent_not_logged_in")
    status, body, _ = await api.call("POST", "/agents/agent-1002/ready", token=ANY_AGENT)
    error_of(status, body, 409, "agent_not_logged_in")  # an unbound agent token: any agent
    assert await snapshot(db) == before
    assert (await api.ok("POST", f"/campaigns/{IDLE}/start", token=SUPERVISOR))["status"] == "running"
    assert (await api.ok("POST", f"/campaigns/{IDLE}/pause", token=SUPERVISOR))["status"] == "paused"
    assert (await api.ok("POST", f"/campaigns/{IDLE}/stop"))["status"] == "stopped"
    status, body, _ = await api.call("POST", f"/campaigns/{IDLE}/pause", token=SUPERVISOR)
    error_of(status, body, 409, "campaign_stopped")


# ----------------------------------------------------------------------------------- 400
@pytest.mark.parametrize(("path", "content_type", "body", "code"), [
    ("/campaigns", "application/json", "{", "malformed_body"),
    ("/campaigns", "application/yaml", "id: [oops\n", "malformed_body"),
    ("/agents/agent-1001/login", "application/json", "[1]", "malformed_body"),
    ("/agents/agent-1001/login", "application/json", '{"campaign": 7}', "missing_field"),
    ("/agents/agent-1001/disposition", "application/json", '{"disposition": "maybe"}',
     "bad_disposition"),
    ("/dnc", "application/json", '{"numbers": "+12125550009"}', "missing_field"),
    ("/dnc", "application/json", '{"numbers": ["+12125550009"], "campaign": 5}', "bad_campaign"),
    ("/dnc/import", "text/plain", b"\xff\xfe+1212555\n", "malformed_body"),
    ("/dnc/import", "text/plain", "\n# nothing\n\n", "missing_field"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None)
async def test_a_malformed_request_from_a_role_that_may_call_is_a_400_and_changes_nothing(
    api: Api, db: aioredis.Redis, path: str, content_type: str, body: str | bytes, code: str
) -> None:
    before = await snapshot(db)
    status, reply, _ = await api.call("POST", path, token=ADMIN, body=body,
                                      content_type=content_type)
    error_of(status, reply, 400, code)
    assert await snapshot(db) == before


async def test_a_malformed_request_from_a_role_that_may_not_is_a_403_not_a_400(
    api: Api, db: aioredis.Redis
) -> None:
    before = await snapshot(db)
    status, body, _ = await api.call("POST", "/campaigns", token=SUPERVISOR, body="{",
                                     content_type="application/json")
    error_of(status, body, 403, "forbidden")
    assert await snapshot(db) == before


async def test_an_object_body_over_its_limit_is_a_413_and_changes_nothing(
    api: Api, db: aioredis.Redis
) -> None:
    from dialer.api import MAX_OBJECT_BODY
    before = await snapshot(db)
    status, body, _ = await api.call("POST", "/dnc", token=ADMIN,
                                     body='{"numbers": ["' + "1" * MAX_OBJECT_BODY + '"]}',
                                     content_type="application/json")
    assert str(MAX_OBJECT_BODY) in error_of(status, body, 413, "too_large")
    assert await snapshot(db) == before


# ------------------------------------------------------------------------------ DNC import
async def test_dnc_import_reports_each_row_and_adds_the_good_numbers(api: Api) -> None:
    text = "phone\n+12125550101\n\n# a comment\nnot a number\n(212) 555-0102\n+12125550101\n+1212\n"
    status, report, _ = await api.call("POST", f"/dnc/import?campaign={CID}", token=ADMIN,
                                       body=text, content_type="text/csv")
    assert status == 200, report
    assert (report["received"], report["added"], report["already_listed"], report["rejected"]) \
        == (5, 2, 1, 2)
    assert [(e["row"], e["number"]) for e in report["errors"]] == [(5, "not a number"), (8, "+1212")]
    assert all(e["reason"] for e in report["errors"])
    for number in ("+12125550101", "+12125550102"):
        assert (await api.ok("GET", f"/dnc/{number}?campaign={CID}"))["dnc"] is True
        assert (await api.ok("GET", f"/dnc/{number}"))["dnc"] is False  # the campaign's list only


async def test_dnc_import_of_only_bad_numbers_is_a_422_and_adds_nothing(
    api: Api, db: aioredis.Redis
) -> None:
    before = await snapshot(db)
    status, report, _ = await api.call("POST", "/dnc/import", token=ADMIN, body="call me\n+1212\n",
                                       content_type="text/plain")
    assert status == 422, report
    assert (report["added"], report["rejected"]) == (0, 2)
    assert await snapshot(db) == before


@pytest.mark.parametrize(("query", "content_type", "status", "code"), [
    ("", "application/json", 415, "unsupported_media_type"),
    ("?region=Mars", "text/plain", 400, "bad_query"),
    ("?campaign=nope", "text/plain", 404, "unknown_campaign"),
])
async def test_dnc_import_refusals_change_nothing(api: Api, db: aioredis.Redis, query: str,
                                                  content_type: str, status: int, code: str) -> None:
    before = await snapshot(db)
    got, body, _ = await api.call("POST", "/dnc/import" + query, token=ADMIN,
                                  body="+12125550109\n", content_type=content_type)
    error_of(got, body, status, code)
    assert await snapshot(db) == before


# ---------------------------------------------------------------------- an agent on a call

async def test_an_agent_reads_the_lead_of_their_current_call_and_no_other(
    api: Api, server: Server
) -> None:
    """A customer who answers and holds (a number whose line starts with 8) reaches agent-1001,
    who logged in with their own token; they may read that lead, not the campaign's other."""
    held, other = HELD, f"{CID}:+12125550002"
    await api.ok("POST", "/campaigns", body=campaign(held), content_type="application/json")
    await api.ok("POST", f"/campaigns/{held}/leads", body="phone\n+12125558001\n",
                 content_type="text/csv")
    await api.ok("POST", f"/campaigns/{held}/start", token=SUPERVISOR)
    await api.ok("POST", "/agents/agent-1001/login", token=AGENT_1001, body={"campaign": held},
                 content_type="application/json")
    lead = f"{held}:+12125558001"
    try:
        async def connected() -> bool:
            attempts = (await api.ok("GET", f"/leads/{lead}/attempts"))["attempts"]
            return bool(attempts and attempts[0]["connected_at"] and attempts[0]["agent_id"])
        await eventually(connected, "the customer connected to agent-1001")
        for token in (AGENT_1001, ANY_AGENT):
            assert (await api.ok("GET", f"/leads/{lead}", token=token))["phone"] == "+12125558001"
            status, body, _ = await api.call("GET", f"/leads/{other}", token=token)
            error_of(status, body, 403, "forbidden")
    finally:
        await api.ok("POST", f"/campaigns/{held}/stop")
        status, body, _ = await api.call("POST", "/agents/agent-1001/logout", token=AGENT_1001)
        assert status in (202, 409), body
        for channel in await server.ari.rest.list_channels():
            if channel.id.startswith(f"c-{held}-"):
                await server.ari.rest.hangup(channel.id)
        assert server.dialer is not None
        runner = server.dialer.runners[held]

        async def settled() -> bool:
            # The runner idle before the server stops: a stop while it still works through
            # the hang-up can leave its task unfinished (the cancel is lost).
            attempts = (await api.ok("GET", f"/leads/{lead}/attempts"))["attempts"]
            agent = await api.ok("GET", "/agents/agent-1001")
            return bool(all(a["ended_at"] for a in attempts) and agent["state"] == "LOGGED_OUT"
                        and runner.inbox.empty() and not runner.engine.calls)
        await eventually(settled, "the call ended and agent-1001 logged out")


# --------------------------------------------------------------------------- configuration
def test_tokens_from_the_environment_replace_the_file_and_agents_can_be_bound(
    config: Config,
) -> None:
    assert config.api.first(Role.SUPERVISOR) is not None  # the file has tokens of every role
    env = {"DIALER_API_TOKENS": "ops:admin:aaaaaaaaaaaaaaaaaaaa, "
                                "desk-7:agent=agent-1007:bbbbbbbbbbbbbbbbbbbb"}
    cfg = load_config(Path(config.source), env=env)
    assert [(t.name, t.role, t.agent) for t in cfg.api.tokens] == [
        ("ops", Role.ADMIN, None), ("desk-7", Role.AGENT, "agent-1007")]
    assert "aaaa" not in repr(cfg)  # tokens are secrets
    with pytest.raises(ConfigError, match="entry 1 must be name:role:token"):
        load_config(Path(config.source), env={"DIALER_API_TOKENS": "aaaaaaaaaaaaaaaaaaaa"})


@pytest.mark.parametrize(("yaml_tokens", "needle"), [
    ("[{name: a, role: boss, token: aaaaaaaaaaaaaaaaaaaa}]", "'role' must be one of"),
    ("[{name: a, role: admin, token: short-secret}]", "'token' must be 16-512 characters"),
    ("[{name: a, role: admin, token: aaaaaaaaaaaaaaaaaaaa, agent: agent-1001}]",
     "binds an agent's token"),
    ("[{name: a, role: admin, token: aaaaaaaaaaaaaaaaaaaa},"
     " {name: b, role: agent, token: aaaaaaaaaaaaaaaaaaaa}]", "the same token is given twice"),
    ("[{name: a, role: admin, token: aaaaaaaaaaaaaaaaaaaa},"
     " {name: a, role: agent, token: bbbbbbbbbbbbbbbbbbbb}]", "used twice"),
    ("[{name: a, role: admin, token: aaaaaaaaaaaaaaaaaaaa, colour: red}]", "unknown key 'colour'"),
    ("{name: a}", "must be a list"),
])
def test_bad_api_tokens_in_the_config_are_named_without_showing_the_secret(
    tmp_path: Path, yaml_tokens: str, needle: str
) -> None:
    path = tmp_path / "dialer.yaml"
    path.write_text(f"ari: {{password: x}}\napi:\n  tokens: {yaml_tokens}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert needle in str(err.value)
    for secret in re.findall(r"token: ([^,}]+)", yaml_tokens):
        assert secret not in str(err.value)


def test_a_token_is_found_only_by_its_exact_value() -> None:
    tokens = Tokens(ApiConfig((
        ApiToken("a", Secret("aaaaaaaaaaaaaaaaaaaa"), Role.ADMIN),
        ApiToken("b", Secret("bbbbbbbbbbbbbbbbbbbb"), Role.AGENT, "agent-1001"))))
    found = tokens.find("bbbbbbbbbbbbbbbbbbbb")
    assert found is not None
    assert found.name == "b"
    for wrong in ("", "aaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaa", "AAAAAAAAAAAAAAAAAAAA", "\udcff"):
        assert tokens.find(wrong) is None


# ------------------------------------------------------------------------------------ CLI
def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIALER_TOKEN", "DIALER_SERVER")}
    return subprocess.run([sys.executable, "-m", "dialer", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=env, check=False)


async def test_the_cli_sends_its_token_and_says_how_to_give_one_when_refused(api: Api) -> None:
    url = f"http://127.0.0.1:{PORT}"
    refused = await asyncio.to_thread(cli, "campaign", "list", "--server", url)
    assert refused.returncode == 1, refused
    assert refused.stderr.strip() == ("dialer: error: missing bearer token: send 'Authorization: "
                                      "Bearer <token>' (give a token with --token or DIALER_TOKEN)")
    wrong = await asyncio.to_thread(cli, "campaign", "list", "--server", url,
                                    "--token", "not-a-token-of-this-server")
    assert "check the token given with --token or DIALER_TOKEN" in wrong.stderr
    listed = await asyncio.to_thread(cli, "campaign", "list", "--server", url,
                                     "--token", api.tokens[SUPERVISOR])
    assert listed.returncode == 0, listed
    assert CID in listed.stdout
    status = await asyncio.to_thread(cli, "campaign", "start", IDLE, "--server", url,
                                     "--token", api.tokens[AGENT_1001])
    assert status.stderr.strip() == ("dialer: error: the agent role may not call "
                                     "POST /campaigns/{cid}/start")

"""The OpenAPI document the server serves at /openapi.json: valid OpenAPI, the same routes as the
router and the role table, and true of the live server: schemathesis generates requests from
it (with an admin token) and finds no 5xx and no response the document does not describe.

The server runs in-process against the real testbed with a Redis database, an ARI application
name and a port of its own. Generated campaigns could be started and leads imported into them;
agent ids are pinned to one that has no phone, and every channel of this server's campaigns is
hung up at the end, so nothing is left on the shared Asterisk."""

from __future__ import annotations

import asyncio
import os
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dialer.auth import PUBLIC, RULES, bearer_header
from dialer.config import Config, RedisConfig, ServerConfig
from dialer.server import Server
from dialer.testbed import Testbed

pytestmark = pytest.mark.testbed

DB_URL = "redis://127.0.0.1:16379/11"  # a database of its own, flushed per test
PORT = 18096
APP = f"dialer-openapi-{os.getpid()}"  # one event WebSocket per app name
SEED = "fuzz"  # a campaign with one lead, so that generated requests also reach real records
SEED_LEAD = f"{SEED}:+12125550001"
FUZZ_AGENT = "fuzz-agent"  # no such PJSIP endpoint: a login rings no phone
MAX_EXAMPLES = 25  # per operation and mode; the whole run stays well under a minute

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, ignored_auth]


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
        finally:
            await hang_up_ours(srv)


async def hang_up_ours(server: Server) -> None:
    """Every channel this server's campaigns or agent logins may have placed."""
    assert server.store is not None
    campaigns = [spec.id for spec in await server.store.list_campaigns()]
    prefixes = (*(f"c-{cid}-" for cid in campaigns), f"agent-{FUZZ_AGENT}-")
    for channel in await server.ari.rest.list_channels():
        if channel.id.startswith(prefixes):
            await server.ari.rest.hangup(channel.id)


async def document(server: Server) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, \
            session.get(server.url + "/openapi.json") as resp:  # no token: it is public
        assert resp.status == 200, await resp.text()
        doc: dict[str, Any] = await resp.json()
        return doc


def router_routes(server: Server) -> set[tuple[str, str]]:
    assert server._runner is not None
    return {(route.method, route.resource.canonical)
            for route in server._runner.app.router.routes()
            if route.resource is not None and route.method != "HEAD"}  # HEAD: aiohttp's, per GET


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


async def test_the_served_document_is_valid_openapi(server: Server) -> None:
    doc = await document(server)
    validate(doc)  # raises OpenAPIValidationError naming the place
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "a token from api.tokens"}


async def test_the_document_has_exactly_the_routes_of_the_router(server: Server) -> None:
    doc = await document(server)
    routes = router_routes(server)
    assert documented(doc) == routes, (
        f"only in the router: {sorted(routes - documented(doc))}; "
        f"only in the document: {sorted(documented(doc) - routes)}")


async def test_every_route_is_in_the_role_table_or_public_and_the_document_says_which(
    server: Server,
) -> None:
    routes = router_routes(server)
    assert set(RULES) | PUBLIC == routes
    assert not set(RULES) & PUBLIC
    doc = await document(server)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            key = (method.upper(), path)
            if key in PUBLIC:
                assert op["security"] == [], key
                assert op["x-roles"] == [], key
                assert "401" not in op["responses"], key
            else:
                assert op["security"] == [{"bearer": []}], key
                assert set(op["x-roles"]) == {r.value for r in RULES[key].roles}, key
                assert {"401", "403"} <= set(op["responses"]), key


async def test_metrics_is_public_and_the_document_says_why(server: Server) -> None:
    doc = await document(server)
    metrics = doc["paths"]["/metrics"]["get"]
    assert "Prometheus" in metrics["description"]
    async with aiohttp.ClientSession() as session, session.get(server.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"


async def seed(server: Server, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(server.url + "/campaigns", json={
                "id": SEED, "name": "Fuzz", "dial_mode": "progressive",
                # Nowhere: a generated start + import dials nobody on the shared testbed.
                "trunk": "Local/{number}@dialer-openapi-nowhere", "caller_id": "Fuzz <+15550100>",
                "safe_harbor": {"seller": "Fuzz", "callback_number": "+15550100"}}) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(server.url + f"/campaigns/{SEED}/leads",
                                data="phone\n+12125550001\n",
                                headers={"Content-Type": "text/csv"}) as resp:
            assert resp.status == 200, await resp.text()


class Run:
    """What a schemathesis run saw: failures (a report each) and the statuses per operation."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)


def fuzz(doc: dict[str, Any], base_url: str, headers: dict[str, str]) -> Run:
    """Every operation, positive and negative data, each with parameters free and pinned to the
    seeded records."""
    schema = schemathesis.openapi.from_dict(doc)
    run = Run()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        pinned = {"cid": SEED, "lid": SEED_LEAD, "number": "+12125550001", "aid": FUZZ_AGENT}
        variants = [{k: v for k, v in pinned.items() if k in names}]
        if names - {"aid"}:
            variants.append({"aid": FUZZ_AGENT} if "aid" in names else {})
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            for path_parameters in variants:
                strategy = operation.as_strategy(mode, path_parameters=path_parameters or None)
                try:
                    run_cases(run, strategy, base_url, headers)
                except Unsatisfiable:
                    # Nothing left to make invalid (no body, parameters pinned or absent).
                    assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    return run


def run_cases(run: Run, strategy: st.SearchStrategy[schemathesis.Case[Any]], base_url: str,
              headers: dict[str, str]) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        run.statuses[case.operation.label][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (schemathesis.errors.FailureGroup, AssertionError) as exc:  # with a curl line
            run.failures.append(f"{case.operation.label}: {exc}")

    check()


# schemathesis draws from the `random` module inside its strategies now and then; Hypothesis
# warns about it (a warning is an error in this suite). It only affects replaying a failure.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning")
async def test_schemathesis_finds_no_server_error_and_no_response_outside_the_document(
    server: Server,
) -> None:
    headers = bearer_header(server.config.api)
    await seed(server, headers)
    doc = await document(server)
    # schemathesis is synchronous (requests): it runs in a thread while this loop serves.
    run = await asyncio.to_thread(fuzz, doc, server.url, headers)
    seen = "\n".join(f"{op}: {dict(sorted(statuses.items()))}"
                     for op, statuses in sorted(run.statuses.items()))
    assert not run.failures, "\n\n".join(run.failures[:5]) + \
        f"\n\n({len(run.failures)} failures; statuses seen:\n{seen})"
    assert set(run.statuses) == {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    # Every operation got past authentication to its handler at least once.
    reached = {op for op, statuses in run.statuses.items() if set(statuses) - {401}}
    assert reached == set(run.statuses), seen
    print(seen)

"""Agent-lead matching end to end on the real testbed: the server in-process with the repo's
agent profiles (agents.yaml: agent-1003 speaks Spanish, agent-1004 and agent-1005 English),
the HTTP API, Asterisk dialing Local customers (simcust-pstn +1212555 0xxx: answers, talks
5-10 s) and sipp playing the agents' nailed-up phones. Own Redis database (13), ARI app and
port, so it can share the testbed; it hangs up only its own channels. Waits have generous
deadlines; nothing sleeps blindly."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from dialer.auth import bearer_header
from dialer.config import Config, RedisConfig, ServerConfig
from dialer.runner import agent_bridge
from dialer.server import Server
from dialer.testbed import Testbed
from tests.integration.conftest import eventually
from tests.integration.test_campaigns import Client

pytestmark = pytest.mark.testbed

DB_URL = "redis://127.0.0.1:16379/13"  # this test's own database, flushed per test
APP = f"dialer-match-{os.getpid()}"
CID = "match-it"
AGENTS = ("agent-1003", "agent-1004", "agent-1005")
DEADLINE = 90.0


@pytest.fixture
async def server(testbed: Testbed, config: Config) -> AsyncIterator[Server]:
    import redis.asyncio as aioredis
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", 18094),
                  ari=replace(config.ari, app=APP))
    async with Server(cfg) as srv:
        try:
            yield srv
        finally:
            # Only what this test made: its customers' channels, its agents' phone legs and
            # bridges (other test sessions may be using the same Asterisk).
            mine = (f"c-{CID}-", *(f"agent-{aid}-" for aid in AGENTS))
            for channel in await srv.ari.rest.list_channels():
                if channel.id.startswith(mine):
                    await srv.ari.rest.hangup(channel.id)
            for bridge in await srv.ari.rest.list_bridges():
                if bridge.id.startswith(agent_bridge(srv.ari.app, "")):
                    await srv.ari.rest.destroy_bridge(bridge.id)


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(headers=bearer_header(server.config.api)) as session:
        yield Client(session, server.url)


def campaign(**kw: Any) -> dict[str, Any]:
    return {
        "id": CID, "name": "Matching", "dial_mode": "progressive",
        "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
        "safe_harbor": {"seller": "Acme", "callback_number": "+15550100", "optout_key": "9"},
        "window": {"start": "00:00", "end": "23:59"}, "wrapup": 1, "ring_timeout": 15,
        "retry": {"busy": 600, "no_answer": 900, "max_attempts": 3}, **kw,
    }


async def start_with_agents(api: Client, agents: list[str], **kw: Any) -> None:
    """Campaign created and started, agents logged in and READY, and only then the leads, so
    every call is placed with all of them ready."""
    await api.call("POST", "/campaigns", 201, json=campaign(**kw))
    await api.call("POST", f"/campaigns/{CID}/start", 200)
    for agent in agents:
        await api.call("POST", f"/agents/{agent}/login", 202, json={"campaign": CID})
        await api.agent_state(agent, "READY")


async def import_leads(api: Client, rows: list[dict[str, str]]) -> None:
    columns = list(rows[0])
    csv = ",".join(columns) + "\n" + "".join(",".join(r[c] for c in columns) + "\n" for r in rows)
    report = await api.call("POST", f"/campaigns/{CID}/leads", 200, data=csv,
                            headers={"Content-Type": "text/csv"})
    assert report["added"] == len(rows), report


async def talked(api: Client, number: str) -> dict[str, Any]:
    lead_id = f"{CID}:{number}"

    async def done() -> Any:
        ended = [a for a in await api.attempts(lead_id) if a["ended_at"] is not None]
        return ended[0] if ended else None
    attempt = dict(await eventually(done, f"the call to {number} to end", DEADLINE))
    assert attempt["result"] == "talked", attempt
    return attempt


async def test_a_spanish_lead_reaches_only_the_spanish_speaking_agent(api: Client) -> None:
    await start_with_agents(api, ["agent-1003", "agent-1004"],
                            matching={"required": ["language"]})
    leads = {"+12125550301": "es", "+12125550302": "en", "+12125550303": "es",
             "+12125550304": "en"}
    await import_leads(api, [{"phone": n, "language": lang} for n, lang in leads.items()])
    speaker = {"es": "agent-1003", "en": "agent-1004"}
    for number, language in leads.items():
        attempt = await talked(api, number)
        assert attempt["agent_id"] == speaker[language], (number, language, attempt)
        assert attempt["connected_at"] - attempt["answered_at"] < 2.0


async def test_an_answered_lead_goes_to_the_best_matching_ready_agent(api: Client) -> None:
    # agent-1004: en, midwest, 55-64, veteran (ready first: longest idle); agent-1005: en,
    # northeast, 18-24, student. Each lead prefers the other by region and tags.
    await start_with_agents(
        api, ["agent-1004", "agent-1005"],
        matching={"required": ["language"],
                  "preferences": [{"attribute": "region", "weight": 2},
                                  {"attribute": "tags", "weight": 3, "kind": "tags"}]})
    await import_leads(api, [
        {"phone": "+12125550311", "language": "en", "region": "northeast", "tags": "student"},
        {"phone": "+12125550312", "language": "en", "region": "midwest", "tags": "veteran"}])
    assert (await talked(api, "+12125550311"))["agent_id"] == "agent-1005"
    assert (await talked(api, "+12125550312"))["agent_id"] == "agent-1004"


async def test_a_lead_no_logged_in_agent_may_take_is_not_dialed(api: Client) -> None:
    await start_with_agents(api, ["agent-1004"], matching={"required": ["language"]})
    await import_leads(api, [{"phone": "+12125550321", "language": "es"},
                             {"phone": "+12125550322", "language": "en"}])
    assert (await talked(api, "+12125550322"))["agent_id"] == "agent-1004"

    async def put_back() -> Any:
        lead = await api.lead(f"{CID}:+12125550321")
        return lead if lead["state"] == "ready" and lead["next_at"] > 0 else None
    lead = await eventually(put_back, "the Spanish lead to be given back", DEADLINE)
    assert lead["attempts"] == 0
    assert await api.attempts(f"{CID}:+12125550321") == []


async def test_malformed_matching_rules_or_an_unknown_attribute_are_refused(api: Client) -> None:
    bad = await api.call("POST", "/campaigns", 422,
                         json=campaign(matching={"required": ["langauge"]}))
    assert bad["error"]["code"] == "invalid_campaign"
    assert "unknown attribute 'langauge'" in bad["error"]["message"]
    bad = await api.call("POST", "/campaigns", 422,
                         json=campaign(matching={"preferences": [{"attribute": "region",
                                                                  "kind": "nearest"}]}))
    assert "preferences[0].kind" in bad["error"]["message"]
    await api.call("GET", f"/campaigns/{CID}", 404)  # nothing was created

"""Callback requests from other channels (web form, chat, social page): the pure validation in
`dialer.core.callbacks`, the `callbacks:` config section, and `POST /callbacks` served on
loopback by aiohttp with the in-memory store and the real auth middleware (no testbed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dialer.api import errors_middleware
from dialer.auth import RULES, auth_middleware
from dialer.config import ApiConfig, ApiToken, Role, Secret, load_config
from dialer.core.callbacks import (
    CALLBACK_PRIORITY,
    SOURCE,
    CallbackError,
    CallbackRules,
    CallbackTopic,
    callback_lead,
    parse_callback_request,
)
from dialer.core.model import LeadState
from dialer.core.specs import parse_campaign
from dialer.errors import ConfigError
from dialer.intake import STATUS, IntakeApi
from dialer.store.memory import MemoryStore

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
RULES_ = CallbackRules(topics={"billing": CallbackTopic("callbacks", "billing"),
                               "sales": CallbackTopic("uk-sales", "sales")})


def request(**fields: object) -> dict[str, object]:
    return {"number": "+12125550123", "topic": "billing", **fields}


def refused(body: dict[str, object], code: str, rules: CallbackRules = RULES_) -> CallbackError:
    with pytest.raises(CallbackError) as info:
        parse_callback_request(body, rules, NOW)
    assert info.value.code == code, info.value.message
    assert info.value.code in STATUS  # every code the core raises has an HTTP status
    return info.value


# ------------------------------------------------------------------------------ validation
def test_a_request_maps_its_topic_to_the_campaign_and_skill_and_keeps_the_preferred_time() -> None:
    wanted = parse_callback_request(
        request(preferred_time="2026-12-01T15:30:00+01:00", name=" Ann Lee ",
                notes="invoice 42", channel="web"), RULES_, NOW)
    assert (wanted.campaign, wanted.skill, wanted.topic) == ("callbacks", "billing", "billing")
    assert wanted.earliest == dt.datetime(2026, 12, 1, 14, 30, tzinfo=UTC).timestamp()
    assert wanted.attributes() == {"topic": "billing", "skill": "billing", "source": SOURCE,
                                   "name": "Ann Lee", "notes": "invoice 42", "channel": "web"}


def test_without_a_preferred_time_the_callback_is_due_now() -> None:
    assert parse_callback_request(request(), RULES_, NOW).earliest == NOW


def test_topics_match_whatever_their_case_and_surrounding_blanks() -> None:
    assert parse_callback_request(request(topic=" Sales "), RULES_, NOW).campaign == "uk-sales"


def test_an_unknown_topic_is_refused_with_the_known_topics() -> None:
    error = refused(request(topic="refunds"), "unknown_topic")
    assert "refunds" in error.message
    assert "billing, sales" in error.message
    assert error.field == "topic"


def test_with_no_topics_configured_the_error_says_where_to_configure_them() -> None:
    error = refused(request(), "unknown_topic", CallbackRules())
    assert "callbacks.topics" in error.message


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"topic": "billing"}, "missing_field", "number"),
    ({"number": "  ", "topic": "billing"}, "missing_field", "number"),
    ({"number": "+12125550123"}, "missing_field", "topic"),
    (request(number=12125550123), "bad_field", "number"),
    (request(topic=["billing"]), "bad_field", "topic"),
    (request(name="x" * 257), "bad_field", "name"),
    (request(notes=7), "bad_field", "notes"),
    (request(channel="web form!"), "bad_field", "channel"),
    (request(prefered_time="2026-12-01T15:30:00Z"), "unknown_field", "prefered_time"),
    (request(region="XX"), "bad_region", "region"),
])
def test_a_malformed_request_names_the_field(body: dict[str, object], code: str,
                                             field: str) -> None:
    error = refused(body, code)
    assert error.field == field
    assert field in error.message or code == "bad_region"


@pytest.mark.parametrize(("value", "needle"), [
    ("2026-12-01T15:30:00", "no UTC offset"),
    ("tomorrow at three", "not an ISO 8601"),
    ("2026-13-01T15:30:00Z", "not an ISO 8601"),
    (1764601200, "must be an ISO 8601"),
])
def test_a_preferred_time_must_be_iso_8601_with_an_offset(value: object, needle: str) -> None:
    assert needle in refused(request(preferred_time=value), "bad_preferred_time").message


def test_a_preferred_time_in_the_past_beyond_the_grace_is_refused() -> None:
    error = refused(request(preferred_time="2026-12-01T11:00:00Z"), "preferred_time_past")
    assert "60 minutes in the past" in error.message


def test_a_preferred_time_a_little_in_the_past_is_taken_as_now() -> None:
    wanted = parse_callback_request(request(preferred_time="2026-12-01T11:58:00Z"), RULES_, NOW)
    assert wanted.earliest == NOW


def test_a_preferred_time_beyond_the_horizon_is_refused_and_the_horizon_itself_is_not() -> None:
    refused(request(preferred_time="2026-12-31T12:00:01Z"), "preferred_time_too_far")
    wanted = parse_callback_request(request(preferred_time="2026-12-31T12:00:00Z"), RULES_, NOW)
    assert wanted.earliest == NOW + 30 * 86400


# ----------------------------------------------------------------------------------- leads
def test_a_callback_lead_is_a_high_priority_e164_lead_not_due_before_the_preferred_time() -> None:
    lead = callback_lead("(212) 555-0123", campaign="callbacks", region="US",
                         earliest=NOW + 3600, key="cbr-0001",
                         attributes={"topic": "billing", "skill": "billing"})
    assert lead.id == "callbacks:cbr-0001-+12125550123"
    assert (lead.phone, lead.priority, lead.next_at) == ("+12125550123", CALLBACK_PRIORITY,
                                                         NOW + 3600)
    assert lead.state is LeadState.READY
    assert lead.attribute("skill") == "billing"
    assert "America/New_York" in lead.timezones


def test_a_number_that_cannot_be_read_is_a_bad_number_with_the_importers_reason() -> None:
    with pytest.raises(CallbackError) as info:
        callback_lead("555-01", campaign="callbacks", region="US", earliest=NOW,
                      key="cbr-0001", attributes={})
    assert info.value.code == "bad_number"
    assert "not a possible number" in info.value.message or "not a valid" in info.value.message


# ---------------------------------------------------------------------------------- config
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dialer.yaml"
    path.write_text("ari: {password: secret-for-tests}\n" + text)
    return path


def test_the_callbacks_section_sets_topics_grace_and_horizon(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """
callbacks:
  grace: 60
  horizon_days: 7
  topics:
    billing: {campaign: callbacks, skill: billing}
"""), env={})
    assert cfg.callbacks.topics == {"billing": CallbackTopic("callbacks", "billing")}
    assert (cfg.callbacks.grace, cfg.callbacks.horizon) == (60.0, 7 * 86400.0)


@pytest.mark.parametrize(("section", "needle"), [
    ("topics: [billing]", "'callbacks.topics' must be a mapping"),
    ("topics: {Billing: {campaign: callbacks, skill: billing}}", "a topic name must match"),
    ("topics: {billing: {campaign: callbacks}}", "must be {campaign: <campaign id>, skill"),
    ("topics: {billing: {campaign: Call Backs, skill: billing}}", "campaign: must be a campaign"),
    ("topics: {billing: {campaign: callbacks, skill: 2fast}}", "skill: must be a skill name"),
    ("grace: -1", "'callbacks.grace' must be 0-3600"),
    ("horizon_days: 0", "'callbacks.horizon_days' must be"),
    ("topic: {}", "unknown key 'callbacks.topic'"),
])
def test_a_bad_callbacks_section_is_a_config_error_naming_the_key(
        tmp_path: Path, section: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"callbacks:\n  {section}\n"), env={})
    assert needle in str(info.value)


def test_an_intake_token_can_come_from_the_environment(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""), env={"DIALER_API_TOKENS": "web-form:intake:"
                                                                     "intake-token-0123456789"})
    assert [(t.name, t.role) for t in cfg.api.tokens] == [("web-form", Role.INTAKE)]


# ------------------------------------------------------------------ POST /callbacks on loopback
ADMIN_TOKEN = "admin-token-for-tests-0001"
INTAKE_TOKEN = "intake-token-for-tests-001"
AGENT_TOKEN = "agent-token-for-tests-0001"
TOKENS = ApiConfig(tokens=(
    ApiToken("ops", Secret(ADMIN_TOKEN), Role.ADMIN),
    ApiToken("web-form", Secret(INTAKE_TOKEN), Role.INTAKE),
    ApiToken("desk", Secret(AGENT_TOKEN), Role.AGENT, "agent-1")))


def campaign(cid: str, region: str = "US") -> Any:
    return parse_campaign({"id": cid, "trunk": "PJSIP/{number}@carrier",
                           "caller_id": "Acme <+15550100>", "default_region": region,
                           "safe_harbor": {"seller": "Acme", "callback_number": "+15550100"}})


async def no_lead(agent: str | None, lead: str) -> bool:
    return False


async def campaigns_stub(request: web.Request) -> web.Response:
    return web.json_response({"campaigns": []})


@pytest.fixture
async def store() -> MemoryStore:
    store = MemoryStore()
    await store.save_campaign(campaign("callbacks"))
    await store.save_campaign(campaign("uk-sales", "GB"))
    return store


@pytest.fixture
async def client(store: MemoryStore) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[errors_middleware, auth_middleware(TOKENS, no_lead)])
    keys = iter(f"cbr-{i:04d}" for i in range(1, 100))
    IntakeApi(store, RULES_, lambda: NOW, key=lambda: next(keys)).routes(app)
    app.router.add_get("/campaigns", campaigns_stub)  # a route the intake role may not call
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def snapshot(store: MemoryStore) -> tuple[dict[str, Any], dict[str, set[str]]]:
    return dict(store.data.leads), {k: set(v) for k, v in store.data.campaign_leads.items() if v}


async def post(client: TestClient[web.Request, web.Application], body: Any,
               token: str = INTAKE_TOKEN) -> tuple[int, dict[str, Any]]:
    async with client.post("/callbacks", json=body, headers=bearer(token)) as resp:
        return resp.status, await resp.json()


async def test_a_callback_request_creates_a_priority_lead_routed_by_topic_skill(
        client: TestClient[web.Request, web.Application], store: MemoryStore) -> None:
    status, body = await post(client, request(preferred_time="2026-12-01T15:30:00+01:00",
                                              name="Ann Lee", channel="chat"))
    assert status == 201, body
    due = dt.datetime(2026, 12, 1, 14, 30, tzinfo=UTC).timestamp()
    assert body == {"lead_id": "callbacks:cbr-0001-+12125550123", "campaign": "callbacks",
                    "topic": "billing", "skill": "billing", "phone": "+12125550123",
                    "next_at": due}
    lead = await store.get_lead(body["lead_id"])
    assert lead is not None
    assert (lead.priority, lead.next_at, lead.state) == (CALLBACK_PRIORITY, due, LeadState.READY)
    assert dict(lead.attributes) == {"topic": "billing", "skill": "billing", "source": SOURCE,
                                     "name": "Ann Lee", "channel": "chat",
                                     "requested_by": "web-form"}
    # Not dialable before the preferred time, dialable from it.
    assert await store.dialable_count("callbacks", NOW) == 0
    assert await store.dialable_count("callbacks", due) == 1


async def test_a_national_number_is_read_in_the_topics_campaign_region(
        client: TestClient[web.Request, web.Application]) -> None:
    status, body = await post(client, request(topic="sales", number="020 7946 0018"))
    assert status == 201, body
    assert (body["campaign"], body["phone"]) == ("uk-sales", "+442079460018")


async def test_two_requests_for_one_number_make_two_callbacks(
        client: TestClient[web.Request, web.Application], store: MemoryStore) -> None:
    first = await post(client, request())
    second = await post(client, request(preferred_time="2026-12-02T09:00:00-05:00"))
    assert first[0] == second[0] == 201
    assert first[1]["lead_id"] != second[1]["lead_id"]
    assert (await store.count_leads("callbacks"))["ready"] == 2


@pytest.mark.parametrize(("body", "status", "code"), [
    (request(topic="refunds"), 422, "unknown_topic"),
    (request(number="12"), 422, "bad_number"),
    (request(preferred_time="2026-11-30T12:00:00Z"), 422, "preferred_time_past"),
    (request(preferred_time="2027-06-01T12:00:00Z"), 422, "preferred_time_too_far"),
    (request(preferred_time="2026-12-01 15:30"), 422, "bad_preferred_time"),
    ({"topic": "billing"}, 400, "missing_field"),
    (request(extra="x"), 400, "unknown_field"),
    (["+12125550123"], 400, "malformed_body"),
])
async def test_a_bad_callback_request_gets_a_clear_error_and_stores_nothing(
        client: TestClient[web.Request, web.Application], store: MemoryStore,
        body: Any, status: int, code: str) -> None:
    before = snapshot(store)
    got, answer = await post(client, body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert answer["error"]["message"]
    assert snapshot(store) == before


async def test_a_number_on_the_do_not_call_list_is_refused_and_nothing_is_stored(
        client: TestClient[web.Request, web.Application], store: MemoryStore) -> None:
    await store.dnc_add("+12125550123", "callbacks")
    before = snapshot(store)
    status, body = await post(client, request(number="212-555-0123"))
    assert (status, body["error"]["code"]) == (409, "dnc")
    assert "+12125550123" in body["error"]["message"]
    assert snapshot(store) == before
    await store.dnc_remove("+12125550123", "callbacks")
    await store.dnc_add("+12125550123")  # the global list counts too
    assert (await post(client, request()))[1]["error"]["code"] == "dnc"


async def test_a_topic_whose_campaign_does_not_exist_is_refused_naming_it(
        store: MemoryStore) -> None:
    app = web.Application(middlewares=[errors_middleware, auth_middleware(TOKENS, no_lead)])
    rules = CallbackRules(topics={"tech": CallbackTopic("support", "tech")})
    IntakeApi(store, rules, lambda: NOW).routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        status, body = await post(client, request(topic="tech"))
    assert (status, body["error"]["code"]) == (409, "campaign_missing")
    assert "'support'" in body["error"]["message"]
    assert await store.count_leads("support") == {s.value: 0 for s in LeadState}


async def test_the_intake_role_may_request_callbacks_and_nothing_else(
        client: TestClient[web.Request, web.Application]) -> None:
    assert [key for key, rule in RULES.items() if Role.INTAKE in rule.roles] == \
        [("POST", "/callbacks")]
    async with client.get("/campaigns", headers=bearer(INTAKE_TOKEN)) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "forbidden"
    async with client.get("/campaigns", headers=bearer(ADMIN_TOKEN)) as resp:
        assert resp.status == 200
    assert (await post(client, request(), ADMIN_TOKEN))[0] == 201


async def test_an_agent_or_no_token_may_not_request_callbacks(
        client: TestClient[web.Request, web.Application], store: MemoryStore) -> None:
    before = snapshot(store)
    assert (await post(client, request(), AGENT_TOKEN))[0] == 403
    async with client.post("/callbacks", json=request()) as resp:
        assert resp.status == 401
    assert snapshot(store) == before

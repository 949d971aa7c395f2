"""Who may watch which console feed (the first WebSocket message's token), the pages'
settings, and the publisher's fan-out and back-pressure."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from dialer.auth import PUBLIC
from dialer.config import ApiToken, Role, Secret
from dialer.console.access import Close, Feed, Refusal, authorize, parse_hello
from dialer.console.feed import Snapshot, agent_welcome
from dialer.console.pages import ASSETS, STATIC, Pages, dispositions, render
from dialer.console.ws import MAX_QUEUED, Publisher
from dialer.core.campaign import DISPOSITIONS
from dialer.openapi import openapi_document


def token(role: Role, agent: str | None = None) -> ApiToken:
    return ApiToken(f"t-{role.value}-{agent}", Secret("x"), role, agent)


ADMIN, SUPERVISOR = token(Role.ADMIN), token(Role.SUPERVISOR)
AGENT_1, ANY_AGENT = token(Role.AGENT, "agent-1"), token(Role.AGENT)


def test_the_first_message_must_be_a_json_object_with_a_token() -> None:
    assert parse_hello('{"token": " abc "}') == "abc"
    for bad in ("abc", "[]", '{"token": ""}', '{"token": 5}', '{"tok": "abc"}', "null",
                '{"token": "' + "x" * 5000 + '"}', "[" * 100_000):
        refusal = parse_hello(bad)
        assert isinstance(refusal, Refusal), bad[:20]
        assert refusal.code is Close.BAD_HELLO


@pytest.mark.parametrize(("tok", "feed", "agent", "code"), [
    (ADMIN, Feed.AGENT, "agent-1", None),
    (ADMIN, Feed.SUPERVISOR, None, None),
    (SUPERVISOR, Feed.AGENT, "agent-1", None),
    (SUPERVISOR, Feed.SUPERVISOR, None, None),
    (AGENT_1, Feed.AGENT, "agent-1", None),
    (AGENT_1, Feed.AGENT, "agent-2", Close.FORBIDDEN),  # bound to another agent
    (AGENT_1, Feed.SUPERVISOR, None, Close.FORBIDDEN),
    (ANY_AGENT, Feed.AGENT, "agent-2", None),  # unbound: acts for any agent, as on the API
    (ANY_AGENT, Feed.SUPERVISOR, None, Close.FORBIDDEN),
    (None, Feed.AGENT, "agent-1", Close.UNAUTHORIZED),
    (None, Feed.SUPERVISOR, None, Close.UNAUTHORIZED),
])
def test_feeds_admit_the_roles_of_the_matching_api_reads(
        tok: ApiToken | None, feed: Feed, agent: str | None, code: Close | None) -> None:
    refusal = authorize(tok, feed, agent)
    assert (refusal.code if refusal else None) is code
    if refusal is not None:
        assert 0 < len(refusal.reason.encode()) <= 123  # fits a close frame


def test_a_forbidden_reason_names_the_agent_the_token_is_for() -> None:
    refusal = authorize(AGENT_1, Feed.AGENT, "agent-2")
    assert refusal is not None
    assert "agent-1 only" in refusal.reason


def test_the_disposition_buttons_are_the_apis_dispositions_in_phone_key_order() -> None:
    buttons = dispositions()
    assert {b["code"] for b in buttons} == DISPOSITIONS - {"callback"}
    assert [b["code"] for b in buttons][:3] == ["sale", "no_sale", "not_interested"]
    assert buttons[0] == {"code": "sale", "label": "Sale", "key": "1"}


def test_the_settings_cannot_close_their_script_element() -> None:
    out = render("<script>__DIALER_CONFIG__</script>", {"x": "</script><b>"})
    assert out == '<script>{"x":"\\u003c/script>\\u003cb>"}</script>'


def test_the_pages_and_their_files_are_all_there_with_the_settings_filled_in() -> None:
    pages = Pages()
    for html in pages.pages.values():
        assert "__DIALER_CONFIG__" not in html
        assert '"code":"sale"' in html
        for src in ("common.js",):
            assert f"/console/static/{src}" in html
    assert set(pages.assets) == set(ASSETS)
    assert all((STATIC / name).stat().st_size > 0 for name in ASSETS)


async def test_the_publisher_sends_a_welcome_then_only_changes() -> None:
    snaps = iter([Snapshot(1.0), Snapshot(2.0), Snapshot(3.0)])
    publisher = Publisher(lambda previous: next(snaps))
    sub = publisher.subscribe(Feed.AGENT, "agent-1")
    assert sub.queue.get_nowait() == agent_welcome("agent-1", Snapshot(1.0))[0]
    publisher.step()  # nothing changed for agent-1 (logged out in both)
    assert sub.queue.empty()
    publisher.unsubscribe(sub)
    assert not publisher.subscriptions


async def test_a_subscriber_that_falls_too_far_behind_is_flagged() -> None:
    publisher = Publisher(lambda previous: Snapshot(previous.now + 1))
    sub = publisher.subscribe(Feed.SUPERVISOR)
    for _ in range(MAX_QUEUED):
        sub.put([{"type": "filler"}])
    assert sub.overflowed.is_set()
    assert sub.queue.full()


def test_the_console_routes_are_public_and_documented_in_a_valid_openapi_document() -> None:
    doc = openapi_document(1024, 1024)
    validate(doc)
    for path in ("/console", "/wallboard", "/console/static/{name}", "/ws/agent/{aid}",
                 "/ws/supervisor"):
        op = doc["paths"][path]["get"]
        assert ("GET", path) in PUBLIC
        assert op["security"] == []
    feed = doc["paths"]["/ws/agent/{aid}"]["get"]
    assert '{"token": "<bearer token>"}' in feed["description"]
    assert "4403 forbidden" in feed["description"]
    assert "426" in feed["responses"]

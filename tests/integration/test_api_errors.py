"""Refused requests to the HTTP API: the right 4xx status, a stable error code, a message naming
the cause, and nothing changed. "Nothing changed" is checked on the whole Redis database the
server uses (every key, dumped), not just on what the request was about.

The server runs in-process against the real testbed (Asterisk for ARI, Redis) with a Redis
database, an ARI application name and a port of its own."""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from dialer.api import MAX_BODY
from dialer.auth import bearer_header
from dialer.config import Config, RedisConfig, ServerConfig
from dialer.server import Server
from dialer.testbed import Testbed

pytestmark = pytest.mark.testbed

DB_URL = "redis://127.0.0.1:16379/6"  # a database of its own, flushed per test
PORT = 18092
APP = "dialer-api"
CID = "api"  # the campaign every test starts with (two leads)
SEEDED = ("+12125550001", "+12125550002")

Snapshot = dict[bytes | str, bytes | None]


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, *, json_body: Any = None,
                   data: str | bytes | io.BytesIO | None = None,
                   content_type: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": content_type} if content_type else {}
        if json_body is not None:
            data, headers = json.dumps(json_body), {"Content-Type": "application/json"}
        async with self.session.request(method, self.base + path, data=data,
                                        headers=headers) as resp:
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        status, body = await self.call(method, path, **kw)
        assert 200 <= status < 300, (status, body)
        return body

    async def lead_phones(self, cid: str = CID) -> set[str]:
        leads = (await self.ok("GET", f"/campaigns/{cid}/leads?limit=1000"))["leads"]
        return {lead["phone"] for lead in leads}

    async def campaign_ids(self) -> list[str]:
        return sorted(c["id"] for c in (await self.ok("GET", "/campaigns"))["campaigns"])

    async def on_dnc(self, number: str) -> bool:
        return bool((await self.ok("GET", f"/dnc/{number}"))["dnc"])


def campaign(cid: str = CID, **kw: Any) -> dict[str, Any]:
    return {
        "id": cid, "name": "API errors", "dial_mode": "progressive",
        "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
        "safe_harbor": {"seller": "Acme", "callback_number": "+15550100", "optout_key": "9"},
        "window": {"start": "08:00", "end": "21:00"}, "ring_timeout": 15, **kw,
    }


@pytest.fixture
async def server(testbed: Testbed, config: Config) -> AsyncIterator[Server]:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", PORT),
                  ari=replace(config.ari, app=APP))
    async with Server(cfg) as srv:
        yield srv


@pytest.fixture
async def db() -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.from_url(DB_URL)  # bytes: DUMP values are binary
    yield client
    await client.aclose()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(headers=bearer_header(server.config.api)) as session:
        client = Api(session, server.url)
        await client.ok("POST", "/campaigns", json_body=campaign())
        await client.ok("POST", f"/campaigns/{CID}/leads", data="phone\n" + "\n".join(SEEDED),
                        content_type="text/csv")
        yield client


async def snapshot(db: aioredis.Redis) -> Snapshot:
    """Every key of the server's database with its serialized value."""
    return {key: await db.dump(key) for key in sorted(await db.keys("*"))}


def error_of(status: int, body: Any, expected_status: int, code: str) -> str:
    """The error message, after checking the status and the error's shape and code."""
    assert status == expected_status, (status, body)
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str), body
    assert message, body
    return message


# ------------------------------------------------------------------------------------- leads
async def test_bad_csv_rows_are_reported_by_row_and_reason_and_the_good_rows_kept(api: Api) -> None:
    csv = ("phone,first_name,priority,timezone\n"  # row 1
           "+12125550101,Ann,1,\n"                 # 2 good
           "not-a-number,Bob,,\n"                  # 3
           "+12125550102,Cy,high,\n"               # 4
           "+12125550103,Di,,Mars/Base\n"          # 5
           ",Ed,,\n"                               # 6
           "+12125550104,Flo,,,surplus\n"          # 7
           "+12125550105,Gus,,America/Chicago\n")  # 8 good
    status, report = await api.call("POST", f"/campaigns/{CID}/leads", data=csv,
                                    content_type="text/csv")
    assert status == 200, report
    assert (report["added"], report["merged"], report["rejected"]) == (2, 0, 5)
    reasons = {e["row"]: e["reason"] for e in report["errors"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert "'not-a-number' is not a phone number" in reasons[3]
    assert "priority 'high' is not an integer" in reasons[4]
    assert "unknown time zone 'Mars/Base'" in reasons[5]
    assert "empty" in reasons[6]
    assert "the row has 5 fields but the header has 4" in reasons[7]
    assert await api.lead_phones() == {*SEEDED, "+12125550101", "+12125550105"}
    gus = await api.ok("GET", f"/leads/{CID}:+12125550105")
    assert gus["timezones"] == ["America/Chicago"]
    assert gus["attributes"] == {"first_name": "Gus"}


async def test_a_file_of_only_bad_numbers_is_a_422_listing_each_and_stores_nothing(
    api: Api, db: aioredis.Redis
) -> None:
    before = await snapshot(db)
    csv = "phone\n+1212555\n+999 1234 5678\n12345\n+1 212 555 01 01 99\n"
    status, report = await api.call("POST", f"/campaigns/{CID}/leads", data=csv,
                                    content_type="text/csv")
    assert status == 422, report
    assert (report["added"], report["rejected"]) == (0, 4)
    reasons = {e["row"]: e["reason"] for e in report["errors"]}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "too short" in reasons[2]
    assert "no valid country code" in reasons[3] or "invalid country code" in reasons[3]
    assert "'12345'" in reasons[4]
    assert "too long" in reasons[5]
    assert await snapshot(db) == before


@pytest.mark.parametrize(("content_type", "body", "row", "needle"), [
    ("text/csv", "name,email\nAnn,ann@example.com\n", 1,
     "no phone column: expected one of phone, phone_number, number; found name, email"),
    ("application/json", '[{"name": "Ann"}, {"name": "Bob"}]', 0,
     "no phone field in any element"),
], ids=["csv", "json"])
async def test_a_lead_file_without_a_phone_column_is_refused_as_a_whole(
    api: Api, db: aioredis.Redis, content_type: str, body: str, row: int, needle: str
) -> None:
    before = await snapshot(db)
    status, report = await api.call("POST", f"/campaigns/{CID}/leads", data=body,
                                    content_type=content_type)
    assert status == 422, report
    assert report["added"] == 0
    assert [e["row"] for e in report["errors"]] == [row]
    assert needle in report["errors"][0]["reason"]
    assert await snapshot(db) == before


async def test_unsupported_content_type_for_leads_is_a_415_and_imports_nothing(
    api: Api, db: aioredis.Redis
) -> None:
    before = await snapshot(db)
    for content_type in ("application/xml", "application/vnd.ms-excel", "image/png"):
        status, body = await api.call("POST", f"/campaigns/{CID}/leads",
                                      data="phone\n+12125550111\n", content_type=content_type)
        message = error_of(status, body, 415, "unsupported_media_type")
        assert "text/csv or application/json" in message
    assert await snapshot(db) == before


async def test_request_body_over_the_size_limit_is_a_413_and_imports_nothing(
    api: Api, db: aioredis.Redis
) -> None:
    before = await snapshot(db)
    row = "+12125550123,padding-padding-padding-padding\n"
    body = "phone,note\n" + row * (MAX_BODY // len(row) + 1)
    assert len(body) > MAX_BODY
    status, reply = await api.call("POST", f"/campaigns/{CID}/leads",
                                   data=io.BytesIO(body.encode()), content_type="text/csv")
    assert str(MAX_BODY) in error_of(status, reply, 413, "too_large")
    status, reply = await api.call("POST", "/campaigns", data=io.BytesIO(b" " * (MAX_BODY + 1)),
                                   content_type="application/json")
    error_of(status, reply, 413, "too_large")
    assert await snapshot(db) == before


# ------------------------------------------------------------------------------- campaigns
@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/campaigns/nope", None),
    ("POST", "/campaigns/nope/start", None),
    ("POST", "/campaigns/nope/pause", None),
    ("POST", "/campaigns/nope/leads", "phone\n+12125550131\n"),
    ("GET", "/campaigns/nope/leads", None),
    ("POST", "/agents/agent-1001/login", {"campaign": "nope"}),
    ("POST", "/dnc", {"numbers": ["+12125550131"], "campaign": "nope"}),
], ids=["get", "start", "pause", "import", "list-leads", "agent-login", "dnc"])
async def test_unknown_campaign_is_a_404_with_its_code_and_changes_nothing(
    api: Api, db: aioredis.Redis, server: Server, method: str, path: str, body: Any
) -> None:
    before = await snapshot(db)
    if isinstance(body, str):
        status, reply = await api.call(method, path, data=body, content_type="text/csv")
    else:
        status, reply = await api.call(method, path, json_body=body)
    assert error_of(status, reply, 404, "unknown_campaign") == "unknown campaign 'nope'"
    assert await snapshot(db) == before
    assert server.dialer is not None
    assert "nope" not in server.dialer.runners
    assert not await api.on_dnc("+12125550131")


@pytest.mark.parametrize("body", ["{", '{"id": "x",}', "[1, 2]", '"a string"', "null",
                                  "{'id': 'x'}"])
async def test_malformed_json_body_is_a_400_and_creates_nothing(
    api: Api, db: aioredis.Redis, body: str
) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", "/campaigns", data=body, content_type="application/json")
    message = error_of(status, reply, 400, "malformed_body")
    assert "cannot parse the request body" in message or "must be an object" in message
    assert await api.campaign_ids() == [CID]
    assert await snapshot(db) == before


async def test_malformed_yaml_body_is_a_400_naming_the_line(api: Api, db: aioredis.Redis) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", "/campaigns", data="id: x\nname: [oops\n",
                                   content_type="application/yaml")
    assert "line" in error_of(status, reply, 400, "malformed_body")
    assert await snapshot(db) == before


@pytest.mark.parametrize(("change", "field"), [
    ({"ring_timeout": 5}, "ring_timeout"),
    ({"abandon_target": 0.1}, "abandon_target"),
    ({"connect_limit": 3}, "connect_limit"),
    ({"colour": "red"}, "colour"),
    ({"window": {"start": "25:00", "end": "21:00"}}, "window"),
    ({"window": {"start": "21:00", "end": "08:00"}}, "window"),
    ({"window": "all day"}, "window"),
    ({"dial_mode": "turbo"}, "dial_mode"),
    ({"trunk": "PJSIP/carrier"}, "trunk"),
    ({"safe_harbor": None}, "safe_harbor"),
    ({"retry": {"busy": -1}}, "retry.busy"),
    ({"id": "Has Spaces"}, "id"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v))
async def test_campaign_with_an_invalid_field_is_a_422_naming_it_and_nothing_is_stored(
    api: Api, db: aioredis.Redis, change: dict[str, Any], field: str
) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", "/campaigns", json_body=campaign("new-one") | change)
    assert error_of(status, reply, 422, "invalid_campaign").startswith(f"{field}: ")
    assert await api.campaign_ids() == [CID]
    assert await snapshot(db) == before


async def test_duplicate_campaign_is_a_409_and_the_first_one_is_kept(
    api: Api, db: aioredis.Redis
) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", "/campaigns",
                                   json_body=campaign(name="Impostor", dial_mode="predictive"))
    assert error_of(status, reply, 409, "campaign_exists") == f"campaign '{CID}' already exists"
    kept = await api.ok("GET", f"/campaigns/{CID}")
    assert (kept["name"], kept["dial_mode"]) == ("API errors", "progressive")
    assert await snapshot(db) == before


async def test_pausing_a_campaign_that_is_not_running_is_a_409(api: Api, db: aioredis.Redis) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", f"/campaigns/{CID}/pause")
    assert "is not running" in error_of(status, reply, 409, "conflict")
    assert (await api.ok("GET", f"/campaigns/{CID}"))["status"] == "created"
    assert await snapshot(db) == before


# ---------------------------------------------------------------------------------- agents
@pytest.mark.parametrize(("action", "body"), [
    ("disposition", {"disposition": "sale"}),
    ("ready", None),
    ("pause", {"reason": "lunch"}),
    ("logout", None),
])
async def test_agent_action_for_an_agent_not_logged_in_is_a_409(
    api: Api, db: aioredis.Redis, action: str, body: Any
) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", f"/agents/agent-1001/{action}", json_body=body)
    message = error_of(status, reply, 409, "agent_not_logged_in")
    assert message == "agent agent-1001 is not logged in"
    assert await snapshot(db) == before


@pytest.mark.parametrize("disposition", ["maybe", "", "SALE", 42, None, True])
async def test_bad_disposition_value_is_a_400_listing_the_allowed_ones(
    api: Api, db: aioredis.Redis, disposition: Any
) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", "/agents/agent-1001/disposition",
                                   json_body={"disposition": disposition})
    message = error_of(status, reply, 400, "bad_disposition")
    assert "sale" in message
    assert "callback" in message
    assert await snapshot(db) == before


@pytest.mark.parametrize("callback_at", [-60.0, 0.0, None, "tomorrow", True])
async def test_callback_not_in_the_future_is_a_400(
    api: Api, db: aioredis.Redis, callback_at: float | str | bool | None
) -> None:
    before = await snapshot(db)
    when = time.time() + callback_at if isinstance(callback_at, float) else callback_at
    status, reply = await api.call("POST", "/agents/agent-1001/disposition",
                                   json_body={"disposition": "callback", "callback_at": when})
    assert "future" in error_of(status, reply, 400, "bad_callback")
    assert await snapshot(db) == before


# ------------------------------------------------------------------------------------- DNC
async def test_dnc_bad_numbers_are_rejected_by_index_and_the_good_ones_added(api: Api) -> None:
    status, reply = await api.call("POST", "/dnc", json_body={
        "numbers": ["+12125550201", "call me", "+1212", "(212) 555-0202"]})
    # Some numbers were good, so the request went through (200) and says which were not.
    assert status == 200, reply
    assert reply["added"] == 2
    assert [(r["index"], r["number"]) for r in reply["rejected"]] == [(1, "call me"), (2, "+1212")]
    assert all(r["reason"] for r in reply["rejected"])
    assert await api.on_dnc("+12125550201")
    assert await api.on_dnc("+12125550202")  # the national form, normalised to E.164
    status, reply = await api.call("GET", "/dnc/+1212")
    assert error_of(status, reply, 400, "bad_number")


async def test_dnc_with_only_bad_numbers_is_a_422_and_adds_nothing(
    api: Api, db: aioredis.Redis
) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", "/dnc", json_body={"numbers": ["call me", "+1212"],
                                                                "campaign": CID})
    assert status == 422, reply
    assert reply["added"] == 0
    assert [r["index"] for r in reply["rejected"]] == [0, 1]
    assert await snapshot(db) == before


@pytest.mark.parametrize("body", [{}, {"numbers": []}, {"numbers": "+12125550201"}])
async def test_dnc_without_numbers_is_a_400(api: Api, db: aioredis.Redis, body: Any) -> None:
    before = await snapshot(db)
    status, reply = await api.call("POST", "/dnc", json_body=body)
    error_of(status, reply, 400, "missing_field")
    assert await snapshot(db) == before


# ------------------------------------------------- inputs that once escaped as 500s or bad counts


async def test_a_body_that_is_not_utf8_is_a_400_not_a_500(api: Api, db: aioredis.Redis) -> None:
    """api.py read_mapping: `await request.text()` is outside the try, so UnicodeDecodeError
    escapes to the generic handler (500)."""
    before = await snapshot(db)
    status, reply = await api.call("POST", "/campaigns", data='{"id": "caf\xe9"}'.encode("latin-1"),
                                   content_type="application/json")
    error_of(status, reply, 400, "malformed_body")
    assert await snapshot(db) == before


async def test_an_unknown_charset_is_a_4xx_not_a_500(api: Api) -> None:
    """api.py read_mapping: request.text() raises LookupError for `charset=bogus` (500)."""
    status, reply = await api.call("POST", "/campaigns", data="{}",
                                   content_type="application/json; charset=bogus")
    assert status in (400, 415), reply


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", "[" * 100_000), ("application/yaml", "a: " + "[" * 5_000)])
async def test_a_deeply_nested_body_is_a_400_not_a_500(api: Api, content_type: str,
                                                       body: str) -> None:
    """api.py read_mapping: json.loads / yaml.safe_load raise RecursionError, not caught."""
    status, reply = await api.call("POST", "/campaigns", data=body, content_type=content_type)
    error_of(status, reply, 400, "malformed_body")


@pytest.mark.parametrize("disposition", [["sale"], {"sale": 1}])
async def test_a_disposition_that_is_not_a_string_is_a_400_not_a_500(api: Api,
                                                                     disposition: Any) -> None:
    """api.py agent_disposition: `disposition not in DISPOSITIONS` (a frozenset) raises
    TypeError for a list or an object."""
    status, reply = await api.call("POST", "/agents/agent-1001/disposition",
                                   json_body={"disposition": disposition})
    error_of(status, reply, 400, "bad_disposition")


async def test_a_yaml_campaign_with_keys_of_mixed_types_is_a_422_not_a_500(api: Api) -> None:
    """specs.py parse_campaign: sorted(set(data) - TOP_KEYS) compares an int key with a str."""
    status, reply = await api.call("POST", "/campaigns", data="1: a\ncolour: red\n",
                                   content_type="application/yaml")
    error_of(status, reply, 422, "invalid_campaign")


@pytest.mark.parametrize("when", ["NaN", "Infinity"])
async def test_a_callback_time_that_is_not_finite_is_a_400(api: Api, when: str) -> None:
    """api.py agent_disposition: NaN passes `callback_at <= now` (every NaN comparison is False)
    and Infinity is "in the future"; the request then fails later for another reason (409)."""
    assert not math.isfinite(float(when))
    status, reply = await api.call(
        "POST", "/agents/agent-1001/disposition",
        data=f'{{"disposition": "callback", "callback_at": {when}}}', content_type="application/json")
    error_of(status, reply, 400, "bad_callback")


async def test_import_report_counts_every_row_received_including_repeated_numbers(api: Api) -> None:
    """api.py report_json: "received" is leads + errors, leaving out the rows merged into an
    earlier row of the same file (report.duplicates_merged), so received < added + merged."""
    report = await api.ok("POST", f"/campaigns/{CID}/leads",
                          data="phone\n+12125550301\n+12125550301\n+12125550301\n",
                          content_type="text/csv")
    assert (report["added"], report["merged"]) == (1, 2)
    assert report["received"] == 3

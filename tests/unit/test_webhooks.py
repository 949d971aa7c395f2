"""Signed webhooks: the signature scheme and its verification (`dialer.webhooks.signature`),
the `webhooks:` config section, and delivery (`dialer.webhooks.delivery`) to an in-process
receiver on 127.0.0.1 that checks every signature with `verify_signature` (no testbed)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from dialer.ari import Ari
from dialer.config import Secret, WebhookConfig, load_config, webhook_secret_variable
from dialer.core.model import Attempt, AttemptResult
from dialer.core.specs import parse_campaign
from dialer.errors import ConfigError
from dialer.metrics import Metrics
from dialer.runner import CampaignRunner, _Writes
from dialer.store.memory import MemoryStore
from dialer.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    SignatureProblem,
    signature_header,
    verify_signature,
)
from dialer.webhooks.delivery import Result, WebhookDispatcher, verdict

SECRET = "whsec-for-tests-0123456789"
BODY = b'{"event":"attempt.ended","id":"d-1"}'
T = 1_764_590_400  # 2026-12-01T12:00:00Z


def problem_of(header: str | None, body: bytes = BODY, *, secret: str = SECRET,
               now: float = T) -> SignatureProblem:
    with pytest.raises(SignatureError) as info:
        verify_signature(secret, header, body, now)
    assert str(info.value)  # a message a person can act on
    return info.value.problem


# ------------------------------------------------------------------------------- signatures
def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, T, BODY) == f"t={T},v1={expected}"


def test_a_genuine_recent_delivery_verifies() -> None:
    header = signature_header(SECRET, T, BODY)
    verify_signature(SECRET, header, BODY, T + 299)  # no SignatureError: it holds
    verify_signature(SECRET.encode(), header, BODY, T - 299)  # no SignatureError: it holds


def test_a_tampered_body_is_a_bad_signature() -> None:
    header = signature_header(SECRET, T, BODY)
    assert problem_of(header, BODY.replace(b"d-1", b"d-2")) is SignatureProblem.BAD_SIGNATURE
    # A re-serialised body (parsed, dumped again) is a different body too: verify the raw one.
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert problem_of(header, reserialised) is SignatureProblem.BAD_SIGNATURE


def test_a_wrong_secret_is_a_bad_signature() -> None:
    header = signature_header("another-secret-0123456789", T, BODY)
    assert problem_of(header) is SignatureProblem.BAD_SIGNATURE


def test_a_changed_timestamp_is_a_bad_signature() -> None:
    header = signature_header(SECRET, T, BODY).replace(f"t={T}", f"t={T + 60}")
    assert problem_of(header, now=T + 60) is SignatureProblem.BAD_SIGNATURE


def test_a_stale_delivery_is_too_old_and_one_from_the_future_is_refused_too() -> None:
    header = signature_header(SECRET, T, BODY)
    assert problem_of(header, now=T + 301) is SignatureProblem.TOO_OLD
    assert problem_of(header, now=T - 301) is SignatureProblem.FROM_THE_FUTURE
    verify_signature(SECRET, header, BODY, T + 3000, tolerance=3600)  # no SignatureError: it holds


@pytest.mark.parametrize("header", [None, "", "   "])
def test_an_unsigned_request_is_refused_as_missing_the_header(header: str | None) -> None:
    assert problem_of(header) is SignatureProblem.MISSING_HEADER


@pytest.mark.parametrize("header", [
    "sha256=abcdef",  # another scheme's header
    "t=now,v1=abc",
    "t=-5,v1=abc",
    f"t={T}",  # no signature
    "v1=abc",  # no timestamp
    f"t={T},t={T},v1=abc",
    f"t={T};v1=abc",
    "t=" + "9" * 20 + ",v1=abc",
    f"t={T},v1=" + "a" * 5000,
])
def test_a_malformed_header_is_refused_as_malformed(header: str) -> None:
    assert problem_of(header) is SignatureProblem.MALFORMED_HEADER


def test_any_of_several_signatures_may_match_while_a_secret_is_rotated() -> None:
    old = signature_header("old-secret-0123456789", T, BODY)
    new = signature_header(SECRET, T, BODY)
    header = f"{old},v1={new.split('v1=')[1]},v2=future-scheme"
    verify_signature(SECRET, header, BODY, T)  # no SignatureError: it holds


@pytest.mark.parametrize(("status", "result"), [
    (200, Result.DELIVERED), (204, Result.DELIVERED),
    (None, Result.RETRIED), (408, Result.RETRIED), (429, Result.RETRIED),
    (500, Result.RETRIED), (503, Result.RETRIED),
    (301, Result.REJECTED), (400, Result.REJECTED), (401, Result.REJECTED),
    (404, Result.REJECTED), (410, Result.REJECTED),
])
def test_a_tries_status_decides_whether_it_is_delivered_retried_or_rejected(
        status: int | None, result: Result) -> None:
    assert verdict(status) is result


# ----------------------------------------------------------------------------------- config
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dialer.yaml"
    path.write_text("ari: {password: secret-for-tests}\n" + text)
    return path


def test_webhooks_are_configured_with_secrets_from_the_environment_winning(
        tmp_path: Path) -> None:
    path = write(tmp_path, """
webhooks:
  - {name: crm, url: "https://crm.example.com/hooks/dialer/", secret: file-secret-0123456789}
  - name: data-lake
    url: http://127.0.0.1:9000/in
    events: [attempt.ended]
    timeout: 2
    max_tries: 3
""")
    assert webhook_secret_variable("data-lake") == "DIALER_WEBHOOK_SECRET_DATA_LAKE"
    cfg = load_config(path, env={"DIALER_WEBHOOK_SECRET_DATA_LAKE": "env-secret-0123456789"})
    crm, lake = cfg.webhooks
    assert (crm.name, crm.url, crm.secret.value, crm.events, crm.timeout, crm.max_tries) == (
        "crm", "https://crm.example.com/hooks/dialer/", "file-secret-0123456789",
        ("attempt.ended",), 5.0, 6)
    assert (lake.secret.value, lake.timeout, lake.max_tries) == ("env-secret-0123456789", 2.0, 3)
    assert "secret-0123456789" not in repr(cfg)


@pytest.mark.parametrize(("hook", "needle"), [
    ("{name: crm, url: 'https://x.example/h'}",
     "'secret' must be 16-512 characters (set it in the file or in DIALER_WEBHOOK_SECRET_CRM)"),
    ("{name: crm, url: 'https://x.example/h', secret: short}", "'secret' must be 16-512"),
    ("{name: crm, url: 'ftp://x.example/h', secret: s-0123456789abcdef}", "'url' must be"),
    ("{name: crm, url: 'https://x.example:99999/h', secret: s-0123456789abcdef}",
     "'url' must be"),
    ("{name: crm, url: 'https://x.example/h', secret: s-0123456789abcdef, events: [call.done]}",
     "'events' must be a list of: attempt.ended"),
    ("{name: 'c r m', url: 'https://x.example/h', secret: s-0123456789abcdef}",
     "'name' must match"),
    ("{name: crm, url: 'https://x.example/h', secret: s-0123456789abcdef, retries: 3}",
     "unknown key 'retries'"),
    ("{name: crm, url: 'https://x.example/h', secret: s-0123456789abcdef, timeout: 0}",
     "'timeout' must be above 0"),
])
def test_a_bad_webhook_is_a_config_error_that_never_shows_the_secret(
        tmp_path: Path, hook: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"webhooks:\n  - {hook}\n"), env={})
    assert needle in str(info.value)
    assert "s-0123456789abcdef" not in str(info.value)


def test_two_webhooks_reading_one_secret_variable_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIALER_WEBHOOK_SECRET_CRM_1"):
        load_config(write(tmp_path, """
webhooks:
  - {name: crm-1, url: 'https://x.example/h', secret: s-0123456789abcdef}
  - {name: crm_1, url: 'https://x.example/h', secret: s-0123456789abcdef}
"""), env={})


# ------------------------------------------------------------------- delivery over loopback
@dataclass
class Receiver:
    """An in-process webhook receiver that verifies every delivery as a real one would."""

    secret: str = SECRET
    # Per try, in order: the status to answer (after verifying); the last one repeats.
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: list[float] = field(default_factory=list)  # seconds to stall, per try
    gate: asyncio.Event | None = None  # when set: wait for it before answering
    seen: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        index = len(self.seen) + len(self.refused)
        if self.gate is not None:
            await self.gate.wait()
        if index < len(self.delay):
            await asyncio.sleep(self.delay[index])
        try:
            verify_signature(self.secret, request.headers.get(SIGNATURE_HEADER), body,
                             now=time.time())
        except SignatureError as exc:
            self.refused.append(exc.problem.value)
            return web.json_response({"error": str(exc)}, status=400)
        self.seen.append({"event": request.headers[EVENT_HEADER],
                          "delivery": request.headers[DELIVERY_HEADER],
                          "signature": request.headers[SIGNATURE_HEADER],
                          "body": json.loads(body)})
        status = self.statuses[min(index, len(self.statuses) - 1)]
        return web.json_response({}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rx = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/dialer", rx.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield rx, str(server.make_url("/hooks/dialer"))
    finally:
        await server.close()


def hook(url: str, **changes: Any) -> WebhookConfig:
    return WebhookConfig(name=changes.pop("name", "crm"), url=url,
                         secret=Secret(changes.pop("secret", SECRET)), **changes)


def attempt(aid: str = "c-spring-0001", **changes: Any) -> Attempt:
    fields: dict[str, Any] = {
        "id": aid, "campaign_id": "spring", "lead_id": "spring:+12125550123",
        "phone": "+12125550123", "originated_at": T - 60.0, "answered_at": T - 50.0,
        "connected_at": T - 49.0, "ended_at": T - 1.0, "result": AttemptResult.TALKED,
        "cause": 16, "agent_id": "agent-1001", **changes}
    return Attempt(**fields)


class Counts:
    def __init__(self) -> None:
        self.metrics = Metrics(CollectorRegistry())

    def __getitem__(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value("dialer_webhook_deliveries_total",
                                                       {"result": result})
        assert value is not None, result
        return value


async def until(check: Callable[[], bool], what: str, deadline: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def dispatcher(counts: Counts, *hooks: WebhookConfig, **kwargs: Any) -> WebhookDispatcher:
    return WebhookDispatcher(hooks, counts.metrics.webhook_deliveries,
                             retry_first=0.02, retry_max=0.05, **kwargs)


async def test_an_ended_attempt_is_posted_signed_with_its_record(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    counts = Counts()
    hooks = dispatcher(counts, hook(url))
    await hooks.start()
    try:
        hooks.attempt_ended(attempt())
        await until(lambda: counts["delivered"] == 1, "the delivery")
    finally:
        await hooks.close()
    assert rx.refused == []
    [got] = rx.seen
    assert got["event"] == "attempt.ended"
    assert got["body"]["id"] == got["delivery"]
    assert got["body"]["event"] == "attempt.ended"
    record = got["body"]["data"]["attempt"]
    assert record["id"] == "c-spring-0001"
    assert (record["result"], record["cause"], record["agent_id"]) == ("talked", 16, "agent-1001")
    assert record["ended_at"] == T - 1.0
    assert record["disposition"] is None
    assert (counts["retried"], counts["failed"], counts["dropped"]) == (0, 0, 0)


async def test_a_failing_receiver_is_retried_with_the_same_delivery_id_until_it_answers(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.statuses = [503, 500, 204]
    counts = Counts()
    hooks = dispatcher(counts, hook(url))
    await hooks.start()
    try:
        hooks.attempt_ended(attempt())
        await until(lambda: counts["delivered"] == 1, "the third try")
    finally:
        await hooks.close()
    assert len(rx.seen) == 3
    assert len({s["delivery"] for s in rx.seen}) == 1  # one delivery, three tries
    assert rx.seen[0]["body"] == rx.seen[2]["body"]
    assert counts["retried"] == 2


async def test_a_receiver_that_never_answers_in_time_is_given_up_after_max_tries(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.delay = [1.0, 1.0, 1.0]
    counts = Counts()
    hooks = dispatcher(counts, hook(url, timeout=0.1, max_tries=3))
    await hooks.start()
    try:
        hooks.attempt_ended(attempt())
        await until(lambda: counts["failed"] == 1, "giving up")
    finally:
        await hooks.close(drain=0)
    assert (counts["retried"], counts["delivered"]) == (2, 0)
    assert hooks.pending() == 0


async def test_a_receiver_with_another_secret_rejects_the_delivery_and_it_is_not_retried(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.secret = "the-receivers-own-secret-0000"
    counts = Counts()
    hooks = dispatcher(counts, hook(url))
    await hooks.start()
    try:
        hooks.attempt_ended(attempt())
        await until(lambda: counts["rejected"] == 1, "the rejection")
        await asyncio.sleep(0.1)  # a retry would come within this
    finally:
        await hooks.close()
    assert rx.refused == ["bad_signature"]
    assert (counts["retried"], counts["delivered"]) == (0, 0)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_receiver_is_retried_then_failed() -> None:
    counts = Counts()
    dead = f"http://127.0.0.1:{closed_port()}/hooks"  # connection refused
    hooks = dispatcher(counts, hook(dead, max_tries=2))
    await hooks.start()
    try:
        hooks.attempt_ended(attempt())
        await until(lambda: counts["failed"] == 1, "giving up on the dead receiver")
    finally:
        await hooks.close()
    assert counts["retried"] == 1


async def test_the_queue_is_bounded_and_publishing_never_waits_for_the_receiver(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.gate = asyncio.Event()  # the receiver hangs until released
    counts = Counts()
    hooks = dispatcher(counts, hook(url), max_pending=3, workers=1)
    await hooks.start()
    try:
        for i in range(10):
            hooks.attempt_ended(attempt(f"c-spring-{i:04d}"))  # returns at once
        assert counts["dropped"] == 7
        assert hooks.pending() == 3
        rx.gate.set()
        await until(lambda: counts["delivered"] == 3, "the three queued deliveries")
    finally:
        await hooks.close()
    assert sorted(s["body"]["data"]["attempt"]["id"] for s in rx.seen) == \
        ["c-spring-0000", "c-spring-0001", "c-spring-0002"]


async def test_each_receiver_gets_only_the_events_it_subscribed_to(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    counts = Counts()
    hooks = dispatcher(counts, hook(url), hook(url, name="other", events=("call.other",)))
    assert hooks.publish("attempt.ended", {"attempt": {}}) == 0  # not started: dropped
    assert counts["dropped"] == 1
    await hooks.start()
    try:
        assert hooks.publish("attempt.ended", {"attempt": {}}) == 1
        await until(lambda: counts["delivered"] == 1, "the delivery")
    finally:
        await hooks.close()
    assert len(rx.seen) == 1


async def test_deliveries_still_waiting_for_a_retry_at_shutdown_are_dropped_and_counted(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.statuses = [503]
    counts = Counts()
    hooks = WebhookDispatcher((hook(url),), counts.metrics.webhook_deliveries,
                              retry_first=60.0, retry_max=60.0)
    await hooks.start()
    hooks.attempt_ended(attempt())
    await until(lambda: counts["retried"] == 1, "the first failed try")
    await hooks.close(drain=0.1)
    assert counts["dropped"] == 1
    assert hooks.pending() == 0


async def test_after_close_nothing_is_sent_and_publishing_drops(
        receiver: tuple[Receiver, str]) -> None:
    _, url = receiver
    counts = Counts()
    hooks = dispatcher(counts, hook(url))
    await hooks.start()
    await hooks.close()
    hooks.attempt_ended(attempt())
    assert counts["dropped"] == 1


# ---------------------------------------------------------------- the runner's hook point
async def test_the_runner_tells_listeners_of_ended_attempts_once_they_are_on_record() -> None:
    spec = parse_campaign({"id": "spring", "trunk": "PJSIP/{number}@carrier",
                           "caller_id": "Acme <+15550100>",
                           "safe_harbor": {"seller": "Acme", "callback_number": "+15550100"}})
    store = MemoryStore()
    runner = CampaignRunner(spec, cast(Ari, object()), store,
                            metrics=Metrics(CollectorRegistry()))
    told: list[tuple[str, bool]] = []

    def listener(ended: Attempt) -> None:
        told.append((ended.id, ended.id in store.data.attempts))

    def broken(ended: Attempt) -> None:
        raise RuntimeError("a listener's bug")

    runner.on_attempt_ended.extend([broken, listener])
    writes = _Writes()
    writes.attempts["c-spring-open"] = attempt("c-spring-open", ended_at=None, result=None)
    writes.attempts["c-spring-done"] = attempt("c-spring-done")
    assert await runner._write(writes) == frozenset()  # written, nothing refused
    assert told == [("c-spring-done", True)]  # only the ended one, after it was stored

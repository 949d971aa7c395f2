"""The agent console and the wallboard in a real browser (Debian's chromium, headless, driven by
Playwright) against the real server on the testbed: a simulated customer answers, is bridged to
the sipp agent phone, the screen pop shows the lead, the agent sets the disposition with a click
and the attempt records it. Screenshots of every step go to test-artifacts/console/.

The server runs in-process with a Redis database, an ARI application name and a port of its
own, and uses only the agent phones agent-1019 and agent-1020, so it can share the testbed with
other test runs; at the end it hangs up only its own channels and bridges. Every wait is for a
condition with a generous deadline (a loaded 2-core machine), never a fixed sleep."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, async_playwright, expect

from dialer.config import ApiConfig, ApiToken, Config, RedisConfig, Role, Secret, ServerConfig
from dialer.runner import agent_bridge
from dialer.server import Server
from dialer.testbed import Testbed
from tests.integration.conftest import eventually

pytestmark = pytest.mark.testbed

# DB 11 is taken by test_openapi and test_prometheus; this one is free (0-15 exist).
DB_URL = "redis://127.0.0.1:16379/12"  # a database of its own, flushed per test
PORT = 18098
APP = f"dialer-console-test-{os.getpid()}"  # one event WebSocket per app name
CID = "console"
AGENT, OTHER = "agent-1019", "agent-1020"  # the testbed's sipp phones answer by themselves
DEADLINE = 45.0  # seconds, for every wait
MS = DEADLINE * 1000
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (scripts/bootstrap.sh installs it)
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "console"

ADMIN_T, SUPERVISOR_T = "console-admin-secret", "console-supervisor-secret"
AGENT_T, OTHER_T = "console-agent-1019-secret", "console-agent-1020-secret"
TOKENS = ApiConfig((
    ApiToken("console-admin", Secret(ADMIN_T), Role.ADMIN),
    ApiToken("console-supervisor", Secret(SUPERVISOR_T), Role.SUPERVISOR),
    ApiToken("console-agent-1019", Secret(AGENT_T), Role.AGENT, AGENT),
    ApiToken("console-agent-1020", Secret(OTHER_T), Role.AGENT, OTHER),
))



# -------------------------------------------------------------------------------- fixtures
@pytest.fixture
async def server(testbed: Testbed, config: Config) -> AsyncIterator[Server]:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(DB_URL), server=ServerConfig("127.0.0.1", PORT),
                  ari=replace(config.ari, app=APP), api=TOKENS)
    async with Server(cfg) as srv:
        try:
            yield srv
        finally:
            await hang_up_ours(srv)


async def hang_up_ours(server: Server) -> None:
    """This server's customer channels, its agents' phone legs and its agent bridges."""
    prefixes = (f"c-{CID}-", f"agent-{AGENT}-", f"agent-{OTHER}-")
    for channel in await server.ari.rest.list_channels():
        if channel.id.startswith(prefixes):
            await server.ari.rest.hangup(channel.id)
    for bridge in await server.ari.rest.list_bridges():
        if bridge.id.startswith(f"agentbr-{APP}-"):
            await server.ari.rest.destroy_bridge(bridge.id)


@pytest.fixture
def chromium_path() -> Path:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium " \
                              "(scripts/bootstrap.sh does)"
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # root: Chromium's sandbox refuses
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(chromium_path), headless=True,
                                            args=args)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


class Shots:
    """Numbered screenshots of one test, kept as artifacts."""

    def __init__(self, page: Page, test: str) -> None:
        self.page, self.n = page, 0
        self.folder = SHOTS / test
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)

    async def take(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, expect_status: int, token: str = ADMIN_T,
                   **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        async with self.session.request(method, self.base + path, headers=headers,
                                        **kw) as resp:
            body = await resp.json()
            assert resp.status == expect_status, (method, path, resp.status, body)
            return body

    async def campaign(self) -> None:
        await self.call("POST", "/campaigns", 201, json={
            "id": CID, "name": "Console drive", "dial_mode": "progressive", "amd": "off",
            "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
            "safe_harbor": {"seller": "Acme", "callback_number": "+15550100"},
            "window": {"start": "00:00", "end": "23:59"}, "ring_timeout": 15,
            "wrapup": 600,  # the agent stays in wrap-up until the disposition click
            "retry": {"no_answer": 900, "max_attempts": 2}})
        await self.call("POST", f"/campaigns/{CID}/start", 200)

    async def leads(self, csv: str) -> None:
        report = await self.call("POST", f"/campaigns/{CID}/leads", 200, data=csv,
                                 headers={"Content-Type": "text/csv"})
        assert report["rejected"] == 0, report

    async def attempts(self, lead_id: str) -> list[dict[str, Any]]:
        return list((await self.call("GET", f"/leads/{lead_id}/attempts", 200))["attempts"])


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url)


async def bridged(server: Server, agent: str) -> bool:
    """The agent's bridge holds their phone and a customer (Asterisk's view, not ours)."""
    for bridge in await server.ari.rest.list_bridges():
        if bridge.id == agent_bridge(APP, agent):
            return len(bridge.channels) == 2 and any(c.startswith(f"c-{CID}-")
                                                     for c in bridge.channels)
    return False


async def state_is(page: Page, state: str) -> None:
    await expect(page.locator("#state")).to_have_text(state, timeout=MS)


# ----------------------------------------------------------------------------------- tests
async def test_an_agent_logs_in_gets_a_screen_pop_on_a_bridged_call_and_sets_dispositions(
    server: Server, api: Api, page: Page,
) -> None:
    shots = Shots(page, "agent-call")
    await api.campaign()
    await page.goto(f"{server.url}/console?agent={AGENT}&campaign={CID}")
    await page.fill("#token", AGENT_T)
    await page.locator("#token").dispatch_event("change")
    await expect(page.locator("#feed-status")).to_have_text("live", timeout=MS)
    await state_is(page, "LOGGED_OUT")
    await shots.take("start")

    await page.click("#login")
    await state_is(page, "READY")  # the sipp phone answered: nailed up in the agent's bridge
    await expect(page.locator("#state-campaign")).to_have_text(CID)
    await shots.take("logged-in")

    # Paused while the leads go in, so the first call waits for the click on Ready.
    await page.select_option("#pause-reason", "coaching")
    await page.click("#pause")
    await state_is(page, "PAUSED")
    await expect(page.locator("#pause-shown")).to_have_text("coaching")
    await shots.take("paused")
    # +1 212 555 0xxx: answers after 1-3 s, talks 5-10 s, hangs up.
    await api.leads("phone,first_name,last_name,plan,city\n"
                    "+12125550101,Ann,Lee,gold,Albany\n")

    await page.click("#ready")
    call = page.locator("#call")
    await expect(call).to_be_visible(timeout=MS)
    await expect(page.locator("#call-name")).to_have_text("Ann Lee", timeout=MS)
    await expect(page.locator("#call-phone")).to_have_text("+•••••••0101")
    await expect(page.locator("#call-campaign")).to_have_text(CID)
    await expect(page.locator("main")).not_to_contain_text("2125550101")  # masked everywhere
    attrs = page.locator("#call-attrs")
    await expect(attrs).to_contain_text("plan")
    await expect(attrs).to_contain_text("gold")
    await expect(attrs).to_contain_text("Albany")
    await state_is(page, "ON_CALL")
    await eventually(lambda: bridged(server, AGENT), "the customer in the agent's bridge")
    await expect(page.locator("#call-stage")).to_have_text("talking")
    await expect(page.locator("button.disposition").first).to_be_disabled()  # not yet
    await shots.take("screen-pop-on-call")

    await state_is(page, "WRAP_UP")  # the customer hung up
    await expect(page.locator("#call-ended")).to_be_visible()
    await expect(page.locator("#call-name")).to_have_text("Ann Lee")  # still on screen
    await shots.take("wrap-up")
    await page.click("button.disposition[value=sale]")
    await expect(page.locator("#notice")).to_have_text("disposition 'sale' saved", timeout=MS)
    await state_is(page, "READY")
    await expect(call).to_be_hidden()

    async def sale() -> bool:
        attempts = await api.attempts(f"{CID}:+12125550101")
        return [(a["disposition"], a["agent_id"], a["result"]) for a in attempts] == [
            ("sale", AGENT, "talked")]
    await eventually(sale, "the attempt to have the disposition 'sale'")
    await shots.take("disposition-saved")

    # A second customer: the agent schedules a callback for tomorrow at 10:30 (the browser's
    # local time).
    await api.leads("phone,first_name\n+12125550202,Bob\n")
    await expect(page.locator("#call-name")).to_have_text("Bob", timeout=MS)
    await state_is(page, "WRAP_UP")
    when = await page.evaluate("""() => {
        const d = new Date(Date.now() + 86400000);
        const p = (n) => String(n).padStart(2, "0");
        return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T10:30";
    }""")
    await page.fill("#callback-at", when)
    await shots.take("callback-chosen")
    await page.click("#callback")
    await expect(page.locator("#notice")).to_have_text("callback scheduled", timeout=MS)
    expected_at = await page.evaluate("(v) => new Date(v).getTime() / 1000", when)

    async def callback() -> Any:
        lead = await api.call("GET", f"/leads/{CID}:+12125550202", 200)
        attempts = await api.attempts(f"{CID}:+12125550202")
        return attempts and attempts[-1]["disposition"] == "callback" and lead
    lead = await eventually(callback, "the callback disposition")
    assert lead["state"] == "ready"
    assert lead["next_at"] == pytest.approx(expected_at)
    await state_is(page, "READY")
    await shots.take("callback-saved")

    await page.click("#logout")
    await state_is(page, "LOGGED_OUT")
    await shots.take("logged-out")
    assert len(list(shots.folder.glob("*.png"))) == shots.n


async def test_the_wallboard_shows_agents_and_live_campaign_figures_to_a_supervisor(
    server: Server, api: Api, page: Page,
) -> None:
    shots = Shots(page, "wallboard")
    await api.campaign()
    await api.call("POST", f"/agents/{OTHER}/login", 202, json={"campaign": CID})
    await page.goto(f"{server.url}/wallboard")
    await page.fill("#token", SUPERVISOR_T)
    await page.click("#connect")
    await expect(page.locator("#feed-status")).to_have_text("live", timeout=MS)
    row = page.locator(f"#agents tr[data-agent='{OTHER}']")
    await expect(row.locator(".state")).to_have_text("READY", timeout=MS)
    await expect(row).to_contain_text(CID)
    campaign = page.locator(f"#campaigns tr[data-campaign='{CID}']")
    await expect(campaign).to_contain_text("running", timeout=MS)
    await shots.take("ready")

    await api.call("POST", f"/agents/{OTHER}/pause", 202, json={"reason": "lunch"})
    await expect(row.locator(".state")).to_have_text("PAUSED", timeout=MS)
    await expect(row).to_contain_text("lunch")
    await shots.take("paused")

    # +1 212 555 8xxx answers and holds: one call in flight, talking to the agent.
    await api.leads("phone,first_name\n+12125558301,Cy\n")
    await api.call("POST", f"/agents/{OTHER}/ready", 202)
    await expect(row.locator(".state")).to_have_text("ON_CALL", timeout=MS)
    cells = campaign.locator("td")
    await expect(cells.nth(3)).to_have_text("1", timeout=MS)  # calls
    await expect(cells.nth(6)).to_have_text("1", timeout=MS)  # talking
    await expect(cells.nth(11)).to_contain_text("ON_CALL 1")
    await eventually(lambda: bridged(server, OTHER), "the customer in the agent's bridge")
    await shots.take("on-call")


async def test_a_wrong_token_on_the_console_is_shown_and_changes_nothing(
    server: Server, api: Api, page: Page,
) -> None:
    shots = Shots(page, "bad-token")
    await api.campaign()
    await page.goto(f"{server.url}/console?agent={AGENT}&campaign={CID}")
    await page.fill("#token", "not-a-token")
    await page.locator("#token").dispatch_event("change")
    await expect(page.locator("#error")).to_have_text(
        "feed refused (4401): unknown or revoked token", timeout=MS)
    await expect(page.locator("#feed-status")).to_have_text("refused")
    await page.click("#login")
    await expect(page.locator("#error")).to_contain_text("401 unauthorized", timeout=MS)
    await shots.take("refused")
    await api.call("GET", f"/agents/{AGENT}", 404)  # the login did not happen

    # agent-1019's own token, on agent-1020's console: the feed and the API both refuse.
    await page.fill("#token", AGENT_T)
    await page.fill("#agent", OTHER)
    await page.press("#agent", "Tab")  # the agent id is taken when the field is left
    await expect(page.locator("#error")).to_have_text(
        f"feed refused (4403): token console-agent-1019 acts for agent {AGENT} only",
        timeout=MS)
    await page.click("#login")
    await expect(page.locator("#error")).to_contain_text("403 forbidden", timeout=MS)
    await shots.take("other-agent")
    await api.call("GET", f"/agents/{OTHER}", 404)


async def feed_close(server: Server, path: str, hello: str | None) -> tuple[int | None, str]:
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(server.url.replace("http", "ws") + path) as ws:
        if hello is not None:
            await ws.send_str(hello)
        msg = await ws.receive(timeout=DEADLINE)
        assert msg.type is aiohttp.WSMsgType.CLOSE, msg
        return ws.close_code, str(msg.extra or "")


@pytest.mark.parametrize(("path", "hello", "code", "reason"), [
    (f"/ws/agent/{AGENT}", '{"token": "wrong"}', 4401, "unknown or revoked token"),
    (f"/ws/agent/{OTHER}", f'{{"token": "{AGENT_T}"}}', 4403,
     f"token console-agent-1019 acts for agent {AGENT} only"),
    ("/ws/supervisor", f'{{"token": "{AGENT_T}"}}', 4403,
     "the agent role may not watch the supervisor feed"),
    ("/ws/supervisor", "Bearer " + SUPERVISOR_T, 4400,
     'first message must be JSON {"token": "..."}'),
])
async def test_a_feed_refused_is_closed_with_a_code_and_a_reason(
    server: Server, path: str, hello: str, code: int, reason: str,
) -> None:
    assert await feed_close(server, path, hello) == (code, reason)


async def test_a_feed_admits_its_agent_and_supervisors_and_sends_the_state_first(
    server: Server,
) -> None:
    for path, token, first in ((f"/ws/agent/{AGENT}", AGENT_T, "state"),
                               (f"/ws/agent/{AGENT}", SUPERVISOR_T, "state"),
                               ("/ws/supervisor", SUPERVISOR_T, "agents"),
                               ("/ws/supervisor", ADMIN_T, "agents")):
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(server.url.replace("http", "ws") + path) as ws:
            await ws.send_json({"token": token})
            welcome = await ws.receive_json(timeout=DEADLINE)
            assert welcome["type"] == "welcome", welcome
            message = await ws.receive_json(timeout=DEADLINE)
            assert message["type"] == first, message


async def test_a_feed_opened_as_plain_http_is_a_426_and_the_pages_need_no_token(
    server: Server,
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/ws/supervisor") as resp:
            assert resp.status == 426
            assert (await resp.json())["error"]["code"] == "upgrade_required"
        for path in ("/console", "/wallboard"):
            async with session.get(server.url + path) as resp:
                assert resp.status == 200
                assert resp.content_type == "text/html"
                assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        async with session.get(f"{server.url}/console/static/console.js") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/javascript"
        async with session.get(f"{server.url}/console/static/pages.py") as resp:
            assert resp.status == 404

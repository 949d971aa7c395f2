"""The Grafana dashboard against a real Prometheus scraping a real dialer.

The dialer server runs in-process (its own Redis database, ARI app and port) and works a short
progressive campaign on the testbed: two agents on sipp phones, leads that talk, are busy,
reject, are unallocated, and one that answers and holds (so a call is live while the queries
run). A real `prometheus` (the Debian package, installed with apt like the testbed's packages)
scrapes the dialer every second; then every query of `docker/grafana/dashboards/dialer.json`
goes through Prometheus' HTTP API and must return data. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from dialer.config import Config, RedisConfig, ServerConfig
from dialer.core.agent import AgentState
from dialer.core.model import Lead
from dialer.core.specs import parse_campaign
from dialer.runner import agent_bridge
from dialer.server import Server
from dialer.testbed import Testbed
from tests.integration.conftest import eventually as wait_until

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docker/grafana/dashboards/dialer.json"
DB_URL = "redis://127.0.0.1:16379/11"  # a database of its own, flushed per test
# One campaign id per test: counters live as long as their registry, and with the process
# default registry (`dialer.metrics.METRICS`) that is the test session.
CAMPAIGN_PREFIX = "prom"
AGENTS = ("agent-1017", "agent-1018")  # phones no other test logs in (bridges are per agent)
# simcust-pstn: the digit after 555 picks the behaviour (asterisk_conf/testbed/extensions.conf).
ENDING = {"+12125550101": "talked", "+12125551101": "busy", "+12125553101": "rejected",
          "+12125554101": "unallocated"}
HOLDS = "+12125558101"  # answers and stays on the line: connected to an agent till the end
DEADLINE = 60.0
# Dashboard variables as Grafana expands them: "All" campaigns ($campaign's allValue is ".*");
# $__rate_interval is max(4 x scrape interval, step + scrape interval), 30 s is a typical one.
VARIABLES = {"$__rate_interval": "30s", "$campaign": ".*"}


async def eventually(check: Callable[[], Awaitable[Any]], what: str,
                     deadline: float = DEADLINE) -> Any:
    return await wait_until(check, what, deadline)  # Prometheus scrapes slowly: longer


_servers = itertools.count()  # one ARI app per server: an app has one event socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel, rows included."""
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))
    return list(walk(json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]))


def expand(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unexpanded dashboard variable in {expr!r}"
    return expr


# ------------------------------------------------------------------------------ Prometheus
@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The Debian `prometheus` binary, installed with apt if missing (as the testbed does)."""
    found = shutil.which("prometheus")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("the Debian package 'prometheus' is missing and installing it needs root: "
                    "apt-get install prometheus")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    opt = ["-o", "Acquire::Check-Valid-Until=false"]
    for argv in (["apt-get", *opt, "update"],
                 ["apt-get", *opt, "install", "-y", "--no-install-recommends", "prometheus"]):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}"
                        f"\n{done.stderr[-2000:]}")
    found = shutil.which("prometheus")
    if not found:
        pytest.fail("apt-get installed 'prometheus' but no prometheus binary is on PATH")
    return found


@dataclass
class Prometheus:
    url: str
    log: Path
    session: aiohttp.ClientSession

    async def get(self, path: str, **params: str) -> Any:
        async with self.session.get(self.url + path, params=params,
                                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
            body = await resp.json()
            assert resp.status == 200, (path, params, body)
            assert body["status"] == "success", (path, params, body)
            return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
async def server(testbed: Testbed, config: Config) -> AsyncIterator[Server]:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    cfg = replace(config, redis=RedisConfig(DB_URL),
                  server=ServerConfig("127.0.0.1", free_port()),
                  ari=replace(config.ari, app=f"dialer-prom-{os.getpid()}-{next(_servers)}"))
    async with Server(cfg) as srv:
        yield srv
        for channel in await srv.ari.rest.list_channels():
            if channel.id.startswith((f"c-{CAMPAIGN_PREFIX}", *(f"agent-{a}-" for a in AGENTS))):
                await srv.ari.rest.hangup(channel.id)
        for agent in AGENTS:
            await srv.ari.rest.destroy_bridge(agent_bridge(srv.ari.app, agent))


@pytest.fixture
async def prometheus(prometheus_binary: str, server: Server) -> AsyncIterator[Prometheus]:
    """A real Prometheus on a free loopback port, scraping the server every second."""
    with tempfile.TemporaryDirectory(prefix="dialer-prometheus-") as tmp:
        workdir = Path(tmp)
        target = server.url.removeprefix("http://")
        (workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - {{job_name: dialer, scrape_timeout: 1s, static_configs: "
            f"[{{targets: ['{target}']}}]}}\n", encoding="utf-8")
        port = free_port()
        log = workdir / "prometheus.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                prometheus_binary, f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            async with aiohttp.ClientSession() as session:
                prom = Prometheus(f"http://127.0.0.1:{port}", log, session)

                async def target_up() -> bool:
                    if proc.returncode is not None:
                        raise AssertionError(f"prometheus exited {proc.returncode}:\n"
                                             f"{prom.log_tail()}")
                    try:
                        data = await prom.get("/api/v1/targets")
                    except aiohttp.ClientError:
                        return False
                    return any(t["health"] == "up" for t in data["activeTargets"])
                await eventually(target_up, f"Prometheus to scrape {server.url}/metrics")
                yield prom
        finally:
            if proc.returncode is None:
                proc.terminate()  # by the PID of the process started here
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await asyncio.wait_for(proc.wait(), 10)


# ----------------------------------------------------------------------------------- test
async def run_campaign(server: Server, prom: Prometheus, campaign: str) -> None:
    """Agents in, leads dialed; returns once every call but the holding one has ended."""
    assert server.store is not None
    assert server.dialer is not None
    store, dialer = server.store, server.dialer
    await store.save_campaign(parse_campaign({
        "id": campaign, "name": "Prometheus", "dial_mode": "progressive",
        "trunk": "Local/{number}@simcust-pstn", "caller_id": "Acme <+15550100>",
        "safe_harbor": {"seller": "Acme", "callback_number": "+15550100"},
        "window": {"start": "00:00", "end": "24:00"}, "wrapup": 1, "ring_timeout": 15,
    }))
    runner = await dialer.start_campaign(campaign)
    for agent in AGENTS:
        dialer.login_agent(campaign, agent)

    async def agents_ready() -> bool:
        agents = runner.engine.agents
        return all(a in agents and agents[a].state is AgentState.READY for a in AGENTS)
    await eventually(agents_ready, f"agents {', '.join(AGENTS)} READY")
    # Counters start at zero for the campaign; Prometheus must see the zeros before the
    # first increase, or rate() has nothing to start from.
    await eventually(lambda: prom.query(f'dialer_calls_total{{campaign="{campaign}"}}'),
                     "Prometheus to scrape the campaign's counters at zero")
    numbers = [*ENDING, HOLDS]
    await store.add_leads(campaign, [Lead(f"{campaign}:{n}", campaign, n, ("America/New_York",))
                                     for n in numbers])

    for number, result in ENDING.items():
        async def ended(number: str = number) -> str | None:
            attempts = await store.lead_attempts(f"{campaign}:{number}")
            return attempts[0].result.value if attempts and attempts[0].result else None
        assert await eventually(ended, f"the call to {number} to end") == result

    async def holding_connected() -> bool:
        attempts = await store.lead_attempts(f"{campaign}:{HOLDS}")
        return bool(attempts and attempts[0].connected_at is not None)
    await eventually(holding_connected, f"the call to {HOLDS} to reach an agent")


async def test_every_dashboard_query_returns_data_from_prometheus_scraping_the_dialer(
    server: Server, prometheus: Prometheus
) -> None:
    campaign = f"{CAMPAIGN_PREFIX}-dashboard"
    await run_campaign(server, prometheus, campaign)
    # Until Prometheus has scraped the end of the campaign: every ended call, both connects.
    await eventually(lambda: prometheus.query(
        f'sum(dialer_calls_total{{campaign="{campaign}"}}) >= {len(ENDING)}'),
        "Prometheus to scrape every ended call")
    await eventually(lambda: prometheus.query(
        f'sum(dialer_agent_connect_latency_seconds_count{{campaign="{campaign}"}}) >= 2'),
        "Prometheus to scrape both agent connects")

    # The campaign picker: label_values(<metric>, campaign) of the dashboard's variable.
    (variable,) = json.loads(DASHBOARD.read_text(encoding="utf-8"))["templating"]["list"]
    metric = variable["definition"].removeprefix("label_values(").split(",")[0]
    picker = await prometheus.get("/api/v1/label/campaign/values", **{"match[]": metric})
    assert campaign in picker, picker

    queries = dashboard_queries()
    assert len(queries) >= 20, queries
    empty = []
    for title, expr in queries:
        result = await prometheus.query(expand(expr))
        values = [float(sample["value"][1]) for sample in result]
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{title}: {expand(expr)} -> {result}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)


async def test_scraped_metrics_describe_the_campaign_that_ran(
    server: Server, prometheus: Prometheus
) -> None:
    campaign = f"{CAMPAIGN_PREFIX}-values"
    await run_campaign(server, prometheus, campaign)
    c = f'campaign="{campaign}"'

    async def expect(expr: str, wanted: float) -> None:
        """Poll until Prometheus gives `wanted` (its scrapes and our 2 s lead count lag)."""
        seen: list[float | None] = []

        async def check() -> bool:
            result = await prometheus.query(expr)
            seen.append(float(result[0]["value"][1]) if result else None)
            return seen[-1] == wanted
        try:
            await eventually(check, expr, deadline=15)
        except AssertionError:
            raise AssertionError(f"{expr}: wanted {wanted}, last seen {seen[-1]}") from None

    for result in set(ENDING.values()):
        await expect(f'dialer_calls_total{{{c}, result="{result}"}}', 1)
    await expect(f"sum(dialer_calls_total{{{c}}})", len(ENDING))
    await expect(f"dialer_calls_answered_total{{{c}}}", 1)  # the talker
    await expect(f"dialer_calls_originated_total{{{c}}}", len(ENDING) + 1)
    await expect(f"dialer_originate_errors_total{{{c}}}", 0)
    await expect(f"dialer_agent_connect_latency_seconds_count{{{c}}}", 2)
    await expect(f"dialer_agent_idle_seconds_count{{{c}}} >= bool 2", 1)  # both were reserved
    # The holding call is live on one agent; the other one works too (ready or in wrap-up).
    await expect(f"dialer_calls_in_flight{{{c}}}", 1)
    await expect(f'dialer_agents{{{c}, state="ON_CALL"}}', 1)
    await expect(f"dialer_dial_level{{{c}}}", 0.5)
    await expect(f"dialer_agent_occupancy_ratio{{{c}}} >= bool 0.5", 1)
    # Every lead is used up for now: the busy one is retried in 10 minutes.
    await expect(f"dialer_leads_dialable{{{c}}}", 0)
    await expect(f"dialer_leads_remaining{{{c}}}", 2)  # the busy lead and the holding call
    await expect(f'dialer_campaign_not_dialing{{{c}, reason="leads_exhausted"}}', 1)
    await expect(f"sum(dialer_campaign_not_dialing{{{c}}})", 1)
    await expect(f"dialer_abandon_ratio{{{c}}}", 0)
    await expect(f"dialer_abandon_target_ratio{{{c}}}", 0.03)
    await expect("dialer_ari_event_stream_up", 1)
    await expect("dialer_ari_event_lag_seconds_count > bool 0", 1)

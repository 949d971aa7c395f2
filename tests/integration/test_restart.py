"""SIGKILL of the dialer mid-campaign, then a restart: no lead lost, none dialed twice, calls
that were up are closed and recorded. A graceful restart keeps what the predictive pacer has
learnt. The server runs as a real process (`dialer serve`)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from dialer.ari import AriClient
from dialer.auth import bearer_header
from dialer.config import Config
from dialer.runner import agent_bridge
from dialer.testbed import Testbed
from tests.integration.conftest import eventually, repo_config
from tests.integration.test_campaigns import Client, campaign

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[2]
PORT = 18094
DB_URL = "redis://127.0.0.1:16379/8"
APP = "dialer-restart"


class ServerProcess:
    def __init__(self, cfg_file: Path, log: Path) -> None:
        self.cfg_file, self.log = cfg_file, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> None:
        env = {**os.environ, "DIALER_REDIS_URL": DB_URL, "DIALER_ARI_APP": APP}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dialer", *options, "--config", str(self.cfg_file),
                 "serve"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)



@pytest.fixture
def server_proc(testbed: Testbed, tmp_path: Path) -> Iterator[ServerProcess]:
    cfg = tmp_path / "dialer.yaml"
    cfg.write_text(repo_config().replace("port: 18080", f"port: {PORT}"))
    proc = ServerProcess(cfg, tmp_path / "server.log")
    yield proc
    proc.stop()


@pytest.fixture
async def ari_rest(config: Config) -> AsyncIterator[AriClient]:
    async with AriClient(replace(config.ari, app=APP)) as rest:
        yield rest
        for channel in await rest.list_channels():
            if channel.id.startswith(("c-kill-", "c-warm-", "agent-")):
                await rest.hangup(channel.id)
        for bridge in await rest.list_bridges():
            if bridge.id.startswith(agent_bridge(APP, "")):
                await rest.destroy_bridge(bridge.id)


async def healthy(session: aiohttp.ClientSession) -> bool:
    try:
        async with session.get(f"http://127.0.0.1:{PORT}/ready") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def test_sigkill_mid_campaign_then_restart_loses_no_lead_and_dials_none_twice(
    server_proc: ServerProcess, ari_rest: AriClient, config: Config
) -> None:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    await flush.aclose()
    # Leads that answer and hold (digit 8) keep calls up across the kill; others mix outcomes.
    numbers = [f"+1212555{d}{i:03d}" for i in range(4) for d in (8, 0, 1, 2)]
    server_proc.start()
    async with aiohttp.ClientSession(headers=bearer_header(config.api)) as session:
        api = Client(session, f"http://127.0.0.1:{PORT}")
        await eventually(lambda: healthy(session), "server ready", 60)
        body = campaign("kill", dial_mode="power", power_ratio=2.0, max_cps=20)
        await api.call("POST", "/campaigns", 201, json=body)
        csv = "phone\n" + "\n".join(numbers) + "\n"
        await api.call("POST", "/campaigns/kill/leads", 200, data=csv,
                       headers={"Content-Type": "text/csv"})
        await api.call("POST", "/campaigns/kill/start", 200)
        for agent in ("agent-1011", "agent-1012", "agent-1013"):
            await api.call("POST", f"/agents/{agent}/login", 202, json={"campaign": "kill"})

        async def calls_up() -> bool:
            live = [c for c in await ari_rest.list_channels()
                    if c.id.startswith("c-kill-") and c.state == "Up"]
            return len(live) >= 2
        await eventually(calls_up, "at least two customer calls up")

        server_proc.kill(signal.SIGKILL)
        orphans = {c.id for c in await ari_rest.list_channels()
                   if c.id.startswith("c-kill-") and not c.id.endswith(";2")}  # Local halves
        assert orphans, "calls should still be up in Asterisk after the dialer died"

        server_proc.start()
        await eventually(lambda: healthy(session), "server ready after restart", 60)

        async def orphans_closed() -> bool:
            live = {c.id for c in await ari_rest.list_channels()}
            return not (orphans & live)
        await eventually(orphans_closed, "calls left by the killed process closed")
        await api.call("POST", "/campaigns/kill/pause", 200)

        # Let every call placed after the restart end, then check the books.
        async def quiet() -> bool:
            return not [c for c in await ari_rest.list_channels() if c.id.startswith("c-kill-")]
        for channel in await ari_rest.list_channels():
            if channel.id.startswith("c-kill-"):
                await ari_rest.hangup(channel.id)
        await eventually(quiet, "no customer call left")

        async def settled() -> list[dict[str, Any]] | None:
            leads = []
            for number in numbers:
                lead = await api.lead(f"kill:{number}")
                if lead["state"] == "in_progress":
                    return None
                leads.append(lead)
            return leads
        leads = await eventually(settled, "every lead out of IN_PROGRESS")
        assert len(leads) == len(numbers)  # no lead lost
        for lead in leads:
            attempts = await api.attempts(lead["id"])
            assert len(attempts) == lead["attempts"], (lead, attempts)
            for attempt in attempts:
                assert attempt["ended_at"] is not None, attempt  # every call recorded
                assert attempt["result"] is not None, attempt
            for before, after in itertools.pairwise(attempts):
                assert after["originated_at"] >= before["ended_at"], (before, after)
        closed = [a for lead in leads for a in await api.attempts(lead["id"])
                  if a["id"] in orphans]
        assert {a["id"] for a in closed} == orphans


async def test_a_restarted_dialer_starts_its_predictive_pacer_from_the_estimates_it_saved(
    server_proc: ServerProcess, ari_rest: AriClient, config: Config
) -> None:
    flush = aioredis.from_url(DB_URL)
    await flush.flushdb()
    # Busy, rejected and unallocated numbers: quick dial outcomes for the pacer to learn from.
    numbers = [f"+1212555{d}{i:03d}" for i in range(4) for d in (1, 3, 4)]
    server_proc.start("-v")  # the restore is logged at INFO
    try:
        async with aiohttp.ClientSession(headers=bearer_header(config.api)) as session:
            api = Client(session, f"http://127.0.0.1:{PORT}")
            await eventually(lambda: healthy(session), "server ready", 60)
            body = campaign("warm", dial_mode="predictive", max_cps=20)
            await api.call("POST", "/campaigns", 201, json=body)
            csv = "phone\n" + "\n".join(numbers) + "\n"
            await api.call("POST", "/campaigns/warm/leads", 200, data=csv,
                           headers={"Content-Type": "text/csv"})
            await api.call("POST", "/campaigns/warm/start", 200)
            await api.call("POST", "/agents/agent-1011/login", 202, json={"campaign": "warm"})

            async def outcomes() -> int | None:
                ended = 0
                for number in numbers:
                    ended += sum(a["ended_at"] is not None
                                 for a in await api.attempts(f"warm:{number}"))
                return ended if ended >= 6 else None
            ended = await eventually(outcomes, "six dial outcomes")

            server_proc.kill(signal.SIGTERM)  # a graceful stop saves the estimates
            text = await flush.get("dialer:pacer:warm")
            assert text is not None, "the pacer's estimates should be saved at stop"
            saved = json.loads(text)
            learnt = saved["pacer"]
            assert len(learnt["outcomes"]) + len(learnt["pending"]) >= ended
            assert learnt["talk"] == []  # nobody answered: no talk time learnt or made up

            server_proc.start("-v")
            await eventually(lambda: healthy(session), "server ready after restart", 60)

            async def restored() -> bool:
                return "campaign warm: the pacer starts from its estimates saved" in \
                    server_proc.log.read_text(errors="replace")
            await eventually(restored, "the restarted campaign's pacer restored")
            await api.call("POST", "/campaigns/warm/pause", 200)
    finally:
        await flush.aclose()

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dialer.ari import Ari, AriItem, ChannelDestroyed, StasisStart
from dialer.ari.outcome import ChannelOutcome
from dialer.config import Config
from dialer.testbed import Testbed

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
DEADLINE = 20.0
# One WebSocket per ARI app name: a second one silently takes all events, so every test
# session (several may share a testbed) uses its own app name.
TEST_APP = f"dialer-test-{os.getpid()}"  # generous: a loaded 2-core CI machine
_ids = itertools.count()


async def eventually(check: Callable[[], Awaitable[Any]], what: str,
                     deadline: float = 45.0) -> Any:
    """Wait until `check()` returns something truthy, and return it (a condition, never a
    fixed sleep); fail naming `what` after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"timed out after {deadline} s waiting for {what}")
        await asyncio.sleep(0.05)


def new_id(prefix: str = "t") -> str:
    return f"test-{prefix}-{os.getpid()}-{next(_ids)}"


@pytest.fixture
async def ari(testbed: Testbed, config: Config) -> AsyncIterator[Ari]:
    cfg = replace(config.ari, app=TEST_APP)
    async with Ari(cfg) as conn:
        yield conn
        await cleanup(conn)


async def cleanup(conn: Ari) -> None:
    """Hang up every channel and destroy every bridge this test created."""
    for bridge in await conn.rest.list_bridges():
        if bridge.id.startswith("test-"):
            await conn.rest.destroy_bridge(bridge.id)
    for channel in await conn.rest.list_channels():
        if channel.id.startswith("test-"):
            await conn.rest.hangup(channel.id)


class Watch:
    """Collects every item about one channel id; `ended` resolves on ChannelDestroyed."""

    def __init__(self, conn: Ari, channel_id: str) -> None:
        self.channel_id = channel_id
        self.tracker = ChannelOutcome(channel_id)
        self.items: list[AriItem] = []
        self.answered: asyncio.Future[StasisStart] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[ChannelDestroyed] = asyncio.get_running_loop().create_future()
        self._stop = conn.listen(self._on)

    def _on(self, item: AriItem) -> None:
        self.items.append(item)
        self.tracker.feed(item)
        if isinstance(item, StasisStart) and item.channel.id == self.channel_id \
                and not self.answered.done():
            self.answered.set_result(item)
        if isinstance(item, ChannelDestroyed) and item.channel.id == self.channel_id \
                and not self.ended.done():
            self.ended.set_result(item)

    def close(self) -> None:
        self._stop()


async def wait(fut: asyncio.Future[T], what: str) -> T:
    try:
        return await asyncio.wait_for(asyncio.shield(fut), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"timed out after {DEADLINE} s waiting for {what}") from None


def repo_config() -> str:
    """The testbed's dialer.yaml, its relative paths (flows, agent profiles) made absolute
    for a copy written elsewhere."""
    text = (REPO / "dialer.yaml").read_text()
    return text.replace("flows_dir: ivr_flows", f"flows_dir: {REPO / 'ivr_flows'}") \
        .replace("profiles: agents.yaml", f"profiles: {REPO / 'agents.yaml'}")

"""How ARI events reach the listeners: at once while nothing is queued, and never ahead of a
connection's snapshot. (The snapshot's REST reads are replaced by a future the test ends.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from dialer.ari import Ari
from dialer.ari.connection import AriItem, StreamReady
from dialer.ari.events import UnknownEvent
from dialer.ari.stream import StreamConnected, StreamDisconnected
from dialer.config import AriConfig, Secret


def event(name: str) -> UnknownEvent:
    return UnknownEvent(0.0, name)


def names(seen: list[AriItem]) -> list[str]:
    return [item.type if isinstance(item, UnknownEvent) else type(item).__name__
            for item in seen]


@pytest.fixture
def ari() -> Ari:
    return Ari(AriConfig("http://127.0.0.1:1", "dialer", Secret("secret"), "unit"))


@contextlib.asynccontextmanager
async def dispatching(ari: Ari, monkeypatch: pytest.MonkeyPatch
                      ) -> AsyncIterator[tuple[list[AriItem], asyncio.Future[None]]]:
    """The dispatch task running, with a snapshot that ends when the yielded future does;
    yields what the listeners saw."""
    seen: list[AriItem] = []
    ari.listen(seen.append)
    snapshot_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def snapshot(reconnect: bool) -> StreamReady:
        await snapshot_done
        return StreamReady(reconnect, (), ())
    monkeypatch.setattr(ari, "_snapshot", snapshot)
    dispatcher = asyncio.create_task(ari._dispatch())
    try:
        yield seen, snapshot_done
    finally:
        dispatcher.cancel()
        await asyncio.gather(dispatcher, return_exceptions=True)


def test_with_nothing_queued_an_event_reaches_the_listeners_at_once(ari: Ari) -> None:
    seen: list[AriItem] = []
    ari.listen(seen.append)
    ari.stream.emit(event("A"))  # the reader's hand-off, no dispatch task running
    assert names(seen) == ["A"]
    assert ari.stream.queue.empty()


async def test_events_after_a_connection_wait_for_its_snapshot_and_keep_their_order(
        ari: Ari, monkeypatch: pytest.MonkeyPatch) -> None:
    async with dispatching(ari, monkeypatch) as (seen, snapshot_done):
        ari.stream.emit(StreamConnected(reconnect=True))
        ari.stream.emit(event("B"))
        for _ in range(5):  # the dispatcher takes the marker and waits for the snapshot
            await asyncio.sleep(0)
        assert ari.stream.queue.qsize() == 1  # B waits behind the snapshot
        ari.stream.emit(event("C"))  # queued behind B
        assert names(seen) == []
        snapshot_done.set_result(None)
        for _ in range(20):
            await asyncio.sleep(0)
            if len(seen) == 3:
                break
        assert names(seen) == ["StreamReady", "B", "C"]
        ari.stream.emit(event("D"))  # drained: straight through again
        assert names(seen) == ["StreamReady", "B", "C", "D"]
        ari.stream.emit(StreamDisconnected("cut"))
        assert names(seen)[-1] == "StreamDisconnected"
        assert not ari.ready


async def test_an_event_during_a_snapshot_with_an_empty_queue_still_waits_for_it(
        ari: Ari, monkeypatch: pytest.MonkeyPatch) -> None:
    async with dispatching(ari, monkeypatch) as (seen, snapshot_done):
        ari.stream.emit(StreamConnected(reconnect=False))
        for _ in range(5):
            await asyncio.sleep(0)
        assert ari.stream.queue.empty()  # the marker is taken; its snapshot runs
        ari.stream.emit(event("E"))
        assert names(seen) == []  # not ahead of the snapshot
        snapshot_done.set_result(None)
        for _ in range(20):
            await asyncio.sleep(0)
            if len(seen) == 2:
                break
        assert names(seen) == ["StreamReady", "E"]

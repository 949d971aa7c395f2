"""IVR flows on the real Asterisk: callers dial in through Local channels whose dialplan
(asterisk_conf/testbed/extensions.conf, context ivrcaller) presses keys, and the flow in
tests/integration/ivr_flows runs on ARI with real prompts (espeak-ng text-to-speech)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from dialer.ari import Ari
from dialer.config import Config
from dialer.ivr.library import FlowLibrary
from dialer.ivr.runtime import IvrCallRecord, IvrService
from dialer.ivr.tts import TtsCache
from dialer.metrics import Metrics
from dialer.testbed import Testbed
from tests.integration.conftest import TEST_APP, cleanup, new_id

FLOWS = Path(__file__).parent / "ivr_flows"
DEADLINE = 60.0  # a call runs several prompts; a loaded 2-core machine renders TTS slowly
NUMBER = "200"  # routed to the flow `ivrtest` by ivr_flows/_routes.yaml


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {DEADLINE} s waiting for {what}")


@dataclass
class Ivr:
    ari: Ari
    service: IvrService
    library: FlowLibrary
    flows: Path
    recordings_dir: Path

    async def call(self, script: str, number: str = NUMBER) -> str:
        """Dial in as the scripted caller `script`; the id of the channel in the IVR."""
        channel = new_id("ivr")
        await self.ari.rest.request(
            "POST", "/channels",
            {"endpoint": f"Local/{script}@ivrcaller", "extension": number,
             "context": "ivr-inbound", "priority": 1, "channelId": channel,
             "otherChannelId": f"{channel}-caller", "callerId": "+15551230000",
             "formats": "ulaw", "timeout": 10},
            {"variables": {"IVR_APP": TEST_APP}})
        return channel

    async def ended(self, channel: str) -> IvrCallRecord:
        """The record of the IVR call on `channel`, once it has ended."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            for record in self.service.records:
                if record.call_id == channel:
                    return record
            await asyncio.sleep(0.1)
        raise AssertionError(f"IVR call {channel} did not end within {DEADLINE} s "
                             f"(active: {sorted(self.service.sessions)})")


@pytest.fixture
async def ivr(testbed: Testbed, config: Config, tmp_path: Path) -> AsyncIterator[Ivr]:
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    media = config.ivr.local_media_dir
    metrics = Metrics()
    library = FlowLibrary(flows, media, metrics)
    assert library.reload().ok
    async with Ari(replace(config.ari, app=TEST_APP)) as ari:
        service = IvrService(ari, library, TtsCache(media / "tts"), media_dir=media,
                             asterisk_root=config.ivr.asterisk_root, metrics=metrics)
        try:
            yield Ivr(ari, service, library, flows,
                      config.ivr.asterisk_root / "var/spool/asterisk/recording")
        finally:
            await service.close()
            await cleanup(ari)
            assert not service.sessions, "an IVR call was left running"


async def test_menu_choice_takes_the_option_pressed(ivr: Ivr) -> None:
    record = await ivr.ended(await ivr.call("menu1"))
    assert record.path == ("main", "sales")
    assert record.disposition == "chose_sales"
    assert record.outcome == "hangup"
    assert record.flow == "ivrtest"
    assert record.flow_version == ivr.library.current.version  # type: ignore[union-attr]


async def test_invalid_key_then_a_valid_one_on_the_retry(ivr: Ivr) -> None:
    record = await ivr.ended(await ivr.call("invalid"))
    assert record.path == ("main", "sales")
    assert record.disposition == "chose_sales"


async def test_no_input_until_max_attempts_ends_the_call(ivr: Ivr) -> None:
    started = time.monotonic()
    record = await ivr.ended(await ivr.call("silent"))
    assert record.path == ("main", "no_input_end")
    assert record.disposition == "no_input"
    # two 2 s timeouts, each counted from the end of a prompt: at least 4 s of waiting
    assert time.monotonic() - started >= 4


async def test_collect_reads_digits_up_to_the_finish_key(ivr: Ivr) -> None:
    record = await ivr.ended(await ivr.call("account"))
    assert record.path == ("main", "account", "got_account")
    assert record.vars.get("vars.account") == "12345"


async def test_caller_hanging_up_mid_prompt_ends_the_run_cleanly(ivr: Ivr) -> None:
    record = await ivr.ended(await ivr.call("hangup"))
    assert record.outcome == "caller_hangup"
    assert record.path == ("main",)
    assert not ivr.service.by_playback, "a playback of the gone caller is still tracked"


async def test_voicemail_is_recorded_to_a_file(ivr: Ivr) -> None:
    record = await ivr.ended(await ivr.call("voicemail"))
    assert record.path == ("main", "message", "message_kept")
    assert record.disposition == "voicemail"
    assert len(record.recordings) == 1
    local = ivr.recordings_dir / Path(record.recordings[0]).name
    assert local.exists()
    assert local.stat().st_size > 1000


async def test_unrouted_number_is_refused_and_nothing_runs(ivr: Ivr) -> None:
    channel = await ivr.call("menu1", number="299")
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if all(c.id != channel for c in await ivr.ari.rest.list_channels()):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the unrouted call was not hung up")
    assert not ivr.service.records
    assert not ivr.service.sessions


async def test_hot_reload_keeps_a_call_in_progress_on_its_version(ivr: Ivr) -> None:
    old = ivr.library.current
    assert old is not None
    first = await ivr.call("slow1")
    await until(lambda: first in ivr.service.sessions, "the first call to reach the IVR")
    flow = ivr.flows / "ivrtest.yaml"
    flow.write_text(flow.read_text().replace("disposition: chose_sales",
                                             "disposition: chose_sales_v2"))
    result = await ivr.library.reload_async()
    assert result.ok
    assert result.changed
    assert ivr.library.status()["draining"] == [{"version": old.version, "calls": 1}]
    second = await ivr.call("menu1")
    old_record = await ivr.ended(first)
    new_record = await ivr.ended(second)
    assert (old_record.flow_version, old_record.disposition) == (old.version, "chose_sales")
    assert new_record.disposition == "chose_sales_v2"
    assert new_record.flow_version == result.version != old.version


async def test_a_broken_flow_file_keeps_the_last_good_set_serving(ivr: Ivr) -> None:
    good = ivr.library.current
    assert good is not None
    flow = ivr.flows / "ivrtest.yaml"
    flow.write_text(flow.read_text().replace("next: got_account", "next: got_acount"))
    result = await ivr.library.reload_async()
    assert not result.ok
    assert [d.code for d in result.errors] == ["E101"]
    assert ivr.library.current is good
    record = await ivr.ended(await ivr.call("menu1"))
    assert record.disposition == "chose_sales"
    assert record.flow_version == good.version

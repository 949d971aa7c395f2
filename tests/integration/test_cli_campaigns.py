"""The `dialer campaign|leads|dnc` commands against a running server: the server in-process
(its own Redis database, ARI application name and port), the CLI as a subprocess, as a user
runs it. Outputs are checked as the user reads them; failures are one line, never a traceback."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from dialer.config import Config, RedisConfig, Role, ServerConfig, load_config
from dialer.server import Server
from dialer.testbed import Testbed

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[2]
DB_URL = "redis://127.0.0.1:16379/5"  # a database of its own, flushed per test
PORT = 18093
APP = "dialer-cli"
_admin = load_config(REPO / "dialer.yaml", env={}).api.first(Role.ADMIN)
assert _admin is not None, "dialer.yaml has no admin API token"
TOKEN = _admin.token.value  # the testbed's admin token, given to the CLI as DIALER_TOKEN

CAMPAIGN_YAML = """\
id: cli-drive
name: CLI drive
dial_mode: progressive
trunk: "Local/{number}@simcust-pstn"
caller_id: "Acme <+15550100>"
safe_harbor: {seller: Acme, callback_number: "+15550100", optout_key: "9"}
ring_timeout: 15
window: {start: "08:00", end: "21:00"}
amd: off
"""

LEADS_CSV = """\
phone,first_name,priority
+12125550401,Ann,1
not-a-number,Bob,

+12125550402,Cy,high
(212) 555-0403,Di,2
+12125550401,Ann again,5
"""  # rows: 1 header, 2 Ann, 3 Bob (bad), 4 blank, 5 Cy (bad priority), 6 Di, 7 Ann merged


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DIALER_SERVER"}
    environment["DIALER_TOKEN"] = TOKEN
    return subprocess.run([sys.executable, "-m", "dialer", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=environment | (env or {}), check=False)


async def dialer(*args: str, env: dict[str, str] | None = None,
                 server: str | None = f"http://127.0.0.1:{PORT}") -> subprocess.CompletedProcess[str]:
    """The CLI in a thread: the in-process server shares this event loop and must keep serving."""
    argv = [*args, "--server", server] if server else list(args)
    return await asyncio.to_thread(run, *argv, env=env)


def assert_one_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dialer: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], result.stderr
    return lines[0]


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
async def created(server: Server, tmp_path: Path) -> Path:
    """The campaign cli-drive, created with the CLI from a YAML file."""
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN_YAML)
    result = await dialer("campaign", "create", str(path))
    assert result.returncode == 0, result
    return path


async def test_campaign_create_from_yaml_then_list_and_status_show_it(created: Path) -> None:
    listed = await dialer("campaign", "list")
    assert listed.returncode == 0, listed
    assert listed.stdout.splitlines()[1].split() == ["cli-drive", "created", "progressive", "CLI",
                                                     "drive"]
    status = await dialer("campaign", "status", "cli-drive")
    assert status.returncode == 0, status
    assert "campaign  cli-drive (CLI drive)" in status.stdout
    assert "status    created" in status.stdout
    assert "leads     0" in status.stdout
    as_json = await dialer("campaign", "status", "cli-drive", "--json")
    assert json.loads(as_json.stdout)["status"] == "created"


async def test_creating_the_same_campaign_twice_is_the_servers_message(created: Path) -> None:
    again = await dialer("campaign", "create", str(created))
    assert_one_clear_error(again, "campaign 'cli-drive' already exists")


async def test_campaign_file_with_an_invalid_field_names_file_and_field_and_creates_nothing(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(CAMPAIGN_YAML.replace("ring_timeout: 15", "ring_timeout: 5"))
    assert_one_clear_error(await dialer("campaign", "create", str(path)),
                           f"{path}: ring_timeout: must be between 15 and 120, got 5")
    listed = await dialer("campaign", "list")
    assert listed.stdout.startswith("no campaigns"), listed


async def test_leads_import_with_bad_rows_exits_2_and_lists_them_by_file_row(
    created: Path, tmp_path: Path
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS_CSV)
    errors = tmp_path / "rejected.csv"
    result = await dialer("leads", "import", "cli-drive", str(leads), "--errors-csv", str(errors))
    assert result.returncode == 2, result
    lines = result.stdout.splitlines()
    assert lines[0] == "leads.csv -> campaign cli-drive: received 5, added 2, merged 1, rejected 2"
    assert lines[1].startswith("row 3: 'not-a-number' is not a phone number")
    assert lines[2] == "row 5: priority 'high' is not an integer"
    with errors.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["row", "error", "data"],
                    ["3", lines[1].removeprefix("row 3: "), "not-a-number,Bob,"],
                    ["5", "priority 'high' is not an integer", "+12125550402,Cy,high"]]
    status = await dialer("campaign", "status", "cli-drive")
    assert "leads     2: ready 2," in status.stdout, status.stdout
    assert "dialable  " in status.stdout


async def test_leads_import_of_a_clean_file_exits_0(created: Path, tmp_path: Path) -> None:
    leads = tmp_path / "leads.json"
    leads.write_text(json.dumps([{"phone": "+12125550411", "first_name": "Ann"},
                                 {"phone": "2125550412", "priority": 3}]))
    result = await dialer("leads", "import", "cli-drive", str(leads))
    assert result.returncode == 0, result
    assert result.stdout.strip() == ("leads.json -> campaign cli-drive: received 2, added 2, "
                                     "merged 0, rejected 0")
    again = await dialer("leads", "import", "cli-drive", str(leads))
    assert "received 2, added 0, merged 2, rejected 0" in again.stdout, again


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_a_large_file_goes_up_in_chunks_with_progress_and_rows_numbered_as_in_the_file(
    created: Path, tmp_path: Path, fmt: str
) -> None:
    numbers = [f"+1212555{n:04d}" for n in range(500, 510)]
    numbers[4] = "bogus"   # 5th lead: second chunk of 3
    numbers[8] = "+1212"   # 9th lead: third chunk
    numbers[9] = numbers[0]  # the last one repeats the first, in another chunk
    if fmt == "csv":
        text = "phone\n" + "".join(f"{n}\n" for n in numbers)
        rows = (6, 10)  # the header is row 1
    else:
        text = json.dumps({"leads": [{"phone": n} for n in numbers]})
        rows = (5, 9)   # JSON elements count from 1
    leads = tmp_path / f"big.{fmt}"
    leads.write_text(text)
    result = await dialer("leads", "import", "cli-drive", str(leads), "--chunk-rows", "3")
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [f"uploaded {n}/10 rows" for n in (0, 3, 6, 9, 10)]
    lines = result.stdout.splitlines()
    assert lines[0].endswith("received 10, added 7, merged 1, rejected 2"), lines
    assert [line.split(":")[0] for line in lines[1:]] == [f"row {rows[0]}", f"row {rows[1]}"]
    assert "'bogus'" in lines[1]
    assert "too short" in lines[2]


async def test_a_lead_file_without_a_phone_column_fails_with_one_line(
    created: Path, tmp_path: Path
) -> None:
    leads = tmp_path / "names.csv"
    leads.write_text("name,email\nAnn,ann@example.com\n")
    assert_one_clear_error(await dialer("leads", "import", "cli-drive", str(leads)),
                           f"{leads}: row 1: no phone column")
    status = await dialer("campaign", "status", "cli-drive")
    assert "leads     0" in status.stdout


async def test_start_and_pause_show_in_status_and_list(created: Path) -> None:
    started = await dialer("campaign", "start", "cli-drive")
    assert (started.returncode, started.stdout) == (0, "campaign cli-drive running\n"), started
    status = await dialer("campaign", "status", "cli-drive")
    assert "status    running" in status.stdout
    assert "agents    none logged in" in status.stdout  # live figures while a runner exists
    paused = await dialer("campaign", "pause", "cli-drive")
    assert (paused.returncode, paused.stdout) == (0, "campaign cli-drive paused\n"), paused
    listed = await dialer("campaign", "list")
    assert listed.stdout.splitlines()[1].split()[:2] == ["cli-drive", "paused"]


async def test_unknown_campaign_is_the_servers_message(server: Server) -> None:
    for args in (["campaign", "status", "nope"], ["campaign", "start", "nope"],
                 ["leads", "import", "nope", str(REPO / "README.md"), "--format", "csv"]):
        assert_one_clear_error(await dialer(*args), "unknown campaign 'nope'")


async def test_dnc_add_and_check_with_a_bad_number_exits_2(created: Path) -> None:
    added = await dialer("dnc", "add", "+12125550421", "(212) 555-0422", "call-me")
    assert added.returncode == 2, added
    lines = added.stdout.splitlines()
    assert lines[0] == ("do-not-call list (every campaign): added 2, already listed 0, "
                        "rejected 1")
    assert lines[1].startswith("call-me: not a phone number")
    listed = await dialer("dnc", "check", "2125550422")
    assert listed.stdout == "+12125550422 is on the do-not-call list\n", listed
    one = await dialer("dnc", "add", "+12125550423", "--campaign", "cli-drive")
    assert one.returncode == 0, one
    assert "(campaign cli-drive): added 1" in one.stdout
    assert (await dialer("dnc", "check", "+12125550423")).stdout.startswith(
        "+12125550423 is not on")
    assert (await dialer("dnc", "check", "+12125550423", "--campaign", "cli-drive")).stdout \
        == "+12125550423 is on the do-not-call list for campaign cli-drive\n"
    assert_one_clear_error(await dialer("dnc", "check", "12"), "not a")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("how", ["flag", "env"])
def test_server_not_running_is_one_friendly_line(how: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    if how == "flag":
        result = run("campaign", "list", "--server", url)
    else:
        result = run("leads", "import", "x", str(REPO / "README.md"), "--format", "csv",
                     env={"DIALER_SERVER": url})
    line = assert_one_clear_error(result)
    assert line == f"dialer: error: cannot reach the dialer server at {url}: is `dialer serve` running?"


@pytest.mark.parametrize("args", [
    ["campaign", "--help"], ["campaign", "create", "--help"], ["campaign", "list", "--help"],
    ["campaign", "status", "--help"], ["campaign", "start", "--help"],
    ["campaign", "pause", "--help"], ["leads", "--help"], ["leads", "import", "--help"],
    ["dnc", "--help"], ["dnc", "add", "--help"], ["dnc", "check", "--help"]])
def test_every_client_command_has_help(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 0, result
    assert result.stdout.startswith(f"usage: dialer {' '.join(args[:-1])}")


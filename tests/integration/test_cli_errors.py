"""Bad input at the command line: one clear line naming the cause, exit 1, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.config import Config
from dialer.testbed import Testbed
from tests.integration.conftest import repo_config

REPO = Path(__file__).resolve().parents[2]


def dialer(*args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dialer", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})}, check=False)


def assert_one_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    first = result.stderr.strip().splitlines()[0]
    for needle in needles:
        assert needle in first, result.stderr


def test_broken_config_file_names_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ari:\n  password: [oops\n")
    assert_one_clear_error(dialer("--config", str(bad), "testbed", "status"),
                           f"{bad}:", "not valid YAML")


def test_asterisk_not_running_is_named(tmp_path: Path, testbed: Testbed) -> None:
    result = dialer("serve", env={"DIALER_ARI_URL": "http://127.0.0.1:9"})
    assert_one_clear_error(result, "cannot reach Asterisk ARI at http://127.0.0.1:9")


def test_wrong_ari_password_is_named(testbed: Testbed) -> None:
    result = dialer("serve", env={"DIALER_ARI_PASSWORD": "wrong"})
    assert_one_clear_error(result, "ARI rejected the user name or password")


def test_redis_not_running_is_named(testbed: Testbed) -> None:
    result = dialer("serve", env={"DIALER_REDIS_URL": "redis://127.0.0.1:9/0"})
    assert_one_clear_error(result, "cannot reach Redis at redis://127.0.0.1:9/0")


def test_server_port_in_use_is_named(tmp_path: Path, testbed: Testbed, config: Config) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "d.yaml"
        cfg.write_text(repo_config().replace("port: 18080", f"port: {port}"))
        assert_one_clear_error(dialer("--config", str(cfg), "serve"),
                               f"cannot listen on 127.0.0.1:{port}")


def test_testbed_port_in_use_names_the_step_and_port(tmp_path: Path, config: Config) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"DIALER_REDIS_URL": f"redis://127.0.0.1:{port}/0",
               "DIALER_STATE_DIR": str(tmp_path / "state"),
               "DIALER_CACHE_DIR": str(config.testbed.cache_dir)}
        result = dialer("testbed", "up", env=env)
    assert_one_clear_error(result, "start redis-server", f"TCP port {port}", "already in use")
    assert not list((tmp_path / "state").glob("*.pid"))  # nothing was left running


@pytest.mark.parametrize("args", [["--help"], ["testbed", "--help"], ["demo", "--help"],
                                  ["serve", "--help"], ["asterisk-conf", "--help"]])
def test_every_command_has_help(args: list[str]) -> None:
    result = dialer(*args)
    assert result.returncode == 0
    assert "usage: dialer" in result.stdout


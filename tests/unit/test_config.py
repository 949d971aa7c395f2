from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import load_config
from dialer.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dialer.yaml"
    path.write_text(text)
    return path


def test_defaults_with_a_password_give_a_complete_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "ari: {password: pw}\n"), env={})
    assert cfg.ari.url == "http://127.0.0.1:8088"
    assert (cfg.ari.host, cfg.ari.port) == ("127.0.0.1", 8088)
    assert cfg.redis.port == 6379
    assert cfg.asterisk.sip_port == 5060


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {"DIALER_ARI_URL": "http://10.1.2.3:8089", "DIALER_ARI_PASSWORD": "from-env",
           "DIALER_REDIS_URL": "redis://127.0.0.1:7000/1", "DIALER_ARI_APP": "dialer-2"}
    cfg = load_config(write(tmp_path, "ari: {password: in-file, app: one}\n"), env=env)
    assert cfg.ari.url == "http://10.1.2.3:8089"
    assert cfg.ari.password.value == "from-env"
    assert cfg.ari.app == "dialer-2"
    assert cfg.redis.port == 7000


def test_the_password_never_shows_in_repr_or_str(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "ari: {password: hunter2}\n"), env={})
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in str(cfg.ari.password)


def test_missing_password_names_the_key_and_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ari\.password.*DIALER_ARI_PASSWORD"):
        load_config(write(tmp_path, "ari: {url: 'http://127.0.0.1:8088'}\n"), env={})


def test_broken_yaml_is_reported_with_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "ari:\n  password: pw\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"dialer\.yaml:\d+:\d+: not valid YAML"):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ari: {password: pw, bogus: 1}\n", "unknown key 'ari.bogus'"),
        ("nonsense: 1\nari: {password: pw}\n", "unknown section 'nonsense'"),
        ("ari: {password: pw, url: 'ftp://x'}\n", "'ari.url' must be a URL"),
        ("ari: {password: pw, app: 'bad app'}\n", "'ari.app' must match"),
        ("ari: {password: pw}\nserver: {port: 70000}\n", "'server.port' must be a port"),
        ("ari: {password: pw}\nasterisk: {rtp_start: 2000, rtp_end: 1000}\n", "rtp_start"),
        ("ari: {password: pw, request_timeout: -1}\n", "must be a positive number"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_invalid_values_are_rejected_with_the_key_named(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})


def test_a_config_file_named_in_the_environment_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="not found"):
        load_config(env={"DIALER_CONFIG": str(missing)})

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import load_config
from dialer.errors import ConfigError
from dialer.testbed.render import CONF_SRC, conf_values, render_dir, render_text


def test_placeholders_are_filled_and_asterisk_variables_left_alone() -> None:
    text = "bind = {{ host }}:{{port}}\nexten => s,1,Stasis(${DIALER_APP})\n"
    out = render_text(text, {"host": "127.0.0.1", "port": "5060"}, "x.conf")
    assert out == "bind = 127.0.0.1:5060\nexten => s,1,Stasis(${DIALER_APP})\n"


def test_an_unknown_placeholder_names_file_and_line() -> None:
    with pytest.raises(ConfigError, match=r"x\.conf:2: unknown placeholder '\{\{ nope \}\}'"):
        render_text("a\n{{ nope }}\n", {}, "x.conf")


def test_a_multi_line_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="single line"):
        render_text("password = {{ pw }}", {"pw": "a\n[evil]"}, "ari.conf")


def test_credentials_come_from_the_config_not_the_files(tmp_path: Path) -> None:
    cfg_file = tmp_path / "d.yaml"
    cfg_file.write_text("ari: {username: ops, password: s3cret, app: blue}\n")
    cfg = load_config(cfg_file, env={})
    out = tmp_path / "etc"
    render_dir(CONF_SRC, out, conf_values(cfg, "/etc/x"), testbed=False)
    ari = (out / "ari.conf").read_text()
    assert "[ops]" in ari
    assert "password = s3cret" in ari
    assert "Stasis(blue,inbound" in (out / "extensions.conf").read_text()
    assert "s3cret" not in "".join(p.read_text() for p in CONF_SRC.rglob("*.conf"))


def test_production_render_never_loads_testbed_parts(tmp_path: Path) -> None:
    cfg_file = tmp_path / "d.yaml"
    cfg_file.write_text("ari: {password: pw}\n")
    values = conf_values(load_config(cfg_file, env={}), "/etc/x")
    prod, bed = tmp_path / "prod", tmp_path / "bed"
    render_dir(CONF_SRC, prod, values, testbed=False)
    render_dir(CONF_SRC, bed, values, testbed=True)
    assert not (prod / "testbed").exists()
    assert "simcust" not in "".join(p.read_text() for p in prod.glob("*.conf"))
    assert '#include "testbed/extensions.conf"' in (bed / "extensions.conf").read_text()
    assert "[simcust]" in (bed / "testbed" / "extensions.conf").read_text()

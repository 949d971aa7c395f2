"""Render `asterisk_conf/` into a directory Asterisk reads.

The files hold `{{ name }}` placeholders (Asterisk's own `${...}` syntax is left alone). Every
placeholder must have a value and every value must be a single line, so a typo or a missing
setting fails loudly here instead of becoming a silent Asterisk default.

Production files are the top-level `*.conf`; the `testbed/` subfolder holds test-only parts
(simulated customers, sipp peers). Only the testbed render appends an `#include` for them, so
production never loads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from dialer.config import Config
from dialer.errors import ConfigError

CONF_SRC = Path(__file__).resolve().parents[2] / "asterisk_conf"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
TESTBED_SUBDIR = "testbed"


def conf_values(config: Config, etc_dir: str) -> dict[str, str]:
    """The placeholder values, all taken from the dialer's config."""
    tb = config.testbed
    ast = config.asterisk
    return {
        "etc_dir": etc_dir,
        "http_bind": config.ari.host,
        "http_port": str(config.ari.port),
        "ari_username": config.ari.username,
        "ari_password": config.ari.password.value,
        "ari_app": config.ari.app,
        "sip_bind": ast.sip_bind,
        "sip_port": str(ast.sip_port),
        "rtp_start": str(ast.rtp_start),
        "rtp_end": str(ast.rtp_end),
        "sipp_answer_port": str(tb.sipp_answer_port),
        "sipp_busy_port": str(tb.sipp_busy_port),
        "sipp_ring_port": str(tb.sipp_ring_port),
        "sipp_reject_port": str(tb.sipp_reject_port),
        "sipp_agents_port": str(tb.sipp_agents_port),
        "sipp_agent_dtmf_port": str(tb.sipp_agent_dtmf_port),
    }


def render_text(text: str, values: Mapping[str, str], source: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = text.count("\n", 0, match.start()) + 1
            raise ConfigError(f"{source}:{line}: unknown placeholder '{{{{ {name} }}}}'")
        value = values[name]
        if "\n" in value or "\r" in value:
            raise ConfigError(f"{source}: value for '{name}' must be a single line")
        return value

    return PLACEHOLDER.sub(substitute, text)


def render_dir(src: Path, dest: Path, values: Mapping[str, str], *, testbed: bool) -> list[Path]:
    """Render every `*.conf` of `src` into `dest`; with `testbed`, add the test-only parts."""
    if not src.is_dir():
        raise ConfigError(f"{src}: Asterisk configuration directory not found")
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    extra = src / TESTBED_SUBDIR
    for path in sorted(src.glob("*.conf")):
        text = render_text(path.read_text(encoding="utf-8"), values, str(path))
        if testbed and (extra / path.name).exists():
            text += f'\n; --- testbed only ---\n#include "{TESTBED_SUBDIR}/{path.name}"\n'
        out = dest / path.name
        out.write_text(text, encoding="utf-8")
        written.append(out)
    if testbed and extra.is_dir():
        (dest / TESTBED_SUBDIR).mkdir(exist_ok=True)
        for path in sorted(extra.glob("*.conf")):
            out = dest / TESTBED_SUBDIR / path.name
            out.write_text(render_text(path.read_text(encoding="utf-8"), values, str(path)),
                           encoding="utf-8")
            written.append(out)
    return written

"""Every file in bad_flows/ fails with the code and at the line its first comment declares.

A bad file starts with `# expect: CODE @ LINE`, optionally `# file: NAME` (the name it takes in
the flow directory, e.g. `_schedules.yaml`; default: its own name). It is copied with the files
of bad_flows/_base/ (shared schedules and queues, a subflow, prompt recordings) into a fresh
directory, which is then loaded and validated as the server would.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dialer.ivr.loader import load_flowset

HERE = Path(__file__).parent / "bad_flows"
BASE = HERE / "_base"
EXPECT = re.compile(r"^# expect: ([EW]\d{3}) @ (\d+)$")
FILE = re.compile(r"^# file: (\S+)$")
BAD_FILES = sorted(HERE.glob("*.yaml"))


def _header(path: Path) -> tuple[str, int, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    match = EXPECT.match(lines[0])
    assert match, f"{path.name}: first line must be `# expect: CODE @ LINE`"
    named = FILE.match(lines[1])
    return match.group(1), int(match.group(2)), named.group(1) if named else path.name


def _flow_dir(tmp_path: Path, bad: Path, name: str) -> Path:
    directory = tmp_path / "ivr_flows"
    shutil.copytree(BASE, directory)
    shutil.copyfile(bad, directory / name)
    return directory


def test_there_are_at_least_thirty_bad_files() -> None:
    assert len(BAD_FILES) >= 30


def test_the_base_directory_is_clean(tmp_path: Path) -> None:
    directory = tmp_path / "ivr_flows"
    shutil.copytree(BASE, directory)
    flowset, diags = load_flowset(directory)
    assert [d.format_text() for d in diags] == []
    assert flowset is not None


@pytest.mark.parametrize("bad", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_flow_fails_with_expected_code_at_expected_line(tmp_path: Path, bad: Path) -> None:
    code, line, name = _header(bad)
    directory = _flow_dir(tmp_path, bad, name)
    flowset, diags = load_flowset(directory)
    target = str(directory / name)
    mine = [d for d in diags if d.pos.file == target]
    shown = "\n".join(d.format_text() for d in diags)
    assert (code, line) in [(d.code, d.pos.line) for d in mine], shown
    # No other error in the file: the check is precise, not a shotgun.
    others = [d for d in mine if d.is_error and d.code != code]
    assert others == [], shown
    # Nothing but this file is blamed (the base is clean on its own).
    assert all(d.pos.file == target for d in diags if d.is_error), shown
    if code.startswith("E"):
        assert flowset is None  # an error blocks the whole set: the server keeps its last good one
    else:
        assert flowset is not None  # warnings do not block

"""Shared fixtures. Integration tests run against the real testbed, which the session starts
(provisioning it if needed) and stops at the end if it started it. A missing prerequisite is a
failure, never a skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.config import Config, load_config
from dialer.testbed import Testbed

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(REPO / "dialer.yaml", env={})


@pytest.fixture(scope="session")
def testbed(config: Config) -> Iterator[Testbed]:
    bed = Testbed(config, report=lambda msg: None)
    already_up = all(row.pid for row in bed.status()[1:])
    bed.up()
    yield bed
    if not already_up:
        bed.down()

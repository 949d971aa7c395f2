"""Every diagnostic code of the catalogue is exercised by a bad file (or named here with the
test that covers it), so a code cannot silently stop firing."""

from __future__ import annotations

import re
from pathlib import Path

from dialer.ivr import validate

BAD = Path(__file__).parent / "bad_flows"
# Codes checked elsewhere: E000 is a bug report (never expected), E402 needs a campaign and a
# flow together (test_ivr_validate.py::test_a_lead_field_outside_the_campaign_lead_schema_is_e402).
ELSEWHERE = {"E000", "E402"}


def catalogue() -> set[str]:
    assert validate.__doc__ is not None
    return set(re.findall(r"^\| ([EW]\d{3}) \|", validate.__doc__, re.MULTILINE))


def test_every_catalogue_code_has_a_bad_file() -> None:
    expected = {line.split()[2] for path in BAD.glob("*.yaml")
                for line in path.read_text(encoding="utf-8").splitlines()[:1]}
    assert len(catalogue()) > 40
    assert sorted(catalogue() - expected - ELSEWHERE) == []


def test_bad_files_only_expect_codes_of_the_catalogue() -> None:
    expected = {line.split()[2] for path in BAD.glob("*.yaml")
                for line in path.read_text(encoding="utf-8").splitlines()[:1]}
    assert sorted(expected - catalogue()) == []

"""The simulator: scripted input tokens, virtual time, mocked HTTP/queues, and a trace with
file:line, resolved prompts and masked PII."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.ivr import model as m
from dialer.ivr.loader import load_flowset
from dialer.ivr.simulate import (
    HttpMock,
    InputError,
    Mocks,
    QueueMock,
    Simulator,
    Token,
    load_http_mock,
    parse_at,
    parse_duration,
    parse_input,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "ivr_flows"
SIM_FLOWS = Path(__file__).resolve().parent / "sim_flows"
NY = "America/New_York"


@pytest.fixture(scope="module")
def examples() -> m.FlowSet:
    flowset, diags = load_flowset(EXAMPLES)
    assert flowset is not None, [d.format_text() for d in diags]
    return flowset


@pytest.fixture(scope="module")
def accounts() -> m.FlowSet:
    flowset, diags = load_flowset(SIM_FLOWS)
    assert flowset is not None, [d.format_text() for d in diags]
    return flowset


# ------------------------------------------------------------------ tokens and durations


def test_given_a_script_then_tokens_come_out_in_order() -> None:
    assert parse_input("1, 12345678#,<timeout>,<wait 70s>,<WAIT 2500ms>,*,<hangup>") == [
        Token("keys", keys="1"),
        Token("keys", keys="12345678#"),
        Token("timeout"),
        Token("wait", seconds=70.0),
        Token("wait", seconds=2.5),
        Token("keys", keys="*"),
        Token("hangup"),
    ]
    assert parse_input(["01", "#"]) == [Token("keys", keys="01"), Token("keys", keys="#")]
    assert parse_input("") == []


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("1,,2", "token 2 is empty"),
        ("1,x9", "not DTMF keys (bad: x)"),
        ("<wait 70>", "not a duration with a unit"),
        ("<sleep 2s>", "expected <timeout>, <hangup> or <wait 70s>"),
        ("<timeout", "missing '>'"),
    ],
)
def test_given_a_bad_script_then_the_error_names_the_token(script: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_input(script)


@pytest.mark.parametrize(("text", "seconds"), [("6s", 6.0), ("2500ms", 2.5), ("1.5m", 90.0), ("1h", 3600.0)])
def test_durations_need_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    with pytest.raises(InputError):
        parse_duration("6")


def test_given_a_local_time_then_it_is_placed_in_the_zone() -> None:
    at = parse_at("2026-12-24 11:30", zone=NY)
    assert at.utcoffset() == dt.timedelta(hours=-5)
    assert parse_at("2026-12-24T11:30+01:00").utcoffset() == dt.timedelta(hours=1)
    with pytest.raises(InputError, match="unknown time zone"):
        parse_at("2026-12-24 11:30", zone="Mars/Olympus")
    with pytest.raises(InputError, match="YYYY-MM-DD HH:MM"):
        parse_at("Christmas")


# ------------------------------------------------------------------ mocks


def test_given_mock_mappings_then_they_are_parsed_with_units() -> None:
    mocks = Mocks.parse(
        {
            "http": {"lookup": [{"status": 503}, {"status": 200, "json": {"a": 1}, "latency": "300ms"}]},
            "queue": {"support": {"outcome": "answered", "after": "20s", "position": 3, "ewt": "4m"}},
            "transfer": {"xfer": "busy"},
            "callback": "error",
            "voicemail": {"vm": "empty"},
        }
    )
    assert mocks.http["lookup"] == (HttpMock(status=503), HttpMock(status=200, json={"a": 1}, latency=0.3))
    assert mocks.queues["support"] == QueueMock("answered", 20.0, 3, 240.0)
    assert mocks.transfers["xfer"].outcome == "busy"
    assert not mocks.callback.ok
    assert mocks.voicemail == {"vm": 0.0}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"smtp": {}}, "unknown mock kind"),
        ({"http": {"n": {"status": 99}}}, "not an HTTP status"),
        ({"http": {"n": {"body": 1}}}, "unknown http mock field"),
        ({"queue": {"q": "maybe"}}, "expected one of answered"),
        ({"callback": "sometimes"}, "expected ok or error"),
    ],
)
def test_given_bad_mocks_then_the_error_names_the_place(raw: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        Mocks.parse(raw)


def test_given_an_http_mock_file_then_a_plain_body_means_200(tmp_path: Path) -> None:
    body = tmp_path / "gold.json"
    body.write_text(json.dumps({"tier": "gold"}))
    assert load_http_mock(body, where="--mock") == (HttpMock(status=200, json={"tier": "gold"}),)
    full = tmp_path / "slow.json"
    full.write_text(json.dumps({"status": 200, "json": {"tier": "x"}, "latency": "3s"}))
    assert load_http_mock(full, where="--mock")[0].latency == 3.0
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match=r"bad.json:1:2: invalid JSON"):
        load_http_mock(bad, where="--mock")


# ------------------------------------------------------------------ simulated calls


def test_given_the_example_flow_then_the_trace_shows_file_line_prompts_and_the_end(
    examples: m.FlowSet,
) -> None:
    sim = Simulator(
        examples,
        "inbound_main",
        at=parse_at("2026-12-24 11:30", zone=NY),
        tokens=parse_input("2,1"),
        mocks=Mocks(queues={"billing": QueueMock("answered", 20.0)}),
    )
    result = sim.simulate()
    text = result.text()
    assert "check_hours        [inbound_main.yaml:16] hours" in text
    assert "exception 'Christmas Eve' 08:00-12:00" in text
    assert 'PLAY tts:"Para facturación, oprima 1.' in text
    assert "set call.language=es" in text
    assert "ENQUEUE billing skills=[billing≥1, spanish≥3]" in text
    assert "END   outcome=agent disposition=agent_answered:billing" in text.splitlines()[-1]
    assert result.path == ["check_hours", "pick_language", "main_menu", "billing_queue"]
    assert result.ended is not None
    assert result.ended.outcome == "agent"


def test_given_pii_and_secrets_then_the_trace_masks_them(accounts: m.FlowSet) -> None:
    mocks = Mocks(http={"lookup": (HttpMock(json={"tier": "gold", "first_name": "Ana"}),)})
    result = Simulator(
        accounts, "account_line", at=parse_at("2026-12-02 10:00"), tokens=parse_input("123456#"), mocks=mocks
    ).simulate()
    text = result.text()
    assert "set vars.account_id=****56" in text
    assert "HTTP GET https://crm.test/accounts/****56" in text  # masked in the URL too
    assert "123456" not in text
    assert result.vars["account_id"] == "123456"  # the real value stays in the run
    assert "<secret:crm_token>" not in text  # headers are never printed


def test_given_a_slow_server_then_the_filler_plays_and_virtual_time_reaches_the_timeout(
    accounts: m.FlowSet,
) -> None:
    mocks = Mocks(http={"lookup": (HttpMock(failure="timeout"),)})
    result = Simulator(
        accounts, "account_line", at=parse_at("2026-12-02 10:00"), tokens=parse_input("123456#"), mocks=mocks
    ).simulate()
    assert [p.text for p in result.prompts if p.purpose == "filler"] == [
        "One moment please."
    ]  # once per visit
    assert result.path == ["get_account", "lookup", "sorry"]
    assert result.duration > 4.0  # two attempts of 2 s each


def test_given_a_wait_then_the_next_key_barges_in(examples: m.FlowSet) -> None:
    result = Simulator(
        examples,
        "safe_harbor",
        at=parse_at("2026-12-02 10:00"),
        tokens=parse_input("<wait 2s>,9"),
    ).simulate()
    assert "STOP playback (barge-in)" in result.text()
    assert result.path == ["message", "opted_out"]
    assert result.disposition == "dnc"


def test_given_input_left_over_then_it_is_reported(examples: m.FlowSet) -> None:
    result = Simulator(
        examples, "safe_harbor", at=parse_at("2026-12-02 10:00"), tokens=parse_input("<hangup>,1,2")
    ).simulate()
    assert result.ended is not None
    assert result.ended.outcome == "caller_hangup"
    assert [str(t) for t in result.unused_tokens] == ["1", "2"]
    assert "(input not used: 1,2)" in result.text()


def test_given_a_language_the_flow_does_not_have_then_the_simulator_refuses(examples: m.FlowSet) -> None:
    with pytest.raises(InputError, match="not one of the flow's languages"):
        Simulator(examples, "inbound_main", at=parse_at("2026-12-02 10:00"), language="fr")


# ------------------------------------------------------------------ the CLI


def test_flows_simulate_prints_the_trace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mock = tmp_path / "gold.json"
    mock.write_text(json.dumps({"tier": "gold", "first_name": "Ana"}))
    code = main(
        [
            "flows",
            "simulate",
            str(SIM_FLOWS / "account_line.yaml"),
            "--at",
            "2026-12-02 10:00",
            "--input",
            "123456#",
            "--mock",
            f"lookup={mock}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "[account_line.yaml:15] collect" in out
    assert 'tts:"Welcome back Ana, our gold member. Account ending ****56."' in out
    assert "disposition=gold" in out


def test_flows_simulate_with_a_queue_option(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "flows", "simulate", "inbound_main", "--dir", str(EXAMPLES), "--at", "2026-12-02 10:00",
            "--input", "1,2", "--queue", "support=no_agents", "--voicemail", "leave_voicemail=5s",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "← queue no_agents" in out
    assert "leave_voicemail" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--input", "1,zz"], "not DTMF keys"),
        (["--queue", "support"], "expected NAME=VALUE"),
        (["--at", "tomorrow"], "YYYY-MM-DD HH:MM"),
        (["--mock", "lookup=/nonexistent.json"], "cannot read"),
    ],
)
def test_flows_simulate_rejects_bad_options_clearly(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code = main(["flows", "simulate", str(EXAMPLES / "inbound_main.yaml"), *argv])
    assert code == 1
    assert fragment in capsys.readouterr().err

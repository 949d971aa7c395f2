"""Scenario files: the example flows' scenarios pass (this is what runs them in CI), failures
and malformed files are reported with file:line, and coverage lists what was never reached."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.ivr import model as m
from dialer.ivr.loader import load_flowset
from dialer.ivr.scenarios import ScenarioError, flow_edges, format_report, load_scenarios, run_directory

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "ivr_flows"
SIM_FLOWS = Path(__file__).resolve().parent / "sim_flows"


def _flowset(directory: Path) -> m.FlowSet:
    flowset, diags = load_flowset(directory)
    assert flowset is not None, [d.format_text() for d in diags]
    return flowset


@pytest.mark.parametrize("directory", [EXAMPLES, SIM_FLOWS], ids=["ivr_flows", "sim_flows"])
def test_every_scenario_of_the_flows_passes_and_covers_every_node(directory: Path) -> None:
    flowset = _flowset(directory)
    report = run_directory(directory, flowset)
    failed = [f"{r.scenario.name}: {r.failures}" for r in report.results if not r.passed]
    assert report.errors == []
    assert failed == []
    assert report.ok
    scenario_flows = {r.scenario.flow for r in report.results}
    assert scenario_flows == set(flowset.flows), "every flow has scenarios"
    for cov in report.coverage.values():
        assert cov.missing_nodes == [], f"{cov.flow}: nodes never visited {cov.missing_nodes}"


def test_flows_test_command_passes_on_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["flows", "test", str(EXAMPLES)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "coverage:" in out
    assert "inbound_main" in out
    assert " 0 failed" in out


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(SIM_FLOWS, target)
    return target


def test_given_a_wrong_expectation_then_the_scenario_fails_with_the_trace_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = _copy(tmp_path)
    (flows / "tests" / "account_line.yaml").write_text(
        "flow: account_line\n"
        "scenarios:\n"
        "  - name: wrong on purpose\n"
        '    input: "<timeout>,<timeout>"\n'
        "    expect: {disposition: gold, path: [get_account, lookup], prompts: [Hello]}\n"
    )
    code = main(["flows", "test", str(flows)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  wrong on purpose" in out
    assert "disposition: expected 'gold', got 'error'" in out
    assert "path: expected get_account > lookup" in out
    assert "'Hello' was not played at all" in out
    assert "| " in out  # the trace of the failure is shown
    assert "1 scenario: 0 passed, 1 failed" in out


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("flow: account_line\nscenarios: []\n", "scenarios: must be a non-empty list"),
        ("flow: account_line\nscenarios:\n  - name: x\n    input: '1'\n", "expect: must check something"),
        ("flow: account_line\nscenarios:\n  - name: x\n    exepct: {}\n", "unknown scenario field 'exepct'"),
        (
            "flow: account_line\nscenarios:\n  - input: '1'\n    expect: {problems: 0}\n",
            "scenario without a name",
        ),
        (
            "flow: account_line\nscenarios:\n  - name: x\n    expect: {paht: []}\n",
            "unknown expectation 'paht'",
        ),
        ("flow: [unclosed\n", "E001"),
    ],
)
def test_given_a_malformed_scenario_file_then_the_error_points_at_the_line(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenarios(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_given_a_malformed_file_in_a_directory_then_the_test_command_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = _copy(tmp_path)
    (flows / "tests" / "broken.yaml").write_text(
        "flow: nope\nscenarios:\n  - name: x\n    expect: {problems: 0}\n"
    )
    code = main(["flows", "test", str(flows)])
    out = capsys.readouterr().out
    assert code == 1
    assert "no flow 'nope'" in out


def test_given_no_scenarios_then_the_test_command_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = _copy(tmp_path)
    shutil.rmtree(flows / "tests")
    assert main(["flows", "test", str(flows)]) == 1
    assert "no scenarios found" in capsys.readouterr().out


def test_given_a_flow_then_its_edges_are_every_written_transition() -> None:
    flow = _flowset(EXAMPLES).flows["inbound_main"]
    edges = flow_edges(flow)
    assert ("main_menu", "option *") in edges
    assert ("(hotkeys)", "hotkey 0") in edges
    assert ("(defaults)", "on_error") in edges
    assert ("check_hours", "holiday") in edges
    assert ("billing_queue", "exit 9") in edges
    assert ("billing_queue", "offer_callback") in edges
    assert ("pick_language", "on_no_input") not in edges  # not written: falls back


def test_given_partial_scenarios_then_coverage_lists_what_was_missed(tmp_path: Path) -> None:
    flows = _copy(tmp_path)
    (flows / "tests" / "account_line.yaml").write_text(
        "flow: account_line\n"
        "scenarios:\n"
        "  - name: silence\n"
        '    input: "<timeout>,<timeout>"\n'
        "    expect: {path: [get_account, sorry]}\n"
    )
    report = run_directory(flows, _flowset(flows))
    cov = report.coverage["account_line"]
    assert cov.missing_nodes == ["gold", "lookup", "route", "standard"]
    assert ("get_account", "on_max_attempts") in cov.taken
    text = format_report(report)
    assert "nodes 2/6 (33%)" in text
    assert "nodes never visited: gold, lookup, route, standard" in text

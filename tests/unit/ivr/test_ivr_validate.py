"""The validator on good flows, its output formats and the `dialer flows check` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.ivr.diagnostics import Diagnostic, sorted_diagnostics
from dialer.ivr.loader import load_flowset
from dialer.ivr.model import Pos
from dialer.ivr.validate import wav_problem

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "ivr_flows"
BASE = Path(__file__).parent / "bad_flows" / "_base"

HEAD = """\
flow: {name}
kind: {kind}
languages: [en]
defaults:
  tts: {{voice: {{en: en-us}}}}
start: hello
nodes:
"""


def flow_dir(tmp_path: Path, name: str, nodes: str, *, kind: str = "inbound",
             head: str = HEAD) -> Path:
    directory = tmp_path / "flows"
    if not directory.exists():
        shutil.copytree(BASE, directory)
    (directory / f"{name}.yaml").write_text(head.format(name=name, kind=kind) + nodes,
                                            encoding="utf-8")
    return directory


def codes(diags: list[Diagnostic]) -> list[tuple[str, int]]:
    return [(d.code, d.pos.line) for d in diags]


def test_the_example_flows_validate_clean_without_warnings() -> None:
    flowset, diags = load_flowset(EXAMPLES)
    assert [d.format_text() for d in diags] == []
    assert flowset is not None


def test_dialer_flows_check_passes_on_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "check", str(EXAMPLES)]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_check_prints_file_line_col_code_and_help_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = flow_dir(tmp_path, "typo", """\
  hello:
    type: say
    prompt: "tts:Hello."
    next: goodby
  goodbye:
    type: hangup
""")
    assert main(["flows", "check", str(directory)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{directory}/typo.yaml:11:11: error[E101]: 'hello.next' -> 'goodby': no such node"
    assert out[1] == f"   help: did you mean 'goodbye'? (defined at {directory}/typo.yaml:12:3)"
    assert out[-1].endswith("1 error, 1 warning")


def test_check_json_lists_every_diagnostic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = flow_dir(tmp_path, "typo", """\
  hello:
    type: say
    prompt: "tts:Hello."
    next: goodby
  goodbye:
    type: hangup
""")
    assert main(["flows", "check", "--format", "json", str(directory)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["errors"], report["warnings"]) == (1, 1)
    first = report["diagnostics"][0]
    assert (first["code"], first["line"], first["col"], first["severity"]) == ("E101", 11, 11, "error")


def test_check_github_format_emits_annotations(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    directory = flow_dir(tmp_path, "typo", """\
  hello:
    type: say
    prompt: "tts:Hello."
    next: goodby
  goodbye:
    type: hangup
""")
    main(["flows", "check", "--format", "github", str(directory)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"::error file={directory}/typo.yaml,line=11,col=11,title=E101::")
    assert lines[1].startswith("::warning ")


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    directory = flow_dir(tmp_path, "extra", """\
  hello:
    type: say
    prompt: "tts:Hello."
    next: bye
  bye:
    type: hangup
  unused:
    type: hangup
""")
    assert main(["flows", "check", str(directory)]) == 0
    assert main(["flows", "check", "--strict", str(directory)]) == 1


def test_checking_one_file_reports_only_that_file(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    flow_dir(tmp_path, "bad", "  hello:\n    type: say\n    prompt: \"tts:Hi.\"\n    next: nowhere\n")
    directory = flow_dir(tmp_path, "good", """\
  hello:
    type: say
    prompt: "tts:Hello."
    next: bye
  bye:
    type: hangup
""")
    (tmp_path / "notes.txt").write_text("not a flow")
    assert main(["flows", "check", str(directory / "good.yaml"), str(tmp_path / "notes.txt")]) == 0
    capsys.readouterr()
    assert main(["flows", "check", str(directory / "bad.yaml")]) == 1
    assert "bad.yaml:11:11: error[E101]" in capsys.readouterr().out


def test_a_missing_path_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "check", str(tmp_path / "nope")]) == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_diagnostics_sort_by_file_line_col_and_drop_repeats() -> None:
    a = Diagnostic("E101", "x", Pos("b.yaml", 3, 1))
    b = Diagnostic("W103", "y", Pos("a.yaml", 9, 1))
    c = Diagnostic("E002", "z", Pos("b.yaml", 1, 5))
    assert sorted_diagnostics([a, b, c, a]) == [b, c, a]


def test_a_subflow_whose_outcomes_are_all_handled_is_clean(tmp_path: Path) -> None:
    directory = flow_dir(tmp_path, "caller", """\
  hello:
    type: subflow
    flow: verify_pin
    returns: {verified: bye, failed: bye}
  bye:
    type: hangup
""")
    flowset, diags = load_flowset(directory)
    assert codes(diags) == []
    assert flowset is not None


def test_hotkeys_false_on_a_menu_silences_the_shadow_warning(tmp_path: Path) -> None:
    head = HEAD.replace("start: hello", 'hotkeys: {{"0": bye}}\nstart: hello')
    directory = flow_dir(tmp_path, "quiet", """\
  hello:
    type: menu
    prompt: "tts:Press 0."
    hotkeys: false
    options: {"0": bye}
    on_max_attempts: bye
  bye:
    type: hangup
""", head=head)
    assert codes(load_flowset(directory)[1]) == []


def test_language_fallback_default_language_accepts_a_missing_variant(tmp_path: Path) -> None:
    head = """\
flow: {name}
kind: {kind}
languages: [en, es]
defaults:
  tts: {{voice: {{en: en-us, es: es}}}}
  language_fallback: default_language
start: hello
nodes:
"""
    directory = flow_dir(tmp_path, "fallback", """\
  hello:
    type: say
    prompt: {en: "tts:Hello."}
    next: bye
  bye:
    type: hangup
""", head=head)
    assert codes(load_flowset(directory)[1]) == []


def test_an_outbound_queue_without_max_wait_breaks_the_two_second_rule(tmp_path: Path) -> None:
    directory = flow_dir(tmp_path, "out", """\
  hello:
    type: queue
    queue: sales
    on_timeout: harbor
    on_full: harbor
    on_no_agents: harbor
  harbor:
    type: safe_harbor
    seller: Acme
    callback_number: "+15550100"
    opt_out_key: "9"
""", kind="outbound")
    assert codes(load_flowset(directory)[1]) == [("E702", 8)]


def test_on_error_default_counts_as_the_safe_harbor_path(tmp_path: Path) -> None:
    head = HEAD.replace("start: hello", "start: hello").replace(
        "  tts: {{voice: {{en: en-us}}}}\n", "  tts: {{voice: {{en: en-us}}}}\n  on_error: harbor\n")
    directory = flow_dir(tmp_path, "out", """\
  hello:
    type: queue
    queue: sales
    max_wait: 2s
  harbor:
    type: safe_harbor
    seller: Acme
    callback_number: "+15550100"
    opt_out_key: "9"
""", kind="outbound", head=head)
    assert codes(load_flowset(directory)[1]) == []


def test_a_tts_language_without_voice_is_reported_once(tmp_path: Path) -> None:
    head = HEAD.replace("languages: [en]", "languages: [en, fr]")
    directory = flow_dir(tmp_path, "novoice", """\
  hello:
    type: say
    prompt: "tts:Hello."
    next: bye
  bye:
    type: hangup
    prompt: "tts:Bye."
""", head=head)
    assert codes(load_flowset(directory)[1]) == [("E303", 10)]


def test_wav_headers_are_read(tmp_path: Path) -> None:
    assert wav_problem(BASE / "prompts" / "en" / "good_8k.wav") is None
    problem = wav_problem(BASE / "prompts" / "en" / "stereo_44k.wav")
    assert problem is not None
    assert "mono" in problem
    (tmp_path / "x.wav").write_bytes(b"ID3\x03garbage")
    assert wav_problem(tmp_path / "x.wav") == "not a RIFF/WAVE file"


def test_a_lead_field_outside_the_campaign_lead_schema_is_e402(tmp_path: Path) -> None:
    directory = flow_dir(tmp_path, "unused", "  hello: {type: hangup}\n")
    (directory / "unused.yaml").unlink()
    (directory / "_campaigns.yaml").write_text("""\
campaigns:
  spring:
    flow: callout
    ring_timeout: 20s
    lead_schema: {last_name: string}
""", encoding="utf-8")
    _, diags = load_flowset(directory)
    assert [(d.code, Path(d.pos.file).name, d.pos.line) for d in diags] == [
        ("E402", "callout.yaml", 10)]
    assert "lead.first_name" in diags[0].message


def test_the_example_campaign_names_its_flow_and_window() -> None:
    flowset, _ = load_flowset(EXAMPLES)
    assert flowset is not None
    campaign = flowset.campaigns["parks_phonebank"]
    assert (campaign.flow, campaign.dial_mode, campaign.ring_timeout) == (
        "phonebank_outbound", "predictive", 20.0)
    assert campaign.seller == "Citizens for Parks"
    assert campaign.calling_window == "phonebank_window"


def test_a_digit_hotkey_over_a_collect_is_a_warning_unless_turned_off(tmp_path: Path) -> None:
    head = HEAD.replace("start: hello", 'variables: {{code: {{type: digits}}}}\nhotkeys: {{"0": bye}}\n'
                                        "start: hello")
    nodes = """\
  hello:
    type: collect
    prompt: "tts:Your code?"
    into: vars.code
    max_digits: 4
    next: bye
    on_max_attempts: bye
  bye:
    type: hangup
"""
    directory = flow_dir(tmp_path, "code", nodes, head=head)
    assert codes(load_flowset(directory)[1]) == [("W205", 10)]
    quiet = nodes.replace("    max_digits: 4\n", "    max_digits: 4\n    hotkeys: false\n")
    flow_dir(tmp_path, "code", quiet, head=head)
    assert codes(load_flowset(directory)[1]) == []


def test_a_built_in_safe_harbor_text_needs_a_voice_for_each_language(tmp_path: Path) -> None:
    head = HEAD.replace("languages: [en]", "languages: [en, fr]")
    directory = flow_dir(tmp_path, "builtin", """\
  hello:
    type: safe_harbor
    seller: Acme
    callback_number: "+15550100"
    opt_out_key: "9"
""", kind="outbound", head=head)
    assert [(d.code, d.pos.line) for d in load_flowset(directory)[1]] == [("E303", 8)]

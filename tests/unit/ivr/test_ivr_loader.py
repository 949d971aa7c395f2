"""The flow loader: YAML 1.2 with positions, raw DTMF keys, units, and no exception ever
escaping on bad input (the server reloads flows while calls run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.ivr.loader import load_files, load_flowset, parse_duration
from dialer.ivr.model import (
    ANY_LANGUAGE,
    HANGUP,
    CollectNode,
    HoursNode,
    HttpNode,
    MenuNode,
    Pos,
    QueueNode,
    Recording,
    SafeHarborNode,
    Tts,
    outcome,
)
from dialer.ivr.yamltree import YMap, YScalar, parse_yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "ivr_flows"

MINIMAL = """\
flow: {name}
languages: [en]
defaults:
  tts: {{voice: {{en: en-us}}}}
start: hello
nodes:
  hello:
    type: say
    prompt: "tts:Hello."
    next: bye
  bye:
    type: hangup
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_given_the_example_directory_when_loaded_then_flows_are_typed_with_positions() -> None:
    flowset, diags = load_flowset(EXAMPLES)
    assert [d.format_text() for d in diags if d.is_error] == []
    assert flowset is not None
    assert set(flowset.flows) >= {"inbound_main", "phonebank_outbound", "safe_harbor"}
    main = flowset.flows["inbound_main"]
    assert main.languages == ("en", "es")
    assert main.defaults.tts_voice == {"en": "en-us", "es": "es"}
    assert main.defaults.input.timeout == 6.0
    check_hours = main.nodes["check_hours"]
    assert isinstance(check_hours, HoursNode)
    assert check_hours.schedule == "support_hours"
    assert check_hours.pos.file.endswith("inbound_main.yaml")
    assert check_hours.pos.line > 1
    menu = main.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    assert [o.key for o in menu.options] == ["1", "2", "9", "*"]
    option = menu.option("1")
    assert option is not None
    assert option.goto == "billing_queue"
    assert option.set == (("vars.reason", "billing"),)
    queue = main.nodes["billing_queue"]
    assert isinstance(queue, QueueNode)
    assert queue.max_wait == 15 * 60
    assert [s.skill for s in queue.skills] == ["billing", "spanish"]
    assert queue.offer_callback is not None
    assert queue.offer_callback.when_ewt_over == 180.0
    assert [r.number for r in flowset.routes] == ["+15550100", "100"]
    assert flowset.flow_for_number("100") is main
    assert flowset.schedules["support_hours"].timezone == "America/New_York"
    assert "volunteers" in flowset.queues
    assert len(flowset.version) == 12


def test_menu_keys_are_the_raw_text_so_leading_zeros_survive(tmp_path: Path) -> None:
    write(tmp_path, "keys.yaml", MINIMAL.format(name="keys").replace("""  bye:
    type: hangup
""", """  bye:
    type: hangup
  pick:
    type: menu
    prompt: "tts:Pick."
    options:
      01: bye
      1: bye
      "#": bye
    on_max_attempts: bye
"""))
    flowset, _ = load_files(tmp_path)
    menu = flowset.flows["keys"].nodes["pick"]
    assert isinstance(menu, MenuNode)
    assert [o.key for o in menu.options] == ["01", "1", "#"]


def test_yaml_1_2_keeps_no_as_a_string(tmp_path: Path) -> None:
    tree, diags = parse_yaml("a: no\nb: yes\nc: true\nd: 0o17\ne: 2025-12-25\n", "x.yaml")
    assert diags == []
    assert isinstance(tree, YMap)
    values = {k.raw: v.value for k, v in tree.items if isinstance(v, YScalar)}
    assert values == {"a": "no", "b": "yes", "c": True, "d": 15, "e": "2025-12-25"}


def test_every_duplicate_key_is_reported_not_only_the_first() -> None:
    _, diags = parse_yaml("a: 1\na: 2\nb: 1\nb: 2\n", "x.yaml")
    assert [(d.code, d.pos.line) for d in diags] == [("E002", 2), ("E002", 4)]


@pytest.mark.parametrize(("text", "seconds"), [("6s", 6.0), ("2500ms", 2.5), ("1m", 60.0),
                                               ("1.5h", 5400.0), ("+2m", 120.0)])
def test_durations_carry_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["6", "6 sec", "s", "", "-1s", "1d"])
def test_durations_without_a_known_unit_are_refused(text: str) -> None:
    assert parse_duration(text) is None


def test_prompts_keep_language_variants_and_fallback_text(tmp_path: Path) -> None:
    flowset, _ = load_files(EXAMPLES)
    harbor = flowset.flows["safe_harbor"].nodes["message"]
    assert isinstance(harbor, SafeHarborNode)
    assert harbor.prompt is not None
    es = harbor.prompt.for_language("es")
    assert es is not None
    assert isinstance(es[0], Tts)
    assert "Acme" in es[0].text
    write(tmp_path, "rec.yaml", MINIMAL.format(name="rec").replace(
        'prompt: "tts:Hello."', 'prompt: {file: welcome, tts: "Welcome."}'))
    flowset, _ = load_files(tmp_path)
    say = flowset.flows["rec"].nodes["hello"]
    prompt = getattr(say, "prompt", None)
    assert prompt is not None
    assert prompt.variants[ANY_LANGUAGE] == (Recording(name="welcome", tts="Welcome.",
                                                       pos=prompt.variants[ANY_LANGUAGE][0].pos),)


def test_outcomes_fall_back_to_defaults_on_error_and_safe_harbor_to_hangup() -> None:
    flowset, _ = load_files(EXAMPLES)
    phonebank = flowset.flows["phonebank_outbound"]
    harbor = phonebank.nodes["safe_harbor"]
    assert outcome(harbor, "next", None) is not None
    connect = phonebank.nodes["connect"]
    resolved = outcome(connect, "on_timeout", None)
    assert resolved is not None
    assert resolved.goto == "safe_harbor"
    main = flowset.flows["inbound_main"]
    menu = main.nodes["pick_language"]
    no_input = outcome(menu, "on_no_input", main.defaults.on_error)
    assert no_input is not None
    assert no_input.goto == "main_menu"  # falls back to on_max_attempts
    bare = SafeHarborNode(id="sh", type="safe_harbor", seller="Acme", callback_number="1",
                          opt_out_key="9")
    assert outcome(bare, "next", None) == HANGUP
    assert outcome(bare, "on_opt_out", None) == HANGUP


def test_collect_and_http_fields_are_typed(tmp_path: Path) -> None:
    write(tmp_path, "acct.yaml", """\
flow: acct
languages: [en]
defaults: {tts: {voice: {en: en-us}}}
variables: {account: {type: digits, pii: true}, tier: string}
start: ask
nodes:
  ask:
    type: collect
    prompt: "tts:Account number, then pound."
    into: vars.account
    min_digits: 6
    max_digits: 8
    finish_on_key: "#"
    validate: {regex: "^[0-9]+$"}
    next: lookup
    on_max_attempts: lookup
  lookup:
    type: http
    url: "https://crm.internal/a/{{ vars.account }}"
    headers: {Authorization: "Bearer {{ secrets.token }}"}
    timeout: 1500ms
    save: {vars.tier: "$.tier"}
    on_success: bye
    on_error: bye
  bye: {type: hangup}
""")
    flowset, diags = load_flowset(tmp_path)
    assert [d.format_text() for d in diags] == []
    assert flowset is not None
    flow = flowset.flows["acct"]
    ask, lookup = flow.nodes["ask"], flow.nodes["lookup"]
    assert isinstance(ask, CollectNode)
    assert (ask.min_digits, ask.max_digits, ask.finish_on_key) == (6, 8, "#")
    assert ask.validate is not None
    assert ask.validate.kind == "regex"
    assert isinstance(lookup, HttpNode)
    assert lookup.timeout == 1.5
    assert lookup.save == (("vars.tier", "$.tier"),)
    assert flow.variables["account"].pii is True
    kinds = {t.path: t.kind for t in flow.templates}
    assert kinds["nodes.lookup.headers.Authorization"] == "http"


@pytest.mark.parametrize("content", [
    b"", b"\xff\xfe\x00garbage", b"- just\n- a list\n", b"flow: [unclosed\n", b"\t\tflow: x",
    b"flow: x\nnodes: 3\n", b"flow: x\nnodes:\n  a: [1, 2]\n", b"flow: x\nstart: a\nnodes: {a: {type: 7}}\n",
    b"&a [*a]\n", b"flow: x\n---\nflow: y\n", b"a: !!python/object:os.system x\n",
    b"flow: x\nnodes:\n  a: {type: menu, options: {1: {goto: [b]}}, prompt: {en: [{}]}}\n",
    b"{" * 5000,
])
def test_a_broken_file_becomes_diagnostics_and_never_raises(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.yaml").write_bytes(content)
    write(tmp_path, "good.yaml", MINIMAL.format(name="good"))
    flowset, diags = load_flowset(tmp_path)
    assert flowset is None
    assert any(d.is_error and d.pos.file.endswith("x.yaml") for d in diags)
    assert not any(d.code == "E000" for d in diags)


def test_a_missing_directory_is_a_diagnostic(tmp_path: Path) -> None:
    flowset, diags = load_flowset(tmp_path / "nope")
    assert flowset is None
    assert [d.code for d in diags] == ["E001"]


def test_a_broken_file_does_not_hide_the_others_diagnostics(tmp_path: Path) -> None:
    write(tmp_path, "broken.yaml", "flow: [\n")
    write(tmp_path, "other.yaml", MINIMAL.format(name="other").replace("next: bye", "next: by"))
    _, diags = load_flowset(tmp_path)
    assert {(Path(d.pos.file).name, d.code) for d in diags if d.is_error} == {
        ("broken.yaml", "E001"), ("other.yaml", "E101")}


yaml_ish = st.text(alphabet=st.sampled_from(list("abfltwnoyes:-[]{}#*&!|>\"' \n\t01.,")), max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_ish)
def test_fuzzed_flow_text_never_raises(tmp_path: Path, text: str) -> None:
    shutil.rmtree(tmp_path / "f", ignore_errors=True)
    write(tmp_path / "f", "fz.yaml", "flow: fz\nstart: a\nnodes:\n  a:\n    " + text)
    flowset, diags = load_flowset(tmp_path / "f")
    assert not any(d.code == "E000" for d in diags), [d.format_text() for d in diags]
    assert flowset is not None or any(d.is_error for d in diags)


def test_positions_are_one_based_file_line_col() -> None:
    tree, _ = parse_yaml("a:\n  b: c\n", "f.yaml")
    assert isinstance(tree, YMap)
    inner = tree.items[0][1]
    assert isinstance(inner, YMap)
    key, value = inner.items[0]
    assert key.pos == Pos("f.yaml", 2, 3)
    assert isinstance(value, YScalar)
    assert value.pos == Pos("f.yaml", 2, 6)


def test_the_version_changes_with_any_flow_file_or_recording(tmp_path: Path) -> None:
    write(tmp_path, "v.yaml", MINIMAL.format(name="v"))
    first, _ = load_files(tmp_path)
    again, _ = load_files(tmp_path)
    assert first.version == again.version
    (tmp_path / "prompts" / "en").mkdir(parents=True)
    (tmp_path / "prompts" / "en" / "hi.wav").write_bytes(b"RIFF")
    with_recording, _ = load_files(tmp_path)
    assert with_recording.version != first.version
    write(tmp_path, "v.yaml", MINIMAL.format(name="v") + "  # a comment\n")
    edited, _ = load_files(tmp_path)
    assert edited.version not in (first.version, with_recording.version)


def test_unquoted_hash_and_star_are_caught_in_every_dtmf_block_but_comments_are_not() -> None:
    text = """\
hotkeys:
  # press 0 for the operator: a real comment
  #: operator
nodes:
  q:
    exit_keys:
      *: leave
    options:
      "#": ok
      # note: fine
"""
    _, diags = parse_yaml(text, "f.yaml")
    assert [(d.code, d.pos.line, d.pos.col) for d in diags] == [("E006", 3, 3), ("E006", 7, 7)]
    assert diags[0].help == 'quote DTMF keys: "#": operator'

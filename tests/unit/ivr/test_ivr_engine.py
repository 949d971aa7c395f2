"""The IVR interpreter: event lists in, command lists out (IVR_FORMAT.md "Retries, timeouts and
prompt selection"). Flows are built in code so each test shows exactly the behaviour it pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.ivr import engine as e
from dialer.ivr import model as m
from tests.unit.ivr.engine_helpers import PL, T0, Call, P, T, bye, flow, flowset, opts


def menu(node_id: str = "main", **kw: object) -> m.MenuNode:
    fields: dict[str, object] = {
        "prompt": P("For billing press 1."),
        "options": opts(k1="billing", k2="support"),
        "on_max_attempts": T("operator"),
    }
    fields.update(kw)
    return m.MenuNode(id=node_id, type="menu", **fields)  # type: ignore[arg-type]


def basic(**kw: object) -> m.Flow:
    return flow(
        menu("main", **kw),
        bye("billing", "Billing."),
        bye("support", "Support."),
        bye("operator", "Operator."),
    )


# ------------------------------------------------------------------ menu: timing and barge-in


def test_given_a_menu_when_its_prompt_plays_then_the_input_timer_starts_only_at_the_end() -> None:
    call = Call(basic())
    assert call.of(e.Play, call.last)[0].text == "For billing press 1."
    assert [k for k in call.timers if k != "ivr_time"] == []
    call.prompt_done()
    assert call.of(e.StartTimer, call.last) == [e.StartTimer("c1-noinput2", 5.0)]


def test_given_barge_in_when_a_digit_arrives_during_the_prompt_then_playback_stops_and_the_digit_counts() -> (
    None
):
    call = Call(basic())
    pid = call.playing.playback_id if call.playing else ""
    out = call.digits("2")
    assert out[0] == e.StopPlayback(pid)
    assert call.path == ["main", "support"]
    # ARI reports PlaybackFinished for the stopped playback too: it must change nothing.
    assert call.send(e.PromptFinished(pid)) == []


def test_given_no_barge_in_when_a_digit_arrives_during_the_prompt_then_it_is_dropped() -> None:
    call = Call(basic(input=m.InputSettings(barge_in=False)))
    assert call.digits("2") == []
    call.prompt_done()
    call.digits("1")
    assert call.path == ["main", "billing"]


def test_given_options_1_and_12_when_1_is_pressed_then_the_menu_waits_the_inter_digit_timeout() -> None:
    call = Call(
        flow(menu(options=opts(k1="billing", k12="support")), bye("billing"), bye("support"), bye("operator"))
    )
    call.prompt_done()
    call.digits("1")
    assert call.path == ["main"]
    assert any("interdigit" in k for k in call.timers)
    call.fire("interdigit")
    assert call.path == ["main", "billing"]


def test_given_options_1_and_12_when_12_is_pressed_then_12_is_taken_at_once() -> None:
    call = Call(
        flow(menu(options=opts(k1="billing", k12="support")), bye("billing"), bye("support"), bye("operator"))
    )
    call.prompt_done()
    call.digits("12")
    assert call.path == ["main", "support"]
    assert call.run.inputs["main"] == {"digits": "12"}


# ------------------------------------------------------------------ retries and prompt selection


def test_given_no_input_then_no_input_prompts_are_chosen_by_count_and_reprompts_by_attempt() -> None:
    node = menu(
        no_input_prompt=(P("First silence."), P("Second silence.")),
        reprompts={2: P("Short menu."), 3: P("Shortest menu.")},
        input=m.InputSettings(max_no_input=4),
    )
    call = Call(flow(node, bye("billing"), bye("support"), bye("operator")))
    for _ in range(3):
        call.prompt_done()
        call.fire("noinput")
    assert call.texts == [
        "For billing press 1.",
        "First silence. Short menu.",  # no_input 1 (entry 1), attempt 2
        "Second silence. Shortest menu.",  # no_input 2 (entry 2), attempt 3
        "Second silence. Shortest menu.",  # no_input 3: the last entry; attempt 4 -> reprompts[3]
    ]


def test_given_max_no_input_reached_then_on_no_input_falls_back_to_on_max_attempts() -> None:
    call = Call(basic(no_input_prompt=(P("Sorry."),)))
    call.prompt_done()
    call.fire("noinput")
    call.prompt_done()
    call.fire("noinput")  # max_no_input 2
    assert call.texts[-1] == "Sorry."  # the message plays before leaving, without barge-in
    assert call.of(e.Play)[-1].barge_in is False
    call.prompt_done()
    assert call.path == ["main", "operator"]
    assert ("f", "main", "on_max_attempts") in call.run.edges


def test_given_max_attempts_then_no_input_and_no_match_together_are_capped() -> None:
    call = Call(basic(on_no_match=T("support"), input=m.InputSettings(max_attempts=2, max_no_match=5)))
    call.prompt_done()
    call.digits("9")  # no match 1 (attempt 1)
    call.prompt_done()
    call.fire("noinput")  # no input 1: attempts 2 = max_attempts
    assert call.path == ["main", "operator"]


def test_given_no_transition_and_no_on_max_attempts_then_defaults_on_error_is_taken() -> None:
    call = Call(flow(menu(on_max_attempts=None), bye("billing"), bye("support")))
    for _ in range(2):
        call.prompt_done()
        call.fire("noinput")
    assert call.path == ["main", "oops"]
    assert ("f", e.ERROR_NODE, "on_error") in call.run.edges


def test_given_repeat_then_counters_are_kept_and_given_another_node_then_they_reset() -> None:
    other = m.SayNode(id="intro", type="say", prompt=P("Welcome."), next=T("main"))
    node = menu(
        options=(
            *opts(k1="billing"),
            m.DtmfOption(key="*", target=T("repeat")),
            m.DtmfOption(key="9", target=T("intro")),
        )
    )
    call = Call(flow(other, node, bye("billing"), bye("operator")))
    call.prompt_done()
    call.prompt_done()
    call.digits("5")  # no match 1
    call.digits("*")  # repeat: barge-in during the reprompt
    assert call.run.visit is not None
    assert call.run.visit.no_match == 1
    call.digits("9")  # to intro, then back: a new visit
    call.prompt_done()
    assert call.run.visit.node.id == "main"
    assert call.run.visit.no_match == 0
    assert call.path == ["intro", "main", "main", "intro", "main"]


def test_given_a_hotkey_then_it_wins_on_the_first_key_of_a_menu() -> None:
    f = flow(
        menu(options=opts(k0="billing", k1="billing")),
        bye("billing"),
        bye("operator"),
        hotkeys={"0": "operator"},
    )
    call = Call(f)
    call.digits("0")
    assert call.path == ["main", "operator"]
    assert ("f", e.HOTKEY_NODE, "hotkey 0") in call.run.edges


def test_given_hotkeys_off_on_a_node_then_the_option_is_taken() -> None:
    f = flow(
        menu(options=opts(k0="billing"), hotkeys=False),
        bye("billing"),
        bye("operator"),
        hotkeys={"0": "operator"},
    )
    call = Call(f)
    call.digits("0")
    assert call.path == ["main", "billing"]


def test_given_back_and_top_targets_then_the_previous_menu_and_the_start_are_entered() -> None:
    first = menu("first", options=opts(k1="second"), prompt=P("First."))
    second = menu(
        "second",
        options=(
            m.DtmfOption(key="1", target=T("back")),
            m.DtmfOption(key="2", target=T("top")),
            m.DtmfOption(key="3", target=T("hangup")),
        ),
        prompt=P("Second."),
    )
    call = Call(flow(first, second, bye("operator")))
    call.digits("1")
    call.digits("1")
    call.digits("1")
    call.digits("2")
    assert call.path == ["first", "second", "first", "second", "first"]
    call.digits("1")
    call.digits("3")
    assert call.of(e.HangupCall)[-1] == e.HangupCall("completed", 16)


def test_given_an_inline_action_then_set_and_say_happen_before_the_goto() -> None:
    node = menu(
        options=(
            m.DtmfOption(
                key="1",
                target=T(
                    "billing", set=[("vars.reason", "billing")], say=P("Transferring {{ vars.reason }}.")
                ),
            ),
        )
    )
    call = Call(
        flow(
            node,
            bye("billing", "Bye {{ vars.reason }}."),
            bye("operator"),
            variables={"reason": m.Variable(name="reason")},
        )
    )
    out = call.digits("1")
    assert e.SetVar("vars.reason", "billing", False) in out
    assert call.texts[-1] == "Transferring billing."
    assert call.path == ["main"]
    call.prompt_done()
    assert call.path == ["main", "billing"]
    assert call.texts[-1] == "Bye billing."


# ------------------------------------------------------------------ collect


def collect(**kw: object) -> m.CollectNode:
    fields: dict[str, object] = {
        "prompt": P("Enter your account, then pound."),
        "into": "vars.account_id",
        "min_digits": 4,
        "max_digits": 8,
        "finish_on_key": "#",
        "next": T("thanks"),
        "on_max_attempts": T("operator"),
    }
    fields.update(kw)
    return m.CollectNode(id="acct", type="collect", **fields)  # type: ignore[arg-type]


def collect_flow(**kw: object) -> m.Flow:
    return flow(
        collect(**kw),
        bye("thanks", "Thanks {{ vars.account_id | mask(2) }}."),
        bye("operator"),
        variables={"account_id": m.Variable(name="account_id", type="digits", pii=True)},
    )


def test_given_collect_when_the_finish_key_is_pressed_then_the_digits_are_stored_and_masked_in_traces() -> (
    None
):
    call = Call(collect_flow())
    call.prompt_done()
    out = call.digits("12345#")
    assert e.SetVar("vars.account_id", "***45", True) in out
    assert call.run.vars["account_id"] == "12345"
    assert call.path == ["acct", "thanks"]
    assert call.texts[-1] == "Thanks ***45."


def test_given_collect_when_max_digits_are_entered_then_it_finishes_without_the_finish_key() -> None:
    call = Call(collect_flow())
    call.digits("12345678")
    assert call.path == ["acct", "thanks"]


def test_given_collect_when_the_caller_stops_typing_then_the_inter_digit_timeout_finishes_the_entry() -> None:
    call = Call(collect_flow())
    call.prompt_done()
    call.digits("1234")
    call.fire("interdigit")
    assert call.path == ["acct", "thanks"]


@pytest.mark.parametrize(
    ("keys", "validate"),
    [
        ("12#", None),  # below min_digits
        ("1235#", m.CollectValidation(kind="regex", value="^9")),
        ("4111111111111112"[:8], m.CollectValidation(kind="luhn", value=True)),
        ("12345#", m.CollectValidation(kind="length", value=6)),
        ("12345#", m.CollectValidation(kind="expr", value="input.acct.digits | int > 50000")),
    ],
)
def test_given_invalid_digits_then_no_match_plays_and_the_prompt_is_repeated(
    keys: str, validate: m.CollectValidation | None
) -> None:
    call = Call(collect_flow(validate=validate, no_match_prompt=(P("That is not valid."),)))
    call.prompt_done()
    call.digits(keys)
    assert call.run.visit is not None
    assert call.run.visit.no_match == 1
    assert call.texts[-1] == "That is not valid. Enter your account, then pound."
    assert "account_id" not in call.run.vars or call.run.vars["account_id"] is None


def test_given_a_valid_luhn_number_then_it_is_accepted() -> None:
    call = Call(
        collect_flow(validate=m.CollectValidation(kind="luhn", value=True), min_digits=4, max_digits=16)
    )
    call.digits("4111111111111111")
    assert call.path == ["acct", "thanks"]


def test_given_confirm_then_yes_accepts_and_no_asks_again() -> None:
    confirm = m.Confirm(prompt=P("You entered {{ input.acct.digits }}. Press 1 if correct, 2 to retry."))
    call = Call(collect_flow(confirm=confirm))
    call.digits("1234#")
    assert call.texts[-1] == "You entered 1234. Press 1 if correct, 2 to retry."
    call.digits("2")
    assert call.texts[-1] == "Enter your account, then pound."
    call.digits("5678#")
    call.digits("1")
    assert call.run.vars["account_id"] == "5678"
    assert call.path == ["acct", "thanks"]


def test_given_say_with_barge_in_then_the_digit_is_typed_ahead_into_the_next_menu() -> None:
    intro = m.SayNode(
        id="intro", type="say", prompt=P("Welcome to a long greeting."), barge_in=True, next=T("main")
    )
    call = Call(flow(intro, menu(), bye("billing"), bye("support"), bye("operator")))
    call.digits("2")
    assert call.path == ["intro", "main", "support"]
    assert "For billing press 1." not in call.texts


# ------------------------------------------------------------------ branch, set, languages


@pytest.mark.parametrize(
    ("condition", "taken"),
    [
        (m.Condition(op="equals", var="vars.tier", value="gold"), True),
        (m.Condition(op="in", var="vars.tier", value=["silver", "gold"]), True),
        (m.Condition(op="matches", var="vars.tier", value="^g"), True),
        (m.Condition(op="gt", var="vars.score", value=10), True),
        (m.Condition(op="lt", var="vars.score", value=10), False),
        (m.Condition(op="between", var="vars.score", value=[10, 20]), True),
        (m.Condition(op="is_blank", var="vars.note", value=True), True),
        (m.Condition(op="is_blank", var="vars.tier", value=True), False),
        (m.Condition(op="expr", value="{{ vars.score | int >= 12 and call.language == 'en' }}"), True),
    ],
)
def test_given_branch_conditions_then_the_first_true_case_wins(condition: m.Condition, taken: bool) -> None:
    node = m.BranchNode(
        id="route", type="branch", when=(m.BranchCase(condition=condition, goto=T("yes")),), else_=T("no")
    )
    variables = {
        "tier": m.Variable(name="tier", default="gold"),
        "score": m.Variable(name="score", type="int", default=12),
        "note": m.Variable(name="note", default=""),
    }
    call = Call(flow(node, bye("yes"), bye("no"), variables=variables))
    assert call.path == ["route", "yes" if taken else "no"]


def test_given_a_set_node_then_values_are_typed_by_the_declared_variable() -> None:
    node = m.SetNode(
        id="s",
        type="set",
        next=T("done"),
        assignments=(
            ("vars.count", "{{ 40 + 2 }}"),
            ("vars.vip", "yes"),
            ("call.language", "es"),
            ("caller.name", "{{ lead.first_name }}"),
        ),
    )
    variables = {"count": m.Variable(name="count", type="int"), "vip": m.Variable(name="vip", type="bool")}
    call = Call(
        flow(node, bye("done"), variables=variables, languages=("en", "es")),
        info={"lead": {"first_name": "Ana"}},
    )
    assert call.run.vars["count"] == 42
    assert call.run.vars["vip"] is True
    assert call.run.language == "es"
    assert call.run.caller_name == "Ana"


def test_given_a_per_language_prompt_then_the_call_language_is_used() -> None:
    hello = m.SayNode(id="hi", type="say", prompt=PL(en="Hello.", es="Hola."), next=T("done"))
    call = Call(flow(hello, bye("done", "Bye."), languages=("en", "es")), info={"language": "es"})
    assert call.of(e.Play)[0].items == (e.Speech("Hola.", "es", None),)
    assert call.of(e.Play)[0].language == "es"


@pytest.mark.parametrize(
    ("fallback", "expected"),
    [
        ("error", ["hi", "oops"]),
        ("default_language", ["hi"]),
    ],
)
def test_given_a_missing_language_then_the_fallback_policy_decides(
    fallback: m.LanguageFallback, expected: list[str]
) -> None:
    hello = m.SayNode(id="hi", type="say", prompt=PL(en="Hello."), next=T("done"))
    call = Call(flow(hello, bye("done"), languages=("en", "fr"), fallback=fallback), info={"language": "fr"})
    assert call.path == expected
    if fallback == "error":
        assert "no 'fr' version" in call.of(e.LogProblem)[0].message
    else:
        assert call.texts == ["Hello."]


def test_given_a_recording_in_the_manifest_then_the_file_plays_else_its_tts_text() -> None:
    prompt = m.Prompt(variants={m.ANY_LANGUAGE: (m.Recording(name="welcome", tts="Welcome."),)})
    hello = m.SayNode(id="hi", type="say", prompt=prompt, next=T("done"))
    f = flow(hello, bye("done"))
    with_file = Call(f, recordings={("en", "welcome")})
    assert with_file.of(e.Play)[0].items == (
        e.AudioFile("welcome", "en", "prompts/en/welcome.wav", "Welcome."),
    )
    without = Call(f)
    assert without.of(e.Play)[0].items == (e.Speech("Welcome.", "en", "en-us"),)


def test_given_a_recording_missing_without_tts_then_the_call_goes_to_on_error_with_the_position() -> None:
    prompt = m.Prompt(variants={m.ANY_LANGUAGE: (m.Recording(name="gone", pos=m.Pos("f.yaml", 7, 9)),)})
    call = Call(flow(m.SayNode(id="hi", type="say", prompt=prompt, next=T("done")), bye("done")))
    problem = call.of(e.LogProblem)[0]
    assert problem.pos == m.Pos("f.yaml", 7, 9)
    assert "prompts/en/gone.wav" in problem.message
    assert call.path == ["hi", "oops"]


def test_given_an_undefined_secret_then_the_http_node_fails_to_on_error() -> None:
    call = Call(http_flow())
    assert call.of(e.HttpRequest) == []
    assert call.path == ["lookup", "oops"]


def test_given_a_template_error_then_the_problem_is_logged_and_on_error_taken() -> None:
    hello = m.SayNode(id="hi", type="say", prompt=P("Hello {{ vars.nobody }}"), next=T("done"))
    call = Call(flow(hello, bye("done")))
    assert call.path == ["hi", "oops"]
    assert "undefined" in call.of(e.LogProblem)[0].message
    call.prompt_done()
    assert call.ended == e.Ended("hangup", "error", "oops", ("hi", "oops"))


# ------------------------------------------------------------------ http

SECRETS = {"secrets": {"token": "t0k"}}


def http_flow(**kw: object) -> m.Flow:
    fields: dict[str, object] = {
        "url": "https://crm.test/accounts/{{ vars.acct }}",
        "headers": {"Authorization": "Bearer {{ secrets.token }}"},
        "timeout": 2.0,
        "save": (("vars.tier", "$.tier"), ("caller.name", "$.people[0].name")),
        "on_success": T("ok"),
        "on_error": T("failed"),
        "on_timeout": T("slow"),
    }
    fields.update(kw)
    node = m.HttpNode(id="lookup", type="http", **fields)  # type: ignore[arg-type]
    return flow(
        node,
        bye("ok", "Hello {{ caller.name }}, {{ vars.tier }}."),
        bye("failed"),
        bye("slow"),
        variables={"acct": m.Variable(name="acct", default="42"), "tier": m.Variable(name="tier")},
    )


def test_given_an_http_node_then_the_request_carries_rendered_secrets_and_the_answer_is_saved() -> None:
    call = Call(http_flow(), info=SECRETS)
    request = call.of(e.HttpRequest)[0]
    assert request.url == "https://crm.test/accounts/42"
    assert request.headers == {"Authorization": "Bearer t0k"}
    assert "t0k" not in repr(request)
    call.send(e.HttpResult(request.request_id, 200, {"tier": "gold", "people": [{"name": "Ana"}]}, 120), 0.1)
    assert call.path == ["lookup", "ok"]
    assert call.texts[-1] == "Hello Ana, gold."
    assert call.run.http["lookup"] == {
        "status": 200,
        "json": {"tier": "gold", "people": [{"name": "Ana"}]},
        "ms": 120,
    }


def test_given_a_slow_server_then_filler_audio_plays_after_the_delay_and_stops_with_the_answer() -> None:
    f = http_flow(while_waiting=m.WhileWaiting(after=0.8, prompt=P("One moment.")))
    call = Call(f, info=SECRETS)
    request = call.of(e.HttpRequest)[0]
    call.fire("filler")
    assert call.texts == ["One moment."]
    filler = call.playing
    assert filler is not None
    out = call.send(e.HttpResult(request.request_id, 200, {"tier": "x"}, 900), 0.1)
    assert e.StopPlayback(filler.playback_id) in out


def test_given_no_answer_then_the_run_s_own_deadline_takes_on_timeout() -> None:
    call = Call(http_flow(), info=SECRETS)
    request = call.of(e.HttpRequest)[0]
    out = call.fire("httpdeadline")
    assert e.CancelHttp(request.request_id) in out
    assert call.path == ["lookup", "slow"]


def test_given_retries_then_a_failed_request_is_sent_again_before_on_error() -> None:
    call = Call(http_flow(retries=1), info=SECRETS)
    first = call.of(e.HttpRequest)[0]
    call.send(e.HttpFailed(first.request_id, "error"), 0.1)
    second = call.of(e.HttpRequest)[-1]
    assert second.request_id != first.request_id
    call.send(e.HttpResult(first.request_id, 200, {}), 0.1)  # a late answer to the first: ignored
    assert call.path == ["lookup"]
    call.send(e.HttpResult(second.request_id, 503, None), 0.1)
    assert call.path == ["lookup", "failed"]


def test_given_success_when_then_the_expression_decides() -> None:
    call = Call(http_flow(success_when="{{ http.lookup.json.found }}"), info=SECRETS)
    call.send(e.HttpResult(call.of(e.HttpRequest)[0].request_id, 200, {"found": False}), 0.1)
    assert call.path == ["lookup", "failed"]


# ------------------------------------------------------------------ queue, transfer, callback, voicemail


def queue_flow(**kw: object) -> m.Flow:
    fields: dict[str, object] = {
        "queue": "support",
        "priority": "{{ 10 if vars.tier == 'gold' else 0 }}",
        "max_wait": 60.0,
        "skills": (
            m.SkillRequirement(skill="support"),
            m.SkillRequirement(skill="spanish", min_level=3, when="{{ call.language == 'es' }}"),
        ),
        "screen_pop": m.ScreenPop(title="{{ caller.number }}", fields={"tier": "{{ vars.tier }}"}),
        "exit_keys": (m.DtmfOption(key="9", target=T("vm")),),
        "on_timeout": T("vm"),
        "on_no_agents": T("vm"),
        "on_full": T("vm"),
    }
    fields.update(kw)
    node = m.QueueNode(id="q", type="queue", **fields)  # type: ignore[arg-type]
    return flow(node, bye("vm", "Voicemail."), variables={"tier": m.Variable(name="tier", default="gold")})


def test_given_a_queue_node_then_enqueue_carries_skills_priority_and_screen_pop() -> None:
    call = Call(queue_flow())
    assert call.of(e.Enqueue)[0] == e.Enqueue(
        queue="support",
        skills=(e.SkillNeed("support", 1, True),),
        priority=10,
        max_wait=60.0,
        moh=None,
        relax_after=None,
        screen_pop={"title": "+15551230000", "tier": "gold"},
        exit_keys=("9",),
    )


@pytest.mark.parametrize(
    ("outcome", "path", "ended"),
    [
        ("answered", ["q"], "agent"),
        ("no_agents", ["q", "vm"], None),
        ("timeout", ["q", "vm"], None),
        ("full", ["q", "vm"], None),
    ],
)
def test_given_a_queue_result_then_the_outcome_is_followed(
    outcome: str, path: list[str], ended: str | None
) -> None:
    call = Call(queue_flow())
    call.send(e.QueueResult(outcome), 30)  # type: ignore[arg-type]
    assert call.path == path
    assert (call.ended.outcome if call.ended else None) == ended


def test_given_an_exit_key_then_the_caller_leaves_the_queue() -> None:
    call = Call(queue_flow())
    out = call.digits("9")
    assert e.LeaveQueue("support") in out
    assert call.path == ["q", "vm"]


def test_given_position_announcements_and_a_callback_offer_then_they_play_in_the_queue() -> None:
    f = queue_flow(
        announce_position=m.PositionAnnouncement(
            every=45.0, prompt=P("You are number {{ queue.position }}.")
        ),
        offer_callback=m.OfferCallback(
            when_ewt_over=180.0, key="1", prompt=P("Press 1 for a callback."), goto=T("vm")
        ),
    )
    call = Call(f)
    call.send(e.QueueStatus(position=5, ewt=60.0), 1)
    call.fire("announce")
    assert call.texts == ["You are number 5."]
    call.prompt_done()
    call.send(e.QueueStatus(position=4, ewt=240.0), 1)
    assert call.texts[-1] == "Press 1 for a callback."
    out = call.digits("1")
    assert e.LeaveQueue("support") in out
    assert call.path == ["q", "vm"]
    assert ("f", "q", "offer_callback") in call.run.edges


def test_given_queue_time_then_it_does_not_count_as_ivr_time() -> None:
    call = Call(
        queue_flow(),
    )
    assert call.send(e.TimerFired("ivr_time"), 700) == []  # waiting in the queue: ignored
    out = call.send(e.QueueResult("timeout"), 1)
    assert e.StartTimer("ivr_time", 600.0 - 1.0) in out or any(
        isinstance(c, e.StartTimer) and c.key == "ivr_time" and c.seconds > 590 for c in out
    )


@pytest.mark.parametrize(
    ("outcome", "target"),
    [("answered", None), ("busy", "busy"), ("no_answer", "failed"), ("failed", "failed")],
)
def test_given_a_transfer_then_busy_and_no_answer_fall_back_to_on_failed(
    outcome: str, target: str | None
) -> None:
    node = m.TransferNode(
        id="xfer",
        type="transfer",
        to="PJSIP/{{ vars.ext }}",
        timeout=20.0,
        on_busy=T("busy"),
        on_failed=T("failed"),
    )
    call = Call(
        flow(node, bye("busy"), bye("failed"), variables={"ext": m.Variable(name="ext", default="201")})
    )
    assert call.of(e.Transfer)[0] == e.Transfer("PJSIP/201", None, 20.0, {})
    call.send(e.TransferResult(outcome), 5)  # type: ignore[arg-type]
    assert call.path == (["xfer"] if target is None else ["xfer", target])
    if target is None:
        assert call.ended is not None
        assert call.ended.outcome == "transferred"


def test_given_a_callback_node_then_confirmation_then_a_lead_is_created_for_the_campaign_side() -> None:
    node = m.CallbackNode(
        id="cb",
        type="callback",
        confirm_number=True,
        queue="support",
        keep_position=True,
        attempts=3,
        retry_delay=600.0,
        window="support_hours",
        earliest=120.0,
        on_scheduled=T("thanks"),
        on_error=T("vm"),
    )
    call = Call(flow(node, bye("thanks"), bye("vm")))
    assert e.SayDigits("15551230000") in call.of(e.Play)[0].items
    call.prompt_done()
    call.digits("1")
    lead = call.of(e.CreateCallbackLead)[0]
    assert (lead.number, lead.queue, lead.keep_position, lead.attempts, lead.window) == (
        "+15551230000",
        "support",
        True,
        3,
        "support_hours",
    )
    assert lead.earliest > T0
    assert lead.flow_version == "v1"
    call.send(e.CallbackCreated("lead-9"), 0.1)
    assert call.path == ["cb", "thanks"]


def test_given_callback_creation_fails_then_on_error_is_taken() -> None:
    node = m.CallbackNode(id="cb", type="callback", on_scheduled=T("thanks"), on_error=T("vm"))
    call = Call(flow(node, bye("thanks"), bye("vm")))
    call.send(e.CallbackFailed("store down"), 0.1)
    assert call.path == ["cb", "vm"]


@pytest.mark.parametrize(
    ("event", "target"),
    [
        (e.RecordingDone("c1-rec2", "rec/x.wav", 12.0), "thanks"),
        (e.RecordingEmpty("c1-rec2"), "silent"),
    ],
)
def test_given_a_voicemail_then_the_greeting_plays_before_recording(event: e.Event, target: str) -> None:
    node = m.VoicemailNode(
        id="vm",
        type="voicemail",
        mailbox="support",
        greeting=P("Leave a message."),
        max_length=60.0,
        finish_on_key="#",
        next=T("thanks"),
        on_no_audio=T("silent"),
    )
    call = Call(flow(node, bye("thanks"), bye("silent")))
    assert call.of(e.Record) == []
    call.prompt_done()
    assert call.of(e.Record)[0] == e.Record("c1-rec2", "support", 60.0, None, "#", True, {})
    call.send(event, 12)
    assert call.path == ["vm", target]


# ------------------------------------------------------------------ subflows, safe harbor, hours


def test_given_a_subflow_then_it_runs_with_its_own_vars_and_its_return_picks_the_caller_s_outcome() -> None:
    verify = flow(
        collect(into="vars.pin", next=T("check"), min_digits=4, max_digits=4, finish_on_key=None),
        m.BranchNode(
            id="check",
            type="branch",
            else_=T(None, returns="failed"),
            when=(
                m.BranchCase(
                    condition=m.Condition(op="equals", var="vars.pin", value="{{ x }}"),
                    goto=T(None, returns="never"),
                ),
                m.BranchCase(
                    condition=m.Condition(op="expr", value="vars.pin == vars.expected"), goto=T("done")
                ),
            ),
        ),
        m.ReturnNode(id="done", type="return", outcome="verified"),
        flow_id="verify",
        kind="subflow",
        variables={"pin": m.Variable(name="pin"), "expected": m.Variable(name="expected")},
    )
    main = flow(
        m.SubflowNode(
            id="ask",
            type="subflow",
            flow="verify",
            args={"expected": "{{ lead.pin }}"},
            returns={"verified": T("ok"), "failed": T("no")},
        ),
        bye("ok"),
        bye("no"),
        flow_id="main",
    )
    call = Call(flowset(main, verify), "main", info={"lead": {"pin": "4321"}})
    call.digits("4321")
    assert call.path == ["ask", "verify/acct", "verify/check", "verify/done", "ok"]
    assert "pin" not in call.run.vars  # the caller's vars are its own


def test_given_safe_harbor_then_it_is_counted_and_the_opt_out_key_adds_to_dnc() -> None:
    node = m.SafeHarborNode(
        id="sh",
        type="safe_harbor",
        seller="Acme",
        callback_number="+15550100",
        opt_out_key="9",
        on_opt_out=T("dnc"),
    )
    call = Call(flow(node, bye("dnc"), kind="outbound"))
    assert call.of(e.SafeHarbor) == [e.SafeHarbor(record_abandon=True)]
    assert "This call was from Acme" in call.texts[0]
    assert e.SayDigits("15550100") in call.of(e.Play)[0].items
    out = call.digits("9")
    assert e.AddDnc("+15551230000", "opt_out_key") in out
    assert call.path == ["sh", "dnc"]


def test_given_safe_harbor_without_opt_out_then_it_hangs_up_after_the_message() -> None:
    node = m.SafeHarborNode(id="sh", type="safe_harbor", prompt=P("Acme, 555 0100."))
    call = Call(flow(node, on_error=None))
    call.prompt_done()
    assert call.of(e.HangupCall) == [e.HangupCall("safe_harbor", 16)]


def test_given_an_hours_node_then_the_injected_schedule_check_decides_and_names_the_holiday() -> None:
    from dialer.ivr.schedule import HoursResult

    seen: list[object] = []

    def check(fs: m.FlowSet, name: str, at: object) -> HoursResult:
        seen.append((name, at))
        return HoursResult("holiday", "Christmas Day", "test", T0)

    node = m.HoursNode(id="h", type="hours", schedule="support", open=T("open"), closed=T("closed"))
    call = Call(flow(node, bye("open"), bye("closed")), schedule_check=check)
    assert seen == [("support", T0)]
    assert call.path == ["h", "closed"]  # no holiday outcome: holiday goes to closed
    assert call.run.vars["holiday_name"] == "Christmas Day"


# ------------------------------------------------------------------ guards


def test_given_a_loop_then_max_node_visits_sends_the_call_to_on_error_once() -> None:
    loop = menu(options=(m.DtmfOption(key="*", target=T("repeat")),))
    call = Call(flow(loop, bye("operator"), max_node_visits=5))
    call.digits("*****")
    assert call.path[-1] == "oops"
    assert "max_node_visits" in call.of(e.LogProblem)[0].message


def test_given_max_ivr_time_then_the_call_goes_to_on_error() -> None:
    call = Call(
        basic(),
    )
    call.prompt_done()
    call.send(e.TimerFired("ivr_time"), 600)
    assert call.path == ["main", "oops"]


def test_given_an_error_target_that_itself_fails_then_the_call_hangs_up_with_error() -> None:
    broken = m.SayNode(id="oops", type="say", prompt=P("{{ nope }}"), next=T("oops"))
    call = Call(flow(m.SayNode(id="hi", type="say", prompt=P("{{ nope }}"), next=T("oops")), broken))
    assert call.ended is not None
    assert call.ended.outcome == "error"
    assert call.of(e.HangupCall) == [e.HangupCall("error", 41)]
    assert len(call.of(e.LogProblem)) == 2


# ------------------------------------------------------------------ hang-up cancels everything


def _every_node_type() -> list[tuple[str, m.Flow, list[e.Event]]]:
    sub = flow(menu("inner"), bye("billing"), bye("support"), bye("operator"), flow_id="sub", kind="subflow")
    cases: list[tuple[str, m.Flow, list[e.Event]]] = [
        ("say", flow(m.SayNode(id="n", type="say", prompt=P("Hi."), next=T("bye")), bye()), []),
        ("menu", basic(), []),
        ("collect", collect_flow(), []),
        ("http", http_flow(while_waiting=m.WhileWaiting(after=0.5, prompt=P("Wait."))), []),
        ("queue", queue_flow(announce_position=m.PositionAnnouncement(every=30.0, prompt=P("Hold."))), []),
        ("transfer", flow(m.TransferNode(id="n", type="transfer", to="100", on_failed=T("bye")), bye()), []),
        ("callback", flow(m.CallbackNode(id="n", type="callback", on_scheduled=T("bye")), bye()), []),
        ("voicemail", flow(m.VoicemailNode(id="n", type="voicemail", mailbox="m", next=T("bye")), bye()), []),
        ("subflow", flow(m.SubflowNode(id="n", type="subflow", flow="sub", returns={}), flow_id="top"), []),
        (
            "safe_harbor",
            flow(
                m.SafeHarborNode(id="n", type="safe_harbor", prompt=P("Acme."), opt_out_key="9"),
                kind="outbound",
            ),
            [],
        ),
        ("hangup", flow(bye("n")), []),
    ]
    return [(name, f, ev) for name, f, ev in cases] + [("subflow-inner", sub, [])]


@pytest.mark.parametrize(
    ("name", "f", "events"), _every_node_type(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_given_any_node_when_the_caller_hangs_up_then_everything_it_started_is_cancelled(
    name: str, f: m.Flow, events: list[e.Event]
) -> None:
    fs = (
        flowset(f, flow(menu("inner"), bye("billing"), bye("support"), bye("operator"), flow_id="sub"))
        if name == "subflow"
        else flowset(f)
    )
    call = Call(fs, f.id, info=SECRETS)
    if name == "voicemail" and call.playing is not None:
        call.prompt_done()  # greeting done: now recording
    if name == "http":
        call.fire("filler")  # filler playing while the request is pending
    out = call.send(e.Hangup(), 1)
    assert call.ended is not None
    assert call.ended.outcome == "caller_hangup"
    assert call.timers == {}, f"timers left running: {call.timers}"
    assert call.playing is None
    expected = {
        "http": e.CancelHttp,
        "queue": e.LeaveQueue,
        "transfer": e.CancelTransfer,
        "voicemail": e.StopRecording,
    }.get(name)
    if expected is not None:
        assert call.of(expected, out)
    if name == "voicemail":
        assert call.of(e.StopRecording, out)[0].keep is True
    assert call.send(e.Digit("1"), 1) == []  # nothing after the end
    assert call.send(e.PromptFinished("x")) == []


def test_given_the_same_events_then_the_same_commands_come_out() -> None:
    def replay() -> list[e.Command]:
        call = Call(collect_flow())
        call.prompt_done()
        call.digits("12")
        call.fire("interdigit")
        call.prompt_done()
        call.digits("1234#")
        return call.commands

    assert replay() == replay()


def test_given_misuse_then_usage_errors_are_raised() -> None:
    with pytest.raises(e.UsageError, match="no flow 'nope'"):
        Call(basic(), "nope")
    run = e.FlowRun(flowset(basic()), "f", e.CallInfo(call_id="c"))
    with pytest.raises(e.UsageError):
        run.handle(e.Digit("1"), T0)
    run.start(T0)
    with pytest.raises(e.UsageError):
        run.start(T0)


def test_json_path_subset() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "odd key": "x", "obj": {"k": 1}}
    assert e.json_path(doc, "$.a.b[1].c") == 2
    assert e.json_path(doc, "$['odd key']") == "x"
    assert e.json_path(doc, "$.a.missing") is None
    assert e.json_path(doc, "$.obj") == '{"k": 1}'
    with pytest.raises(e.FlowError):
        e.json_path(doc, "a.b")


def test_given_a_prompt_about_the_next_opening_then_it_is_computed_from_the_schedule() -> None:
    from dialer.ivr.loader import load_flowset
    from dialer.ivr.simulate import parse_at

    fs, _ = load_flowset(Path(__file__).resolve().parents[3] / "ivr_flows")
    assert fs is not None
    closed = m.SayNode(
        id="closed",
        type="say",
        prompt=P(
            "We open {{ schedule.support_hours.next_open | date('%A at %H:%M') }}. "
            "{{ vars.holiday_name | default('-') }}"
        ),
        next=T("done"),
    )
    mine = flow(closed, bye("done"), flow_id="closed_line")
    fs2 = m.FlowSet(
        root=fs.root, flows={"closed_line": mine}, schedules=fs.schedules, holiday_lists=fs.holiday_lists
    )
    call = e.FlowRun(fs2, "closed_line", e.CallInfo(call_id="c"))
    out = call.start(parse_at("2026-12-24 13:30", zone="America/New_York"))
    assert [c.text for c in out if isinstance(c, e.Play)] == ["We open Saturday at 09:00. -"]


def test_given_a_long_voicemail_then_recording_time_does_not_count_as_ivr_time() -> None:
    node = m.VoicemailNode(id="vm", type="voicemail", mailbox="support", max_length=900.0, next=T("thanks"))
    call = Call(flow(node, bye("thanks"), max_ivr_time=60.0))
    rec = call.of(e.Record)[0]
    assert call.send(e.TimerFired("ivr_time"), 300) == []  # while recording: ignored
    out = call.send(e.RecordingDone(rec.recording_id, "vm.wav", 300.0), 1)
    assert any(isinstance(c, e.StartTimer) and c.key == "ivr_time" and c.seconds == 60.0 for c in out)
    assert call.path == ["vm", "thanks"]


def test_given_a_hangup_node_with_disposition_dnc_then_the_caller_is_added_to_dnc() -> None:
    node = m.HangupNode(id="opt_out", type="hangup", disposition="dnc")
    call = Call(flow(menu("main", options=opts(k9="opt_out")), node, bye("operator")))
    out = call.digits("9")
    assert e.AddDnc("+15551230000", "disposition dnc") in out
    assert call.path == ["main", "opt_out"]


def test_given_a_hangup_node_with_another_disposition_then_nothing_goes_to_dnc() -> None:
    call = Call(basic())
    out = call.digits("1")
    assert not [c for c in out if isinstance(c, e.AddDnc)]

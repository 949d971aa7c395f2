"""Flow templates: sandboxed Jinja2 with a fixed filter set, strict names, no calls, and
secrets only where an http node needs them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dialer.ivr.templates import TemplateError, evaluate, is_template, render, template_refs, template_roots

CTX: dict[str, Any] = {
    "caller": {"number": "5551230000", "name": None},
    "call": {"language": "es", "path": "a > b"},
    "vars": {"account_id": "12345678", "tier": "gold", "amount": "1234.5", "due": "2026-12-24"},
    "lead": {"first_name": "Ana"},
    "secrets": {"crm_token": "s3cr3t"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text, no template", "plain text, no template"),
        ("{{ vars.account_id | mask(4) }}", "****5678"),
        ("{{ vars.account_id | mask(0) }}", "********"),
        ("{{ 'ab' | mask(4) }}", "**"),
        ("{{ caller.number | e164 }}", "+15551230000"),
        ("{{ '+44 20 7946 0958' | e164 }}", "+442079460958"),
        ("{{ 'A-12 3b' | digits }}", "123"),
        ("{{ vars.tier | upper }} {{ 'X' | lower }}", "GOLD x"),
        ("{{ vars.amount | currency }}", "$1,234.50"),
        ("{{ vars.amount | currency('EUR') }}", "€1,234.50"),
        ("{{ '-3' | currency('CHF') }}", "-3.00 CHF"),
        ("{{ vars.due | date('%B %d') }}", "December 24"),
        ("{{ caller.name | default('Unknown caller') }}", "Unknown caller"),
        ("{{ lead.nickname | default('friend') }}", "friend"),
        ("{{ lead['first_name'] }}", "Ana"),
        ("{{ 10 if vars.tier == 'gold' else 0 }}", "10"),
    ],
)
def test_given_context_when_rendering_then_filters_give_spoken_text(text: str, expected: str) -> None:
    assert render(text, CTX) == expected


def test_given_a_date_object_when_formatted_then_strftime_applies() -> None:
    assert render("{{ d | date('%Y/%m/%d') }}", {"d": dt.date(2026, 1, 5)}) == "2026/01/05"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{{ nope.x }}", "undefined"),
        ("{{ vars.missing }}", "undefined"),
        ("{{ vars.tier.upper() }}", "calls are not allowed"),
        ("{{ range(3) }}", "calls are not allowed"),
        ("{{ vars.tier.__class__ }}", "not allowed"),
        ("{{ vars.tier | shout }}", "unknown filter 'shout'"),
        ("{{ 'x' | e164 }}", "not a phone number"),
        ("{{ 'soon' | date }}", "not an ISO date"),
        ("{{ 'lots' | currency }}", "not a number"),
    ],
)
def test_given_a_bad_template_when_rendering_then_a_template_error_explains(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as err:
        render(text, CTX)
    assert fragment in str(err.value)


def test_given_a_syntax_error_on_line_2_then_the_error_carries_that_line() -> None:
    with pytest.raises(TemplateError) as err:
        template_roots("Hello\n{{ vars. }}")
    assert err.value.lineno == 2
    assert "syntax" in err.value.reason


def test_given_secrets_in_a_prompt_then_rendering_is_refused_even_through_an_alias() -> None:
    for text in ("{{ secrets.crm_token }}", "{% set s = secrets %}{{ s.crm_token }}"):
        with pytest.raises(TemplateError, match="secrets"):
            render(text, CTX)


def test_given_secrets_allowed_for_an_http_header_then_the_value_renders() -> None:
    assert render("Bearer {{ secrets.crm_token }}", CTX, allow_secrets=True) == "Bearer s3cr3t"


def test_given_a_template_then_roots_and_dotted_refs_are_reported() -> None:
    text = "{% set s = vars %}{{ s.tier }} {{ http.lookup.json.tier }} {{ lead['first_name'] | upper }}"
    assert template_roots(text) == {"vars", "http", "lead"}
    assert template_refs(text) == {"vars", "http.lookup.json.tier", "lead.first_name"}
    assert template_roots("no template here") == set()
    assert not is_template("50% off")


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("{{ call.language == 'es' }}", True),
        ("call.language == 'en'", False),
        ("{{ 10 if vars.tier == 'gold' else 0 }}", 10),
        ("vars.account_id | length", 8),
    ],
)
def test_given_an_expression_when_evaluated_then_the_python_value_comes_back(
    expr: str, expected: object
) -> None:
    assert evaluate(expr, CTX) == expected


def test_given_secrets_in_an_expression_then_evaluation_is_refused() -> None:
    with pytest.raises(TemplateError, match="secrets"):
        evaluate("secrets.crm_token == 'x'", CTX)

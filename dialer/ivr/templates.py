"""Templates in flow files: sandboxed Jinja2 for prompts, URLs, `set` values and screen pops.

Theory of operation. A flow file holds text such as ``"tts:Hello {{ caller.name }}"`` or
``url: "https://crm/api/{{ vars.account_id }}"``. Such text is untrusted (an admin or a pull
request wrote it), so it is rendered by Jinja2's `SandboxedEnvironment` with:

* `StrictUndefined`: a misspelt name is an error, never silently empty text that a caller hears;
* no globals (`range`, `lipsum`, `dict`, `namespace`, ...) and **no calls at all**: neither
  ``vars.x.upper()`` nor any global function; transformation goes through filters only;
* a fixed filter set: ``default``, ``upper``, ``lower``, ``digits``, ``mask(n)``, ``e164``,
  ``date(fmt)``, ``currency(code)`` (plus Jinja's harmless built-ins such as ``length``);
* `secrets.*` is refused unless the caller of `render` passes ``allow_secrets=True`` (the http
  node's URL, headers and body). Prompts, screen pops, `set` values and logs never see secrets;
  the check is on the template's AST, so ``{% set s = secrets %}{{ s.x }}`` is refused too.

The validator (dialer/ivr/validate.py) uses `template_roots` and `template_refs` to check names
statically (E401 unknown namespace/variable, E404 secrets in a prompt), and `TemplateError`'s
``lineno`` (line inside the template text) to point at file:line:col (E305).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox
import phonenumbers
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from dialer.errors import DialerError

__all__ = [
    "NAMESPACES",
    "TemplateError",
    "evaluate",
    "is_template",
    "render",
    "template_refs",
    "template_roots",
]

#: Root names a template may use (IVR_FORMAT.md "Variables and templating").
NAMESPACES = frozenset(
    {"caller", "call", "vars", "input", "http", "lead", "queue", "schedule", "secrets", "config"}
)

#: Region used by `e164` for numbers written without a country code.
DEFAULT_REGION = "US"


class TemplateError(DialerError):
    """A template cannot be parsed or rendered.

    ``lineno`` is the 1-based line inside the template text (None when unknown); ``reason`` is
    the message without location. The flow loader adds the file position of the text itself.
    """

    def __init__(self, reason: str, lineno: int | None = None, source: str = "") -> None:
        self.reason = reason
        self.lineno = lineno
        self.source = source
        where = f" (template line {lineno})" if lineno is not None else ""
        super().__init__(f"{reason}{where}")


# ------------------------------------------------------------------------------------ filters
def _default(value: object, fallback: object = "", boolean: bool = False) -> object:
    """Jinja's `default`, except that None (an unknown caller name, a JSON null) also counts as
    missing: that is what admins mean by ``{{ caller.name | default('Unknown caller') }}``."""
    if isinstance(value, jinja2.Undefined) or value is None or (boolean and not value):
        return fallback
    return value


def _digits(value: object) -> str:
    return re.sub(r"\D", "", str(value))


def _mask(value: object, keep: int = 4, char: str = "*") -> str:
    """Mask all but the last `keep` characters: ``12345678 | mask(4)`` -> ``****5678``."""
    text = str(value)
    keep = max(0, int(keep))
    if len(text) <= keep:
        return char * len(text)
    return char * (len(text) - keep) + (text[-keep:] if keep else "")


def _e164(value: object, region: str = DEFAULT_REGION) -> str:
    """Format a phone number as E.164 (``+15551230000``); text that is no number is an error."""
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException as exc:
        raise TemplateError(f"e164: {value!r} is not a phone number ({exc})") from None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _as_date(value: object) -> dt.date | dt.datetime:
    if isinstance(value, dt.datetime | dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise TemplateError(f"date: {value!r} is not an ISO date or date-time") from None


def _date(value: object, fmt: str = "%Y-%m-%d") -> str:
    """Format a date, date-time or ISO string with strftime: ``{{ lead.due | date('%B %d') }}``."""
    return _as_date(value).strftime(fmt)


_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "MXN": "MX$"}


def _currency(value: object, code: str = "USD") -> str:
    """``1234.5 | currency`` -> ``$1,234.50``; unknown codes -> ``1,234.50 CHF``."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise TemplateError(f"currency: {value!r} is not a number") from None
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(code.upper())
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code.upper()}"


_FILTERS: dict[str, Callable[..., Any]] = {
    "default": _default,
    "d": _default,
    "digits": _digits,
    "mask": _mask,
    "e164": _e164,
    "date": _date,
    "currency": _currency,
}

#: Jinja built-in filters kept (pure, no attribute access on arbitrary objects).
_BUILTIN_FILTERS = (
    "upper", "lower", "title", "capitalize", "trim", "length", "replace",
    "string", "int", "float", "round", "abs", "join", "first", "last", "truncate",
)


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with every call refused: filters are the only way to transform a value."""

    def call(
        __self,  # noqa: N805 (Jinja's own signature: positional-only self)
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        name = getattr(__obj, "__name__", type(__obj).__name__)
        raise SecurityError(f"calls are not allowed in flow templates ({name}(...))")


def _make_env() -> _Sandbox:
    env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()
    env.tests = {name: env.tests[name] for name in
                 ("defined", "undefined", "none", "number", "string", "in", "eq", "ne", "lt",
                  "gt", "le", "ge", "even", "odd") if name in env.tests}
    kept = {name: env.filters[name] for name in _BUILTIN_FILTERS if name in env.filters}
    env.filters = {**kept, **_FILTERS}
    return env


_ENV = _make_env()


def is_template(text: str) -> bool:
    """True if `text` contains Jinja syntax (plain text is returned by `render` unchanged)."""
    return "{{" in text or "{%" in text or "{#" in text


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> nodes.Template:
    try:
        return _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax: {exc.message}", exc.lineno, text) from None


@functools.lru_cache(maxsize=4096)
def _compile(text: str) -> jinja2.Template:
    try:
        return _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax: {exc.message}", exc.lineno, text) from None


def _check_filters(tree: nodes.Node, text: str) -> None:
    for node in tree.find_all((nodes.Filter, nodes.Call, nodes.Test)):
        if isinstance(node, nodes.Call):
            raise TemplateError("calls are not allowed in flow templates; use a filter",
                                node.lineno, text)
        if isinstance(node, nodes.Filter) and node.name not in _ENV.filters:
            raise TemplateError(f"unknown filter {node.name!r}", node.lineno, text)
        if isinstance(node, nodes.Test) and node.name not in _ENV.tests:
            raise TemplateError(f"unknown test {node.name!r}", node.lineno, text)


def template_roots(text: str) -> set[str]:
    """The root names a template reads (``{{ vars.x | mask(4) }}`` -> ``{"vars"}``).

    Names the template assigns itself (``{% set %}``, loop variables) are not roots. Raises
    `TemplateError` (with the line) on bad syntax, unknown filters and calls.
    """
    if not is_template(text):
        return set()
    tree = _parse(text)
    _check_filters(tree, text)
    return set(jinja2.meta.find_undeclared_variables(tree))


def template_refs(text: str) -> set[str]:
    """Dotted paths read by a template, as deep as they are literal.

    ``{{ vars.account_id | mask(4) }} {{ http.lookup.json.tier }}`` ->
    ``{"vars.account_id", "http.lookup.json.tier"}``; ``{{ lead['first_name'] }}`` ->
    ``{"lead.first_name"}``; a bare root ``{{ vars }}`` -> ``{"vars"}``. Only paths starting at a
    root (see `template_roots`) are returned.
    """
    roots = template_roots(text)
    if not roots:
        return set()
    tree = _parse(text)
    refs: set[str] = set()
    inner: set[int] = set()  # ids of Getattr/Getitem nodes that are part of a longer chain

    def chain(node: nodes.Node) -> list[str] | None:
        if isinstance(node, nodes.Name):
            return [node.name]
        if isinstance(node, nodes.Getattr):
            base = chain(node.node)
            return None if base is None else [*base, node.attr]
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            base = chain(node.node)
            return None if base is None else [*base, str(node.arg.value)]
        return None

    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            inner.add(id(node.node))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(node) in inner:
            continue
        path = chain(node)
        if path and path[0] in roots and not (isinstance(node, nodes.Name) and node.ctx != "load"):
            refs.add(".".join(path))
    return refs


def _context(context: Mapping[str, Any], allow_secrets: bool, text: str) -> dict[str, Any]:
    if not allow_secrets and "secrets" in template_roots(text):
        raise TemplateError("secrets.* may only be used in an http node's url, headers or body",
                            None, text)
    data = dict(context)
    if not allow_secrets:
        data.pop("secrets", None)
    return data


def render(text: str, context: Mapping[str, Any], *, allow_secrets: bool = False) -> str:
    """Render `text` with `context` (namespace -> value). Plain text comes back unchanged.

    Raises `TemplateError` for syntax errors, undefined names (``StrictUndefined``), sandbox
    violations, filter errors, and for `secrets.*` unless `allow_secrets`.
    """
    if not is_template(text):
        return text
    template_roots(text)  # syntax, filter and call checks with line numbers
    data = _context(context, allow_secrets, text)
    try:
        return _compile(text).render(data)
    except TemplateError:
        raise
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}", None, text) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed: {exc}", None, text) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, jinja2.TemplateError) as exc:
        raise TemplateError(f"cannot render: {exc}", None, text) from None


_WRAPPED_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


def evaluate(expr: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a condition or value expression and return the Python value.

    Accepts a bare expression (``vars.tier == 'gold'``) or one wrapped in ``{{ }}`` (the form
    flow files use for `when:` and `priority:`). Same sandbox and errors as `render`; secrets
    are never available.
    """
    match = _WRAPPED_EXPR.match(expr)
    source = match.group("expr") if match else expr
    wrapped = "{{ " + source + " }}"
    template_roots(wrapped)
    data = _context(context, False, wrapped)
    try:
        compiled = _ENV.compile_expression(source, undefined_to_none=False)
        value = compiled(**data)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"expression syntax: {exc.message}", exc.lineno, expr) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}", None, expr) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed: {exc}", None, expr) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, jinja2.TemplateError) as exc:
        raise TemplateError(f"cannot evaluate: {exc}", None, expr) from None
    if isinstance(value, jinja2.Undefined):
        raise TemplateError(f"undefined value in {expr!r}", None, expr)
    return value

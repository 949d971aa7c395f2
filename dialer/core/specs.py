"""Campaign definitions from YAML/JSON mappings -> `CampaignSpec`, with every error named.

A campaign file (or API body) looks like:

    id: spring-drive
    name: Spring fundraising drive
    dial_mode: predictive          # preview | progressive | power | predictive | agentless
    trunk: "PJSIP/{number}@carrier"
    caller_id: "Acme <+15550100>"
    safe_harbor: {seller: Acme, callback_number: "+15550100", optout_key: "9"}
    abandon_target: 0.03           # at most 0.03 (the legal ceiling)
    connect_limit: 2.0             # seconds, at most 2.0
    ring_timeout: 25               # seconds, at least 15
    max_cps: 5
    max_channels: 60
    window: {start: "08:00", end: "21:00"}
    amd: off                       # off | hangup | message
    recording: false
    uk_mode: false
    ring_agents: false             # true: ring the agent's phone per call (not with preview);
                                   # their answer must come within connect_limit (else safe harbor)
    wrapup: 10
    retry: {busy: 600, no_answer: 3600, machine: 14400, max_attempts: 5}
    matching:                      # optional: agent-lead matching (dialer/routing/matching.py)
      required: [language]         # a lead goes only to an agent who has its value
      preferences:                 # on answer, the ready agent with the best score
        - {attribute: region, weight: 2}
        - {attribute: tags, weight: 3, kind: tags}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import phonenumbers

from dialer.core.model import AmdMode, CampaignSpec, DialMode, RetryRules, SafeHarbor
from dialer.core.window import parse_hhmm
from dialer.errors import DialerError
from dialer.routing.matching import MatchRules, RulesError, check_attributes, parse_rules

CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TOP_KEYS = {"id", "name", "dial_mode", "trunk", "caller_id", "safe_harbor", "power_ratio",
            "abandon_target", "connect_limit", "ring_timeout", "max_cps", "max_channels",
            "window", "amd", "recording", "uk_mode", "amd_false_positive_rate", "ring_agents", "wrapup",
            "default_region", "retry", "agents", "matching", "flow"}


class SpecError(DialerError):
    """A campaign definition is invalid; `field` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def _num(data: Mapping[str, Any], key: str, default: float, lo: float, hi: float,
         path: str = "") -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(path + key, "must be a number")
    if not lo <= value <= hi:
        raise SpecError(path + key, f"must be between {lo:g} and {hi:g}, got {value:g}")
    return float(value)


def _str(data: Mapping[str, Any], key: str, default: str | None = None, path: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(path + key, "is required (a non-empty string)")
    return value


def _enum(data: Mapping[str, Any], key: str, enum: type[DialMode] | type[AmdMode],
          default: str) -> Any:
    value = data.get(key, default)
    if value is False and enum is AmdMode:  # YAML `off` is a boolean in YAML 1.1
        value = "off"
    try:
        return enum(value)
    except ValueError:
        choices = " | ".join(m.value for m in enum)
        raise SpecError(key, f"must be one of {choices}, got {value!r}") from None


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(key, "must be true or false")
    return value


def _ring_agents(data: Mapping[str, Any], dial_mode: DialMode) -> bool:
    """Ring-per-call: the agent's phone is called for each answered customer, who waits for it
    within `connect_limit` (then hears the safe-harbor message and counts as abandoned). Preview
    needs the nailed-up phone (the agent hears their call ring), agentless has no agents."""
    ring = _bool(data, "ring_agents")
    if ring and dial_mode in (DialMode.PREVIEW, DialMode.AGENTLESS):
        raise SpecError("ring_agents", f"not with dial_mode {dial_mode.value}: preview agents "
                        "stay connected (nailed-up) to hear their call ring; agentless has none")
    return ring


def _matching(data: Mapping[str, Any], attributes: frozenset[str] | None) -> MatchRules:
    """The `matching:` block (absent: no matching). `attributes`: the attribute names agents'
    profiles have, when known (the server's profiles file); a rule naming another is refused,
    since a misspelt required attribute would make every lead "without requirement"."""
    try:
        rules = parse_rules(data.get("matching"))
        if attributes is not None and not rules.unconstrained:
            check_attributes(rules, attributes)
    except RulesError as exc:
        head = "; ".join(exc.problems[:5])
        more = f" (and {len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
        raise SpecError("matching", head + more) from None
    return rules


FLOW_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _flow_id(data: Mapping[str, Any], path: str) -> str | None:
    """An IVR flow id (the file name under ivr_flows/ without .yaml), or None."""
    value = data.get(path.rsplit(".", 1)[-1])
    if value is None:
        return None
    if not isinstance(value, str) or not FLOW_ID.match(value):
        raise SpecError(path, f"must be a flow id matching {FLOW_ID.pattern} (a file name "
                              "in ivr_flows/ without .yaml)")
    return value


def parse_campaign(data: object, *, attributes: frozenset[str] | None = None) -> CampaignSpec:
    """A campaign from its decoded file or API body; `SpecError` names the first bad field.
    `attributes`: the agents' profile attribute names, to check `matching:` against."""
    if not isinstance(data, Mapping):
        raise SpecError("campaign", "must be a mapping")
    unknown = sorted(set(data) - TOP_KEYS, key=str)
    if unknown:
        raise SpecError(unknown[0], "unknown field")
    cid = _str(data, "id")
    if not CAMPAIGN_ID.match(cid):
        raise SpecError("id", f"must match {CAMPAIGN_ID.pattern}")
    trunk = _str(data, "trunk")
    if "{number}" not in trunk:
        raise SpecError("trunk", "must contain {number}, e.g. PJSIP/{number}@carrier")
    sh = data.get("safe_harbor")
    if not isinstance(sh, Mapping):
        raise SpecError("safe_harbor", "is required: {seller, callback_number, optout_key}")
    optout = str(sh.get("optout_key", "9"))
    if optout not in set("0123456789*#"):
        raise SpecError("safe_harbor.optout_key", "must be one DTMF key")
    safe_harbor = SafeHarbor(seller=_str(sh, "seller", path="safe_harbor."),
                             callback_number=_str(sh, "callback_number", path="safe_harbor."),
                             optout_key=optout, flow=_flow_id(sh, "safe_harbor.flow"))
    window = data.get("window", {})
    if not isinstance(window, Mapping):
        raise SpecError("window", "must be {start: HH:MM, end: HH:MM}")
    start, end = str(window.get("start", "08:00")), str(window.get("end", "21:00"))
    try:
        if parse_hhmm(start) >= parse_hhmm(end):
            raise SpecError("window", "start must be before end")
    except ValueError as exc:
        raise SpecError("window", str(exc)) from None
    retry_data = data.get("retry", {})
    if not isinstance(retry_data, Mapping):
        raise SpecError("retry", "must be a mapping")
    retry_fields = {f.name for f in fields(RetryRules)}
    bad = sorted(set(retry_data) - retry_fields, key=str)
    if bad:
        raise SpecError(f"retry.{bad[0]}", "unknown field")
    retry_kw: dict[str, Any] = {}
    for key, value in retry_data.items():
        if key == "max_attempts":
            retry_kw[key] = int(_num(retry_data, key, 5, 1, 100, "retry."))
        elif value is None:
            retry_kw[key] = None
        else:
            retry_kw[key] = _num(retry_data, key, 0, 0, 90 * 86400, "retry.")
    agents = data.get("agents", [])
    if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
        raise SpecError("agents", "must be a list of agent ids")
    uk_mode = _bool(data, "uk_mode")
    region = _str(data, "default_region", "US")
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise SpecError("default_region", f"unknown region '{region}' (ISO 3166 code, e.g. US)")
    dial_mode = _enum(data, "dial_mode", DialMode, "progressive")
    matching = _matching(data, attributes)
    return CampaignSpec(
        id=cid,
        name=_str(data, "name", cid),
        dial_mode=dial_mode,
        trunk=trunk,
        caller_id=_str(data, "caller_id"),
        safe_harbor=safe_harbor,
        power_ratio=_num(data, "power_ratio", 1.5, 1.0, 5.0),
        # The legal ceiling is 3 %: a campaign may aim lower, never higher.
        abandon_target=_num(data, "abandon_target", 0.03, 0.0, 0.03),
        connect_limit=_num(data, "connect_limit", 2.0, 0.5, 2.0),
        ring_timeout=_num(data, "ring_timeout", 25, 15, 120),
        max_cps=_num(data, "max_cps", 5, 0.1, 500),
        max_channels=int(_num(data, "max_channels", 60, 1, 10000)),
        window_start=start,
        window_end=end,
        amd=_enum(data, "amd", AmdMode, "off"),
        recording=_bool(data, "recording"),
        uk_mode=uk_mode,
        amd_false_positive_rate=_num(data, "amd_false_positive_rate", 0.05, 0.0, 1.0),
        ring_agents=_ring_agents(data, dial_mode),
        wrapup=_num(data, "wrapup", 10, 0, 3600),
        default_region=region,
        retry=RetryRules(**({"abandoned": 72 * 3600.0} if uk_mode else {}) | retry_kw),
        agents=tuple(agents),
        matching=matching,
        flow=_flow_id(data, "flow"),
    )

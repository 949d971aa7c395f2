"""Callback leads: someone asked to be called back, from a web form, a chat or a social page
(`POST /callbacks`, `dialer.intake`) or from an IVR `callback` node (`dialer.ivr.hooks`).

Pure: a request body, the configured rules and `now` in; a validated `CallbackRequest`, then a
`Lead`, or a `CallbackError` with a stable code out. No clock, store or randomness: the caller
passes `now` and the lead id's random part.

Theory of operation for a request from another channel:

1. `parse_callback_request` checks the body as a whole (known fields only, each of the right
   type and size), maps the topic to its campaign and skill (`CallbackRules.topics`; topics are
   matched case-insensitively) and reads `preferred_time`: ISO 8601 with a UTC offset (a time
   without one would be read in the server's zone, which a form in another zone did not mean);
   omitted means now. A time up to `grace` seconds in the past is taken as now (a form filled
   in a little while ago, clocks a little apart); earlier is refused, and so is a time more
   than `horizon` seconds ahead.
2. The caller looks the topic's campaign up (its `default_region` reads numbers without a
   country code, unless the request names a region) and calls `callback_lead`, which reads the
   number with the lead importer (`dialer.core.leads`: E.164, time zones from the number) so a
   callback lead is exactly like an imported one: high priority (`CALLBACK_PRIORITY`), not
   dialed before the preferred time, and tagged with attributes (topic, skill, source, name,
   notes) that the agent sees and routing matches on.

The campaign's calling window still applies: a preferred time outside it waits for the window.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import phonenumbers

from dialer.core.leads import MAX_FIELD_CHARS, parse_leads_json
from dialer.core.model import Lead
from dialer.errors import DialerError

CALLBACK_PRIORITY = 1000  # ahead of ordinary leads (imported leads default to 0)
SOURCE = "callback-request"  # the `source` attribute of a lead made from a callback request
DEFAULT_GRACE = 300.0  # seconds a preferred time may lie in the past (then taken as now)
DEFAULT_HORIZON = 30 * 86400.0  # seconds ahead a preferred time may lie

#: Fields of a request body; anything else is refused (a typo such as `prefered_time` would
#: otherwise be dropped silently and the customer called at the wrong time).
FIELDS = ("number", "topic", "preferred_time", "name", "notes", "region", "channel")
MAX_NUMBER_CHARS = 64
MAX_TIME_CHARS = 64
TOPIC = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # configured topic names (lower case)
# A skill is named as `dialer.routing.profiles` names them.
SKILL = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
CHANNEL = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")  # where the request came from: web, chat, ...


class CallbackError(DialerError):
    """A callback request or callback lead that cannot be accepted. `code` is stable (the HTTP
    API maps it to a status), `message` is for people, `field` names the body field."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class CallbackTopic:
    """Where a topic's callbacks go: the campaign that dials them, the skill that takes them."""

    campaign: str
    skill: str


@dataclass(frozen=True, slots=True)
class CallbackRules:
    """The `callbacks:` section of the configuration."""

    topics: Mapping[str, CallbackTopic] = field(default_factory=dict)
    grace: float = DEFAULT_GRACE
    horizon: float = DEFAULT_HORIZON

    def known_topics(self) -> str:
        return ", ".join(sorted(self.topics)) or "none are configured (callbacks.topics)"


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A request that passed every check that needs no store."""

    number: str  # as given; `callback_lead` reads it
    topic: str  # the configured topic name
    campaign: str
    skill: str
    earliest: float  # POSIX: the lead's next_at
    region: str | None = None  # ISO 3166 for a number without a country code
    name: str = ""
    notes: str = ""
    channel: str = ""

    def attributes(self) -> dict[str, str]:
        """The lead's attributes (empty optional fields left out)."""
        attributes = {"topic": self.topic, "skill": self.skill, "source": SOURCE}
        for key, value in (("name", self.name), ("notes", self.notes),
                           ("channel", self.channel)):
            if value:
                attributes[key] = value
        return attributes


def parse_callback_request(body: Mapping[str, object], rules: CallbackRules,
                           now: float) -> CallbackRequest:
    """The request in `body` (a decoded JSON object), or the first problem as CallbackError."""
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        raise CallbackError("unknown_field", f"unknown field '{unknown[0][:40]}' (known: "
                                             f"{', '.join(FIELDS)})", unknown[0][:40])
    number = _text(body, "number", MAX_NUMBER_CHARS, required=True)
    topic_text = _text(body, "topic", 64, required=True)
    topic = topic_text.strip().casefold()
    target = rules.topics.get(topic)
    if target is None:
        raise CallbackError("unknown_topic", f"unknown topic '{topic_text[:64]}' (known: "
                                             f"{rules.known_topics()})", "topic")
    region_text = _text(body, "region", 8)
    region = region_text.strip().upper() or None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise CallbackError("bad_region", f"unknown region '{region_text}': expected an ISO "
                                          "3166 code such as US or GB", "region")
    channel = _text(body, "channel", 32).strip()
    if channel and not CHANNEL.match(channel):
        raise CallbackError("bad_field", f"'channel' must match {CHANNEL.pattern} (e.g. web, "
                                         "chat, facebook)", "channel")
    return CallbackRequest(
        number=number.strip(), topic=topic, campaign=target.campaign, skill=target.skill,
        earliest=preferred_time(body.get("preferred_time"), rules, now), region=region,
        name=_text(body, "name", MAX_FIELD_CHARS).strip(),
        notes=_text(body, "notes", MAX_FIELD_CHARS).strip(), channel=channel)


def preferred_time(value: object, rules: CallbackRules, now: float) -> float:
    """The POSIX time to call back at: `value` (ISO 8601 with an offset, or None for now)
    checked against `now` with the rules' grace and horizon."""
    if value is None:
        return now
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS:
        raise CallbackError("bad_preferred_time", "'preferred_time' must be an ISO 8601 date "
                                                  "and time with an offset, e.g. "
                                                  "2026-12-01T15:30:00+01:00", "preferred_time")
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise CallbackError("bad_preferred_time", f"'preferred_time' {value!r} is not an ISO "
                                                  "8601 date and time (e.g. "
                                                  "2026-12-01T15:30:00+01:00)",
                            "preferred_time") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise CallbackError("bad_preferred_time", f"'preferred_time' {value!r} has no UTC "
                                                  "offset: add one (+01:00, -05:00 or Z)",
                            "preferred_time")
    try:
        t = when.timestamp()
    except (OverflowError, ValueError, OSError):  # year 1 with a negative offset, and such
        t = -math.inf
    if t < now - rules.grace:
        late = _duration(now - t)
        raise CallbackError("preferred_time_past", f"'preferred_time' {value!r} is {late} in "
                                                   "the past", "preferred_time")
    if t > now + rules.horizon:
        raise CallbackError("preferred_time_too_far",
                            f"'preferred_time' {value!r} is more than "
                            f"{_duration(rules.horizon)} ahead", "preferred_time")
    return max(t, now)


def callback_lead(number: str, *, campaign: str, region: str, earliest: float, key: str,
                  attributes: Mapping[str, str]) -> Lead:
    """A callback lead for `number` in `campaign`, read as the lead importer reads a row
    (E.164, time zones from the number): priority `CALLBACK_PRIORITY`, not dialed before
    `earliest`, id `<campaign>:<key>-<E.164>` (`key` unique per callback: a number may have
    several). Raises CallbackError `bad_number` when the number cannot be read."""
    row = {**attributes, "phone": number, "priority": str(CALLBACK_PRIORITY)}
    report = parse_leads_json(json.dumps([row]), campaign_id=campaign, default_region=region,
                              id_prefix=f"{campaign}:{key}-")
    if report.errors or not report.leads:
        reason = report.errors[0].reason if report.errors else "no lead"
        raise CallbackError("bad_number", f"cannot call back {number[:MAX_NUMBER_CHARS]!r}: "
                                          f"{reason}", "number")
    return replace(report.leads[0], next_at=earliest)


def _text(body: Mapping[str, object], key: str, limit: int, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise CallbackError("missing_field", f"'{key}' is required", key)
        return ""
    if not isinstance(value, str):
        raise CallbackError("bad_field", f"'{key}' must be a string", key)
    if required and not value.strip():
        raise CallbackError("missing_field", f"'{key}' is empty", key)
    if len(value) > limit:
        raise CallbackError("bad_field", f"'{key}' is {len(value)} characters long (limit "
                                         f"{limit})", key)
    return value


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "far"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"

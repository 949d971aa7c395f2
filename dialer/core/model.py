"""The dialer's domain records, shared by the core, the store and the runtime.

Plain frozen dataclasses: no I/O, no clock. Times are POSIX seconds (floats) passed in by the
caller. Serialisation to Redis lives in `dialer.store`, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dialer.core.outcome import DialOutcome
from dialer.routing.matching import MatchRules


class DialMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    POWER = "power"
    PREDICTIVE = "predictive"
    AGENTLESS = "agentless"


class AmdMode(StrEnum):
    OFF = "off"
    HANGUP = "hangup"  # machines are hung up on
    MESSAGE = "message"  # a message is left after the greeting


class LeadState(StrEnum):
    READY = "ready"  # may be dialed from `next_at` on
    IN_PROGRESS = "in_progress"  # claimed by an attempt that has not ended
    DONE = "done"  # finished: contacted, or out of attempts, or a final outcome
    DNC = "dnc"  # on a do-not-call list: never dialed again


class AttemptResult(StrEnum):
    """How an attempt ended, from the campaign's point of view (richer than DialOutcome)."""

    TALKED = "talked"  # a human was connected to an agent
    AGENTLESS = "agentless"  # a human heard the outbound flow (agentless mode)
    ABANDONED = "abandoned"  # a human was not connected within the limit: safe harbor played
    MACHINE = "machine"  # answering machine (hung up, or message left)
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    UNALLOCATED = "unallocated"
    CONGESTION = "congestion"
    UNAVAILABLE = "unavailable"
    FAILED = "failed"
    HUNG_UP_EARLY = "hung_up_early"  # human answered and hung up before any agent or message

    @classmethod
    def from_dial(cls, outcome: DialOutcome) -> AttemptResult:
        return cls(outcome.value) if outcome is not DialOutcome.ANSWERED else cls.FAILED


@dataclass(frozen=True, slots=True)
class Lead:
    id: str
    campaign_id: str
    phone: str  # E.164
    timezones: tuple[str, ...]  # IANA zones the number may be in; the window must hold in all
    priority: int = 0  # higher first
    attributes: tuple[tuple[str, str], ...] = ()  # custom columns, sorted by name
    state: LeadState = LeadState.READY
    attempts: int = 0
    next_at: float = 0.0  # earliest time of the next attempt
    last_result: AttemptResult | None = None
    lockout_until: float = 0.0  # UK: no call within 72 h of an abandoned call
    callback_agent: str | None = None  # a scheduled callback reserved for an agent

    def attribute(self, name: str) -> str | None:
        return dict(self.attributes).get(name)


@dataclass(frozen=True, slots=True)
class EscalationRecord:
    """One escalation (cold or warm, to a supervisor) or supervision (listen, whisper, barge) of
    the call, as `dialer.core.escalation` decided it: who, when, how asked, how it ended."""

    at: float
    kind: str  # cold | warm | listen | whisper | barge
    agent_id: str
    supervisor_id: str
    via: str = "api"  # api | phone (a feature code keyed on the agent's phone)
    outcome: str | None = None  # transferred, joined, handed_over, cancelled, stopped, failed, ...
    outcome_at: float | None = None
    ended_at: float | None = None  # the supervisor left the call (or it ended)


@dataclass(frozen=True, slots=True)
class Attempt:
    """Every attempt is recorded: phase times, result, cause, agent, disposition, recording,
    escalations."""

    id: str  # also the customer channel id in Asterisk
    campaign_id: str
    lead_id: str
    phone: str
    originated_at: float
    answered_at: float | None = None
    amd_done_at: float | None = None  # human verdict time: the 2-second clock starts here
    connected_at: float | None = None
    ended_at: float | None = None
    result: AttemptResult | None = None
    cause: int | None = None
    amd_status: str | None = None
    agent_id: str | None = None
    disposition: str | None = None
    recording: str | None = None
    escalations: tuple[EscalationRecord, ...] = ()  # older records have none


@dataclass(frozen=True, slots=True)
class RetryRules:
    """Seconds to wait before the next attempt after each result; None = no retry."""

    busy: float | None = 600
    no_answer: float | None = 3600
    machine: float | None = 4 * 3600
    congestion: float | None = 300
    unavailable: float | None = 900
    failed: float | None = 1800
    abandoned: float | None = 3600  # UK mode raises this to 72 h
    hung_up_early: float | None = 3600
    max_attempts: int = 5


@dataclass(frozen=True, slots=True)
class SafeHarbor:
    seller: str
    callback_number: str
    optout_key: str = "9"
    prompt: str = "sound:safe-harbor"  # rendered per campaign; see the IVR issue for TTS
    # An IVR flow (ivr_flows/) that plays the message instead of the built-in one: its
    # safe_harbor node names the seller and number and takes the opt-out key.
    flow: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    id: str
    name: str
    dial_mode: DialMode
    trunk: str  # endpoint template with {number}: "PJSIP/{number}@carrier"
    caller_id: str
    safe_harbor: SafeHarbor
    power_ratio: float = 1.5
    abandon_target: float = 0.03
    connect_limit: float = 2.0  # seconds from the end of the greeting (AMD) to an agent
    ring_timeout: float = 25.0  # >= 15 s (regulation)
    max_cps: float = 5.0  # calls per second on the trunk
    max_channels: int = 60  # concurrent calls on the trunk
    window_start: str = "08:00"  # in the lead's local time
    window_end: str = "21:00"
    amd: AmdMode = AmdMode.OFF
    recording: bool = False
    uk_mode: bool = False
    # UK (Ofcom): AMD false positives (people hung up on as "machines") are estimated and
    # counted as abandoned calls. This is the estimated share of MACHINE verdicts that were
    # people; measure it on your AMD settings.
    amd_false_positive_rate: float = 0.05
    ring_agents: bool = False  # ring the agent per call instead of a nailed-up connection
    wrapup: float = 10.0
    default_region: str = "US"  # for numbers written without a country code
    retry: RetryRules = field(default_factory=RetryRules)
    agents: tuple[str, ...] = ()  # agent ids who may take this campaign's calls
    # Agent-lead matching (dialer.routing.matching): required attributes and weighted
    # preferences; the default (no rules) routes to the longest-idle agent and dials any lead.
    matching: MatchRules = field(default_factory=MatchRules)
    # Agentless mode: the outbound IVR flow (ivr_flows/) an answered person hears.
    flow: str | None = None

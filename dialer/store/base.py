"""The store contract: what the dialer keeps in shared state, and the rules both stores follow.

Two implementations honour it identically (one contract test suite runs against both):
`MemoryStore` (in-process: the simulator and unit tests) and `RedisStore` (production).

Leads. A lead is READY, IN_PROGRESS, DONE or DNC. `claim_lead` atomically takes the best lead
that is READY with ``next_at <= now`` and ``lockout_until <= now`` -- highest priority first,
then earliest ``next_at``, then lowest id -- marks it IN_PROGRESS and records the attempt id in
flight for it, so a crash leaves evidence (`in_flight_leads`). The lead's record itself is not
rewritten by a claim. The core computes the outcome and hands the whole updated lead back with
`finish_lead` (which clears the in-flight mark), or gives an unused claim back with
`reschedule_lead`. Re-adding a lead with a known id merges: dialing history (state, attempts,
next_at, last_result, lockout_until, callback_agent) is kept, contact data (phone, timezones,
priority, attributes) is replaced.

Attempts. Saved by id (create or update). An attempt saved without ``ended_at`` is open
(`in_flight_attempts`, for reconciliation after a restart). When an attempt is first saved with
``ended_at`` it is counted, once, into per-day counters for the abandonment rate: abandoned,
and answered by a live human (`HUMAN_RESULTS`), in the day bucket of ``ended_at``.

Orders. Leads are listed by id. Attempts of a lead are listed by (originated_at, id);
`recent_attempts` returns the newest first.

Errors (all `dialer.errors.DialerError`)::

    StoreError
    ├── StoreCorrupt       stored data cannot be decoded; the message names the key
    ├── StoreUnavailable   the store cannot be reached or does not answer in time
    ├── StoreRefused       Redis refused a command (out of memory, a key of the wrong type;
    │                      `save_batch` reports a refused record instead, as a `Refusal`)
    └── UnknownRecord      the operation needs a record that does not exist

Misuse (a lead added to the wrong campaign, finishing a lead as IN_PROGRESS, an unknown
campaign status) raises `ValueError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, Protocol

from dialer.core.model import Attempt, AttemptResult, CampaignSpec, Lead, LeadState
from dialer.errors import DialerError

CAMPAIGN_STATUSES: Final = ("created", "running", "paused", "stopped")

# Results where a live person answered: the denominator of the abandonment rate (FTC TSR
# 310.4(b)(4)(i): abandoned calls as a share of calls answered by a live person).
HUMAN_RESULTS: Final = frozenset({
    AttemptResult.TALKED,
    AttemptResult.AGENTLESS,
    AttemptResult.ABANDONED,
    AttemptResult.HUNG_UP_EARLY,
})

DayBucket = Callable[[float], int]


def utc_day(t: float) -> int:
    """The UTC day bucket of a POSIX time: days since 1970-01-01."""
    return int(t // 86400)


class StoreError(DialerError):
    """The store failed."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A record `save_batch` did not write, and why (`str` gives the why)."""

    kind: Literal["attempt", "lead", "agent"]
    record_id: str
    reason: str

    def __str__(self) -> str:
        return self.reason


class StoreCorrupt(StoreError):
    """Stored data could not be decoded. `key` names where it is."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"corrupt data in the store at key '{key}': {reason}")


class StoreUnavailable(StoreError):
    """The store could not be reached."""


class StoreRefused(StoreError):
    """The store was reached but refused a command (Redis out of memory, a key of the wrong
    type): a fault of the server's, not of the request."""


class UnknownRecord(StoreError):
    """An operation needed a record (lead, campaign) that is not stored."""


class Store(Protocol):
    # campaigns
    async def save_campaign(self, spec: CampaignSpec) -> None:
        """Create or replace a campaign; a new campaign's status is "created"."""

    async def get_campaign(self, campaign_id: str) -> CampaignSpec | None: ...

    async def list_campaigns(self) -> list[CampaignSpec]:
        """Every campaign, by id."""

    async def set_campaign_status(self, campaign_id: str, status: str) -> None:
        """One of `CAMPAIGN_STATUSES`; UnknownRecord if the campaign is not saved."""

    async def get_campaign_status(self, campaign_id: str) -> str | None: ...

    async def running_campaigns(self) -> list[str]:
        """Ids of the campaigns whose status is "running", sorted."""

    async def save_pacer_state(self, campaign_id: str, state: str) -> None:
        """Keep the campaign's pacer estimates (JSON text, `dialer.core.pacing`), replacing
        the last; they carry its learning over a restart."""

    async def load_pacer_state(self, campaign_id: str) -> str | None:
        """The pacer estimates last saved for the campaign, or None."""

    # leads
    async def add_leads(self, campaign_id: str, leads: Sequence[Lead]) -> tuple[int, int]:
        """Store leads; returns (added, merged). See the module docstring for merging."""

    async def get_lead(self, lead_id: str) -> Lead | None: ...

    async def list_leads(
        self, campaign_id: str, *, state: LeadState | None = None, offset: int = 0, limit: int = 100
    ) -> list[Lead]:
        """A page of the campaign's leads (in one state, or all), by id."""

    async def count_leads(self, campaign_id: str) -> dict[str, int]:
        """Lead count for every LeadState value (zeros included)."""

    async def dialable_count(self, campaign_id: str, now: float) -> int:
        """How many leads `claim_lead` could hand out at `now`."""

    async def claim_lead(self, campaign_id: str, now: float, attempt_id: str) -> Lead | None:
        """Atomically take the best dialable lead (IN_PROGRESS, attempt in flight), or None."""

    async def reschedule_lead(self, lead_id: str, next_at: float) -> None:
        """Give a claimed (or READY) lead back: READY at `next_at`, attempts unchanged."""

    async def finish_lead(self, lead: Lead) -> None:
        """Store the lead as computed by the core (not IN_PROGRESS); clear its in-flight mark."""

    async def in_flight_leads(self, campaign_id: str) -> dict[str, str]:
        """lead id -> attempt id for every claimed, unfinished lead of the campaign."""

    # attempts
    async def save_attempt(self, attempt: Attempt) -> None: ...

    async def get_attempt(self, attempt_id: str) -> Attempt | None: ...

    async def lead_attempts(self, lead_id: str) -> list[Attempt]:
        """The lead's attempts by (originated_at, id)."""

    async def in_flight_attempts(self, campaign_id: str) -> list[Attempt]:
        """Attempts last saved without ended_at, by (originated_at, id)."""

    async def recent_attempts(self, campaign_id: str, limit: int) -> list[Attempt]:
        """The newest `limit` attempts by (originated_at, id), newest first."""

    async def abandon_stats(self, campaign_id: str, since: float) -> tuple[int, int]:
        """(abandoned, answered by a live human) over the day buckets from that of `since`."""

    async def machine_count(self, campaign_id: str, since: float) -> int:
        """Attempts ended as answering machines over the day buckets from that of `since`
        (UK mode counts an estimated share of them as abandoned: AMD false positives)."""

    async def save_batch(self, attempts: Sequence[Attempt] = (),
                         agents: Mapping[str, Mapping[str, str]] | None = None,
                         leads: Sequence[Lead] = ()) -> list[Refusal]:
        """`save_attempt` for each attempt (in order), `finish_lead` for each lead and
        `save_agent` for each agent, all at once: Redis applies them as one script (one round
        trip), so a crash leaves all or none of them. A lead `finish_lead` would refuse
        (unknown, IN_PROGRESS, of another campaign, corrupt) is skipped, and so is a record
        Redis refuses to write (a key of the wrong type): the others are written all the
        same. The result has one `Refusal` per skipped record, leads first. Of two leads with
        one id, the later wins."""

    async def claim_leads(self, campaign_id: str, now: float,
                          attempt_ids: Sequence[str]) -> list[tuple[Lead, str, bool]]:
        """`claim_lead` once per attempt id, in order, until no lead is left: the claimed
        (lead, attempt id, on a DNC list as `dnc_contains` says) triples, the DNC check made in
        the same step. Each claim is atomic (one round trip in all on Redis). As
        with `claim_lead`, a claimed lead whose record cannot be decoded raises StoreCorrupt;
        it stays in flight, for the restart reconciliation to give back."""

    async def scan_dialable(self, campaign_id: str, now: float, attributes: Sequence[str],
                            limit: int) -> list[tuple[str, dict[str, str]]]:
        """The first `limit` leads `claim_lead` would hand out at `now`, in that order, each
        as (lead id, the lead's values of those of `attributes` it has). Claims nothing (leads
        whose lockout has passed move to the ready index, as a claim would move them). For
        matching: dialable leads per group, and which leads to claim for a group."""

    async def claim_listed(self, campaign_id: str, now: float,
                           picks: Sequence[tuple[str, str]]) -> list[tuple[Lead, str, bool]]:
        """Claim the named leads, (lead id, attempt id) in order, each atomically and only
        if it is still dialable at `now` (READY, due, its lockout passed, not in flight);
        the others are left out of the result, which is as `claim_leads` gives it."""

    # do-not-call
    async def dnc_add(self, number: str, campaign_id: str | None = None) -> None:
        """Add to the global list (campaign_id None) or the campaign's own."""

    async def dnc_add_many(self, numbers: Sequence[str], campaign_id: str | None = None) -> int:
        """Returns how many numbers were not on that list before."""

    async def dnc_contains(self, number: str, campaign_id: str) -> bool:
        """On the global list or on the campaign's."""

    async def dnc_remove(self, number: str, campaign_id: str | None = None) -> None:
        """Remove from the global list (campaign_id None) or the campaign's own."""

    # agents
    async def save_agent(self, agent_id: str, data: Mapping[str, str]) -> None:
        """Create or replace the agent's fields."""

    async def get_agent(self, agent_id: str) -> dict[str, str] | None: ...

    async def list_agents(self) -> list[str]:
        """Agent ids, sorted."""

    async def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be reached."""


def check_status(status: str) -> None:
    if status not in CAMPAIGN_STATUSES:
        raise ValueError(f"unknown campaign status {status!r}; expected one of {CAMPAIGN_STATUSES}")


def check_new_lead(campaign_id: str, lead: Lead) -> None:
    if lead.campaign_id != campaign_id:
        raise ValueError(f"lead {lead.id!r} belongs to campaign {lead.campaign_id!r}, "
                         f"not {campaign_id!r}")
    if lead.state is LeadState.IN_PROGRESS:
        raise ValueError(f"lead {lead.id!r}: a lead cannot be added IN_PROGRESS")


def merge_lead(old: Lead, new: Lead) -> Lead:
    """A re-added lead: the dialing history of `old`, the contact data of `new`."""
    if old.campaign_id != new.campaign_id:
        raise ValueError(f"lead {new.id!r} already belongs to campaign {old.campaign_id!r}")
    return replace(new, state=old.state, attempts=old.attempts, next_at=old.next_at,
                   last_result=old.last_result, lockout_until=old.lockout_until,
                   callback_agent=old.callback_agent)


def check_finished(old: Lead | None, lead: Lead) -> None:
    if lead.state is LeadState.IN_PROGRESS:
        raise ValueError(f"lead {lead.id!r}: finish_lead needs the lead's next state, "
                         "not IN_PROGRESS")
    if old is None:
        raise UnknownRecord(f"lead {lead.id!r} is not stored")
    if old.campaign_id != lead.campaign_id:
        raise ValueError(f"lead {lead.id!r} belongs to campaign {old.campaign_id!r}")


def rescheduled(old: Lead | None, lead_id: str, next_at: float, in_flight: bool) -> Lead:
    if old is None:
        raise UnknownRecord(f"lead {lead_id!r} is not stored")
    if not in_flight and old.state is not LeadState.READY:
        raise ValueError(f"lead {lead_id!r} is {old.state.value}, not claimed or ready")
    return replace(old, state=LeadState.READY, next_at=next_at)


def is_locked(lead: Lead) -> bool:
    """A READY lead whose lockout ends after its next_at waits in the locked index."""
    return lead.lockout_until > lead.next_at

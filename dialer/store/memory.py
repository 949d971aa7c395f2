"""The in-process store: the simulator's and the unit tests' `Store`.

It mirrors `RedisStore` structure for structure (see `dialer.store.keys`): per campaign and
priority a ``ready`` list sorted by (next_at, id) and a ``locked`` list sorted by
(lockout_until, id), so it hands out leads in exactly the same order. Methods never await in
the middle of a change, so under asyncio each call is atomic.

Several `MemoryStore` objects may share one `MemoryData`, as several dialer processes share one
Redis: the tests use that to check concurrent claims and restarts against both stores alike.
Records are immutable dataclasses and are stored as given; agent fields are copied.
"""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from dialer.core.model import Attempt, AttemptResult, CampaignSpec, Lead, LeadState
from dialer.store.base import (
    HUMAN_RESULTS,
    DayBucket,
    Refusal,
    UnknownRecord,
    check_finished,
    check_new_lead,
    check_status,
    is_locked,
    merge_lead,
    rescheduled,
    utc_day,
)


def _insert(items: list[tuple[float, str]], item: tuple[float, str]) -> None:
    bisect.insort(items, item)


def _discard(items: list[tuple[float, str]], item: tuple[float, str]) -> bool:
    i = bisect.bisect_left(items, item)
    if i < len(items) and items[i] == item:
        del items[i]
        return True
    return False


def _due(items: list[tuple[float, str]], now: float) -> int:
    """How many items have a time <= now."""
    return bisect.bisect_right(items, now, key=lambda item: item[0])


@dataclass(slots=True)
class _Level:
    ready: list[tuple[float, str]] = field(default_factory=list)  # (next_at, lead id)
    locked: list[tuple[float, str]] = field(default_factory=list)  # (lockout_until, lead id)
    locked_next_at: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class MemoryData:
    """Everything a `MemoryStore` holds; share it between stores to share their state."""

    campaigns: dict[str, CampaignSpec] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    pacer: dict[str, str] = field(default_factory=dict)  # campaign id -> pacer state (JSON)
    leads: dict[str, Lead] = field(default_factory=dict)
    campaign_leads: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_state: defaultdict[tuple[str, LeadState], set[str]] = field(
        default_factory=lambda: defaultdict(set))
    levels: defaultdict[str, dict[int, _Level]] = field(default_factory=lambda: defaultdict(dict))
    in_flight: dict[str, str] = field(default_factory=dict)  # lead id -> attempt id
    attempts: dict[str, Attempt] = field(default_factory=dict)
    lead_attempts: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    campaign_attempts: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    open_attempts: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    abandoned: defaultdict[str, defaultdict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    humans: defaultdict[str, defaultdict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    machines: defaultdict[str, defaultdict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    dnc: defaultdict[str | None, set[str]] = field(default_factory=lambda: defaultdict(set))
    agents: dict[str, dict[str, str]] = field(default_factory=dict)


def _attempt_order(attempt: Attempt) -> tuple[float, str]:
    return (attempt.originated_at, attempt.id)


class MemoryStore:
    def __init__(self, data: MemoryData | None = None, *, day_bucket: DayBucket = utc_day) -> None:
        self.data = data if data is not None else MemoryData()
        self.day_bucket = day_bucket

    # campaigns

    async def save_campaign(self, spec: CampaignSpec) -> None:
        self.data.campaigns[spec.id] = spec
        self.data.status.setdefault(spec.id, "created")

    async def get_campaign(self, campaign_id: str) -> CampaignSpec | None:
        return self.data.campaigns.get(campaign_id)

    async def list_campaigns(self) -> list[CampaignSpec]:
        return [self.data.campaigns[cid] for cid in sorted(self.data.campaigns)]

    async def set_campaign_status(self, campaign_id: str, status: str) -> None:
        check_status(status)
        if campaign_id not in self.data.campaigns:
            raise UnknownRecord(f"campaign {campaign_id!r} is not stored")
        self.data.status[campaign_id] = status

    async def get_campaign_status(self, campaign_id: str) -> str | None:
        return self.data.status.get(campaign_id)

    async def save_pacer_state(self, campaign_id: str, state: str) -> None:
        self.data.pacer[campaign_id] = state

    async def load_pacer_state(self, campaign_id: str) -> str | None:
        return self.data.pacer.get(campaign_id)

    async def running_campaigns(self) -> list[str]:
        return sorted(cid for cid, status in self.data.status.items() if status == "running")

    # leads

    async def add_leads(self, campaign_id: str, leads: Sequence[Lead]) -> tuple[int, int]:
        for lead in leads:
            check_new_lead(campaign_id, lead)
            old = self.data.leads.get(lead.id)
            if old is not None and old.campaign_id != campaign_id:
                merge_lead(old, lead)  # raises ValueError before anything is stored
        added = merged = 0
        for lead in leads:
            old = self.data.leads.get(lead.id)
            if old is None:
                added += 1
                self._put(lead)
            else:
                merged += 1
                self._unindex(old)
                self._put(merge_lead(old, lead))
        return added, merged

    async def get_lead(self, lead_id: str) -> Lead | None:
        return self.data.leads.get(lead_id)

    async def list_leads(
        self, campaign_id: str, *, state: LeadState | None = None, offset: int = 0, limit: int = 100
    ) -> list[Lead]:
        ids = (self.data.campaign_leads[campaign_id] if state is None
               else self.data.by_state[(campaign_id, state)])
        page = sorted(ids)[max(offset, 0):max(offset, 0) + max(limit, 0)]
        return [self.data.leads[lead_id] for lead_id in page]

    async def count_leads(self, campaign_id: str) -> dict[str, int]:
        return {s.value: len(self.data.by_state[(campaign_id, s)]) for s in LeadState}

    async def dialable_count(self, campaign_id: str, now: float) -> int:
        levels = self.data.levels[campaign_id]
        return sum(_due(lv.ready, now) + _due(lv.locked, now) for lv in levels.values())

    async def claim_lead(self, campaign_id: str, now: float, attempt_id: str) -> Lead | None:
        levels = self.data.levels[campaign_id]
        for priority in sorted(levels, reverse=True):
            level = levels[priority]
            n = _due(level.locked, now)
            for _, due_id in level.locked[:n]:
                _insert(level.ready, (level.locked_next_at.pop(due_id), due_id))
            del level.locked[:n]
            lead_id = level.ready.pop(0)[1] if level.ready and level.ready[0][0] <= now else None
            if not level.ready and not level.locked:
                del levels[priority]
            if lead_id is not None:
                lead = replace(self.data.leads[lead_id], state=LeadState.IN_PROGRESS)
                self.data.by_state[(campaign_id, LeadState.READY)].discard(lead_id)
                self.data.by_state[(campaign_id, LeadState.IN_PROGRESS)].add(lead_id)
                self.data.leads[lead_id] = lead
                self.data.in_flight[lead_id] = attempt_id
                return lead
        return None

    async def reschedule_lead(self, lead_id: str, next_at: float) -> None:
        old = self.data.leads.get(lead_id)
        lead = rescheduled(old, lead_id, next_at, lead_id in self.data.in_flight)
        assert old is not None
        self._unindex(old)
        self.data.in_flight.pop(lead_id, None)
        self._put(lead)

    async def finish_lead(self, lead: Lead) -> None:
        old = self.data.leads.get(lead.id)
        check_finished(old, lead)
        assert old is not None
        self._unindex(old)
        self.data.in_flight.pop(lead.id, None)
        self._put(lead)

    async def claim_leads(self, campaign_id: str, now: float,
                          attempt_ids: Sequence[str]) -> list[tuple[Lead, str, bool]]:
        claimed = []
        for attempt_id in attempt_ids:
            lead = await self.claim_lead(campaign_id, now, attempt_id)
            if lead is not None:
                claimed.append((lead, attempt_id,
                                await self.dnc_contains(lead.phone, campaign_id)))
        return claimed

    async def scan_dialable(self, campaign_id: str, now: float, attributes: Sequence[str],
                            limit: int) -> list[tuple[str, dict[str, str]]]:
        out: list[tuple[str, dict[str, str]]] = []
        levels = self.data.levels[campaign_id]
        for priority in sorted(levels, reverse=True):
            level = levels[priority]
            self._unlock_due(level, now)
            for next_at, lead_id in level.ready:
                if next_at > now or len(out) >= limit:
                    break
                attrs = dict(self.data.leads[lead_id].attributes)
                out.append((lead_id, {a: attrs[a] for a in attributes if a in attrs}))
        return out

    async def claim_listed(self, campaign_id: str, now: float,
                           picks: Sequence[tuple[str, str]]) -> list[tuple[Lead, str, bool]]:
        claimed = []
        for lead_id, attempt_id in picks:
            old = self.data.leads.get(lead_id)
            if old is None or old.campaign_id != campaign_id or lead_id in self.data.in_flight \
                    or old.state is not LeadState.READY:
                continue
            level = self.data.levels[campaign_id].get(old.priority)
            if level is None:
                continue
            self._unlock_due(level, now)
            entry = (old.next_at, lead_id)
            if old.next_at > now or not _discard(level.ready, entry):
                continue
            lead = replace(old, state=LeadState.IN_PROGRESS)
            self.data.by_state[(campaign_id, LeadState.READY)].discard(lead_id)
            self.data.by_state[(campaign_id, LeadState.IN_PROGRESS)].add(lead_id)
            self.data.leads[lead_id] = lead
            self.data.in_flight[lead_id] = attempt_id
            claimed.append((lead, attempt_id, await self.dnc_contains(lead.phone, campaign_id)))
        return claimed

    @staticmethod
    def _unlock_due(level: _Level, now: float) -> None:
        """Leads whose lockout has passed move to the ready index (as `claim_lead` does)."""
        n = _due(level.locked, now)
        for _, due_id in level.locked[:n]:
            _insert(level.ready, (level.locked_next_at.pop(due_id), due_id))
        del level.locked[:n]

    async def in_flight_leads(self, campaign_id: str) -> dict[str, str]:
        ids = self.data.by_state[(campaign_id, LeadState.IN_PROGRESS)]
        return {lead_id: self.data.in_flight[lead_id] for lead_id in sorted(ids)}

    def _unindex(self, old: Lead) -> None:
        cid = old.campaign_id
        self.data.by_state[(cid, old.state)].discard(old.id)
        level = self.data.levels[cid].get(old.priority)
        if old.state is LeadState.READY and level is not None:
            _discard(level.ready, (old.next_at, old.id))
            if _discard(level.locked, (old.lockout_until, old.id)):
                del level.locked_next_at[old.id]
            # an empty level stays until a claim drops it, as in Redis

    def _put(self, lead: Lead) -> None:
        """Store and index a lead; an IN_PROGRESS one (merged while in flight) is not indexed
        as dialable."""
        cid = lead.campaign_id
        self.data.leads[lead.id] = lead
        self.data.campaign_leads[cid].add(lead.id)
        self.data.by_state[(cid, lead.state)].add(lead.id)
        if lead.state is LeadState.READY:
            level = self.data.levels[cid].setdefault(lead.priority, _Level())
            if is_locked(lead):
                _insert(level.locked, (lead.lockout_until, lead.id))
                level.locked_next_at[lead.id] = lead.next_at
            else:
                _insert(level.ready, (lead.next_at, lead.id))

    # attempts

    async def save_attempt(self, attempt: Attempt) -> None:
        data, cid = self.data, attempt.campaign_id
        first_end = attempt.ended_at is not None and (
            attempt.id not in data.attempts or attempt.id in data.open_attempts[cid])
        data.attempts[attempt.id] = attempt
        data.lead_attempts[attempt.lead_id].add(attempt.id)
        data.campaign_attempts[cid].add(attempt.id)
        if attempt.ended_at is None:
            data.open_attempts[cid].add(attempt.id)
            return
        data.open_attempts[cid].discard(attempt.id)
        if first_end:
            day = self.day_bucket(attempt.ended_at)
            if attempt.result is AttemptResult.ABANDONED:
                data.abandoned[cid][day] += 1
            if attempt.result in HUMAN_RESULTS:
                data.humans[cid][day] += 1
            if attempt.result is AttemptResult.MACHINE:
                data.machines[cid][day] += 1

    async def save_batch(self, attempts: Sequence[Attempt] = (),
                         agents: Mapping[str, Mapping[str, str]] | None = None,
                         leads: Sequence[Lead] = ()) -> list[Refusal]:
        refused: list[Refusal] = []
        finished: dict[str, Lead] = {}
        for lead in leads:
            try:
                check_finished(self.data.leads.get(lead.id), lead)
            except (ValueError, UnknownRecord) as exc:
                refused.append(Refusal("lead", lead.id, str(exc)))
                continue
            finished[lead.id] = lead
        for attempt in attempts:
            await self.save_attempt(attempt)
        for lead in finished.values():
            await self.finish_lead(lead)
        for agent_id, fields in (agents or {}).items():
            await self.save_agent(agent_id, fields)
        return refused

    async def get_attempt(self, attempt_id: str) -> Attempt | None:
        return self.data.attempts.get(attempt_id)

    async def lead_attempts(self, lead_id: str) -> list[Attempt]:
        found = (self.data.attempts[aid] for aid in self.data.lead_attempts[lead_id])
        return sorted(found, key=_attempt_order)

    async def in_flight_attempts(self, campaign_id: str) -> list[Attempt]:
        found = (self.data.attempts[aid] for aid in self.data.open_attempts[campaign_id])
        return sorted(found, key=_attempt_order)

    async def recent_attempts(self, campaign_id: str, limit: int) -> list[Attempt]:
        found = (self.data.attempts[aid] for aid in self.data.campaign_attempts[campaign_id])
        return heapq.nlargest(max(limit, 0), found, key=_attempt_order)

    async def abandon_stats(self, campaign_id: str, since: float) -> tuple[int, int]:
        first = self.day_bucket(since)
        abandoned = sum(n for day, n in self.data.abandoned[campaign_id].items() if day >= first)
        humans = sum(n for day, n in self.data.humans[campaign_id].items() if day >= first)
        return abandoned, humans

    async def machine_count(self, campaign_id: str, since: float) -> int:
        first = self.day_bucket(since)
        return sum(n for day, n in self.data.machines[campaign_id].items() if day >= first)

    # do-not-call

    async def dnc_add(self, number: str, campaign_id: str | None = None) -> None:
        self.data.dnc[campaign_id].add(number)

    async def dnc_add_many(self, numbers: Sequence[str], campaign_id: str | None = None) -> int:
        listed = self.data.dnc[campaign_id]
        before = len(listed)
        listed.update(numbers)
        return len(listed) - before

    async def dnc_contains(self, number: str, campaign_id: str) -> bool:
        return number in self.data.dnc[None] or number in self.data.dnc[campaign_id]

    async def dnc_remove(self, number: str, campaign_id: str | None = None) -> None:
        self.data.dnc[campaign_id].discard(number)

    # agents

    async def save_agent(self, agent_id: str, data: Mapping[str, str]) -> None:
        self.data.agents[agent_id] = dict(data)

    async def get_agent(self, agent_id: str) -> dict[str, str] | None:
        found = self.data.agents.get(agent_id)
        return None if found is None else dict(found)

    async def list_agents(self) -> list[str]:
        return sorted(self.data.agents)

    async def ping(self) -> None:
        return None

"""An inbound ACD queue: callers (and callbacks) waiting for a skilled agent. Pure: the
runtime (or a test) tells it what happened, with `now`, and gets back commands.

Theory of operation
-------------------
*Entries.* A live caller (from an IVR flow's queue step) or a callback request is a
`QueueEntry`: its id (the call id, or the callback's id), when it was enqueued, a priority
(higher first), required skills with minimum levels, optional skills, and two relax times,
in seconds after `enqueued_at`:

* before `relax_after`, optional skills are *needed* too (the caller waits for the best-suited
  agents first); from then on only the required ones are, optional skills only rank agents.
  `relax_after = None` means optional skills only ever rank agents;
* from `relax_required_after` (None = never) the required skills are dropped as well: any
  agent of the queue may take the call. The IVR flow sets this ("after 2 minutes, anyone").

*Order.* Calls are taken by priority (highest first), then enqueue time (oldest first),
then arrival order. An entry that no available agent can take yet does not hold up the ones
behind it (a caller needing a rare skill does not block the line).

*Agent choice.* Among the available agents who have every currently needed skill at its
minimum level: the best skill score (the sum of the agent's levels in the entry's required
and optional skills that they hold at the minimum level), then the one idle longest, then the
smaller id.

*Callbacks keep their place.* A callback is an entry with `callback_number` set and no live
call. It keeps its original `enqueued_at` (re-enqueue a failed callback with the same time
to keep its place again), and when its turn comes the agent is reserved first, then the
customer is dialled: the command is `DialCallback`, not `ConnectCaller`.

*Announcements.* `position` is the 1-based place in the order above; `expected_wait` (EWT)
is ``(ahead + 1 − free) × AHT / agents`` — entries ahead, agents free now who could take
this one, the mean of the last `handle_window` handle times (`observe_handle`; a prior of
`default_handle` s until then), and the logged-in agents who could take it — taking the best
of "as it is now" and "after its next relax time, with the wider set of agents". None when
no logged-in agent could ever take the call (announce "all our agents are busy", no time).

*Time.* Relaxing changes who may take a call at a known time: `next_change_at(now)` tells the
runtime when to set a timer and call `assign` again; nothing here reads a clock.

Entry points for the runtime (the inbound engine, later): `enqueue`, `remove` (the caller hung
up), `agent_login` / `agent_ready` / `agent_busy` / `agent_logout`, `observe_handle`, then
`assign(now)` after each of them and at `next_change_at`; `announce(id, now)` when the flow
plays the position and wait. Bad input (unknown skill, bad level, duplicate id) raises
`QueueError` and changes nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from dialer.routing.profiles import MIN_LEVEL, RoutingError, check_skill, parse_skill_level


class QueueError(RoutingError):
    """Bad queue input (an entry, an agent's skills) or a misused queue (unknown id)."""


@dataclass(frozen=True, slots=True)
class SkillNeed:
    skill: str
    min_level: int = MIN_LEVEL


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """What an IVR flow's queue step asks for (see `parse_request`)."""

    queue: str
    priority: int = 0
    required: tuple[SkillNeed, ...] = ()
    optional: tuple[SkillNeed, ...] = ()
    relax_after: float | None = None
    relax_required_after: float | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: str  # the call id, or the callback's id
    enqueued_at: float
    priority: int = 0
    required: tuple[SkillNeed, ...] = ()
    optional: tuple[SkillNeed, ...] = ()
    relax_after: float | None = None  # s after enqueued_at: optional skills no longer needed
    relax_required_after: float | None = None  # s after enqueued_at: any agent of the queue
    callback_number: str | None = None  # a callback: dial this once an agent is reserved

    @property
    def is_callback(self) -> bool:
        return self.callback_number is not None

    @classmethod
    def from_request(cls, request: QueueRequest, entry_id: str, now: float, *,
                     callback_number: str | None = None) -> QueueEntry:
        return cls(entry_id, now, request.priority, request.required, request.optional,
                   request.relax_after, request.relax_required_after, callback_number)

    def needs(self, now: float) -> tuple[SkillNeed, ...]:
        """The skills an agent must have to take this entry at `now`."""
        waited = now - self.enqueued_at
        if self.relax_required_after is not None and waited >= self.relax_required_after:
            return ()
        if self.relax_after is None or waited >= self.relax_after:
            return self.required
        return self.required + self.optional

    def relax_times(self) -> list[float]:
        """Absolute times at which `needs` widens."""
        out = []
        if self.relax_after is not None and self.optional:
            out.append(self.enqueued_at + self.relax_after)
        if self.relax_required_after is not None and (self.required or self.optional):
            out.append(self.enqueued_at + self.relax_required_after)
        return sorted(out)


# ------------------------------------------------------------------------------ commands
@dataclass(frozen=True, slots=True)
class ConnectCaller:
    """Bridge the waiting caller to the agent (who is reserved for it)."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class DialCallback:
    """The agent is reserved: dial the customer and connect them on answer. If the call
    fails, release the agent (`agent_ready`) and, to keep the place, re-enqueue the entry
    with its original `enqueued_at`."""

    callback_id: str
    number: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the caller their place and the expected wait (None: no estimate)."""

    call_id: str
    position: int
    wait_seconds: float | None


QueueCommand = ConnectCaller | DialCallback


@dataclass(slots=True)
class _Agent:
    id: str
    skills: Mapping[str, int]
    idle_since: float | None = None  # None: logged in, not available


@dataclass
class AcdQueue:
    name: str
    skills: frozenset[str]  # the declared skill list (dialer.routing.profiles)
    default_handle: float = 180.0
    handle_window: int = 50
    entries: dict[str, QueueEntry] = field(default_factory=dict)
    agents: dict[str, _Agent] = field(default_factory=dict)
    _arrival: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)
    _handles: deque[float] = field(default_factory=deque, init=False, repr=False)

    # ------------------------------------------------------------------------- input
    def enqueue(self, entry: QueueEntry) -> None:
        problems = self._check_entry(entry)
        if problems:
            raise QueueError(problems, f"queue {self.name}")
        self._seq += 1
        self.entries[entry.id] = entry
        self._arrival[entry.id] = self._seq

    def _check_entry(self, entry: QueueEntry) -> list[str]:
        problems: list[str] = []
        if not entry.id:
            problems.append("id: required")
        elif entry.id in self.entries:
            problems.append(f"id: {entry.id!r} is already in the queue")
        if not math.isfinite(entry.enqueued_at):
            problems.append(f"enqueued_at: a time, got {entry.enqueued_at!r}")
        for name in ("relax_after", "relax_required_after"):
            value = getattr(entry, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                problems.append(f"{name}: seconds >= 0 or none, got {value!r}")
        if entry.callback_number is not None and not entry.callback_number.strip():
            problems.append("callback_number: empty")
        for kind in ("required", "optional"):
            for need in getattr(entry, kind):
                path = f"{kind}.{need.skill}"
                check_skill(need.skill, self.skills, path, problems)
                parse_skill_level(need.min_level, path, problems)
        return problems

    def remove(self, entry_id: str) -> QueueEntry | None:
        """The caller hung up (or the callback was cancelled); None if it was not waiting."""
        self._arrival.pop(entry_id, None)
        return self.entries.pop(entry_id, None)

    def agent_login(self, agent_id: str, skills: Mapping[str, int]) -> None:
        """An agent who serves this queue logged in (not available until `agent_ready`)."""
        problems: list[str] = []
        if not agent_id:
            problems.append("agent id: required")
        for skill, level in skills.items():
            check_skill(skill, self.skills, f"agents.{agent_id}.skills.{skill}", problems)
            parse_skill_level(level, f"agents.{agent_id}.skills.{skill}", problems)
        if problems:
            raise QueueError(problems, f"queue {self.name}")
        old = self.agents.get(agent_id)
        self.agents[agent_id] = _Agent(agent_id, dict(skills), old.idle_since if old else None)

    def agent_ready(self, agent_id: str, now: float) -> None:
        self._agent(agent_id).idle_since = now

    def agent_busy(self, agent_id: str) -> None:
        self._agent(agent_id).idle_since = None

    def agent_logout(self, agent_id: str) -> None:
        self.agents.pop(agent_id, None)

    def _agent(self, agent_id: str) -> _Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise QueueError([f"agent {agent_id!r} is not logged in to this queue"],
                             f"queue {self.name}")
        return agent

    def observe_handle(self, seconds: float) -> None:
        """A queue call ended after `seconds` of talk and wrap-up (for the EWT)."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise QueueError([f"handle time: seconds >= 0, got {seconds!r}"], f"queue {self.name}")
        self._handles.append(seconds)
        while len(self._handles) > self.handle_window:
            self._handles.popleft()

    # ----------------------------------------------------------------------- queries
    def ordered(self) -> list[QueueEntry]:
        return sorted(self.entries.values(),
                      key=lambda e: (-e.priority, e.enqueued_at, self._arrival[e.id]))

    @staticmethod
    def eligible(skills: Mapping[str, int], needs: tuple[SkillNeed, ...]) -> bool:
        return all(skills.get(n.skill, 0) >= n.min_level for n in needs)

    @staticmethod
    def skill_score(skills: Mapping[str, int], entry: QueueEntry) -> int:
        return sum(level for n in entry.required + entry.optional
                   if (level := skills.get(n.skill, 0)) >= n.min_level)

    def _best_agent(self, entry: QueueEntry, now: float) -> _Agent | None:
        needs = entry.needs(now)
        best: _Agent | None = None
        best_rank: tuple[int, float, str] | None = None
        for agent in self.agents.values():
            if agent.idle_since is None or not self.eligible(agent.skills, needs):
                continue
            rank = (-self.skill_score(agent.skills, entry), agent.idle_since, agent.id)
            if best_rank is None or rank < best_rank:
                best, best_rank = agent, rank
        return best

    def position(self, entry_id: str) -> int:
        for i, entry in enumerate(self.ordered(), start=1):
            if entry.id == entry_id:
                return i
        raise QueueError([f"{entry_id!r} is not in the queue"], f"queue {self.name}")

    @property
    def average_handle(self) -> float:
        if not self._handles:
            return self.default_handle
        return sum(self._handles) / len(self._handles)

    def expected_wait(self, entry_id: str, now: float) -> float | None:
        entry = self.entries.get(entry_id)
        if entry is None:
            raise QueueError([f"{entry_id!r} is not in the queue"], f"queue {self.name}")
        ahead = self.position(entry_id) - 1
        aht = self.average_handle
        best: float | None = None
        for at in [now, *(t for t in entry.relax_times() if t > now)]:
            needs = entry.needs(at)
            able = [a for a in self.agents.values() if self.eligible(a.skills, needs)]
            if not able:
                continue
            free = sum(1 for a in able if a.idle_since is not None) if at == now else 0
            wait = (at - now) + max(0, ahead + 1 - free) * aht / len(able)
            best = wait if best is None else min(best, wait)
        return best

    def announce(self, entry_id: str, now: float) -> Announce:
        wait = self.expected_wait(entry_id, now)
        return Announce(entry_id, self.position(entry_id),
                        None if wait is None else round(wait, 1))

    def next_change_at(self, now: float) -> float | None:
        """The next time a waiting entry's needs widen (set a timer, then `assign`)."""
        times = [t for e in self.entries.values() for t in e.relax_times() if t > now]
        return min(times, default=None)

    # ----------------------------------------------------------------------- decisions
    def next_assignment(self, now: float) -> QueueCommand | None:
        """The next entry (priority, then oldest) that an available agent may take, given to
        its best agent: the entry leaves the queue and the agent is marked busy."""
        for entry in self.ordered():
            agent = self._best_agent(entry, now)
            if agent is None:
                continue
            agent.idle_since = None
            self.remove(entry.id)
            if entry.callback_number is not None:
                return DialCallback(entry.id, entry.callback_number, agent.id)
            return ConnectCaller(entry.id, agent.id)
        return None

    def assign(self, now: float) -> list[QueueCommand]:
        """Every assignment possible now."""
        out: list[QueueCommand] = []
        while (command := self.next_assignment(now)) is not None:
            out.append(command)
        return out


# ------------------------------------------------------------------------------ parsing
_REQUEST_KEYS = frozenset({"queue", "priority", "required", "optional", "relax_after",
                           "relax_required_after"})


def _needs(value: object, path: str, skills: frozenset[str],
           problems: list[str]) -> tuple[SkillNeed, ...]:
    """``{billing: 3, sales: 1}`` (skill: minimum level) or ``[billing, sales]`` (level 1)."""
    if value is None:
        return ()
    if isinstance(value, list):
        value = dict.fromkeys(value, MIN_LEVEL)
    if not isinstance(value, dict):
        problems.append(f"{path}: a mapping of skill to minimum level, or a list of skills")
        return ()
    out = []
    for skill, level in value.items():
        where = f"{path}.{skill}"
        ok = check_skill(skill, skills, where, problems)
        parsed = parse_skill_level(level, where, problems)
        if ok and parsed is not None:
            out.append(SkillNeed(skill, parsed))
    return tuple(out)


def parse_request(data: object, skills: frozenset[str], path: str = "queue") -> QueueRequest:
    """An IVR flow's queue step::

        queue: billing               # the queue's name
        priority: 5                  # optional integer, higher first (default 0)
        required: {billing: 3}       # skill: minimum level 1..10 (or a list: level 1)
        optional: {spanish: 1}
        relax_after: 30              # s: optional skills no longer needed
        relax_required_after: 120    # s: any agent of the queue

    Raises `QueueError` listing every problem with its path under `path`."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise QueueError([f"{path}: expected a mapping, got {type(data).__name__}"])
    for key in sorted(set(map(str, data)) - _REQUEST_KEYS):
        problems.append(f"{path}.{key}: unknown field (expected one of "
                        f"{', '.join(sorted(_REQUEST_KEYS))})")
    queue = data.get("queue")
    if not isinstance(queue, str) or not queue.strip():
        problems.append(f"{path}.queue: required, the queue's name, got {queue!r}")
    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        problems.append(f"{path}.priority: an integer, got {priority!r}")
    required = _needs(data.get("required"), f"{path}.required", skills, problems)
    optional = _needs(data.get("optional"), f"{path}.optional", skills, problems)
    relax: dict[str, float | None] = {}
    for key in ("relax_after", "relax_required_after"):
        value = data.get(key)
        if value is None:
            relax[key] = None
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6:
            problems.append(f"{path}.{key}: seconds >= 0, got {value!r}")
        else:
            relax[key] = float(value)
    if problems:
        raise QueueError(problems)
    assert isinstance(queue, str)
    assert isinstance(priority, int)
    return QueueRequest(queue, priority, required, optional, relax["relax_after"],
                        relax["relax_required_after"])


__all__ = ["AcdQueue", "Announce", "ConnectCaller", "DialCallback", "QueueCommand",
           "QueueEntry", "QueueError", "QueueRequest", "SkillNeed", "parse_request"]

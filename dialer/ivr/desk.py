"""IVR queues served by the agents of the running campaigns (blended inbound and outbound).

An IVR `queue` node asks the desk for an agent (`enqueue`). Each queue is an `AcdQueue`
(dialer/routing/queue.py: priority then oldest first, best skill score then longest idle,
optional skills relaxed after `relax_after`). Its agents are the agents logged in to any
running campaign whose skills (given at login) satisfy the caller's needs; the desk mirrors
their state from the campaign engines every `SYNC` seconds (a READY agent is available, any
other state is busy), and assigns calls after each change.

Assigning is a two-step handshake with the agent's campaign, whose engine owns the agent:
`Dialer.offer_inbound` reserves the agent in its engine (still READY there, or refused) and the
runtime adds the caller to the agent's nailed-up bridge; `answered` comes back when the
caller is in the bridge (the flow then ends: the caller talks to the agent), `refused` puts
the caller back in line with their original place. A caller who waits `max_wait` gets
`timeout`; one whom no logged-in agent could ever take gets `no_agents` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialer.core.agent import AgentState
from dialer.ivr import engine as e
from dialer.routing.profiles import MIN_LEVEL
from dialer.routing.queue import AcdQueue, ConnectCaller, QueueEntry, SkillNeed

if TYPE_CHECKING:
    from dialer.ivr.runtime import CallSession
    from dialer.runner import Dialer

log = logging.getLogger(__name__)

SYNC = 0.2  # seconds between looks at the agents' states


@dataclass(slots=True)
class _Waiting:
    session: CallSession
    queue: str
    entry: QueueEntry
    deadline: float | None
    status: tuple[int, float | None] | None = None


@dataclass(slots=True)
class CampaignDesk:
    dialer: Dialer
    clock: Callable[[], float] = time.time
    queues: dict[str, AcdQueue] = field(default_factory=dict)
    waiting: dict[str, _Waiting] = field(default_factory=dict)
    offered: dict[str, _Waiting] = field(default_factory=dict)  # call id -> awaiting the engine
    _task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ IVR side
    async def enqueue(self, session: CallSession, command: e.Enqueue) -> None:
        now = self.clock()
        declared = frozenset(session.snapshot.flowset.skills)
        queue = self.queues.get(command.queue)
        if queue is None:
            queue = self.queues[command.queue] = AcdQueue(command.queue, declared)
        queue.skills = declared | queue.skills  # skills a reload added
        self._sync(queue, now)
        required = tuple(SkillNeed(s.skill, max(MIN_LEVEL, s.min_level))
                         for s in command.skills if s.required)
        optional = tuple(SkillNeed(s.skill, max(MIN_LEVEL, s.min_level))
                         for s in command.skills if not s.required)
        entry = QueueEntry(session.call_id, now, command.priority, required, optional,
                           command.relax_after)
        if not self._anyone_could(queue, entry):
            log.info("IVR call %s: queue %s: no logged-in agent has %s", session.call_id,
                     command.queue, ", ".join(s.skill for s in command.skills) or "any skill")
            session.post(e.QueueResult("no_agents"))
            return
        queue.enqueue(entry)
        deadline = None if command.max_wait is None else now + command.max_wait
        self.waiting[session.call_id] = _Waiting(session, command.queue, entry, deadline)
        self._ensure_task()
        self._assign(now)

    async def leave_queue(self, session: CallSession, command: e.LeaveQueue) -> None:
        self._drop(session.call_id)

    # ------------------------------------------------------------------ agent side
    def answered(self, call_id: str, agent_id: str) -> None:
        """The caller is in the agent's bridge."""
        item = self.offered.pop(call_id, None)
        if item is not None:
            item.session.agent = agent_id
            item.session.post(e.QueueResult("answered", agent_id))
            log.info("IVR call %s: queue %s answered by %s", call_id, item.queue, agent_id)

    def refused(self, call_id: str) -> None:
        """The agent was no longer free (or the bridge add failed): back in line, same place."""
        item = self.offered.pop(call_id, None)
        if item is None or item.session.gone:
            return
        queue = self.queues.get(item.queue)
        if queue is not None:
            queue.enqueue(item.entry)
            self.waiting[call_id] = item
            self._assign(self.clock())

    # ------------------------------------------------------------------ internals
    def _drop(self, call_id: str) -> None:
        item = self.waiting.pop(call_id, None) or self.offered.pop(call_id, None)
        if item is not None:
            queue = self.queues.get(item.queue)
            if queue is not None and call_id in queue.entries:
                queue.remove(call_id)

    def _agents(self) -> dict[str, tuple[AgentState, float, dict[str, int]]]:
        out: dict[str, tuple[AgentState, float, dict[str, int]]] = {}
        for runner in self.dialer.runners.values():
            for agent in runner.engine.agents.values():
                profile = self.dialer.agent_profile(agent.id)
                skills = dict(profile.skills) if profile is not None \
                    else dict.fromkeys(agent.skills, MIN_LEVEL)
                out[agent.id] = (agent.state, agent.since, skills)
        return out

    def _sync(self, queue: AcdQueue, now: float) -> None:
        agents = self._agents()
        for aid in [a for a in queue.agents if a not in agents]:
            queue.agent_logout(aid)
        for aid, (state, since, all_skills) in agents.items():
            # Skills the flows do not declare cannot be asked for: leave them out.
            skills = {k: v for k, v in all_skills.items() if k in queue.skills}
            if aid not in queue.agents or dict(queue.agents[aid].skills) != skills:
                queue.agent_login(aid, skills)
            if state is AgentState.READY and not self._offered_to(aid):
                if queue.agents[aid].idle_since is None:
                    queue.agent_ready(aid, since)
            else:
                queue.agent_busy(aid)

    def _offered_to(self, agent_id: str) -> bool:
        return any(item.session.agent == agent_id for item in self.offered.values())

    def _anyone_could(self, queue: AcdQueue, entry: QueueEntry) -> bool:
        needs = entry.required
        return any(AcdQueue.eligible(agent.skills, needs) for agent in queue.agents.values())

    def _assign(self, now: float) -> None:
        for name, queue in self.queues.items():
            self._sync(queue, now)
            for command in queue.assign(now):
                if not isinstance(command, ConnectCaller):
                    continue  # callbacks are dialed by the campaign side
                item = self.waiting.pop(command.call_id, None)
                if item is None:
                    continue
                self.offered[command.call_id] = item
                item.session.agent = command.agent_id
                ok = self.dialer.offer_inbound(command.agent_id, item.session.channel_id,
                                               self.answered, self.refused)
                if not ok:
                    item.session.agent = None
                    self.refused(command.call_id)
            for call_id, item in list(self.waiting.items()):
                if item.queue != name:
                    continue
                if item.session.gone:
                    self._drop(call_id)
                elif item.deadline is not None and now >= item.deadline:
                    self._drop(call_id)
                    item.session.post(e.QueueResult("timeout"))
                else:
                    self._status(queue, item, now)

    def _status(self, queue: AcdQueue, item: _Waiting, now: float) -> None:
        if item.entry.id not in queue.entries:
            return
        announce = queue.announce(item.entry.id, now)
        status = (announce.position, announce.wait_seconds)
        if status != item.status:
            item.status = status
            item.session.post(e.QueueStatus(announce.position, announce.wait_seconds or 0.0))

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="ivr-desk")

    async def _loop(self) -> None:
        while self.waiting or self.offered:
            await asyncio.sleep(SYNC)
            try:
                self._assign(self.clock())
            except Exception:
                log.exception("IVR desk: assigning queued callers failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

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

Callbacks that keep their place (a callback node with `keep_position: true`): the caller's
entry, remembered when they left the queue, goes back in with its original enqueue time and
the number to call. At the head of the line the agent is reserved first
(`Dialer.offer_callback`), then the customer is dialled on the campaign's trunk and joins the
agent's bridge on answer; no answer puts the entry back in its place until its attempts are
used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialer.core.agent import AgentState
from dialer.errors import DialerError
from dialer.ivr import engine as e
from dialer.routing.profiles import MIN_LEVEL
from dialer.routing.queue import AcdQueue, DialCallback, QueueEntry, SkillNeed

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
class _Callback:
    """A caller who asked to be called back keeping their place in line."""

    queue: str
    entry: QueueEntry  # its enqueued_at is the caller's original one
    number: str
    attempts: int
    tries: int = 0


MAX_LEFT = 1000  # callers who left a queue, remembered for a callback that keeps their place


@dataclass(slots=True)
class CampaignDesk:
    dialer: Dialer
    clock: Callable[[], float] = time.time
    queues: dict[str, AcdQueue] = field(default_factory=dict)
    waiting: dict[str, _Waiting] = field(default_factory=dict)
    offered: dict[str, _Waiting] = field(default_factory=dict)  # call id -> awaiting the engine
    left: dict[str, tuple[str, QueueEntry]] = field(default_factory=dict)  # call id -> place
    callbacks: dict[str, _Callback] = field(default_factory=dict)  # entry id -> callback
    # callback channel -> (entry id, agent reserved for it)
    dialing: dict[str, tuple[str, str]] = field(default_factory=dict)
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
        item = self.waiting.get(session.call_id)
        if item is not None:  # their place, for a callback that keeps it
            self.left[session.call_id] = (item.queue, item.entry)
            while len(self.left) > MAX_LEFT:
                del self.left[next(iter(self.left))]
        self._drop(session.call_id)

    def enqueue_callback(self, session: CallSession, command: e.CreateCallbackLead) -> str:
        """A callback that keeps the caller's place: an entry with the original enqueue time
        and needs; when it reaches the head, its agent is reserved and then the customer is
        dialled (`Dialer.offer_callback`). Raises DialerError when it cannot be queued."""
        now = self.clock()
        place = self.left.pop(session.call_id, None)
        name = command.queue or (place[0] if place else None)
        if name is None:
            raise DialerError("a callback that keeps its place needs a queue")
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = AcdQueue(name, frozenset(session.snapshot.flowset.skills))
        self._sync(queue, now)
        base = place[1] if place is not None and place[0] == name else None
        entry = QueueEntry(
            f"cb-{session.call_id}", base.enqueued_at if base else now,
            base.priority if base else 0, base.required if base else (),
            base.optional if base else (), base.relax_after if base else None,
            base.relax_required_after if base else None, callback_number=command.number)
        if not self._anyone_could(queue, entry):
            raise DialerError(f"no logged-in agent can take a callback from queue {name}")
        queue.enqueue(entry)
        self.callbacks[entry.id] = _Callback(name, entry, command.number,
                                             max(1, command.attempts))
        self._ensure_task()
        log.info("IVR call %s: callback to %s queued in %s, keeping its place from %.0f",
                 session.call_id, command.number, name, entry.enqueued_at)
        return entry.id

    def callback_answered(self, channel: str, agent_id: str) -> None:
        dialing = self.dialing.pop(channel, None)
        if dialing is not None:
            self.callbacks.pop(dialing[0], None)
            log.info("callback %s: connected to %s", dialing[0], agent_id)

    def callback_failed(self, channel: str) -> None:
        """Not answered, busy, or the agent was no longer free: back in line, same place,
        until its attempts are used."""
        dialing = self.dialing.pop(channel, None)
        callback = self.callbacks.get(dialing[0]) if dialing is not None else None
        if callback is None:
            return
        callback.tries += 1
        queue = self.queues.get(callback.queue)
        if callback.tries >= callback.attempts or queue is None:
            self.callbacks.pop(callback.entry.id, None)
            log.warning("callback %s to %s: given up after %d tries", callback.entry.id,
                        callback.number, callback.tries)
            return
        queue.enqueue(callback.entry)
        self._ensure_task()

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
        return any(item.session.agent == agent_id for item in self.offered.values()) \
            or any(agent == agent_id for _, agent in self.dialing.values())

    def _anyone_could(self, queue: AcdQueue, entry: QueueEntry) -> bool:
        needs = entry.required
        return any(AcdQueue.eligible(agent.skills, needs) for agent in queue.agents.values())

    def _assign(self, now: float) -> None:
        for name, queue in self.queues.items():
            self._sync(queue, now)
            for command in queue.assign(now):
                if isinstance(command, DialCallback):
                    self._dial_callback(command)
                    continue
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

    def _dial_callback(self, command: DialCallback) -> None:
        callback = self.callbacks.get(command.callback_id)
        if callback is None:
            return
        channel = f"{command.callback_id}-{callback.tries + 1}"
        self.dialing[channel] = (command.callback_id, command.agent_id)
        if not self.dialer.offer_callback(command.agent_id, channel, callback.number,
                                          self.callback_answered, self.callback_failed):
            self.callback_failed(channel)

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
        while self.waiting or self.offered or self.callbacks:
            await asyncio.sleep(SYNC)
            try:
                self._assign(self.clock())
            except Exception:
                log.exception("IVR desk: assigning queued callers failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

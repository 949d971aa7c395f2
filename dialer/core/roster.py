"""The campaign's agents by id, indexed by state as they change.

Theory of operation: `CampaignEngine.agents` is a `Roster`. It behaves as a mapping of agent id
to `Agent` (every write goes through `__setitem__` / `__delitem__`, so the indexes cannot drift
from the records), and keeps, updated on each write rather than recomputed on each question:

* the READY agents in the order the engine hands out calls (longest waiting first: by the time
  they became ready, then by id) — `ready()` and `longest_ready()`;
* when each agent on a call (RESERVED or ON_CALL) and each agent in WRAP_UP entered that state
  — what the pacing snapshot needs, without walking the agents who are neither.

A pacing tick then costs O(busy agents) instead of three walks over every agent, and
connecting a call O(log ready) instead of sorting every agent (docs/PACING_BENCH.md, "Speed").
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import ItemsView, Iterator, KeysView, MutableMapping, ValuesView

from dialer.core.agent import Agent, AgentState

__all__ = ["Roster"]

_BUSY = (AgentState.RESERVED, AgentState.ON_CALL)


class Roster(MutableMapping[str, Agent]):
    __slots__ = ("_agents", "_busy", "_ready", "_wrapping")

    def __init__(self, agents: dict[str, Agent] | None = None) -> None:
        self._agents: dict[str, Agent] = {}
        self._ready: list[tuple[float, str]] = []  # (since, id), sorted
        self._busy: dict[str, float] = {}  # id -> since, RESERVED or ON_CALL
        self._wrapping: dict[str, float] = {}  # id -> since, WRAP_UP
        for agent in (agents or {}).values():
            self[agent.id] = agent

    # --- the mapping ------------------------------------------------------------------------
    def __getitem__(self, agent_id: str) -> Agent:
        return self._agents[agent_id]

    def __setitem__(self, agent_id: str, agent: Agent) -> None:
        if agent.id != agent_id:
            raise ValueError(f"agent {agent.id!r} filed under {agent_id!r}")
        old = self._agents.get(agent_id)
        if old is not None:
            self._unindex(old)
        self._agents[agent_id] = agent
        self._index(agent)

    def __delitem__(self, agent_id: str) -> None:
        self._unindex(self._agents.pop(agent_id))

    def __iter__(self) -> Iterator[str]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def keys(self) -> KeysView[str]:
        return self._agents.keys()

    def values(self) -> ValuesView[Agent]:
        return self._agents.values()

    def items(self) -> ItemsView[str, Agent]:
        return self._agents.items()

    def __repr__(self) -> str:
        return f"Roster({self._agents!r})"

    # --- the indexes ------------------------------------------------------------------------
    def _index(self, agent: Agent) -> None:
        state = agent.state
        if state is AgentState.READY:
            insort(self._ready, (agent.since, agent.id))
        elif state in _BUSY:
            self._busy[agent.id] = agent.since
        elif state is AgentState.WRAP_UP:
            self._wrapping[agent.id] = agent.since

    def _unindex(self, agent: Agent) -> None:
        state = agent.state
        if state is AgentState.READY:
            ready = self._ready
            del ready[bisect_left(ready, (agent.since, agent.id))]
        elif state in _BUSY:
            del self._busy[agent.id]
        elif state is AgentState.WRAP_UP:
            del self._wrapping[agent.id]

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def ready(self) -> list[Agent]:
        """READY agents, longest waiting first."""
        agents = self._agents
        return [agents[aid] for _, aid in self._ready]

    def longest_ready(self) -> Agent | None:
        """The READY agent who has waited longest, if any."""
        return self._agents[self._ready[0][1]] if self._ready else None

    def busy_since(self) -> Iterator[float]:
        """When each agent on a call (reserved or connected) reached that state."""
        return iter(self._busy.values())

    def wrapping_since(self) -> Iterator[float]:
        """When each agent in wrap-up entered it."""
        return iter(self._wrapping.values())

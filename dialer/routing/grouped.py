"""Per-group pacing: the campaign's pacer asked once for each group of leads that only some
agents may take (dialer.routing.matching: a group is the values of the required attributes).

Theory of operation
-------------------
A pacer prices the abandon risk of the calls in flight against the agents who may take them.
Asked once with every agent (the pooled snapshot), it assumes any agent can take any answer;
with hard matching the groups are partitioned pools, each more variable than the whole, so
the campaign over-dials the small groups, abandons more, and the taper on the measured
abandon rate then slows everyone down (measured in dialer.sim.matching). `GroupedPacer`
instead builds one `PacingSnapshot` per group from a `GroupLoad` — the group's agents (each
agent paces with exactly one group: `dialer.routing.matching.assign_pools`), its ringing
calls' ages, calls in AMD and humans waiting — keeping the campaign's abandon window, leads
and free channels, and asks the inner pacer for each group that has an agent ready (never
dial for a group with nobody ready, as the engine does for the campaign). It answers the sum
and keeps each group's share in `quota` for the claim that follows (`ClaimLeads` by group).
Outcomes go to the one inner pacer: the answer rate, talk and wrap times are the campaign's.

`loads` is the driver's view of the engine: called with `now`, it returns each group's load.
Pure otherwise: no clock, no I/O.

The campaign engine does this itself for a spec with required matching attributes
(`dialer.core.campaign.CampaignEngine._pace_groups`, with `group_snapshot` and its own
`GroupLoad`s, claiming each group's share with `ClaimLeads.groups`); `GroupedPacer` remains for
drivers that wrap a pacer from outside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from dialer.core.pacing import ForwardingObservations, Pacer, PacingSnapshot
from dialer.routing.matching import GroupKey


@dataclass(frozen=True, slots=True)
class GroupLoad:
    """One group's share of a pacing snapshot."""

    ready: int = 0  # the group's pool: agents READY
    busy: tuple[float, ...] = ()  # seconds into the call, per pool agent on a call
    wrapping: tuple[float, ...] = ()  # seconds into wrap-up, per pool agent in wrap-up
    ringing_ages: tuple[float, ...] = ()  # seconds rung, per call of the group still ringing
    in_amd: int = 0  # the group's answered calls awaiting the AMD verdict
    waiting: int = 0  # the group's humans waiting for an agent


def group_snapshot(snap: PacingSnapshot, load: GroupLoad) -> PacingSnapshot:
    """The campaign's snapshot cut down to one group (abandon window, leads and channels
    stay the campaign's, and so do the running calls the pacer's residual-time estimate
    weighs the campaign's finished calls against: `PacingSnapshot.team`)."""
    team = snap.team if snap.team is not None else (snap.busy_agents, snap.wrapping_agents)
    return replace(snap, ready_agents=load.ready, busy_agents=load.busy,
                   wrapping_agents=load.wrapping, team=team,
                   calls_ringing=len(load.ringing_ages) + load.in_amd,
                   ringing_ages=load.ringing_ages, calls_in_amd=load.in_amd,
                   calls_waiting=load.waiting)


class GroupedPacer(ForwardingObservations):
    """A `Pacer` that asks `inner` once per group; see the module docstring."""

    def __init__(self, inner: Pacer,
                 loads: Callable[[float], Mapping[GroupKey, GroupLoad]] | None = None) -> None:
        self.inner = inner
        self.loads = loads
        self.quota: dict[GroupKey, int] = {}

    def decide(self, snap: PacingSnapshot) -> int:
        if self.loads is None:
            raise RuntimeError("GroupedPacer: no group view set (loads)")
        self.quota = {}
        for key, load in sorted(self.loads(snap.now).items()):
            if load.ready == 0:
                continue
            n = self.inner.decide(group_snapshot(snap, load))
            if n > 0:
                self.quota[key] = n
        return min(sum(self.quota.values()), snap.leads_available, snap.channels_free)


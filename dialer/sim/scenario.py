"""What a simulated campaign day looks like: customers, agents, carrier, calendar.

Every number here is a model input, frozen, and documented where it comes from. The simulator
(dialer.sim.simulator) draws from these with seeded random streams; the pacers never see them.

Customers (per dial, drawn independently): a live person answers with probability ``live``
(constant, or a piecewise-linear function of the fraction of the shift elapsed: the drift
day), an answering machine with probability ``machine``; otherwise busy, a fast network
failure, or no answer (rings until the ring timeout). Answered calls ring a log-normal time
(mean `ring_mean`). Talk times are log-normal with mean `talk_mean` and coefficient of variation
`talk_cv` (call-centre talk times are right-skewed, close to log-normal: Brown et al., "Statistical
analysis of a telephone call center", JASA 2005). With AMD on, a person's greeting lasts
`greeting` seconds (uniform) before the verdict; `amd_fp` of people are taken for machines and
hung up on (an abandon in truth, counted only by estimate in UK mode), `amd_fn` of machines are
taken for people and reach an agent briefly.

Agents log in at the shift start (staggered over a minute), take `breaks` pauses of
`break_minutes` at random times, key a disposition after a gamma-distributed wrap-up (mean
`wrap_mean`), and log out at the end of the shift once their call is done. With `churn`, shifts
are staggered (starts over two hours, a fifth leave early) and agents step out (log out, log
back in) during the day.

Carrier: calls per second and channels; None sizes them from the team (generous: the pacer, not
the trunk, should be what limits a policy unless a scenario says otherwise).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import date

from dialer.core.model import AmdMode

#: Piecewise-linear live-answer profile: (fraction of the shift elapsed, rate) points.
Profile = tuple[tuple[float, float], ...]

DRIFT: Profile = ((0.0, 0.15), (0.5, 0.30), (1.0, 0.10))


@dataclass(frozen=True, slots=True)
class Customers:
    live: float | Profile = 0.15  # P(a live person answers a dial)
    machine: float = 0.0  # P(an answering machine answers)
    busy: float = 0.08
    failed: float = 0.04  # congestion / unallocated / unavailable: fails in 0.5-2 s
    ring_mean: float = 9.0  # seconds from originate to answer (log-normal, cv 0.4)
    talk_mean: float = 180.0
    talk_cv: float = 0.9
    greeting: tuple[float, float] = (1.5, 3.0)  # AMD verdict delay for a person (uniform)
    machine_greeting: tuple[float, float] = (2.5, 4.5)
    amd_fp: float = 0.0  # people AMD calls machines (hung up on)
    amd_fn: float = 0.10  # machines AMD calls people (an agent hears the machine)
    optout: float = 0.02  # a safe-harbor listener presses the opt-out key
    safe_harbor_seconds: float = 8.0
    message_seconds: float = 12.0

    def live_at(self, fraction: float) -> float:
        """The live-answer probability at this fraction of the shift."""
        live = self.live
        if isinstance(live, float | int):
            return float(live)
        if fraction <= live[0][0]:
            return live[0][1]
        for (x0, y0), (x1, y1) in itertools.pairwise(live):
            if fraction <= x1:
                return y0 + (y1 - y0) * (fraction - x0) / (x1 - x0)
        return live[-1][1]

    @property
    def live_mean(self) -> float:
        """Average live-answer rate over the shift (for the power-ratio sweep's range)."""
        if isinstance(self.live, float | int):
            return float(self.live)
        steps = 100
        return sum(self.live_at((i + 0.5) / steps) for i in range(steps)) / steps


@dataclass(frozen=True, slots=True)
class Staff:
    agents: int = 20
    groups: int = 1  # matched sub-pools: agents of group g take only group g's leads
    wrap_mean: float = 10.0
    shift_hours: float = 8.0
    shift_start: str = "09:00"  # local time of the leads' zone
    breaks: int = 2
    break_minutes: float = 10.0
    churn: bool = False


@dataclass(frozen=True, slots=True)
class Carrier:
    cps: float | None = None  # None: sized from the team
    channels: int | None = None

    def sized(self, agents: int, live: float) -> tuple[float, int]:
        """(cps, channels). Auto: enough for a predictive dialer at this answer rate (DIALING.md
        §5: 1.5-2+ trunks per agent, more at low answer rates)."""
        cps = self.cps if self.cps is not None else max(5.0, 1.5 * agents / (60.0 * live))
        channels = self.channels if self.channels is not None else \
            max(20, int(agents * (1.5 + 1.0 / live)))
        return cps, channels


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    customers: Customers = field(default_factory=Customers)
    staff: Staff = field(default_factory=Staff)
    carrier: Carrier = field(default_factory=Carrier)
    days: int = 1
    amd: AmdMode = AmdMode.OFF
    uk_mode: bool = False
    zone: str = "America/New_York"
    start: date = date(2026, 6, 1)  # a Monday; away from DST changes for month-long runs
    leads: int | None = None  # None: more than the run can use (fresh leads always first)
    amd_fp_estimate: float = 0.05  # the campaign's configured estimate (UK mode)

    @property
    def oracle_talk_min_per_hour(self) -> float:
        """Clairvoyant bound (DIALING.md §4): every agent talks whenever not in wrap-up, and
        nobody is abandoned: 60 × T / (T + W), T and W the true means."""
        t, w = self.customers.talk_mean, self.staff.wrap_mean
        return 60.0 * t / (t + w)

    @property
    def agent_days(self) -> float:
        """Simulated agent-days (an agent-day is an 8-hour shift)."""
        return self.staff.agents * self.days * self.staff.shift_hours / 8.0


def cell(agents: int, live: float, talk: float, **kw: object) -> Scenario:
    """A grid cell: `agents` × live-answer rate × mean talk."""
    name = f"a{agents}-l{round(live * 100)}-t{round(talk)}"
    return Scenario(name=name, customers=Customers(live=live, talk_mean=talk),
                    staff=Staff(agents=agents), **kw)  # type: ignore[arg-type]


GRID_LIVE = (0.05, 0.15, 0.30)
GRID_TALK = (60.0, 180.0)


#: Shift length (hours) per team size: long enough for the abandon rate to settle, short enough
#: that the grid runs in minutes (the simulated agent-hours grow with the team either way).
GRID_HOURS = {5: 8.0, 20: 4.0, 100: 1.0, 500: 0.25}
QUICK_HOURS = {5: 2.0, 20: 1.0, 100: 0.25}


def shifted(scenario: Scenario, hours: float) -> Scenario:
    """The scenario with shifts of `hours`: two breaks from 4 hours, none below."""
    return replace(scenario, staff=replace(scenario.staff, shift_hours=hours,
                                           breaks=2 if hours >= 4 else 0))


def grid(quick: bool = False) -> list[Scenario]:
    """The scenario grid: agents × live-answer rate × mean talk."""
    hours = QUICK_HOURS if quick else GRID_HOURS
    return [shifted(cell(a, live, talk), h) for a, h in hours.items()
            for live in GRID_LIVE for talk in GRID_TALK]


def specials(quick: bool = False) -> list[Scenario]:
    """Drift day, churn, AMD with false positives (UK mode, several days), matched sub-pools and
    the same team pooled, a CPS-bound carrier, and (full run) a month for the 30-day window."""
    hours = 2.0 if quick else 4.0
    base = Staff(agents=20, shift_hours=hours)
    talk90 = Customers(live=0.15, talk_mean=90.0)
    out = [
        Scenario("drift", customers=replace(talk90, live=DRIFT),
                 staff=replace(base, shift_hours=2 * hours)),
        Scenario("churn", customers=talk90, staff=replace(base, churn=True)),
        # UK mode, AMD hanging up on machines, 5 % of people taken for machines. With machines
        # as common as people (m15) the estimated false positives alone are ~5 % of live calls:
        # no pacing can meet 3 %; with 5 % machines they leave room for pacing.
        Scenario("amd-uk", customers=replace(talk90, machine=0.05, amd_fp=0.05),
                 staff=base, amd=AmdMode.HANGUP, uk_mode=True, zone="Europe/London",
                 days=2 if quick else 3),
        Scenario("amd-uk-m15", customers=replace(talk90, machine=0.15, amd_fp=0.05),
                 staff=base, amd=AmdMode.HANGUP, uk_mode=True, zone="Europe/London", days=1),
        Scenario("subpools-4x5", customers=talk90, staff=replace(base, groups=4)),
        Scenario("pooled-20", customers=talk90, staff=base),
        Scenario("cps-bound", customers=replace(talk90, live=0.05, talk_mean=60.0),
                 staff=base, carrier=Carrier(cps=3.0)),
    ]
    if not quick:
        out.append(Scenario("month-5", customers=talk90,
                            staff=Staff(agents=5, shift_hours=4.0), days=35))
    return out


def scale(agents: int = 10_000, hours: float = 1.0) -> Scenario:
    return Scenario(f"scale-{agents}", customers=Customers(live=0.15, talk_mean=180.0),
                    staff=Staff(agents=agents, shift_hours=hours, breaks=0))

"""Dialing policies, side by side: each is a pacer object from `dialer.core.pacing` handed to the
same `CampaignEngine` (no pacing logic lives in the simulator), plus the dial mode the engine is
told (progressive and power never dial with nobody ready; the engine enforces that too).

* progressive: `ProgressivePacer`.
* power(r): `PowerPacer(r)`; the bench sweeps r and keeps the best one under 3 %.
* vicidial: `VicidialAdaptPacer`, the replica of VICIdial's ADAPT_HARD_LIMIT written from
  design/DIALING.md §3. Its maximum level is an operator setting; VICIdial's default (3.0)
  cannot reach a useful level at 5 % live answer, so the bench gives it max(3, 1.5 / live rate),
  what an operator who knows the list would set.
* predictive: what `make_pacer(DialMode.PREDICTIVE, ...)` builds for a campaign — our pacer,
  with its online `Estimator` (never given the simulator's parameters).
* baseline: a measured ablation, not a shipped policy — the core's `PredictivePacer` with the
  ring-age weighting, the talk look-ahead, the budget's margin for the next abandon and the
  answer-rate uncertainty switched off (`ring_age=False`, `talk_lookahead=False`,
  `margin_humans=inf`, `uncertainty=False`), no recovery budget (`floor=0`), the residual
  times on the last finished calls (`cohort=False`) and no lift (`lift_max=1`): the pacer
  as it was before them, for before/after on the same seeds.
* knowing: a diagnostic, not a policy a dialer could run — the core's `PredictivePacer` (and
  its settings) with `AgentOracle` for a model: told when every busy agent will be free and
  the list's true answer rates, which only the simulator knows. What it gains over
  predictive is what better estimates of those could gain; what it still misses is which
  calls a person answers, and when (docs/PACING_BENCH.md, "Knowing the agents").
* oracle: not simulated — the clairvoyant bound of DIALING.md §4, computed analytically as
  60 × T / (T + W) talk-minutes per agent-hour at 100 % occupancy and 0 % abandon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dialer.core.model import CampaignSpec, DialMode
from dialer.core.pacing import Pacer, PredictivePacer, VicidialAdaptPacer, make_pacer
from dialer.sim.probe import AgentOracle

_OPTIONS = ("safety", "taper_start", "connect_grace", "warmup_dials", "exact_limit", "ring_age",
            "talk_lookahead", "margin_humans", "uncertainty", "time_resolved", "answer_grace",
            "floor", "cohort", "lift_max", "lift_aim", "lift_step", "lift_team")
_INT_OPTIONS = ("warmup_dials", "exact_limit", "lift_team")
_BOOL_OPTIONS = ("ring_age", "talk_lookahead", "uncertainty", "time_resolved", "cohort")
POLICIES = ("progressive", "power", "vicidial", "predictive", "baseline", "knowing")


@dataclass(frozen=True, slots=True)
class Policy:
    name: str  # one of POLICIES
    ratio: float = 1.0  # power only
    vicidial_max_level: float | None = None  # None: max(3, 1.5 / live)
    # predictive / baseline: PredictivePacer keyword arguments (safety, taper_start,
    # connect_grace, warmup_dials, exact_limit, ring_age, talk_lookahead), to measure what a
    # setting would buy.
    options: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown policy {self.name!r}; expected one of {', '.join(POLICIES)}")

    @property
    def label(self) -> str:
        if self.name == "power":
            return f"power {self.ratio:g}"
        if self.options:
            return self.name + ":" + ",".join(f"{k}={v:g}" for k, v in self.options)
        return self.name

    @property
    def mode(self) -> DialMode:
        match self.name:
            case "progressive":
                return DialMode.PROGRESSIVE
            case "power":
                return DialMode.POWER
            case _:
                return DialMode.PREDICTIVE

    def pacer(self, spec: CampaignSpec, live: float, machine: float = 0.0) -> Pacer:
        """A fresh pacer for one campaign (`live`: the list's mean live-answer rate, used only
        for the VICIdial operator's maximum level and told to `knowing` with `machine`, the
        share of dials answering machines answer)."""
        if self.name == "vicidial":
            top = self.vicidial_max_level or max(3.0, 1.5 / max(live, 1e-3))
            return VicidialAdaptPacer(spec.abandon_target, max_level=top)
        kw: dict[str, Any] = {k: int(v) if k in _INT_OPTIONS else bool(v) if k in _BOOL_OPTIONS
                              else v for k, v in self.options}
        if self.name == "baseline":
            kw = {"ring_age": False, "talk_lookahead": False, "margin_humans": math.inf,
                  "uncertainty": False, "time_resolved": False, "floor": 0.0, "cohort": False,
                  "lift_max": 1.0,
                  **kw}
            return PredictivePacer(spec.abandon_target, **kw)
        if self.name == "knowing":
            return PredictivePacer(spec.abandon_target, model=AgentOracle(live, machine), **kw)
        if self.name == "predictive" and kw:
            return PredictivePacer(spec.abandon_target, **kw)
        return make_pacer(spec.dial_mode, power_ratio=spec.power_ratio,
                          abandon_target=spec.abandon_target)


def parse(text: str) -> Policy:
    """'progressive', 'vicidial', 'predictive', 'baseline', 'knowing', 'power:2.5', or a
    predictive one with pacer settings: 'predictive:safety=1,connect_grace=2'."""
    name, _, arg = text.partition(":")
    if name == "power":
        return Policy("power", ratio=float(arg or "1.5"))
    options = []
    for item in filter(None, arg.split(",")):
        key, _, value = item.partition("=")
        if key not in _OPTIONS or name not in ("predictive", "baseline", "knowing"):
            raise ValueError(f"unknown setting {key!r} for policy {name!r}")
        options.append((key, float(value)))
    return Policy(name, options=tuple(options))

"""The bench's plots (matplotlib, Agg backend: files only, no display).

* pacing_frontier.png: occupancy against abandon rate, every run, one panel per team size.
* pacing_drift.png: the drift day over time — the true live-answer rate, talk minutes per
  agent-hour and the campaign's cumulative abandon rate, per policy.
* pacing_vs_oracle.png: our pacer (and the baseline: the pacer before ring ages and the talk
  look-ahead) as a share of the oracle, per cell, against the targets.
* pacing_gap.png: where the rest of the gap is — talk-min against abandon as the pacer's
  budget is scaled, next to fixed ratios (simulated here).
* pacing_recovery.png: the recovery budget — 5 agents at 5 % live answer over five seeds,
  the shipped pacer against the same pacer with no floor (progressive at the ceiling), talk
  minutes per agent-hour and the cumulative abandon rate over the day (simulated here).
* pacing_ringing_bias.png: the live answers the model expects from the calls in flight — every
  ringing call fresh (the baseline) and weighed by ring age (the core now) — against those
  truly still to come (a 100-agent hour, simulated here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dialer.core.model import CampaignSpec
from dialer.sim.bench import best_power, runs_of
from dialer.sim.metrics import RunResult, Series
from dialer.sim.scenario import Scenario

COLORS = {"progressive": "tab:gray", "vicidial": "tab:red", "predictive": "tab:blue",
          "baseline": "tab:green", "power": "tab:orange", "power (tuned at 15 %)": "tab:brown"}
TARGETS = {5: 0.70, 20: 0.90, 100: 0.97}


def _is_cell(name: str) -> bool:
    """A grid cell's name: a<agents>-l<live>-t<talk>."""
    return re.fullmatch(r"a\d+-l\d+-t\d+", name) is not None


def _kind(r: RunResult) -> str:
    return "power" if r.policy.startswith("power") else r.policy


def frontier(results: Sequence[RunResult], path: Path) -> Path:
    sizes = sorted({r.agents for r in results if _is_cell(r.scenario)})
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        runs = [r for r in results if r.agents == size and _is_cell(r.scenario)]
        for kind in ("power", "progressive", "vicidial", "baseline", "predictive"):
            pts = [r for r in runs if _kind(r) == kind]
            if not pts:
                continue
            ax.scatter([100 * r.abandon for r in pts], [100 * r.occupancy for r in pts],
                       s=14 if kind == "power" else 30, alpha=0.45 if kind == "power" else 0.9,
                       color=COLORS[kind], label=kind if kind != "baseline" else "baseline (before)")
        ax.axvline(3.0, color="black", lw=0.8, ls="--")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0.0)
        ax.set_title(f"{size} agents")
        ax.set_xlabel("abandon rate, % of live answers")
        ax.set_ylabel("occupancy, %")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Occupancy against abandon, every grid cell (power: every ratio swept)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def drift(results: Sequence[RunResult], path: Path) -> Path | None:
    runs = [r for r in results if r.scenario.startswith("drift") and r.series is not None]
    if not runs:
        return None
    best = best_power(r for r in runs if r.scenario == "drift")
    chosen: list[tuple[str, RunResult]] = []
    for r in runs:
        if r.scenario != "drift":
            chosen.append(("power (tuned at 15 %)", r))
        elif not r.policy.startswith("power"):
            chosen.append((r.policy, r))
        elif r is best:
            chosen.append(("power", r))
    fig, (a0, a1, a2) = plt.subplots(3, 1, figsize=(9, 9), sharex=True,
                                     gridspec_kw={"height_ratios": [1, 2, 2]})
    first = chosen[0][1].series
    assert first is not None
    a0.plot(first.t, [100 * x for x in first.live], color="black")
    a0.set_ylabel("live answer, %")
    a0.set_title("Drift day: 20 agents, 90 s talk, live answer 15 % -> 30 % -> 10 %")
    for label, r in chosen:
        s = r.series
        assert s is not None
        name = f"{label} {r.policy.split()[-1]}" if label.startswith("power") else label
        a1.plot(s.t, s.talk_min_per_hour, color=COLORS.get(label, "tab:purple"), label=name, lw=1.2)
        a2.plot(s.t, [100 * x for x in s.cumulative_abandon], color=COLORS.get(label, "tab:purple"),
                label=name, lw=1.2)
    a1.axhline(chosen[0][1].oracle, color="black", ls=":", lw=0.8, label="oracle")
    a1.set_ylabel("talk-min per agent-hour (15 min bins)")
    a1.legend(fontsize=7, ncol=3)
    a2.axhline(3.0, color="black", ls="--", lw=0.8)
    a2.set_ylabel("abandon since start, %")
    a2.set_xlabel("hours into the day")
    a2.set_yscale("symlog", linthresh=1.0)
    a2.set_ylim(bottom=0.0)
    for ax in (a0, a1, a2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def vs_oracle(results: Sequence[RunResult], scenarios: Sequence[Scenario], path: Path) -> Path:
    cells = [s for s in scenarios if _is_cell(s.name)]
    by = {(r.scenario, r.policy): r for r in results}
    fig, ax = plt.subplots(figsize=(max(8.0, 0.5 * len(cells)), 4.8))
    x = range(len(cells))
    power = [best_power(r for r in results if r.scenario == s.name) for s in cells]
    ax.bar([i - 0.27 for i in x], [100 * p.vs_oracle if p else 0.0 for p in power], width=0.27,
           color=COLORS["power"], label="best power ratio ≤ 3 % (hindsight)")
    for offset, policy, color in ((0.0, "baseline", COLORS["baseline"]),
                                  (0.27, "predictive", COLORS["predictive"])):
        ys = [100 * by[(s.name, policy)].vs_oracle if (s.name, policy) in by else 0.0 for s in cells]
        ax.bar([i + offset for i in x], ys, width=0.27, color=color,
               label="predictive (core, now)" if policy == "predictive" else "baseline (before)")
    for i, s in enumerate(cells):
        target = TARGETS.get(s.staff.agents)
        if target:
            ax.plot([i - 0.45, i + 0.45], [100 * target] * 2, color="black", lw=1.5)
    ax.set_xticks(list(x), [s.name for s in cells], rotation=70, fontsize=7)
    ax.set_ylabel("talk-min per agent-hour, % of oracle")
    ax.set_ylim(0, 105)
    ax.set_title("Our pacer against the clairvoyant bound (black bars: targets at 5/20/100 agents)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ringing_bias(path: Path, seed: int = 1, agents: int = 100, hours: float = 1.0) -> Path:
    """Why the baseline under-dialed, and what the core now does: at each decision, the live
    answers expected from the calls in flight — every ringing call fresh (calls × p, the
    baseline) and weighed by ring age (`Estimator.live_to_come`, the core now) — against those
    truly still to come, on a 100-agent hour (15 % live answer, 60 s talk)."""
    from dialer.core.pacing import PredictivePacer
    from dialer.sim.policy import Policy
    from dialer.sim.probe import RingingProbe
    from dialer.sim.scenario import cell
    from dialer.sim.simulator import Simulator

    s = cell(agents, 0.15, 60.0)
    s = replace(s, staff=replace(s.staff, shift_hours=hours, breaks=0))
    probes: list[RingingProbe] = []

    def factory(spec: CampaignSpec) -> RingingProbe:
        probes.append(RingingProbe(PredictivePacer(spec.abandon_target)))
        return probes[-1]

    Simulator(s, Policy("predictive"), seed, pacer_factory=factory).run()
    samples = probes[0].samples
    t0 = samples[0][0]
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    step = max(1, len(samples) // 600)
    xs = [(t - t0) / 60 for t, _, _, _ in samples[::step]]
    a0.plot(xs, [m for _, m, _, _ in samples[::step]], color=COLORS["baseline"], lw=1,
            label="every ringing call fresh: calls in flight × p (baseline)")
    a0.plot(xs, [w for _, _, w, _ in samples[::step]], color=COLORS["predictive"], lw=1,
            label="weighed by ring age (core now)")
    a0.plot(xs, [h for _, _, _, h in samples[::step]], color="black", lw=1,
            label="truly still to come (simulator)")
    a0.set_xlabel("minutes")
    a0.set_ylabel("live answers from calls in flight")
    a0.legend(fontsize=8)
    a0.grid(alpha=0.3)
    n = len(samples)
    mean_old = sum(m for _, m, _, _ in samples) / n
    mean_new = sum(w for _, _, w, _ in samples) / n
    mean_true = sum(h for _, _, _, h in samples) / n
    a1.bar(["fresh", "ring age", "truth"], [mean_old, mean_new, mean_true],
           color=[COLORS["baseline"], COLORS["predictive"], "black"])
    a1.set_title(f"mean: {mean_old:.1f} / {mean_new:.1f} / {mean_true:.1f}")
    a1.grid(axis="y", alpha=0.3)
    fig.suptitle("Live answers to come from the calls in flight, as the model counts them "
                 f"({agents} agents, 15 % live, 60 s talk)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


SAFETIES = (0.4, 0.8, 1.2, 2.0, 3.0)


def gap(path: Path, sizes: Sequence[tuple[int, float]] = ((20, 4.0), (100, 1.0)), seed: int = 1,
        live: float = 0.15, talk: float = 60.0) -> Path:
    """Where the rest of the gap to the oracle is: our pacer with its per-decision budget
    scaled (`safety` in SAFETIES, the default 0.8 marked) and fixed power ratios, talk-min as a
    share of the oracle against the run's abandon rate, one panel per team size. If the
    predictive curve flattens below the target while abandon still climbs, a larger abandon
    budget buys no occupancy: the loss is in the model's one-horizon look-ahead, not its
    budget."""
    from dialer.sim.policy import Policy
    from dialer.sim.scenario import cell, shifted
    from dialer.sim.simulator import simulate

    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 4.4), squeeze=False)
    for ax, (agents, hours) in zip(axes[0], sizes, strict=True):
        s = cell(agents, live, talk)
        s = shifted(s, hours)
        pred = [simulate(s, Policy("predictive", options=(("safety", k),)), seed) for k in SAFETIES]
        base = simulate(s, Policy("baseline"), seed)
        ratios = [round(f / live, 2) for f in (0.6, 0.9, 1.2, 1.8, 2.7, 4.0)]
        power = [simulate(s, Policy("power", ratio=r), seed) for r in ratios]
        ax.plot([100 * r.abandon for r in power], [100 * r.vs_oracle for r in power], "o--",
                color=COLORS["power"], label="fixed ratios " + ", ".join(f"{r:g}" for r in ratios))
        ax.plot([100 * r.abandon for r in pred], [100 * r.vs_oracle for r in pred], "o-",
                color=COLORS["predictive"], label="predictive, safety " +
                ", ".join(f"{k:g}" for k in SAFETIES))
        default = pred[SAFETIES.index(0.8)]
        ax.scatter([100 * default.abandon], [100 * default.vs_oracle], s=120, facecolors="none",
                   edgecolors="black", label="predictive as shipped (0.8)")
        ax.scatter([100 * base.abandon], [100 * base.vs_oracle], marker="s",
                   color=COLORS["baseline"], label="baseline (before)")
        target = TARGETS.get(agents)
        if target:
            ax.axhline(100 * target, color="black", lw=1, ls=":")
        ax.axvline(3.0, color="black", lw=0.8, ls="--")
        ax.set_title(f"{agents} agents, {live:.0%} live, {talk:g} s talk, {hours:g} h")
        ax.set_xlabel("abandon rate over the run, %")
        ax.set_ylabel("talk-min per agent-hour, % of oracle")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("More abandon budget buys little occupancy past the shipped setting")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def knowing(results: Sequence[RunResult], cells: Sequence[Scenario], path: Path) -> Path:
    """Our pacer next to the same pacer told when every busy agent will be free and the true
    answer rates (`knowing`), per cell as a share of the oracle (mean over the seeds, each
    seed a dot), with the targets: the gap `knowing` leaves is what no estimate of the agents
    or the answer rate can close."""
    fig, ax = plt.subplots(figsize=(max(8.0, 0.75 * len(cells)), 4.6))
    x = list(range(len(cells)))
    for offset, name, color, label in ((-0.2, "predictive", COLORS["predictive"], "predictive"),
                                       (0.2, "knowing", "tab:purple",
                                        "knowing when each agent frees, and the answer rates")):
        means = []
        for i, s in enumerate(cells):
            runs = runs_of(results, s.name, name)
            means.append(100 * sum(r.vs_oracle for r in runs) / len(runs) if runs else 0.0)
            ax.scatter([i + offset] * len(runs), [100 * r.vs_oracle for r in runs], s=8,
                       color="black", zorder=3)
        ax.bar([i + offset for i in x], means, width=0.4, color=color, label=label)
    for i, s in enumerate(cells):
        target = TARGETS.get(s.staff.agents)
        if target:
            ax.plot([i - 0.45, i + 0.45], [100 * target] * 2, color="black", lw=1.2, ls=":")
    ax.plot([], [], color="black", lw=1.2, ls=":", label="target")
    ax.set_xticks(x, [s.name for s in cells], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(40, 100)
    ax.set_ylabel("talk-min per agent-hour, % of oracle")
    ax.set_title("Told when every agent frees and the true answer rates, the pacer gains a point "
                 "or two: the rest is which calls answer")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def teams(results: Sequence[RunResult], sizes: Sequence[int], policies: Sequence[str],
          path: Path) -> Path:
    """The gap to the oracle in steady state (`bench.steady_share`) against the team size
    (ascending), on log scales, per policy (labels) with its fitted c · agents^-b, and the gaps
    the 20- and 100-agent targets allow: the buffer of ready agents that the answer noise
    demands shrinks with the team, slowly."""
    from dialer.sim.bench import fit_points, team_points

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = {"predictive": COLORS["predictive"], "knowing": "tab:purple"}
    for name in policies:
        points = team_points(results, sizes, name)
        color = colors.get(name, "tab:green")
        ax.plot([n for n, *_ in points], [100 * (1.0 - steady) for _, steady, *_ in points], "o",
                color=color, label=name)
        fit = fit_points(points)
        if fit is not None:
            c, b = fit
            xs = [sizes[0] * (sizes[-1] * 20 / sizes[0]) ** (i / 50) for i in range(51)]
            ax.plot(xs, [100 * c * x ** -b for x in xs], "--", color=color, lw=1,
                    label=f"{name}: {100 * c:.0f} % · agents^{-b:+.2f}")
    for agents, target in sorted(TARGETS.items()):
        if agents >= 20:
            gap = 100 * (1 - target)
            ax.axhline(gap, color="black", lw=0.8, ls=":")
            ax.annotate(f"{target:.0%} target's gap (set at {agents} agents)", (sizes[0], gap),
                        textcoords="offset points", xytext=(2, 3), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("agents")
    ax.set_ylabel("gap to the oracle in steady state, %")
    ax.set_title("The idle buffer the answer noise demands shrinks slowly with the team")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def recovery(path: Path, seeds: Sequence[int] = (1, 2, 3, 4, 5), agents: int = 5,
             live: float = 0.05, talk: float = 60.0, hours: float | None = None) -> Path:
    """The recovery budget: the shipped pacer (a floor of 12 % of the target at and over the
    target) against the same pacer with none (`floor=0`: progressive there), same seeds. With
    none, a run whose window reaches the target early idles its agents for an hour or more
    while the few people progressive dialing reaches dilute the abandons."""
    from dialer.sim.policy import Policy
    from dialer.sim.scenario import cell, shifted
    from dialer.sim.simulator import simulate

    s = cell(agents, live, talk)
    if hours is not None:
        s = shifted(s, hours)
    policies = (("predictive", Policy("predictive")),
                ("no floor (before)", Policy("predictive", options=(("floor", 0.0),))))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    oracle = 0.0
    for (label, policy), color in zip(policies, (COLORS["predictive"], "tab:purple"), strict=True):
        runs = [simulate(s, policy, seed, series=True) for seed in seeds]
        mean = sum(r.talk_min_per_hour for r in runs) / len(runs)
        worst = max(r.abandon for r in runs)
        oracle = runs[0].oracle
        for i, r in enumerate(runs):
            series = r.series
            assert series is not None
            name = f"{label}: {mean:.1f} talk-min/h on average, worst run {worst:.2%}" \
                if i == 0 else None
            a1.plot(series.t, series.talk_min_per_hour, color=color, lw=1, alpha=0.8, label=name)
            a2.plot(series.t, [100 * x for x in series.cumulative_abandon], color=color, lw=1,
                    alpha=0.8)
    a1.axhline(oracle, color="black", ls=":", lw=0.8, label="oracle")
    a1.set_ylabel("talk-min per agent-hour (15 min bins)")
    a1.set_title(f"{agents} agents, {live:.0%} live, {talk:g} s talk: seeds "
                 + ", ".join(str(x) for x in seeds))
    a1.legend(fontsize=8)
    a2.axhline(3.0, color="black", ls="--", lw=0.8)
    a2.set_ylabel("abandon since start, %")
    a2.set_xlabel("hours into the shift")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_all(results: Sequence[RunResult], scenarios: Sequence[Scenario], out: Path,
             suffix: str = "", bias: tuple[int, float] = (100, 1.0),
             gap_sizes: Sequence[tuple[int, float]] = ((20, 4.0), (100, 1.0)),
             recovery_run: tuple[Sequence[int], float | None] = ((1, 2, 3, 4, 5), None)
             ) -> list[Path]:
    """Every plot; `bias`: (agents, hours) of the run behind the ring-age plot; `gap_sizes`:
    (agents, hours) of the panels of the gap plot; `recovery_run`: (seeds, shift hours or the
    cell's own) of the recovery plot (each simulated here)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [frontier(results, out / f"pacing_frontier{suffix}.png"),
             drift(results, out / f"pacing_drift{suffix}.png"),
             vs_oracle(results, scenarios, out / f"pacing_vs_oracle{suffix}.png"),
             ringing_bias(out / f"pacing_ringing_bias{suffix}.png", agents=bias[0], hours=bias[1]),
             gap(out / f"pacing_gap{suffix}.png", gap_sizes),
             recovery(out / f"pacing_recovery{suffix}.png", seeds=recovery_run[0],
                      hours=recovery_run[1])]
    return [p for p in paths if p is not None]


def _uk_scenario(name: str) -> bool:
    """Whether the bench's scenario of this name runs in UK mode (False if none has it)."""
    from dialer.sim.scenario import grid, specials

    return any(s.uk_mode for s in [*grid(), *specials()] if s.name == name)


def load(path: Path) -> list[RunResult]:
    """Results written by `grid --json`."""
    out = []
    for row in json.loads(path.read_text()):
        data: dict[str, Any] = dict(row)
        if "uk_mode" not in data:  # recorded before it was kept: the scenario says
            data["uk_mode"] = _uk_scenario(str(data["scenario"]))
        series = data.pop("series")
        data["results"] = tuple(tuple(x) for x in data["results"])
        if series is not None:
            series = Series(**{k: tuple(v) for k, v in series.items()})
        out.append(RunResult(**data, series=series))
    return out

"""The pacing bench: policies side by side over the scenario grid and the special scenarios.

    python -m dialer.sim grid [--quick] [--jobs N] [--seed S] [--img docs/img] [--markdown F]
    python -m dialer.sim scenario NAME [--policy predictive] [--hours H] [--days D]
    python -m dialer.sim scale [--agents 10000] [--hours 0.25]
    python -m dialer.sim yardstick [--seed 1] [--tune-seed 2]   (the ratio tuned on another day)
    python -m dialer.sim knowing [--seeds 1 2 3] [--hours H]   (the pacer told the agents)
    python -m dialer.sim teams [--live 0.15] [--talk 60] [--sizes 10 20 ...]   (gap by team size)
    python -m dialer.sim plot docs/img/pacing_runs.json   (tables and plots from a grid's JSON)

Writes into --img (docs/img): pacing_runs[_quick].csv and .json (every run) and the plots.

Every run of a cell uses the same seed, so policies meet the same customers (paired
comparison). The power ratio is swept per cell by bisection on a log scale and the best ratio
whose whole-run abandon rate is <= 3 % is kept: a ratio tuned with hindsight on the very seed
it is scored on, which flatters the incumbent.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dialer.sim.metrics import RunResult
from dialer.sim.policy import Policy, parse
from dialer.sim.scenario import Scenario, grid, scale, shifted, specials
from dialer.sim.simulator import simulate, simulate_warm

CEILING = 0.03
SWEEP_STEPS = 5
BASE_POLICIES = ("progressive", "vicidial", "predictive", "baseline")
NO_SWEEP = ("month-5", "amd-uk-m15")  # too long to sweep / nothing to learn from a sweep


@dataclass(frozen=True, slots=True)
class Task:
    scenario: Scenario
    policy: str  # a policy name, or "sweep" for the power-ratio sweep
    seed: int
    series: bool = False
    ratio: float | None = None  # a fixed power ratio (policy "power")

    @property
    def cost(self) -> float:
        return self.scenario.agent_days * (SWEEP_STEPS + 1 if self.policy == "sweep" else 1)


def sweep(scenario: Scenario, seed: int, series: bool = False) -> list[RunResult]:
    """Power ratios by bisection on a log scale between 1 and 6/L (L the mean live rate):
    every run made. A ratio holds the ceiling when the rate the rule judges does
    (`RunResult.judged_abandon`: the worst campaign's worst window), as for every policy."""
    live = scenario.customers.live_mean
    lo, hi = 1.0, 6.0 / live
    runs: list[RunResult] = []
    for _ in range(SWEEP_STEPS):
        ratio = round(math.sqrt(lo * hi), 2)
        run = simulate(scenario, Policy("power", ratio=ratio), seed, series=series)
        runs.append(run)
        if run.judged_abandon <= CEILING:
            lo = ratio
        else:
            hi = ratio
    if not any(r.judged_abandon <= CEILING for r in runs):
        runs.append(simulate(scenario, Policy("power", ratio=1.0), seed, series=series))
    return runs


def best_power(runs: Iterable[RunResult]) -> RunResult | None:
    ok = [r for r in runs if r.policy.startswith("power") and r.judged_abandon <= CEILING]
    return max(ok, key=lambda r: r.talk_min_per_hour, default=None)


def execute(task: Task) -> list[RunResult]:
    if task.policy == "sweep":
        return sweep(task.scenario, task.seed, task.series)
    policy = Policy("power", ratio=task.ratio) if task.ratio is not None else parse(task.policy)
    return [simulate(task.scenario, policy, task.seed, series=task.series)]


class Progress:
    """A text progress bar on stderr, weighted by simulated agent-days."""

    def __init__(self, total: float, enabled: bool) -> None:
        self.total = total
        self.done = 0.0
        self.enabled = enabled
        self.start = time.monotonic()

    def step(self, cost: float, label: str) -> None:
        self.done += cost
        if not self.enabled:
            return
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        elapsed = time.monotonic() - self.start
        sys.stderr.write(f"\r[{bar:<30}] {frac:4.0%} {elapsed:5.0f}s  {label[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def run_tasks(tasks: Sequence[Task], jobs: int, progress: bool = True) -> list[RunResult]:
    order = sorted(tasks, key=lambda t: -t.cost)
    bar = Progress(sum(t.cost for t in tasks), progress)
    out: list[RunResult] = []
    if jobs <= 1:
        for task in order:
            out.extend(execute(task))
            bar.step(task.cost, f"{task.scenario.name} {task.policy}")
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(execute, task): task for task in order}
            for future in as_completed(futures):
                task = futures[future]
                out.extend(future.result())
                bar.step(task.cost, f"{task.scenario.name} {task.policy}")
    bar.close()
    return out


# ---------------------------------------------------------------------------------- tables
def _by(results: Iterable[RunResult]) -> dict[str, dict[str, RunResult]]:
    table: dict[str, dict[str, RunResult]] = {}
    for r in results:
        table.setdefault(r.scenario, {})[r.policy] = r
    return table


def _cell(r: RunResult | None, ratio: bool = False) -> str:
    if r is None:
        return "—"
    extra = f" r={r.policy.split()[-1]}" if ratio else ""
    return f"{r.talk_min_per_hour:4.1f} ({r.abandon:.1%}{extra})"


def _ratio(a: RunResult | None, b: RunResult | None) -> str:
    if a is None or b is None or b.talk_min_per_hour <= 0:
        return "—"
    return f"{a.talk_min_per_hour / b.talk_min_per_hour:.2f}x"


def summary_table(results: Sequence[RunResult], scenarios: Sequence[Scenario]) -> str:
    """Markdown: talk-min per agent-hour (whole-run abandon) per policy, and our ratios; the
    best power ratio is the best whose judged rate (`RunResult.judged_abandon`) is ≤ 3 %."""
    table = _by(results)
    head = ("| scenario | oracle | progressive | best power ≤3 % | VICIdial | predictive "
            "| pred/oracle | pred/power | pred/VICIdial | baseline (before) | baseline/oracle |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in scenarios:
        runs = table.get(s.name, {})
        pred, ring = runs.get("predictive"), runs.get("baseline")
        power, vici = best_power(runs.values()), runs.get("vicidial")
        lines.append(
            f"| {s.name} | {s.oracle_talk_min_per_hour:.1f} | {_cell(runs.get('progressive'))} | "
            f"{_cell(power, ratio=True)} | {_cell(vici)} | {_cell(pred)} | "
            f"{f'{pred.vs_oracle:.0%}' if pred else '—'} | {_ratio(pred, power)} | "
            f"{_ratio(pred, vici)} | {_cell(ring)} | {f'{ring.vs_oracle:.0%}' if ring else '—'} |")
    extra = sorted({r.scenario for r in results} - {s.name for s in scenarios})
    for name in extra:
        for r in table[name].values():
            lines.append(f"| {name} | {r.oracle:.1f} | | {_cell(r, ratio=True)} | | | | | | | |"
                         if r.policy.startswith("power") else
                         f"| {name} ({r.policy}) | {r.oracle:.1f} | | | | {_cell(r)} | "
                         f"{r.vs_oracle:.0%} | | | | |")
    return "\n".join(lines)


def detail_table(results: Sequence[RunResult]) -> str:
    """Markdown: every run's yardsticks (of the power sweep, the best ratio ≤ 3 % only).
    Worst 30 d / day / hour are the worst campaign's, counting its own abandons; "judged" is
    the rate the 3 % rule judges (`RunResult.judged_abandon`: in UK mode the worst day with
    the campaign's estimate of AMD false positives)."""
    best = {id(b) for name, runs in _by(results).items()
            if (b := best_power(r for r in results if r.scenario == name)) is not None}
    results = [r for r in results if not r.policy.startswith("power") or id(r) in best
               or r.scenario.startswith("drift (")]
    head = ("| scenario | policy | talk-min/agent-h | occupancy | abandon (run) | worst 30 d "
            "| worst day | worst hour | judged | true abandon (AMD FP) | p95 idle gap s "
            "| dials/connect | leads used | agent-days/CPU-s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(results, key=lambda r: (r.scenario, r.policy)):
        lines.append(
            f"| {r.scenario} | {r.policy} | {r.talk_min_per_hour:.1f} | {r.occupancy:.1%} | "
            f"{r.abandon:.2%} | {r.abandon_30d:.2%} | {r.abandon_day:.2%} | {r.abandon_hour:.2%} | "
            f"{r.judged_abandon:.2%} | {r.true_abandon:.2%} | {r.idle_gap_p95:.0f} | "
            f"{r.dials_per_connect:.1f} | {r.leads_used} | {r.speed:.2f} |")
    return "\n".join(lines)


def print_table(results: Sequence[RunResult], scenarios: Sequence[Scenario]) -> None:
    print(summary_table(results, scenarios))


def write_csv(results: Sequence[RunResult], path: Path) -> None:
    fields = [f for f in RunResult.__dataclass_fields__ if f not in ("series", "results")]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*fields, "vs_oracle", "speed"])
        for r in sorted(results, key=lambda r: (r.scenario, r.policy)):
            row = [getattr(r, k) for k in fields]
            w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row]
                       + [f"{r.vs_oracle:.4f}", f"{r.speed:.3f}"])


# -------------------------------------------------------------------------------- commands
def grid_tasks(quick: bool, seed: int) -> tuple[list[Scenario], list[Task]]:
    cells = grid(quick)
    extra = specials(quick)
    tasks: list[Task] = []
    for s in [*cells, *extra]:
        series = s.name in ("drift", "month-5")
        for name in BASE_POLICIES:
            tasks.append(Task(s, name, seed, series))
        if s.name not in NO_SWEEP:
            tasks.append(Task(s, "sweep", seed, series))
    return [*cells, *extra], tasks


def tuned_drift_task(results: Sequence[RunResult], scenarios: Sequence[Scenario],
                     seed: int) -> Task | None:
    """The drift day with the power ratio tuned on the static 15 % day (pooled-20)."""
    tuned = best_power(r for r in results if r.scenario == "pooled-20")
    drift = next((s for s in scenarios if s.name == "drift"), None)
    if tuned is None or drift is None:
        return None
    return Task(replace(drift, name="drift (power tuned at 15 %)"), "power", seed, True,
                _ratio_of(tuned))


def cmd_grid(args: argparse.Namespace) -> int:
    scenarios, tasks = grid_tasks(args.quick, args.seed)
    t0 = time.monotonic()
    cpu0 = time.process_time()
    results = run_tasks(tasks, args.jobs, not args.no_progress)
    follow = tuned_drift_task(results, scenarios, args.seed)
    if follow is not None:
        results.extend(execute(follow))
    if args.scale_agents:
        results.extend(execute(Task(scale(args.scale_agents, args.scale_hours), "predictive",
                                    args.seed)))
    wall = time.monotonic() - t0
    cpu = sum(r.cpu_seconds for r in results)
    print(summary_table(results, scenarios))
    print()
    print(f"{len(results)} runs, {sum(r.agent_days for r in results):.0f} simulated agent-days, "
          f"{cpu:.0f} CPU-s in simulation, {wall:.0f} s wall with {args.jobs} jobs "
          f"(driver CPU {time.process_time() - cpu0:.0f} s)")
    out = Path(args.img)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    write_csv(results, out / f"pacing_runs{suffix}.csv")
    (out / f"pacing_runs{suffix}.json").write_text(json.dumps([asdict(r) for r in results]))
    if args.markdown:
        Path(args.markdown).write_text(
            "## Summary\n\n" + summary_table(results, scenarios) + "\n\n## Every run\n\n"
            + detail_table(results) + "\n")
    if not args.no_plots:
        from dialer.sim.plots import draw_all  # matplotlib only when plotting

        for path in draw_all(results, scenarios, out, suffix=suffix):
            print(f"wrote {path}")
    return 0


def _ratio_of(run: RunResult) -> float:
    return float(run.policy.split()[-1])  # "power 2.5"


def yardstick_table(cells: Sequence[Scenario], results: Sequence[RunResult], seed: int,
                    tune_seed: int) -> str:
    """Markdown: per cell, the hindsight-best ratio (tuned and scored on `seed`), the ratio
    tuned on `tune_seed` scored on `seed`, and our pacer on `seed`."""
    rows = [f"| cell | hindsight ratio on seed {seed}: talk (abandon) | ratio tuned on seed "
            f"{tune_seed}, on seed {seed}: talk (abandon) | predictive | ours / hindsight | "
            "ours / tuned on another day |",
            "|---|---|---|---|---|---|"]

    def cell(r: RunResult | None) -> str:
        if r is None:
            return "none under 3 %"
        over = " **over 3 %**" if r.judged_abandon > CEILING else ""
        return f"{r.policy}: {r.talk_min_per_hour:.1f} ({r.judged_abandon:.2%}){over}"

    for s in cells:
        mine = [r for r in results if r.scenario == s.name]
        hindsight = best_power(r for r in mine if r.seed == seed and "tuned" not in r.policy)
        tuned = next((r for r in mine if r.policy.endswith("(tuned elsewhere)")), None)
        ours = next((r for r in mine if r.policy == "predictive" and r.seed == seed), None)
        if ours is None:
            continue
        vs_h = f"{ours.talk_min_per_hour / hindsight.talk_min_per_hour:.2f}x" if hindsight else "-"
        vs_t = f"{ours.talk_min_per_hour / tuned.talk_min_per_hour:.2f}x" if tuned else "-"
        if tuned is not None and tuned.judged_abandon > CEILING:
            vs_t += " (the ratio breaks the ceiling)"
        rows.append(f"| {s.name} | {cell(hindsight)} | {cell(tuned)} | "
                    f"{ours.talk_min_per_hour:.1f} ({ours.judged_abandon:.2%}) | {vs_h} | {vs_t} |")
    return "\n".join(rows)


def cmd_yardstick(args: argparse.Namespace) -> int:
    """The fixed ratio an operator could really have set: the best one under 3 % on another
    seed (another day's customers, `--tune-seed`), then scored on `--seed` next to the
    hindsight-best ratio and our pacer (docs/PACING_BENCH.md, "A fairer yardstick")."""
    cells = [s for s in grid(args.quick) if args.cells is None or s.name in args.cells]
    tasks = [Task(s, name, seed) for s in cells for name, seed in
             (("sweep", args.tune_seed), ("sweep", args.seed), ("predictive", args.seed))]
    results = run_tasks(tasks, args.jobs, not args.no_progress)
    scored = []
    for s in cells:
        tuned = best_power(r for r in results if r.scenario == s.name and r.seed == args.tune_seed)
        if tuned is not None:
            scored.append(Task(s, "power", args.seed, ratio=_ratio_of(tuned)))
    for r in run_tasks(scored, args.jobs, not args.no_progress):
        results.append(replace(r, policy=f"{r.policy} (tuned elsewhere)"))
    table = yardstick_table(cells, results, args.seed, args.tune_seed)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


KNOWING_SIZES = (5, 20, 100)  # team sizes the occupancy targets name


def runs_of(results: Iterable[RunResult], scenario: str, policy: str) -> list[RunResult]:
    """The runs (one per seed) of one policy on one scenario."""
    return [r for r in results if r.scenario == scenario and r.policy == policy]


def knowing_table(cells: Sequence[Scenario], results: Sequence[RunResult]) -> str:
    """Markdown: per cell, our pacer and `knowing` (the same pacer told when every busy agent
    will be free and the true answer rates) as shares of the oracle, mean over the seeds,
    with the worst run's abandon rate."""
    from dialer.sim.plots import TARGETS

    rows = ["| cell | target | predictive: % of oracle (worst abandon) | knowing the agents | "
            "gain, points |", "|---|---|---|---|---|"]
    for s in cells:
        row = [f"| {s.name} | {TARGETS.get(s.staff.agents, 0.0):.0%} |"]
        means = []
        for name in ("predictive", "knowing"):
            runs = runs_of(results, s.name, name)
            if not runs:
                row.append(" — |")
                continue
            mean = sum(r.vs_oracle for r in runs) / len(runs)
            means.append(mean)
            row.append(f" {mean:.1%} ({max(r.judged_abandon for r in runs):.2%}, {len(runs)} seeds) |")
        gain = f" {100 * (means[1] - means[0]):+.1f} |" if len(means) == 2 else " — |"
        rows.append("".join(row) + gain)
    return "\n".join(rows)


def cmd_knowing(args: argparse.Namespace) -> int:
    """Our pacer against the same pacer told what no dialer knows — when every busy agent
    will be free, and the list's true answer rates (`knowing`) — on the same seeds: how much
    of the gap to the oracle better estimates of the agents and the answer rates could close
    (docs/PACING_BENCH.md, "Knowing the agents")."""
    from dialer.sim.plots import knowing

    cells = [s for s in grid(args.quick) if s.staff.agents in KNOWING_SIZES
             and (args.cells is None or s.name in args.cells)]
    if args.hours:
        cells = [shifted(s, args.hours) for s in cells]
    tasks = [Task(s, name, seed) for s in cells for seed in args.seeds
             for name in ("predictive", "knowing")]
    results = run_tasks(tasks, args.jobs, not args.no_progress)
    name = f"pacing_knowing{'_quick' if args.quick else ''}.png"
    return _publish(args, knowing_table(cells, results),
                    lambda out: knowing(results, cells, out / name))


def _publish(args: argparse.Namespace, table: str, draw: Callable[[Path], Path]) -> int:
    """Print a command's table, write it to --markdown, and draw its plot into --img (unless
    --no-plots)."""
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if not args.no_plots:
        out = Path(args.img)
        out.mkdir(parents=True, exist_ok=True)
        print(f"wrote {draw(out)}")
    return 0


TEAM_SIZES = (10, 20, 50, 100, 200, 500)


def steady_share(run: RunResult) -> float:
    """Talk-min per agent-hour as a share of the oracle without the run's first series bin
    (the synchronised start: every agent logs in within the same minute) and its last (the
    drain after the shift's end, while the calls in progress finish)."""
    series = run.series
    if series is None or len(series.talk_min_per_hour) < 3:
        raise ValueError(f"{run.scenario}: a steady share needs a series of 3 bins or more")
    middle = series.talk_min_per_hour[1:-1]
    return sum(middle) / len(middle) / run.oracle


def fit_gap(sizes: Sequence[int], gaps: Sequence[float]) -> tuple[float, float]:
    """Least squares of log(gap) = log(c) − b·log(agents): (c, b). Gaps must be positive."""
    if len(sizes) < 2 or min(gaps) <= 0.0:
        raise ValueError("a gap fit needs two sizes or more and positive gaps")
    xs = [math.log(n) for n in sizes]
    ys = [math.log(g) for g in gaps]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = -sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return math.exp(my + b * mx), b


def team_for_gap(c: float, b: float, gap: float) -> float:
    """The team size at which the fitted c · agents^-b falls to `gap` (inf: never)."""
    if b <= 0.0 or c <= gap:
        return math.inf if b <= 0.0 else 1.0
    try:
        return math.exp(math.log(c / gap) / b)
    except OverflowError:
        return math.inf


def team_points(results: Sequence[RunResult], sizes: Sequence[int], policy: str
                ) -> list[tuple[int, float, float, float]]:
    """Per team size: (agents, steady share of the oracle and whole run's share, both means
    over the seeds, worst abandon rate) of one policy's runs (`policy`: its label)."""
    out = []
    for n in sizes:
        runs = [r for r in results if r.agents == n and r.policy == policy]
        if not runs:
            raise ValueError(f"no {policy!r} runs with {n} agents")
        out.append((n, sum(steady_share(r) for r in runs) / len(runs),
                    sum(r.vs_oracle for r in runs) / len(runs), max(r.judged_abandon for r in runs)))
    return out


def fit_points(points: Sequence[tuple[int, float, float, float]]) -> tuple[float, float] | None:
    """The gap fit over `team_points`, leaving out any at or above the oracle (no gap to fit);
    None with fewer than two left."""
    kept = [(n, 1.0 - steady) for n, steady, _, _ in points if steady < 1.0]
    if len(kept) < 2:
        return None
    return fit_gap([n for n, _ in kept], [g for _, g in kept])


def teams_table(results: Sequence[RunResult], sizes: Sequence[int], policies: Sequence[str]
                ) -> str:
    """Markdown: per team size and policy (labels), the steady share of the oracle (mean over
    the seeds), the gap to it, the whole run's share and the worst abandon rate; then per
    policy the fitted gap ≈ c · agents^-b and the team the fit needs for a 10 % and a 3 % gap
    (in steady state: the whole run, start and drain included, needs more)."""
    rows = ["| agents | policy | steady share of oracle | gap | whole run | worst abandon |",
            "|---|---|---|---|---|---|"]
    fits = []
    for name in policies:
        points = team_points(results, sizes, name)
        for n, steady, whole, worst in points:
            rows.append(f"| {n} | {name} | {steady:.1%} | {1.0 - steady:.1%} | {whole:.1%} | "
                        f"{worst:.2%} |")
        fit = fit_points(points)
        if fit is not None:
            c, b = fit
            need = [team_for_gap(c, b, g) for g in (0.10, 0.03)]
            fits.append(f"- {name}: gap ≈ {c:.2f} · agents^{-b:+.2f}; a 10 % gap at "
                        f"{need[0]:,.0f} agents, a 3 % gap at {need[1]:,.0f}")
    return "\n".join([*rows, "", *fits])


def cmd_teams(args: argparse.Namespace) -> int:
    """One grid cell's customers over team sizes: the steady share of the oracle (the run
    without its first quarter-hour and the drain after the shift) and its gap, fitted as
    c · agents^-b — how the idle buffer the answer noise demands shrinks as a team grows
    (docs/PACING_BENCH.md, "Team size")."""
    from dialer.sim.metrics import BIN
    from dialer.sim.plots import teams
    from dialer.sim.scenario import cell

    if args.hours < 2 * BIN / 3600:
        raise SystemExit(f"--hours must be at least {2 * BIN / 3600:g}: the steady share leaves "
                         "out the first quarter-hour and the drain")
    sizes = sorted(set(args.sizes))
    try:
        labels = list(dict.fromkeys(parse(p).label for p in args.policies))
    except ValueError as exc:
        raise SystemExit(f"--policies: {exc}") from None
    tasks = [Task(shifted(cell(n, args.live, args.talk), args.hours), name, seed, series=True)
             for n in sizes for name in args.policies for seed in args.seeds]
    results = run_tasks(tasks, args.jobs, not args.no_progress)
    return _publish(args, teams_table(results, sizes, labels),
                    lambda out: teams(results, sizes, labels, out / "pacing_teams.png"))


def cmd_plot(args: argparse.Namespace) -> int:
    """Tables and plots again from a grid's JSON, without simulating."""
    from dialer.sim.plots import draw_all, load

    results = load(Path(args.results))
    scenarios = [*grid(args.quick), *specials(args.quick)]
    print(summary_table(results, scenarios))
    if args.markdown:
        Path(args.markdown).write_text(
            "## Summary\n\n" + summary_table(results, scenarios) + "\n\n## Every run\n\n"
            + detail_table(results) + "\n")
    for path in draw_all(results, scenarios, Path(args.img), suffix="_quick" if args.quick else ""):
        print(f"wrote {path}")
    return 0


def _find(name: str) -> Scenario:
    for s in [*grid(False), *specials(False)]:
        if s.name == name:
            return s
    names = ", ".join(s.name for s in [*grid(False), *specials(False)])
    raise SystemExit(f"unknown scenario {name!r}; known: {names}")


def _line(r: RunResult) -> str:
    return (f"{r.scenario:<14} {r.policy:<12} talk-min/h {r.talk_min_per_hour:5.1f} "
            f"({r.vs_oracle:4.0%} of {r.oracle:.1f})  occupancy {r.occupancy:5.1%}  "
            f"abandon {r.abandon:5.2%} (day {r.abandon_day:5.2%}, hour {r.abandon_hour:5.2%}, "
            f"true {r.true_abandon:5.2%}, judged {r.judged_abandon:5.2%})  p95 gap {r.idle_gap_p95:4.0f}s  "
            f"dials/connect {r.dials_per_connect:4.1f}  leads {r.leads_used}  "
            f"{r.agent_days:.1f} agent-days in {r.cpu_seconds:.1f} CPU-s ({r.speed:.2f}/s)")


def cmd_scenario(args: argparse.Namespace) -> int:
    s = _find(args.name)
    if args.hours:
        s = replace(s, staff=replace(s.staff, shift_hours=args.hours))
    if args.days:
        s = replace(s, days=args.days)
    for text in args.policy or ["predictive"]:
        if args.warm and text != "sweep":
            try:
                runs = [simulate_warm(s, parse(text), args.seed)]
            except ValueError as exc:
                raise SystemExit(f"--warm: {exc}") from None
        else:
            runs = sweep(s, args.seed) if text == "sweep" else [simulate(s, parse(text), args.seed)]
        for r in runs:
            print(_line(r))
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    s = scale(args.agents, args.hours)
    r = simulate(s, parse(args.policy), args.seed)
    print(_line(r))
    print(f"{r.events} events, {r.dials} dials; {r.events / r.cpu_seconds:,.0f} events/CPU-s")
    return 0


def _run_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that run some simulations and print one table."""
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--no-progress", action="store_true")


def _cell_options(parser: argparse.ArgumentParser) -> None:
    """`_run_options`, on some of the grid's cells."""
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cells", nargs="+", help="only these grid cells (e.g. a20-l15-t60)")
    _run_options(parser)


def _plot_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that draw one plot (`_publish`)."""
    parser.add_argument("--img", default="docs/img", help="where the plot goes (--no-plots: none)")
    parser.add_argument("--no-plots", action="store_true")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's sub-commands, for `python -m dialer.sim` and `dialer bench pacing`."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = sub.add_parser("grid", help="every scenario x every policy; table, CSV and plots")
    g.add_argument("--quick", action="store_true", help="5-100 agents, short shifts (~minutes)")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    g.add_argument("--img", default="docs/img", help="where plots and the CSV go")
    g.add_argument("--markdown", help="also write the tables to this Markdown file")
    g.add_argument("--no-plots", action="store_true")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--scale-agents", type=int, default=0,
                   help="add a predictive run with this many agents (e.g. 10000)")
    g.add_argument("--scale-hours", type=float, default=0.25)
    g.set_defaults(func=cmd_grid)
    p = sub.add_parser("plot", help="tables and plots again from a grid's pacing_runs*.json")
    p.add_argument("results")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--img", default="docs/img")
    p.add_argument("--markdown")
    p.set_defaults(func=cmd_plot)
    s = sub.add_parser("scenario", help="one scenario, one or more policies")
    s.add_argument("name")
    s.add_argument("--policy", action="append", default=[],
                   help="progressive | vicidial | predictive | baseline | power:R | sweep")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--hours", type=float)
    s.add_argument("--days", type=int)
    s.add_argument("--warm", action="store_true",
                   help="predictive pacers start from the estimates of the same scenario run on "
                        "seed + 1000, as a restarted dialer starts from those it saved in Redis")
    s.set_defaults(func=cmd_scenario)
    y = sub.add_parser("yardstick", help="the fixed ratio tuned on another seed, scored on this "
                       "one, next to the hindsight-best ratio and our pacer")
    y.add_argument("--seed", type=int, default=1)
    y.add_argument("--tune-seed", type=int, default=2)
    _cell_options(y)
    y.set_defaults(func=cmd_yardstick)
    k = sub.add_parser("knowing", help="our pacer against the same pacer told when every agent "
                       "will be free and the true answer rate (what better estimates could gain)")
    k.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    k.add_argument("--hours", type=float, help="shift length instead of the grid's (two breaks "
                   "from 4 h)")
    _plot_options(k)
    _cell_options(k)
    k.set_defaults(func=cmd_knowing)
    t = sub.add_parser("teams", help="one cell's customers over team sizes: the steady share of "
                       "the oracle and how its gap shrinks as the team grows")
    t.add_argument("--live", type=float, default=0.15)
    t.add_argument("--talk", type=float, default=60.0)
    t.add_argument("--sizes", type=int, nargs="+", default=list(TEAM_SIZES))
    t.add_argument("--hours", type=float, default=2.0, help="shift length (0.5 at least: the "
                   "steady share leaves out the first quarter-hour and the drain after it)")
    t.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    t.add_argument("--policies", nargs="+", default=["predictive", "knowing"])
    _plot_options(t)
    _run_options(t)
    t.set_defaults(func=cmd_teams)
    c = sub.add_parser("scale", help="one large run, to measure the simulator's speed")
    c.add_argument("--agents", type=int, default=10_000)
    c.add_argument("--hours", type=float, default=0.25)
    c.add_argument("--policy", default="predictive")
    c.add_argument("--seed", type=int, default=1)
    c.set_defaults(func=cmd_scale)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dialer.sim", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)

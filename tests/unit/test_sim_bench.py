"""The bench command and its outputs, on tiny runs."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from dialer.sim.bench import (
    Task,
    best_power,
    detail_table,
    execute,
    fit_gap,
    main,
    steady_share,
    summary_table,
    team_for_gap,
    teams_table,
    write_csv,
    yardstick_table,
)
from dialer.sim.metrics import RunResult, Series
from dialer.sim.scenario import cell, grid, specials


def tiny(hours: float = 0.2) -> list[RunResult]:
    s = cell(5, 0.3, 60.0)
    s = replace(s, staff=replace(s.staff, shift_hours=hours, breaks=0))
    out: list[RunResult] = []
    for name in ("progressive", "predictive", "vicidial", "baseline"):
        out.extend(execute(Task(s, name, 1)))
    out.extend(execute(Task(s, "power", 1, ratio=1.5)))
    out.extend(execute(Task(s, "power", 1, ratio=9.0)))
    return out


def test_the_grid_is_agents_by_live_rate_by_talk() -> None:
    full = grid()
    assert {s.staff.agents for s in full} == {5, 20, 100, 500}
    assert {s.customers.live for s in full} == {0.05, 0.15, 0.30}
    assert {s.customers.talk_mean for s in full} == {60.0, 180.0}
    assert len(full) == 24
    names = {s.name for s in specials()}
    assert {"drift", "churn", "amd-uk", "subpools-4x5", "month-5"} <= names
    assert all(s.staff.agents < 500 for s in grid(quick=True))


def test_best_power_is_the_best_ratio_under_the_ceiling() -> None:
    runs = tiny()
    best = best_power(runs)
    assert best is None or (best.policy.startswith("power") and best.judged_abandon <= 0.03)
    under = [r for r in runs if r.policy.startswith("power") and r.judged_abandon <= 0.03]
    assert best is None or all(best.talk_min_per_hour >= r.talk_min_per_hour for r in under)


def test_the_ceiling_is_judged_on_the_worst_campaigns_worst_window_or_day_in_uk_mode() -> None:
    run = next(r for r in tiny() if r.policy == "power 1.5")
    # Sub-pools: 2.5 % over the run, 3.4 % in one campaign's window.
    pooled = replace(run, policy="power 9", talk_min_per_hour=99.0, abandon=0.025,
                     abandon_30d=0.034, abandon_day=0.034)
    assert pooled.judged_abandon == 0.034
    assert best_power([run, pooled]) is not pooled
    uk = replace(pooled, uk_mode=True, abandon_30d=0.02, abandon_day=0.034,
                 abandon_day_counted=0.034)  # one bad day
    assert uk.judged_abandon == 0.034
    assert best_power([run, uk]) is not uk
    assert best_power([run, replace(uk, abandon_day=0.029, abandon_day_counted=0.029)]) is not run
    assert replace(uk, abandon_day_counted=None).judged_abandon == 0.034  # recorded before
    # As the campaign counts a UK day: its estimated AMD false positives too.
    counted = replace(uk, abandon_day=0.02, abandon_day_counted=0.031)
    assert counted.judged_abandon == 0.031
    assert best_power([run, counted]) is not counted


def test_tables_and_csv(tmp_path: Path) -> None:
    runs = tiny()
    scenarios = [cell(5, 0.3, 60.0)]
    table = summary_table(runs, scenarios)
    assert table.count("\n") == 2
    assert "a5-l30-t60" in table
    shown = [r for r in runs if not r.policy.startswith("power")] + \
        ([best] if (best := best_power(runs)) is not None else [])
    assert detail_table(runs).count("\n") == len(shown) + 1
    write_csv(runs, tmp_path / "runs.csv")
    assert len((tmp_path / "runs.csv").read_text().splitlines()) == len(runs) + 1


def test_scenario_command_prints_one_line_per_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "a5-l30-t60", "--hours", "0.1", "--policy", "progressive",
                 "--policy", "power:1.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert "talk-min/h" in out[0]
    assert "power 1.5" in out[1]


def test_scenario_command_starts_the_pacer_warm_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "a5-l30-t60", "--hours", "0.1", "--warm"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert "predictive (warm)" in out[0]
    with pytest.raises(SystemExit, match="--warm: policy 'progressive' keeps no estimates"):
        main(["scenario", "a5-l30-t60", "--hours", "0.1", "--warm", "--policy", "progressive"])


def test_yardstick_scores_a_ratio_tuned_on_another_seed(tmp_path: Path) -> None:
    out = tmp_path / "yardstick.md"
    assert main(["yardstick", "--quick", "--cells", "a5-l30-t60", "--jobs", "1", "--no-progress",
                 "--markdown", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert "ratio tuned on seed 2, on seed 1" in lines[0]
    assert len(lines) == 3
    assert lines[2].startswith("| a5-l30-t60 | power ")
    assert "(tuned elsewhere)" in lines[2]


def test_knowing_runs_the_pacer_beside_the_one_told_the_agents_on_the_same_seeds(
        tmp_path: Path) -> None:
    out = tmp_path / "knowing.md"
    assert main(["knowing", "--quick", "--cells", "a5-l30-t60", "--seeds", "1", "2", "--jobs",
                 "1", "--no-progress", "--markdown", str(out), "--img", str(tmp_path)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:2] == ["a5-l30-t60", "70%"]
    assert cells[2].endswith("2 seeds)")
    assert cells[3].endswith("2 seeds)")
    gain = float(cells[4])
    shares = [float(c.split("%")[0]) for c in cells[2:4]]
    assert gain == pytest.approx(shares[1] - shares[0], abs=0.11)
    assert (tmp_path / "pacing_knowing_quick.png").stat().st_size > 10_000


def test_the_gap_fit_recovers_a_power_law_and_the_team_it_needs() -> None:
    sizes = [10, 20, 50, 100, 500]
    c, b = fit_gap(sizes, [0.7 * n ** -0.5 for n in sizes])
    assert c == pytest.approx(0.7)
    assert b == pytest.approx(0.5)
    assert team_for_gap(c, b, 0.10) == pytest.approx(49.0)
    assert team_for_gap(c, b, 0.03) == pytest.approx(544.4, abs=0.1)
    assert team_for_gap(0.7, -0.1, 0.03) == math.inf  # a gap that does not shrink
    with pytest.raises(ValueError, match="positive gaps"):
        fit_gap([10, 20], [0.1, 0.0])


def with_series(run: RunResult, agents: int, policy: str, bins: tuple[float, ...]) -> RunResult:
    """`run` made up as `policy` with `agents` agents and these talk-min per hour per bin."""
    zeros = tuple(0.0 for _ in bins)
    return replace(run, agents=agents, policy=policy,
                   series=Series(t=zeros, live=zeros, talk_min_per_hour=bins, abandon=zeros,
                                 cumulative_abandon=zeros))


def test_the_steady_share_leaves_out_the_start_and_the_drain() -> None:
    run = execute(Task(cell(5, 0.3, 60.0), "predictive", 1))[0]
    made = with_series(run, 5, "predictive", (10.0, 0.7 * run.oracle, 0.9 * run.oracle, 1.0))
    assert steady_share(made) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="3 bins"):
        steady_share(with_series(run, 5, "predictive", (10.0, 20.0)))


def test_the_teams_table_gives_each_size_its_gap_and_the_fit_the_team_for_each_target() -> None:
    run = execute(Task(cell(5, 0.3, 60.0), "predictive", 1))[0]
    o = run.oracle
    runs = [with_series(run, n, "predictive", (0.0, (1 - 0.7 * n ** -0.5) * o, 0.0))
            for n in (10, 40, 160)]
    lines = teams_table(runs, [10, 40, 160], ["predictive"]).splitlines()
    assert lines[2].startswith(f"| 10 | predictive | {1 - 0.7 / 10 ** 0.5:.1%} | "
                               f"{0.7 / 10 ** 0.5:.1%} |")
    assert lines[-1] == "- predictive: gap ≈ 0.70 · agents^-0.50; a 10 % gap at 49 agents, " \
        "a 3 % gap at 544"
    with pytest.raises(ValueError, match="no 'knowing' runs with 10 agents"):
        teams_table(runs, [10, 40, 160], ["knowing"])


def test_teams_measures_the_steady_gap_to_the_oracle_per_team_size(tmp_path: Path) -> None:
    out = tmp_path / "teams.md"
    assert main(["teams", "--sizes", "10", "5", "10", "--hours", "0.75",
                 "--policies", "predictive:safety=0.8", "--seeds", "1", "--jobs", "1",
                 "--no-progress", "--markdown", str(out), "--img", str(tmp_path)]) == 0
    lines = out.read_text().splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:4]]
    assert [r[:2] for r in rows] == [["5", "predictive:safety=0.8"], ["10", "predictive:safety=0.8"]]
    for r in rows:
        assert float(r[4].rstrip("%")) < float(r[2].rstrip("%"))  # the start costs the whole run
    assert lines[-1].startswith("- predictive:safety=0.8: gap ≈ ")
    assert (tmp_path / "pacing_teams.png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match=r"at least 0\.5"):
        main(["teams", "--hours", "0.25", "--no-progress", "--no-plots"])


def test_runs_recorded_before_the_judged_rate_was_kept_load_and_never_pass_unknown(
        tmp_path: Path) -> None:
    from dialer.sim.plots import load

    run = next(r for r in tiny() if r.policy == "power 1.5")
    rows = []
    for r in (replace(run, scenario="amd-uk", machines=40, abandon_day=0.01),
              replace(run, scenario="amd-uk", machines=0, abandon_day=0.01), run):
        row = asdict(r)
        del row["uk_mode"], row["abandon_day_counted"]  # as written before they were kept
        rows.append(row)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(rows))
    uk_amd, uk_no_amd, us = load(path)
    assert uk_amd.uk_mode
    assert uk_no_amd.uk_mode
    assert not us.uk_mode
    assert uk_amd.judged_abandon == math.inf  # its counted day is unknown: it cannot pass
    assert best_power([uk_amd]) is None
    assert uk_no_amd.judged_abandon == 0.01  # no machine verdicts: the day's own rate
    assert us.judged_abandon == run.abandon_30d


def test_yardstick_flags_a_ratio_from_another_day_that_breaks_the_ceiling() -> None:
    runs = tiny()
    ours = next(r for r in runs if r.policy == "predictive")
    hindsight = next(r for r in runs if r.policy == "power 1.5")
    elsewhere = replace(hindsight, policy="power 2.1 (tuned elsewhere)", abandon=0.029,
                        abandon_30d=0.041)  # under 3 % over the run, not in its worst window
    s = cell(5, 0.3, 60.0)
    table = yardstick_table([s], [ours, replace(hindsight, abandon=0.02, abandon_30d=0.02),
                                  elsewhere], 1, 2)
    row = table.splitlines()[2]
    assert "power 2.1 (tuned elsewhere)" in row
    assert "**over 3 %**" in row
    assert "(the ratio breaks the ceiling)" in row


def test_plots_are_written(tmp_path: Path) -> None:
    from dialer.sim.plots import draw_all  # matplotlib: the `bench` extra, in `dev` too

    runs = tiny(0.1)
    paths = draw_all(runs, [cell(5, 0.3, 60.0)], tmp_path, bias=(10, 0.25), gap_sizes=((5, 0.1),),
                     recovery_run=((1,), 0.25))
    assert tmp_path / "pacing_recovery.png" in paths
    assert all(p.stat().st_size > 1000 for p in paths)

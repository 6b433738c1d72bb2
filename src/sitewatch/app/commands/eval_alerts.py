"""CLI verb ``sitewatch eval alerts``: event recall, false alarms and lead time over simulated seeds."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.alerts import evaluate_alerts, parse_seeds, proportion
from sitewatch.imagery.simulate.scenario import load_scenario


def eval_alerts(
    seeds: Annotated[
        str, typer.Option("--seeds", help="Seeds to simulate: a range 100-119, a list 1,2,3, or both.")
    ] = "100-119",
    scenario: Annotated[
        str, typer.Option("--scenario", help="Built-in scenario name or a scenario YAML file.")
    ] = "reference",
    rates: Annotated[
        str, typer.Option("--false-alarm-rates", help="Comma-separated false-alarm rates to evaluate.")
    ] = "0.01,0.05",
    lead_in_days: Annotated[
        int, typer.Option("--lead-in-days", min=0, max=3650,
                          help="Days of routine history simulated before the scenario starts.")
    ] = 365,
    inject: Annotated[
        int, typer.Option("--inject", min=0, max=10,
                          help="Copies of the scenario's largest expected event injected per site and seed.")
    ] = 2,
    triage: Annotated[
        bool, typer.Option("--triage/--no-triage",
                           help="Model analysts resolving each alert (confirmed during events, else benign).")
    ] = True,
    calendars: Annotated[
        bool, typer.Option("--calendars/--no-calendars",
                           help="Let the built-in holiday calendars raise the holiday pattern's prior.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Score alerts on simulated scenarios with ground truth (indicator-level simulation, see docs)."""
    try:
        seed_list = parse_seeds(seeds)
        alphas = tuple(float(r) for r in rates.split(",") if r.strip())
    except ValueError as error:
        raise UnsupportedInputError(str(error)) from None
    if not alphas or not all(0 < a < 0.5 for a in alphas):
        raise UnsupportedInputError(
            f"--false-alarm-rates {rates!r}: give rates between 0 and 0.5, e.g. 0.01,0.05"
        )
    plan = load_scenario(scenario)
    console = Console(stderr=True, highlight=False)
    bar = Progress(TextColumn("simulating seeds"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=as_json)
    with bar:
        task = bar.add_task("seeds", total=len(seed_list))
        evaluation = evaluate_alerts(
            plan, seed_list, false_alarm_rates=alphas, lead_in_days=lead_in_days, inject=inject,
            triage=triage, calendars=calendars,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    if as_json:
        typer.echo(json.dumps(evaluation.as_dict(), ensure_ascii=False))
        return
    out = Console(highlight=False, soft_wrap=True)
    table = Table(title=f"Alerts on scenario {evaluation.scenario!r}, {len(seed_list)} seed(s), "
                        f"{evaluation.method}")
    for column in ("alpha", "event recall", "recall, events seen", "recall, events >= surge",
                   "recall, events >= surge seen",
                   "false alarms / quiet obs",
                   "slow-build on quiet", "alerts on routine busy days", "busy days ranked first",
                   "top-1 hypothesis", "median lead time (obs)"):
        table.add_column(column)
    for rate in evaluation.rates:
        table.add_row(
            f"{rate.false_alarm_rate:g}",
            f"{rate.recall:.3f} ({rate.events_detected}/{rate.events})",
            f"{rate.seen_event_recall:.3f} ({rate.seen_events_detected}/{rate.seen_events})",
            f"{rate.large_event_recall:.3f} ({rate.large_events_detected}/{rate.large_events})",
            f"{rate.seen_large_event_recall:.3f} "
            f"({rate.seen_large_events_detected}/{rate.seen_large_events})",
            f"{rate.false_alarms_per_quiet_observation:.4f} ± {rate.false_alarm_standard_error:.4f} "
            f"({rate.quiet_alerts}/{rate.quiet_observations})",
            f"{rate.quiet_slow_build_alerts}",
            f"{rate.routine_alerts}/{rate.routine_observations}",
            _share(proportion(rate.routine_top_priority_alerts, rate.routine_observations)),
            _share(rate.top1_accuracy),
            f"{rate.median_lead_time:g}",
        )
    out.print(table)
    for rate in evaluation.rates:
        kinds = Table(title="Leading hypothesis of each event's first alert, "
                            f"alpha {rate.false_alarm_rate:g}")
        for column in ("event kind", "expected pattern", "top-1 accuracy", "leading hypotheses"):
            kinds.add_column(column)
        for kind in rate.hypothesis_accuracy:
            kinds.add_row(kind.kind, ", ".join(kind.expected) or "(not scored)",
                          _share(proportion(kind.correct, kind.alerted)) if kind.expected else "-",
                          ", ".join(f"{pattern} {count}" for pattern, count in kind.leading))
        out.print(kinds)
        held = proportion(rate.seen_large_events_top_priority, rate.seen_large_events)
        out.print(f"Under the hold policy (alpha {rate.false_alarm_rate:g}): recall over large events seen "
                  f"{_share(held)}; {rate.quiet_held_alerts} of {rate.quiet_alerts} quiet false alarms held "
                  "back, all still counted in the false-alarm rate.")
    out.print(evaluation.as_dict()["method_note"])


def _share(value: dict[str, float | int]) -> str:
    return f"{value['value']:.3f} ± {value['standard_error']:.3f} ({value['hits']}/{value['trials']})"


def register(eval_app: typer.Typer) -> None:
    """Add ``alerts`` to the ``eval`` verb group."""
    eval_app.command("alerts")(eval_alerts)

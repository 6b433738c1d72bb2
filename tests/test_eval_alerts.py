"""``sitewatch eval alerts``: the indicator-level simulator and the metrics it reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from sitewatch.analytics.indicators import MIN_VISIBLE_FOR_COUNTS
from sitewatch.app.commands import eval_alerts
from sitewatch.evaluation.alerts import evaluate_alerts, parse_seeds, reference_surge, simulate_site
from sitewatch.imagery.simulate.scenario import load_scenario


def test_parse_seeds() -> None:
    assert parse_seeds("1-3,9") == (1, 2, 3, 9)
    assert parse_seeds("7") == (7,)
    with pytest.raises(ValueError, match="range"):
        parse_seeds("5-2")
    with pytest.raises(ValueError):
        parse_seeds("a,b")


def test_simulator_follows_the_scenario() -> None:
    scenario = load_scenario("reference")
    event, phase = reference_surge(scenario)
    assert event.id.startswith("sanumdong") and sum(o.count for o in phase.objects) >= 50
    plan = scenario.site("sanumdong")
    site = simulate_site(scenario, plan, seed=3, lead_in_days=100, inject=1)
    history = site.history
    assert history.values.shape[1] == len(history.acquired) > 30
    assert ("parking", "count_car") in history.series
    row = history.series.index(("parking", "count_car"))
    days = [a.date() for a in history.acquired]
    quiet = [history.values[row, t] for t, d in enumerate(days) if not any(e.covers(d) for e in site.events)]
    assert 10 < np.nanmedian(quiet) < 35  # routine traffic of about 22 cars, thinned by detection
    assert np.isnan(history.values).any()  # cloudy zones are not observed
    assert any(e.injected for e in site.events)
    # Partly clouded zones are observed as the pipeline observes them: the clear part's count
    # scaled to the zone (so unbiased, only noisier) and the pipeline's quality weight.
    observed = ~np.isnan(history.values[row])
    partial = observed & (history.quality[row] < 0.95)
    assert partial.any() and (history.quality[row][observed] >= MIN_VISIBLE_FOR_COUNTS ** 0.5 - 1e-9).all()
    still = np.array([not any(e.covers(d) for e in site.events) for d in days])
    clear_mean = history.values[row, observed & ~partial & still].mean()
    partial_mean = history.values[row, partial & still].mean()
    assert abs(partial_mean - clear_mean) < 0.3 * clear_mean


def test_evaluation_reports_recall_false_alarms_and_lead_time() -> None:
    evaluation = evaluate_alerts(load_scenario("reference"), (5, 6), false_alarm_rates=(0.05,),
                                 lead_in_days=200, inject=1)
    (rate,) = evaluation.rates
    assert rate.events > 0 and rate.quiet_observations > 100
    assert rate.recall >= 0.5
    assert rate.false_alarms_per_quiet_observation <= 0.05 + 3 * rate.false_alarm_standard_error
    assert rate.seen_large_events <= rate.large_events
    assert rate.seen_large_events_detected <= min(rate.seen_large_events, rate.large_events_detected)
    data = evaluation.as_dict()
    assert data["method"] == "indicator-level simulation" and "method_note" in data
    assert {"seen_large_events", "seen_large_event_recall"} <= set(data["rates"][0])


def test_cli_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    eval_app = typer.Typer()
    eval_alerts.register(eval_app)
    eval_app.command("noop")(lambda: None)  # keep a group so the verb is addressed by name
    result = CliRunner().invoke(eval_app, ["alerts", "--seeds", "8", "--lead-in-days", "120", "--inject", "1",
                                           "--false-alarm-rates", "0.05", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["seeds"] == [8] and data["rates"][0]["false_alarm_rate"] == 0.05
    assert "indicator-level" in data["method"]

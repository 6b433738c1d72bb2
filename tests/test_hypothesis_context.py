"""Context (holiday calendars, site schedules), workspace patterns, learned priors and analysts' picks."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.catalog.context import builtin_context_text, load_context, parse_context
from sitewatch.core.errors import ContextError, ValidationError
from sitewatch.core.types import (
    NONE_HYPOTHESIS,
    Alert,
    AlertState,
    Assessment,
    Hypothesis,
    Site,
    latest_picks,
)
from sitewatch.imagery.simulate.sites import site_by_id
from sitewatch.monitor.hypotheses import built_in_patterns, score_hypotheses
from sitewatch.monitor.policy import BenignPolicy, held, top_priority
from sitewatch.monitor.priors import PRIOR_STRENGTH, prior_weights, resolution_counts
from sitewatch.pipeline.context import load_hypothesis_inputs
from sitewatch.store import Workspace
from sitewatch.store.settings import Settings
from test_alerts_cli import _main, workspace  # noqa: F401  (the monitored workspace fixture)
from test_hypotheses import readings

PARTY_DAY = datetime(2018, 10, 10, 2, 15, tzinfo=UTC)
A_TUESDAY = datetime(2018, 10, 16, 2, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def sanumdong() -> Site:
    return site_by_id("sanumdong")


def test_the_reference_countrys_calendar_ships_with_sources(sanumdong: Site) -> None:
    context = load_context()
    calendar = context.calendar("DPRK")
    assert calendar is not None and calendar.country == "KP" and len(calendar.sources) >= 2
    names = [o.name for o in context.occasions(sanumdong, PARTY_DAY)]
    assert names == ["Party Foundation Day (Workers' Party of Korea)"]
    assert context.prior_factors(sanumdong, PARTY_DAY) == {"holiday": 10.0}
    assert context.occasions(sanumdong, A_TUESDAY) == ()
    # The local date decides: 20:00 UTC on 14 April is already the Day of the Sun in Pyongyang.
    assert [o.name for o in context.occasions(sanumdong, datetime(2019, 4, 14, 20, tzinfo=UTC))] == [
        "Day of the Sun (Kim Il Sung's birthday)"]
    # A one-year date (the lunar new year) matches its year only.
    assert context.occasions(sanumdong, datetime(2019, 2, 5, 3, tzinfo=UTC))
    assert not context.occasions(sanumdong, datetime(2020, 2, 5, 3, tzinfo=UTC))


def test_every_problem_of_a_context_file_is_reported_at_once() -> None:
    document = {
        "calendars": {"KP": {"name": "", "utc_offset": 30, "sources": [], "raises": {"holiday": -2},
                             "holidays": [{"date": "13-40", "name": "x"}, {"date": "10-10"}], "colour": 1}},
        "schedules": {"sanumdong": [{"name": "market", "weekdays": ["funday"], "raises": {"x": 2}},
                                    {"name": "nothing", "raises": {"routine_gathering": 2}}]},
        "extra": {},
    }
    with pytest.raises(ContextError) as caught:
        parse_context(document, "test.yaml")
    expected = ["extra", "KP.name", "utc_offset", "KP.sources", "raises.holiday", "'13-40' is not a date",
                "holidays[1].name", "KP.colour", "'funday' is not a weekday", "sanumdong[1]: names no day"]
    for fragment in expected:
        assert any(fragment in p for p in caught.value.problems), (fragment, caught.value.problems)
    assert len(caught.value.problems) == len(expected)


def test_a_holiday_raises_the_holiday_patterns_prior(sanumdong: Site) -> None:
    # Cars in the parking and a few at the hall: a gathering or a holiday, the evidence alone hesitates.
    evidence = readings(sanumdong, {("parking", "count_car"): 35.0, ("assembly_hall", "count_car"): 2.0})
    patterns = built_in_patterns().for_site(sanumdong)
    plain = score_hypotheses(sanumdong, evidence, priors=prior_weights(patterns))
    library_priors = score_hypotheses(sanumdong, evidence)  # the library's priors, untouched
    assert [h.pattern for h in plain] == [h.pattern for h in library_priors]
    assert [h.probability for h in plain] == pytest.approx([h.probability for h in library_priors])
    holiday = load_context().prior_factors(sanumdong, PARTY_DAY)
    on_the_day = score_hypotheses(sanumdong, evidence, priors=prior_weights(patterns, factors=holiday))
    assert plain[0].pattern == "routine_gathering"
    assert on_the_day[0].pattern == "holiday"
    # The likelihood ratios are the evidence's; only the shares of belief move.
    ratios = {h.pattern: h.likelihood_ratio for h in plain}
    assert all(h.likelihood_ratio == pytest.approx(ratios[h.pattern]) for h in on_the_day)


def _alert(number: int, state: AlertState, shares: dict[str, float]) -> Alert:
    library = {p.id: p for p in built_in_patterns().patterns}
    hypotheses = tuple(
        Hypothesis(pattern=k, label=k, benign=library[k].benign if k in library else False,
                   likelihood_ratio=1.0, probability=v) for k, v in shares.items())
    when = datetime(2019, 1, number, tzinfo=UTC)
    return Alert(id=f"a{number}", site_id="sanumdong", observation_id=f"o{number}", acquired=when,
                 created=when, indicator="count_car", value=50.0, baseline=20.0, score=9.0, explanation="x",
                 state=state, hypotheses=hypotheses)


def test_resolutions_update_the_priors_by_counts(sanumdong: Site) -> None:
    patterns = built_in_patterns().for_site(sanumdong)
    alerts = [
        # confirmed: counted over the activity patterns it held, not the benign one
        _alert(1, AlertState.CONFIRMED, {"production_surge": 0.6, "launch_preparation": 0.2, "holiday": 0.2}),
        # benign, with two analysts who disagree: half each
        _alert(2, AlertState.BENIGN, {"production_surge": 0.9, "routine_gathering": 0.1}),
        _alert(3, AlertState.FALSE_ALARM, {"production_surge": 1.0}),  # nothing happened: counts nothing
        _alert(4, AlertState.NEW, {"production_surge": 1.0}),  # unresolved: counts nothing
        _alert(9, AlertState.CONFIRMED, {"construction": 1.0}),  # after the new alert: not yet known
    ]
    # a1's one pick disagrees with its verdict: its own shares decide
    picks = {"a2": ["holiday", "routine_gathering"], "a1": ["holiday"]}
    counts = resolution_counts(patterns, alerts, picks, before=datetime(2019, 1, 5, tzinfo=UTC))
    assert counts == pytest.approx({"production_surge": 0.75, "launch_preparation": 0.25,
                                    "holiday": 0.5, "routine_gathering": 0.5})
    weights = prior_weights(patterns, counts=counts)
    base = PRIOR_STRENGTH / (len(patterns) + 1)  # the library's priors are all 1, and "none of these"
    assert weights["production_surge"] == pytest.approx(base + 0.75)
    assert weights[NONE_HYPOTHESIS] == pytest.approx(base)
    assert weights["dismantling"] == pytest.approx(base)


def test_workspace_patterns_override_the_library_and_are_checked_with_the_context(tmp_path: Path) -> None:
    sites = [site_by_id("sanumdong"), site_by_id("sohae")]
    inputs = load_hypothesis_inputs(tmp_path, sites)
    assert inputs.context.source.startswith("built-in") and inputs.patterns.source.startswith("built-in")
    holiday = dict(yaml.safe_load((Path(__file__).parents[1] / "src/sitewatch/monitor/patterns.yaml")
                                  .read_text(encoding="utf-8"))["holiday"])
    own = {"holiday": {**holiday, "prior": 0.5},
           "market_day": {**holiday, "label": "market day", "sites": ["sanumdong"]}}
    (tmp_path / "patterns.yaml").write_text(yaml.safe_dump(own), encoding="utf-8")
    inputs = load_hypothesis_inputs(tmp_path, sites)
    assert inputs.patterns.get("holiday").prior == 0.5
    assert len(inputs.patterns.patterns) == len(built_in_patterns().patterns) + 1
    assert "market_day" in {p.id for p in inputs.patterns.for_site(sites[0])}
    assert "market_day" not in {p.id for p in inputs.patterns.for_site(sites[1])}

    context = yaml.safe_load(builtin_context_text())
    context["schedules"] = {"sanumdong": [{"name": "market", "weekdays": ["sun"],
                                           "raises": {"market_day": 5}}],
                            "atlantis": [{"name": "tide", "dates": ["06-01"], "raises": {"parade": 2}}]}
    (tmp_path / "context.yaml").write_text(yaml.safe_dump(context), encoding="utf-8")
    own["market_day"]["sites"] = ["sanumdong", "atlantis"]
    (tmp_path / "patterns.yaml").write_text(yaml.safe_dump(own), encoding="utf-8")
    with pytest.raises(ContextError) as caught:
        load_hypothesis_inputs(tmp_path, sites)
    problems = caught.value.problems
    assert len(problems) == 3, problems
    assert any("'parade', which is not an activity pattern" in p for p in problems)
    assert any("schedules.atlantis: no such site" in p for p in problems)
    assert any("market_day.sites: 'atlantis'" in p for p in problems)


def test_analysts_pick_hypotheses_and_their_disagreement_stays_visible(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv("SITEWATCH_USER", raising=False)
    with Workspace.open(workspace) as ws:
        alert = next(a for a in ws.alerts() if a.hypotheses)
        assert (workspace / "context.yaml").exists()  # init copied the calendars for analysts to edit
    first, second = alert.hypotheses[0].pattern, alert.hypotheses[1].pattern
    runner = CliRunner()
    for who, pick in (("ana", second), ("bo", first), ("ana", first), ("cy", second)):
        result = runner.invoke(app, ["alerts", "assess", alert.id, "-w", str(workspace), "--who", who,
                                     "--judgement", "likely", "--confidence", "moderate",
                                     "--hypothesis", pick])
        assert result.exit_code == 0, result.output
    code, error = _main(capsys, monkeypatch, "alerts", "assess", alert.id, "-w", str(workspace),
                        "--who", "dee",
                        "--judgement", "likely", "--confidence", "high", "--hypothesis", "parade")
    assert code == 4 and "pick one of" in error
    code, error = _main(capsys, monkeypatch, "alerts", "assess", alert.id, "-w", str(workspace),
                        "--who", "dee",
                        "--judgement", "perhaps", "--confidence", "high")
    assert code == 2 and "almost certain" in error
    shown = runner.invoke(app, ["alerts", "show", alert.id, "-w", str(workspace), "--json"])
    shown = json.loads(shown.output)
    assert shown["picks"] == {"ana": first, "bo": first, "cy": second}  # ana changed her mind; latest counts
    text = runner.invoke(app, ["alerts", "show", alert.id, "-w", str(workspace)]).output
    assert "analysts DISAGREE" in text and f"cy: {second}" in text
    with Workspace.open(workspace) as ws:
        assert sorted(ws.picks(alert.site_id)[alert.id]) == sorted([first, first, second])
        with pytest.raises(ValidationError, match="not a hypothesis"):
            ws.add_assessment(Assessment(alert.id, "ed", datetime.now(UTC), "likely", "low", pick="parade"))


def test_latest_picks_keeps_each_analysts_last_word() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    found = [Assessment("a", "x", when, "likely", "low", pick="holiday"),
             Assessment("a", "y", when, "likely", "low"),
             Assessment("a", "x", when, "likely", "low", pick="production_surge")]
    assert latest_picks(found) == {"x": "production_surge"}
    assert latest_picks([replace(found[0], pick="")]) == {}


def test_policy_ranks_or_holds_benign_led_alerts_and_keeps_them(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    gathering = Hypothesis("routine_gathering", "routine gathering", True, 50.0, 0.9)
    surge = Hypothesis("production_surge", "production surge", False, 50.0, 0.9)
    with Workspace.open(workspace) as ws:
        alert = next(a for a in ws.alerts() if a.hypotheses)
        later = alert.acquired.replace(year=alert.acquired.year + 1)
        benign_led = replace(alert, id=f"{alert.id}-benign", hypotheses=(gathering, surge), acquired=later)
        activity_led = replace(alert, id=f"{alert.id}-surge", hypotheses=(surge, gathering),
                               acquired=later.replace(day=1) if later.day > 1 else later)
        ws.upsert_alerts([benign_led, activity_led])
        total = len(ws.alerts())
    assert not top_priority(benign_led.hypotheses) and top_priority(activity_led.hypotheses)
    assert held(benign_led, BenignPolicy.HOLD) and not held(benign_led, BenignPolicy.RANK)
    # a benign lead on its prior alone (the readings favour it no more than routine) lowers nothing
    on_prior_alone = replace(gathering, likelihood_ratio=1.0)
    assert top_priority((on_prior_alone, surge))
    assert not held(replace(benign_led, hypotheses=(on_prior_alone,)), BenignPolicy.HOLD)
    runner = CliRunner()

    def listed(*extra: str) -> list[dict[str, object]]:
        result = runner.invoke(app, ["alerts", "list", "-w", str(workspace), "--json", *extra])
        assert result.exit_code == 0, result.output
        return list(json.loads(result.output))

    def ids(alerts: list[dict[str, object]]) -> list[object]:
        return [a["id"] for a in alerts]

    def benign(item: dict[str, object]) -> bool:
        hypotheses = item["hypotheses"]
        lead = hypotheses[0] if hypotheses else None  # type: ignore[index]
        return lead is not None and bool(lead["benign"]) and float(lead["likelihood_ratio"]) > 1.0

    ranked = listed()  # rank (the default): every alert, the benign-led ones after the rest
    assert len(ranked) == total and listed("--held") == []
    flags = [benign(a) for a in ranked]
    assert flags == sorted(flags)
    assert ids(ranked).index(activity_led.id) < ids(ranked).index(benign_led.id)
    monkeypatch.setenv("SITEWATCH_BENIGN_POLICY_SITES", f"{alert.site_id}=hold")
    shown, kept_back = listed(), listed("--held")
    assert benign_led.id in ids(kept_back) and activity_led.id in ids(shown)
    assert all(benign(a) for a in kept_back) and not any(benign(a) for a in shown)
    assert len(shown) + len(kept_back) == total  # held back, never dropped
    monkeypatch.setenv("SITEWATCH_BENIGN_POLICY_SITES", f"{alert.site_id}=silence")
    with pytest.raises(ValidationError, match="SITE=rank or SITE=hold"):
        Settings.load(workspace)

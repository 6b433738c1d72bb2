"""Activity patterns as data and the competing hypotheses scored on every alert."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from sitewatch.core.errors import PatternError, SitewatchError
from sitewatch.core.types import Hypothesis, Likelihood, Site
from sitewatch.evaluation.alerts import EXPECTED_PATTERNS, evaluate_alerts, proportion
from sitewatch.imagery.simulate.scenario import load_scenario
from sitewatch.imagery.simulate.sites import site_by_id
from sitewatch.monitor.explain import describe_hypotheses, lead_phrase
from sitewatch.monitor.hypotheses import NONE_ID, Reading, pattern_log_ratio, score_hypotheses
from sitewatch.monitor.patterns import load_patterns, parse_patterns, validate_patterns

ACTIVITIES = {"launch_preparation", "production_surge", "construction", "dismantling", "routine_gathering",
              "routine_delivery", "holiday"}

# Routine of the reference Sanumdong site: (zone, indicator) -> (usual value, spread).
ROUTINE = {
    ("assembly_hall", "count_car"): (3.0, 1.8),
    ("assembly_hall", "count_large_vehicle"): (1.0, 1.0),
    ("assembly_hall", "count_tanker_truck"): (0.0, 1.0),
    ("assembly_hall", "count_crane"): (0.0, 1.0),
    ("parking", "count_car"): (22.0, 5.0),
    ("support", "count_large_vehicle"): (1.5, 1.2),
    ("support", "count_tanker_truck"): (0.0, 1.0),
    ("rail_yard", "count_rail_car"): (1.5, 1.2),
}


def readings(site: Site, added: dict[tuple[str, str], float], *, unobserved: frozenset[str] = frozenset(),
             quality: float = 1.0) -> list[Reading]:
    zones = {z.id: z for z in site.zones}
    return [Reading(zones[zone], name, usual + added.get((zone, name), 0.0), usual, spread, quality)
            for (zone, name), (usual, spread) in ROUTINE.items() if zone not in unobserved]


@pytest.fixture(scope="module")
def sanumdong() -> Site:
    return site_by_id("sanumdong")


def test_built_in_library_covers_the_activities_analysts_tell_apart(sanumdong: Site) -> None:
    library = load_patterns()
    assert {p.id for p in library.patterns} == ACTIVITIES
    assert all(p.description and p.label for p in library.patterns)
    benign = {"routine_gathering", "routine_delivery", "holiday"}
    assert {p.id for p in library.patterns if p.benign} == benign
    assert {p.id for p in library.for_site(sanumdong)} == ACTIVITIES
    # A nuclear site has no launch preparation among its hypotheses.
    assert "launch_preparation" not in {p.id for p in library.for_site(site_by_id("yongbyon"))}
    assert set().union(*EXPECTED_PATTERNS.values()) <= ACTIVITIES


def test_every_problem_of_a_pattern_file_is_reported_at_once(tmp_path: Path) -> None:
    document = {
        "Bad Id": {"label": "x"},
        "gathering": {
            "label": "", "description": "cars", "benign": "yes", "categories": [], "prior": -1,
            "colour": "red",
            "signature": [
                {"zones": ["parking", "moon"], "rise": {"count_car": [10, 5], "cars": [1, 2]}},
                {"zones": ["focus"], "may_rise": {"changed_area_m2": [1, 2]}},
                {"zones": ["support"], "fall": {"count_car": [1, 2]}},
                {"zones": ["support"], "may_rise": {"count_car": [1, 2]}},
            ],
        },
    }
    problems = validate_patterns(document)
    expected = ["Bad Id", "gathering.label", "gathering.benign", "gathering.categories", "gathering.prior",
                "gathering.colour", "'moon' is not a zone kind", "[10, 5] must be",
                "unknown indicator 'cars'", "names focus but the pattern has no focus",
                "already set by term 2"]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    path = tmp_path / "patterns.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    with pytest.raises(PatternError) as raised:
        load_patterns(path)
    assert raised.value.problems == problems and str(path) in str(raised.value)
    assert isinstance(raised.value, SitewatchError) and isinstance(raised.value, ValueError)
    with pytest.raises(PatternError, match="cannot be read"):
        load_patterns(tmp_path / "missing.yaml")
    shipped = Path(__file__).parents[1] / "src/sitewatch/monitor/patterns.yaml"
    assert validate_patterns(yaml.safe_load(shipped.read_text(encoding="utf-8"))) == []


def test_cars_in_the_parking_alone_read_as_a_routine_gathering(sanumdong: Site) -> None:
    ranked = score_hypotheses(sanumdong, readings(sanumdong, {("parking", "count_car"): 45.0}))
    assert ranked[0].pattern == "routine_gathering" and ranked[0].benign
    assert ranked[0].likelihood_ratio > 10
    assert abs(sum(h.probability for h in ranked) - 1.0) < 1e-9
    assert [h.probability for h in ranked] == sorted((h.probability for h in ranked), reverse=True)
    assert NONE_ID in {h.pattern for h in ranked}


def test_the_reference_surge_reads_as_launch_preparation(sanumdong: Site) -> None:
    surge = {("assembly_hall", "count_large_vehicle"): 14.0, ("assembly_hall", "count_tanker_truck"): 3.0,
             ("assembly_hall", "count_car"): 16.0, ("assembly_hall", "count_crane"): 2.0,
             ("rail_yard", "count_rail_car"): 8.0, ("parking", "count_car"): 15.0}
    ranked = score_hypotheses(sanumdong, readings(sanumdong, surge))
    assert ranked[0].pattern == "launch_preparation" and not ranked[0].benign
    by_id = {h.pattern: h for h in ranked}
    # The LR is against routine, so a gathering gains from the parking cars alone; the trucks, cranes and
    # rail cars it cannot explain leave it far behind, and its share of belief near zero.
    assert by_id["routine_gathering"].likelihood_ratio < 1e-4 * ranked[0].likelihood_ratio
    assert by_id["routine_gathering"].probability < 1e-3
    assert ranked[0].likelihood in (Likelihood.LIKELY, Likelihood.VERY_LIKELY, Likelihood.ALMOST_CERTAIN)


def test_a_few_trucks_at_the_depot_read_as_a_routine_delivery(sanumdong: Site) -> None:
    ranked = score_hypotheses(sanumdong, readings(sanumdong, {("support", "count_large_vehicle"): 4.0,
                                                              ("support", "count_tanker_truck"): 1.0}))
    assert ranked[0].pattern == "routine_delivery"


def test_not_observed_is_not_read_as_routine(sanumdong: Site) -> None:
    """A zone under cloud leaves the pattern's terms there out; seen at routine, they count against it."""
    launch = load_patterns().get("launch_preparation")
    added = {("rail_yard", "count_rail_car"): 8.0}
    clouded = readings(sanumdong, added, unobserved=frozenset({"assembly_hall"}))
    hidden = pattern_log_ratio(launch, sanumdong, clouded)
    seen_quiet = pattern_log_ratio(launch, sanumdong, readings(sanumdong, added))
    assert hidden > seen_quiet + 2.0
    # Poor quality widens the reading's noise: the same numbers are weaker evidence.
    gathering = load_patterns().get("routine_gathering")
    clear = pattern_log_ratio(gathering, sanumdong, readings(sanumdong, {("parking", "count_car"): 30.0}))
    hazy = pattern_log_ratio(gathering, sanumdong,
                             readings(sanumdong, {("parking", "count_car"): 30.0}, quality=0.4))
    assert clear > hazy > 0


def test_estimative_words_and_sentence() -> None:
    assert Likelihood.from_probability(0.01) is Likelihood.ALMOST_NO_CHANCE
    assert Likelihood.from_probability(0.5) is Likelihood.ROUGHLY_EVEN_CHANCE
    assert Likelihood.from_probability(0.7) is Likelihood.LIKELY
    assert Likelihood.from_probability(0.99) is Likelihood.ALMOST_CERTAIN
    ranked = (Hypothesis("production_surge", "production surge", False, 12.3, 0.7),
              Hypothesis("holiday", "holiday gathering", True, 0.21, 0.1),
              Hypothesis("construction", "construction", False, 0.1, 0.08),
              Hypothesis("dismantling", "dismantling", False, 0.05, 0.07),
              Hypothesis(NONE_ID, "none of these", False, 0.01, 0.05))
    sentence = describe_hypotheses(ranked)
    assert sentence.startswith("Hypotheses: likely production surge (LR ≈ 12); very unlikely holiday "
                               "gathering (LR ≈ 0.21)")
    assert "dismantling" not in sentence and "none of these" in sentence
    # when nothing fits the readings better than routine, the words say the order is the priors'
    on_priors = tuple(replace(h, likelihood_ratio=min(h.likelihood_ratio, 1.0)) for h in ranked)
    assert describe_hypotheses(on_priors).startswith("Hypotheses (none fits the readings better than the "
                                                     "site's routine, so their order is their priors'): ")
    assert lead_phrase(on_priors) == "no activity pattern fits better than the site's routine"
    assert lead_phrase(ranked) == "likely production surge (LR ≈ 12)" and lead_phrase(()) is None
    with pytest.raises(ValueError, match="probability"):
        Hypothesis("holiday", "holiday", True, 1.0, 1.5)


def test_evaluation_reports_hypothesis_accuracy_and_busy_days_ranked_first() -> None:
    evaluation = evaluate_alerts(load_scenario("reference"), (3,), false_alarm_rates=(0.05,),
                                 lead_in_days=200, inject=1)
    (rate,) = evaluation.rates
    assert rate.routine_top_priority_alerts <= rate.routine_alerts
    kinds = {k.kind: k for k in rate.hypothesis_accuracy}
    assert kinds and all(k.correct <= k.alerted for k in kinds.values())
    assert sum(n for _, n in kinds["launch_preparation"].leading) == kinds["launch_preparation"].alerted >= 1
    report = rate.as_dict()
    top1 = report["top1_hypothesis_accuracy"]
    assert isinstance(top1, dict) and 0.0 <= top1["value"] <= 1.0 and top1["standard_error"] >= 0.0
    assert report["routine_busy_top_priority"] == proportion(rate.routine_top_priority_alerts,
                                                             rate.routine_observations)
    assert np.isnan(proportion(0, 0)["value"])


def test_parse_patterns_names_its_source() -> None:
    with pytest.raises(PatternError, match="my-file: 1 problem"):
        parse_patterns([], "my-file")


def test_indicators_no_pattern_names_do_not_weigh(sanumdong: Site) -> None:
    """changed_objects moves with any activity; no pattern names it, so it must not lift "none of these"."""
    base = readings(sanumdong, {("parking", "count_car"): 45.0})
    hall = next(z for z in sanumdong.zones if z.id == "assembly_hall")
    extra = [*base, Reading(hall, "changed_objects", 40.0, 3.0, 2.0, 1.0)]
    assert score_hypotheses(sanumdong, extra) == score_hypotheses(sanumdong, base)

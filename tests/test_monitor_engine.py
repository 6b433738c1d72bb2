"""The scoring engine: conformal p-values, baselines, combination, BH, CUSUM, feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitewatch.core.errors import ValidationError
from sitewatch.core.indicators import indicator_spec
from sitewatch.monitor.baselines import BaselineConfig, fit_baseline, spec_floors
from sitewatch.monitor.combine import benjamini_hochberg, daily_benjamini_hochberg, site_scores
from sitewatch.monitor.engine import EngineConfig, score_sites
from sitewatch.monitor.scoring import conformal_p_values
from sitewatch.monitor.sequential import average_run_length, cusum_step, cusum_threshold


def test_conformal_p_value_is_the_rank_formula() -> None:
    calibration = np.array([[1.0, 2.0, 3.0, np.nan, 4.0]])
    p = conformal_p_values(calibration, np.array([2.5]))
    assert p[0] == pytest.approx((1 + 2) / (4 + 1))  # 3 and 4 are >= 2.5, n = 4 (NaN ignored)
    assert conformal_p_values(calibration, np.array([0.0]))[0] == pytest.approx(1.0)
    assert conformal_p_values(calibration, np.array([np.nan]))[0] == 1.0
    assert conformal_p_values(np.full((1, 3), np.nan), np.array([5.0]))[0] == 1.0


def test_tail_goes_below_one_over_n_plus_one_only_beyond_the_largest_score() -> None:
    calibration = np.arange(20, dtype=float)[None, :]
    at_max = conformal_p_values(calibration, np.array([19.0]))[0]
    beyond = conformal_p_values(calibration, np.array([25.0]))[0]
    far = conformal_p_values(calibration, np.array([40.0]))[0]
    assert at_max == pytest.approx(2 / 21)
    assert beyond < 1 / 21 and far < beyond


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40), st.floats(-1e3, 1e3))
def test_p_values_lie_in_0_1_and_fall_as_the_score_rises(values: list[float], score: float) -> None:
    calibration = np.array([values])
    low = conformal_p_values(calibration, np.array([score]))[0]
    high = conformal_p_values(calibration, np.array([score + 1.0]))[0]
    assert 0.0 < high <= low <= 1.0


def test_baseline_is_robust_and_count_aware() -> None:
    floors, _, counts = spec_floors([indicator_spec("count_car"), indicator_spec("changed_area_m2")])
    values = np.array([[[0.0] * 30 + [50.0]], [[100.0, 110.0, 90.0, 105.0, 95.0] * 6 + [5000.0]]])[:, 0, :]
    rest = np.zeros(values.shape, bool)
    baseline = fit_baseline(values, rest, floors=floors, counts=counts, config=BaselineConfig())
    assert baseline.location.tolist() == [0.0, 100.0]  # one outlier moves nothing
    assert baseline.scale[0] == pytest.approx(1.0)  # all-zero counts: the Poisson floor
    assert baseline.scale[1] >= 50.0  # area floor


def test_weekday_term_appears_only_where_the_data_support_it() -> None:
    rng = np.random.default_rng(3)
    n = 140
    rest = (np.arange(n) % 7) == 6
    floors, _, counts = spec_floors([indicator_spec("count_car")] * 2)
    with_effect = np.where(rest, rng.poisson(4, n), rng.poisson(25, n)).astype(float)
    without = rng.poisson(25, n).astype(float)
    values = np.stack([with_effect, without])
    baseline = fit_baseline(values, np.stack([rest, rest]), floors=floors, counts=counts,
                            config=BaselineConfig())
    assert baseline.weekday_term.tolist() == [True, False]
    assert baseline.rest_location[0] < 8 < 20 < baseline.work_location[0]


def _quiet(n_sites: int, n_time: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    rng = np.random.default_rng(seed)
    specs = [indicator_spec("count_car"), indicator_spec("changed_area_m2"), indicator_spec("count_crane")]
    values = np.stack([
        rng.poisson(12, (n_sites, n_time)), rng.gamma(3.0, 100.0, (n_sites, n_time)),
        rng.poisson(0.3, (n_sites, n_time)),
    ], axis=1).astype(float)
    values[rng.uniform(size=values.shape) < 0.05] = np.nan
    quality = rng.uniform(0.6, 1.0, values.shape)
    days = np.cumsum(rng.integers(1, 11, (n_sites, n_time)), axis=1).astype(float)
    return values, quality, days, specs


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_false_alarm_rate_holds_on_quiet_histories(alpha: float) -> None:
    values, quality, days, specs = _quiet(150, 120, seed=11)
    config = EngineConfig(false_alarm_rate=alpha, min_site_score=0.0)  # the bare conformal test
    result = score_sites(values, quality, days, specs, config=config)
    material = score_sites(values, quality, days, specs, config=EngineConfig(false_alarm_rate=alpha))
    assert material.candidate.sum() <= result.candidate.sum()
    scored = result.n_history >= config.conformal_history
    rate = result.candidate[scored].mean()
    n = scored.sum()
    level = alpha * 0.8  # the instant test's share
    assert rate <= level + 3 * np.sqrt(level * (1 - level) / n)
    assert rate >= level / 3  # the test is not vacuous either


def test_a_surge_is_caught_at_once_and_feedback_keeps_it_out_of_the_baseline() -> None:
    values, quality, days, specs = _quiet(1, 80, seed=5)
    values[0, 0, 60] = 45.0  # cars
    values[0, 1, 60] = 3000.0  # changed area
    values[0, 2, 60] = 3.0  # cranes
    config = EngineConfig(false_alarm_rate=0.01)
    result = score_sites(values, quality, days, specs, config=config)
    assert result.candidate[0, 60]
    assert result.site_p[0, 60] < 0.001
    assert np.argmax(result.series_score[0, :, 60]) in (0, 1)
    again = values.copy()
    again[0, :, 61] = values[0, :, 60]  # the same surge twice in a row
    feedback = np.zeros((1, 80), np.int8)
    kept_in = score_sites(again, quality, days, specs, config=config)
    feedback[0, 60] = -1  # an analyst confirmed it: keep it out of the baseline
    kept_out = score_sites(again, quality, days, specs, config=config, feedback=feedback)
    assert kept_out.site_p[0, 61] < kept_in.site_p[0, 61]
    assert kept_out.candidate[0, 61]


def test_warm_up_raises_nothing_before_min_history() -> None:
    values, quality, days, specs = _quiet(1, 30, seed=2)
    values[0, 0, 5] = 500.0
    result = score_sites(values, quality, days, specs, config=EngineConfig(false_alarm_rate=0.05))
    assert not result.candidate[0, :10].any()


def test_scoring_in_pieces_equals_scoring_at_once() -> None:
    values, quality, days, specs = _quiet(1, 90, seed=8)
    config = EngineConfig(false_alarm_rate=0.05)
    whole = score_sites(values, quality, days, specs, config=config)
    head = score_sites(values[:, :, :50], quality[:, :, :50], days[:, :50], specs, config=config)
    assert np.array_equal(whole.site_p[:, :50], head.site_p)
    assert np.array_equal(whole.candidate[:, :50], head.candidate)


def test_slow_build_is_caught_by_cusum() -> None:
    rng = np.random.default_rng(4)
    n = 160
    values = rng.poisson(8.0, (1, 1, n)).astype(float)
    values[0, 0, 100:] += np.linspace(0, 16, n - 100).round()  # weeks of construction traffic
    quality = np.ones_like(values)
    days = np.arange(n, dtype=float)[None] * 5
    result = score_sites(values, quality, days, [indicator_spec("changed_objects")],
                         config=EngineConfig(false_alarm_rate=0.01))
    alarms = np.flatnonzero(result.slow_build[0, 0])
    assert alarms.size and alarms.min() >= 100
    assert not result.slow_build[0, 0, :100].any()


def test_pixel_areas_are_left_out_of_the_slow_build_test() -> None:
    rng = np.random.default_rng(4)
    n = 160
    values = rng.gamma(4.0, 100.0, (1, 1, n))
    values[0, 0, 100:] += np.linspace(0, 500, n - 100)  # e.g. autumn shadows lengthening
    result = score_sites(values, np.ones_like(values), np.arange(n, dtype=float)[None] * 5,
                         [indicator_spec("changed_area_m2")], config=EngineConfig(false_alarm_rate=0.05))
    assert not result.slow_build.any()


def test_indicators_of_one_zone_count_once_and_zone_weights_scale_them() -> None:
    scores = np.array([[[5.0], [3.0], [4.0]]])  # two series of zone 0, one of zone 1
    groups = np.array([0, 0, 1])
    assert site_scores(scores)[0, 0] == pytest.approx(4.0 + 2.0 + 3.0)
    assert site_scores(scores, groups)[0, 0] == pytest.approx(4.0 + 3.0)
    assert site_scores(scores, groups, np.array([0.5, 1.0]))[0, 0] == pytest.approx(2.0 + 3.0)


def test_site_score_adds_capped_excesses() -> None:
    scores = np.array([[[0.5], [3.0], [50.0], [np.nan]]])
    assert site_scores(scores)[0, 0] == pytest.approx(0 + 2.0 + 6.0)
    assert np.isnan(site_scores(np.full((1, 2, 1), np.nan))[0, 0])


def test_benjamini_hochberg_known_case() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.6, np.nan])
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True, False, False, False, False]
    assert benjamini_hochberg(np.array([0.01]), 0.05).tolist() == [True]
    days = np.array(["a", "a", "b"])
    assert daily_benjamini_hochberg(days, np.array([0.03, 0.04, 0.03]), 0.05).tolist() == [True, True, True]
    assert daily_benjamini_hochberg(days, np.array([0.03, 0.9, 0.03]), 0.05).tolist() == [False, False, True]


def test_cusum_threshold_matches_its_run_length() -> None:
    h = cusum_threshold(500.0)
    assert average_run_length(h, 0.5) == pytest.approx(500.0, rel=1e-6)
    assert cusum_threshold(5000.0) > h
    statistic, alarm, reached = cusum_step(np.array([h - 0.1]), np.array([1.0]), k=0.5, threshold=h,
                                           armed=np.array([True]))
    assert alarm[0] and statistic[0] == 0.0 and reached[0] >= h


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValidationError, match="false_alarm_rate"):
        EngineConfig(false_alarm_rate=0.0)
    with pytest.raises(ValidationError, match="window"):
        BaselineConfig(window=1)


def _last_score(series: tuple[tuple[str, str], ...], values: np.ndarray) -> float:
    """The combined score of the last of ``values`` (series x observations, one every 3 days)."""
    from sitewatch.monitor.alerting import IndicatorHistory, score_history

    start = datetime(2024, 1, 1, 10, tzinfo=UTC)
    n = values.shape[1]
    acquired = tuple(start + timedelta(days=3 * i) for i in range(n))
    history = IndicatorHistory("site", tuple(f"o{i}" for i in range(n)), acquired, series, values,
                               np.ones_like(values))
    return float(score_history(history, EngineConfig()).result.site_score[0, -1])


def test_pixel_change_weighs_half_in_a_zone_that_also_has_counts() -> None:
    from sitewatch.monitor.combine import CHANGE_BESIDE_COUNTS_WEIGHT, SERIES_CAP

    rng = np.random.default_rng(3)
    n = 60
    series = (("hall", "changed_area_m2"), ("hall", "count_car"), ("yard", "changed_area_m2"))
    values = np.vstack([rng.gamma(4.0, 50.0, n), rng.poisson(5.0, n).astype(float), rng.gamma(4.0, 50.0, n)])
    values[[0, 2], -1] = 50_000.0  # the same huge change in both zones; the hall's cars are as usual
    values[1, -1] = 5.0
    # The hall's change is capped like the yard's but weighs half beside the hall's car count.
    assert _last_score(series, values) == pytest.approx(CHANGE_BESIDE_COUNTS_WEIGHT * SERIES_CAP + SERIES_CAP)


def test_a_surge_of_cars_weighs_half_a_surge_of_trucks() -> None:
    from sitewatch.monitor.combine import INDICATOR_WEIGHTS, SERIES_CAP

    series = (("hall", "count_car"), ("hall", "count_large_vehicle"))
    values = np.random.default_rng(5).poisson(5.0, (2, 60)).astype(float)

    def last_score(surging: int) -> float:
        surge = values.copy()
        surge[:, -1] = 5.0
        surge[surging, -1] = 500.0  # far beyond the cap
        return _last_score(series, surge)

    # A holiday crowd of cars counts half what the same number of trucks at the hall does.
    assert INDICATOR_WEIGHTS["count_car"] == 0.5
    assert last_score(1) == pytest.approx(SERIES_CAP)
    assert last_score(0) == pytest.approx(0.5 * SERIES_CAP)


def test_changed_objects_are_pixel_change_not_a_detection_count() -> None:
    from sitewatch.monitor.combine import SERIES_CAP

    rng = np.random.default_rng(4)
    n = 60
    series = (("hall", "changed_area_m2"), ("hall", "changed_objects"))
    values = np.vstack([rng.gamma(4.0, 50.0, n), rng.poisson(4.0, n).astype(float)])
    values[:, -1] = (50_000.0, 500.0)
    # no detector ran: the zone's pixel change keeps its full weight
    assert _last_score(series, values) == pytest.approx(SERIES_CAP)

"""Revisit schedules: irregular gaps between images of a site, plus dates a scenario pins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from sitewatch.imagery.simulate.scenario import Scenario, SiteScenario


def revisit_dates(scenario: Scenario, site: SiteScenario, rng: np.random.Generator) -> tuple[date, ...]:
    """Dates the site is imaged: random gaps of ``revisit_days`` plus the pinned dates, sorted."""
    low, high = scenario.revisit_days
    days = {scenario.start + timedelta(days=int(rng.integers(0, high)))}
    current = min(days)
    while True:
        current = current + timedelta(days=int(rng.integers(low, high + 1)))
        if current > scenario.end:
            break
        days.add(current)
    days.update(d for d in site.pinned_dates if scenario.start <= d <= scenario.end)
    return tuple(sorted(days))


def acquisition_time(scenario: Scenario, day: date, rng: np.random.Generator) -> datetime:
    """UTC time of the overpass on ``day``: the nominal time of day, varied by up to 40 minutes."""
    nominal = datetime.combine(day, scenario.acquisition_time, tzinfo=UTC)
    return nominal + timedelta(seconds=int(rng.integers(-2400, 2401)))

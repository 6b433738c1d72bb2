"""What the monitor saw on a site's series: bands, alignment, indicators and scores, date by date.

Written for the NAIP North Dakota control site (docs/monitoring.md, "A real series: NAIP North
Dakota"), usable on any site. Run it after `sitewatch monitor`:

    .venv/bin/python scripts/naip_series_report.py -w naip-ws --site naip-nd-control

Per date: the chip's bands and visible share, the shift the monitor applied (and its confidence),
the shift co-registration measures against the site's anchor and against the date before (or why
it refuses), each zone's indicators, and the engine's view: calibration observations, combined
score, p-value, whether it was a candidate alert, and the series that weighed most.
``--min-history`` and ``--max-age-days`` score the same indicators with another warm-up and
baseline window, to see what the engine would say without its safeguards (the store is not
changed).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from sitewatch.core.indicators import BRIGHTENED_AREA, CHANGED_AREA, DARKENED_AREA, NDVI_MEAN
from sitewatch.imagery.chips import Chip, read_chip
from sitewatch.imagery.coregister import CoregistrationError, estimate_shift
from sitewatch.monitor.alerting import IndicatorHistory, score_history
from sitewatch.monitor.baselines import BaselineConfig
from sitewatch.monitor.engine import EngineConfig
from sitewatch.store import Workspace

INDICATORS = tuple(spec.name for spec in (CHANGED_AREA, BRIGHTENED_AREA, DARKENED_AREA, NDVI_MEAN))


def measured_shift(reference: Chip, moving: Chip) -> str:
    """Co-registration's shift of ``moving`` onto ``reference`` in pixels, or why it refuses."""
    try:
        registration = estimate_shift(reference.array.astype(np.float32), moving.array.astype(np.float32),
                                      valid_reference=reference.valid, valid_moving=moving.valid)
    except CoregistrationError as refusal:
        return "refused: " + str(refusal).split(";")[0].split(" within")[0]
    rows, cols = registration.shift
    return f"({rows:+.2f}, {cols:+.2f}) px, {registration.tiles_agreeing}/{registration.tiles_used} tiles"


def main() -> None:
    defaults = BaselineConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", type=Path, required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--min-history", type=int, default=defaults.min_history,
                        help="warm-up: calibration observations before any alert (default: the engine's)")
    parser.add_argument("--max-age-days", type=float, default=defaults.max_age_days,
                        help="observations older than this leave the baseline (default: the engine's)")
    args = parser.parse_args()
    with Workspace.open(args.workspace) as ws:
        site = ws.site(args.site)
        observations = ws.observations(site.id)
        chips = [read_chip(ws.chip_path(o)) for o in observations]
        values = ws.indicators(site.id)
        alpha = ws.settings.false_alarm_rate

    print(f"{site.name} ({site.id}), {len(observations)} observations, bands {chips[0].bands}")
    print("\ndate        visible  applied shift (conf.)   to the anchor" + " " * 33 + "to the date before")
    for index, (observation, chip) in enumerate(zip(observations, chips, strict=True)):
        applied = f"({observation.shift[0]:+.2f}, {observation.shift[1]:+.2f})"
        confidence = "none" if observation.shift_confidence is None else f"{observation.shift_confidence:.2f}"
        to_anchor = measured_shift(chips[0], chip) if index else "(the anchor)"
        to_before = measured_shift(chips[index - 1], chip) if index else ""
        print(f"{observation.acquired:%Y-%m-%d}  {observation.valid_fraction:6.3f}   {applied} "
              f"{confidence:>5}   {to_anchor:<46}{to_before}")

    table: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    for value in values:
        table[(value.zone_id, value.name)][value.observation_id] = value.value
    print("\nindicators (m² for areas), '-' not observed")
    print("zone / indicator".ljust(36) + "".join(f"{o.acquired:%Y-%m}".rjust(10) for o in observations))
    for zone in site.zones:
        for name in INDICATORS:
            row = table.get((zone.id, name), {})
            cells = [row.get(o.id) for o in observations]
            text = ["-" if v is None else (f"{v:.3f}" if name == NDVI_MEAN.name else f"{v:,.0f}")
                    for v in cells]
            print(f"{zone.id} / {name}".ljust(36) + "".join(t.rjust(10) for t in text))

    history = IndicatorHistory.from_values(site.id, values)
    baseline = BaselineConfig(min_history=args.min_history, max_age_days=args.max_age_days)
    result = score_history(history, EngineConfig(false_alarm_rate=alpha, baseline=baseline), {},
                           site.zones).result
    print(f"\nengine at alpha = {alpha}, warm-up {args.min_history} observations, baseline window "
          f"{args.max_age_days:g} days: calibration observations n, combined score, p, candidate, top series")
    for t, when in enumerate(history.acquired):
        score = result.site_score[0, t]
        scores = np.nan_to_num(result.series_score[0, :, t], nan=-np.inf)
        top = int(np.argmax(scores))
        zone, name = history.series[top]
        strongest = "" if np.isnan(score) else (
            f"  top {zone} / {name} = {history.values[top, t]:.4g} (usual {result.location[0, top, t]:.4g}, "
            f"z {scores[top]:.1f})")
        shown = "-" if np.isnan(score) else f"{score:.1f}"
        print(f"{when:%Y-%m-%d}  n={result.n_history[0, t]:<3d} score={shown:>6}  p={result.site_p[0, t]:.3g}"
              f"  candidate={bool(result.candidate[0, t])}"
              f"  slow build={bool(result.slow_build[0, :, t].any())}{strongest}")


if __name__ == "__main__":
    main()

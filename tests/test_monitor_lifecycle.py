"""Alert lifecycle rules, verdict parsing, baseline feedback, track record and explanations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sitewatch.core.errors import SitewatchError, UnsupportedInputError
from sitewatch.core.indicators import indicator_spec
from sitewatch.core.types import Alert, AlertState
from sitewatch.monitor.explain import Evidence, explain_alert, explain_slow_build
from sitewatch.monitor.lifecycle import (
    AlertTransitionError,
    allowed_from,
    baseline_feedback,
    check_transition,
    parse_resolution,
    track_record,
)


def _alert(index: int, state: AlertState) -> Alert:
    when = datetime(2019, 1, 1 + index, tzinfo=UTC)
    return Alert(f"a{index}", "sanumdong", f"o{index}", when, when, "count_car", 40.0, 20.0, 9.0,
                 "text", zone_id="parking", p_value=0.001, state=state)


@pytest.mark.parametrize(("current", "target"), [
    (AlertState.NEW, AlertState.ACKNOWLEDGED),
    (AlertState.NEW, AlertState.FALSE_ALARM),
    (AlertState.ACKNOWLEDGED, AlertState.CONFIRMED),
    (AlertState.CONFIRMED, AlertState.BENIGN),  # an analyst corrects a verdict
])
def test_allowed_moves(current: AlertState, target: AlertState) -> None:
    check_transition("a1", current, target)


@pytest.mark.parametrize(("current", "target"), [
    (AlertState.ACKNOWLEDGED, AlertState.NEW),
    (AlertState.CONFIRMED, AlertState.ACKNOWLEDGED),
    (AlertState.BENIGN, AlertState.BENIGN),
    (AlertState.ACKNOWLEDGED, AlertState.ACKNOWLEDGED),
])
def test_refused_moves_say_what_is_allowed(current: AlertState, target: AlertState) -> None:
    with pytest.raises(AlertTransitionError, match="allowed from") as caught:
        check_transition("a1", current, target)
    assert isinstance(caught.value, SitewatchError) and isinstance(caught.value, ValueError)


def test_verdicts_parse_from_cli_spellings() -> None:
    assert parse_resolution("false-alarm") is AlertState.FALSE_ALARM
    assert parse_resolution(" Confirmed ") is AlertState.CONFIRMED
    assert parse_resolution("benign") is AlertState.BENIGN
    # a verdict spelled wrong is bad input (exit 4), not a lifecycle conflict (exit 7)
    with pytest.raises(UnsupportedInputError, match="confirmed, benign, false-alarm"):
        parse_resolution("acknowledged")


def test_allowed_from_is_the_inverse_of_the_moves() -> None:
    for target in AlertState:
        for current in AlertState:
            allowed = current in allowed_from(target)
            try:
                check_transition("a1", current, target)
            except AlertTransitionError:
                assert not allowed, (current, target)
            else:
                assert allowed, (current, target)
    assert allowed_from(AlertState.NEW) == frozenset()


def test_feedback_keeps_confirmed_activity_out_and_benign_in() -> None:
    assert baseline_feedback(AlertState.CONFIRMED) == -1
    assert baseline_feedback(AlertState.BENIGN) == 1
    assert baseline_feedback(AlertState.FALSE_ALARM) == 1
    assert baseline_feedback(AlertState.NEW) == 0


def test_track_record_sentence() -> None:
    now = datetime(2020, 1, 1, tzinfo=UTC)
    assert track_record([], before=now).describe() == "No earlier alerts at this site."
    states = [AlertState.CONFIRMED, AlertState.CONFIRMED, AlertState.FALSE_ALARM, AlertState.NEW,
              AlertState.BENIGN, AlertState.ACKNOWLEDGED, AlertState.FALSE_ALARM]
    alerts = [_alert(i, state) for i, state in enumerate(states, start=1)]
    record = track_record(alerts, before=now)
    assert record.as_dict() == {"raised": 7, "confirmed": 2, "benign": 1, "false_alarm": 2, "open": 2}
    assert record.describe().startswith("2 of 7 earlier alerts here were confirmed, 2 false alarms")


def test_track_record_of_an_alert_counts_strictly_earlier_alerts_once_in_their_stored_state() -> None:
    earlier = [_alert(1, AlertState.CONFIRMED), _alert(2, AlertState.FALSE_ALARM)]
    same_day = _alert(3, AlertState.NEW)
    later = _alert(4, AlertState.BENIGN)
    rebuilt = _alert(1, AlertState.NEW)  # the monitor rebuilding a stored alert: the stored state counts
    record = track_record([*earlier, same_day, later, rebuilt], before=same_day.acquired)
    assert (record.raised, record.confirmed, record.false_alarm, record.open) == (2, 1, 1, 0)
    assert record.describe() == "1 of 2 earlier alerts here were confirmed, 1 false alarm."
    site_wide = track_record([*earlier, same_day, later])
    assert not site_wide.earlier and site_wide.raised == 4
    assert site_wide.by_state() == {"new": 1, "acknowledged": 0, "confirmed": 1, "benign": 1,
                                    "false_alarm": 1}
    assert site_wide.describe() == ("1 of 4 alerts here were confirmed, 1 false alarm, 1 benign, "
                                    "1 not yet resolved.")
    assert track_record([]).describe() == "No alerts at this site."


def test_explanation_names_zone_indicator_values_p_and_warm_up() -> None:
    primary = Evidence("Assembly hall", indicator_spec("count_large_vehicle"), 14.0, 1.0, 1e-5)
    other = Evidence("Rail yard", indicator_spec("count_rail_car"), 8.0, 1.5, 1e-3)
    text = explain_alert(site_name="Sanumdong", primary=primary, others=[other], site_p=2e-4,
                         false_alarm_rate=0.01, n_history=45, extrapolated=True, conformal_history=124,
                         record=track_record([_alert(1, AlertState.FALSE_ALARM)],
                                             before=datetime(2020, 1, 1, tzinfo=UTC)))
    assert "large vehicle count in Assembly hall 14 (usually 1)" in text
    assert "rail car count in Rail yard 8" in text
    assert "p = 0.0002" in text and "45 earlier observations" in text  # two significant digits
    assert "Early days: the site has fewer than 124 earlier observations" in text
    assert "exponential" not in text and "0 of 1 earlier alert here was confirmed" in text


def test_slow_build_explanation_says_why_its_p_may_exceed_alpha() -> None:
    primary = Evidence("Launch pad", indicator_spec("changed_objects"), 6.4, 2.0, 0.2)
    text = explain_slow_build(site_name="Sohae", primary=primary, observations=40, statistic=5.123,
                              record=track_record([]), false_alarm_rate=0.01)
    assert "vehicle-sized patches of change (objects that came or went) in Launch pad" in text
    assert "now 6 (usually 2)" in text  # a count is a whole number
    assert "p = 0.2 is the last observation's alone and may be well above α = 0.01" in text
    assert "CUSUM" in text and "changed_objects" not in text

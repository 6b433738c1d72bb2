"""Solar position, so that shadows in every image match the sun of its date and place.

The NOAA "general solar position" series (Spencer 1971 Fourier terms for the equation of time
and declination) is accurate to a fraction of a degree, which is all a shadow needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sitewatch.core.timeutil import ensure_utc


@dataclass(frozen=True, slots=True)
class SunPosition:
    elevation: float
    """Degrees above the horizon."""
    azimuth: float
    """Degrees clockwise from north."""

    def shadow_vector(self, height: float) -> tuple[float, float]:
        """Map offset (east, north) in metres of the shadow of a point ``height`` metres up."""
        length = height / math.tan(math.radians(max(self.elevation, 3.0)))
        away = math.radians(self.azimuth + 180.0)
        return length * math.sin(away), length * math.cos(away)


def solar_position(when: datetime, lat: float, lon: float) -> SunPosition:
    """Sun elevation and azimuth at ``when`` (UTC) seen from ``lat``, ``lon`` (degrees)."""
    moment = ensure_utc(when)
    hours = moment.hour + moment.minute / 60 + moment.second / 3600
    gamma = 2 * math.pi / 365 * (moment.timetuple().tm_yday - 1 + (hours - 12) / 24)
    equation_of_time = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    declination = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    true_solar_minutes = hours * 60 + equation_of_time + 4 * lon
    hour_angle = math.radians(true_solar_minutes / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(declination) * math.cos(
        hour_angle
    )
    zenith = math.acos(max(-1.0, min(1.0, cos_zenith)))
    azimuth = (
        math.degrees(
            math.atan2(
                math.sin(hour_angle),
                math.cos(hour_angle) * math.sin(phi) - math.tan(declination) * math.cos(phi),
            )
        )
        + 180.0
    )
    return SunPosition(elevation=90.0 - math.degrees(zenith), azimuth=azimuth % 360.0)

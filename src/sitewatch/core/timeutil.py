"""Time helpers: every timestamp sitewatch stores is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time


def ensure_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """Parse an ISO 8601 date or datetime (``Z`` accepted) into aware UTC."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or datetime; write e.g. 2019-02-22 or 2019-02-22T02:31:00Z"
        ) from None
    try:
        return ensure_utc(parsed)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before the first representable UTC instant
        raise ValueError(
            f"{text!r} falls outside the years 1 to 9999 once converted to UTC; give a time within them"
        ) from None


def parse_utc_bound(text: str, *, upper: bool) -> datetime:
    """Parse one end of an inclusive time range: a date alone means the whole day.

    As an upper bound ``2019-02-22`` is the day's last microsecond, so an image taken at 02:20 that
    day is inside; as a lower bound it is the day's first. A datetime is taken as written.
    """
    cleaned = text.strip()
    try:
        day = date.fromisoformat(cleaned)
    except ValueError:
        return parse_utc(text)
    return datetime.combine(day, time.max if upper else time.min, tzinfo=UTC)
